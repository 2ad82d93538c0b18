"""QA estimation: the review plan, estimates that are unbiased at every threshold pair, honest
intervals and a robust suggestion, checked against simulated ground truth."""
import numpy as np
import pytest

from core.flicker import FlickerIndex, FlickerOptions
from core.ground_truth import evaluate_flags, true_misses
from core.qa import (APP_THRESHOLDS, DEFAULT_GRID, ReviewPlan, flag_matrix, precision_recall, review_plan, review_queue,
                     suggest_thresholds, suspicion_bands)
from testkit.qa_sim import footage_videos, motmetrics_ground_truth, simulate_detections

MODES = {"reference": FlickerOptions(), "improved": FlickerOptions.improved()}


@pytest.fixture(scope="module")
def stadtmitte():
    """TUD-Stadtmitte's real tracks seen by a simulated flawed detector (179 frames)."""
    truth = motmetrics_ground_truth("TUD-Stadtmitte")
    return truth, simulate_detections(truth, seed=2)


@pytest.fixture(scope="module", params=list(MODES))
def video(request, stadtmitte):
    """(index, truth per frame, full-truth evaluation) for one flicker mode."""
    ground_truth, detections = stadtmitte
    options = MODES[request.param]
    index = FlickerIndex.from_detections(detections, options)
    truth = true_misses(detections, ground_truth, max_gap=options.window)
    return index, truth, evaluate_flags(index, truth)


def oracle(truth, frames):
    return {f: bool(truth[f]) for f in frames}


def steered(index, truth, n, seed=0):
    """An honest reviewer through a two-phase plan: the first phase, then the second its verdicts
    draw. Returns (verdicts, the pair the plan aimed at)."""
    verdicts = {}
    while True:
        plan = ReviewPlan.draw(index, n, seed, verdicts)
        verdicts |= oracle(truth, plan.frames)
        if len(plan.frames) == plan.plan_size:
            return verdicts, plan.focus


def true_row(evaluation, suggestion):
    return evaluation.rows[DEFAULT_GRID.index((suggestion.iou_track, suggestion.iou_assert))]


def test_flag_matrix_equals_evaluate_at_every_grid_pair(video):
    index, _, _ = video
    flags = flag_matrix(index)
    for row, (track, assertion) in zip(flags, DEFAULT_GRID):
        np.testing.assert_array_equal(row, index.evaluate(track, assertion).flag_array)
    # computed once per index (the Verdicts page asks three times a rerun), shared read-only, equal to
    # what the same grid given as another list gives
    assert flag_matrix(index) is flags and not flags.flags.writeable
    np.testing.assert_array_equal(flag_matrix(index, list(DEFAULT_GRID)), flags)


def test_review_plan_is_deterministic_per_seed_distinct_and_bounded(video):
    index, _, _ = video
    plan = review_plan(index, 30, seed=3)
    assert plan == review_plan(index, 30, seed=3)
    assert plan != review_plan(index, 30, seed=4)
    assert review_plan(index, 30) == review_plan(index, 30, 0)
    assert len(plan) == 30 == len(set(plan))
    assert all(isinstance(f, int) and 0 <= f < index.n_frames for f in plan)
    assert sorted(review_plan(index, 10_000)) == list(range(index.n_frames))
    assert review_plan(index, 0) == []


def test_review_plan_covers_flagged_frames_looser_ones_and_spot_checks(video):
    index, _, _ = video
    plan = np.array(review_plan(index, 30))
    flagged_now = index.evaluate(*APP_THRESHOLDS).flag_array
    flagged_anywhere = flag_matrix(index).any(axis=0)
    band = suspicion_bands(flag_matrix(index))
    assert flagged_now[plan].sum() >= 3
    assert (~flagged_now[plan] & flagged_anywhere[plan]).sum() >= 10  # flagged only at looser thresholds
    assert set(band[plan]) == set(band)  # every suspicion band, the barely flagged ones included, is spot-checked


