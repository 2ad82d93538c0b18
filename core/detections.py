"""One columnar type for every box of a whole video.

The flicker engine, the timeline and the export all read columns, so detections are stored as
flat numpy arrays sorted by frame, never as a list of dicts per box.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from core.paths import prune_results, write_atomic


class FrameDetections(NamedTuple):
    """The boxes of one frame: views into the video's columns (no copies)."""

    xyxy: np.ndarray  # (K, 4) float32
    score: np.ndarray  # (K,) float32
    cls: np.ndarray  # (K,) int32


@dataclass(frozen=True)
class Detections:
    """Boxes of a video: ``frame`` (N,) int32 sorted ascending, ``xyxy`` (N, 4) float32 in pixels,
    ``score`` (N,) float32 in [0, 1], ``cls`` (N,) int32; ``names`` maps class id to name and
    ``n_frames`` is the video's frame count (frames without boxes have no rows)."""

    frame: np.ndarray
    xyxy: np.ndarray
    score: np.ndarray
    cls: np.ndarray
    names: dict[int, str]
    n_frames: int
    image_size: tuple[int, int] | None = None  # (width, height): boxes are kept inside it on export
    # what decoding the video for them warned of ("12 of 600 frames could not be decoded"), kept with the
    # boxes: a cached rerun and a batch's summary say it too
    decode_warning: str = ""
    offsets: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        frame = np.ascontiguousarray(self.frame, dtype=np.int32).reshape(-1)
        n = len(frame)
        object.__setattr__(self, "frame", frame)
        object.__setattr__(self, "xyxy", np.ascontiguousarray(self.xyxy, dtype=np.float32).reshape(n, 4))
        object.__setattr__(self, "score", np.ascontiguousarray(self.score, dtype=np.float32).reshape(n))
        object.__setattr__(self, "cls", np.ascontiguousarray(self.cls, dtype=np.int32).reshape(n))
        object.__setattr__(self, "names", {int(k): str(v) for k, v in self.names.items()})
        if n and (np.any(np.diff(frame) < 0) or frame[0] < 0 or frame[-1] >= self.n_frames):
            raise ValueError("Detections.frame must be sorted and inside 0..n_frames-1")
        # offsets[i]:offsets[i+1] are the rows of frame i
        offsets = np.searchsorted(frame, np.arange(self.n_frames + 1), side="left").astype(np.int64)
        object.__setattr__(self, "offsets", offsets)

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls, n_frames: int, names: dict[int, str], image_size: tuple[int, int] | None = None) -> "Detections":
        return cls(np.empty(0), np.empty((0, 4)), np.empty(0), np.empty(0), names, n_frames, image_size)

    @classmethod
    def from_frames(
        cls,
        per_frame: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        names: dict[int, str],
        image_size: tuple[int, int] | None = None,
    ) -> "Detections":
        """Build from one ``(xyxy, score, cls)`` triple per frame, in frame order."""
        counts = [len(score) for _, score, _ in per_frame]
        if not any(counts):
            return cls.empty(len(per_frame), names, image_size)
        return cls(
            frame=np.repeat(np.arange(len(per_frame)), counts),
            xyxy=np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b, _, _ in per_frame]),
            score=np.concatenate([np.asarray(s, np.float32).reshape(-1) for _, s, _ in per_frame]),
            cls=np.concatenate([np.asarray(c, np.int32).reshape(-1) for _, _, c in per_frame]),
            names=names,
            n_frames=len(per_frame),
            image_size=image_size,
        )

    def counts_per_frame(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def frames_with_boxes(self) -> int:
        """How many frames hold at least one box (a labels file may cover a few of the video's)."""
        return int(np.count_nonzero(self.counts_per_frame()))

    def hash_boxes(self, digest) -> None:
        """Feed every box (frame, corners, score, class), byte for byte, to a hashlib ``digest``: what
        names these boxes in a detection id and in an export's manifest."""
        for column in (self.frame, self.xyxy, self.score, self.cls):
            digest.update(np.ascontiguousarray(column).tobytes())

    def rows(self, frame: int) -> slice:
        return slice(int(self.offsets[frame]), int(self.offsets[frame + 1]))

    def at(self, frame: int) -> FrameDetections:
        rows = self.rows(frame)
        return FrameDetections(self.xyxy[rows], self.score[rows], self.cls[rows])

    @classmethod
    def merge(cls, parts: Sequence["Detections"]) -> "Detections":
        """Several videos as one, frame indices running on from video to video (class names of the first)."""
        offsets = np.cumsum([0] + [p.n_frames for p in parts])
        return cls(np.concatenate([p.frame + offset for p, offset in zip(parts, offsets)]),
                   np.concatenate([p.xyxy for p in parts]), np.concatenate([p.score for p in parts]),
                   np.concatenate([p.cls for p in parts]), parts[0].names, int(offsets[-1]))

    def in_canonical_order(self) -> "Detections":
        """The boxes of each frame by score (highest first), then position. OpenCV's HOG runs its
        scales in parallel and returns boxes in the order its threads finish; sorting makes two runs
        (or two batch engines) write the same files byte for byte."""
        order = np.lexsort((*self.xyxy.T[::-1], -self.score, self.frame))
        return self.select(order)

    def select(self, mask: np.ndarray) -> "Detections":
        """The rows where a boolean ``mask`` is true, or the rows an index array names (in frame order)."""
        return Detections(self.frame[mask], self.xyxy[mask], self.score[mask], self.cls[mask], self.names,
                          self.n_frames, self.image_size, self.decode_warning)

    def above(self, min_score: float) -> "Detections":
        return self.select(self.score >= min_score)

    def save(self, path: str | Path) -> None:
        """Write atomically, so an interrupted run never leaves a bad cache."""
        write_atomic(path, lambda f: np.savez(
            f,
            frame=self.frame,
            xyxy=self.xyxy,
            score=self.score,
            cls=self.cls,
            n_frames=np.int64(self.n_frames),
            image_size=np.asarray(self.image_size or (0, 0), np.int64),
            names=np.frombuffer(json.dumps(self.names).encode(), dtype=np.uint8),
            decode_warning=np.frombuffer(self.decode_warning.encode(), dtype=np.uint8),
        ))

    def save_cached(self, path: Path) -> None:
        """:meth:`save` into a results cache (a detection run's, or imported predictions'), which is
        then kept within its size (:func:`core.paths.prune_results`)."""
        self.save(path)
        prune_results(path)

    @classmethod
    def load(cls, path: str | Path) -> "Detections":
        """Boxes saved by :meth:`save_cached`; OSError when unreadable, ValueError when damaged (a cut
        or garbled file fails in the zip, the arrays or their JSON: one kind of error for callers)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                names = {int(k): v for k, v in json.loads(data["names"].tobytes().decode()).items()}
                width, height = (int(v) for v in data["image_size"])
                size = (width, height) if width and height else None
                said = data["decode_warning"].tobytes().decode() if "decode_warning" in data.files else ""  # older entries: none
                return cls(data["frame"], data["xyxy"], data["score"], data["cls"], names, int(data["n_frames"]), size, said)
        except (OSError, ValueError, MemoryError):
            raise
        except Exception as exc:  # a garbled zip or .npy header fails in many ways (BadZipFile, EOFError,
            # NotImplementedError "compression method", tokenize.TokenError, KeyError...): one for callers
            raise ValueError(f"{Path(path).name} is damaged ({type(exc).__name__}: {exc})") from None

    def lightly_xywh(self) -> np.ndarray:
        """The boxes as exported, see :func:`lightly_xywh`."""
        return lightly_xywh(self.xyxy, self.image_size)

    def to_predictions_list(self, file_names: list[str]) -> list[dict]:
        """The tutorial's ``all_predictions``: per frame ``{"file_name", "predictions": [{"category_id",
        "bbox": [x, y, w, h], "score"}]}`` with boxes from :meth:`lightly_xywh`."""
        if len(file_names) != self.n_frames:
            raise ValueError(f"{len(file_names)} file names for {self.n_frames} frames")
        bbox = self.lightly_xywh().tolist()
        score, cls = self.score.tolist(), self.cls.tolist()
        out = []
        for i, name in enumerate(file_names):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            preds = [{"category_id": cls[k], "bbox": bbox[k], "score": score[k]} for k in range(lo, hi)]
            out.append({"file_name": name, "predictions": preds})
        return out

    @classmethod
    def from_predictions_list(cls, predictions_list: list[dict], names: dict[int, str] | None = None) -> "Detections":
        """Inverse of :meth:`to_predictions_list` (xywh -> xyxy, kept exactly as given)."""
        per_frame = []
        for entry in predictions_list:
            preds = entry["predictions"]
            xyxy = xywh_to_xyxy(np.asarray([p["bbox"] for p in preds], np.float64))
            per_frame.append((xyxy, [p.get("score", 1.0) for p in preds], [p["category_id"] for p in preds]))
        if names is None:
            ids = sorted({int(p["category_id"]) for e in predictions_list for p in e["predictions"]})
            names = {i: str(i) for i in ids}
        return cls.from_frames(per_frame, names)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """``[x, y, w, h]`` rows to ``[x0, y0, x1, y1]`` in the input's float dtype."""
    xywh = np.asarray(xywh).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def lightly_xywh(xyxy: np.ndarray, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Integer ``[x, y, w, h]`` boxes for Lightly: the tutorial's conversion ``[int(x0), int(y0),
    int(x1 - x0), int(y1 - y0)]`` (truncation of float32 values), then made valid for Lightly:
    x, y >= 0, w, h >= 1, and inside the image when its size is known."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if image_size is not None:
        width, height = image_size
        xyxy = np.clip(xyxy, 0, np.asarray([width, height, width, height], np.float32))
    xywh = np.trunc(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)).astype(np.int64)
    xywh[:, :2] = np.maximum(xywh[:, :2], 0)
    if image_size is not None:
        width, height = image_size
        xywh[:, 0] = np.minimum(xywh[:, 0], width - 1)
        xywh[:, 1] = np.minimum(xywh[:, 1], height - 1)
        xywh[:, 2] = np.minimum(xywh[:, 2], width - xywh[:, 0])
        xywh[:, 3] = np.minimum(xywh[:, 3], height - xywh[:, 1])
    xywh[:, 2:] = np.maximum(xywh[:, 2:], 1)
    return xywh


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes, row-wise or broadcast (``box_iou(a[:, None], b[None])`` is the matrix), in
    float64; degenerate boxes give 0, not NaN. (Reference mode keeps the tutorial's own arithmetic.)"""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
