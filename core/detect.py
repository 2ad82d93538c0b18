"""Detection over a whole video: Ultralytics YOLO (or the offline HOG people detector), frames from
PyAV, results in one columnar :class:`Detections`, cached on disk.

Frames come from :func:`core.video.iter_frames`, never from Ultralytics' own video reader, so frame
i here is frame i in review and export. Three stages run at once, so the slowest sets the pace:
decoding (a thread, at most ``PREFETCH_BYTES`` ahead), preparing batches (letterbox and
normalise, a second thread) and inference (``detector.workers`` threads; results kept in order).

YOLO models run on a backend (:mod:`core.backends`): ``torch`` (the network on its device, FP16 on
CUDA) or ``onnx`` (an ONNX Runtime session on an export cached per weights). ``auto`` picks ONNX
on the CPU, where it is faster (bench/detect.py), and PyTorch otherwise. The two backends' outputs differ
in the last float digits, so each has its own detector fingerprint (and detection cache entries).
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from core import paths
from core.backends import (FrameBoxes, OnnxBackend, TorchBackend, cached_export_is_ours, describe, export_onnx,
                           onnx_export_path, onnxruntime_available)
from core.detections import Detections
from core.errors import DetectionCancelled, DetectorError, RefusedWeights, UserError
from core.settings import BACKENDS, BUILTIN_HOG, DEFAULT_CONF  # noqa: F401  (BACKENDS: checked in resolve_backend)
from core.video import TruncatedVideoWarning, VideoInfo, iter_frames

os.environ.setdefault("YOLO_OFFLINE", "1")  # never let Ultralytics probe the network
os.environ.setdefault("YOLO_VERBOSE", "False")
# Ultralytics' own weights_only loading and eval-free yaml parsing, for every load in this process
# (it takes effect when core.detect is imported before ultralytics). Only a default: check_checkpoint
# and check_model_yaml hold whatever the user's environment says.
os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")

MODEL_SUFFIXES = (".pt", ".onnx", ".yaml", ".yml")
CACHE_VERSION = "3"
PREFETCH_BYTES = 256 << 20  # decoded frames queued for the model: 41 at 1080p, 5 at 4096x4096
BATCH_BYTES = 512 << 20  # a GPU batch of 32 frames is capped to this many bytes of frames
PREPARED_BATCHES = 2  # letterboxed batches queued for inference

_HOG_WINDOW = (64, 128)  # width, height of OpenCV's people detector window
T = TypeVar("T")
R = TypeVar("R")


class BackendFallbackWarning(UserWarning):
    """The ONNX backend could not be built; the model runs on PyTorch instead."""


class CacheWarning(UserWarning):
    """A finished detection run could not be cached; the next identical run detects again."""


def keep_cached(detections: Detections, cache_file: Path) -> None:
    """Cache a finished run's detections. A cache that cannot be written (its disk full, a file where its folder goes,
    made read-only) costs the next identical run its time, never this run's boxes: said, not raised."""
    try:
        detections.save_cached(cache_file)
    except (OSError, UserError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        warnings.warn(f"Detections not cached in {cache_file.parent.parent} ({reason}): an identical run detects again",
                      CacheWarning, stacklevel=2)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    fps: float
    eta_s: float
    stage_fps: Mapping[str, float] = field(default_factory=dict)  # decode / prepare / infer (per worker), each alone


class Detector(Protocol):
    names: dict[int, str]
    fingerprint: str  # changes whenever the model's outputs could change
    batch_size: int
    workers: int  # batches inferred at once
    device: str

    def prepare(self, frames: Sequence[np.ndarray]) -> object:
        """CPU work on a batch of same-sized BGR frames; runs in its own thread, ahead of ``infer``."""

    def infer(self, prepared: object, conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        """Boxes for a prepared batch."""

    def detect(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        """Boxes for a batch of BGR frames: ``infer(prepare(frames))``."""


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks the first CUDA GPU when one is present, else the CPU."""
    if device == "cpu" or (device == "auto" and _no_gpu_driver()):
        return "cpu"  # without importing torch (3 s here), which the ONNX backend does not need
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(f"Device {device!r} asked for, but no CUDA GPU is available here")
    if not device.startswith("cuda"):
        raise DetectorError(f"Unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    return device


def _no_gpu_driver() -> bool:
    """On Linux, torch sees a GPU only through the NVIDIA (or ROCm) kernel driver."""
    return sys.platform.startswith("linux") and not any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/kfd"))


def resolve_backend(backend: str, suffix: str, device: str) -> str:
    """``auto``: ONNX Runtime on the CPU when it is installed, PyTorch otherwise; an ``.onnx`` file
    always runs on ONNX Runtime."""
    if backend not in BACKENDS:
        raise DetectorError(f"Unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    if suffix == ".onnx":
        if backend == "torch":
            raise DetectorError("An .onnx model runs on ONNX Runtime: use --backend auto or onnx")
        return "onnx"
    if backend == "auto":
        return "onnx" if device == "cpu" and onnxruntime_available() else "torch"
    return backend


DAMAGED_CHECKPOINT_SIGNS = ("PytorchStreamReader", "legacy .tar", "magic number")  # torch's RuntimeErrors for a bad file


def check_checkpoint(path: Path) -> None:
    """Refuse a ``.pt`` that would run code when unpickled, before anything unpickles it freely.

    The check is a real load with torch's ``weights_only`` unpickler against Ultralytics' allow-list
    of checkpoint classes (its own safe-load mode): model layers, tensors and plain data pass;
    anything else (``os.system``, ``eval``, ...) is refused with the global that asked for it.
    """
    import torch
    from ultralytics.nn.tasks import torch_safe_load

    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):  # Ultralytics would load unsafely
        raise DetectorError(f"Loading {path.name} safely needs torch >= 2.6 (this is {torch.__version__})")
    not_a_model = f"{path.name} is not an Ultralytics model checkpoint (what model.save or training writes)"

    def damaged(exc: BaseException | None) -> str:
        said = describe(exc).split(". ")[0].rstrip(".") if isinstance(exc, RuntimeError) else ""
        why = said if said and "weights_only" not in said else "not a PyTorch checkpoint"  # zeros read as "legacy .tar"
        return f"Could not load model {path.name}: it is empty, cut short or damaged ({why})"

    try:
        checkpoint, _ = torch_safe_load(str(path), safe_only=True)
    except AttributeError as exc:  # a bare object (a tensor, a list) saved with torch.save: Ultralytics looks for its .model
        if "'model'" not in str(exc):
            raise
        raise RefusedWeights(not_a_model) from None
    except TypeError as exc:
        if "is not a loadable checkpoint" in str(exc):  # Ultralytics' words for a file torch could not open at all
            raise RefusedWeights(damaged(exc.__cause__)) from None
        if not isinstance(exc.__cause__, pickle.UnpicklingError):
            raise
        detail = str(exc.__cause__)
        found = re.search(r"GLOBAL (\S+)", detail)
        if found:
            raise RefusedWeights(f"flicker-review refuses to load {path.name}: it contains code (pickle global "
                                 f"{found.group(1)}), not just model weights; use weights from a source you trust") from None
        lines = [line.strip() for line in detail.splitlines() if line.strip()]
        reason = lines[-2] if len(lines) > 1 else describe(exc.__cause__)  # the last line points to torch's docs
        raise RefusedWeights(f"Could not load model {path.name}: it is not a checkpoint that loads safely ({reason})") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, pickle.UnpicklingError) as exc:
        # zeros, a cut file, text: torch's words go on to advise loading it unsafely, which no one should do with such a
        # file. A RuntimeError of another kind (out of memory) is no verdict on the file: the upload is kept
        if isinstance(exc, RuntimeError) and not any(sign in str(exc) for sign in DAMAGED_CHECKPOINT_SIGNS):
            raise
        raise RefusedWeights(damaged(exc)) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("ema") or checkpoint.get("model"), torch.nn.Module):
        # plain data where the model goes ({"ema": {"a": 1}}): Ultralytics' own words point to a model to download
        raise RefusedWeights(not_a_model)


class YoloDetector:
    """Any Ultralytics detection model from a path: ``.pt``, ``.onnx``, or a model ``.yaml``.

    A ``.yaml`` (a file, or a name Ultralytics ships such as ``yolov8n.yaml``) builds the network
    with random weights, seeded so that the same yaml always gives the same model: the real code
    path, without downloads. ``backend`` is ``auto``, ``torch`` or ``onnx`` (see the module doc);
    ONNX exports are cached under ``cache_dir/onnx``.
    """

    def __init__(self, weights: str | Path, device: str = "auto", imgsz: int = 640, batch_size: int | None = None,
                 backend: str = "auto", cache_dir: Path | None = None):
        self.weights = str(weights)
        self._suffix = Path(self.weights).suffix.lower()
        self._local = paths.expand_home(self.weights)
        _check_weights_path(self.weights, self._local, self._suffix)
        self.device = resolve_device(device)
        self.imgsz = imgsz
        # CPU: batching buys nothing (measured in bench/detect.py) and delays the progress bar
        self.batch_size = batch_size or (32 if self.device.startswith("cuda") else 1)
        content = paths.hash_file(self._local) if self._local.is_file() else f"ultralytics-cfg:{self.weights}"
        self._cache_dir = cache_dir or paths.cache_dir()
        requested = resolve_backend(backend, self._suffix, self.device)
        self.backend = self._open_onnx(content, fall_back=backend == "auto") if requested == "onnx" else self._torch()
        self.half = isinstance(self.backend, TorchBackend) and self.device.startswith("cuda")
        self.workers = self.backend.workers
        self.names = self.backend.names
        self.fingerprint = f"yolo:{content}:seed0:imgsz{imgsz}:{self.backend.fingerprint}"

    @cached_property
    def model(self):
        """The Ultralytics model, loaded (safely) on first use: an ONNX run needs it only to export."""
        return _load_yolo(self.weights, self._local, self._suffix)

    def _torch(self) -> TorchBackend:
        half = self.device.startswith("cuda")
        return TorchBackend(self.model.model, self.device, half, self.imgsz)

    def _open_onnx(self, content: str, fall_back: bool) -> OnnxBackend | TorchBackend:
        name = Path(self.weights).name
        try:
            if self._suffix == ".onnx":
                return OnnxBackend(self._local, self.device, self.imgsz)
            return self._cached_onnx(content)
        except DetectorError:
            raise
        except Exception as exc:  # exporter and runtime raise many types
            if self._suffix == ".onnx":
                raise DetectorError(f"Could not load model {name}: {describe(exc)}") from None
            if not fall_back:
                raise DetectorError(f"Could not run {name} on ONNX Runtime: {describe(exc)}") from None
            warnings.warn(f"ONNX export of {name} failed ({describe(exc)}); running it on PyTorch instead",
                          BackendFallbackWarning, stacklevel=3)
            return self._torch()

    def _cached_onnx(self, content: str) -> OnnxBackend:
        target = onnx_export_path(self._cache_dir, content, self.imgsz)
        if cached_export_is_ours(target):
            try:
                return OnnxBackend(target, self.device, self.imgsz)
            except Exception:
                pass  # a damaged cache entry is exported again
        target.unlink(missing_ok=True)
        export_onnx(self.model.model, target, self.imgsz)
        return OnnxBackend(target, self.device, self.imgsz)

    def embed(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """The network's own features for a batch of BGR frames, pooled per frame (Ultralytics' embed)."""
        vectors = self.model.embed(list(frames), imgsz=self.imgsz, device=self.device, half=self.half, verbose=False)
        return np.stack([v.float().cpu().numpy() for v in vectors])

    def prepare(self, frames: Sequence[np.ndarray]) -> object:
        return self.backend.prepare(frames)

    def infer(self, prepared: object, conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        return self.backend.infer(prepared, conf, classes)

    def detect(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        return [boxes for run in batches(frames, len(frames)) for boxes in self.infer(self.prepare(run), conf, classes)]


def _check_weights_path(weights: str, local: Path, suffix: str) -> None:
    if suffix not in MODEL_SUFFIXES:
        raise RefusedWeights(f"Unsupported model file {Path(weights).name!r}: expected one of {', '.join(MODEL_SUFFIXES)}")
    if os.path.lexists(local) and not local.is_file():
        raise DetectorError(f"Model file {weights} is not a regular file")
    if suffix in (".pt", ".onnx") and not local.is_file():
        # Ultralytics would try to download a missing .pt by name; we never go online.
        raise DetectorError(f"Weights file not found: {weights} (weights cannot be downloaded here; pass a local path)")


def _load_yolo(weights: str, local: Path, suffix: str):
    import torch
    from ultralytics import YOLO

    try:
        if suffix in (".yaml", ".yml"):
            torch.manual_seed(0)
            with _checked_model_yaml(weights, local) as path:
                model = YOLO(path, task="detect")
        else:
            if suffix == ".pt":
                check_checkpoint(local)
            model = YOLO(str(local) if local.is_file() else weights, task="detect")
    except UserError:  # DetectorError included
        raise
    except Exception as exc:  # Ultralytics raises many types for a bad file
        raise DetectorError(f"Could not load model {Path(weights).name}: {describe(exc)}") from None
    if model.task != "detect":
        raise RefusedWeights(f"{Path(weights).name} is a {model.task} model; a detection model is needed")
    return model


MAX_MODEL_YAML_BYTES = 1 << 20
MODEL_YAML_LIMITS = {"layers": 1000, "repeats": 64, "number": 8192, "nc": 10_000, "gain": 4}  # real: 400, 9, 2048, 80, 1.5
_ACTIVATION = re.compile(r"(?:torch\.)?nn\.([A-Za-z]\w*)\(\)")


@contextmanager
def _checked_model_yaml(weights: str, local: Path) -> Iterator[str]:
    """The model YAML Ultralytics is to build, checked first (:func:`check_model_yaml`); a local
    file is handed over as a private copy of the bytes checked, under its own name (the name gives
    the scale), so it cannot change between the check and the build. A bare name is a YAML shipped
    inside Ultralytics (read by its own loader, checked all the same). Anything at that path, a
    FIFO or a device included, is read as a local file (and refused if it is not a regular one)."""
    if not os.path.lexists(local):
        from ultralytics.nn.tasks import yaml_model_load

        check_model_yaml(yaml_model_load(weights), Path(weights).name)
        yield weights
        return
    from core.bounded import decode_utf8, load_yaml, read_capped

    data = read_capped(local, MAX_MODEL_YAML_BYTES, "Model file")
    check_model_yaml(load_yaml(decode_utf8(data, f"Model file {local.name}"), f"Model file {local.name}"), local.name)
    with tempfile.TemporaryDirectory(prefix="model-yaml-") as folder:
        copy = Path(folder) / local.name
        copy.write_bytes(data)
        yield str(copy)


def check_model_yaml(config: object, name: str) -> None:
    """Refuse a model YAML that Ultralytics would turn into code, whatever ``ULTRALYTICS_SAFE_LOAD``
    says: with it off, ``activation:`` is passed to ``eval`` and a layer's module name is looked up
    among all of Ultralytics' globals (its loaders included) and called with the YAML's arguments.
    Allowed: an activation ``nn.<Layer>()`` without arguments, and layer modules that are torch
    ``nn.Module`` classes (``Conv``, ``nn.Upsample``, ...); numbers within bounds real models keep."""
    import torch
    import ultralytics.nn.tasks as tasks

    def refuse(problem: str) -> DetectorError:
        return DetectorError(f"flicker-review refuses to build {name}: {problem}")

    if not isinstance(config, dict):
        raise refuse("it is not a model definition (a mapping with backbone and head)")
    activation = config.get("activation")
    if activation is not None:
        found = _ACTIVATION.fullmatch(activation) if isinstance(activation, str) else None
        layer = getattr(torch.nn, found.group(1), None) if found else None
        if not (isinstance(layer, type) and issubclass(layer, torch.nn.Module)):
            raise refuse("its activation is not a plain nn.<Layer>() (it would be evaluated as Python code)")
    layers = config.get("backbone"), config.get("head")
    if not all(isinstance(part, list) for part in layers) or sum(map(len, layers)) > MODEL_YAML_LIMITS["layers"]:
        raise refuse(f"backbone and head must be lists of at most {MODEL_YAML_LIMITS['layers']} layers")
    nc = config.get("nc", 80)
    if not (isinstance(nc, int) and 0 < nc <= MODEL_YAML_LIMITS["nc"]):
        raise refuse(f"nc must be a class count in 1..{MODEL_YAML_LIMITS['nc']}")
    scales = config.get("scales") or {}
    gains = [config.get("depth_multiple", 1.0), config.get("width_multiple", 1.0),
             *(gain for triple in (scales.values() if isinstance(scales, dict) else [None]) for gain in
               (triple[:2] if isinstance(triple, list) and len(triple) == 3 else [None]))]
    if not all(isinstance(g, (int, float)) and 0 < g <= MODEL_YAML_LIMITS["gain"] for g in gains):
        raise refuse(f"depth and width gains must be numbers in (0, {MODEL_YAML_LIMITS['gain']}]")
    for k, layer in enumerate(layers[0] + layers[1]):
        if not (isinstance(layer, list) and len(layer) == 4 and isinstance(layer[2], str) and isinstance(layer[3], list)):
            raise refuse(f"layer {k} is not [from, repeats, module, args]")
        _from, repeats, module, args = layer
        if not _is_model_layer(module, torch, tasks):
            raise refuse(f"layer {k}'s module is not a model layer (only torch nn.Module classes are built)")
        if not (isinstance(repeats, int) and 0 < repeats <= MODEL_YAML_LIMITS["repeats"]):
            raise refuse(f"layer {k} repeats must be in 1..{MODEL_YAML_LIMITS['repeats']}")
        if any(isinstance(a, (int, float)) and not abs(a) <= MODEL_YAML_LIMITS["number"] for a in args):
            raise refuse(f"layer {k} has an argument beyond {MODEL_YAML_LIMITS['number']}")


def _is_model_layer(module: str, torch, tasks) -> bool:
    """How Ultralytics' parse_model resolves a module name, without calling anything."""
    for prefix, namespace in (("nn.", torch.nn), ("torchvision.ops.", None)):
        if module.startswith(prefix):
            name = module[len(prefix):]
            if namespace is None:
                import torchvision.ops as namespace
            break
    else:
        name, namespace = module, tasks
    found = getattr(namespace, name, None) if name.isidentifier() and not name.startswith("_") else None
    return isinstance(found, type) and issubclass(found, torch.nn.Module)


class HogPeopleDetector:
    """OpenCV's HOG + linear SVM pedestrian detector: a real detector that works fully offline.

    Speed: the image pyramid is capped at 16 levels (people up to ~2.2x the 128 px window), which
    on the bundled sample keeps the detections of OpenCV's default settings while running ~30%
    faster and dropping the huge boxes the extra levels produce. Scores: the SVM margin ``w`` is
    mapped to ``1 - exp(-w)``, a monotone map into [0, 1).
    """

    names = {0: "person"}  # COCO id 0, as in YOLO models, so exports from both agree
    device = "cpu"
    batch_size = 1
    workers = 1

    def __init__(self, pyramid_levels: int = 16, scale: float = 1.05, win_stride: int = 8):
        import cv2

        self._hog = cv2.HOGDescriptor(_HOG_WINDOW, (16, 16), (8, 8), (8, 8), 9, 1, -1, 0, 0.2, True, pyramid_levels)
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._kwargs = dict(winStride=(win_stride, win_stride), padding=(8, 8), scale=scale)
        # kept when infer began sorting each frame's boxes: _run already stored every cache entry in that order
        self.fingerprint = f"hog-people:cv{cv2.__version__}:levels{pyramid_levels}:scale{scale}:stride{win_stride}"

    def prepare(self, frames: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        return frames  # the pyramid is the work, and it belongs to detectMultiScale

    def infer(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        out = []
        for frame in frames:
            if frame.shape[0] < _HOG_WINDOW[1] or frame.shape[1] < _HOG_WINDOW[0]:
                # OpenCV crashes the process on images smaller than the window; nobody fits anyway
                out.append((np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int32)))
                continue
            rects, weights = self._hog.detectMultiScale(frame, **self._kwargs)
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            score = (1.0 - np.exp(-np.clip(np.asarray(weights, np.float32).reshape(-1), 0, None))).astype(np.float32)
            keep = score > conf  # above the floor, as the YOLO backends keep them
            if classes is not None and 0 not in classes:
                keep[:] = False
            xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
            # OpenCV gathers the pyramid's levels from its threads in whatever order they finish: sorted (by score,
            # as the YOLO backends give them, then by place) one frame's boxes come out the same on every run
            order = np.lexsort((*xyxy.T[::-1], -score))
            order = order[keep[order]]
            out.append((xyxy[order], score[order], np.zeros(len(order), np.int32)))
        return out

    def detect(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        return self.infer(self.prepare(frames), conf, classes)


def load_detector(weights: str | Path | None = None, device: str = "auto", imgsz: int = 640, backend: str = "auto",
                  cache_dir: Path | None = None) -> Detector:
    """``None`` or ``builtin:hog-people`` gives the offline HOG detector; anything else is a model path."""
    if weights is None or str(weights) == BUILTIN_HOG:
        return HogPeopleDetector()
    return YoloDetector(weights, device=device, imgsz=imgsz, backend=backend, cache_dir=cache_dir)


def cache_key(video: VideoInfo, detector: Detector, conf: float, classes: Sequence[int] | None) -> str:
    parts = [CACHE_VERSION, video.fingerprint, str(video.frame_count), detector.fingerprint, f"{conf:.6g}",
             ",".join(map(str, sorted(classes))) if classes else "all"]
    if video.rotation:  # boxes found on the frames as shown (turned); none cached before were
        parts.append(f"rotation {video.rotation}")
    if video.reordered:  # frames counted in decode order; before, placed by timestamps that came out reordered
        parts.append("counted")
    if video.stream:  # not the first video stream: every entry before streams.best held the first one's boxes
        parts.append(f"video stream {video.stream}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def detect_video(
    video: VideoInfo,
    detector: Detector,
    conf: float = DEFAULT_CONF,
    classes: Sequence[int] | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Detections:
    """Run ``detector`` on every frame of ``video`` (or load the cached result of an identical run)."""
    if not 0.0 <= conf <= 1.0:
        raise DetectorError(f"Confidence floor must be in [0, 1], got {conf}")
    unknown = sorted(set(classes or ()) - set(detector.names))
    if unknown:
        raise DetectorError(f"Unknown class ids {unknown}; the model has {len(detector.names)} classes")
    detections = cached_detections(video, detector, conf, classes, cache_dir)
    if detections is not None:
        if progress:
            progress(Progress(detections.n_frames, detections.n_frames, 0.0, 0.0))
    else:
        detections = _run(video, detector, conf, classes, progress, cancel)
        keep_cached(detections, _cache_file(video, detector, conf, classes, cache_dir))
    if detections.decode_warning:  # in the caller's thread, cached or not: a rerun from the cache says it too
        warnings.warn(detections.decode_warning, TruncatedVideoWarning, stacklevel=2)
    return detections


def _cache_file(video, detector, conf, classes, cache_dir) -> Path:
    return (cache_dir or paths.cache_dir()) / "detections" / f"{cache_key(video, detector, conf, classes)}.npz"


def cached_detections(video: VideoInfo, detector: Detector, conf: float = DEFAULT_CONF,
                      classes: Sequence[int] | None = None, cache_dir: Path | None = None) -> Detections | None:
    """The result of an identical earlier run, or None; failing that, an earlier run's at a lower
    confidence floor (one of the hundredths a person types) with the boxes under ``conf`` left out,
    which is what a run at ``conf`` finds: the boxes under it never suppressed one above it. An
    entry that is damaged, or that does not cover every frame the video decodes to, is dropped and
    recomputed, never trusted."""
    for floor in _floors_at_or_below(conf):
        detections = _cache_entry(_cache_file(video, detector, floor, classes, cache_dir), video)
        if detections is not None:
            return detections if floor == conf else detections.select(detections.score > conf)  # as a run keeps them
    return None


def _floors_at_or_below(conf: float) -> list[float]:
    """``conf`` first, then the lower floors in hundredths, nearest first (so the fewest boxes to load)."""
    return [conf] + [k / 100 for k in range(math.ceil(conf * 100) - 1, -1, -1) if k / 100 < conf]


def _cache_entry(cache_file: Path, video: VideoInfo) -> Detections | None:
    if not cache_file.is_file():
        return None
    try:
        detections = Detections.load(cache_file)
    except (OSError, ValueError):  # unreadable or damaged (Detections.load)
        detections = None
    if detections is None or detections.n_frames != video.frame_count:
        cache_file.unlink(missing_ok=True)
        return None
    paths.mark_used(cache_file)
    return detections


_DONE = object()  # end of a stream


class StageClock:
    """Busy seconds and frames per pipeline stage; a stage run by several workers adds up their
    seconds, so its fps is one worker's."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.frames: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str, frames: int) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self._book(name, time.perf_counter() - start, frames)

    def timed(self, name: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, with the time spent producing each one booked to ``name``."""
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            item = next(iterator, _DONE)
            if item is _DONE:
                return
            self._book(name, time.perf_counter() - start, 1)
            yield item

    def _book(self, name: str, seconds: float, frames: int) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.frames[name] = self.frames.get(name, 0) + frames

    def fps(self) -> dict[str, float]:
        return {name: self.frames[name] / s for name, s in self.seconds.items() if s > 0}


def _run(video, detector, conf, classes, progress, cancel) -> Detections:
    clock = StageClock()
    damage: list[str] = []  # said by the decode thread; warned here and kept with the boxes
    decoded = _in_background(clock.timed("decode", _bgr_frames(video, damage.append)), PREFETCH_BYTES, cost=lambda f: f.nbytes)
    prepared = _in_background(_prepared(detector, batches(decoded, _batch_size(detector, video)), clock),
                              PREPARED_BATCHES)

    def infer(item: tuple[int, object]) -> list[FrameBoxes]:
        count, batch = item
        with clock.stage("infer", count):
            return _infer(detector, batch, conf, classes)

    per_frame: list[FrameBoxes] = []
    start = time.perf_counter()
    # on exit: wait for running batches, then stop the prepare and decode threads (also on cancel or error)
    with closing(decoded), closing(prepared), ThreadPoolExecutor(detector.workers, "infer") as pool:
        for boxes in _in_order(pool, infer, prepared, detector.workers):
            if cancel is not None and cancel.is_set():
                raise DetectionCancelled(f"Detection on {video.name} cancelled after {len(per_frame)} frames")
            per_frame.extend(boxes)
            if progress:
                elapsed = time.perf_counter() - start
                fps = len(per_frame) / elapsed if elapsed > 0 else 0.0
                remaining = max(video.frame_count - len(per_frame), 0)
                progress(Progress(len(per_frame), video.frame_count, fps, remaining / fps if fps else 0.0, clock.fps()))
    size = (video.width, video.height)
    bounds = np.asarray([*size, *size], np.float32)
    per_frame = [(np.clip(xyxy, 0, bounds), score, cls) for xyxy, score, cls in per_frame]
    detections = Detections.from_frames(per_frame, detector.names, image_size=size).in_canonical_order()
    return replace(detections, decode_warning="; ".join(damage)) if damage else detections


def _in_order(pool: ThreadPoolExecutor, work: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``work`` over ``items`` on ``pool``, ``workers`` at a time plus one queued; results in order."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) > workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _bgr_frames(video: VideoInfo, on_damage: Callable[[str], None]) -> Iterator[np.ndarray]:
    """Every frame the probe counted, in order (a damaged one repeats the frame before: iter_frames)."""
    return (frame for _, frame in iter_frames(video, pixel_format="bgr24", on_damage=on_damage))


def _batch_size(detector: Detector, video: VideoInfo) -> int:
    return max(1, min(detector.batch_size, BATCH_BYTES // max(video.width * video.height * 3, 1)))


def _prepared(detector: Detector, frame_batches: Iterable[list[np.ndarray]], clock: StageClock) -> Iterator[tuple]:
    for batch in frame_batches:
        with clock.stage("prepare", len(batch)):
            prepared = detector.prepare(batch)
        yield len(batch), prepared


def _infer(detector: Detector, prepared: object, conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
    try:
        return detector.infer(prepared, conf, classes)
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise DetectorError("The GPU ran out of memory: pick a smaller model or image size") from None
        raise


def _in_background(items: Iterator[T], budget: int, cost: Callable[[T], int] = lambda _: 1) -> Iterator[T]:
    """Produce ``items`` in a thread (PyAV, OpenCV and the runtimes release the GIL) at most ``budget``
    ahead of the consumer, counted in ``cost`` units (one item always fits, however costly).
    An exception in the producer is raised in the consumer; closing the consumer stops the producer."""
    ready: deque = deque()
    condition = threading.Condition()
    queued = 0
    stop = False

    def put(item, size: int) -> bool:
        nonlocal queued
        with condition:
            condition.wait_for(lambda: stop or not ready or queued + size <= budget)
            if stop:
                return False
            ready.append((item, size))
            queued += size
            condition.notify_all()
            return True

    def produce() -> None:
        outcome: object = _DONE
        try:
            for item in items:
                if not put(item, cost(item)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            outcome = exc
        finally:
            getattr(items, "close", lambda: None)()  # stops an upstream stage from this, its thread
        put(outcome, 0)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while True:
            with condition:
                condition.wait_for(lambda: ready)
                item, size = ready.popleft()
                queued -= size
                condition.notify_all()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        with condition:
            stop = True
            condition.notify_all()
        worker.join()


def batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive lists of up to ``size`` frames; a list also ends where the frame size changes,
    so every batch stacks into one array."""
    batch: list[np.ndarray] = []
    for frame in frames:
        if batch and (len(batch) == size or frame.shape != batch[0].shape):
            yield batch
            batch = []
        batch.append(frame)
    if batch:
        yield batch
