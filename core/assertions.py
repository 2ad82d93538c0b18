"""Flicker's siblings: the other errors a video detector makes between neighbouring frames.

* **ghost**: a box in frame i that no box in frame i-1 and no box in frame i+1 overlaps at IoU >=
  the tracking IoU: an object that exists for one frame only (a false positive that appears and
  vanishes).
* **class flip**: a box in frame i whose best match in frame i-1 and best match in frame i+1
  (highest IoU, class ignored, each at IoU >= the tracking IoU) share one class that differs from
  the box's own.

Both look at frames 1 .. n-2 only (a frame needs both neighbours), at the boxes the settings keep
(the score floor applies before, as for flicker), and use plain float IoU. Like flicker they are
threshold-free indexes: :class:`NeighbourIndex` finds every box's best match in each neighbour
frame once; a tracking IoU is then one comparison per frame, milliseconds over a whole video.
What they cannot see, and how they were measured: docs/assertions.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.detections import Detections

FLICKER, GHOST, CLASS_FLIP = "flicker", "ghost", "class-flip"
ASSERTIONS = (FLICKER, GHOST, CLASS_FLIP)
METADATA_KEYS = {FLICKER: "flickering", GHOST: "ghost", CLASS_FLIP: "class_flip"}  # per-frame metadata of each
_NEVER = np.float32(-1.0)  # a box that cannot flip at any threshold
_PAIRS_PER_CHUNK = 1 << 20  # bounds the transient memory of the neighbour pairs


def parse_assertions(text: str) -> tuple[str, ...]:
    """``"flicker,ghost"`` -> the assertions in their canonical order; flicker is always there (its
    flags and metadata are what the export has always carried)."""
    from core.errors import UserError

    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(ASSERTIONS))
    if unknown:
        raise UserError(f"--assertions: unknown {', '.join(unknown)}; choose from {', '.join(ASSERTIONS)}")
    return tuple(name for name in ASSERTIONS if name in names | {FLICKER})


@dataclass(frozen=True)
class NeighbourIndex:
    """Per kept box, its best match in the previous and the next frame; frame-level summaries that
    make every tracking threshold a comparison."""

    n_frames: int
    ghost_overlap: np.ndarray  # (n_frames,) per frame, the smallest over its boxes of max(best prev IoU, best next IoU); inf: none
    flip_overlap: np.ndarray  # (n_frames,) per frame, the largest min(prev IoU, next IoU) of a box whose two matches share another class; -1: none
    box_frame: np.ndarray  # (B,) per box
    box_ghost: np.ndarray  # (B,) max(best prev IoU, best next IoU); inf outside frames 1..n-2
    box_flip: np.ndarray  # (B,) min(prev IoU, next IoU) where the neighbours agree on another class, else -1
    neighbour_class: np.ndarray  # (B,) the class both neighbours agree on (-1: they do not)

    @classmethod
    def from_detections(cls, detections: Detections) -> "NeighbourIndex":
        n = detections.n_frames
        (prev_iou, prev_cls), (next_iou, next_cls) = _best_matches(detections)
        frame = detections.frame.astype(np.int64)
        interior = (frame > 0) & (frame < n - 1)
        box_ghost = np.where(interior, np.maximum(prev_iou, next_iou), np.inf).astype(np.float32)
        agree = interior & (prev_cls >= 0) & (prev_cls == next_cls) & (prev_cls != detections.cls.astype(np.int64))
        box_flip = np.where(agree, np.minimum(prev_iou, next_iou), _NEVER).astype(np.float32)
        ghost_overlap = np.full(n, np.inf, np.float32)
        np.minimum.at(ghost_overlap, frame, box_ghost)
        flip_overlap = np.full(n, _NEVER, np.float32)
        np.maximum.at(flip_overlap, frame, box_flip)
        return cls(n, ghost_overlap, flip_overlap, frame, box_ghost, box_flip, np.where(agree, prev_cls, -1))

    def ghost_flags(self, iou_track: float) -> np.ndarray:
        """Frames with a box that no neighbour-frame box overlaps at IoU >= ``iou_track``."""
        return self.ghost_overlap < np.float32(iou_track)

    def class_flip_flags(self, iou_track: float) -> np.ndarray:
        """Frames with a box whose matches (IoU >= ``iou_track``) in both neighbours share another class."""
        return self.flip_overlap >= np.float32(iou_track)

    def flags(self, assertion: str, iou_track: float) -> np.ndarray:
        return self.ghost_flags(iou_track) if assertion == GHOST else self.class_flip_flags(iou_track)

    def ghost_boxes(self, iou_track: float) -> np.ndarray:
        """Indices (into the detections) of the boxes that make their frame a ghost frame."""
        return np.flatnonzero(self.box_ghost < np.float32(iou_track))

    def flipped_boxes(self, iou_track: float) -> np.ndarray:
        """Indices of the boxes whose class flips; ``neighbour_class`` holds the class they flip from."""
        return np.flatnonzero(self.box_flip >= np.float32(iou_track))


def _best_matches(detections: Detections) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Per box, the highest IoU with a box of the previous frame and that box's class, then the same
    for the next frame (0.0 and -1 where that frame has none). Every pair of boxes in frames (i, i+1)
    is scored once and serves both: as box i's next match and as box i+1's previous one."""
    n_boxes, classes = len(detections), detections.cls.astype(np.int64)
    prev_iou, next_iou = np.zeros(n_boxes, np.float32), np.zeros(n_boxes, np.float32)
    prev_cls, next_cls = np.full(n_boxes, -1, np.int64), np.full(n_boxes, -1, np.int64)
    counts, offsets = detections.counts_per_frame(), detections.offsets
    frames = np.arange(detections.n_frames - 1)
    work = counts[frames] * counts[frames + 1]
    columns = [np.ascontiguousarray(detections.xyxy[:, k], dtype=np.float32) for k in range(4)]
    for chunk in np.array_split(frames, max(1, int(work.sum() // _PAIRS_PER_CHUNK) + 1)):
        earlier, later, by_later = _pairs(chunk, counts, offsets)
        if not len(earlier):
            continue
        iou = _iou(columns, earlier, later)
        best = _first_best(earlier, iou)  # box i's best match in frame i+1
        next_iou[earlier[best]], next_cls[earlier[best]] = iou[best], classes[later[best]]
        later, earlier, iou = later[by_later], earlier[by_later], iou[by_later]
        best = _first_best(later, iou)  # box i+1's best match in frame i
        prev_iou[later[best]], prev_cls[later[best]] = iou[best], classes[earlier[best]]
    return (prev_iou, prev_cls), (next_iou, next_cls)


def _iou(columns: list[np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a[k] and b[k] in float32 (degenerate boxes give 0)."""
    x0, y0, x1, y1 = columns
    width = np.clip(np.minimum(x1[a], x1[b]) - np.maximum(x0[a], x0[b]), 0, None)
    height = np.clip(np.minimum(y1[a], y1[b]) - np.maximum(y0[a], y0[b]), 0, None)
    inter = width * height
    area = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = area[a] + area[b] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _first_best(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per run of equal ``group`` values (the pairs of one box, contiguous), the index of its first
    largest ``value``: the earliest box of the neighbour frame wins a tie, as in a plain loop."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(group)]))
    hits = np.flatnonzero(value == np.maximum.reduceat(value, starts)[run])
    return hits[np.r_[True, run[hits][1:] != run[hits][:-1]]]


def _pairs(frames: np.ndarray, counts: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (box of frame f, box of frame f+1) for f in ``frames`` as row indices, grouped by the
    earlier box, and the order that groups them by the later box instead (no sort: within one frame
    pair the a x b table is read column by column)."""
    a, b = counts[frames], counts[frames + 1]
    per_frame = a * b
    keep = per_frame > 0
    frames, a, b, per_frame = frames[keep], a[keep], b[keep], per_frame[keep]
    if not len(frames):
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    first = np.cumsum(per_frame) - per_frame
    start = np.repeat(first, per_frame)
    k = np.arange(per_frame.sum()) - start
    width, height = np.repeat(b, per_frame), np.repeat(a, per_frame)
    earlier = np.repeat(offsets[frames], per_frame) + k // width
    later = np.repeat(offsets[frames + 1], per_frame) + k % width
    by_later = start + (k % height) * width + k // height  # the k-th pair in later-major order
    return earlier, later, by_later


@dataclass(frozen=True)
class Corrections:
    """The assertions' weak labels (the Model Assertions paper's corrected stream): the boxes with
    flicker's imputed boxes added, ghost boxes removed and flipped classes set to the class both
    neighbours agree on, and one record per changed box, so nothing is silently invented."""

    detections: Detections
    changes: tuple[dict, ...]  # {"frame", "change": added | removed | reclassified, "xyxy", "class", "from_class"?}


def corrected(detections: Detections, imputed_frame: np.ndarray, imputed_xyxy: np.ndarray, imputed_cls: np.ndarray,
              index: NeighbourIndex | None, iou_track: float, assertions: tuple[str, ...]) -> Corrections:
    """``detections`` corrected by every enabled assertion at ``iou_track`` (ghost and class flip
    need ``index``); added boxes get score 1.0, as the imputed-box task writes them."""
    keep = np.ones(len(detections), bool)
    cls = detections.cls.astype(np.int64).copy()
    changes: list[dict] = []
    if GHOST in assertions:
        for row in index.ghost_boxes(iou_track).tolist():
            keep[row] = False
            changes.append(_change(detections.frame[row], "removed", detections.xyxy[row], cls[row]))
    if CLASS_FLIP in assertions:
        for row in index.flipped_boxes(iou_track).tolist():
            if keep[row]:
                changes.append({**_change(detections.frame[row], "reclassified", detections.xyxy[row],
                                          index.neighbour_class[row]), "from_class": int(cls[row])})
                cls[row] = index.neighbour_class[row]
    changes.extend(_change(f, "added", box, c) for f, box, c in zip(imputed_frame, imputed_xyxy, imputed_cls))
    frame = np.concatenate([detections.frame[keep], imputed_frame]).astype(np.int64)
    order = np.argsort(frame, kind="stable")
    boxes = Detections(frame[order], np.concatenate([detections.xyxy[keep], imputed_xyxy])[order],
                       np.concatenate([detections.score[keep], np.ones(len(imputed_frame))])[order],
                       np.concatenate([cls[keep], imputed_cls])[order], detections.names, detections.n_frames,
                       detections.image_size)
    return Corrections(boxes, tuple(sorted(changes, key=lambda change: change["frame"])))


def _change(frame, change: str, xyxy, cls) -> dict:
    return {"frame": int(frame), "change": change, "xyxy": [round(float(v), 2) for v in xyxy], "class": int(cls)}
