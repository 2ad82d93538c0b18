"""Boxes made elsewhere: the same boxes written in every format (by labelformat's writers, Lightly's
export, and plain MOT) read back as the same boxes, with the same flags; hostile files are one line."""
import json

import numpy as np
import pytest

from core.detections import box_iou
from core.errors import PredictionFormatError, UserError
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
    assert frame_of("clips\\walk\\img7.png", 40) == 7  # Windows separators: only the number counts
    assert frame_of("clip-5.jpg", 40) == 5
    for name, message in (("cover.png", "names no frame"), ("frame_000040.jpg", "the video has 40 frames"),
                          ("../../etc/img7.png", "climbs out"), ("/etc/frame_7.png", "climbs out"),
                          ("C:\\frames\\frame_7.png", "climbs out"), ("a/..\\..\\frame_7.png", "climbs out"),
                          ("frame_\u0663.png", "names no frame"),  # an Arabic-Indic 3 is no frame number
                          ("frame_-5.jpg", "names no frame"), ("-5.png", "names no frame")):  # negative: read as 5 before
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
    ("1,-1,1,1,9,9\n" * 2001, "frame 0 holds more than 2,000 rows"),  # 4 M such rows took 2.3 GB and a minute
])
def test_a_hostile_mot_file_is_one_line(walk_hog, tmp_path, content, message):
    info, _ = walk_hog
    path = tmp_path / "det.txt"
    path.write_text(content)
    with pytest.raises(PredictionFormatError, match=message):
        read_boxes(path, info, "walk.mp4", "mot")


def test_mot_ground_truth_keeps_its_classes_and_a_detection_file_is_one_class(walk_hog, tmp_path):
    """MOT16+ ground truth: frame,id,box,consider,class,visibility. Its classes become the review's
    (a person and a car, not two "object"s); a detection file's -1 world coordinates, a MOT15 file, or
    one row with an unknown class keep the one class "object"."""
    info, _ = walk_hog
    ground_truth = ("1,1,10,10,20,40,1,1,0.9\n"
                    "1,2,50,50,60,30,1,3,1.0\n"
                    "2,1,11,10,20,40,1,1,0.8\n"
                    "2,9,80,80,10,10,0,8,0.2\n")  # a distractor the evaluation ignores: no box
    path = tmp_path / "gt.txt"
    for written in (ground_truth, ground_truth.replace(",1,3,1.0", ",1,3.0,1.0").replace(",1,1,0.9", ",1,1.000000e+00,0.9")):
        path.write_text(written)  # class ids as numpy or pandas rewrite them read the same
        assert read_boxes(path, info, "walk.mp4", "mot").names == {1: "pedestrian", 3: "car"}
    path.write_text(ground_truth + "2,5,90,90,30,30,1,13,1.0\n")  # MOT20's crowd
    assert read_boxes(path, info, "walk.mp4", "mot").names == {1: "pedestrian", 3: "car", 13: "crowd"}
    path.write_text(ground_truth)
    read = read_boxes(path, info, "walk.mp4", "mot")
    assert read.names == {1: "pedestrian", 3: "car"}
    assert sorted(read.names[int(c)] for c in read.cls) == ["car", "pedestrian", "pedestrian"]
    assert read.counts_per_frame()[:3].tolist() == [2, 1, 0]
    for other in (ground_truth.replace(",1,3,1.0", ",1,99,1.0"),  # a class MOT does not define: no classes at all
                  ground_truth.replace(",1,3,1.0", ",1,1_2,1.0"), ground_truth.replace(",1,3,1.0", ",1,\u0663,1.0"),
                  "1,-1,10,10,20,40,0.9,-1,-1,-1\n1,-1,50,50,60,30,0.7,-1,-1,-1\n",  # a detection file
                  "1,1,10,10,20,40,1,-1,-1,-1\n"):  # MOT15 ground truth
        path.write_text(other)
        read = read_boxes(path, info, "walk.mp4", "mot")
        assert read.names == {0: "object"} and set(read.cls.tolist()) == {0}, other


