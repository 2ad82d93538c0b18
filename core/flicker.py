"""The flickering assertion: an object seen in frame i-k and i+k but missed in frame i.

Two modes (docs/flicker.md explains every difference):

* ``reference`` reproduces the tutorial's ``compute_flickering_assertion`` value for value, quirks
  included: boxes truncated to int xyxy, every prev x next pair above the tracking IoU counts (not
  one-to-one), classes ignored, the mean box truncated to int, torchvision's float32 IoU arithmetic.
* ``improved`` adds class-aware matching, greedy one-to-one matching, a wider window, float boxes,
  and the tutorial prose's median score for frames whose whole window is empty.

Speed comes from structure: the IoU of every prev x next pair and each pair's best IoU with the
centre frame do not depend on the thresholds, so :class:`FlickerIndex` computes them once per
video; :meth:`FlickerIndex.evaluate` is then a filter over those arrays.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from operator import itemgetter
from typing import Literal

import numpy as np

from core.detections import Detections, box_iou, xywh_to_xyxy

Mode = Literal["reference", "improved"]
MODES = ("reference", "improved")
DEFAULT_MODE: Mode = "reference"  # the tutorial, exactly
# The one set of default thresholds (app, CLI, export). The tutorial's *function* defaults to a
# tracking IoU of 0.9, which the drop-in keeps; its walkthrough runs it at 0.8 / 0.6.
DEFAULT_IOU_TRACK = 0.8
DEFAULT_IOU_ASSERT = 0.6
TUTORIAL_FUNCTION_IOU_TRACK = 0.9
MAX_BOXES_PER_FRAME = 1000  # Ultralytics keeps 300 per frame by default (max_det)
# Comparisons of one centre frame (its pairs x its boxes) beyond which boxes are stacked: 300 on one spot
# make 27 million a frame (hours for a video), a MOT20-like crowd of 300 people 1.9 million (51 ms a frame).
MAX_WORK_PER_FRAME = 4_000_000
_ROWS_PER_CHUNK = 1 << 19  # bounds the transient memory of the all-pairs and centre-candidate expansions


@dataclass(frozen=True)
class FlickerOptions:
    """Threshold-independent choices; each one changes what the index precomputes."""

    mode: Mode = DEFAULT_MODE
    class_aware: bool = False  # match prev/next and centre boxes of the same class only
    one_to_one: bool = False  # each prev box matches at most one next box (greedy by IoU)
    window: int = 1  # half window k: pairs (i-j, i+j) for j = 1..k; the tutorial's window of 3 is k=1
    empty_window_median: bool = False  # frames whose whole window is empty get the median score

    def __post_init__(self) -> None:
        if self.mode not in ("reference", "improved"):
            raise ValueError(f"mode must be 'reference' or 'improved', got {self.mode!r}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.mode == "reference" and (self.class_aware or self.one_to_one or self.window != 1 or self.empty_window_median):
            raise ValueError("reference mode reproduces the tutorial exactly and takes no options; use mode='improved'")

    @classmethod
    def improved(cls, class_aware: bool = True, one_to_one: bool = True, window: int = 2,
                 empty_window_median: bool = True) -> "FlickerOptions":
        return cls("improved", class_aware, one_to_one, window, empty_window_median)

    @classmethod
    def from_mode(cls, mode: str, **toggles) -> "FlickerOptions":
        """The options for a mode name: reference takes no toggles; improved starts from its
        defaults (:meth:`improved`) and applies the given ones."""
        if mode == "reference":
            return cls()
        if mode == "improved":
            return cls.improved(**toggles)
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


@dataclass(frozen=True)
class FlickerResult:
    """Flags, continuous scores and imputed boxes for one choice of thresholds."""

    flag_array: np.ndarray  # (n_frames,) bool
    score: np.ndarray  # (n_frames,) float32 in [0, 1]: how badly the worst tracked object is missed
    imputed_frame: np.ndarray  # (M,) int32, ascending
    imputed_xyxy: np.ndarray  # (M, 4): int32 in reference mode, float32 in improved mode
    imputed_cls: np.ndarray  # (M,) int32: class of the box in frame i-k

    @cached_property
    def flags(self) -> list[bool]:
        """One bool per frame, as the tutorial returns them."""
        return self.flag_array.tolist()

    @cached_property
    def imputed(self) -> list[list[list[list[int]]]]:
        """Per frame, the imputed boxes in the tutorial's nested form ``[[x0, y0, x1, y1]]``."""
        gc_was_enabled = gc.isenabled()
        gc.disable()  # thousands of small lists would trigger full collections over the caller's data
        try:
            out: list[list] = [[] for _ in range(len(self.flag_array))]
            boxes = np.trunc(self.imputed_xyxy).astype(np.int64).tolist()
            for frame, box in zip(self.imputed_frame.tolist(), boxes):
                out[frame].append([box])
        finally:
            if gc_was_enabled:
                gc.enable()
        return out

    @property
    def n_flagged(self) -> int:
        return int(self.flag_array.sum())

    def imputed_for(self, frame: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.imputed_frame, [frame, frame + 1])
        return self.imputed_xyxy[lo:hi]

    def imputed_cls_for(self, frame: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.imputed_frame, [frame, frame + 1])
        return self.imputed_cls[lo:hi]


