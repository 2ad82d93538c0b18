"""Figures for docs/labels.md (issue 22): python bench/labels.py [--no-sample]

1. Tracks out: boxes linked into tracks (core.tracks) and written as pre-labels in every track
   format, then read back with each format's own reader (CVAT for video: its XML schema; Label
   Studio: its JSON task schema; YouTube-VIS: labelformat; MOT: the ground-truth reader) and the
   written keyframes interpolated as the tool does: keyframes per track against boxes per track,
   and the lowest IoU of any box against its track's interpolation. On motmetrics' TUD-Campus and
   TUD-Stadtmitte labels, and on the HOG detector's boxes on the whole bundled sample with the
   imputed boxes of every flagged frame. The CVAT file is also read back as input (--predictions).
2. Label QA: the assertions on the same real labels, read through the MOT importer: what they list
   on the labels as annotated, then with planted errors (boxes dropped inside tracks, one-frame
   ghost boxes, flipped classes), how many of the planted errors are found and what else is listed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.detections import Detections, box_iou  # noqa: E402
from core.flicker import FlickerIndex  # noqa: E402
from core.ground_truth import read_mot_ground_truth  # noqa: E402
from core.label_formats import read_boxes  # noqa: E402
from core.label_qa import audit_detections  # noqa: E402
from core.paths import SAMPLE_VIDEO  # noqa: E402
from core.prelabels import PrelabelVideo, write_prelabel_set  # noqa: E402
from core.tracks import interpolated, link_tracks, track_rows, video_boxes  # noqa: E402
from core.video import probe  # noqa: E402

TRACK_FORMATS = ("cvat-video", "labelstudio-tracks", "youtubevis-tracks", "mot")
TUD = {"TUD-Campus": (71, 640, 480), "TUD-Stadtmitte": (179, 640, 480)}
LOOSE = (0.3, 0.5)  # the thresholds the pre-label tests use: many imputed boxes


def mot_path(sequence: str) -> Path:
    import motmetrics

    return Path(motmetrics.__file__).parent / "data" / sequence / "gt.txt"


def tud_video(sequence: str):
    """The sample's VideoInfo with the sequence's frame count and size: the readers and writers
    only need those (no frame is decoded for track formats)."""
    frames, width, height = TUD[sequence]
    return replace(probe(SAMPLE_VIDEO), frame_count=frames, width=width, height=height, fps=25.0)


def labels_of(sequence: str, info) -> Detections:
    return read_boxes(mot_path(sequence), info, f"{sequence}.avi", "mot")


# ------------------------------------------------------------------------------------ tracks out

def written_tracks(fmt: str, folder: Path, info, relpath: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per written track: the frames where the tool has a keyframe or box, and those boxes (xyxy)."""
    if fmt == "cvat-video":
        root = ET.parse(folder / f"{relpath}.xml").getroot()
        tracks = []
        for track in root.iter("track"):
            shown = [b for b in track.iter("box") if b.get("outside") == "0"]
            tracks.append((np.array([int(b.get("frame")) for b in shown], float),
                           np.array([[float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")] for b in shown])))
        return tracks
    if fmt == "labelstudio-tracks":
        (task,) = json.loads((folder / "tasks.json").read_text())
        size = np.array([info.width, info.height] * 2, float)
        tracks = []
        for region in task["predictions"][0]["result"]:
            seq = region["value"]["sequence"]
            xyxy = np.array([[k["x"], k["y"], k["x"] + k["width"], k["y"] + k["height"]] for k in seq]) / 100 * size
            tracks.append((np.array([k["frame"] - 1 for k in seq], float), xyxy))
        return tracks
    if fmt == "youtubevis-tracks":
        from labelformat.formats import YouTubeVISObjectDetectionTrackInput

        (video,) = YouTubeVISObjectDetectionTrackInput(input_file=folder / "annotations.json").get_labels()
        return [(np.array([f for f, b in enumerate(t.boxes) if b is not None], float),
                 np.array([[b.xmin, b.ymin, b.xmax, b.ymax] for b in t.boxes if b is not None])) for t in video.objects]
    truth = read_mot_ground_truth(folder / f"{relpath}.txt")
    return [(truth.frame[rows].astype(float), truth.xyxy[rows].astype(float)) for rows in truth.rows_per_track()]


def round_trip(name: str, info, relpath: str, detections: Detections, flicker) -> None:
    flagged = tuple(np.flatnonzero(flicker.flag_array).tolist())
    boxes, imputed = video_boxes(detections, flicker.imputed_frame, flicker.imputed_xyxy, flicker.imputed_cls,
                                 np.asarray(flagged, np.int64))
    linked = track_rows(link_tracks(boxes))
    lengths = np.array([len(rows) for rows in linked])
    print(f"\n{name}: {len(boxes)} boxes ({int(imputed.sum())} imputed) in {len(linked)} linked tracks "
          f"(boxes per track: median {np.median(lengths):.0f}, max {lengths.max()})")
    print(f"  {'format':20} {'tracks':>6} {'written':>8} {'per track':>9} {'written/boxes':>13} {'min IoU':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in TRACK_FORMATS:
            out = Path(tmp) / fmt
            write_prelabel_set([PrelabelVideo(info, relpath, detections, flicker, flagged or (0,))], out, fmt)
            tracks = written_tracks(fmt, out, info, relpath)
            if fmt == "mot":  # MOT ids follow the linked tracks in order of appearance, like the others
                tracks = sorted(tracks, key=lambda t: t[0][0])
            worst = 1.0
            for (frames, xyxy), rows in zip(tracks, linked, strict=True):
                at = boxes.frame[rows].astype(float)
                drawn = interpolated(np.r_[frames, at], np.r_[xyxy, np.zeros((len(at), 4))], np.arange(len(frames)))[len(frames):]
                worst = min(worst, float(box_iou(drawn, boxes.xyxy[rows].astype(float)).min()))
            written = sum(len(f) for f, _ in tracks)
            print(f"  {fmt:20} {len(tracks):6d} {written:8d} {written / len(tracks):9.1f} {written / len(boxes):13.2f} "
                  f"{worst:8.3f}")
            if fmt == "cvat-video":  # also as input: the tracks drawn on every frame, as CVAT draws them
                drawn = read_boxes(out / f"{relpath}.xml", info, relpath)
                same = np.array_equal(drawn.counts_per_frame(), boxes.counts_per_frame())
                print(f"  {'':20} read back by --predictions: {len(drawn)} boxes, "
                      f"the same count on every frame: {'yes' if same else 'NO'}")


# ------------------------------------------------------------------------------------ label QA

def plant_errors(labels: Detections, rng: np.random.Generator, n: int = 10):
    """``n`` boxes dropped inside tracks (their object labelled just before and after), ``n``
    boxes flipped to class 1 (each error with its track's neighbours untouched: one-frame errors),
    ``n`` one-frame ghost boxes away from every labelled box."""
    before, after = np.full(len(labels), -1), np.full(len(labels), -1)
    for rows in track_rows(link_tracks(labels, iou=0.5, max_gap=0)):
        before[rows[1:]], after[rows[:-1]] = rows[:-1], rows[1:]
    taken: set[int] = set()
    chosen = []
    for row in rng.permutation(np.flatnonzero((before >= 0) & (after >= 0))).tolist():
        if not {row, int(before[row]), int(after[row])} & taken:
            chosen.append(row)
            taken |= {row, int(before[row]), int(after[row])}
        if len(chosen) == 2 * n:
            break
    dropped, flipped = np.array(chosen[:n]), np.array(chosen[n:])
    ghosts = []
    width, height = labels.image_size
    while len(ghosts) < n:
        frame = int(rng.integers(1, labels.n_frames - 1))
        x, y = rng.uniform(0, width - 60), rng.uniform(0, height - 150)
        box = np.array([x, y, x + 60, y + 150], np.float32)
        near = labels.frame >= frame - 1
        near &= labels.frame <= frame + 1
        alone = all(abs(frame - f) > 1 for f, _ in ghosts)  # a ghost beside another would be a two-frame object
        if alone and (not len(labels.xyxy[near]) or box_iou(labels.xyxy[near], box[None]).max() < 0.05):
            ghosts.append((frame, box))
    keep = np.setdiff1d(np.arange(len(labels)), dropped)
    cls = labels.cls.copy()
    cls[flipped] = 1
    frame = np.r_[labels.frame[keep], [f for f, _ in ghosts]]
    xyxy = np.r_[labels.xyxy[keep], np.array([b for _, b in ghosts])]
    order = np.argsort(frame, kind="stable")
    planted = Detections(frame[order], xyxy[order], np.ones(len(frame)), np.r_[cls[keep], np.zeros(n, cls.dtype)][order],
                         {0: "person", 1: "other"}, labels.n_frames, labels.image_size)
    truth = ({("flicker", int(labels.frame[r])) for r in dropped} | {("ghost", f) for f, _ in ghosts}
             | {("class-flip", int(labels.frame[r])) for r in flipped})
    return planted, truth


def label_qa(sequence: str, seeds: int = 5) -> None:
    info = tud_video(sequence)
    labels = labels_of(sequence, info)
    started = time.perf_counter()
    clean = audit_detections(labels, mot_path(sequence))
    seconds = time.perf_counter() - started
    kinds = ("flicker", "ghost", "class-flip")
    counts = {k: len({s.frame for s in clean.suspicions if s.assertion == k}) for k in kinds}
    print(f"\n{sequence}: {len(labels)} labelled boxes on {labels.n_frames} frames; as annotated the assertions list "
          f"{len(clean.suspicions)} boxes ({', '.join(f'{v} {k} frames' for k, v in counts.items())}) in {seconds * 1000:.0f} ms")
    for s in clean.suspicions[:8]:
        print(f"  frame {s.frame}: {s.assertion}: {s.detail}")
    found, planted_frames = {k: 0 for k in kinds}, {k: 0 for k in kinds}
    extra = 0
    before = {(s.assertion, s.frame) for s in clean.suspicions}
    for seed in range(seeds):
        planted, truth = plant_errors(labels, np.random.default_rng(seed))
        listed = {(s.assertion, s.frame) for s in audit_detections(planted, mot_path(sequence)).suspicions}
        for kind, frame in truth:  # frames: two errors of a kind on one frame are one frame to find
            found[kind] += (kind, frame) in listed
            planted_frames[kind] += 1
        extra += len(listed - truth - before)
    print(f"  planted 10 drops, 10 ghosts, 10 class flips, {seeds} seeds: found the frames of "
          + ", ".join(f"{found[k]}/{planted_frames[k]} {k}" for k in kinds) + f"; {extra} other new listings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sample", action="store_true", help="skip the HOG run on the whole sample")
    args = parser.parse_args()
    for sequence in TUD:
        info = tud_video(sequence)
        labels = labels_of(sequence, info)
        nothing = FlickerIndex.from_detections(labels).evaluate(1.0, 0.0)
        round_trip(f"{sequence} labels", info, f"{sequence}.avi", labels, nothing)
    if not args.no_sample:
        from core.detect import detect_video, load_detector

        info = probe(SAMPLE_VIDEO)
        detections = detect_video(info, load_detector(None))
        round_trip("HOG on the sample, imputed boxes of every flagged frame (IoU 0.3 / 0.5)", info, "vtest.avi",
                   detections, FlickerIndex.from_detections(detections).evaluate(*LOOSE))
    for sequence in TUD:
        label_qa(sequence)


if __name__ == "__main__":
    main()
