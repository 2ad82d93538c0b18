"""Pre-labels as tracks: boxes linked across frames and written with sparse keyframes that give
every box back, read with CVAT's documented XML schema and the MOT reader."""
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from core.detections import box_iou
from core.flicker import FlickerIndex
from core.ground_truth import read_mot_ground_truth
from core.prelabels import PrelabelVideo, write_prelabel_set
from core.tracks import interpolated, keyframes, link_tracks, track_rows, video_boxes
from testkit.qa_sim import motmetrics_ground_truth

LOOSE = (0.3, 0.5)


@pytest.mark.parametrize("sequence", ["TUD-Campus", "TUD-Stadtmitte"])
def test_keyframes_of_real_tracks_give_every_box_back(sequence):
    """Human-annotated tracks: a fraction of their boxes as keyframes, every box within IoU 0.9."""
    truth = motmetrics_ground_truth(sequence)
    kept = total = 0
    for track in np.unique(truth.track_id):
        rows = np.flatnonzero(truth.track_id == track)
        frames, xyxy = truth.frame[rows].astype(float), truth.xyxy[rows].astype(float)
        key = keyframes(frames, xyxy)
        assert key[0] == 0 and key[-1] == len(rows) - 1
        assert box_iou(interpolated(frames, xyxy, key), xyxy).min() >= 0.9
        kept, total = kept + len(key), total + len(rows)
    assert kept < 0.7 * total


@pytest.fixture(scope="module")
def walk(walk_hog):
    info, detections = walk_hog
    return info, detections, FlickerIndex.from_detections(detections).evaluate(*LOOSE)


def all_boxes(walk):
    info, detections, flicker = walk
    return video_boxes(detections, flicker.imputed_frame, flicker.imputed_xyxy, flicker.imputed_cls,
                       np.flatnonzero(flicker.flag_array))


def test_imputed_boxes_join_the_track_they_fill(walk):
    boxes, imputed = all_boxes(walk)
    track = link_tracks(boxes)
    assert imputed.any()
    for row in np.flatnonzero(imputed):
        same = np.flatnonzero(track == track[row])
        assert {boxes.frame[row] - 1, boxes.frame[row] + 1} & set(boxes.frame[same].tolist())  # not a track of its own


