from pathlib import Path

import motmetrics
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.detections import Detections
from core.flicker import FlickerIndex, FlickerOptions, _frame_chunks, compute_flickering_assertion
from testkit.reference import oracle_flickering

THRESHOLDS = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.8, 0.6), (0.9, 0.6), (0.5, 0.5), (0.3, 0.9)]


def frame(*boxes, cls=0):
    return {"file_name": "f.png", "predictions": [{"category_id": cls, "bbox": list(b), "score": 0.5} for b in boxes]}


def assert_matches_oracle(predictions_list, thresholds=THRESHOLDS):
    index = FlickerIndex.from_predictions_list(predictions_list)
    for track, assertion in thresholds:
        expected = oracle_flickering(predictions_list, track, assertion)
        assert compute_flickering_assertion(predictions_list, track, assertion) == expected
        result = index.evaluate(iou_track=track, iou_assert=assertion)
        assert (result.flags, result.imputed) == expected


coordinate = st.integers(0, 120)
size = st.integers(-3, 60)  # zero-size (and invalid negative) boxes included on purpose
box = st.tuples(coordinate, coordinate, size, size)
frame_strategy = st.lists(box, max_size=5).map(lambda boxes: frame(*boxes))


@settings(max_examples=300, deadline=None)
@given(st.lists(frame_strategy, max_size=14), st.floats(0, 1), st.floats(0, 1))
def test_fast_engine_equals_oracle_on_random_sequences(predictions_list, track, assertion):
    assert_matches_oracle(predictions_list, [(track, assertion)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(st.floats(0, 200), st.floats(0, 200), st.floats(0, 80), st.floats(0, 80)), max_size=4)
                .map(lambda boxes: frame(*boxes)), min_size=3, max_size=10))
def test_float_boxes_are_truncated_like_the_tutorial(predictions_list):
    assert_matches_oracle(predictions_list, [(0.5, 0.6), (0.1, 0.9)])


def test_repeated_motion_creates_flicker_that_both_find():
    # one object moving right, missed in frame 2 and 5; a second object always there
    frames = [frame((10 + i, 10, 40, 40), (200, 50, 30, 60)) for i in range(8)]
    frames[2] = frame((200, 50, 30, 60))
    frames[5] = frame((200, 50, 30, 60), (300, 300, 10, 10))
    assert_matches_oracle(frames)
    flags, imputed = compute_flickering_assertion(frames, 0.8, 0.6)
    assert flags == [False, False, True, False, False, True, False, False]
    assert imputed[2] == [[[12, 10, 52, 50]]]


@pytest.mark.parametrize(
    "predictions_list",
    [
        [],
        [frame((0, 0, 10, 10))],
        [frame((0, 0, 10, 10)), frame((0, 0, 10, 10))],
        [frame((0, 0, 10, 10)), frame(), frame((0, 0, 10, 10))],
        [frame(), frame(), frame()],
        [frame((5, 5, 0, 0)), frame((5, 5, 0, 0)), frame((5, 5, 0, 0))],  # zero-size everywhere: NaN IoUs
        [frame((5, 5, 0, 0)), frame(), frame((5, 5, 0, 0))],
        [frame((0, 0, 10, 10), (0, 0, 10, 10)), frame(), frame((0, 0, 10, 10), (0, 0, 10, 10))],  # duplicates
        [frame((0, 0, 10, 10)), frame((0, 0, 10, 10), (0, 0, 0, 0)), frame((0, 0, 10, 10))],
        [frame((0, 0, 10, 10)), frame((50, 50, 10, 10)), frame((0, 0, 10, 10)), frame(), frame((0, 0, 10, 10))],
    ],
    ids=["empty-video", "1-frame", "2-frames", "gap", "all-empty", "zero-size", "zero-size-gap", "duplicates",
         "zero-size-centre", "two-gaps"],
)
def test_edge_cases_match_oracle(predictions_list):
    assert_matches_oracle(predictions_list)


def test_threshold_compared_in_float32_like_torch():
    # IoU exactly 4/5: float32(0.8) equals it, so "> 0.8" is false in float32 (true in float64)
    prev = frame((0, 0, 5, 1))
    nxt = frame((0, 0, 4, 1))
    assert compute_flickering_assertion([prev, frame(), nxt], 0.8, 0.6) == oracle_flickering([prev, frame(), nxt], 0.8, 0.6)
    assert compute_flickering_assertion([prev, frame(), nxt], 0.8, 0.6)[0] == [False, False, False]
    assert compute_flickering_assertion([prev, frame(), nxt], 0.79, 0.6)[0] == [False, True, False]


