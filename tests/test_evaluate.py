"""``python -m core evaluate``: the flags scored against MOT and YouTube-VIS ground truth built from real boxes.

The ground truth is the HOG detector's own boxes on the sample slice, linked into tracks by a
small tracker written here; boxes removed from the detections then make known single-frame misses.
"""
import csv
import json
import math

import numpy as np
import pytest

from core.cli import main
from core.errors import UserError
from core.evaluate import TOP_N, TUTORIAL_PAIRS, choose_video, evaluate_source
from core.sources import SourceVideo
from core.flicker import FlickerIndex
from core.lightly.export import VideoPredictions, export_datasource
from core.qa import DEFAULT_GRID

REMOVED_PER_VIDEO = 3


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def link_tracks(detections) -> np.ndarray:
    """A track id per box: each box takes the id of the previous frame's box it overlaps most (IoU >= 0.5,
    one to one), else a new one."""
    ids = np.zeros(len(detections), np.int64)
    next_id = 1
    for frame in range(detections.n_frames):
        rows = np.arange(detections.rows(frame).start, detections.rows(frame).stop)
        previous = np.arange(detections.rows(frame - 1).start, detections.rows(frame - 1).stop) if frame else rows[:0]
        overlap = iou(detections.xyxy[rows], detections.xyxy[previous]) if len(previous) else np.zeros((len(rows), 0))
        taken = set()
        for k in np.argsort(-overlap.max(axis=1, initial=0)):
            candidates = [j for j in np.argsort(-overlap[k]) if overlap[k, j] >= 0.5 and j not in taken]
            if candidates:
                taken.add(candidates[0])
                ids[rows[k]] = ids[previous[candidates[0]]]
            else:
                ids[rows[k]], next_id = next_id, next_id + 1
    return ids


def write_mot(path, detections, track_ids, extra_rows=()) -> None:
    x0, y0, x1, y1 = detections.xyxy.T
    lines = [f"{f + 1},{t},{a},{b},{c - a},{d - b},1,-1,-1,-1"
             for f, t, a, b, c, d in zip(detections.frame, track_ids, x0, y0, x1, y1)]
    path.write_text("\n".join([*lines, *extra_rows]) + "\n")


def write_youtube_vis(path, videos) -> None:
    """A YouTube-VIS file (the documented layout) of (name, detections, track ids) videos: one
    annotation per track, a box or null per frame."""
    data = {"info": {}, "categories": [{"id": 1, "name": "person", "supercategory": "person"}], "videos": [], "annotations": []}
    for video_id, (name, detections, track_ids) in enumerate(videos, start=1):
        width, height = detections.image_size
        data["videos"].append({"id": video_id, "width": width, "height": height, "length": detections.n_frames,
                               "file_names": [f"{name}/{k:05d}.jpg" for k in range(detections.n_frames)]})
        for track in np.unique(track_ids):
            boxes = [None] * detections.n_frames
            for row in np.flatnonzero(track_ids == track):
                x0, y0, x1, y1 = detections.xyxy[row].tolist()
                boxes[detections.frame[row]] = [x0, y0, x1 - x0, y1 - y0]
            data["annotations"].append({"id": len(data["annotations"]) + 1, "video_id": video_id, "category_id": 1,
                                        "iscrowd": 0, "bboxes": boxes, "areas": [None] * detections.n_frames})
    path.write_text(json.dumps(data))


def removable_rows(detections, track_ids) -> list[int]:
    """Boxes whose track is seen just before and after and that no other box of their frame overlaps
    (so removing one is exactly one single-frame miss), frames at least 3 apart."""
    chosen, last = [], -10
    for row in range(len(detections)):
        frame, track = detections.frame[row], track_ids[row]
        around = [np.any(track_ids[detections.rows(f)] == track) for f in (frame - 1, frame + 1) if 0 <= f < detections.n_frames]
        others = np.delete(np.arange(detections.rows(frame).start, detections.rows(frame).stop), row - detections.rows(frame).start)
        alone = not len(others) or iou(detections.xyxy[[row]], detections.xyxy[others]).max() < 0.5
        if len(around) == 2 and all(around) and alone and frame - last >= 3:
            chosen.append(row)
            last = frame
        if len(chosen) == REMOVED_PER_VIDEO:
            break
    return chosen


@pytest.fixture(scope="module")
def walk(walk_hog):
    """The shared 20-frame clip, the detector's boxes on it and their tracks."""
    info, detections = walk_hog
    return info, detections, link_tracks(detections)


@pytest.fixture(scope="module")
def case(walk, tmp_path_factory):
    """An export whose detections lack a few boxes, and the full boxes as MOT ground truth."""
    info, detections, track_ids = walk
    removed = removable_rows(detections, track_ids)
    assert len(removed) == REMOVED_PER_VIDEO
    kept = detections.select(~np.isin(np.arange(len(detections)), removed))
    folder = tmp_path_factory.mktemp("evaluate")
    gt = folder / "gt.txt"
    write_mot(gt, detections, track_ids, extra_rows=["500,1,10,10,20,40,1,-1,-1,-1"])  # past the video's end
    export = folder / "export"
    export_datasource(export, [VideoPredictions.of_video(info, "walk.mp4", kept, FlickerIndex.from_detections(kept).evaluate())],
                      task="hog")
    missed = np.zeros(info.frame_count, bool)
    missed[detections.frame[removed]] = True
    return export, gt, kept, missed


