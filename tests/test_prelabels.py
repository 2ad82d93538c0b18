"""Pre-labels: every format read back by an independent reader (labelformat's, or Label Studio's
schema checked here), boxes to the pixel and frame names as Lightly names them."""
import json
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from labelformat.formats import (COCOObjectDetectionInput, CVATObjectDetectionInput, YOLOv8ObjectDetectionInput,
                                 YouTubeVISObjectDetectionTrackInput)
from labelformat.model.bounding_box import BoundingBoxFormat

from core.cli import main
from core.errors import ExportError, UserError
from core.flicker import FlickerIndex
from core.lightly.datasource import frame_name
from core.lightly.export import VideoPredictions, export_datasource
from core.prelabels import FORMATS, IMPUTED_NOTE, MANIFEST, TRACK_FORMATS, write_prelabels
from core.verdicts import VerdictStore
from core.video import FrameReader

LOOSE = (0.5, 0.6)  # thresholds that flag frames 11, 14 (two imputed boxes) and 17 of the clip
FRAMES = (0, 11, 14, 17)  # an unflagged frame and the flagged ones


@pytest.fixture(scope="module")
def walk(walk_hog):
    """The shared 20-frame clip, the detector's boxes and the flicker result at LOOSE thresholds."""
    info, detections = walk_hog
    flicker = FlickerIndex.from_detections(detections).evaluate(*LOOSE)
    assert np.flatnonzero(flicker.flag_array).tolist() == [11, 14, 17] and len(flicker.imputed_for(14)) == 2
    return info, detections, flicker