def test_a_yolo_row_with_an_unknown_class_is_one_line(walk_hog, tmp_path):
    info, _ = walk_hog
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: [person]\n")
    (tmp_path / "labels" / "frame_000003.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(PredictionFormatError, match="known class"):
        read_boxes(tmp_path / "data.yaml", info, "walk.mp4")
    (tmp_path / "labels" / "frame_000003.txt").write_text("0 0.5 0.5 0.1 0.1\n" * 2001)
    with pytest.raises(PredictionFormatError, match="frame 3 holds more than 2,000 rows"):
        read_boxes(tmp_path / "data.yaml", info, "walk.mp4")


def test_a_yolo_dataset_without_its_labels_folder_is_refused_not_read_as_no_boxes(walk_hog, tmp_path):
    """A mistyped folder holding only data.yaml read as "0 boxes" and replaced the export with an empty one."""
    info, _ = walk_hog
    (tmp_path / "data.yaml").write_text("names: [person]\n")
    with pytest.raises(PredictionFormatError, match="has no labels folder beside data.yaml"):
        read_boxes(tmp_path, info, "walk.mp4", "yolo")
    (tmp_path / "labels").mkdir()  # there, and empty: a dataset with no boxes
    assert len(read_boxes(tmp_path, info, "walk.mp4", "yolo")) == 0


def test_run_reviews_boxes_from_every_format_like_its_own(written, tmp_path):
    """The same boxes give the same flags and the same export whatever format they came in; the
    category names go into the export's schema (MOT has none: "object")."""
    from core.lightly.datasource import Datasource
    from core.lightly.export import DEFAULT_TASK
    from core.run import RunConfig, run_pipeline

    info, detections, paths = written
    summaries = {fmt: run_pipeline(RunConfig(out=tmp_path / fmt, video=info.path, predictions=paths[fmt]))
                 for fmt in ("lightly", "coco", "yolo", "cvat", "mot", "youtubevis")}
    for fmt, summary in summaries.items():
        assert summary.videos[0].flicker.flags == summaries["lightly"].videos[0].flicker.flags, fmt
        assert summary.export.boxes == summaries["lightly"].export.boxes, fmt
        schema = json.loads((Datasource(tmp_path / fmt).task_dir(DEFAULT_TASK) / "schema.json").read_text())
        assert {c["name"] for c in schema["categories"]} == ({"object"} if fmt == "mot" else set(detections.names.values()))
        # the summary says the boxes were read, from what, and how much of the video they cover
        covered = int((detections.counts_per_frame() > 0).sum())
        assert f"(read from {paths[fmt].name} as {fmt}, on {covered:,} of {info.frame_count:,} frames)" in summary.text()


def one_line_refusal(call, message):
    with pytest.raises(PredictionFormatError, match=message) as error:
        call()
    assert "\n" not in str(error.value) and len(str(error.value)) < 300
    return str(error.value)


def coco_file(tmp_path, categories=None, images=None, annotations=None):
    data = {"images": images or [{"id": 1, "file_name": "walk-003-mp4.png", "width": 768, "height": 576}],
            "categories": categories or [{"id": 0, "name": "person"}],
            "annotations": annotations or [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 5, 5]}]}
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(data))
    return path


def youtube_vis_file(tmp_path, category_id=1, length=2, bboxes=([1, 1, 5, 5], None), file_names=None):
    data = {"videos": [{"id": 1, "file_names": file_names or [f"walk/{k:05d}.jpg" for k in range(max(length, 1))],
                        "width": 768, "height": 576, "length": length}],
            "categories": [{"id": category_id, "name": "person"}],
            "annotations": [{"id": 1, "video_id": 1, "category_id": category_id, "bboxes": list(bboxes)}] if bboxes else []}
    path = tmp_path / "vis.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("attack, message", [
    (dict(categories=[{"id": 10**30, "name": "p"}], annotations=[{"id": 1, "image_id": 1, "category_id": 10**30, "bbox": [1, 1, 5, 5]}]),
     "class id an integer of 100 bits"),
    (dict(categories=[{"id": -5, "name": "p"}], annotations=[{"id": 1, "image_id": 1, "category_id": -5, "bbox": [1, 1, 5, 5]}]),
     "class id -5"),
    (dict(categories=[{"id": "a", "name": "p"}], annotations=[{"id": 1, "image_id": 1, "category_id": "a", "bbox": [1, 1, 5, 5]}]),
     "class id 'a'"),
    (dict(categories=[{"id": 0, "name": "x" * 100_000}]), "100,000 characters"),
    (dict(categories=[{"id": 0, "name": ["x"]}]), "a list of 1 items"),
    # the boxes of class 0 were named by the last category with that id: 'car', where the file also says 'person'
    (dict(categories=[{"id": 0, "name": "person"}, {"id": 0, "name": "car"}]), "category id 0 is both 'person' and 'car'"),
    (dict(images=[{"id": 10**40, "file_name": "frame_3.png", "width": 768, "height": 576}],
          annotations=[{"id": 1, "image_id": 10**40, "category_id": 0, "bbox": [1, 1, 5, 5]}]), "image id an integer of 133 bits"),
    (dict(images=[{"id": 1, "file_name": "../../frame_3.png", "width": 768, "height": 576}]), "climbs out"),
    (dict(annotations=[{"id": 1, "image_id": 7, "category_id": 0, "bbox": [1, 1, 5, 5]}]), "refers to 7"),
    (dict(annotations=[{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1]}]), "out of range"),
    (dict(annotations=[{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 1e300, 5]}]), "not a box inside"),
    (dict(annotations=[{"id": 1, "image_id": 1, "category_id": 0, "bbox": [int("9" * 4000), 1, 5, 5]}]),
     "a number too large for a coordinate"),  # labelformat's float(): an OverflowError traceback
])
def test_hostile_coco_ids_names_and_paths_are_one_line(walk_hog, tmp_path, attack, message):
    info, _ = walk_hog
    one_line_refusal(lambda: read_boxes(coco_file(tmp_path, **attack), info, "walk.mp4"), message)