def compute_flickering_assertion(predictions_list, iou_thresh_tracking=TUTORIAL_FUNCTION_IOU_TRACK,
                                 iou_thresh_assertion=DEFAULT_IOU_ASSERT):
    """Drop-in for the tutorial's function: same input, same output, value for value.

    Returns ``(flags, imputed)``: one bool per frame, and per frame a list of imputed boxes, each
    ``[[x0, y0, x1, y1]]`` of ints.
    """
    track = _check_threshold("iou_thresh_tracking", iou_thresh_tracking)
    columns = _tutorial_columns(predictions_list, "reference", with_classes=False)
    result = FlickerIndex.build(*columns, FlickerOptions(), min_iou_track=track).evaluate(track, iou_thresh_assertion)
    return result.flags, result.imputed


def _tutorial_columns(predictions_list: list[dict], mode: Mode, with_classes: bool = True):
    """Boxes per frame, xyxy boxes and classes from the tutorial's nested lists (without classes:
    zeros, for the drop-in, whose output has none; reading them is a tenth of its time)."""
    per_frame = list(map(itemgetter("predictions"), predictions_list))
    counts = np.fromiter(map(len, per_frame), np.int64, len(per_frame))
    n_boxes = int(counts.sum())
    bboxes = map(itemgetter("bbox"), chain.from_iterable(per_frame))
    xywh = np.fromiter(chain.from_iterable(bboxes), np.float64, 4 * n_boxes).reshape(-1, 4)
    if with_classes:
        classes = np.fromiter(map(itemgetter("category_id"), chain.from_iterable(per_frame)), np.int32, n_boxes)
    else:
        classes = np.zeros(n_boxes, np.int32)
    boxes = tutorial_xyxy_from_xywh(xywh) if mode == "reference" else xywh_to_xyxy(xywh).astype(np.float32)
    return counts, boxes, classes


def tutorial_xyxy_from_xywh(xywh: np.ndarray) -> np.ndarray:
    """The tutorial's ``bbox_converter`` then ``torch.tensor(..., dtype=torch.int)``:
    ``[x, y, x + w, y + h]`` computed in float64, truncated toward zero to int32."""
    return xywh_to_xyxy(np.asarray(xywh, np.float64)).astype(np.int32)  # float -> int truncates toward zero, like torch