def expected_boxes(walk, frames=FRAMES) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per frame name: (boxes, imputed) sorted, detections plus imputed boxes clipped to the frame."""
    info, detections, flicker = walk
    expected = {}
    for frame in frames:
        boxes = np.concatenate([detections.at(frame).xyxy, flicker.imputed_for(frame)]).astype(np.float64)
        imputed = np.arange(len(boxes)) >= len(detections.at(frame).xyxy)
        boxes = np.clip(boxes, 0, [info.width, info.height, info.width, info.height])
        expected[frame_name("walk.mp4", frame, info.frame_count, ".png")] = sort_boxes(boxes, imputed)
    return expected


def sort_boxes(boxes, imputed=None):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.lexsort(boxes.T[::-1])
    return boxes[order], (None if imputed is None else np.asarray(imputed)[order])


def assert_boxes(found: dict[str, list], expected: dict) -> None:
    assert sorted(found) == sorted(expected)
    for name, (boxes, _) in expected.items():
        np.testing.assert_allclose(sort_boxes(found[name])[0], boxes, atol=1e-3, err_msg=name)


def read_labelformat(labels) -> dict[str, list]:
    labels = list(labels)
    assert {obj.category.name for label in labels for obj in label.objects} == {"person"}
    return {label.image.filename: [obj.box.to_format(BoundingBoxFormat.XYXY) for obj in label.objects] for label in labels}


def read_youtube_vis(out) -> dict[str, list]:
    data = json.loads((out / "annotations.json").read_text())
    names = {video["id"]: video["file_names"] for video in data["videos"]}
    found = {name: [] for video in names.values() for name in video}
    for video in YouTubeVISObjectDetectionTrackInput(input_file=out / "annotations.json").get_labels():
        for track in video.objects:
            for position, box in enumerate(track.boxes):
                if box is not None:
                    found[names[video.video.id][position]].append(box.to_format(BoundingBoxFormat.XYXY))
    return found


READERS = {
    "coco": lambda out: read_labelformat(COCOObjectDetectionInput(input_file=out / "annotations.json").get_labels()),
    "yolo": lambda out: read_labelformat(YOLOv8ObjectDetectionInput(input_file=out / "data.yaml", input_split="train").get_labels()),
    "cvat": lambda out: read_labelformat(CVATObjectDetectionInput(input_file=out / "annotations.xml").get_labels()),
    "youtubevis": read_youtube_vis,
}


def check_label_studio(tasks, config: str, info) -> dict[str, list]:
    """Label Studio's JSON task format for video object tracking, checked key by key against the
    config the tasks are for; returns the boxes in pixels per frame name."""
    view = ET.fromstring(config)
    video_tag, rectangle, labels = view.find("Video"), view.find("VideoRectangle"), view.find("Labels")
    assert rectangle.get("toName") == labels.get("toName") == video_tag.get("name")
    label_values = {label.get("value") for label in labels.findall("Label")}
    found: dict[str, list] = {}
    assert isinstance(tasks, list) and tasks
    for task in tasks:
        data = task["data"]
        assert video_tag.get("value") == "$video" and video_tag.get("frameRate") == "$fps"
        assert isinstance(data["video"], str) and data["fps"] > 0
        (prediction,) = task["predictions"]
        ids = [region["id"] for region in prediction["result"]]
        assert len(set(ids)) == len(ids)
        for region in prediction["result"]:
            assert {"id", "type", "from_name", "to_name", "value", "origin"} <= set(region)
            assert region["type"] == "videorectangle" and region["origin"] == "prediction"
            assert region["from_name"] == rectangle.get("name") and region["to_name"] == video_tag.get("name")
            assert 0 <= region["score"] <= 1
            value = region["value"]
            assert set(value) == {"sequence", "labels", "framesCount", "duration"}
            assert value["framesCount"] == info.frame_count and value["duration"] == pytest.approx(info.frame_count / data["fps"])
            assert value["labels"] and set(value["labels"]) <= label_values
            for key in value["sequence"]:
                assert set(key) == {"frame", "enabled", "rotation", "x", "y", "width", "height", "time"}
                assert isinstance(key["frame"], int) and 1 <= key["frame"] <= value["framesCount"]  # 1-based
                assert key["enabled"] is False and key["rotation"] == 0
                assert key["time"] == pytest.approx(key["frame"] / data["fps"])
                assert 0 <= key["x"] and 0 <= key["y"] and key["width"] > 0 and key["height"] > 0
                assert key["x"] + key["width"] <= 100 + 1e-9 and key["y"] + key["height"] <= 100 + 1e-9  # percent
                x0, y0 = key["x"] * info.width / 100, key["y"] * info.height / 100
                box = [x0, y0, x0 + key["width"] * info.width / 100, y0 + key["height"] * info.height / 100]
                found.setdefault(frame_name(data["video"], key["frame"] - 1, value["framesCount"], ".png"), []).append(box)
    return found


def imputed_marks(fmt: str, out) -> int:
    """How many boxes the format's own files mark as imputed."""
    if fmt == "coco":
        data = json.loads((out / "annotations.json").read_text())
        assert data["categories"] == [{"id": 1, "name": "person"}]  # COCO ids start at 1
        annotations = data["annotations"]
        assert [a["id"] for a in annotations] == list(range(1, len(annotations) + 1))
        assert all(a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3]) and a["iscrowd"] == 0 for a in annotations)
        marked = [a for a in annotations if a["attributes"]["imputed"]]
        assert all(a["score"] == 1.0 for a in marked)
        return len(marked)
    tasks = json.loads((out / "tasks.json").read_text())
    marked = [r for t in tasks for r in t["predictions"][0]["result"] if r.get("meta", {}).get("text") == [IMPUTED_NOTE]]
    assert all(r["score"] == 1.0 for r in marked)
    return len(marked)


