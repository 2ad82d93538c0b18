"""Label QA: the assertions run on human labels (motmetrics' real TUD-Campus ground truth) find
planted labelling errors; evaluate reads ground truth without track ids by linking boxes."""
import subprocess
import sys

import numpy as np

from conftest import write_video
from core.ground_truth import linked_ground_truth
from core.label_formats import read_boxes
from core.label_qa import audit_labels
from core.paths import ROOT
from core.video import probe
from testkit.qa_sim import motmetrics_ground_truth


def tud_video(tmp_path):
    """A 71-frame 640x480 video: TUD-Campus's frame count and size (the labels only need those)."""
    frames = [np.full((480, 640, 3), 40 + k, np.uint8) for k in range(71)]
    return probe(write_video(tmp_path / "campus.mp4", frames))


def tud_rows(sequence="TUD-Campus"):
    truth = motmetrics_ground_truth(sequence)
    xywh = np.c_[truth.xyxy[:, :2], truth.xyxy[:, 2:] - truth.xyxy[:, :2]]
    return [[int(f) + 1, int(t), *map(float, box)] for f, t, box in zip(truth.frame, truth.track_id, xywh)]


def write_mot(path, rows):
    path.write_text("".join(f"{f},{t},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n" for f, t, x, y, w, h in rows))
    return path


def test_planted_labelling_errors_are_listed_with_their_frame_and_box(tmp_path):
    video = tud_video(tmp_path)
    rows = tud_rows()
    clean = audit_labels(write_mot(tmp_path / "clean.txt", rows), video, "campus.mp4")
    dropped = next(r for r in rows if r[0] == 30 and r[1] == rows[0][1] or r[0] == 30)  # one box of frame 30 (1-based)
    planted = [r for r in rows if r is not dropped] + [[50, 999, 5.0, 5.0, 40.0, 90.0]]  # and a box on frame 50 only
    audit = audit_labels(write_mot(tmp_path / "planted.txt", planted), video, "campus.mp4")
    new = set((s.frame, s.assertion) for s in audit.suspicions) - set((s.frame, s.assertion) for s in clean.suspicions)
    assert (29, "flicker") in new and (49, "ghost") in new
    missing = next(s for s in audit.suspicions if (s.frame, s.assertion) == (29, "flicker"))
    x, y, w, h = dropped[2:]
    assert abs(missing.xyxy[0] - x) < 10 and abs(missing.xyxy[3] - (y + h)) < 10  # where the dropped box was
    assert len(clean.suspicions) <= 10  # the real labels themselves are nearly clean (see the note)


def test_the_cli_lists_suspicious_labels_as_csv(tmp_path):
    video = tud_video(tmp_path)
    rows = tud_rows()
    track = next(r[1] for r in rows if r[0] == 40 and any(q[0] == 39 and q[1] == r[1] for q in rows)
                 and any(q[0] == 41 and q[1] == r[1] for q in rows))
    labels = write_mot(tmp_path / "gt.txt", [r for r in rows if not (r[0] == 40 and r[1] == track)])
    out = tmp_path / "suspicious.csv"
    result = subprocess.run([sys.executable, "-m", "core", "evaluate", str(video.path), "--gt", str(labels), "--labels",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "suspicious frames:" in result.stdout
    header, *lines = out.read_text().splitlines()
    assert header == "frame,assertion,x0,y0,x1,y1,class,detail" and lines


def test_labels_without_track_ids_are_linked_into_tracks_that_give_the_same_true_misses(tmp_path):
    """TUD-Stadtmitte's boxes read without their ids (MOT with every id -1) and linked by IoU give
    the same true misses of a simulated detector as the annotated tracks."""
    from core.ground_truth import true_misses
    from testkit.qa_sim import simulate_detections

    truth = motmetrics_ground_truth("TUD-Stadtmitte")
    video = probe(write_video(tmp_path / "stadtmitte.mp4", [np.zeros((480, 640, 3), np.uint8)] * truth.n_frames))
    anonymous = write_mot(tmp_path / "anon.txt", [[r[0], -1, *r[2:]] for r in tud_rows("TUD-Stadtmitte")])
    linked = linked_ground_truth(read_boxes(anonymous, video, "stadtmitte.mp4", "mot"))
    detections = simulate_detections(truth, seed=2)
    np.testing.assert_array_equal(true_misses(detections, linked), true_misses(detections, truth))


def test_hostile_labels_are_one_line_and_no_csv_is_written(tmp_path):
    video = tud_video(tmp_path)
    labels = write_mot(tmp_path / "gt.txt", [[1, 99999999999999999999, 5.0, 5.0, 40.0, 90.0]])
    out = tmp_path / "suspicious.csv"
    result = subprocess.run([sys.executable, "-m", "core", "evaluate", str(video.path), "--gt", str(labels), "--labels",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "track id" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_label_named_like_a_formula_is_written_to_the_csv_as_text():
    """A class name comes from the labels file: in the CSV (the CLI's --out and the app's download)
    a spreadsheet shows it, never runs it."""
    import csv
    import io
    from pathlib import Path

    from core.label_qa import LabelAudit, Suspicion

    hostile = '=HYPERLINK("http://127.0.0.1:9/x","x")'
    audit = LabelAudit(Path("labels.json"), 10, (Suspicion(6, "ghost", (1.0, 2.0, 3.0, 4.0), hostile, "labelled once"),))
    (row,) = list(csv.reader(io.StringIO(audit.csv_bytes().decode())))[1:]
    assert row == ["6", "ghost", "1.0", "2.0", "3.0", "4.0", "'" + hostile, "labelled once"]


def test_mot_rows_marked_to_ignore_are_no_labels_to_check(tmp_path):
    """MOTChallenge ground truth marks rows to ignore with 0 in its seventh column; its evaluation
    skips them, and so does the label check: a one-frame box so marked is no ghost."""
    video = tud_video(tmp_path)
    rows = tud_rows()
    lines = "".join(f"{f},{t},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,1.0\n" for f, t, x, y, w, h in rows)
    ignored = "50,999,5.00,5.00,40.00,90.00,0,7,0.1\n"  # on frame 50 only: a ghost, were it a label
    clean = audit_labels(write_text(tmp_path / "gt.txt", lines), video, "campus.mp4")
    marked = audit_labels(write_text(tmp_path / "gt_ignored.txt", ignored + lines), video, "campus.mp4")
    assert marked.suspicions == clean.suspicions and (49, "ghost") not in {(s.frame, s.assertion) for s in marked.suspicions}
    counted = audit_labels(write_text(tmp_path / "gt_kept.txt", ignored.replace(",0,7,", ",1,7,") + lines), video, "campus.mp4")
    assert (49, "ghost") in {(s.frame, s.assertion) for s in counted.suspicions}  # the same row, not marked: a ghost


def write_text(path, text):
    path.write_text(text)
    return path