def test_cvat_video_tracks_interpolate_back_to_every_box(walk, tmp_path):
    info, detections, flicker = walk
    video = PrelabelVideo(info, "walk.mp4", detections, flicker, tuple(np.flatnonzero(flicker.flag_array).tolist()))
    write_prelabel_set([video], tmp_path / "cvat", "cvat-video")
    root = ET.parse(tmp_path / "cvat" / "walk.mp4.xml").getroot()
    assert root.findtext("version") == "1.1" and root.findtext("meta/task/mode") == "interpolation"
    drawn = {}  # frame -> boxes CVAT draws there
    n_keyframes = 0
    for track in root.iter("track"):
        shown = [b for b in track.iter("box") if b.get("outside") == "0"]
        n_keyframes += len(shown)
        frames = np.array([int(b.get("frame")) for b in shown], float)
        xyxy = np.array([[float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")] for b in shown])
        everywhere = np.arange(frames[0], frames[-1] + 1)
        for frame, box in zip(everywhere, interpolated(np.r_[frames, everywhere], np.r_[xyxy, np.zeros((len(everywhere), 4))],
                                                       np.arange(len(frames)))[len(frames):]):
            drawn.setdefault(int(frame), []).append(box)
    boxes, imputed = all_boxes(walk)
    for frame, box in zip(boxes.frame.tolist(), boxes.xyxy.astype(float)):
        assert max(box_iou(np.asarray(drawn[frame]), box[None]).tolist()) >= 0.9, frame
    assert n_keyframes <= len(boxes)
    assert any(a.text == "true" for a in root.iter("attribute") if a.get("name") == "imputed")


def test_mot_tracks_read_back_with_every_box_and_its_track(walk, tmp_path):
    info, detections, flicker = walk
    video = PrelabelVideo(info, "walk.mp4", detections, flicker, tuple(np.flatnonzero(flicker.flag_array).tolist()))
    write_prelabel_set([video], tmp_path / "mot", "mot")
    read = read_mot_ground_truth(tmp_path / "mot" / "walk.mp4.txt")
    boxes, _ = all_boxes(walk)
    assert len(read.frame) == len(boxes)
    assert len(np.unique(read.track_id)) == len(track_rows(link_tracks(boxes)))


def test_label_studio_track_sequences_interpolate_back_to_every_box(walk, tmp_path):
    """Label Studio's video-tracking format: one region per track, its keyframes only, each
    interpolated to the next but the last (``enabled``); the imputed frames named in the region."""
    import json

    info, detections, flicker = walk
    video = PrelabelVideo(info, "walk.mp4", detections, flicker, tuple(np.flatnonzero(flicker.flag_array).tolist()))
    write_prelabel_set([video], tmp_path / "ls", "labelstudio-tracks")
    (task,) = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    regions = task["predictions"][0]["result"]
    boxes, imputed = all_boxes(walk)
    assert len(regions) == len(track_rows(link_tracks(boxes))) and len({r["id"] for r in regions}) == len(regions)
    drawn: dict[int, list] = {}
    size = np.array([info.width, info.height] * 2, float)
    for region in regions:
        sequence = region["value"]["sequence"]
        assert sequence[-1]["enabled"] is False
        frames = np.array([key["frame"] - 1 for key in sequence], float)
        xyxy = np.array([[key["x"], key["y"], key["x"] + key["width"], key["y"] + key["height"]] for key in sequence])
        xyxy = xyxy / 100 * size
        for k, key in enumerate(sequence):  # as Label Studio draws: to the next keyframe while enabled, else this frame only
            last = int(frames[k + 1]) if key["enabled"] else int(frames[k]) + 1
            for frame in range(int(frames[k]), last):
                drawn.setdefault(frame, []).append([np.interp(frame, frames, xyxy[:, j]) for j in range(4)])
    for frame, box in zip(boxes.frame.tolist(), boxes.xyxy.astype(float)):
        assert max(box_iou(np.asarray(drawn[frame]), box[None]).tolist()) >= 0.9, frame
    np.testing.assert_array_equal([len(drawn.get(f, [])) for f in range(info.frame_count)], boxes.counts_per_frame())
    assert sum(len(r["value"]["sequence"]) for r in regions) < len(boxes)
    assert any("imputed" in " ".join(r.get("meta", {}).get("text", [])) for r in regions)


def test_youtube_vis_tracks_read_back_by_labelformat_with_every_box_and_its_track(walk, tmp_path):
    """YouTube-VIS with track ids: labelformat's own reader finds one annotation per linked track,
    its box on each frame it covers and None elsewhere; every box comes back (IoU > 0.99), the
    imputed ones listed under their track; our reader and evaluate's read the same file."""
    import json

    from labelformat.formats import YouTubeVISObjectDetectionTrackInput

    from core.ground_truth import read_youtube_vis_ground_truth
    from core.label_formats import read_boxes

    info, detections, flicker = walk
    video = PrelabelVideo(info, "walk.mp4", detections, flicker, tuple(np.flatnonzero(flicker.flag_array).tolist()))
    summary = write_prelabel_set([video], tmp_path / "vis", "youtubevis-tracks")
    path = tmp_path / "vis" / "annotations.json"
    boxes, imputed = all_boxes(walk)
    linked = track_rows(link_tracks(boxes))
    assert (summary.tracks, summary.boxes, summary.imputed) == (len(linked), len(boxes), int(imputed.sum()))
    assert summary.text().startswith(f"{len(linked)} tracks with {len(boxes)} boxes")
    (read,) = YouTubeVISObjectDetectionTrackInput(input_file=path).get_labels()
    assert read.video.number_of_frames == info.frame_count and str(read.video.filename) == "walk.mp4"
    assert len(read.objects) == len(linked)
    assert sorted(t.object_track_id for t in read.objects) == list(range(1, len(linked) + 1))
    assert {c.name for c in YouTubeVISObjectDetectionTrackInput(input_file=path).get_categories()} == set(detections.names.values())
    for track, rows in zip(read.objects, linked):
        present = [f for f, box in enumerate(track.boxes) if box is not None]
        assert present == boxes.frame[rows].tolist()  # None wherever the track is absent
        assert track.category.name == boxes.names[int(boxes.cls[rows[0]])]
        back = np.array([[b.xmin, b.ymin, b.xmax, b.ymax] for b in track.boxes if b is not None])
        assert box_iou(back, boxes.xyxy[rows].astype(float)).min() > 0.99
    annotations = json.loads(path.read_text())["annotations"]
    listed = sorted(f for a in annotations for f in a["imputed_frames"])
    assert listed == sorted(boxes.frame[imputed].tolist()) and listed
    np.testing.assert_array_equal(read_boxes(path, info, "walk.mp4").counts_per_frame(), boxes.counts_per_frame())
    truth = read_youtube_vis_ground_truth(path)["walk.mp4"]
    assert len(np.unique(truth.track_id)) == len(linked) and len(truth.frame) == len(boxes)


def test_cvat_video_tracks_are_read_back_as_every_box_they_stand_for(walk, tmp_path):
    """CVAT for video as input (labels made in CVAT's interpolation mode): the written keyframes,
    drawn on every frame as CVAT draws them, give back every box at IoU >= 0.9 and no other box."""
    from core.label_formats import read_boxes

    info, detections, flicker = walk
    video = PrelabelVideo(info, "walk.mp4", detections, flicker, tuple(np.flatnonzero(flicker.flag_array).tolist()))
    write_prelabel_set([video], tmp_path / "cvat", "cvat-video")
    read = read_boxes(tmp_path / "cvat" / "walk.mp4.xml", info, "walk.mp4")
    boxes, _ = all_boxes(walk)
    np.testing.assert_array_equal(read.counts_per_frame(), boxes.counts_per_frame())
    for frame in range(info.frame_count):
        mine, theirs = boxes.at(frame).xyxy.astype(float), read.at(frame).xyxy.astype(float)
        if len(mine):
            assert box_iou(mine[:, None], theirs[None]).max(axis=1).min() >= 0.9, frame
    assert set(read.names.values()) == set(detections.names.values())


@pytest.mark.parametrize("box, message", [
    ('frame="99999999999"', "a track box on frame '99999999999'"),
    ('frame="25"', "a track box on frame '25'"),
    ('frame="-1"', "a track box on frame '-1'"),
    ('frame="3" xtl="nan"', "not a box inside"),
    ('frame="3" xtl="a"', "without numeric"),
])
def test_hostile_cvat_video_tracks_are_one_line(walk, tmp_path, box, message):
    from core.errors import PredictionFormatError
    from core.label_formats import read_boxes

    info = walk[0]
    attributes = dict(frame="3", xtl="1", ytl="1", xbr="50", ybr="90")
    for part in box.split():
        key, value = part.split("=")
        attributes[key] = value.strip('"')
    shown = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    (tmp_path / "video.xml").write_text(f'<annotations><track id="0" label="person"><box {shown} outside="0"/></track>'
                                        "</annotations>")
    with pytest.raises(PredictionFormatError, match=message) as error:
        read_boxes(tmp_path / "video.xml", info, "walk.mp4")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("<annotations><track/>" + "<a>" * 100_000 + "</a>" * 100_000 + "</annotations>", "nests deeper than 64"),
    ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
     + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(9))
     + ']><annotations><track id="0" label="&j;"></track></annotations>', "amplification"),
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     '<annotations><track id="0" label="&x;"></track></annotations>', "external entity"),
    ('<annotations><track id="0"><box frame="0" outside="0" xtl="1" ytl="1" xbr="5" ybr="5"/></track></annotations>',
     "a track without a label"),
    ("<annotations>" + '<track id="0" label="p"><box frame="0" outside="0" xtl="1" ytl="1" xbr="50" ybr="90"/></track>' * 6
     + "</annotations>", "more than 100 boxes once its tracks are drawn"),  # 6 tracks x 20 frames
])
def test_cvat_video_files_that_nest_expand_or_draw_without_end_are_one_line(walk, tmp_path, monkeypatch, text, message):
    from core import label_formats
    from core.errors import PredictionFormatError

    monkeypatch.setattr(label_formats, "MAX_INTERPOLATED_BOXES", 100)
    (tmp_path / "video.xml").write_text(text)
    with pytest.raises(PredictionFormatError, match=message) as error:
        label_formats.read_boxes(tmp_path / "video.xml", walk[0], "walk.mp4")
    assert "\n" not in str(error.value)