@pytest.mark.parametrize("fmt", [fmt for fmt in FORMATS if fmt not in TRACK_FORMATS])  # tracks: tests/test_tracks.py
def test_every_format_reads_back_with_the_same_boxes_and_frame_names(walk, tmp_path, fmt):
    info, detections, flicker = walk
    out = tmp_path / fmt
    summary = write_prelabels(info, "walk.mp4", detections, flicker, FRAMES, out, fmt)
    expected = expected_boxes(walk)
    n_imputed = sum(int(imputed.sum()) for _, imputed in expected.values())
    assert (summary.frames, summary.imputed) == (len(FRAMES), n_imputed) and n_imputed == 4
    if fmt == "labelstudio":
        found = check_label_studio(json.loads((out / "tasks.json").read_text()), (out / "label_config.xml").read_text(), info)
        assert not (out / "images").exists()
    else:
        found = READERS[fmt](out)
        assert sorted(p.name for p in (out / "images").iterdir()) == sorted(expected)
    assert_boxes(found, expected)
    if fmt in ("coco", "labelstudio"):
        assert imputed_marks(fmt, out) == n_imputed
    manifest = json.loads((out / MANIFEST).read_text())
    assert [entry["frame"] for entry in manifest["frames"]] == list(FRAMES)
    for entry in manifest["frames"]:
        _, imputed = expected[entry["file_name"]]
        boxes, marked = sort_boxes([b["xyxy"] for b in entry["boxes"]], [b["imputed"] for b in entry["boxes"]])
        assert marked.tolist() == imputed.tolist()


def test_frames_are_the_decoded_frames_losslessly(walk, tmp_path):
    info, detections, flicker = walk
    write_prelabels(info, "clips/walk.mp4", detections, flicker, [14], tmp_path / "out", "yolo")
    png = tmp_path / "out" / "images" / "clips" / "walk-14-mp4.png"
    reader = FrameReader(info)
    try:
        np.testing.assert_array_equal(cv2.imread(str(png))[..., ::-1], reader.get(14))
    finally:
        reader.close()


def test_unknown_frames_and_file_or_foreign_outputs_are_refused(walk, tmp_path):
    info, detections, flicker = walk
    with pytest.raises(ExportError, match="walk.mp4 has no frame 20: its frames are 0..19"):
        write_prelabels(info, "walk.mp4", detections, flicker, [3, 20], tmp_path / "a", "coco")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        write_prelabels(info, "walk.mp4", detections, flicker, [3], tmp_path / "file", "coco")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="already holds other files"):
        write_prelabels(info, "walk.mp4", detections, flicker, [3], tmp_path / "foreign", "coco")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "foreign"]  # nothing half-written left behind


def test_writing_again_replaces_an_earlier_prelabel_folder(walk, tmp_path):
    info, detections, flicker = walk
    out = tmp_path / "out"
    write_prelabels(info, "walk.mp4", detections, flicker, [0, 11], out, "coco")
    write_prelabels(info, "walk.mp4", detections, flicker, [17], out, "cvat")
    assert sorted(p.name for p in out.iterdir()) == ["annotations.xml", "images", MANIFEST]
    assert [p.name for p in (out / "images").iterdir()] == ["walk-17-mp4.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_out_folder_that_is_a_link_is_refused_not_replaced(walk, tmp_path):
    """A pre-label folder is replaced whole: through a link, the link itself went and a real folder
    took its place, while the folder it pointed to kept the old pre-labels."""
    info, detections, flicker = walk
    target = tmp_path / "real"
    write_prelabels(info, "walk.mp4", detections, flicker, [11], target, "coco")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ExportError, match=r"is a symbolic link: give the folder it points to"):
        write_prelabels(info, "walk.mp4", detections, flicker, [17], tmp_path / "link", "coco")
    assert (tmp_path / "link").is_symlink() and [p.name for p in (target / "images").iterdir()] == ["walk-11-mp4.png"]


@pytest.fixture()
def export(walk, tmp_path):
    """An export of the clip made at LOOSE thresholds (binary flickering metadata)."""
    info, detections, flicker = walk
    export_datasource(tmp_path / "export", [VideoPredictions.of_video(info, "walk.mp4", detections, flicker)], task="hog")
    return tmp_path / "export"


