"""Boxes made elsewhere: the same boxes written in every format (by labelformat's writers, Lightly's
export, and plain MOT) read back as the same boxes, with the same flags; hostile files are one line."""
import json

import numpy as np
import pytest

from core.detections import box_iou
from core.errors import PredictionFormatError
from core.flicker import FlickerIndex
from core.label_formats import detect_format, frame_of, read_boxes
from core.lightly.export import VideoPredictions, export_datasource
from core.prelabels import PrelabelVideo, write_prelabel_set
from core.settings import FlickerSettings

FORMATS_WRITTEN = ("coco", "yolo", "cvat", "youtubevis")


@pytest.fixture(scope="module")
def written(walk_hog, tmp_path_factory):
    """The clip's HOG boxes in every format: labelformat's writers (through pre-labels with nothing
    imputed), a Lightly export, and a MOT file written here."""
    info, detections = walk_hog
    nothing_flagged = FlickerIndex.from_detections(detections).evaluate(1.0, 0.0)
    root = tmp_path_factory.mktemp("formats")
    video = PrelabelVideo(info, "walk.mp4", detections, nothing_flagged, tuple(range(detections.n_frames)))
    paths = {}
    for fmt in FORMATS_WRITTEN:
        write_prelabel_set([video], root / fmt, fmt)
        paths[fmt] = root / fmt / {"coco": "annotations.json", "yolo": "data.yaml", "cvat": "annotations.xml",
                                   "youtubevis": "annotations.json"}[fmt]
    export_datasource(root / "lightly", [VideoPredictions.of_video(info, "walk.mp4", detections, nothing_flagged)], task="det")
    paths["lightly"] = root / "lightly" / ".lightly" / "predictions" / "det"
    xywh = np.c_[detections.xyxy[:, :2], detections.xyxy[:, 2:] - detections.xyxy[:, :2]]
    rows = [f"{f + 1},-1,{x:.3f},{y:.3f},{w:.3f},{h:.3f},{s:.6f}" for f, (x, y, w, h), s in
            zip(detections.frame.tolist(), xywh.tolist(), detections.score.tolist())]
    (root / "det.txt").write_text("\n".join(rows) + "\n")
    paths["mot"] = root / "det.txt"
    return info, detections, paths


@pytest.mark.parametrize("fmt", ["lightly", "coco", "yolo", "cvat", "mot", "youtubevis"])
def test_the_same_boxes_come_back_from_every_format_with_the_same_flags(written, fmt):
    info, detections, paths = written
    assert detect_format(paths[fmt]) == fmt
    read = read_boxes(paths[fmt], info, "walk.mp4")
    assert read.n_frames == detections.n_frames
    np.testing.assert_array_equal(read.counts_per_frame(), detections.counts_per_frame())
    for frame in range(detections.n_frames):
        mine, theirs = detections.at(frame).xyxy, read.at(frame).xyxy
        if len(mine):
            assert box_iou(mine[:, None], theirs[None]).max(axis=1).min() > 0.98, (fmt, frame)
    settings = FlickerSettings(0.5, 0.3)
    np.testing.assert_array_equal(settings.evaluate(read).flag_array, settings.evaluate(detections).flag_array)
    assert set(read.names.values()) == ({"object"} if fmt == "mot" else set(detections.names.values()))


def test_frames_are_matched_by_lightly_names_or_trailing_numbers():
    assert frame_of("walk-012-mp4.png", 40) == 12
    assert frame_of("clips/frame_000012.jpg", 40) == 12
    assert frame_of("../../etc/img7.png", 40) == 7  # only the number counts; the folders never do
    for name, message in (("cover.png", "names no frame"), ("frame_000040.jpg", "the video has 40 frames")):
        with pytest.raises(PredictionFormatError, match=message):
            frame_of(name, 40)


def hostile_coco(tmp_path, bbox, file_name="walk-003-mp4.png"):
    data = {"images": [{"id": 1, "file_name": file_name, "width": 768, "height": 576}],
            "categories": [{"id": 0, "name": "person"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": bbox}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data).replace('"NaN"', "NaN"))
    return path


@pytest.mark.parametrize("bbox, message", [
    (["NaN", 1, 5, 5], "not a box inside"),
    ([-50, -50, 10, 10], "not a box inside"),
    ([5000, 10, 20, 20], "not a box inside"),
    ([10, 10, 0, 5], "not a box inside"),
])
def test_a_hostile_coco_file_is_one_line(walk_hog, tmp_path, bbox, message):
    info, _ = walk_hog
    with pytest.raises(PredictionFormatError, match=message) as error:
        read_boxes(hostile_coco(tmp_path, bbox), info, "walk.mp4")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("content, message", [
    ("99,1,10,10,20,20,0.5\n", "is not one of 1..20"),
    ("1,1,10,10,20\n", "expected frame,id"),
    ("1,1,nan,10,20,20\n", "expected frame,id"),
    ("1.5,1,10,10,20,20\n", "is not one of"),
])
def test_a_hostile_mot_file_is_one_line(walk_hog, tmp_path, content, message):
    info, _ = walk_hog
    path = tmp_path / "det.txt"
    path.write_text(content)
    with pytest.raises(PredictionFormatError, match=message):
        read_boxes(path, info, "walk.mp4", "mot")


def test_a_yolo_row_with_an_unknown_class_is_one_line(walk_hog, tmp_path):
    info, _ = walk_hog
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: [person]\n")
    (tmp_path / "labels" / "frame_000003.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(PredictionFormatError, match="known class"):
        read_boxes(tmp_path / "data.yaml", info, "walk.mp4")


def test_run_reviews_boxes_from_a_coco_file_like_its_own(written, tmp_path):
    from core.run import RunConfig, run_pipeline

    info, _, paths = written
    summaries = [run_pipeline(RunConfig(out=tmp_path / fmt, video=info.path, predictions=paths[fmt])) for fmt in ("lightly", "coco")]
    assert summaries[0].videos[0].flicker.flags == summaries[1].videos[0].flicker.flags
    assert summaries[1].export.boxes == summaries[0].export.boxes