def test_plan_weights_add_up_to_the_video(video):
    """Each verdict stands for 1/inclusion frames of its band: together, the whole video."""
    index, _, _ = video
    plan = ReviewPlan.draw(index, 30, seed=1)
    assert sum(plan.weights) == pytest.approx(index.n_frames)
    assert all(0 < p <= 1 for p in plan.inclusion)


@pytest.mark.parametrize("seed", [0, 7])
def test_thirty_verdicts_suggest_near_best_thresholds_with_honest_intervals(video, seed):
    index, truth, evaluation = video
    suggestion = suggest_thresholds(index, oracle(truth, review_plan(index, 30, seed)))
    row = true_row(evaluation, suggestion)
    assert not suggestion.fallback and suggestion.n_verdicts == 30
    assert row.f1 >= 0.85 * evaluation.best.f1
    assert suggestion.precision_ci[0] <= row.precision <= suggestion.precision_ci[1]
    assert suggestion.recall_ci[0] <= row.recall <= suggestion.recall_ci[1]
    assert suggestion.f1 == pytest.approx(2 * suggestion.precision * suggestion.recall / (suggestion.precision + suggestion.recall))


def test_verdicts_in_review_order_still_give_a_suggestion_and_say_what_is_guessed(video):
    index, truth, evaluation = video
    flagged = np.flatnonzero(flag_matrix(index, [(0.5, 0.5)])[0])[:20].tolist()
    suggestion = suggest_thresholds(index, oracle(truth, flagged))
    assert not suggestion.fallback and suggestion.n_verdicts == 20
    assert "assumed to miss nothing" in suggestion.note
    assert suggestion.n_unrepresented > 0 and f"{suggestion.n_unrepresented} of {index.n_frames}" in suggestion.note
    assert true_row(evaluation, suggestion).f1 >= 0.7 * evaluation.best.f1


def test_no_verdicts_or_no_confirmed_miss_falls_back_to_current_thresholds(video):
    index, truth, _ = video
    for verdicts in ({}, {int(f): False for f in np.flatnonzero(~truth)[:5]}):
        suggestion = suggest_thresholds(index, verdicts, current=(0.7, 0.5))
        assert suggestion.fallback and (suggestion.iou_track, suggestion.iou_assert) == (0.7, 0.5)
        assert suggestion.precision_ci == suggestion.recall_ci == (0.0, 1.0)
        assert suggestion.n_verdicts == len(verdicts) and suggestion.note
        # "of the plan's frames": verdicts given elsewhere are kept, and "no verdicts yet" beside them read as a contradiction
        assert suggestion.note.startswith("no verdict on the plan's frames confirms a miss yet" if verdicts else
                                          "no verdict on the plan's frames yet")
    assert suggest_thresholds(index, {}).iou_track == APP_THRESHOLDS[0]
    # verdicts only on frames no pair flags, one a miss: no pair is supported, so no suggestion (it was the pair
    # nearest the current thresholds, with figures, as if one)
    quiet = np.flatnonzero(~flag_matrix(index).any(axis=0))[:2]
    unsupported = suggest_thresholds(index, {int(quiet[0]): True, int(quiet[1]): False}, current=(0.33, 0.47))
    assert unsupported.fallback and unsupported.note.startswith("no pair of thresholds flags enough of the judged frames")


def test_a_single_verdict_gives_a_wide_but_valid_estimate(video):
    index, truth, _ = video
    frame = int(np.flatnonzero(truth & index.evaluate(0.3, 0.5).flag_array)[0])
    suggestion = suggest_thresholds(index, {frame: True})
    assert not suggestion.fallback and "rough guide" in suggestion.note
    for low, high in (suggestion.precision_ci, suggestion.recall_ci):
        assert 0 <= low <= high <= 1 and high - low > 0.3


def test_precision_recall_rows_follow_the_grid(video):
    index, truth, _ = video
    grid = [(0.3, 0.5), (0.8, 0.6), (0.95, 0.05)]
    rows = precision_recall(index, oracle(truth, review_plan(index, 30)), grid)
    assert [(r.iou_track, r.iou_assert) for r in rows] == grid
    for row, (track, assertion) in zip(rows, grid):
        assert row.n_flagged == index.evaluate(track, assertion).n_flagged
        for value, (low, high) in ((row.precision, row.precision_ci), (row.recall, row.recall_ci)):
            assert np.isnan(value) or low <= value <= high
    empty = precision_recall(index, {}, grid)
    assert all(np.isnan(r.precision) and r.precision_ci == (0.0, 1.0) for r in empty)


