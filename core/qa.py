"""Quality of the flickering assertion, estimated from a few dozen human verdicts.

Reviewing frames to measure the assertion is a sampling problem. Verdicts on flagged frames give
precision; only spot checks of frames the assertion does not flag reveal what it misses.

**Strata.** Each frame's *depth* is the fraction of the threshold pairs of :data:`DEFAULT_GRID`
that flag it (frames flagged at the current thresholds sit high, frames flagged only at looser
ones lower, frames no pair flags at 0). Depth depends on the index alone, not on the sliders, so
the strata are the same whenever they are rebuilt. Frames are cut into *bands*: depth 0, then
(0, 0.1], ..., (0.9, 1].

**Plan.** :func:`review_plan` gives every non-empty band the same share of the verdicts (bands
too small for their share give the rest to the others) and draws frames uniformly inside each
band, with a seeded generator. Rare suspicious bands are thus sampled densely and the bulk of
barely-flagged frames sparsely but always: those spot checks are what recall rests on. The
frames come interleaved across bands, so a review stopped early is still balanced. A frame's
inclusion probability is its band's share divided by the band's size (:class:`ReviewPlan`).

**Weights.** :func:`suggest_thresholds` and :func:`precision_recall` do not need the plan: they
rebuild the bands from the index and post-stratify whatever verdicts they get (a plan with any
seed, a plan half done, frames picked by hand). Bands with fewer than 2 verdicts are merged with
their neighbours in depth order; within a merged stratum every verdict stands for ``N_h / m_h``
frames, which for a completed plan equals its inverse inclusion probability. Bands without any
verdict are assumed to hold no misses, and the result's ``note`` says how many frames that
assumption covers.

**Estimates.** An unreviewed frame is a miss with its stratum's observed rate; a reviewed frame
is what its verdict says. Whether a frame is flagged at a threshold pair is known exactly, so
for every pair ``TP = sum(flagged * p)``, ``misses = sum(p)``, precision ``TP / flagged``, recall
``TP / misses`` and F1 ``2 TP / (flagged + misses)``. The suggestion is the grid pair with the
best estimated F1 (ties: the pair nearest the current thresholds).

**Intervals.** 90% Wilson intervals around those estimates, with an effective sample size
``p (1 - p) / v``, where ``v`` is the stratified variance (with finite-population correction) of
the design-weighted ratio estimator, capped at the number of verdicts behind the ratio, as Korn
and Graubard do for complex samples. When no verdict contradicts a precision or recall of 1 (or
supports more than 0), the bound reaches 1 (or 0); when every frame behind a ratio is reviewed,
the interval is the value itself.

Measured against simulated ground truth by ``bench/qa.py``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

import numpy as np

from core.detections import Detections, box_iou, xywh_to_xyxy
from core.errors import UserError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, FlickerIndex, FlickerResult

GRID_STEPS = tuple(round(0.05 * k, 2) for k in range(1, 20))
DEFAULT_GRID: tuple[tuple[float, float], ...] = tuple((t, a) for t in GRID_STEPS for a in GRID_STEPS)
APP_THRESHOLDS = (DEFAULT_IOU_TRACK, DEFAULT_IOU_ASSERT)  # the suggestion while nothing can be estimated
N_BANDS = 10
MIN_VERDICTS_PER_STRATUM = 2  # a within-stratum variance needs two
FEW_VERDICTS = 10
Z90 = 1.6448536269514722  # two-sided 90%
MAX_GROUND_TRUTH_BYTES = 128 * 2**20  # a 10-minute video with 50 tracks is ~30 MB of YouTube-VIS; JSON parses to ~10x in objects

Grid = Sequence[tuple[float, float]]


# ---------------------------------------------------------------------------------------- flags

def flag_matrix(index: FlickerIndex, grid: Grid = DEFAULT_GRID) -> np.ndarray:
    """(len(grid), n_frames) bool: the frames each threshold pair flags, equal to
    ``index.evaluate(t, a).flag_array`` for every ``(t, a)`` of the grid, in one pass.

    A pair of boxes flags its frame for every ``t < pair IoU`` and ``a > best centre IoU``, so
    each frame's flagged region is a staircase: for each tracking threshold, the smallest
    assertion threshold that flags it.
    """
    grid = _checked_grid(grid)
    tracks, track_of = np.unique(grid[:, 0].astype(np.float32), return_inverse=True)
    asserts, assert_of = np.unique(grid[:, 1].astype(np.float32), return_inverse=True)
    first_assert = _first_flagging_assert(index, tracks, asserts)
    return first_assert[:, track_of].T <= assert_of[:, None]


def _checked_grid(grid: Grid) -> np.ndarray:
    array = np.asarray(grid, np.float64).reshape(-1, 2)
    if not len(array) or not np.all((array >= 0) & (array <= 1)):
        raise ValueError("a threshold grid is a non-empty list of (iou_track, iou_assert) pairs in [0, 1]")
    return array


def _first_flagging_assert(index: FlickerIndex, tracks: np.ndarray, asserts: np.ndarray) -> np.ndarray:
    """(n_frames, len(tracks)): per frame and tracking threshold, the index of the smallest
    assertion threshold that flags the frame; len(asserts) when none does. Comparisons are the
    float32 ones of :meth:`FlickerIndex.evaluate`."""
    n_tracks_passed = np.searchsorted(tracks, index.pair_iou, side="left")  # pair IoU > tracks[:k]
    first_assert = np.searchsorted(asserts, index.pair_best, side="right")  # best < asserts[m:]
    by_passed = np.full((index.n_frames, len(tracks) + 1), len(asserts), np.int32)
    np.minimum.at(by_passed, (index.pair_frame, n_tracks_passed), first_assert.astype(np.int32))
    # tracks[k] is passed by the pairs that pass more than k thresholds: a suffix minimum
    suffix_min = np.minimum.accumulate(by_passed[:, ::-1], axis=1)[:, ::-1]
    return suffix_min[:, 1:]


def suspicion_bands(flags_on_default_grid: np.ndarray) -> np.ndarray:
    """Per frame, its band: 0 when no pair of the default grid flags it, else 1..N_BANDS for a
    depth (fraction of pairs flagging it) in (0, 0.1], (0.1, 0.2], ..., (0.9, 1]."""
    count = flags_on_default_grid.sum(axis=0)
    total = flags_on_default_grid.shape[0]
    return (count * N_BANDS + total - 1) // total  # ceil(depth * N_BANDS) in integers


# ---------------------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class ReviewPlan:
    """Frames to review, in review order, with how each was chosen."""

    frames: tuple[int, ...]
    band: tuple[int, ...]  # suspicion band of each frame
    inclusion: tuple[float, ...]  # probability that the plan picks that frame

    @property
    def weights(self) -> tuple[float, ...]:
        """Horvitz-Thompson weights: how many frames of the video each verdict stands for."""
        return tuple(1.0 / p for p in self.inclusion)


def plan_review(index: FlickerIndex, n: int, seed: int = 0) -> ReviewPlan:
    """The plan behind :func:`review_plan`, with bands and inclusion probabilities."""
    band = suspicion_bands(flag_matrix(index, DEFAULT_GRID))
    sizes = np.bincount(band, minlength=N_BANDS + 1)
    share = _equal_allocation(sizes, max(int(n), 0))
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(band == h))[:share[h]] for h in range(N_BANDS + 1)]
    frames = [int(p[k]) for k in range(int(share.max(initial=0))) for p in reversed(picks) if k < len(p)]
    return ReviewPlan(
        frames=tuple(frames),
        band=tuple(int(band[f]) for f in frames),
        inclusion=tuple(float(share[band[f]] / sizes[band[f]]) for f in frames),
    )


def review_plan(index: FlickerIndex, n: int, seed: int = 0) -> list[int]:
    """At most ``n`` distinct frames to review, the same for the same seed: every suspicion band
    gets an equal share, drawn at random inside it (see the module docstring)."""
    return list(plan_review(index, n, seed).frames)


def _equal_allocation(sizes: np.ndarray, n: int) -> np.ndarray:
    """Verdicts per band, as equal as possible, never more than a band holds (water-filling);
    leftovers go to the bands with the most room."""
    share = np.zeros(len(sizes), np.int64)
    remaining = min(n, int(sizes.sum()))
    while remaining:
        open_bands = np.flatnonzero(share < sizes)
        each = max(remaining // len(open_bands), 1)
        for h in open_bands[np.argsort(share[open_bands] - sizes[open_bands], kind="stable")]:
            take = min(each, int(sizes[h] - share[h]), remaining)
            share[h] += take
            remaining -= take
            if not remaining:
                break
    return share


# ---------------------------------------------------------------------------------------- estimates

@dataclass(frozen=True)
class ThresholdEstimate:
    """Estimated quality of the assertion at one threshold pair. NaN where undefined (precision
    with nothing flagged, recall with no miss known); an undefined value has the interval (0, 1)."""

    iou_track: float
    iou_assert: float
    precision: float
    precision_ci: tuple[float, float]
    recall: float
    recall_ci: tuple[float, float]
    f1: float
    n_flagged: int


@dataclass(frozen=True)
class Suggestion:
    """Thresholds with the best estimated F1, and how good they are estimated to be.

    ``fallback`` is true when nothing could be estimated yet (no verdicts, or none confirming a
    miss): the thresholds are then the current ones and the intervals are (0, 1). ``note`` says
    why, or which assumption the estimate leans on.
    """

    iou_track: float
    iou_assert: float
    precision: float
    recall: float
    f1: float
    precision_ci: tuple[float, float]
    recall_ci: tuple[float, float]
    n_verdicts: int
    fallback: bool = False
    note: str = ""


@dataclass(frozen=True)
class _Verdicts:
    """Verdicts post-stratified on the suspicion bands."""

    frames: np.ndarray  # (m,) reviewed frames
    truth: np.ndarray  # (m,) 1.0 for a real miss
    stratum: np.ndarray  # (m,) stratum of each reviewed frame
    weight: np.ndarray  # (m,) frames each verdict stands for: N_h / m_h
    sizes: np.ndarray  # (H,) frames per stratum
    counts: np.ndarray  # (H,) verdicts per stratum
    miss_probability: np.ndarray  # (n_frames,) the verdict, or the stratum's miss rate, 0 in bands without verdicts
    unrepresented: int  # frames in bands without verdicts

    @property
    def all_reviewed(self) -> bool:
        return self.unrepresented == 0 and bool(np.all(self.counts == self.sizes))


def precision_recall(index: FlickerIndex, verdicts: Mapping[int, bool], grid: Grid = DEFAULT_GRID) -> list[ThresholdEstimate]:
    """Estimated precision, recall and F1 with 90% intervals for every threshold pair of ``grid``
    (for a precision/recall-vs-threshold plot); weights as in the module docstring."""
    sample = _post_stratify(index, verdicts)
    return _estimate(flag_matrix(index, grid), sample, grid)


def suggest_thresholds(index: FlickerIndex, verdicts: Mapping[int, bool], current: tuple[float, float] = APP_THRESHOLDS) -> Suggestion:
    """The pair of :data:`DEFAULT_GRID` with the best estimated F1, from verdicts (frame -> True
    when the frame really misses an object). Unsure frames are simply left out. ``current`` (the
    thresholds in use) breaks ties and is the answer while nothing can be estimated."""
    sample = _post_stratify(index, verdicts)
    n_verdicts = len(sample.frames)
    if not sample.truth.any():
        reason = "no verdicts yet" if not n_verdicts else "no verdict confirms a miss yet"
        return _fallback(current, n_verdicts, f"{reason}: keeping the current thresholds; review more frames of the plan")
    rows = _estimate(flag_matrix(index, DEFAULT_GRID), sample, DEFAULT_GRID)
    best = rows[_best_index([r.f1 for r in rows], DEFAULT_GRID, current)]
    return Suggestion(best.iou_track, best.iou_assert, best.precision, best.recall, best.f1, best.precision_ci, best.recall_ci,
                      n_verdicts, note=_caveats(sample, index.n_frames))


def _fallback(current: tuple[float, float], n_verdicts: int, note: str) -> Suggestion:
    nan = float("nan")
    return Suggestion(float(current[0]), float(current[1]), nan, nan, nan, (0.0, 1.0), (0.0, 1.0), n_verdicts, True, note)


def _caveats(sample: _Verdicts, n_frames: int) -> str:
    notes = []
    if len(sample.frames) < FEW_VERDICTS:
        notes.append(f"only {len(sample.frames)} verdicts: a rough guide")
    if sample.unrepresented:
        notes.append(f"{sample.unrepresented} of {n_frames} frames lie in suspicion bands without a verdict and are "
                     "assumed to miss nothing, so recall may be overstated; review_plan's spot checks cover them")
    return "; ".join(notes)


def _best_index(f1: Sequence[float], grid: Grid, near: tuple[float, float]) -> int:
    """The grid pair with the highest F1; among equals, the one nearest ``near``."""
    scores = np.nan_to_num(np.asarray(f1, np.float64), nan=-1.0)
    ties = np.flatnonzero(scores >= scores.max() - 1e-12)
    distance = np.hypot(*(np.asarray(grid, np.float64)[ties] - np.asarray(near, np.float64)).T)
    return int(ties[np.argmin(distance)])


def _post_stratify(index: FlickerIndex, verdicts: Mapping[int, bool]) -> _Verdicts:
    frames = np.fromiter((int(f) for f in verdicts), np.int64, len(verdicts))
    if len(frames) and (frames.min() < 0 or frames.max() >= index.n_frames):
        raise ValueError(f"verdicts name frames outside 0..{index.n_frames - 1}")
    if any(isinstance(v, str) for v in verdicts.values()):  # bool("false_alarm") would read as a miss
        raise TypeError("verdicts map frames to True (really misses an object) or False; convert stored labels first, "
                        "e.g. {frame: label == 'miss'}")
    truth = np.fromiter((bool(verdicts[f]) for f in verdicts), np.float64, len(verdicts))
    band = suspicion_bands(flag_matrix(index, DEFAULT_GRID))
    stratum_of_band = _merged_strata(np.bincount(band[frames], minlength=N_BANDS + 1))
    stratum_of_frame = stratum_of_band[band]
    n_strata = int(stratum_of_band.max()) + 1
    sizes = np.bincount(stratum_of_frame[stratum_of_frame >= 0], minlength=n_strata).astype(np.float64)
    stratum = stratum_of_frame[frames]
    counts = np.bincount(stratum, minlength=n_strata).astype(np.float64)
    rate = np.r_[np.bincount(stratum, weights=truth, minlength=n_strata) / np.maximum(counts, 1), 0.0]
    miss_probability = rate[stratum_of_frame]  # -1 (no verdict in the band) picks the trailing 0
    miss_probability[frames] = truth
    return _Verdicts(frames, truth, stratum, sizes[stratum] / np.maximum(counts[stratum], 1), sizes, counts,
                     miss_probability, int(np.sum(stratum_of_frame < 0)))


def _merged_strata(verdicts_per_band: np.ndarray) -> np.ndarray:
    """Per band, its stratum: bands with verdicts joined in depth order until each stratum holds
    MIN_VERDICTS_PER_STRATUM (a short last group joins the one before); -1 for bands without."""
    stratum = np.full(len(verdicts_per_band), -1)
    current, held = 0, 0
    for band in np.flatnonzero(verdicts_per_band):
        stratum[band] = current
        held += verdicts_per_band[band]
        if held >= MIN_VERDICTS_PER_STRATUM:
            current, held = current + 1, 0
    if held and current:
        stratum[stratum == current] = current - 1
    return stratum


def _estimate(flags: np.ndarray, sample: _Verdicts, grid: Grid) -> list[ThresholdEstimate]:
    n_flagged = flags.sum(axis=1)
    true_flags = flags @ sample.miss_probability
    misses = float(sample.miss_probability.sum())
    with np.errstate(divide="ignore", invalid="ignore"):  # clipped: float sums can land a hair past 1
        precision = np.clip(np.where((n_flagged > 0) & (len(sample.frames) > 0), true_flags / n_flagged, np.nan), 0, 1)
        recall = np.clip(np.where(misses > 0, true_flags / misses, np.nan), 0, 1)
        f1 = np.clip(np.where(n_flagged + misses > 0, 2 * true_flags / (n_flagged + misses), 0.0), 0, 1)
    reviewed_flags = flags[:, sample.frames].astype(np.float64)
    hits = reviewed_flags * sample.truth
    precision_ci = _ratio_intervals(precision, hits, reviewed_flags, sample, exact=reviewed_flags.sum(axis=1) == n_flagged)
    recall_ci = _ratio_intervals(recall, hits, np.broadcast_to(sample.truth, hits.shape), sample,
                                 exact=np.full(len(flags), sample.all_reviewed))
    return [
        ThresholdEstimate(float(t), float(a), float(precision[g]), (float(precision_ci[0][g]), float(precision_ci[1][g])),
                          float(recall[g]), (float(recall_ci[0][g]), float(recall_ci[1][g])), float(f1[g]), int(n_flagged[g]))
        for g, (t, a) in enumerate(grid)
    ]


def _ratio_intervals(point: np.ndarray, numerator: np.ndarray, denominator: np.ndarray, sample: _Verdicts,
                     exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """90% Wilson intervals around ``point`` for ratios sum(numerator) / sum(denominator) over
    the video, one per grid row; the arrays hold the reviewed frames' terms, (G, m)."""
    weighted_den = denominator @ sample.weight
    with np.errstate(divide="ignore", invalid="ignore"):
        design_ratio = np.where(weighted_den > 0, (numerator @ sample.weight) / weighted_den, np.nan)
        residual = numerator - np.nan_to_num(design_ratio)[:, None] * denominator
        variance = _stratified_variance(residual, sample) / weighted_den ** 2
        behind = denominator.sum(axis=1)  # verdicts the ratio rests on
        informative = (point > 0) & (point < 1) & (variance > 0)
        n_eff = np.minimum(np.where(informative, point * (1 - point) / variance, behind), behind)
    n_eff = np.where(exact, np.inf, n_eff)
    low, high = _wilson(point, n_eff)
    high = np.where(design_ratio == 1, 1.0, high)  # no verdict contradicts a ratio of 1
    low = np.where(design_ratio == 0, 0.0, low)
    undefined = np.isnan(point) | ((behind == 0) & ~exact)
    return np.where(undefined, 0.0, low), np.where(undefined, 1.0, high)


