import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.detections import Detections, lightly_xywh


def make(n_frames=5):
    per_frame = [
        (np.array([[1.5, 2.5, 10.9, 20.1]]), [0.9], [0]),
        (np.empty((0, 4)), [], []),
        (np.array([[0, 0, 5, 5], [3, 3, 9, 9]]), [0.4, 0.6], [1, 0]),
    ] + [(np.empty((0, 4)), [], [])] * (n_frames - 3)
    return Detections.from_frames(per_frame, {0: "person", 1: "car"}, image_size=(32, 24))


def test_columns_and_offsets():
    det = make()
    assert len(det) == 3 and det.n_frames == 5
    assert det.counts_per_frame().tolist() == [1, 0, 2, 0, 0]
    assert det.cls[det.rows(2)].tolist() == [1, 0]
    assert det.above(0.5).counts_per_frame().tolist() == [1, 0, 1, 0, 0]


def test_save_load_round_trip(tmp_path):
    det = make()
    det.save(tmp_path / "d.npz")
    back = Detections.load(tmp_path / "d.npz")
    assert back.names == det.names and back.n_frames == det.n_frames and back.image_size == (32, 24)
    for column in ("frame", "xyxy", "score", "cls"):
        assert np.array_equal(getattr(back, column), getattr(det, column))
    assert not list(tmp_path.glob(".*tmp"))


def test_a_decode_warning_is_kept_with_the_boxes_and_an_older_entry_has_none(tmp_path):
    from dataclasses import replace

    det = replace(make(), decode_warning="v.mp4: 3 of 5 frames could not be decoded")
    det.save(tmp_path / "d.npz")
    assert Detections.load(tmp_path / "d.npz").decode_warning == det.decode_warning
    assert det.above(0.5).decode_warning == det.decode_warning  # kept by what selects rows
    with np.load(tmp_path / "d.npz") as data:  # an entry cached before the warning was kept
        np.savez(tmp_path / "old.npz", **{k: data[k] for k in data.files if k != "decode_warning"})
    assert Detections.load(tmp_path / "old.npz").decode_warning == ""


def test_rejects_unsorted_frames():
    with pytest.raises(ValueError, match="sorted"):
        Detections([2, 1], np.zeros((2, 4)), [0.5, 0.5], [0, 0], {0: "a"}, 3)


def test_predictions_list_uses_the_tutorial_truncation():
    det = make()
    preds = det.to_predictions_list([f"v-{i}-mp4.png" for i in range(5)])
    assert preds[0]["predictions"] == [{"category_id": 0, "bbox": [1, 2, 9, 17], "score": pytest.approx(0.9)}]
    assert preds[1]["predictions"] == []
    back = Detections.from_predictions_list(preds, det.names)
    assert back.counts_per_frame().tolist() == det.counts_per_frame().tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-50, 400, allow_nan=False)] * 4), max_size=20), st.integers(1, 300), st.integers(1, 300))
def test_exported_boxes_are_always_valid(boxes, width, height):
    xywh = lightly_xywh(np.asarray(boxes, np.float32).reshape(-1, 4), (width, height))
    assert (xywh[:, :2] >= 0).all() and (xywh[:, 2:] >= 1).all()
    assert (xywh[:, 0] + xywh[:, 2] <= max(width, 1)).all() and (xywh[:, 1] + xywh[:, 3] <= max(height, 1)).all()