def test_reviewing_every_frame_gives_the_exact_values(video):
    index, truth, evaluation = video
    rows = precision_recall(index, oracle(truth, range(index.n_frames)), DEFAULT_GRID[::37])
    for row, exact in zip(rows, evaluation.rows[::37]):
        assert row.precision_ci == pytest.approx((exact.precision,) * 2, nan_ok=True) or exact.n_flagged == 0
        assert row.recall == pytest.approx(exact.recall) and row.recall_ci == pytest.approx((exact.recall,) * 2)


def test_verdicts_outside_the_video_are_refused(video):
    index, _, _ = video
    with pytest.raises(ValueError, match="outside"):
        suggest_thresholds(index, {index.n_frames: True})


def test_estimates_are_unbiased_at_every_pair_where_the_bands_hide_the_difference(video):
    """Averaged over many plans, the estimated precision and recall equal the truth at every grid
    pair, also at pairs that flag part of a band whose frames differ in how often they miss (where
    giving every frame of a band the band's rate was biased, the more so with more verdicts)."""
    index, truth, evaluation = video
    estimates = np.array([[(r.precision, r.recall) for r in precision_recall(index, oracle(truth, review_plan(index, 60, s)))]
                          for s in range(120)])
    exact = np.array([(r.precision, r.recall) for r in evaluation.rows])
    flagged = np.array([r.n_flagged for r in evaluation.rows]) >= 5
    bias = np.abs(np.nanmean(estimates, axis=0) - exact)[flagged]
    spread = np.nanstd(estimates, axis=0)[flagged] / np.sqrt(len(estimates))
    assert np.nanmax(bias - 4 * spread) < 0.03, np.nanmax(bias)


@pytest.mark.slow
@pytest.mark.parametrize("kind, n", [("rare", 120), ("fast", 120), ("traffic", 30), ("static", 120), ("sports", 30), ("night", 30)])
def test_intervals_hold_the_truth_in_hard_footage(kind, n):
    """Footage where the old band-rate estimate narrowed onto the wrong value (rare flicker: 4 of 10
    intervals held the truth at 0.8 / 0.6 with 120 verdicts), and footage no constant was chosen on
    (made-up vehicle tracks; testkit/held_out.py's pitch, parking lot and night street, measured 9-10
    of 10): the 90% intervals at that fixed pair hold the true precision and recall
    on at least 8 of 10 videos, and the suggestion reaches 0.85 of the best F1 on average."""
    held, ratios = 0, []
    for simulated in footage_videos(kind, range(5)):
        index = FlickerIndex.from_detections(simulated.detections)
        truth = true_misses(simulated.detections, simulated.ground_truth)
        evaluation = evaluate_flags(index, truth)
        verdicts, focus = steered(index, truth, n)
        row, exact = precision_recall(index, verdicts, [(0.8, 0.6)], focus)[0], evaluation.rows[DEFAULT_GRID.index((0.8, 0.6))]
        held += all(np.isnan(value) or low - 1e-9 <= value <= high + 1e-9
                    for value, (low, high) in ((exact.precision, row.precision_ci), (exact.recall, row.recall_ci)))
        ratios.append(true_row(evaluation, suggest_thresholds(index, verdicts, focus=focus)).f1 / evaluation.best.f1)
    assert held >= 8 and np.mean(ratios) >= 0.85, (held, ratios)