def direct_scores(detections, missed, iou_track, iou_assert) -> tuple[float, float, int]:
    flags = FlickerIndex.from_detections(detections).evaluate(iou_track, iou_assert).flag_array
    hits = int((flags & missed).sum())
    precision = hits / flags.sum() if flags.any() else math.nan
    return precision, hits / missed.sum(), int(flags.sum())


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b)


def test_removed_boxes_are_the_true_misses_and_every_pair_is_scored_against_them(case):
    export, gt, kept, missed = case
    evaluation = evaluate_source(export, gt)
    assert evaluation.relpath == "walk.mp4" and evaluation.n_frames == 20
    assert evaluation.scores.n_true_misses == REMOVED_PER_VIDEO
    assert len(evaluation.scores.rows) == len(DEFAULT_GRID)
    best = evaluation.scores.best
    for pair in [*TUTORIAL_PAIRS.values(), (0.3, 0.5), (0.05, 0.95), (best.iou_track, best.iou_assert)]:
        row = evaluation.at(*pair)
        precision, recall, n_flagged = direct_scores(kept, missed, *pair)
        assert (row.n_flagged, row.true_positives) == (n_flagged, round(recall * REMOVED_PER_VIDEO)), pair
        assert same(row.precision, precision) and same(row.recall, recall), pair
    assert best.f1 == max(r.f1 for r in evaluation.scores.rows) and best.recall > 0
    assert "annotates 500 frames and the video has 20" in evaluation.text()


def test_youtube_vis_ground_truth_scores_exactly_as_the_same_truth_in_mot(case, walk, tmp_path):
    """The same tracks written as YouTube-VIS (read through labelformat), in a file that also holds
    another video: the video named like ours is picked and every pair scores as with the MOT file."""
    export, gt, _, _ = case
    _, detections, track_ids = walk
    other = detections.select(detections.frame < 5)
    vis = tmp_path / "instances.json"
    write_youtube_vis(vis, [("other", other, track_ids[detections.frame < 5]), ("walk", detections, track_ids)])
    from_mot, from_vis = evaluate_source(export, gt), evaluate_source(export, vis)
    assert from_vis.scores.n_true_misses == REMOVED_PER_VIDEO
    assert from_vis.csv_bytes() == from_mot.csv_bytes() and from_vis.scores.best == from_mot.scores.best  # (NaN != NaN in rows)
    assert from_vis.annotated_frames == 20  # the declared length (the MOT file has a row at frame 500)

    write_youtube_vis(vis, [("other", other, track_ids[detections.frame < 5]), ("town", detections, track_ids)])
    with pytest.raises(UserError, match="holds 2 videos and none is named 'walk': other, town"):
        evaluate_source(export, vis)