def _check_threshold(name: str, value: float) -> float:
    if not isinstance(value, (int, float, np.floating)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FlickerIndex:
    """Everything about a video's boxes that does not depend on the IoU thresholds.

    Frozen, arrays read-only: one index is shared by every browser tab and thread.

    One row per candidate track pair ``(frame i, lag j, box a in i-j, box b in i+j)`` with
    IoU(a, b) > 0 (pairs with IoU 0 can never pass a threshold in [0, 1]), sorted by
    ``(i, j, a, b)`` like the tutorial's ``torch.nonzero`` loop. Memory is linear in the number of
    overlapping box pairs between frames, which is linear in the number of boxes for real video.
    """

    n_frames: int
    options: FlickerOptions
    pair_frame: np.ndarray  # (P,) int32: centre frame i
    pair_lag: np.ndarray  # (P,) int16: j
    pair_iou: np.ndarray  # (P,) float32: IoU of the prev and next box
    pair_best: np.ndarray  # (P,) float32: best IoU of the mean box with a centre box (-inf: none; +inf: NaN seen)
    pair_mean: np.ndarray  # (P, 4): the imputed box
    pair_cls: np.ndarray  # (P,) int32
    empty_window: np.ndarray = field(repr=False)  # (n_frames,) bool: all frames of the window are empty
    min_iou_track: float = 0.0  # pairs with IoU at or below it were left out: evaluate takes tracking IoUs >= it

    def __post_init__(self) -> None:
        for array in self._arrays():
            array.flags.writeable = False

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.pair_frame, self.pair_lag, self.pair_iou, self.pair_best, self.pair_mean, self.pair_cls,
                self.empty_window)

    @classmethod
    def from_predictions_list(cls, predictions_list: list[dict], options: FlickerOptions | None = None,
                              min_iou_track: float = 0.0) -> "FlickerIndex":
        """From the tutorial's list of ``{"file_name", "predictions": [{"category_id", "bbox", "score"}]}``."""
        options = options or FlickerOptions()
        return cls.build(*_tutorial_columns(predictions_list, options.mode), options, min_iou_track)

    @classmethod
    def from_detections(cls, detections: Detections, options: FlickerOptions | None = None) -> "FlickerIndex":
        """From columnar detections. Reference mode first applies the export's conversion
        (xyxy -> int xywh -> int xyxy), so the result equals the drop-in run on the exported
        predictions."""
        options = options or FlickerOptions()
        if options.mode == "reference":
            boxes = tutorial_xyxy_from_xywh(detections.lightly_xywh())
        else:
            boxes = detections.xyxy
        return cls.build(detections.counts_per_frame(), boxes, detections.cls, options)

    @classmethod
    def build(cls, counts: np.ndarray, boxes: np.ndarray, classes: np.ndarray, options: FlickerOptions,
              min_iou_track: float = 0.0) -> "FlickerIndex":
        """``min_iou_track`` > 0 leaves out the pairs no tracking threshold at or above it can use: a
        one-shot evaluation (the drop-in) then skips their centre-frame comparisons."""
        min_iou_track = _check_threshold("min_iou_track", min_iou_track)
        video = _Boxes.of(counts, boxes, classes)
        check_crowding(video.counts)
        counts, offsets, n = video.counts, video.offsets, len(video.counts)
        columns = _GrowingColumns(_empty_pairs(np.int32 if options.mode == "reference" else np.float32))
        chunks = _frame_chunks(counts, options.window)
        for done, (lo, hi) in enumerate(chunks, start=1):
            columns.append(_pairs_for_frames(lo, hi, video, options, np.float32(min_iou_track)), done / len(chunks))
        frame, lag, iou, best, mean, pair_cls = columns.finished()
        k = options.window
        window_total = offsets[np.minimum(np.arange(n) + k + 1, n)] - offsets[np.maximum(np.arange(n) - k, 0)]
        return cls(n_frames=n, options=options, pair_frame=frame, pair_lag=lag, pair_iou=iou, pair_best=best,
                   pair_mean=mean, pair_cls=pair_cls, empty_window=window_total == 0, min_iou_track=min_iou_track)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays())

    def evaluate(self, iou_track: float = DEFAULT_IOU_TRACK, iou_assert: float = DEFAULT_IOU_ASSERT) -> FlickerResult:
        """Flags and imputed boxes for these thresholds: a filter over the precomputed pairs.

        Comparisons happen in float32, as torchvision's IoU (a float32 tensor compared with a
        Python float) does in the tutorial.
        """
        track = np.float32(_check_threshold("iou_track", iou_track))
        if track < np.float32(self.min_iou_track):
            raise ValueError(f"iou_track {iou_track} is below {self.min_iou_track}, the least this index was built for")
        assert_ = np.float32(_check_threshold("iou_assert", iou_assert))
        active = self.pair_iou > track
        missing = np.flatnonzero(active & (self.pair_best < assert_))
        if self.options.window > 1:
            missing = self._drop_duplicate_imputations(missing, float(track))
        flags = np.zeros(self.n_frames, bool)
        flags[self.pair_frame[missing]] = True
        return FlickerResult(
            flag_array=flags,
            score=self._scores(active),
            imputed_frame=self.pair_frame[missing],
            imputed_xyxy=self.pair_mean[missing],
            imputed_cls=self.pair_cls[missing],
        )

    def _scores(self, active: np.ndarray) -> np.ndarray:
        """Per frame, the worst miss among its tracked objects: ``1 - best IoU`` (1 when the centre
        frame has no candidate box). Frames with no tracked object score 0."""
        best = self.pair_best[active]  # the one copy: cleaned in place (long videos hold tens of millions of pairs)
        frames = self.pair_frame[active]
        score = np.zeros(self.n_frames, np.float32)
        if len(best):
            np.nan_to_num(best, copy=False, posinf=1.0, neginf=0.0)
            np.clip(best, 0.0, 1.0, out=best)
            starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])  # pairs are sorted by frame
            score[frames[starts]] = 1.0 - np.minimum.reduceat(best, starts)  # = max of 1 - best: 1 - x is monotone
        if self.options.empty_window_median:
            checked = ~self.empty_window
            score[self.empty_window] = np.median(score[checked]) if checked.any() else 0.0
        return score

    def _drop_duplicate_imputations(self, missing: np.ndarray, track: float) -> np.ndarray:
        """With a window > 1 one object can be imputed from several lags: a box is dropped when it
        overlaps (IoU above the tracking threshold) a box imputed from a nearer lag in the same frame."""
        frames = self.pair_frame[missing]
        starts = np.flatnonzero(np.r_[True, np.diff(frames) != 0])
        sizes = np.diff(np.r_[starts, len(frames)])
        multi = sizes > 1
        if not multi.any():
            return missing
        _, u, v = _expand(starts[multi], sizes[multi], sizes[multi], starts[multi], starts[multi])
        nearer = self.pair_lag[missing[u]] < self.pair_lag[missing[v]]
        u, v = u[nearer], v[nearer]
        overlap = box_iou(self.pair_mean[missing[u]], self.pair_mean[missing[v]]) > track
        keep = np.ones(len(missing), bool)
        keep[v[overlap]] = False
        return missing[keep]