def cli(*args) -> int:
    return main(["prelabels", *map(str, args), "--quiet"])


def test_flagged_frames_of_an_export_with_their_imputed_boxes(walk, export, tmp_path, capsys):
    out = tmp_path / "flagged"
    assert cli(export, "--out", out, "--format", "coco", "--only", "flagged", "--iou-track", LOOSE[0], "--iou-assert", LOOSE[1]) == 0
    captured = capsys.readouterr()
    expected = expected_boxes(walk, (11, 14, 17))
    n_boxes = sum(len(boxes) for boxes, _ in expected.values())
    assert captured.out.strip() == f"3 frames pre-labelled with {n_boxes} boxes (4 imputed) as coco in {out}" and not captured.err
    assert_boxes(READERS["coco"](out), expected)


def test_pre_labels_that_replace_earlier_ones_say_which_format_went(export, tmp_path, capsys):
    """prelabels --format yolo into a folder of earlier COCO pre-labels replaced them without a word."""
    out = tmp_path / "pl"
    flagged = ("--only", "flagged", "--iou-track", LOOSE[0], "--iou-assert", LOOSE[1])
    assert cli(export, "--out", out, "--format", "coco", *flagged) == 0
    assert "replaced" not in capsys.readouterr().out  # a new folder
    assert cli(export, "--out", out, "--format", "yolo", *flagged) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == f"replaced earlier coco pre-labels in {out}" and not captured.err
    assert not (out / "annotations.json").exists() and (out / "data.yaml").is_file()


def test_flags_recorded_with_other_thresholds_warn_that_the_imputed_boxes_differ(export, tmp_path, capsys):
    assert cli(export, "--out", tmp_path / "out", "--format", "yolo", "--only", "flagged") == 0  # run's 0.8 / 0.6
    captured = capsys.readouterr()
    assert "3 frames pre-labelled" in captured.out and "(1 imputed)" in captured.out
    assert captured.err.strip() == ("warning: walk.mp4: the export flags 3 frames and the given mode and thresholds flag 1; "
                                    "the imputed boxes follow the thresholds: pass the ones the export was made with")