@pytest.fixture
def one_second_limit():
    """Fails a test that is still running after a second (an endless loop), instead of hanging the suite."""
    import signal

    def stop(*_):
        raise TimeoutError("still running after 1 s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(1)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_box_with_no_area_is_its_own_keyframe_not_an_endless_loop(one_second_limit):
    """Detection clips boxes to the frame, so one drawn wholly past an edge (in the letterbox padding)
    has no area: its IoU with itself is 0, which kept it 'worst explained' forever."""
    frames = np.array([3.0, 4.0, 5.0])
    flat = np.array([[10, 20, 30, 40], [10, 40, 30, 40], [10, 20, 30, 40]], np.float64)
    assert keyframes(frames, flat).tolist() == [0, 1, 2]
    assert keyframes(frames[1:2], flat[1:2]).tolist() == [0]


def test_a_long_jittery_track_is_fitted_stretch_by_stretch(monkeypatch):
    """Every keyframe added refitted the whole track: a 10,000-frame track of a jittery detector's boxes (nearly every
    box a keyframe) took 29 s, an hour of one parked car's boxes far longer. The keyframes are the same."""
    import core.tracks

    rng = np.random.default_rng(0)
    n = 2000
    x, y = 100 + rng.normal(0, 6, n), 100 + rng.normal(0, 6, n)
    frames, xyxy = np.arange(n, dtype=float), np.stack([x, y, x + 50, y + 50], axis=1)
    fitted = []
    monkeypatch.setattr(core.tracks, "box_iou", lambda a, b: fitted.append(len(a)) or box_iou(a, b))
    key = keyframes(frames, xyxy)
    assert sum(fitted) < 20 * n  # boxes compared: n log n, not (keyframes x n)
    assert key[0] == 0 and key[-1] == n - 1 and len(key) > 0.9 * n
    assert box_iou(interpolated(frames, xyxy, key), xyxy).min() >= 0.9


def test_linking_a_long_video_keeps_only_the_tracks_a_box_can_still_join(monkeypatch):
    """Every track ever started was compared and copied again on each frame: 40,000 frames of short tracks took 30 s,
    quadratic in the video's length. Same tracks; what is carried from frame to frame stays small."""
    import core.tracks
    from core.detections import Detections

    n = 3000
    frame = np.repeat(np.arange(n), 2)
    x, y = (2 * frame + np.tile([0, 1], n)) % 40 * 45.0, np.full(len(frame), 100.0)  # 2 columns on each frame: apart
    boxes = Detections(frame, np.stack([x, y, x + 40, y + 60], axis=1), np.ones(len(frame)), np.zeros(len(frame)),
                       {0: "person"}, n, (1920, 1080))
    carried = []

    class CountedNumpy:  # numpy, with the rows every np.r_ join copies counted
        r_ = type("R", (), {"__getitem__": lambda self, parts: carried.append(sum(map(len, parts))) or np.r_[parts]})()

        def __getattr__(self, name):
            return getattr(np, name)

    monkeypatch.setattr(core.tracks, "np", CountedNumpy())
    track = link_tracks(boxes)
    assert len(np.unique(track)) == len(boxes)  # every box apart from those before it: a track of its own, no id twice
    assert sum(carried) < 50 * len(boxes)