@pytest.mark.parametrize("content, reason", [
    ("{not json", "Expecting property name"),
    ('{"videos": []}', "'categories'"),
    ('{"categories": [], "videos": [], "annotations": []}', "lists no video"),
    ('{"categories": [{"id": 1, "name": "p"}], "videos": [{"id": 1, "width": 9, "height": 9, "length": 2, '
     '"file_names": ["v/0.jpg", "v/1.jpg"]}], "annotations": [{"video_id": 1, "category_id": 1, "bboxes": [[1, 1, 2, 2]]}]}',
     "does not match the number of frames"),
    ('{"categories": [{"id": 1, "name": "p"}], "videos": [{"id": 1, "width": 9, "height": 9, "length": 1, '
     '"file_names": ["v/0.jpg"]}], "annotations": [{"video_id": 1, "category_id": 1, "bboxes": [[1, 1, 0, 2]]}]}',
     "no area"),
])
def test_malformed_youtube_vis_is_one_line_and_exit_2(case, tmp_path, capsys, content, reason):
    gt = tmp_path / "gt.json"
    gt.write_text(content)
    assert main(["evaluate", str(case[0]), "--gt", str(gt)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {gt} is not a YouTube-VIS annotation file") and reason in lines[0]


def test_cli_prints_best_tutorial_and_top_pairs_and_writes_every_pair_as_csv(case, tmp_path, capsys):
    export, gt, _, _ = case
    out = tmp_path / "scores" / "walk.csv"
    assert main(["evaluate", str(export), "--gt", str(gt), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    evaluation = evaluate_source(export, gt)
    assert printed[0].startswith(f"walk.mp4: 20 frames, {REMOVED_PER_VIDEO} true misses")
    best = evaluation.scores.best
    assert any(line.startswith("best ") and f"{best.iou_track:5.2f} {best.iou_assert:6.2f}" in line for line in printed)
    assert any(line.startswith("tutorial walkthrough") and " 0.80   0.60 " in line for line in printed)
    assert any(line.startswith("tutorial function") and " 0.90   0.60 " in line for line in printed)
    start = printed.index(f"top {TOP_N} by F1:") + 1
    top = [line.split() for line in printed[start:start + TOP_N]]
    assert [int(words[0]) for words in top] == list(range(1, TOP_N + 1))
    assert top[0][1:3] == [f"{best.iou_track:.2f}", f"{best.iou_assert:.2f}"]  # ties: the best comes first
    assert [float(words[5]) for words in top] == sorted((float(words[5]) for words in top), reverse=True)  # F1
    assert printed[start + TOP_N] == (f"to flag with the best pair: --iou-track {best.iou_track:.2f} --iou-assert "
                                      f"{best.iou_assert:.2f} (run, batch; --mode reference), or Review's threshold sliders")
    assert printed[start + TOP_N + 1] == f"every threshold pair written to {out}"
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(DEFAULT_GRID)
    tutorial = next(r for r in rows if float(r["iou_track"]) == 0.8 and float(r["iou_assert"]) == 0.6)
    expected = evaluation.at(0.8, 0.6)
    assert same(float(tutorial["precision"]), expected.precision) and same(float(tutorial["f1"]), expected.f1)
    assert int(tutorial["n_flagged"]) == expected.n_flagged and int(tutorial["true_positives"]) == expected.true_positives


def test_a_video_is_detected_here_and_its_own_boxes_as_ground_truth_show_no_miss(walk, shared_cache, tmp_path, capsys):
    info, detections, track_ids = walk
    gt = tmp_path / "gt.txt"
    write_mot(gt, detections, track_ids)
    assert main(["evaluate", str(info.path), "--gt", str(gt), "--cache-dir", str(shared_cache), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("walk.mp4: 20 frames, 0 true misses") and "no single miss" in text
    # no "best" or ranking by an F1 that is 0 everywhere: the pairs that raise the fewest false alarms
    assert "best" not in text and "by F1" not in text and f"the {TOP_N} pairs that flag the fewest frames" in text
    listed = [int(line.split()[-2]) for line in text.splitlines()[-TOP_N:]]
    assert listed == sorted(listed)


@pytest.mark.parametrize("content", [None, "1,2,3\n", "frame,id,x,y,w,h\n1,1,a,b,c,d\n"])
def test_missing_or_malformed_ground_truth_is_one_line_and_exit_2(case, tmp_path, capsys, content):
    export = case[0]
    gt = tmp_path / "gt.txt"
    if content is not None:
        gt.write_text(content)
    assert main(["evaluate", str(export), "--gt", str(gt)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(gt) in lines[0] and not captured.out
    if content is None:
        assert "Ground truth not found" in lines[0]


def test_csv_into_a_folder_is_refused(case, tmp_path, capsys):
    export, gt, _, _ = case
    assert main(["evaluate", str(export), "--gt", str(gt), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_ground_truth_needs_one_video(walk):
    info, detections, _ = walk
    videos = [SourceVideo(info, name, detections, None) for name in ("a.mp4", "b.mp4")]
    assert choose_video(videos, "b.mp4").relpath == "b.mp4"
    with pytest.raises(UserError, match="--video RELPATH"):
        choose_video(videos, None)
    with pytest.raises(UserError, match="No video 'c.mp4'.*a.mp4, b.mp4"):
        choose_video(videos, "c.mp4")


def test_an_oversized_ground_truth_file_is_refused_before_it_is_parsed(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("core.ground_truth.MAX_GROUND_TRUTH_BYTES", 1024)
    for name, head in (("gt.txt", b"1,1,1,1,5,5\n"), ("gt.json", b"{")):  # whitespace alone is an empty file
        gt = tmp_path / name
        gt.write_bytes(head + b" " * 2048)
        assert main(["evaluate", str(case[0]), "--gt", str(gt)]) == 2
        assert "ground truth files are read up to" in capsys.readouterr().err


def test_a_ground_truth_that_ends_before_the_video_is_noted(case, tmp_path):
    """A ground truth of another, shorter video scored silently (71 annotated frames on an 80-frame clip)."""
    export, gt, *_ = case
    rows = [line for line in gt.read_text().splitlines() if int(line.split(",")[0]) <= 10]  # frames 1..10 (MOT: 1-based)
    short = tmp_path / "short.txt"
    short.write_text("\n".join(rows) + "\n")
    text = evaluate_source(export, short).text()
    assert "the ground truth annotates 10 frames and the video has 20: frames past 9 count as holding no object" in text


def test_a_bad_box_in_youtube_vis_names_the_file_even_where_its_video_has_no_name(case, tmp_path, capsys):
    """labelformat names a video after its frames' folder, which frames without one leave empty."""
    gt = tmp_path / "vis.json"
    gt.write_text('{"categories": [{"id": 1, "name": "p"}], "videos": [{"id": 1, "width": 9, "height": 9, "length": 1, '
                  '"file_names": ["0.jpg"]}], "annotations": [{"video_id": 1, "category_id": 1, "bboxes": [[1, 1, NaN, 2]]}]}')
    assert main(["evaluate", str(case[0]), "--gt", str(gt)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {gt} has a box coordinate that is not a finite number"), line
