"""The two choices every verb, the batch engines and the app pass around whole.

* :class:`DetectorSpec`: which detector, where it runs and which of its boxes are kept. It names
  a detection run (and its cache entry) and loads the detector.
* :class:`FlickerSettings`: which flags: the engine's options, the two IoU thresholds and the score
  floor applied before the assertion. Equal settings give equal flags.

Both are frozen and hashable (they key caches), built once from the command line or the app's
widgets, and checked in one place each. A new detector option or assertion setting is a field
here, not a parameter threaded through every verb.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from core.bounded import brief
import numpy as np

from core.assertions import FLICKER, METADATA_KEYS, Corrections, NeighbourIndex, corrected
from core.detections import Detections
from core.errors import UserError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, DEFAULT_MODE, FlickerIndex, FlickerOptions, FlickerResult
from core.paths import check_output_folder

if TYPE_CHECKING:
    from core.detect import Detector, Progress
    from core.video import VideoInfo

DEFAULT_CONF = 0.1  # the tutorial's detection floor: low, to surface likely false negatives
BUILTIN_HOG = "builtin:hog-people"  # the offline people detector (no weights file)
BACKENDS = ("auto", "torch", "onnx")


def check_unit_interval(name: str, value: float) -> float:
    """``value`` when it lies in [0, 1] (NaN does not); a UserError naming ``name`` otherwise."""
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} must be in [0, 1], got {value}")
    return value


@dataclass(frozen=True)
class DetectorSpec:
    """Which detector and which of its boxes: everything a detection run depends on."""

    weights: str = BUILTIN_HOG  # a model path (.pt, .onnx, a model .yaml) or BUILTIN_HOG
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    conf: float = DEFAULT_CONF  # detection floor
    classes: tuple[str, ...] | None = None  # class names or ids to keep, as the user gave them; None: all
    backend: str = "auto"  # auto, torch or onnx
    cache_dir: Path | None = field(default=None, compare=False)  # where results are cached, not what they are

    @classmethod
    def of(cls, weights: str | Path | None = None, **fields) -> "DetectorSpec":
        """A spec from loosely typed input: no weights means the built-in detector, classes any sequence."""
        classes = fields.pop("classes", None)
        return cls(str(weights) if weights else BUILTIN_HOG, classes=tuple(map(str, classes)) if classes else None,
                   **fields)

    @property
    def builtin(self) -> bool:
        return self.weights == BUILTIN_HOG

    def check(self) -> None:
        """Everything that can be wrong before a model is loaded; a device that cannot be used is
        refused here, never silently ignored."""
        from core.detect import resolve_device

        check_unit_interval("--conf", self.conf)
        if self.backend not in BACKENDS:
            raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.cache_dir is not None:
            check_output_folder(self.cache_dir, "--cache-dir")
        if self.builtin and resolve_device(self.device) != "cpu" and self.device != "auto":
            raise UserError(f"The offline HOG detector runs on the CPU only; drop --device {self.device} or pass --weights")

    def load(self) -> Detector:
        from core.detect import load_detector

        return load_detector(self.weights, self.device, backend=self.backend, cache_dir=self.cache_dir)

    def class_ids(self, names: dict[int, str]) -> list[int] | None:
        """The kept classes as ids of a model with these ``names``; None keeps every class, also when they are
        named one by one (the same boxes: the same cache entry, and a batch done without them is not done again)."""
        ids = resolve_classes(self.classes, names)
        return None if ids is not None and set(ids) == set(names) else ids

    def cache_key(self, video: VideoInfo, detector: Detector) -> str:
        """Names this run's result: the detection cache file and the app's detections share it."""
        from core.detect import cache_key

        return cache_key(video, detector, self.conf, self.class_ids(detector.names))

    def detect(self, video: VideoInfo, detector: Detector, progress: Callable[[Progress], None] | None = None,
               cancel=None) -> Detections:
        """Run (or read from the cache) ``detector``, loaded from this spec, on every frame of ``video``."""
        from core.detect import detect_video

        return detect_video(video, detector, self.conf, self.class_ids(detector.names), self.cache_dir, progress, cancel)

    def cached(self, video: VideoInfo, detector: Detector) -> Detections | None:
        """The result of an identical earlier run, or None (nothing runs)."""
        from core.detect import cached_detections

        return cached_detections(video, detector, self.conf, self.class_ids(detector.names), self.cache_dir)


def resolve_classes(requested: Sequence[str] | None, names: dict[int, str]) -> list[int] | None:
    """Class names or ids -> ids of the model; None keeps every class."""
    if not requested:
        return None
    by_name = {name.lower(): i for i, name in names.items()}
    ids = []
    for item in requested:
        item = str(item)
        if item.lower() in by_name:
            ids.append(by_name[item.lower()])
        elif item.isascii() and item.isdigit() and len(item) <= 18 and int(item) in names:  # int() of 5,000 digits raises
            ids.append(int(item))
        else:
            sample = ", ".join(list(names.values())[:8])
            raise UserError(f"Unknown class {brief(item)}; the model's classes include: {sample}")
    return sorted(set(ids))


@dataclass(frozen=True)
class FlickerSettings:
    """Which flags: equal settings give equal flags on equal detections."""

    iou_track: float = DEFAULT_IOU_TRACK
    iou_assert: float = DEFAULT_IOU_ASSERT
    options: FlickerOptions = FlickerOptions()
    min_score: float = 0.0  # boxes below it are left out before the assertion (0: every detected box)
    assertions: tuple[str, ...] = (FLICKER,)  # flicker and any of its siblings (core.assertions), canonical order

    @classmethod
    def of_mode(cls, mode: str = DEFAULT_MODE, iou_track: float = DEFAULT_IOU_TRACK,
                iou_assert: float = DEFAULT_IOU_ASSERT, min_score: float = 0.0, assertions: tuple[str, ...] = (FLICKER,),
                **toggles) -> "FlickerSettings":
        """Settings for a mode name (reference takes no toggles; improved starts from its defaults)."""
        try:
            options = FlickerOptions.from_mode(mode, **toggles)
        except ValueError as exc:
            raise UserError(f"--{exc}") from None
        return cls(float(iou_track), float(iou_assert), options, float(min_score), tuple(assertions))

    @property
    def mode(self) -> str:
        return self.options.mode

    def check(self) -> "FlickerSettings":
        check_unit_interval("--iou-track", self.iou_track)
        check_unit_interval("--iou-assert", self.iou_assert)
        check_unit_interval("the minimum score", self.min_score)
        return self

    def with_thresholds(self, iou_track: float, iou_assert: float) -> "FlickerSettings":
        return replace(self, iou_track=float(iou_track), iou_assert=float(iou_assert))

    def kept(self, detections: Detections) -> Detections:
        """The boxes the assertion sees."""
        return detections.above(self.min_score) if self.min_score > 0 else detections

    def index(self, detections: Detections) -> FlickerIndex:
        """The threshold-free index of the kept boxes (build once, then evaluate any thresholds)."""
        return FlickerIndex.from_detections(self.kept(detections), self.options)

    def evaluate(self, detections: Detections) -> FlickerResult:
        return self.index(detections).evaluate(self.iou_track, self.iou_assert)

    def neighbours(self, detections: Detections) -> NeighbourIndex | None:
        """The sibling assertions' index of the kept boxes (None when flicker is the only one): build it
        once per detections and hand it to :meth:`siblings` and :meth:`corrections`."""
        return NeighbourIndex.from_detections(self.kept(detections)) if set(self.assertions) - {FLICKER} else None

    def corrections(self, detections: Detections, flicker: FlickerResult,
                    neighbours: NeighbourIndex | None = None) -> Corrections:
        """The corrected stream of these detections (``flicker``: their result at these settings)."""
        index = neighbours or self.neighbours(detections)
        return corrected(self.kept(detections), flicker.imputed_frame, flicker.imputed_xyxy, flicker.imputed_cls,
                         index, self.iou_track, self.assertions)

    @property
    def sibling_keys(self) -> tuple[str, ...]:
        """The metadata keys of the enabled sibling assertions (ghost, class_flip), in order: what :meth:`siblings` gives."""
        return tuple(METADATA_KEYS[name] for name in self.assertions if name != FLICKER)

    def siblings(self, detections: Detections, neighbours: NeighbourIndex | None = None) -> dict[str, np.ndarray]:
        """Per enabled sibling assertion, its metadata key and flags per frame at the tracking IoU."""
        others = [name for name in self.assertions if name != FLICKER]
        if not others:
            return {}
        index = neighbours or self.neighbours(detections)
        return {METADATA_KEYS[name]: index.flags(name, self.iou_track) for name in others}