def load_mot(name: str, drop_every: int = 0) -> list[dict]:
    path = Path(motmetrics.__file__).parent / "data" / name / "test.txt"
    rows = np.loadtxt(path, delimiter=",")
    n = int(rows[:, 0].max())
    frames = [[] for _ in range(n)]
    for k, (f, _, x, y, w, h, *_) in enumerate(rows):
        if drop_every and k % drop_every == 0:
            continue  # a detector that misses now and then
        frames[int(f) - 1].append({"category_id": 0, "bbox": [x, y, w, h], "score": 1.0})
    return [{"file_name": f"{name}-{i}.png", "predictions": p} for i, p in enumerate(frames)]


@pytest.mark.parametrize("name", ["TUD-Campus", "TUD-Stadtmitte"])
@pytest.mark.parametrize("drop_every", [0, 7])
def test_real_tracker_output_matches_oracle(name, drop_every):
    predictions_list = load_mot(name, drop_every)
    assert_matches_oracle(predictions_list, [(0.8, 0.6), (0.5, 0.5), (0.3, 0.7), (0.0, 1.0)])
    if drop_every:
        assert any(compute_flickering_assertion(predictions_list, 0.5, 0.5)[0])


def test_evaluate_rejects_bad_thresholds():
    index = FlickerIndex.from_predictions_list([frame((0, 0, 1, 1))] * 3)
    for bad in (-0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="must be a number in"):
            index.evaluate(iou_track=bad)
        with pytest.raises(ValueError):
            index.evaluate(iou_assert=bad)


def test_from_detections_equals_drop_in_on_exported_boxes():
    rng = np.random.default_rng(3)
    n = 60
    counts = rng.integers(0, 4, n)
    xy = rng.uniform(0, 300, (counts.sum(), 2))
    wh = rng.uniform(5, 80, (counts.sum(), 2))
    det = Detections(np.repeat(np.arange(n), counts), np.concatenate([xy, xy + wh], 1), rng.uniform(0.1, 1, counts.sum()),
                     np.zeros(counts.sum()), {0: "person"}, n, image_size=(320, 240))
    predictions_list = det.to_predictions_list([f"v-{i:02d}-mp4.png" for i in range(n)])
    for track, assertion in [(0.3, 0.6), (0.1, 0.9)]:
        ours = FlickerIndex.from_detections(det).evaluate(track, assertion)
        assert (ours.flags, ours.imputed) == compute_flickering_assertion(predictions_list, track, assertion)


def test_index_memory_is_linear_in_boxes():
    def index_for(n_frames):
        rng = np.random.default_rng(0)
        frames = []
        for i in range(n_frames):
            boxes = [(20 * k + i % 3, 30, 15, 40) for k in range(8) if rng.random() > 0.1]
            frames.append(frame(*boxes))
        return FlickerIndex.from_predictions_list(frames)

    small, large = index_for(500), index_for(4000)
    assert large.nbytes / small.nbytes == pytest.approx(8, rel=0.15)


def crowded_spot(n_boxes: int, n_frames: int = 3):
    """``n_boxes`` overlapping boxes on one spot in each of ``n_frames`` frames (a few KB in a label file)."""
    counts = np.array([0, *[n_boxes] * n_frames, 0])
    boxes = np.array([[100 + k % 50, 100, 150 + k % 50, 200] for _ in range(n_frames) for k in range(n_boxes)], np.float32)
    return counts, boxes, np.zeros(len(boxes), np.int32)


def test_a_frame_crowded_with_overlapping_boxes_takes_bounded_memory(monkeypatch):
    """b boxes on one spot in frames i-1, i, i+1 make b^2 pairs, each compared with b boxes: 200 took
    700 MB before the comparisons were made block by block (600 took 18 GB). Such stacks are refused
    now (the next test); the block-by-block build still bounds what is let through."""
    import tracemalloc

    monkeypatch.setattr("core.flicker.MAX_WORK_PER_FRAME", 10**12)
    tracemalloc.start()
    index = FlickerIndex.build(*crowded_spot(200), FlickerOptions())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(index.pair_iou) == 200 * 200 and peak < 150e6, peak