def test_an_export_that_flags_nothing_says_the_thresholds_given_would(walk, tmp_path, capsys):
    """The export's recorded flags choose the frames; where it flags none and the thresholds given
    flag some, the refusal says so (it read as if those thresholds flagged nothing)."""
    from core.flicker import FlickerIndex

    info, detections, _ = walk
    nothing = FlickerIndex.from_detections(detections).evaluate(1.0, 0.0)
    export_datasource(tmp_path / "export", [VideoPredictions.of_video(info, "walk.mp4", detections, nothing)], task="hog")
    assert cli(tmp_path / "export", "--out", tmp_path / "out", "--format", "coco", "--only", "flagged",
               "--iou-track", LOOSE[0], "--iou-assert", LOOSE[1]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: The export flags no frame") and "the given mode and thresholds flag 3 frames" in err, err
    assert not (tmp_path / "out").exists()


def test_a_score_style_export_gives_its_flags_by_the_cut_it_recorded(walk, tmp_path, capsys):
    """Scores say how badly each frame misses its object; the cut the manifest records says which frames the export
    flagged (at LOOSE here), as a binary export's values do: they were computed again at the thresholds given (run's
    0.8 / 0.6: frame 17 alone)."""
    info, detections, flicker = walk
    export_datasource(tmp_path / "export", [VideoPredictions.of_video(info, "walk.mp4", detections, flicker)], task="hog",
                      metadata_style="score")
    assert cli(tmp_path / "export", "--out", tmp_path / "out", "--format", "coco", "--only", "flagged") == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("3 frames pre-labelled") and "(1 imputed)" in captured.out
    assert "the export flags 3 frames and the given mode and thresholds flag 1" in captured.err
    assert sorted(image["file_name"] for image in json.loads((tmp_path / "out/annotations.json").read_text())["images"]) == [
        "walk-11-mp4.png", "walk-14-mp4.png", "walk-17-mp4.png"]


def test_a_score_style_export_without_its_cut_has_its_flags_computed_again(walk, tmp_path, capsys):
    from core.lightly.datasource import Datasource
    from core.lightly.export import FLAGGED_ABOVE

    info, detections, flicker = walk
    export_datasource(tmp_path / "export", [VideoPredictions.of_video(info, "walk.mp4", detections, flicker)], task="hog",
                      metadata_style="score")
    manifest = Datasource(tmp_path / "export").manifest
    record = json.loads(manifest.read_text())
    del record["videos"][0][FLAGGED_ABOVE]  # as an export written before the cut was recorded
    manifest.write_text(json.dumps(record))
    assert cli(tmp_path / "export", "--out", tmp_path / "out", "--format", "cvat", "--only", "flagged") == 0
    n_boxes = len(detections.at(17).xyxy) + 1
    assert capsys.readouterr().out.startswith(f"1 frame pre-labelled with {n_boxes} boxes (1 imputed)")  # frame 17 at 0.8 / 0.6
    images = ET.parse(tmp_path / "out" / "annotations.xml").getroot().iter("image")
    assert [image.get("name") for image in images] == ["walk-17-mp4.png"]


def test_confirmed_frames_come_from_the_verdicts_and_a_video_is_detected_here(walk, shared_cache, tmp_path, capsys):
    info, _, _ = walk
    store = VerdictStore(tmp_path / "verdicts.sqlite")
    store.set(info.fingerprint, 17, "miss")
    store.set(info.fingerprint, 11, "false_alarm")
    store.set(info.fingerprint, 5, "miss")  # a spot check found a miss the assertion did not flag
    store.set(info.fingerprint, 14, "unsure")
    out = tmp_path / "out"
    assert cli(info.path, "--out", out, "--format", "labelstudio", "--verdicts", tmp_path / "verdicts.sqlite",
               "--cache-dir", shared_cache, "--video-url-prefix", "/data/local-files/?d=") == 0
    assert capsys.readouterr().out.startswith("2 frames pre-labelled")
    tasks = json.loads((out / "tasks.json").read_text())
    assert tasks[0]["data"]["video"] == "/data/local-files/?d=walk.mp4"
    frames = {key["frame"] for region in tasks[0]["predictions"][0]["result"] for key in region["value"]["sequence"]}
    assert frames == {6, 18}  # 1-based


@pytest.mark.parametrize("problem, message", [
    ("missing", "error: Verdict store not found: "),
    ("not a database", "is not a readable verdicts database"),
    ("unknown frame", "has verdicts on frame 999 of walk.mp4, which has 20 frames"),
    ("no confirmed miss", "error: No confirmed misses for these videos yet"),
])
def test_bad_verdicts_are_one_line_and_exit_2(walk, export, tmp_path, capsys, problem, message):
    verdicts = tmp_path / "verdicts.sqlite"
    if problem == "not a database":
        verdicts.write_text("frame,verdict\n3,miss\n")
    elif problem != "missing":
        store = VerdictStore(verdicts)
        store.set(walk[0].fingerprint, 3, "false_alarm")
        if problem == "unknown frame":
            store.set(walk[0].fingerprint, 999, "miss")
    out = tmp_path / "out"
    assert cli(export, "--out", out, "--format", "coco", "--verdicts", verdicts) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and not captured.out
    assert not out.exists()


def test_an_output_that_is_a_file_is_one_line_and_exit_2(export, tmp_path, capsys):
    (tmp_path / "labels.json").write_text("{}")
    assert cli(export, "--out", tmp_path / "labels.json", "--format", "coco", "--only", "flagged") == 2
    assert capsys.readouterr().err.strip() == f"error: --out {tmp_path / 'labels.json'} exists and is not a folder"
