"""QA estimation: the review plan, threshold suggestions with intervals, and ground truth."""
import numpy as np
import pytest

from core.detections import Detections
from core.errors import UserError
from core.flicker import FlickerIndex, FlickerOptions
from core.qa import (APP_THRESHOLDS, DEFAULT_GRID, GroundTruth, evaluate_flags, flag_matrix, plan_review, precision_recall,
                     read_mot_ground_truth, review_plan, suggest_thresholds, suspicion_bands, true_misses)
from testkit.qa_sim import motmetrics_ground_truth, simulate_detections

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


def true_row(evaluation, suggestion):
    return evaluation.rows[DEFAULT_GRID.index((suggestion.iou_track, suggestion.iou_assert))]


def test_flag_matrix_equals_evaluate_at_every_grid_pair(video):
    index, _, _ = video
    flags = flag_matrix(index)
    for row, (track, assertion) in zip(flags, DEFAULT_GRID):
        np.testing.assert_array_equal(row, index.evaluate(track, assertion).flag_array)


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
    plan = plan_review(index, 30, seed=1)
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


def test_verdicts_in_review_order_still_give_a_suggestion_and_say_what_is_assumed(video):
    index, truth, evaluation = video
    flagged = np.flatnonzero(flag_matrix(index, [(0.5, 0.5)])[0])[:20].tolist()
    suggestion = suggest_thresholds(index, oracle(truth, flagged))
    assert not suggestion.fallback and suggestion.n_verdicts == 20
    assert "assumed to miss nothing" in suggestion.note
    assert true_row(evaluation, suggestion).f1 >= 0.7 * evaluation.best.f1


def test_no_verdicts_or_no_confirmed_miss_falls_back_to_current_thresholds(video):
    index, truth, _ = video
    for verdicts in ({}, {int(f): False for f in np.flatnonzero(~truth)[:5]}):
        suggestion = suggest_thresholds(index, verdicts, current=(0.7, 0.5))
        assert suggestion.fallback and (suggestion.iou_track, suggestion.iou_assert) == (0.7, 0.5)
        assert suggestion.precision_ci == suggestion.recall_ci == (0.0, 1.0)
        assert suggestion.n_verdicts == len(verdicts) and suggestion.note
    assert suggest_thresholds(index, {}).iou_track == APP_THRESHOLDS[0]


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


def test_verdicts_outside_the_video_or_given_as_labels_are_refused(video):
    index, _, _ = video
    with pytest.raises(ValueError, match="outside"):
        suggest_thresholds(index, {index.n_frames: True})
    with pytest.raises(TypeError, match="miss"):
        precision_recall(index, {0: "false_alarm"})


# ---------------------------------------------------------------------------------------- ground truth

def test_read_mot_ground_truth_formats_and_ignored_rows(tmp_path):
    mot16 = tmp_path / "gt.txt"
    mot16.write_text("2,7,10,20,30,40,1,1,0.9\n1,7,12,20,30,40,1,1,1.0\n1,8,0,0,5,5,0,7,0.1\n")
    truth = read_mot_ground_truth(mot16)
    np.testing.assert_array_equal(truth.frame, [0, 1])  # 1-based frames, sorted; conf 0 row dropped
    np.testing.assert_array_equal(truth.xyxy[1], [10, 20, 40, 60])
    assert truth.n_frames == 2 and truth.track_id.tolist() == [7, 7]
    campus = motmetrics_ground_truth("TUD-Campus")  # MOT15 layout: world coordinates after conf
    assert campus.n_frames == 71 and len(campus.frame) == 359


@pytest.mark.parametrize("content", ["frame,id,x,y,w,h\n", "1,2,3,4\n", "1,1,0,0,10,10\n1,1,0,0\n", "0,1,0,0,5,5,1\n",
                                     "1,1,0,0,-5,5,1\n", ""])