def test_the_miss_model_shrinks_the_bias_at_fast_footages_best_pair(monkeypatch):
    """Fast motion: the best pair (0.15 / 0.2) flags few frames, spread over large bands where no
    verdict lands among them, and they miss an object far more often than their bands do. Over 40
    plans of 30 verdicts the estimated precision and F1 there sit below the truth; the flag-profile
    model behind the flagged cells' rates cuts that bias by at least a third against the band rates
    alone (measured: precision 0.46 -> 0.59 and F1 0.46 -> 0.56 against a true 0.81 and 0.68)."""
    from core import qa

    simulated = footage_videos("fast", range(1))[0]
    index = FlickerIndex.from_detections(simulated.detections)
    truth = true_misses(simulated.detections, simulated.ground_truth)
    best = evaluate_flags(index, truth).best
    pair = (best.iou_track, best.iou_assert)

    def mean_estimate() -> np.ndarray:
        rows = [precision_recall(index, oracle(truth, review_plan(index, 30, seed)), [pair])[0] for seed in range(40)]
        return np.nanmean([(row.precision, row.f1) for row in rows], axis=0)
    modelled = mean_estimate()
    monkeypatch.setattr(qa, "_miss_model", lambda *args: None)
    band_rates = mean_estimate()
    exact = np.array([best.precision, best.f1])
    assert np.all(np.abs(modelled - exact) <= 2 / 3 * np.abs(band_rates - exact)), (pair, exact, modelled, band_rates)


def test_the_miss_model_reads_a_frames_flag_profile_and_waits_for_both_answers(video):
    """Fitted on verdicts of frames some pair flags: none with fewer than MIN_MODEL_VERDICTS of them
    or with one answer only; otherwise a chance per frame, 0 where no pair flags it, higher where the
    verdicts found misses."""
    from core import qa

    index, truth, _ = video
    flags = flag_matrix(index)
    flagged = np.flatnonzero(flags.any(axis=0))
    misses, clean = flagged[truth[flagged]], flagged[~truth[flagged]]
    frames = np.concatenate([misses[:6], clean[:6]])
    assert qa._miss_model(flags, frames[:3], truth[frames[:3]].astype(float)) is None
    assert qa._miss_model(flags, clean[:8], np.zeros(8)) is None
    chance = qa._miss_model(flags, frames, truth[frames].astype(float))
    assert chance.shape == (index.n_frames,) and np.all((chance >= 0) & (chance <= 1))
    assert np.all(chance[~flags.any(axis=0)] == 0)
    assert chance[misses[:6]].mean() > chance[clean[:6]].mean()


def test_a_suggestion_says_how_much_it_flags(video):
    index, truth, _ = video
    suggestion = suggest_thresholds(index, oracle(truth, review_plan(index, 30)))
    assert suggestion.n_flagged == index.evaluate(suggestion.iou_track, suggestion.iou_assert).n_flagged
    everything = suggest_thresholds(index, {f: True for f in range(index.n_frames)})
    assert everything.n_flagged > index.n_frames / 2 and "flag" in everything.note


def test_review_queue_puts_the_plan_first_then_flagged_frames_worst_first(stadtmitte):
    from core.qa import review_queue

    index = FlickerIndex.from_detections(stadtmitte[1])
    flicker = index.evaluate(0.5, 0.6)
    queue = review_queue(index, flicker, n=10, seed=3)
    first = review_plan(index, 10, seed=3, truths={})
    assert len(first) == 5 and queue.plan_size == 10, "the first phase; the second waits for its verdicts"
    assert queue.frames[:queue.planned] == first and len(set(queue.frames)) == len(queue.frames)
    rest = queue.frames[queue.planned:]
    assert set(rest) == set(np.flatnonzero(flicker.flag_array).tolist()) - set(first)
    assert list(flicker.score[rest]) == sorted(flicker.score[rest], reverse=True)
    reviewed = {first[0]: True, first[2]: False}
    assert queue.next_unreviewed(reviewed) == first[1] and queue.planned_done(reviewed) == 2
    assert not queue.plan_complete(oracle(np.ones(index.n_frames, bool), first))