def _stratified_variance(residual: np.ndarray, sample: _Verdicts) -> np.ndarray:
    """Variance of the weighted total of ``residual`` (G, m) under stratified sampling without
    replacement: sum over strata of N_h^2 (1 - m_h / N_h) s_h^2 / m_h."""
    one_hot = np.zeros((len(sample.frames), len(sample.sizes)))
    one_hot[np.arange(len(sample.frames)), sample.stratum] = 1.0
    sums, squares = residual @ one_hot, (residual * residual) @ one_hot
    m, size = sample.counts, sample.sizes
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(m > 1, (squares - sums ** 2 / np.maximum(m, 1)) / (m - 1), 0.0)
        factor = np.where(m > 0, size ** 2 * (1 - m / np.maximum(size, 1)) / np.maximum(m, 1), 0.0)
    return np.clip(spread, 0, None) @ factor


def _wilson(p: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion p from n (possibly fractional or infinite) trials."""
    p = np.nan_to_num(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2_n = np.where(n > 0, Z90 ** 2 / n, np.inf)
        centre = (p + z2_n / 2) / (1 + z2_n)
        half = Z90 * np.sqrt(p * (1 - p) / n + z2_n ** 2 / (4 * Z90 ** 2)) / (1 + z2_n)
    low = np.where(n > 0, np.clip(centre - half, 0, p), 0.0)
    high = np.where(n > 0, np.clip(centre + half, p, 1), 1.0)
    return low, high


# ---------------------------------------------------------------------------------------- ground truth

@dataclass(frozen=True)
class GroundTruth:
    """Annotated boxes of a video: ``frame`` (N,) 0-based, sorted; ``track_id`` (N,); ``xyxy``
    (N, 4) in pixels; ``n_frames`` is one past the last annotated frame."""

    frame: np.ndarray
    track_id: np.ndarray
    xyxy: np.ndarray
    n_frames: int

    def rows_per_track(self) -> list[np.ndarray]:
        """Row indices of each track, in frame order."""
        order = np.lexsort((self.frame, self.track_id))
        starts = np.flatnonzero(np.diff(self.track_id[order]) != 0) + 1
        return np.split(order, starts) if len(order) else []


def read_mot_ground_truth(path: str | Path) -> GroundTruth:
    """A MOTChallenge ``gt.txt``: rows ``frame,id,x,y,w,h[,conf,...]``, frames from 1.

    Rows whose ``conf`` (7th column) is 0 are ignored, as the MOT evaluation does; later columns
    (class and visibility in MOT16+, world coordinates in MOT15) are not used. Frame k of the
    file is frame k - 1 of the video.
    """
    path = _ground_truth_file(path)
    expected = "a MOT ground-truth file (rows frame,id,x,y,w,h,conf,... with frames from 1 and positive sizes)"
    try:
        with warnings.catch_warnings():  # an empty file: the error below says it
            warnings.simplefilter("ignore")
            table = np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path} is not {expected}: {first_line}") from None
    if table.shape[1] < 6 or (len(table) and (table[:, 0].min() < 1 or (table[:, 4:6] <= 0).any())):
        raise UserError(f"{path} is not {expected}")
    if table.shape[1] > 6:
        table = table[table[:, 6] != 0]
    table = table[np.argsort(table[:, 0], kind="stable")]
    return GroundTruth(
        frame=table[:, 0].astype(np.int32) - 1,
        track_id=table[:, 1].astype(np.int64),
        xyxy=xywh_to_xyxy(table[:, 2:6]).astype(np.float32),
        n_frames=int(table[:, 0].max()) if len(table) else 0,
    )


def read_ground_truth(path: str | Path) -> dict[str, GroundTruth]:
    """Ground truth per video name: a YouTube-VIS ``.json`` (through Lightly's ``labelformat``;
    the names are its videos' folder names) or otherwise a MOT ``gt.txt`` (one video, named "")."""
    if Path(path).suffix.lower() == ".json":
        return read_youtube_vis_ground_truth(path)
    return {"": read_mot_ground_truth(path)}


def ground_truth_for(truths: Mapping[str, GroundTruth], relpath: str, source: str | Path = "the ground truth") -> GroundTruth:
    """The ground truth of the video at ``relpath``: the file's only video, or the one named like
    the video's file (``walk`` or ``walk.mp4`` for ``clips/walk.mp4``)."""
    if len(truths) == 1:
        return next(iter(truths.values()))
    name = PurePosixPath(relpath)
    for key in (relpath, name.name, name.stem):
        if key in truths:
            return truths[key]
    listed = ", ".join(sorted(truths)[:10]) + (", ..." if len(truths) > 10 else "")
    raise UserError(f"{source} holds {len(truths)} videos and none is named {name.stem!r}: {listed}")


def read_youtube_vis_ground_truth(path: str | Path) -> dict[str, GroundTruth]:
    """A YouTube-VIS annotation file: per video, each annotation is one track with a box (or
    ``null``) per frame. Read with ``labelformat``'s own reader; every video of the file."""
    from labelformat.formats import YouTubeVISObjectDetectionTrackInput

    path = _ground_truth_file(path)
    expected = "a YouTube-VIS annotation file (videos, categories, annotations with per-frame bboxes)"
    try:
        videos = list(YouTubeVISObjectDetectionTrackInput(input_file=path).get_labels())
        truths = {str(v.video.filename): _track_ground_truth(v) for v in videos}
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as error:
        reason = (str(error).splitlines() or [""])[0][:200] or type(error).__name__
        raise UserError(f"{path} is not {expected}: {reason}") from None
    if not truths:
        raise UserError(f"{path} is not {expected}: it lists no video")
    return truths


def _track_ground_truth(video) -> GroundTruth:
    """One labelformat ``VideoObjectDetectionTrack`` as boxes per frame, one track per object."""
    rows = [(f, track, box.xmin, box.ymin, box.xmax, box.ymax)
            for track, obj in enumerate(video.objects, start=1) for f, box in enumerate(obj.boxes) if box is not None]
    table = np.array(rows, np.float64).reshape(-1, 6)
    if not np.all(np.isfinite(table)) or np.any(table[:, 4:6] <= table[:, 2:4]):
        raise ValueError(f"video {video.video.filename!r} has a box with no area or a non-numeric coordinate")
    table = table[np.argsort(table[:, 0], kind="stable")]
    return GroundTruth(table[:, 0].astype(np.int32), table[:, 1].astype(np.int64), table[:, 2:].astype(np.float32),
                       int(video.video.number_of_frames))


def _ground_truth_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Ground truth not found: {path}")
    if path.stat().st_size > MAX_GROUND_TRUTH_BYTES:
        raise UserError(f"{path} is {path.stat().st_size / 2**20:.0f} MiB; ground truth files are read up to "
                        f"{MAX_GROUND_TRUTH_BYTES // 2**20} MiB")
    return path


def true_misses(detections: Detections, ground_truth: GroundTruth, iou: float = 0.5, max_gap: int = 1) -> np.ndarray:
    """Per frame of ``detections``, whether the detector really misses an object there.

    An annotated object is *matched* in a frame when a detection of that frame overlaps it at
    IoU >= ``iou`` (greedy one-to-one matching, highest IoU first; classes are ignored). Frame i
    *misses* an object when the object is unmatched in i, its unmatched stretch around i lasts at
    most ``max_gap`` frames, and the object is annotated in every frame of the stretch and matched
    in the frame just before and just after it. With ``max_gap=1`` that is a single-frame miss
    (matched in i-1 and i+1, missed in i), what the assertion's window of 3 targets; a half window
    of k (improved mode) targets ``max_gap=k``. Longer misses, objects never detected and misses
    at either end of a track do not count. Annotations past the last frame are ignored.
    """
    matched = _matched_rows(detections, ground_truth, iou)
    missed = np.zeros(detections.n_frames, bool)
    for rows in ground_truth.rows_per_track():
        for stretch in _short_unmatched_stretches(ground_truth.frame[rows], matched[rows], max_gap):
            missed[stretch[stretch < detections.n_frames]] = True
    return missed


def _matched_rows(detections: Detections, ground_truth: GroundTruth, iou: float) -> np.ndarray:
    matched = np.zeros(len(ground_truth.frame), bool)
    bounds = np.searchsorted(ground_truth.frame, np.arange(detections.n_frames + 1))
    for i in range(detections.n_frames):
        lo, hi = bounds[i], bounds[i + 1]
        boxes = detections.xyxy[detections.rows(i)]
        if hi > lo and len(boxes):
            matched[lo:hi] = _greedy_matches(box_iou(ground_truth.xyxy[lo:hi, None], boxes[None]), iou)
    return matched


def _greedy_matches(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Rows matched one-to-one to columns, highest IoU first, at IoU >= threshold."""
    rows, cols = np.nonzero(iou >= threshold)
    matched = np.zeros(iou.shape[0], bool)
    used: set[int] = set()
    for k in np.argsort(-iou[rows, cols], kind="stable").tolist():
        r, c = int(rows[k]), int(cols[k])
        if not matched[r] and c not in used:
            matched[r] = True
            used.add(c)
    return matched


def _short_unmatched_stretches(frames: np.ndarray, matched: np.ndarray, max_gap: int) -> list[np.ndarray]:
    """Frames of each unmatched stretch of one track that is at most max_gap long, annotated
    throughout and bounded by matched frames on both sides."""
    edges = np.flatnonzero(np.diff(np.r_[0, (~matched).astype(np.int8), 0]))
    stretches = []
    for start, stop in zip(edges[::2], edges[1::2]):  # rows start..stop-1 are unmatched
        bounded = 0 < start and stop < len(frames) and stop - start <= max_gap
        if bounded and frames[stop] - frames[start - 1] == stop - start + 1:
            stretches.append(frames[start:stop])
    return stretches


@dataclass(frozen=True)
class ThresholdScore:
    """The assertion's true quality at one threshold pair, against known truth."""

    iou_track: float
    iou_assert: float
    precision: float  # NaN when nothing is flagged
    recall: float  # NaN when there is no true miss
    f1: float
    n_flagged: int
    true_positives: int


@dataclass(frozen=True)
class FlagEvaluation:
    rows: tuple[ThresholdScore, ...]  # one per grid pair, in grid order
    best: ThresholdScore  # highest F1 (ties: nearest the app's thresholds)
    n_true_misses: int


def evaluate_flags(index: FlickerIndex, truth: np.ndarray, grid: Grid = DEFAULT_GRID) -> FlagEvaluation:
    """Precision, recall and F1 of the assertion at every grid pair against ``truth`` (bool per
    frame, e.g. from :func:`true_misses`), and the best pair."""
    truth = np.asarray(truth, bool)
    if truth.shape != (index.n_frames,):
        raise ValueError(f"truth has {truth.size} values for {index.n_frames} frames")
    flags = flag_matrix(index, grid)
    n_flagged = flags.sum(axis=1)
    hits = (flags & truth).sum(axis=1)
    n_true = int(truth.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_flagged > 0, hits / n_flagged, np.nan)
        recall = np.where(n_true > 0, hits / n_true, np.nan)
        f1 = np.where(n_flagged + n_true > 0, 2 * hits / (n_flagged + n_true), 0.0)
    rows = tuple(ThresholdScore(float(t), float(a), float(precision[g]), float(recall[g]), float(f1[g]), int(n_flagged[g]),
                                int(hits[g])) for g, (t, a) in enumerate(grid))
    return FlagEvaluation(rows, rows[_best_index(f1, grid, APP_THRESHOLDS)], n_true)


@dataclass(frozen=True)
class ReviewQueue:
    frames: list[int]  # the plan's frames first, then the other flagged frames
    planned: int  # how many of them come from the plan

    def next_unreviewed(self, reviewed: Mapping[int, object]) -> int | None:
        return next((frame for frame in self.frames if frame not in reviewed), None)

    def planned_done(self, reviewed: Mapping[int, object]) -> int:
        return sum(1 for frame in self.frames[:self.planned] if frame in reviewed)


def review_queue(index: FlickerIndex, flicker: FlickerResult, n: int = 30, seed: int = 0) -> ReviewQueue:
    """What a reviewer sees, in order: the frames :func:`review_plan` picks (the estimates rest on
    them), then the other frames flagged at the current thresholds, worst (highest score) first."""
    planned = review_plan(index, n, seed)
    seen = set(planned)
    flagged = np.flatnonzero(flicker.flag_array)
    worst_first = flagged[np.argsort(-flicker.score[flagged], kind="stable")]
    return ReviewQueue(planned + [int(frame) for frame in worst_first if int(frame) not in seen], len(planned))