@dataclass(frozen=True)
class _Boxes:
    """A video's boxes laid out for the pair search, once per index build."""

    counts: np.ndarray  # (n_frames,) boxes per frame
    offsets: np.ndarray  # (n_frames + 1,) where each frame's boxes start
    boxes: np.ndarray  # (K, 4) xyxy
    columns: tuple[np.ndarray, ...]  # the four coordinates, each contiguous (fast gathers)
    classes: np.ndarray  # (K,) int32
    all_positive_area: bool  # then only a degenerate mean box can make a reference IoU 0/0

    @classmethod
    def of(cls, counts, boxes: np.ndarray, classes) -> "_Boxes":
        counts = np.asarray(counts, np.int64)
        return cls(counts, np.concatenate([[0], np.cumsum(counts)]), boxes,
                   tuple(np.ascontiguousarray(boxes[:, k]) for k in range(4)), np.asarray(classes, np.int32),
                   bool(np.all(_area(boxes) > 0)))


def check_crowding(counts: np.ndarray) -> None:
    """Refuse a frame with more than MAX_BOXES_PER_FRAME boxes: the comparisons grow with the cube
    of a frame's boxes (a few KB of boxes stacked on one spot took minutes; memory stays bounded).
    Boxes read from a file for review are checked as they are read (core.label_formats.import_boxes)."""
    crowded = np.flatnonzero(counts > MAX_BOXES_PER_FRAME)
    if len(crowded):
        from core.errors import UserError
        from core.words import counted

        first = int(crowded[0])
        raise UserError(f"Frame {first:,} holds {int(counts[first]):,} boxes ({counted(len(crowded), 'frame')} "
                        f"{'holds' if len(crowded) == 1 else 'hold'} more than "
                        f"{MAX_BOXES_PER_FRAME:,}): the flickering assertion takes at most {MAX_BOXES_PER_FRAME:,} per "
                        "frame (a detector keeps 300 by default); raise the score floor or check the boxes")