def test_boxes_stacked_on_one_spot_are_refused_before_the_hours_they_would_take():
    """300 boxes on one spot per frame (a 5 MB MOT file) ran for hours: 90,000 pairs per frame, each
    compared with 301 boxes. 40 on a spot (1,600 pairs) is seconds and goes through; a crowd of 300
    people each overlapping a few neighbours is far under the limit."""
    from core.errors import UserError

    with pytest.raises(UserError, match=r"The boxes of frames 1 and 3 overlap in 40,000 pairs \(200 and 200 boxes"):
        FlickerIndex.build(*crowded_spot(200), FlickerOptions())
    assert len(FlickerIndex.build(*crowded_spot(40, n_frames=5), FlickerOptions()).pair_iou) == 3 * 40 * 40
    rng = np.random.default_rng(0)  # 300 people in a 1920 x 1080 frame, drifting, 20 frames
    spots = rng.uniform([0, 0], [1860, 960], (300, 2))
    boxes = np.concatenate([np.hstack([spots + f, spots + f + [60, 120]]) for f in range(20)]).astype(np.float32)
    index = FlickerIndex.build(np.full(20, 300), boxes, np.zeros(len(boxes), np.int32), FlickerOptions())
    assert len(index.pair_iou) > 18 * 300


def test_a_frame_with_more_boxes_than_the_assertion_takes_is_one_line():
    from core.errors import UserError

    with pytest.raises(UserError, match=r"Frame 1 holds 1,001 boxes \(3 frames hold more than 1,000\)"):
        FlickerIndex.build(*crowded_spot(1001), FlickerOptions())


@pytest.mark.parametrize("options", [FlickerOptions(), FlickerOptions.improved(window=1), FlickerOptions.improved(window=3)])
def test_an_index_built_in_tiny_chunks_equals_one_built_whole(monkeypatch, options):
    """The build cuts centre frames into chunks of bounded work; every cut (one per few frames here)
    must give the same rows in the same order as one chunk."""
    rng = np.random.default_rng(5)
    n = 80
    counts = rng.integers(0, 6, n)
    xy = rng.uniform(0, 60, (counts.sum(), 2))
    det = Detections(np.repeat(np.arange(n), counts), np.concatenate([xy, xy + rng.uniform(5, 60, (counts.sum(), 2))], 1),
                     rng.uniform(0.1, 1, counts.sum()), rng.integers(0, 2, counts.sum()), {0: "a", 1: "b"}, n, (200, 200))
    whole = FlickerIndex.from_detections(det, options)
    monkeypatch.setattr("core.flicker._ROWS_PER_CHUNK", 40)
    chunked = FlickerIndex.from_detections(det, options)
    assert len(whole.pair_frame) > 40 and len(_frame_chunks(det.counts_per_frame(), options.window)) > 20
    for mine, theirs in zip(chunked._arrays(), whole._arrays()):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


@pytest.mark.parametrize("options", [FlickerOptions(), FlickerOptions.improved(window=2)])
def test_an_index_built_above_a_tracking_iou_evaluates_as_the_full_one_there(options):
    """The drop-in builds only the pairs its one tracking threshold can use; at and above that
    threshold everything (flags, imputed boxes, scores) equals the full index, below it is refused."""
    predictions_list = load_mot("TUD-Stadtmitte", drop_every=7)
    full = FlickerIndex.from_predictions_list(predictions_list, options)
    lean = FlickerIndex.from_predictions_list(predictions_list, options, min_iou_track=0.5)
    assert 0 < len(lean.pair_iou) < len(full.pair_iou)
    for track, assertion in [(0.5, 0.6), (0.7, 0.3), (0.9, 0.9)]:
        a, b = lean.evaluate(track, assertion), full.evaluate(track, assertion)
        assert (a.flags, a.imputed) == (b.flags, b.imputed) and np.array_equal(a.score, b.score)
    with pytest.raises(ValueError, match="below 0.5"):
        lean.evaluate(0.4, 0.6)


# ---- improved mode ----

def improved(**overrides):
    options = {"class_aware": False, "one_to_one": False, "window": 1, "empty_window_median": False} | overrides
    return FlickerOptions.improved(**options)


