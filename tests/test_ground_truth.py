"""Ground truth: MOT and YouTube-VIS reading, true misses, and scoring flags against them."""
import numpy as np
import pytest

from core.detections import Detections
from core.errors import UserError
from core.flicker import FlickerIndex, FlickerOptions
from core.ground_truth import GroundTruth, evaluate_flags, read_mot_ground_truth, true_misses
from testkit.qa_sim import motmetrics_ground_truth


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


def test_a_youtube_vis_ground_truth_with_an_infinite_length_is_one_line(tmp_path):
    """`"length": Infinity` (valid to Python's JSON reader) escaped as an OverflowError traceback from evaluate --gt."""
    from core.ground_truth import read_youtube_vis_ground_truth

    path = tmp_path / "vis.json"
    path.write_text('{"videos": [{"id": 1, "file_names": ["walk/0.jpg"], "width": 768, "height": 576, "length": Infinity}],'
                    ' "categories": [{"id": 1, "name": "person"}], "annotations": []}')
    with pytest.raises(UserError, match="is not a YouTube-VIS annotation file .*infinity") as refused:
        read_youtube_vis_ground_truth(path)
    assert "\n" not in str(refused.value)
