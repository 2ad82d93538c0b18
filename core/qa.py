"""Quality of the flickering assertion, estimated from a few dozen human verdicts.

Reviewing frames to measure the assertion is a sampling problem. Verdicts on flagged frames give
precision; only spot checks of frames the assertion does not flag reveal what it misses.

**Strata.** Each frame's *depth* is the fraction of the threshold pairs of :data:`DEFAULT_GRID`
that flag it (frames flagged at the current thresholds sit high, frames flagged only at looser
ones lower, frames no pair flags at 0). Depth depends on the index alone, not on the sliders, so
the strata are the same whenever they are rebuilt. Frames are cut into *bands*: depth 0, then
(0, 0.1], ..., (0.9, 1].

**Plan.** :func:`review_plan` without verdicts gives every non-empty band the same share of the
verdicts (bands too small for their share give the rest to the others) and draws frames uniformly
inside each band, with a seeded generator: rare suspicious bands are sampled densely and the bulk
of barely-flagged frames sparsely but always (those spot checks are what recall rests on). The
frames come interleaved across bands, so a review stopped early is still balanced. Given the
verdicts so far, the plan comes in two phases: the first :data:`FIRST_PHASE` of the frames as
above; once they all have verdicts, the rest, of which :data:`SECOND_PHASE_BY_BAND` go on by band
and the others are aimed at the pair the first phase's verdicts suggest (its *focus*): they are
allocated over the *cells* that pair cuts out of the bands (the frames it flags and the rest, band
by band) where one more verdict shrinks the variance of its F1 most, and drawn at random inside each
cell. Picking by cell, never by frame, is what keeps the estimates honest at every other pair: every
frame of a cell is as likely to be picked as any other, so post-stratifying on the cells (pass the
plan's ``focus``) is as valid as on the bands. Aiming per verdict at whichever pair leads at the
moment was tried and breaks that (docs/qa.md).

**Weights.** :func:`suggest_thresholds` and :func:`precision_recall` need of the plan only its
focus: they rebuild the bands from the index (cut by the focus) and post-stratify whatever
verdicts they get (a plan with any seed, a plan half done). Given the frames plans drew
(``planned``) they leave out verdicts on other frames: frames picked by hand, or worst first, are
no random sample, and counting them biased the intervals (:func:`drawn`). Bands with fewer than 2
verdicts are merged with their neighbours in depth order; within a merged stratum every verdict
stands for ``N_h / m_h`` frames, which for a completed plan equals its inverse inclusion
probability. Bands without any verdict are assumed to hold no misses, and the result's ``note``
says how many frames that assumption covers.

**Estimates, pair by pair.** A band's rate applied to every unreviewed frame of the band is
biased at any pair that flags part of the band, because the frames a pair singles out can miss
objects far more often than the rest of their band (0.81 against 0.19 in one simulated crowd),
and more verdicts only narrow the interval onto that wrong value. So each pair cuts every stratum
into two *cells*, the frames it flags and the rest, both known exactly, and estimates each cell
from its own verdicts (a simple random sample of the cell, given how many landed there): an
unreviewed frame of a cell is a miss at the cell's rate, shrunk by :data:`CELL_PRIOR`
pseudo-verdicts towards a target that a cell without verdicts takes: its stratum's rate for the
frames a pair does not flag, and for those it flags the mean of that rate and a miss model's mean
chance over the cell's frames (:func:`_miss_model`: a gentle logistic regression of the verdicts on
where in the grid each frame is flagged). For every
pair ``TP = sum over cells flagged`` and ``misses = TP + the same over the cells it does not
flag``; precision ``TP / flagged``, recall ``TP / misses``, F1 ``2 TP / (flagged + misses)``. As
verdicts grow every cell rests on its own frames and the estimate converges on the truth at every
pair (tests/test_qa.py holds the average over plans of a mild video equal to the truth at every
grid pair). With few verdicts the shrinkage is a bias where a pair's flagged frames drew none:
measured at 30 verdicts, 0.03 or more on up to a third of the pairs in hard footage (docs/qa.md).

**Intervals.** 90% Wilson intervals with an effective sample size ``p (1 - p) / v``, where ``v``
is the post-stratified variance of the estimate (finite-population corrected, linearised for the
ratios), capped at the number of verdicts behind the ratio as Korn and Graubard do for complex
samples. When no verdict contradicts a precision or recall of 1 (or supports more than 0), the
bound reaches 1 (or 0); when every frame behind a ratio is reviewed, the interval is the value.

**Suggestion.** Not the argmax of 361 noisy F1 estimates: each pair is scored by its F1 minus one
standard error (:data:`LOWER_BOUND_Z`), averaged with its grid neighbours so a broad plateau beats a
lone lucky peak, among pairs that flag at least :data:`MIN_FLAGGED_VERDICTS` reviewed frames. The
suggestion reports how many frames it flags, and its note says so when that is most of the video.

Why this and not an inverse-probability or model-assisted estimator, and how it does on seven
kinds of footage: docs/qa.md. Measured against simulated ground truth by ``bench/qa.py``.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace
from typing import Collection, Mapping, Sequence

import numpy as np

from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, FlickerIndex, FlickerResult

GRID_STEPS = tuple(round(0.05 * k, 2) for k in range(1, 20))
DEFAULT_GRID: tuple[tuple[float, float], ...] = tuple((t, a) for t in GRID_STEPS for a in GRID_STEPS)
APP_THRESHOLDS = (DEFAULT_IOU_TRACK, DEFAULT_IOU_ASSERT)  # the suggestion while nothing can be estimated
N_BANDS = 10
FEW_VERDICTS = 10
Z90 = 1.6448536269514722  # two-sided 90%
LOWER_BOUND_Z = 1.0  # the suggestion maximises F1 minus this many standard errors
MIN_FLAGGED_VERDICTS = 3  # a suggested pair flags at least this many reviewed frames
LARGE_FLAGGED_SHARE = 0.5  # a suggestion flagging more of the video says so
MIN_VERDICTS_PER_STRATUM = 2  # a within-stratum variance needs two
FIRST_PHASE = 0.5  # share of a steered plan drawn by band before any verdict
SECOND_PHASE_BY_BAND = 0.3  # share of the second phase that goes on by band, the rest aimed at the suggested pair
PHASE_RATE_FLOOR = 0.05  # when aiming, a cell is taken to miss objects at a rate in [0.05, 0.95]
CELL_PRIOR = 1.0  # pseudo-verdicts that a cell's own rate is shrunk with (towards its stratum's rate; see _Cells.rates)
MODEL_RIDGE = 1.0  # L2 penalty of the miss model's standardised slopes (see _miss_model)
MIN_MODEL_VERDICTS = 4  # verdicts on frames some pair flags, with both answers among them, before a miss model is fitted

Grid = Sequence[tuple[float, float]]
Truths = Mapping[int, bool]  # frame -> True when it really misses an object (VerdictStore.truth)


# ---------------------------------------------------------------------------------------- flags

def flag_matrix(index: FlickerIndex, grid: Grid = DEFAULT_GRID) -> np.ndarray:
    """(len(grid), n_frames) bool: the frames each threshold pair flags, equal to
    ``index.evaluate(t, a).flag_array`` for every ``(t, a)`` of the grid, in one pass.

    A pair of boxes flags its frame for every ``t < pair IoU`` and ``a > best centre IoU``, so
    each frame's flagged region is a staircase: for each tracking threshold, the smallest
    assertion threshold that flags it.
    """
    if grid is DEFAULT_GRID:
        return _default_flags(index)
    return _flags_on(index, grid)


_DEFAULT_FLAGS: dict[int, np.ndarray] = {}  # id(index) -> its flags on DEFAULT_GRID, while the index lives


def _default_flags(index: FlickerIndex) -> np.ndarray:
    """The flags on DEFAULT_GRID, computed once per index (read-only): the Verdicts page's plan, suggestion and
    estimates each need them on every rerun, ~60 ms for 18,000 frames."""
    flags = _DEFAULT_FLAGS.get(id(index))
    if flags is None:
        flags = _flags_on(index, DEFAULT_GRID)
        flags.flags.writeable = False
        _DEFAULT_FLAGS[id(index)] = flags
        weakref.finalize(index, _DEFAULT_FLAGS.pop, id(index), None)
    return flags


def _flags_on(index: FlickerIndex, grid: Grid) -> np.ndarray:
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
    """Frames to review, in review order, with how each was chosen.

    A plan steered by verdicts (``draw(..., truths=...)``) comes in two phases: the first
    :data:`FIRST_PHASE` of the frames by band; once they all have verdicts, the rest, aimed at the
    pair those verdicts suggest (``focus``). Until then ``frames`` holds the first phase and ``size``
    says how many frames the whole plan will hold.
    """

    frames: tuple[int, ...]
    band: tuple[int, ...]  # suspicion band of each frame
    inclusion: tuple[float, ...]  # probability that the plan picks that frame (in its cell, once aimed)
    size: int = -1  # frames planned in all (-1: len(frames))
    focus: tuple[float, float] | None = None  # the pair the second phase aims at; estimates cut their strata by it

    @property
    def weights(self) -> tuple[float, ...]:
        """Horvitz-Thompson weights: how many frames of the video each verdict stands for."""
        return tuple(1.0 / p for p in self.inclusion)

    @property
    def plan_size(self) -> int:
        """Frames the whole plan holds (more than ``frames`` while the second phase is due)."""
        return len(self.frames) if self.size < 0 else self.size

    @classmethod
    def draw(cls, index: FlickerIndex, n: int, seed: int = 0, truths: Truths | None = None,
             unsure: Collection[int] = ()) -> "ReviewPlan":
        """At most ``n`` distinct frames. Without ``truths``: every suspicion band gets an equal share
        (water-filled), drawn at random inside it with a seeded generator, interleaved across bands.
        With ``truths`` (and ``unsure``: frames judged neither way), the two phases of the class
        docstring; the second phase depends only on the first phase's verdicts, so it is the same
        on every rerun."""
        flags = flag_matrix(index, DEFAULT_GRID)
        band = suspicion_bands(flags)
        if truths is None:
            return _by_band(band, n, seed)
        size = min(max(int(n), 0), index.n_frames)
        first = _by_band(band, math.ceil(size * FIRST_PHASE), seed)
        judged = set(truths) | set(unsure)
        if len(first.frames) == size or not judged.issuperset(first.frames):
            return replace(first, size=size)
        return _second_phase(flags, band, first, size, seed, {f: truths[f] for f in first.frames if f in truths})


def review_plan(index: FlickerIndex, n: int, seed: int = 0, truths: Truths | None = None,
                unsure: Collection[int] = ()) -> list[int]:
    """At most ``n`` distinct frames to review, the same for the same seed (and first-phase verdicts):
    by band, or in two phases once there are verdicts (:meth:`ReviewPlan.draw`)."""
    return list(ReviewPlan.draw(index, n, seed, truths, unsure).frames)


def _by_band(band: np.ndarray, n: int, seed: int) -> ReviewPlan:
    """Every band (``band``: each frame's) an equal share of ``n``, drawn at random inside it. The
    bands are permuted the same way whatever ``n`` is, so a larger plan continues a smaller one
    inside every band."""
    sizes = np.bincount(band, minlength=N_BANDS + 1)
    share = _equal_allocation(sizes, max(int(n), 0))
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(band == h))[:share[h]] for h in range(N_BANDS + 1)]
    frames = [int(p[k]) for k in range(int(share.max(initial=0))) for p in reversed(picks) if k < len(p)]
    return ReviewPlan(frames=tuple(frames), band=tuple(int(band[f]) for f in frames),
                      inclusion=tuple(float(share[band[f]] / sizes[band[f]]) for f in frames))


def _second_phase(flags: np.ndarray, band: np.ndarray, first: ReviewPlan, size: int, seed: int, truths: Truths) -> ReviewPlan:
    """The first phase plus ``size - len(first.frames)`` frames: SECOND_PHASE_BY_BAND of them going on
    by band (continuing the first phase's interleaved rounds, deepest band first in each; measured
    against largest or shallowest first, docs/qa.md), the rest allocated to the cells the
    suggested pair cuts out of the bands (flagged by it or not), where one more verdict shrinks the
    variance of its F1 most, and drawn at random inside each cell. Every frame of a cell is then as
    likely to be picked as any other, so estimates post-stratified on these cells stay valid at
    every pair, not only at the one aimed at."""
    n_frames = flags.shape[1]
    suggestion = _suggest(flags, truths, APP_THRESHOLDS, None)
    n_second = size - len(first.frames)
    taken = np.zeros(n_frames, bool)
    taken[list(first.frames)] = True
    n_by_band = n_second if suggestion.fallback else round(n_second * SECOND_PHASE_BY_BAND)
    by_band = [f for f in _by_band(band, n_frames, seed).frames if not taken[f]][:n_by_band]
    taken[by_band] = True
    focus = None if suggestion.fallback else (suggestion.iou_track, suggestion.iou_assert)
    aimed = [] if focus is None else _aimed(flags, band, focus, suggestion, truths, taken, n_second - len(by_band), seed)
    second = np.random.default_rng([seed, 1]).permutation(np.array(by_band + aimed, np.int64)).tolist()
    frames = [*first.frames, *second]
    cell = _cells_of(band, flags, focus)
    planned = np.bincount(cell[frames], minlength=int(cell.max()) + 1)
    sizes = np.bincount(cell, minlength=int(cell.max()) + 1)
    return ReviewPlan(frames=tuple(int(f) for f in frames), band=tuple(int(band[f]) for f in frames),
                      inclusion=tuple(float(planned[cell[f]] / sizes[cell[f]]) for f in frames), size=size, focus=focus)


def _cells_of(band: np.ndarray, flags: np.ndarray, focus: tuple[float, float] | None) -> np.ndarray:
    """Per frame, its band, cut in two by whether ``focus`` flags it (2 * band + flagged)."""
    return band if focus is None else band * 2 + flags[DEFAULT_GRID.index(focus)]


def _aimed(flags: np.ndarray, band: np.ndarray, focus: tuple[float, float], suggestion: "Suggestion", truths: Truths,
           taken: np.ndarray, n: int, seed: int) -> list[int]:
    """``n`` frames not ``taken``, allocated greedily over the cells of ``focus`` (Neyman: where
    size x coefficient x spread over the verdicts it would then hold is largest) and drawn at
    random inside each. The spread comes from the first phase's rate in the cell, shrunk towards
    its band's and kept off 0 and 1 (PHASE_RATE_FLOOR): a cell where no miss was seen yet may hold
    some."""
    cell = _cells_of(band, flags, focus)
    n_cells = 2 * (N_BANDS + 1)
    judged = np.fromiter(truths, np.int64, len(truths))
    misses = np.fromiter((float(truths[f]) for f in truths), np.float64, len(truths))
    seen, hits = np.bincount(cell[judged], minlength=n_cells), np.bincount(cell[judged], misses, minlength=n_cells)
    band_rate = (np.bincount(band[judged], misses, minlength=N_BANDS + 1) + 0.5) / (np.bincount(band[judged], minlength=N_BANDS + 1) + 1)
    rate = np.clip((hits + band_rate[np.arange(n_cells) // 2]) / (seen + 1), PHASE_RATE_FLOOR, 1 - PHASE_RATE_FLOOR)
    # F1 = 2 TP / (flagged + misses), linearised: a miss counts (2 - F1) / D where the pair flags, -F1 / D elsewhere
    flagged = max(int(flags[DEFAULT_GRID.index(focus)].sum()), 1)
    precision, recall, f1 = (float(np.nan_to_num(v)) for v in (suggestion.precision, suggestion.recall, suggestion.f1))
    denominator = flagged + max(flagged * precision / max(recall, 1e-3), 1.0)
    coefficient = np.where(np.arange(n_cells) % 2 == 1, (2 - f1) / denominator, -f1 / denominator)
    score = np.bincount(cell, minlength=n_cells) * np.abs(coefficient) * np.sqrt(rate * (1 - rate))
    held = np.bincount(cell[taken], minlength=n_cells).astype(np.float64)
    room = np.bincount(cell[~taken], minlength=n_cells)
    share = np.zeros(n_cells, np.int64)
    for _ in range(min(n, int(room.sum()))):
        gain = np.where(share < room, score / np.sqrt((held + share + 1) * (held + share + 2)), -1.0)
        if gain.max() <= 0:
            gain = np.where(share < room, room - share, -1.0)  # nothing left to aim at: the largest cells
        share[int(np.argmax(gain))] += 1
    rng = np.random.default_rng([seed, 2])
    return [int(f) for c in np.flatnonzero(share) for f in rng.permutation(np.flatnonzero((cell == c) & ~taken))[:share[c]]]


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
    n_flagged: int = -1  # frames the suggested pair flags (-1: not estimated)
    n_unrepresented: int = 0  # frames unlike any judged (in bands without verdicts): assumed to miss nothing


@dataclass(frozen=True)
class _Verdicts:
    """Verdicts post-stratified on the suspicion bands (merged until each stratum holds two)."""

    frames: np.ndarray  # (m,) reviewed frames
    truth: np.ndarray  # (m,) 1.0 for a real miss
    stratum: np.ndarray  # (m,) stratum of each reviewed frame
    of_frame: np.ndarray  # (n_frames,) stratum of every frame; -1 in bands without verdicts
    sizes: np.ndarray  # (H,) frames per stratum
    counts: np.ndarray  # (H,) verdicts per stratum
    hits: np.ndarray  # (H,) verdicts confirming a miss per stratum
    modelled: np.ndarray | None = None  # (n_frames,) each frame's chance of a miss by _miss_model (None: too few verdicts)

    @property
    def unrepresented(self) -> int:
        """Frames in bands without verdicts: assumed to miss nothing (the note says so)."""
        return int(np.sum(self.of_frame < 0))


@dataclass(frozen=True)
class _Cells:
    """Per threshold pair and stratum, the frames the pair flags (A) and the rest (B): how many there
    are, how many were reviewed and how many of those are misses; (G, H) arrays."""

    size_a: np.ndarray
    size_b: np.ndarray
    reviewed_a: np.ndarray
    reviewed_b: np.ndarray
    hits_a: np.ndarray
    hits_b: np.ndarray
    modelled_a: np.ndarray | None = None  # the miss model's mean chance over the frames of each cell A

    @classmethod
    def of(cls, flags: np.ndarray, sample: _Verdicts) -> "_Cells":
        n_strata = len(sample.sizes)
        frame_strata = np.zeros((flags.shape[1], n_strata))
        known = sample.of_frame >= 0
        frame_strata[np.flatnonzero(known), sample.of_frame[known]] = 1.0
        verdict_strata = np.zeros((len(sample.frames), n_strata))
        verdict_strata[np.arange(len(sample.frames)), sample.stratum] = 1.0
        reviewed = flags[:, sample.frames].astype(np.float64)
        if sample.modelled is None:
            size_a = flags @ frame_strata
            modelled_a = None
        else:  # one product for the cells' sizes and their modelled misses
            size_a, chances = np.split(flags @ np.hstack([frame_strata, frame_strata * sample.modelled[:, None]]), 2, axis=1)
            modelled_a = chances / np.maximum(size_a, 1)
        reviewed_a, hits_a = reviewed @ verdict_strata, (reviewed * sample.truth) @ verdict_strata
        return cls(size_a, sample.sizes - size_a, reviewed_a, sample.counts - reviewed_a, hits_a, sample.hits - hits_a,
                   modelled_a)

    def rates(self, sample: _Verdicts) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's miss rate: its own verdicts', shrunk by CELL_PRIOR pseudo-verdicts towards a
        target that a cell without verdicts takes. The target of the frames a pair does not flag (B)
        is their stratum's rate. That of the frames it flags (A) is the mean of the stratum's rate
        and the miss model's mean chance over the cell's frames: a selective pair's few flagged frames
        in a large band can miss an object every time while the band's rate is 0.07, and their flag
        profiles say so where no verdict landed among them. As verdicts grow, every cell rests on its
        own frames, so the estimate still converges on the truth at every pair."""
        band_rate = sample.hits / np.maximum(sample.counts, 1)
        target_a = band_rate if self.modelled_a is None else (band_rate + self.modelled_a) / 2
        shrunk = lambda hits, reviewed, target: (hits + CELL_PRIOR * target) / (reviewed + CELL_PRIOR)  # noqa: E731
        return shrunk(self.hits_a, self.reviewed_a, target_a), shrunk(self.hits_b, self.reviewed_b, band_rate)


def precision_recall(index: FlickerIndex, verdicts: Truths, grid: Grid = DEFAULT_GRID,
                     focus: tuple[float, float] | None = None, planned: Collection[int] | None = None) -> list[ThresholdEstimate]:
    """Estimated precision, recall and F1 with 90% intervals for every threshold pair of ``grid``
    (for a precision/recall-vs-threshold plot); see the module docstring. ``focus``: the pair a
    two-phase plan aimed at (:attr:`ReviewPlan.focus`), whose cells the strata are cut by.
    ``planned``: the frames the plan drew (None: every verdict was drawn by it); see :func:`drawn`."""
    default_flags = flag_matrix(index, DEFAULT_GRID)
    sample = _post_stratify(default_flags, drawn(verdicts, planned), focus)
    flags = default_flags if _same_grid(grid, DEFAULT_GRID) else flag_matrix(index, grid)
    return _estimates(flags, sample, grid).rows()


def suggest_thresholds(index: FlickerIndex, verdicts: Truths, current: tuple[float, float] = APP_THRESHOLDS,
                       focus: tuple[float, float] | None = None, planned: Collection[int] | None = None) -> Suggestion:
    """A pair of :data:`DEFAULT_GRID` whose F1 is surely good, from verdicts (frame -> True when the
    frame really misses an object): the highest lower bound of F1 (estimate minus one standard
    error) averaged over the pair and its grid neighbours, among pairs that flag at least
    :data:`MIN_FLAGGED_VERDICTS` reviewed frames. Unsure frames are simply left out. ``current``
    (the thresholds in use) breaks ties and is the answer while nothing can be estimated;
    ``focus`` and ``planned`` as in :func:`precision_recall`."""
    return _suggest(flag_matrix(index, DEFAULT_GRID), drawn(verdicts, planned), current, focus)


def drawn(verdicts: Truths, planned: Collection[int] | None) -> Truths:
    """The verdicts on frames a plan drew (``planned``: the app passes every frame any plan of the
    video drew, whatever its size and seed; None: all of them), which the estimates rest on. A
    verdict on any other frame (picked by hand on Review, or next in the queue after the
    plan, worst first) is kept and listed but not estimated from: such frames are no random sample
    of anything, and counting them biased the intervals. With a finished 30-verdict plan and the
    queue's next 20 frames, the precision intervals at 8 pairs held the truth on 0.89-0.90 of
    fast, crowd and mixed videos instead of 0.96, and on 0.72 at one pair; counted exactly and
    taken out of their cells, 0.90-0.93 (docs/qa.md). A larger plan is the way to tighter intervals."""
    if planned is None:
        return verdicts
    in_plan = set(planned)
    return {frame: truth for frame, truth in verdicts.items() if frame in in_plan}


def _suggest(flags: np.ndarray, verdicts: Truths, current: tuple[float, float], focus: tuple[float, float] | None) -> Suggestion:
    sample = _post_stratify(flags, verdicts, focus)
    n_verdicts = len(sample.frames)
    if not sample.truth.any():
        # "of the plan": verdicts elsewhere are kept but not counted, and the page says how many
        reason = "no verdict on the plan's frames yet" if not n_verdicts else "no verdict on the plan's frames confirms a miss yet"
        return _fallback(current, n_verdicts, f"{reason}: keeping the current thresholds")  # what to do next is the caller's
    estimates = _estimates(flags, sample, DEFAULT_GRID)
    score = _suggestion_score(estimates.f1, estimates.f1_se, _supported(flags, sample))
    if not np.isfinite(score).any():  # the counted verdicts are all on frames no pair flags: no pair is supported
        return _fallback(current, n_verdicts, "no pair of thresholds flags enough of the judged frames yet: keeping the "
                                              "current thresholds")
    best = estimates.row(best_index(score, DEFAULT_GRID, current))
    return Suggestion(best.iou_track, best.iou_assert, best.precision, best.recall, best.f1, best.precision_ci, best.recall_ci,
                      n_verdicts, note=_caveats(sample, flags.shape[1], best.n_flagged), n_flagged=best.n_flagged,
                      n_unrepresented=sample.unrepresented)


def _supported(flags: np.ndarray, sample: _Verdicts) -> np.ndarray:
    """Pairs that flag enough reviewed frames to be suggested."""
    return flags[:, sample.frames].sum(axis=1) >= min(MIN_FLAGGED_VERDICTS, int(sample.truth.sum()))


def _suggestion_score(f1: np.ndarray, f1_se: np.ndarray, supported: np.ndarray) -> np.ndarray:
    """What the suggestion maximises over DEFAULT_GRID: F1's lower bound, on a plateau (NaN: never)."""
    return np.where(supported, _plateau(f1 - LOWER_BOUND_Z * f1_se, DEFAULT_GRID), np.nan)


def _fallback(current: tuple[float, float], n_verdicts: int, note: str) -> Suggestion:
    nan = float("nan")
    return Suggestion(float(current[0]), float(current[1]), nan, nan, nan, (0.0, 1.0), (0.0, 1.0), n_verdicts, True, note)


def _caveats(sample: _Verdicts, n_frames: int, n_flagged: int) -> str:
    notes = []
    if len(sample.frames) < FEW_VERDICTS:
        notes.append(f"only {len(sample.frames)} verdicts: a rough guide")
    if sample.unrepresented:
        notes.append(f"{sample.unrepresented} of {n_frames} frames are unlike any frame judged so far and are assumed "
                     "to miss nothing, so recall may be overstated; finishing the review plan covers them")
    if n_flagged > LARGE_FLAGGED_SHARE * n_frames:
        notes.append(f"these thresholds flag {n_flagged} of {n_frames} frames ({n_flagged / n_frames:.0%})")
    return "; ".join(notes)


def _plateau(score: np.ndarray, grid: Grid) -> np.ndarray:
    """Each pair's score averaged with its neighbours on the grid (one step in either threshold),
    so a pair on a broad plateau beats a lone peak. Neighbours without a score count as the worst."""
    points = np.asarray(grid, np.float64)
    worst = np.nanmin(score) if np.isfinite(score).any() else 0.0
    filled = np.where(np.isnan(score), worst, score)
    steps = [np.diff(np.unique(points[:, k])).min(initial=1.0) * 1.01 for k in (0, 1)]
    near = (np.abs(points[:, None, 0] - points[None, :, 0]) <= steps[0]) & \
           (np.abs(points[:, None, 1] - points[None, :, 1]) <= steps[1])
    smoothed = (near @ filled) / near.sum(axis=1)
    return np.where(np.isnan(score), np.nan, smoothed)


def best_index(scores: Sequence[float], grid: Grid, near: tuple[float, float]) -> int:
    """The grid pair with the highest score (NaN: never); among equals, the one nearest ``near``."""
    scores = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
    ties = np.flatnonzero(scores >= scores.max() - 1e-12)
    distance = np.hypot(*(np.asarray(grid, np.float64)[ties] - np.asarray(near, np.float64)).T)
    return int(ties[np.argmin(distance)])


def _same_grid(grid: Grid, other: Grid) -> bool:
    return grid is other or np.array_equal(np.asarray(grid, np.float64).reshape(-1, 2), np.asarray(other, np.float64))


def _post_stratify(default_flags: np.ndarray, verdicts: Truths, focus: tuple[float, float] | None = None) -> _Verdicts:
    """``verdicts`` post-stratified on the bands of ``default_flags`` (the flag matrix on DEFAULT_GRID),
    each cut in two by whether ``focus`` flags its frames when a plan aimed at that pair."""
    n_frames = default_flags.shape[1]
    frames = np.fromiter((int(f) for f in verdicts), np.int64, len(verdicts))
    if len(frames) and (frames.min() < 0 or frames.max() >= n_frames):
        raise ValueError(f"verdicts name frames outside 0..{n_frames - 1}")
    truth = np.fromiter((bool(verdicts[f]) for f in verdicts), np.float64, len(verdicts))
    if focus is not None and tuple(focus) not in DEFAULT_GRID:
        raise ValueError(f"a plan's focus is a pair of the default grid, not {focus}")
    band = _cells_of(suspicion_bands(default_flags), default_flags, None if focus is None else tuple(focus))
    stratum_of_band = _merged_strata(np.bincount(band[frames], minlength=2 * (N_BANDS + 1)))
    if focus is not None:  # a cell without verdicts joins its band's other cell: the band was sampled
        sibling = stratum_of_band[np.arange(len(stratum_of_band)) ^ 1]
        stratum_of_band = np.where(stratum_of_band < 0, sibling, stratum_of_band)
    of_frame = stratum_of_band[band]
    n_strata = int(stratum_of_band.max()) + 1
    sizes = np.bincount(of_frame[of_frame >= 0], minlength=n_strata).astype(np.float64)
    stratum = of_frame[frames]
    counts = np.bincount(stratum, minlength=n_strata).astype(np.float64)
    hits = np.bincount(stratum, weights=truth, minlength=n_strata)
    return _Verdicts(frames, truth, stratum, of_frame, sizes, counts, hits, _miss_model(default_flags, frames, truth))


_PROFILES: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(default flags) -> _flag_profiles, while they live


def _flag_profiles(default_flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, whether any pair of DEFAULT_GRID flags it, and the features the miss model reads
    from where in the grid it is flagged (standardised over those frames, after a column of ones):
    its depth and its square; the share of tracking thresholds that flag it at the loosest assertion
    threshold (how well its neighbours' boxes match: pair IoU); the share of assertion thresholds
    that flag it at the loosest tracking threshold (how far the nearest box is from the imputed
    one: best centre IoU)."""
    key = id(default_flags)
    if key not in _PROFILES:
        staircase = default_flags.reshape(len(GRID_STEPS), len(GRID_STEPS), -1)  # (tracking, assertion, frame)
        flagged = staircase.any(axis=(0, 1))
        depth = staircase[:, :, flagged].mean(axis=(0, 1))
        columns = np.stack([depth, depth ** 2, staircase[:, -1, flagged].mean(axis=0), staircase[0, :, flagged].mean(axis=1)], 1)
        columns = (columns - columns.mean(axis=0)) / np.maximum(columns.std(axis=0), 1e-9) if len(columns) else columns
        features = np.zeros((len(flagged), columns.shape[1] + 1))
        features[:, 0] = 1.0
        features[flagged, 1:] = columns
        _PROFILES[key] = flagged, features
        weakref.finalize(default_flags, _PROFILES.pop, key, None)
    return _PROFILES[key]


def _miss_model(default_flags: np.ndarray, frames: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """Each frame's chance of a miss from its flag profile (:func:`_flag_profiles`): a logistic
    regression on the verdicts of frames some pair flags, its slopes held back by an L2 penalty
    (MODEL_RIDGE) so that a few verdicts give a gentle model; None until MIN_MODEL_VERDICTS such
    verdicts hold both answers. Frames no pair flags get 0 (no pair's flagged cell holds them)."""
    if default_flags.shape[0] != len(GRID_STEPS) ** 2:
        return None
    flagged, features = _flag_profiles(default_flags)
    used = flagged[frames]
    x, y = features[frames[used]], truth[used]
    if len(y) < MIN_MODEL_VERDICTS or y.min() == y.max():
        return None
    penalty = np.full(x.shape[1], MODEL_RIDGE)
    penalty[0] = 1e-6  # the intercept is free
    weights = np.zeros(x.shape[1])
    for _ in range(50):  # Newton's method: the penalised log-likelihood is strictly concave
        chance = 1 / (1 + np.exp(-(x @ weights)))
        step = np.linalg.solve((x * (chance * (1 - chance))[:, None]).T @ x + np.diag(penalty),
                               x.T @ (chance - y) + penalty * weights)
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return np.where(flagged, 1 / (1 + np.exp(-(features @ weights))), 0.0)


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


@dataclass(frozen=True)
class _Estimates:
    """Point estimates, intervals and F1's standard error at every pair of a grid."""

    grid: Grid
    n_flagged: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    f1_se: np.ndarray
    precision_ci: tuple[np.ndarray, np.ndarray]
    recall_ci: tuple[np.ndarray, np.ndarray]

    def row(self, g: int) -> ThresholdEstimate:
        t, a = self.grid[g]
        return ThresholdEstimate(float(t), float(a), float(self.precision[g]),
                                 (float(self.precision_ci[0][g]), float(self.precision_ci[1][g])), float(self.recall[g]),
                                 (float(self.recall_ci[0][g]), float(self.recall_ci[1][g])), float(self.f1[g]),
                                 int(self.n_flagged[g]))

    def rows(self) -> list[ThresholdEstimate]:
        return [self.row(g) for g in range(len(self.grid))]


def _estimates(flags: np.ndarray, sample: _Verdicts, grid: Grid) -> _Estimates:
    """Per pair, the misses among the frames it flags (A) and among the rest (B), stratum by
    stratum: the verdicts themselves plus each cell's unreviewed frames at the cell's rate."""
    cells = _Cells.of(flags, sample)
    rate_a, rate_b = cells.rates(sample)
    n_flagged = flags.sum(axis=1).astype(np.float64)
    true_flags = (cells.hits_a + (cells.size_a - cells.reviewed_a) * rate_a).sum(axis=1)
    missed = (cells.hits_b + (cells.size_b - cells.reviewed_b) * rate_b).sum(axis=1)
    misses = true_flags + missed
    no_verdicts = len(sample.frames) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where((n_flagged > 0) & ~no_verdicts, true_flags / n_flagged, np.nan)
        recall = np.where(misses > 0, true_flags / misses, np.nan)
        f1 = np.where(n_flagged + misses > 0, 2 * true_flags / (n_flagged + misses), 0.0)
        v_precision = _variance(cells, rate_a, rate_b, 1.0, 0.0) / np.maximum(n_flagged, 1) ** 2
        v_recall = _variance(cells, rate_a, rate_b, 1.0, np.nan_to_num(recall)) / np.maximum(misses, 1e-9) ** 2
        v_f1 = _variance(cells, rate_a, rate_b, 2.0, f1) / np.maximum(n_flagged + misses, 1e-9) ** 2
    reviewed_flagged, reviewed_misses = cells.reviewed_a.sum(axis=1), sample.truth.sum()
    known_hits = cells.hits_a.sum(axis=1)
    all_flagged_known = reviewed_flagged == n_flagged
    all_known = sample.unrepresented == 0 and bool(np.all(sample.counts == sample.sizes))
    precision_ci = _interval(precision, v_precision, reviewed_flagged, all_flagged_known,
                             refuted=reviewed_flagged - known_hits, supported=known_hits)
    recall_ci = _interval(recall, v_recall, np.full(len(flags), reviewed_misses), np.full(len(flags), all_known),
                          refuted=reviewed_misses - known_hits, supported=known_hits)
    return _Estimates(grid, n_flagged, precision, recall, f1, np.sqrt(v_f1), precision_ci, recall_ci)


def _variance(cells: _Cells, rate_a: np.ndarray, rate_b: np.ndarray, a: float, b) -> np.ndarray:
    """Variance of the estimated ``sum_i (a * flag_i - b) * miss_i`` under stratified sampling
    without replacement, post-stratified into the cells: sum over cells of
    N_c^2 (1 - m_c / N_c) c^2 r_c (1 - r_c) / m_c, with c the cell's coefficient (a - b in A, -b in
    B) and r_c its rate; a cell without verdicts adds the spread of its frames at the stratum's rate."""
    b = np.broadcast_to(np.asarray(b, np.float64), (cells.size_a.shape[0],))[:, None]
    total = np.zeros(cells.size_a.shape[0])
    for coefficient, size, reviewed, rate in ((a - b, cells.size_a, cells.reviewed_a, rate_a),
                                               (-b, cells.size_b, cells.reviewed_b, rate_b)):
        spread = coefficient ** 2 * rate * (1 - rate)
        sampled = size ** 2 * (1 - reviewed / np.maximum(size, 1)) * spread / np.maximum(reviewed, 1)
        total += np.where(reviewed > 0, sampled, size * spread).sum(axis=1)
    return total


def _interval(point: np.ndarray, variance: np.ndarray, behind: np.ndarray, exact: np.ndarray, refuted: np.ndarray,
              supported: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """90% Wilson intervals with the effective sample size the variance implies, never more than the
    verdicts behind the ratio; exact where every frame behind it is reviewed. A bound reaches 1 while
    no verdict refutes a ratio of 1, and 0 while none supports more than 0."""
    p = np.nan_to_num(point)
    with np.errstate(divide="ignore", invalid="ignore"):
        informative = (p > 0) & (p < 1) & (variance > 0)
        n_eff = np.minimum(np.where(informative, p * (1 - p) / variance, behind), behind)
    n_eff = np.where(exact, np.inf, n_eff)
    low, high = _wilson(p, n_eff)
    high = np.where((refuted == 0) & ~exact, 1.0, high)
    low = np.where((supported == 0) & ~exact, 0.0, low)
    undefined = np.isnan(point) | ((behind == 0) & ~exact)
    return np.where(undefined, 0.0, low), np.where(undefined, 1.0, high)


def _wilson(p: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion p from n (possibly fractional or infinite) trials."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z2_n = np.where(np.isinf(n), 0.0, np.where(n > 0, Z90 ** 2 / n, np.inf))
        centre = (p + z2_n / 2) / (1 + z2_n)
        half = Z90 * np.sqrt(np.where(np.isinf(n), 0.0, p * (1 - p) / np.maximum(n, 1e-12)) + z2_n ** 2 / (4 * Z90 ** 2)) / (1 + z2_n)
    low = np.where(n > 0, np.clip(np.nan_to_num(centre - half), 0, p), 0.0)
    high = np.where(n > 0, np.clip(np.nan_to_num(centre + half, nan=1.0), p, 1), 1.0)
    return low, high


@dataclass(frozen=True)
class ReviewQueue:
    frames: list[int]  # the plan's frames first, then the other flagged frames
    planned: int  # how many of them come from the plan (the first phase alone while its verdicts are due)
    size: int = -1  # frames the whole plan will hold (-1: planned)
    focus: tuple[float, float] | None = None  # the pair the plan's second phase aims at (ReviewPlan.focus)

    @property
    def plan_size(self) -> int:
        return self.planned if self.size < 0 else self.size

    @property
    def plan_frames(self) -> list[int]:
        """The plan's frames in the queue (the first phase alone while its verdicts are due)."""
        return self.frames[:self.planned]

    def next_unreviewed(self, reviewed: Mapping[int, object]) -> int | None:
        return next((frame for frame in self.frames if frame not in reviewed), None)

    def planned_done(self, reviewed: Mapping[int, object]) -> int:
        return sum(1 for frame in self.plan_frames if frame in reviewed)

    def plan_complete(self, reviewed: Mapping[int, object]) -> bool:
        return self.plan_size > 0 and self.planned == self.plan_size and self.planned_done(reviewed) == self.planned


def review_queue(index: FlickerIndex, flicker: FlickerResult, n: int = 30, seed: int = 0, truths: Truths | None = None,
                 unsure: Collection[int] = ()) -> ReviewQueue:
    """What a reviewer sees, in order: the frames the two-phase plan picks given the verdicts so far
    (:meth:`ReviewPlan.draw`; the estimates rest on them), then the other frames flagged at the
    current thresholds, worst (highest score) first."""
    plan = ReviewPlan.draw(index, n, seed, dict(truths or {}), unsure)
    planned = list(plan.frames)
    seen = set(planned)
    flagged = np.flatnonzero(flicker.flag_array)
    worst_first = flagged[np.argsort(-flicker.score[flagged], kind="stable")]
    return ReviewQueue(planned + [int(frame) for frame in worst_first if int(frame) not in seen], len(planned),
                       plan.plan_size, plan.focus)