def test_improved_with_all_options_off_flags_like_reference():
    predictions_list = load_mot("TUD-Campus", drop_every=5)
    ref = FlickerIndex.from_predictions_list(predictions_list).evaluate(0.5, 0.5)
    imp = FlickerIndex.from_predictions_list(predictions_list, improved()).evaluate(0.5, 0.5)
    # only float boxes differ (no int truncation), which rarely moves an IoU across a threshold
    assert np.mean(ref.flag_array == imp.flag_array) > 0.97


def test_class_aware_matching_ignores_other_classes():
    a = {"category_id": 0, "bbox": [0, 0, 10, 10], "score": 0.9}
    b = {"category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}
    frames = [{"file_name": "x", "predictions": [a]}, {"file_name": "y", "predictions": [b]},
              {"file_name": "z", "predictions": [a]}]
    assert FlickerIndex.from_predictions_list(frames).evaluate(0.5, 0.5).flags == [False, False, False]
    result = FlickerIndex.from_predictions_list(frames, improved(class_aware=True)).evaluate(0.5, 0.5)
    assert result.flags == [False, True, False]
    assert result.imputed_cls.tolist() == [0]


def test_one_to_one_imputes_each_object_once():
    frames = [frame((0, 0, 10, 10), (0, 0, 10, 10)), frame(), frame((0, 0, 10, 10), (0, 0, 10, 10))]
    assert len(FlickerIndex.from_predictions_list(frames).evaluate(0.5, 0.5).imputed[1]) == 4
    assert len(FlickerIndex.from_predictions_list(frames, improved(one_to_one=True)).evaluate(0.5, 0.5).imputed[1]) == 2


def test_one_to_one_matching_is_threshold_consistent():
    """Greedy matching then filtering equals filtering then greedy matching, for every threshold."""
    rng = np.random.default_rng(5)
    frames = [frame(*[(int(x), int(y), 30, 30) for x, y in rng.integers(0, 60, (4, 2))]) for _ in range(30)]
    index = FlickerIndex.from_predictions_list(frames, improved(one_to_one=True))
    for track in (0.0, 0.2, 0.4, 0.6, 0.8):
        kept = index.pair_iou > np.float32(track)
        for i in np.unique(index.pair_frame[kept]):
            rows = kept & (index.pair_frame == i)
            assert len(index.pair_mean[rows]) <= min(len(frames[i - 1]["predictions"]), len(frames[i + 1]["predictions"]))


def test_wider_window_catches_two_frame_gaps():
    frames = [frame((10 + i, 10, 40, 40)) for i in range(7)]
    frames[3] = frame()
    frames[4] = frame()
    assert not any(FlickerIndex.from_predictions_list(frames).evaluate(0.5, 0.5).flags)
    result = FlickerIndex.from_predictions_list(frames, improved(window=2)).evaluate(0.5, 0.5)
    assert result.flags == [False, False, False, True, True, False, False]
    assert [len(boxes) for boxes in result.imputed] == [0, 0, 0, 1, 1, 0, 0]  # one box per object, not per lag


def test_scores_are_continuous_and_agree_with_flags():
    predictions_list = load_mot("TUD-Stadtmitte", drop_every=6)
    result = FlickerIndex.from_predictions_list(predictions_list, improved()).evaluate(0.5, 0.6)
    assert result.score.min() >= 0 and result.score.max() <= 1
    assert len(np.unique(result.score)) > 5
    assert np.all(result.score[result.flag_array] > 1 - 0.6 - 1e-6)


def test_empty_windows_get_the_median_score():
    a, b = frame((10, 10, 40, 40)), frame((25, 10, 40, 40))  # IoU 0.45: a partial miss in every other frame
    frames = [a, b, a, b, a, b, a] + [frame() for _ in range(5)] + [a, b, a]
    plain = FlickerIndex.from_predictions_list(frames, improved()).evaluate(0.5, 0.5)
    median = FlickerIndex.from_predictions_list(frames, improved(empty_window_median=True)).evaluate(0.5, 0.5)
    empty = [8, 9, 10]  # frames whose whole window (k=1) is empty
    assert plain.score[empty].tolist() == [0.0, 0.0, 0.0]
    checked = np.ones(len(frames), bool)
    checked[empty] = False
    assert median.score[empty].tolist() == [np.median(plain.score[checked])] * 3
    assert np.median(plain.score[checked]) > 0
    assert median.flags == plain.flags


def test_reference_mode_takes_no_options():
    with pytest.raises(ValueError, match="reference mode"):
        FlickerOptions(mode="reference", window=2)