def test_malformed_ground_truth_is_one_user_error_line(tmp_path, content):
    path = tmp_path / "gt.txt"
    path.write_text(content)
    with pytest.raises(UserError) as error:
        read_mot_ground_truth(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_missing_ground_truth_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_mot_ground_truth(tmp_path / "nope.txt")


def detections_of(boxes_per_frame):
    return Detections.from_frames([(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes)), np.zeros(len(boxes)))
                                   for boxes in boxes_per_frame], {0: "person"})


def ground_truth(rows):
    """rows: (frame, track, x0, y0, x1, y1)."""
    rows = np.array(sorted(rows), np.float64)
    frame = rows[:, 0].astype(np.int32)
    return GroundTruth(frame, rows[:, 1].astype(np.int64), rows[:, 2:].astype(np.float32), int(frame.max()) + 1)


BOX_A, BOX_B = [0, 0, 10, 10], [50, 0, 60, 10]


def test_true_misses_counts_single_frame_misses_bounded_by_matches():
    gt = ground_truth([(i, 1, *BOX_A) for i in range(7)] + [(i, 2, *BOX_B) for i in range(7)])
    shifted = [4, 0, 14, 10]  # IoU 0.43 with BOX_A: not a match
    detections = detections_of([[], [BOX_A, BOX_B], [BOX_B], [BOX_A], [shifted], [], [BOX_A, BOX_B]])
    # A: unmatched at 0 (track start), 2 (single), 4-5 (two frames); B: unmatched at 3-5 (three frames)
    np.testing.assert_array_equal(true_misses(detections, gt), [0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(true_misses(detections, gt, max_gap=2), [0, 0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(true_misses(detections, gt, max_gap=3), [0, 0, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(true_misses(detections, gt, iou=0.4, max_gap=2), [0, 0, 1, 0, 0, 1, 0])


def test_one_detection_matches_one_object_only():
    other = [2, 0, 12, 10]  # overlaps BOX_A at IoU 0.67
    gt = ground_truth([(i, t, *box) for i in range(3) for t, box in ((1, BOX_A), (2, other))])
    detections = detections_of([[BOX_A, other], [BOX_A], [BOX_A, other]])
    np.testing.assert_array_equal(true_misses(detections, gt), [0, 1, 0])


def test_evaluate_flags_scores_every_pair_and_names_the_best():
    boxes = [[BOX_A], [], [BOX_A], [BOX_A], [[1, 0, 11, 10]], [BOX_A]]  # a miss at 1; a shifted box at 4
    index = FlickerIndex.from_detections(detections_of(boxes), FlickerOptions.improved(window=1))
    truth = np.array([0, 1, 0, 0, 0, 0], bool)
    evaluation = evaluate_flags(index, truth, [(0.5, 0.5), (0.5, 0.95)])
    strict, loose = evaluation.rows
    assert (strict.precision, strict.recall, strict.f1, strict.n_flagged) == (1.0, 1.0, 1.0, 1)
    # the shifted box (IoU 0.82 with the others) is flagged at 0.95 in frame 4, and frame 3 by the imputed mean
    assert (loose.precision, loose.recall, loose.n_flagged) == (pytest.approx(1 / 3), 1.0, 3)
    assert evaluation.best == strict and evaluation.n_true_misses == 1
    with pytest.raises(ValueError):
        evaluate_flags(index, truth[:3])


def test_review_queue_puts_the_plan_first_then_flagged_frames_worst_first(stadtmitte):
    from core.qa import review_queue

    index = FlickerIndex.from_detections(stadtmitte[1])
    flicker = index.evaluate(0.5, 0.6)
    queue = review_queue(index, flicker, n=10, seed=3)
    plan = review_plan(index, 10, seed=3)
    assert queue.frames[:queue.planned] == plan and len(set(queue.frames)) == len(queue.frames)
    rest = queue.frames[queue.planned:]
    assert set(rest) == set(np.flatnonzero(flicker.flag_array).tolist()) - set(plan)
    assert list(flicker.score[rest]) == sorted(flicker.score[rest], reverse=True)
    reviewed = {plan[0]: True, plan[2]: False}
    assert queue.next_unreviewed(reviewed) == plan[1] and queue.planned_done(reviewed) == 2