def test_the_second_phase_follows_the_first_phases_verdicts_and_nothing_else(video):
    index, truth, _ = video
    first = ReviewPlan.draw(index, 30, seed=5, truths={})
    assert len(first.frames) == 15 and first.plan_size == 30 and first.focus is None
    assert ReviewPlan.draw(index, 30, 5, oracle(truth, first.frames[:-1])).frames == first.frames, "one verdict still due"
    whole = ReviewPlan.draw(index, 30, 5, oracle(truth, first.frames))
    assert whole.frames[:15] == first.frames and len(set(whole.frames)) == len(whole.frames) == 30
    suggested = suggest_thresholds(index, oracle(truth, first.frames))
    assert whole.focus == (suggested.iou_track, suggested.iou_assert)
    assert ReviewPlan.draw(index, 30, 5, oracle(truth, whole.frames)).frames == whole.frames, "second-phase verdicts change nothing"
    unsure = ReviewPlan.draw(index, 30, 5, oracle(truth, first.frames[1:]), unsure=first.frames[:1])
    assert len(unsure.frames) == 30, "an unsure verdict is a verdict: the second phase comes"
    by_band = [f for f in review_plan(index, index.n_frames, 5) if f not in first.frames][:15]
    assert set(whole.frames[15:]) != set(by_band), "steered by the first phase's verdicts, not the bands alone"
    assert sum(whole.weights) <= index.n_frames + 1e-6 and all(0 < p <= 1 for p in whole.inclusion)


def test_two_phase_estimates_are_unbiased_at_every_pair(video):
    """Drawn at random inside the cells the aimed pair cuts out of the bands, the second phase keeps
    the post-stratified estimates unbiased at every grid pair, not only at the one it aims at."""
    index, truth, evaluation = video
    estimates = []
    for seed in range(60):
        verdicts, focus = steered(index, truth, 60, seed)
        estimates.append([(r.precision, r.recall) for r in precision_recall(index, verdicts, focus=focus)])
    estimates = np.array(estimates)
    exact = np.array([(r.precision, r.recall) for r in evaluation.rows])
    flagged = np.array([r.n_flagged for r in evaluation.rows]) >= 5
    bias = np.abs(np.nanmean(estimates, axis=0) - exact)[flagged]
    spread = np.nanstd(estimates, axis=0)[flagged] / np.sqrt(len(estimates))
    assert np.nanmax(bias - 4 * spread) < 0.03, np.nanmax(bias)


def test_a_focus_outside_the_grid_is_refused(video):
    index, truth, _ = video
    with pytest.raises(ValueError, match="focus"):
        precision_recall(index, oracle(truth, range(10)), focus=(0.33, 0.6))


@pytest.mark.slow
def test_verdicts_off_the_plan_do_not_bias_the_intervals():
    """The Verdicts page's queue goes on after the plan with the frames flagged at the thresholds in
    use, worst first. Those verdicts are no random sample: counted with the plan's, the precision
    intervals at eight pairs held the truth on fewer of 40 fast videos (measured 0.894 against
    0.944). Passed as ``planned``, the estimates rest on the plan's verdicts alone."""
    pairs = [(0.2, 0.2), (0.2, 0.5), (0.5, 0.3), (0.5, 0.5), (0.8, 0.6), (0.3, 0.8), (0.9, 0.9), (0.05, 0.95)]
    held = {"all verdicts": [], "the plan's": []}
    for mode in MODES.values():
        for simulated in footage_videos("fast", range(10)):
            index = FlickerIndex.from_detections(simulated.detections, mode)
            truth = true_misses(simulated.detections, simulated.ground_truth, max_gap=mode.window)
            exact = evaluate_flags(index, truth)
            verdicts, focus = steered(index, truth, 30)
            queue = review_queue(index, index.evaluate(0.8, 0.6), 30, 0, verdicts)
            beyond = [f for f in queue.frames[queue.planned:] if f not in verdicts][:20]
            judged = verdicts | oracle(truth, beyond)
            for name, planned in (("all verdicts", None), ("the plan's", queue.frames[:queue.planned])):
                rows = precision_recall(index, judged, pairs, focus, planned)
                held[name] += [np.isnan(e.precision) or r.precision_ci[0] - 1e-9 <= e.precision <= r.precision_ci[1] + 1e-9
                               for r, e in zip(rows, (exact.rows[DEFAULT_GRID.index(p)] for p in pairs))]
    assert np.mean(held["the plan's"]) >= 0.92 and np.mean(held["the plan's"]) > np.mean(held["all verdicts"]) + 0.03, held