def test_two_images_of_one_frame_or_with_one_id_are_refused_not_merged(walk_hog, tmp_path):
    """A label file for two videos (cam1/ and cam2/ each with frame 3) merged their boxes onto frame 3,
    and a COCO id given twice sent the boxes to the last image with it, with the export 'validation passed'."""
    info, _ = walk_hog
    image = lambda image_id, name: {"id": image_id, "file_name": name, "width": 768, "height": 576}  # noqa: E731
    one_line_refusal(lambda: read_boxes(coco_file(tmp_path, images=[image(1, "cam1/frame_000003.jpg"),
                                                                     image(2, "cam2/frame_000003.jpg")]), info, "walk.mp4"),
                     "'cam1/frame_000003.jpg' and 'cam2/frame_000003.jpg' are both frame 3")
    one_line_refusal(lambda: read_boxes(coco_file(tmp_path, images=[image(1, "frame_000003.jpg"), image(1, "frame_000007.jpg")]),
                                        info, "walk.mp4"), "two images have id 1")
    box = '<box label="person" xtl="1" ytl="1" xbr="9" ybr="9" occluded="0"/>'
    cvat = tmp_path / "labels.xml"
    cvat.write_text('<annotations><version>1.1</version><meta><task><labels><label><name>person</name></label></labels>'
                    '</task></meta>' + "".join(f'<image id="{k}" name="{name}" width="768" height="576">{box}</image>'
                                               for k, name in enumerate(["a/frame_3.jpg", "b/frame_3.jpg"])) + "</annotations>")
    one_line_refusal(lambda: read_boxes(cvat, info, "walk.mp4"), "are both frame 3")
    (tmp_path / "data.yaml").write_text("names: [person]\n")
    for folder in ("labels/cam1", "labels/cam2"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "frame_000003.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    one_line_refusal(lambda: read_boxes(tmp_path / "data.yaml", info, "walk.mp4"), "are both frame 3")


def test_roboflow_names_are_read_by_their_frame_not_their_hash(walk_hog, tmp_path):
    """Roboflow renames each image NAME_EXT.rf.<32 hex>.EXT; the trailing number of its stem was the
    hash's last digits (frame 3 read as 90), and the file read as valid."""
    info, _ = walk_hog
    hashes = ("a1b2c3d4e5f60718293a4b5c6d7e8f90", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "00112233445566778899aabbccddeeff")
    names = [f"frame_00000{f}_jpg.rf.{h}.jpg" for f, h in zip((3, 7), hashes)] + [f"walk-012-mp4_png.rf.{hashes[2]}.png"]
    path = coco_file(tmp_path, images=[{"id": k + 1, "file_name": name, "width": 768, "height": 576}
                                       for k, name in enumerate(names)],
                     annotations=[{"id": k + 1, "image_id": k + 1, "category_id": 0, "bbox": [1, 1, 5, 5]} for k in range(3)])
    assert read_boxes(path, info, "walk.mp4").frame.tolist() == [3, 7, 12]


@pytest.mark.parametrize("frame", [0, 4])
def test_a_cvat_track_with_two_boxes_on_one_frame_is_refused(walk_hog, tmp_path, frame):
    """The box drawn second took the frame without a word."""
    info, _ = walk_hog
    cvat = tmp_path / "labels.xml"
    box = 'outside="0" occluded="0" keyframe="1" ytl="1" xbr="{}" ybr="9"'
    cvat.write_text('<annotations><version>1.1</version><track id="7" label="person">'
                    f'<box frame="{frame}" xtl="1" {box.format(9)}/><box frame="{frame}" xtl="50" {box.format(90)}/>'
                    f'<box frame="9" xtl="1" {box.format(9)}/></track></annotations>')
    one_line_refusal(lambda: read_boxes(cvat, info, "walk.mp4"), f"track '7' has two boxes on frame {frame}")


def test_a_cvat_track_box_saved_twice_as_it_was_is_read_once(walk_hog, tmp_path):
    """Only two boxes that differ leave the frame in doubt; the same box twice is one box."""
    info, _ = walk_hog
    cvat = tmp_path / "labels.xml"
    box = '<box frame="{}" outside="0" occluded="0" keyframe="1" xtl="1" ytl="1" xbr="9" ybr="9"/>'
    cvat.write_text('<annotations><version>1.1</version><track id="7" label="person">'
                    f'{box.format(2)}{box.format(2)}{box.format(4)}<box frame="5" outside="1" xtl="1" ytl="1" xbr="9" ybr="9"/>'
                    '</track></annotations>')
    boxes = read_boxes(cvat, info, "walk.mp4")
    assert boxes.frame.tolist() == [2, 3, 4]
    assert boxes.xyxy.tolist() == [[1, 1, 9, 9]] * 3


def test_a_cvat_file_with_both_images_and_tracks_is_refused_not_read_in_part(walk_hog, tmp_path):
    """Read as CVAT for video, the boxes of its <image>s were left out without a word."""
    info, _ = walk_hog
    cvat = tmp_path / "labels.xml"
    cvat.write_text('<annotations><version>1.1</version><meta><task><labels><label><name>person</name></label></labels>'
                    '</task></meta><image id="0" name="frame_3.jpg" width="768" height="576"><box label="person" xtl="1" '
                    'ytl="1" xbr="9" ybr="9" occluded="0"/></image><track id="0" label="person"><box frame="5" outside="0" '
                    'occluded="0" keyframe="1" xtl="1" ytl="1" xbr="9" ybr="9"/></track></annotations>')
    one_line_refusal(lambda: read_boxes(cvat, info, "walk.mp4"), "holds both <image>s .CVAT for images. and <track>s")


def test_an_image_of_another_size_than_the_video_s_frames_is_refused(walk_hog, tmp_path):
    """Labels made on a 1920x1080 copy of the 768x576 clip had their boxes taken in the clip's pixels,
    at the wrong scale, with 'validation passed'. A size of 0 (not recorded) is let be."""
    info, _ = walk_hog
    image = lambda width, height: [{"id": 1, "file_name": "frame_000003.jpg", "width": width, "height": height}]  # noqa: E731
    one_line_refusal(lambda: read_boxes(coco_file(tmp_path, images=image(1920, 1080)), info, "walk.mp4"),
                     "'frame_000003.jpg' is 1920x1080 and the video's frames are 768x576")
    assert read_boxes(coco_file(tmp_path, images=image(0, 0)), info, "walk.mp4").frame.tolist() == [3]
    assert read_boxes(coco_file(tmp_path, images=image(768, 576)), info, "walk.mp4").frame.tolist() == [3]
    one_line_refusal(lambda: read_boxes(coco_file(tmp_path, images=image(576, 768)), info, "walk.mp4"),
                     r"768x576 \(turned a quarter: labelled without the video's rotation\?\): its boxes")


@pytest.mark.parametrize("attack, message", [
    (dict(category_id=10**30), "class id an integer of 100 bits"),
    (dict(bboxes=[[float("nan"), 1, 5, 5], None]), "not a box inside"),
    (dict(bboxes=[[-50, -50, 5, 5], None]), "not a box inside"),
    (dict(length=10**12, file_names=["walk/0.jpg"]), "does not match the number of frames"),
    (dict(length=float("inf"), file_names=["walk/0.jpg"]), "a number too large"),  # Infinity: an OverflowError traceback
    (dict(length=-1, bboxes=[], file_names=["walk/0.jpg"]), "a video length of -1"),
    (dict(length=30, bboxes=[None] * 29 + [[1, 1, 5, 5]]), "a box on frame 29; the video has 20 frames"),
    (dict(bboxes=[[1, 1], None]), "out of range"),
    (dict(file_names=["walk/00000.jpg", "../../etc/00001.jpg"]), "climbs out"),
    (dict(file_names=["/walk/00000.jpg", "/walk/00001.jpg"]), "climbs out"),
    (dict(file_names=["walk/00000.jpg", 7]), "a frame name that is 7"),
    # every fifth frame annotated (as the YouTube-VIS datasets are): read by position, frame 5's box went on frame 1
    (dict(length=2, file_names=["walk/00000.jpg", "walk/00005.jpg"]), "frame 1 of the video is 'walk/00005.jpg', after"),
    (dict(length=2, file_names=["walk/00001.jpg", "walk/00000.jpg"]), "skip or go back"),
])
def test_hostile_youtube_vis_files_are_one_line(walk_hog, tmp_path, attack, message):
    info, _ = walk_hog
    one_line_refusal(lambda: read_boxes(youtube_vis_file(tmp_path, **attack), info, "walk.mp4"), message)


def test_youtube_vis_frames_are_placed_by_lightly_names_and_other_videos_are_not_checked(walk_hog, tmp_path):
    """This tool's own YouTube-VIS pre-labels hold some frames, named as Lightly names them: their
    boxes go on those frames (read by position they went on 0, 1, 2). Frames listed whole by
    position are read so, whatever another video of the file skips or however names repeat a number."""
    from core.flicker import FlickerIndex
    from core.prelabels import write_prelabels

    info, detections = walk_hog
    frames = [3, 10, 15]
    write_prelabels(info, "walk.mp4", detections, FlickerIndex.from_detections(detections).evaluate(0.8, 0.6), frames,
                    tmp_path / "vis", "youtubevis")
    read = read_boxes(tmp_path / "vis" / "annotations.json", info, "walk.mp4")
    assert sorted(set(read.frame.tolist())) == frames
    assert [len(read.at(f).xyxy) for f in frames] == [len(detections.at(f).xyxy) for f in frames]
    # a file of two videos, ours numbered in step, the other every fifth frame; then names that all end in one number
    data = json.loads(youtube_vis_file(tmp_path).read_text())
    data["videos"].append({"id": 2, "file_names": ["other/00000.jpg", "other/00005.jpg"], "width": 768, "height": 576,
                           "length": 2})
    (tmp_path / "two.json").write_text(json.dumps(data))
    assert read_boxes(tmp_path / "two.json", info, "walk.mp4").frame.tolist() == [0]
    cams = youtube_vis_file(tmp_path, bboxes=(None, [1, 1, 5, 5]), file_names=["walk/00000_cam0.jpg", "walk/00001_cam0.jpg"])
    assert read_boxes(cams, info, "walk.mp4").frame.tolist() == [1]


@pytest.mark.parametrize("name, content, message", [
    ("deep.json", '{"images": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests too deep"),
    ("deep.xml", "<annotations>" + "<a>" * 100_000 + "</a>" * 100_000 + "</annotations>", "nests deeper than"),  # checked before labelformat reads it
    ("xxe.xml", '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations><meta><task>'
                "<labels><label><name>&x;</name></label></labels></task></meta></annotations>", "undefined entity"),
    ("laughs.xml", '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                   + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(9))
                   + "]><annotations><meta><task><labels><label><name>&j;</name></label></labels></task></meta></annotations>",
     "amplification"),
    ("climb.xml", '<annotations><meta><task><labels><label><name>p</name></label></labels></task></meta>'
                  '<image id="0" name="../../../../etc/frame_3.png" width="768" height="576">'
                  '<box label="p" xtl="1" ytl="1" xbr="5" ybr="5"/></image></annotations>', "climbs out"),
    ("nan.xml", '<annotations><meta><task><labels><label><name>p</name></label></labels></task></meta>'
                '<image id="0" name="frame_3.png" width="768" height="576">'
                '<box label="p" xtl="nan" ytl="1" xbr="5" ybr="5"/></image></annotations>', "not a box inside"),
])
def test_deep_self_expanding_or_climbing_files_are_one_line(walk_hog, tmp_path, name, content, message):
    info, _ = walk_hog
    (tmp_path / name).write_text(content)
    one_line_refusal(lambda: read_boxes(tmp_path / name, info, "walk.mp4"), message)


@pytest.mark.parametrize("content, message", [
    ("1,99999999999999999999,1,1,5,5,1\n", "track id 99999999999999999999"),
    ("1,2.5,1,1,5,5,1\n", "track id 2.5"),
    ("1,1,1,1,5,5,nan\n", "expected frame,id"),
    ("1,1,-100,-100,5,5\n", "not a box inside"),
    ("1,1,1,1,1e300,5\n", "not a box inside"),
    ("1e300,1,1,1,5,5\n", "is not one of 1..20"),
    ("1,1,1_0,1,5,5\n", "expected frame,id"),  # float() read it as 10
    ("1,1,\u0661\u0662,1,5,5\n", "expected frame,id"),  # Arabic-Indic digits: float() read them as 12
])
def test_hostile_mot_ids_and_boxes_are_one_line(walk_hog, tmp_path, content, message):
    info, _ = walk_hog
    (tmp_path / "det.txt").write_text(content)
    one_line_refusal(lambda: read_boxes(tmp_path / "det.txt", info, "walk.mp4", "mot"), message)


@pytest.mark.parametrize("name, content, message", [
    ("empty.json", b"", "is empty: it holds no boxes"),
    ("blank.xml", b" \n\t\n", "is empty: it holds no boxes"),
    ("bom.json", b"\xef\xbb\xbf{}", "byte-order mark"),
    ("utf16.txt", "1,1,1,1,5,5\n".encode("utf-16"), "byte-order mark"),
    ("list.json", b"[[[[1]]]]", "is not a COCO or YouTube-VIS file"),
    ("noise.json", bytes(range(7, 255)), "is not a COCO or YouTube-VIS file"),
])
def test_a_file_no_format_can_hold_is_named_for_what_it_is(walk_hog, tmp_path, name, content, message):
    """An empty file was read as a file of no boxes (and the run went on with nothing to review);
    a list, noise or a UTF-16 file was reported as a MOT file with a bad first line."""
    info, _ = walk_hog
    (tmp_path / name).write_bytes(content)
    one_line_refusal(lambda: read_boxes(tmp_path / name, info, "walk.mp4"), message)
    if not content:  # with the format named as well
        one_line_refusal(lambda: read_boxes(tmp_path / name, info, "walk.mp4", "mot"), message)


@pytest.mark.parametrize("content", [b'{"images": [], "annotations": [], "categories": []}', b'{"videos": []}'])
def test_a_json_label_file_has_a_lower_size_bound_checked_before_parsing(walk_hog, tmp_path, monkeypatch, content):
    """JSON parses to ~10 times its size in objects (a 480 MB COCO file reached 5.8 GB)."""
    info, _ = walk_hog
    monkeypatch.setattr("core.label_formats.MAX_JSON_LABEL_BYTES", 32)
    (tmp_path / "big.json").write_bytes(content + b" " * 64)
    one_line_refusal(lambda: read_boxes(tmp_path / "big.json", info, "walk.mp4"), "is larger than 0 MiB")


@pytest.mark.parametrize("fmt", ["auto", "cvat"])
def test_a_cvat_file_has_its_own_size_bound_checked_before_parsing(walk_hog, tmp_path, fmt):
    """CVAT for images parses to ~26 times its size (labelformat): a file at the 512 MiB bound of the
    other formats would take ~13 GB. One past 128 MiB (sparse) is refused unread, guessed or named."""
    info, _ = walk_hog
    with open(tmp_path / "big.xml", "wb") as f:
        f.write(b'<?xml version="1.0"?><annotations>')
        f.truncate((128 << 20) + 1)
    one_line_refusal(lambda: read_boxes(tmp_path / "big.xml", info, "walk.mp4", fmt), "is larger than 128 MiB")


def test_a_file_that_never_ends_is_refused_unread(walk_hog, tmp_path):
    import os

    info, _ = walk_hog
    os.mkfifo(tmp_path / "pipe")
    for path, fmt in (("/dev/zero", "coco"), ("/dev/zero", "cvat"), (tmp_path / "pipe", "mot"), (tmp_path, "youtubevis")):
        one_line_refusal(lambda: read_boxes(path, info, "walk.mp4", fmt), "not a regular file")


def test_a_yolo_dataset_whose_labels_lead_elsewhere_is_one_line(walk_hog, tmp_path):
    info, _ = walk_hog
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "frame_000003.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "data.yaml").write_text("names: [person]\n")
    (dataset / "labels").symlink_to(elsewhere)
    one_line_refusal(lambda: read_boxes(dataset / "data.yaml", info, "walk.mp4"), "is a link")
    (dataset / "labels").unlink()
    (dataset / "labels").mkdir()
    (dataset / "labels" / "frame_000004.txt").symlink_to(elsewhere / "frame_000003.txt")
    one_line_refusal(lambda: read_boxes(dataset / "data.yaml", info, "walk.mp4"), "is a link")


@pytest.mark.parametrize("yaml_text, row, message", [
    ("names: {99999999999999999999: a}\n", "99999999999999999999 0.5 0.5 0.1 0.1", "known class"),
    ("names: {99999999: a}\n", "99999999 0.5 0.5 0.1 0.1", None),
    ("names: {0: a, 9999999999: b}\n", "0 0.5 0.5 0.1 0.1", "class id 9999999999"),
    ("names: [a]\n", "0 0.5 0.5 1e300 0.1", "not a box inside"),
    ("names: [a]\n", "0 0.5 0.5 -0.1 0.1", "not a box inside"),
    ("names: [a]\n", "0 0.5 0.5 0.1 0_1", "known class"),  # float() read 0_1 as 1: a box of the frame's height
    ("names: " + "[" * 1000 + "]" * 1000 + "\n", "0 0.5 0.5 0.1 0.1", "nests deeper"),
])
def test_hostile_yolo_classes_and_boxes_are_one_line(walk_hog, tmp_path, yaml_text, row, message):
    info, _ = walk_hog
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text(yaml_text)
    (tmp_path / "labels" / "frame_000003.txt").write_text(row + "\n")
    if message is None:  # a large id that fits is read like any other
        assert read_boxes(tmp_path / "data.yaml", info, "walk.mp4").cls.tolist() == [99999999]
        return
    with pytest.raises(UserError, match=message) as error:
        read_boxes(tmp_path / "data.yaml", info, "walk.mp4")
    assert "\n" not in str(error.value)


def test_run_with_a_hostile_predictions_file_writes_nothing(walk_hog, tmp_path):
    """The command line: exit 2, one line on stderr, no --out folder."""
    import subprocess
    import sys

    from core.paths import ROOT

    info, _ = walk_hog
    labels = coco_file(tmp_path, images=[{"id": 1, "file_name": "../frame_3.png", "width": 768, "height": 576}])
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "core", "run", str(info.path), "--out", str(out), "--predictions", str(labels)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "climbs out" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_evaluate_reads_youtube_vis_truth_with_the_same_name_and_depth_checks(tmp_path):
    from core.ground_truth import read_youtube_vis_ground_truth

    climbing = youtube_vis_file(tmp_path, file_names=["../walk/00000.jpg", "../walk/00001.jpg"])
    with pytest.raises(UserError, match="climbs out"):
        read_youtube_vis_ground_truth(climbing)
    (tmp_path / "deep.json").write_text('{"videos": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UserError, match="is not a YouTube-VIS annotation file .*: the file nests deeper than 64 levels"):
        read_youtube_vis_ground_truth(tmp_path / "deep.json")


def test_a_lightly_task_with_a_name_no_schema_should_hold_is_one_line(written, tmp_path):
    import shutil

    info, _, paths = written
    task = tmp_path / "det"
    shutil.copytree(paths["lightly"], task)
    schema = json.loads((task / "schema.json").read_text())
    schema["categories"][0]["name"] = "x" * 100_000
    (task / "schema.json").write_text(json.dumps(schema))
    one_line_refusal(lambda: read_boxes(task, info, "walk.mp4"), "100,000 characters")


def test_cvat_for_images_with_the_word_track_in_a_comment_is_read_as_images(written, tmp_path):
    """CVAT for video is told by its <track> elements, not by the bytes '<track' (a comment or a
    name may hold them): such a file was read as a video with no track, and so as no box at all."""
    info, detections, paths = written
    xml = paths["cvat"].read_text()
    commented = tmp_path / "annotations.xml"
    commented.write_text(xml.replace("<annotations>", "<annotations><!-- no <track> here: boxes per image -->", 1))
    assert "<!-- no <track>" in commented.read_text()
    np.testing.assert_array_equal(read_boxes(commented, info, "walk.mp4").counts_per_frame(), detections.counts_per_frame())


@pytest.mark.parametrize("name, content, message", [
    ("coco.json", '{"images": [{"id": 1, "file_name": "walk-003-mp4.png", "width": 768, "height": 576}], "categories": '
                  '[{"id": 0, "name": "p"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 2, 3, '
                  + "9" * 5000 + "]}]}", r": it holds a number of more than 4,300 digits$"),
    ("cvat.xml", '<annotations><image id="0" width="10" height="10"><box label="p" xtl="1" ytl="1" xbr="2" ybr="2"/>'
                 "</image></annotations>", r": images\.0\.name: Field required$"),
])
def test_a_reader_library_s_error_reads_as_a_reason_not_as_advice_for_programmers(walk_hog, tmp_path, name, content, message):
    """Python's limit on digits ('use sys.set_int_max_str_digits()') and pydantic's count of errors
    ('1 validation error for CVATAnnotations') become what is wrong, and where."""
    info, _ = walk_hog
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PredictionFormatError, match=message) as error:
        read_boxes(path, info, "walk.mp4")
    assert "sys." not in str(error.value) and "validation error" not in str(error.value)


def test_a_json_object_that_is_neither_coco_nor_youtube_vis_says_so(walk_hog, tmp_path):
    info, _ = walk_hog
    path = tmp_path / "labels.json"
    path.write_text('{"annotations": []}')
    with pytest.raises(PredictionFormatError, match=r'neither "images" \(COCO\) nor "videos" \(YouTube-VIS\)'):
        read_boxes(path, info, "walk.mp4")


@pytest.mark.parametrize("extra", ["walk-20-mp4.json", "walk-000-mp4.json", "walk-0-mp4.json"])
def test_a_lightly_folder_with_a_frame_the_video_does_not_have_is_refused(written, tmp_path, extra):
    """Past the video's end, or numbered for a longer or shorter video: made for another walk.mp4."""
    import shutil

    info, _, paths = written
    task = tmp_path / "det"
    shutil.copytree(paths["lightly"], task)
    shutil.copy(task / "walk-00-mp4.json", task / extra)
    with pytest.raises(PredictionFormatError, match=rf"{extra}: a prediction for a frame walk.mp4 \(20 frames\) does not have"):
        read_boxes(task, info, "walk.mp4")
    (task / extra).unlink()
    assert len(read_boxes(task, info, "walk.mp4")) > 0


def test_a_format_named_or_guessed_wrongly_says_so(walk_hog, tmp_path):
    """A MOT file named as COCO was "Extra data: line 1 column 2" (the JSON parser's words alone); a
    text file of no format was a MOT line error with no word that MOT was a guess."""
    info, _ = walk_hog
    mot = tmp_path / "gt.txt"
    mot.write_text("1,1,10,10,20,20,1,1,1\n")
    one_line_refusal(lambda: read_boxes(mot, info, "walk.mp4", "coco"), r"gt.txt: not JSON \(.*\), which a COCO file is")
    notes = tmp_path / "notes.txt"
    notes.write_text("remember to check camera 3\n")
    one_line_refusal(lambda: read_boxes(notes, info, "walk.mp4"),
                     r"expected frame,id.*\(read as MOT, since it is neither JSON nor XML")
    with pytest.raises(PredictionFormatError) as named:  # named as MOT: no guess to own up to
        read_boxes(notes, info, "walk.mp4", "mot")
    assert "read as MOT" not in str(named.value)
    mot.write_text("99,1,10,10,20,20,1,1,1\n")  # a MOT file for another video: no word of a guess either
    assert "read as MOT" not in one_line_refusal(lambda: read_boxes(mot, info, "walk.mp4"), "frame 99 is not one of")


def test_run_counts_a_frames_boxes_above_its_floor(walk_hog, tmp_path):
    """A file with many low-scored boxes on one frame is read at --conf: the crowding check counts
    what is kept (checked before the floor, 1,200 boxes refused a run that keeps 100)."""
    from core.flicker import MAX_BOXES_PER_FRAME
    from core.run import RunConfig, run_pipeline
    from core.settings import DetectorSpec

    info, _ = walk_hog
    rows = [f"1,-1,{10 + i % 50},{10 + i // 50},20,20,{0.9 if i < 100 else 0.05}" for i in range(MAX_BOXES_PER_FRAME + 100)]
    crowd = tmp_path / "crowd.txt"
    crowd.write_text("\n".join(rows) + "\n")
    summary = run_pipeline(RunConfig(out=tmp_path / "out", video=info.path, predictions=crowd,
                                     detector=DetectorSpec(conf=0.5)))
    assert len(summary.videos[0].detections) == 100
    assert "(read from crowd.txt as mot, on 1 of" in summary.text()