def check_stacking(centre: np.ndarray, lag: int, counts: np.ndarray) -> None:
    """Refuse boxes stacked on one spot: each pair of boxes in frames i-lag and i+lag that can pass
    a threshold is compared with every box of frame i, so 300 boxes on one spot in every frame (a 5
    MB MOT file) made 90,000 pairs and 27 million comparisons a frame, and ran for hours. Detections
    after NMS overlap a few neighbours each: a dense crowd of 300 makes a few thousand pairs."""
    if not len(centre):
        return
    frames, pairs = np.unique(centre, return_counts=True)
    stacked = np.flatnonzero(pairs * (1 + counts[frames]) > MAX_WORK_PER_FRAME)
    if len(stacked):
        from core.errors import UserError

        first, many = int(frames[stacked[0]]), int(pairs[stacked[0]])
        raise UserError(f"The boxes of frames {first - lag:,} and {first + lag:,} overlap in {many:,} pairs "
                        f"({int(counts[first - lag]):,} and {int(counts[first + lag]):,} boxes, stacked on a few spots?): "
                        f"the flickering assertion compares each pair with every box of frame {first:,}, which would "
                        "take hours. Raise the score floor, apply NMS or check the boxes")


def _frame_chunks(counts: np.ndarray, window: int) -> list[tuple[int, int]]:
    """Centre frames cut into ranges [lo, hi) of bounded work. Each pair is compared with every box
    of its centre frame, so both expansions are budgeted: frames crowded with overlapping boxes
    cannot blow the transient memory up."""
    n = len(counts)
    work = np.zeros(n, np.int64)
    for lag in range(1, window + 1):
        centres = np.arange(lag, n - lag)
        work[centres] += counts[centres - lag] * counts[centres + lag] * (1 + counts[centres])
    cuts = np.flatnonzero(np.diff(np.cumsum(work) // _ROWS_PER_CHUNK)) + 1
    bounds = [0, *cuts.tolist(), n]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if work[lo:hi].any()]


def _pairs_for_frames(lo: int, hi: int, video: _Boxes, options: FlickerOptions, min_iou: np.float32) -> list[np.ndarray]:
    """The index rows of centre frames lo..hi-1 in their final order (i, j, a, b) and dtypes:
    frame, lag, IoU, best centre IoU, mean box, class."""
    counts, n = video.counts, len(video.counts)
    parts = []
    for lag in range(1, options.window + 1):
        centres = np.arange(max(lo, lag), min(hi, n - lag))
        centres = centres[(counts[centres - lag] > 0) & (counts[centres + lag] > 0)]
        if len(centres):
            parts.append(_pairs_for_centres(centres, lag, video, options, min_iou))
    frame, lag, prev, iou, best, mean = (np.concatenate([p[k] for p in parts]) for k in range(6))
    if len(parts) > 1:  # lags come one after the other: interleave them by frame, keeping (a, b) order
        order = np.lexsort((lag, frame))
        frame, lag, prev, iou, best, mean = (a[order] for a in (frame, lag, prev, iou, best, mean))
    return [frame.astype(np.int32), lag, iou, best, mean, video.classes[prev]]


def _empty_pairs(mean_dtype) -> list[np.ndarray]:
    return [np.empty(0, np.int32), np.empty(0, np.int16), np.empty(0, np.float32), np.empty(0, np.float32),
            np.empty((0, 4), mean_dtype), np.empty(0, np.int32)]


class _GrowingColumns:
    """The index columns, grown chunk by chunk in place. ``ndarray.resize`` reallocates, and the C
    library remaps large blocks instead of copying them, so the build holds one copy of its pairs
    plus one chunk. (Joining a list of chunks at the end held about two: the chunks, once freed,
    stayed in the heap.)"""

    def __init__(self, empty: list[np.ndarray]) -> None:
        self.arrays = [array.copy() for array in empty]
        self.length = 0

    def append(self, pieces: list[np.ndarray], done: float) -> None:
        """Add a chunk's rows; ``done`` is the share of the work behind the rows so far (chunks
        hold equal work), so the first growth is usually the only one."""
        end = self.length + len(pieces[0])
        if end > len(self.arrays[0]):
            capacity = max(int(end / done * 1.1) + 1024, int(len(self.arrays[0]) * 1.5))
            for array in self.arrays:
                array.resize((capacity, *array.shape[1:]), refcheck=False)
        for array, piece in zip(self.arrays, pieces):
            array[self.length:end] = piece
        self.length = end

    def finished(self) -> list[np.ndarray]:
        for array in self.arrays:
            array.resize((self.length, *array.shape[1:]), refcheck=False)
        return self.arrays


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenation of ``range(starts[g], starts[g] + sizes[g])`` for every g, vectorised."""
    total = int(sizes.sum())
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)


def _expand(groups: np.ndarray, sizes_a: np.ndarray, sizes_b: np.ndarray, start_a: np.ndarray, start_b: np.ndarray):
    """For each group g, every (a, b) in range(sizes_a[g]) x range(sizes_b[g]), a-major: returns
    the group of each pair and the absolute indices start_a[g] + a, start_b[g] + b."""
    a_indices = _ranges(start_a, sizes_a)
    width = np.repeat(sizes_b, sizes_a)  # how many b each a meets
    a = np.repeat(a_indices, width)
    b = _ranges(np.repeat(start_b, sizes_a), width)
    return np.repeat(groups, sizes_a * sizes_b), a, b


def _overlapping(columns_a, a, columns_b, b) -> np.ndarray:
    """Indices k where box a[k] and box b[k] intersect with positive area (only those have IoU > 0).
    The x test runs first on everything, the y test only on its survivors."""
    ax0, ay0, ax1, ay1 = columns_a
    bx0, by0, bx1, by1 = columns_b
    k = np.flatnonzero((ax0[a] < bx1[b]) & (bx0[b] < ax1[a]))
    a, b = a[k], b[k]
    return k[(ay0[a] < by1[b]) & (by0[b] < ay1[a])]


def _pairs_for_centres(centres: np.ndarray, lag: int, video: _Boxes, options: FlickerOptions, min_iou: np.float32):
    reference = options.mode == "reference"
    counts, offsets, boxes, columns, classes = video.counts, video.offsets, video.boxes, video.columns, video.classes
    centre, a, b = _expand(centres, counts[centres - lag], counts[centres + lag], offsets[centres - lag], offsets[centres + lag])
    # Boxes that do not intersect have IoU 0 (or NaN), which never passes a threshold in [0, 1]:
    # dropping them first keeps the exact IoU arithmetic for the few pairs that matter.
    hit = _overlapping(columns, a, columns, b)
    centre, a, b = centre[hit], a[hit], b[hit]
    if options.class_aware:
        same = classes[a] == classes[b]
        centre, a, b = centre[same], a[same], b[same]
    iou = _iou_reference(boxes[a], boxes[b]) if reference else box_iou(boxes[a], boxes[b]).astype(np.float32)
    keep = iou > min_iou  # at 0: pairs that can pass some threshold in [0, 1]
    centre, a, b, iou = centre[keep], a[keep], b[keep], iou[keep]
    check_stacking(centre, lag, counts)  # the pairs compared with the centre frame's boxes, as counted below
    if options.one_to_one:
        matched = _greedy_one_to_one(centre, a, b, iou)
        centre, a, b, iou = centre[matched], a[matched], b[matched], iou[matched]
    if reference:
        # torch.mean(..., dtype=float32) of two int rows, then .int(): truncation toward zero
        mean = np.trunc((boxes[a].astype(np.float32) + boxes[b].astype(np.float32)) / np.float32(2)).astype(np.int32)
    else:
        mean = ((boxes[a] + boxes[b]) / 2).astype(np.float32)
    best = _best_centre_iou(mean, centre, a, video, options)
    return centre, np.full(len(centre), lag, np.int16), a, iou, best, mean


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _best_centre_iou(mean: np.ndarray, centre: np.ndarray, prev: np.ndarray, video: _Boxes, options: FlickerOptions):
    """Per pair, the highest IoU between its mean box and a box of the centre frame
    (:func:`_best_centre_iou_of`), over blocks of pairs that each meet at most _ROWS_PER_CHUNK
    candidate boxes: one frame crowded with overlapping boxes (b boxes in frames i-1, i and i+1 make
    b^2 pairs and b^3 comparisons) then takes time, not all the memory."""
    work = np.cumsum(video.counts[centre])
    cuts = np.flatnonzero(np.diff(work // _ROWS_PER_CHUNK)) + 1 if len(work) else np.empty(0, np.int64)
    if not len(cuts):
        return _best_centre_iou_of(mean, centre, prev, video, options)
    bounds = [0, *cuts.tolist(), len(centre)]
    return np.concatenate([_best_centre_iou_of(mean[lo:hi], centre[lo:hi], prev[lo:hi], video, options)
                           for lo, hi in zip(bounds, bounds[1:])])


def _best_centre_iou_of(mean: np.ndarray, centre: np.ndarray, prev: np.ndarray, video: _Boxes, options: FlickerOptions):
    """Per pair, the highest IoU between its mean box and a box of the centre frame.

    -inf when there is no candidate (the tutorial's empty-frame branch imputes). A candidate that
    does not intersect the mean box has IoU 0, except in reference mode when both areas sum to 0:
    then torchvision gives NaN, ``torch.all(iou < t)`` is false and nothing is imputed (+inf).
    """
    counts, offsets, boxes, columns, classes = video.counts, video.offsets, video.boxes, video.columns, video.classes
    n_pairs = len(centre)
    pair = np.repeat(np.arange(n_pairs), counts[centre])
    cand = _ranges(offsets[centre], counts[centre])
    if options.class_aware:
        same = classes[cand] == classes[prev][pair]
        pair, cand = pair[same], cand[same]
        best = np.full(n_pairs, -np.inf, np.float32)
        best[pair] = 0.0
    else:
        best = np.where(counts[centre] > 0, np.float32(0), np.float32(-np.inf))
    mean_columns = tuple(np.ascontiguousarray(mean[:, k]) for k in range(4))
    hit = _overlapping(columns, cand, mean_columns, pair)
    if options.mode == "reference":
        mean_area = _area(mean)
        if not video.all_positive_area or (mean_area <= 0).any():  # only degenerate boxes can give 0/0
            missed = np.ones(len(cand), bool)
            missed[hit] = False
            union_is_zero = missed & (_area(boxes[cand]) + mean_area[pair] == 0)
            best[pair[union_is_zero]] = np.inf
        iou = _iou_reference(boxes[cand[hit]], mean[pair[hit]])
        iou = np.where(np.isnan(iou), np.float32(np.inf), iou)
    else:
        iou = box_iou(boxes[cand[hit]], mean[pair[hit]]).astype(np.float32)
    by_pair = pair[hit]  # non-decreasing: candidates were expanded pair by pair
    if len(by_pair):
        starts = np.flatnonzero(np.r_[True, by_pair[1:] != by_pair[:-1]])
        first = by_pair[starts]
        best[first] = np.maximum(best[first], np.maximum.reduceat(iou, starts))
    return best


def _iou_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU with torchvision's ``box_iou`` arithmetic on int32 boxes: int32 areas and
    intersection (wrapping like torch on overflow), then float32 division (0/0 gives NaN)."""
    a = a.astype(np.int32, copy=False)
    b = b.astype(np.int32, copy=False)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter.astype(np.float32) / union.astype(np.float32)


def _greedy_one_to_one(centre: np.ndarray, a: np.ndarray, b: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Indices of pairs kept by greedy matching (highest IoU first) within each centre frame.

    Greedy has the property that makes live retuning exact: the pairs it accepts above any
    threshold are the same whether the threshold is applied before or after matching, because
    pairs above the threshold are all visited before any pair below it.
    """
    order = np.lexsort((np.arange(len(iou)), -iou, centre))
    kept = np.zeros(len(iou), bool)
    centre_l, a_l, b_l = centre.tolist(), a.tolist(), b.tolist()
    used_a: set[int] = set()
    used_b: set[int] = set()
    current = -1
    for k in order.tolist():
        if centre_l[k] != current:
            current, used_a, used_b = centre_l[k], set(), set()
        if a_l[k] in used_a or b_l[k] in used_b:
            continue
        used_a.add(a_l[k])
        used_b.add(b_l[k])
        kept[k] = True
    return np.flatnonzero(kept)
