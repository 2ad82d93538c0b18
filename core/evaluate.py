"""``python -m core evaluate``: how good the flickering assertion is on a video whose ground truth
you have; the assertion's counterpart of FiftyOne's ``evaluate_detections``.

The ground truth is a MOTChallenge ``gt.txt`` (:func:`core.ground_truth.read_mot_ground_truth`: MOT frame k
is video frame k - 1) or a YouTube-VIS ``.json`` (:func:`core.ground_truth.read_youtube_vis_ground_truth`,
through ``labelformat``; of a file with several videos, the one named like the video's file).
Annotations past the video's last frame are ignored. A frame *truly misses*
an object when an annotated object is matched by a detection (IoU >= 0.5) just before and just
after a stretch of at most the assertion's half window, and not inside it
(:func:`core.ground_truth.true_misses`). Every threshold pair of :data:`core.qa.DEFAULT_GRID` is then scored:
precision, recall and F1 of the flags against those frames, and the best pair.

Detections come from the source, as for ``select``: an export folder's prediction task (its
videos are probed from the paths its manifest records), or a video run through the detector here
(cached).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from core.detections import Detections
from core.errors import UserError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, DEFAULT_MODE, TUTORIAL_FUNCTION_IOU_TRACK
from core.paths import is_special_file, write_atomic
from core.ground_truth import (FlagEvaluation, GroundTruth, ThresholdScore, evaluate_flags, ground_truth_for,
                               linked_ground_truth, read_ground_truth, true_misses)
from core.label_formats import detect_format, read_boxes
from core.qa import APP_THRESHOLDS
from core.settings import DetectorSpec, FlickerSettings
from core.sources import SourceVideo, load_sources
from core.words import counted

TRACK_FORMATS = ("mot", "youtubevis")  # ground truth that names its tracks
MATCH_IOU = 0.5  # a detection finds an annotated object at this IoU, as in MOT and COCO evaluation
TUTORIAL_PAIRS = {  # the tutorial's walkthrough runs 0.8 / 0.6; its function defaults to 0.9 / 0.6
    "tutorial walkthrough": (DEFAULT_IOU_TRACK, DEFAULT_IOU_ASSERT),
    "tutorial function": (TUTORIAL_FUNCTION_IOU_TRACK, DEFAULT_IOU_ASSERT),
}
TOP_N = 10
CSV_COLUMNS = ("iou_track", "iou_assert", "precision", "recall", "f1", "n_flagged", "true_positives")


def choose_video(videos: list[SourceVideo], relpath: str | None) -> SourceVideo:
    """The one video to compare with a ground truth file: the only one, or the one named."""
    names = ", ".join(v.relpath for v in videos)
    if relpath is not None:
        for video in videos:
            if video.relpath == relpath:
                return video
        raise UserError(f"No video {relpath!r} in the source; it holds: {names}")
    if len(videos) > 1:
        raise UserError(f"Ground truth belongs to one video and the source holds {len(videos)} ({names}): "
                        "pick one with --video RELPATH")
    return videos[0]


@dataclass(frozen=True)
class Evaluation:
    """The assertion on one video against its ground truth, at every threshold pair."""

    relpath: str
    n_frames: int
    ground_truth: Path
    annotated_frames: int  # one past the last frame the ground truth annotates
    mode: str
    scores: FlagEvaluation

    def at(self, iou_track: float, iou_assert: float) -> ThresholdScore:
        return next(r for r in self.scores.rows
                    if math.isclose(r.iou_track, iou_track) and math.isclose(r.iou_assert, iou_assert))

    def top(self, n: int = TOP_N) -> list[ThresholdScore]:
        """The ``n`` best pairs by F1; among equals, nearest the app's thresholds first (as for the best)."""
        return sorted(self.scores.rows, key=lambda r: (-r.f1, math.dist((r.iou_track, r.iou_assert), APP_THRESHOLDS)))[:n]

    def text(self) -> str:
        misses = counted(self.scores.n_true_misses, "true miss", "true misses")
        lines = [f"{self.relpath}: {counted(self.n_frames, 'frame')}, {misses} "
                 f"(ground truth {self.ground_truth.name}, matched at IoU >= {MATCH_IOU}; {self.mode} mode)"]
        lines += self._notes()
        lines.append(f"{'':22} {'track':>5} {'assert':>6} {'precision':>9} {'recall':>6} {'F1':>5} "
                     f"{'flagged':>7} {'hits':>4}")
        if self.scores.n_true_misses:
            lines.append(_row("best", self.scores.best))
            heading, ranked = f"top {TOP_N} by F1:", self.top()
        else:  # F1 is 0 everywhere: what is left to compare is how many false alarms
            heading = f"the {TOP_N} pairs that flag the fewest frames (every flag a false alarm):"
            ranked = sorted(self.scores.rows, key=lambda r: (r.n_flagged, math.dist((r.iou_track, r.iou_assert), APP_THRESHOLDS)))
        lines += [_row(name, self.at(*pair)) for name, pair in TUTORIAL_PAIRS.items()]
        lines.append(heading)
        lines += [_row(f"  {k}", row) for k, row in enumerate(ranked[:TOP_N], start=1)]
        if self.scores.n_true_misses:
            best = self.scores.best
            lines.append(f"to flag with the best pair: --iou-track {best.iou_track:.2f} --iou-assert {best.iou_assert:.2f} "
                         f"(run, batch; --mode {self.mode}), or Review's threshold sliders")
        return "\n".join(lines)

    def _notes(self) -> list[str]:
        notes = []
        if self.annotated_frames > self.n_frames:
            notes.append(f"note: the ground truth annotates {self.annotated_frames} frames and the video has "
                         f"{self.n_frames}: annotations past frame {self.n_frames} are ignored")
        elif self.annotated_frames < self.n_frames:
            notes.append(f"note: the ground truth annotates {self.annotated_frames} frames and the video has "
                         f"{self.n_frames}: frames past {self.annotated_frames - 1} count as holding no object, so "
                         "no flag there is a true miss")
        if not self.scores.n_true_misses:
            notes.append("note: the ground truth shows no single miss of the detector: recall is undefined and "
                         "every flag is a false alarm")
        return notes

    def csv_bytes(self) -> bytes:
        """Every threshold pair as CSV (undefined values as ``nan``)."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.scores.rows:
            writer.writerow([r.iou_track, r.iou_assert, _number(r.precision), _number(r.recall), _number(r.f1),
                             r.n_flagged, r.true_positives])
        return text.getvalue().encode()


def _row(label: str, r: ThresholdScore) -> str:
    return (f"{label:22} {r.iou_track:5.2f} {r.iou_assert:6.2f} {_shown(r.precision):>9} {_shown(r.recall):>6} "
            f"{_shown(r.f1):>5} {r.n_flagged:7d} {r.true_positives:4d}")


def _shown(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def score_flags(detections: Detections, ground_truth: GroundTruth, mode: str = DEFAULT_MODE) -> FlagEvaluation:
    """Precision, recall and F1 of the assertion's flags at every grid pair against the true misses."""
    settings = FlickerSettings.of_mode(mode)
    truth = true_misses(detections, ground_truth, iou=MATCH_IOU, max_gap=settings.options.window)
    return evaluate_flags(settings.index(detections), truth)


def evaluate_source(source: Path, ground_truth: Path, mode: str = DEFAULT_MODE, video: str | None = None,
                    task: str | None = None, detector: DetectorSpec = DetectorSpec(),
                    progress_bar: bool = False, gt_format: str = "auto") -> Evaluation:
    """``python -m core evaluate``: an export folder or a video against ground truth: a MOT
    ``gt.txt`` or a YouTube-VIS ``.json`` (tracks as annotated), or COCO, YOLO, CVAT or a Lightly
    task (boxes linked into tracks by :func:`core.ground_truth.linked_ground_truth`)."""
    FlickerSettings.of_mode(mode)  # a bad mode or ground truth file fails before any detection runs
    if not Path(ground_truth).exists():
        raise UserError(f"Ground truth not found: {ground_truth}")
    fmt = detect_format(Path(ground_truth)) if gt_format == "auto" else gt_format
    truths = read_ground_truth(ground_truth) if fmt in TRACK_FORMATS else None
    chosen = choose_video(load_sources(source, detector, task, progress_bar), video)
    gt = (ground_truth_for(truths, chosen.relpath, ground_truth) if truths is not None else
          linked_ground_truth(read_boxes(ground_truth, chosen.info, chosen.relpath, fmt)))
    scores = score_flags(chosen.detections, gt, mode)
    return Evaluation(chosen.relpath, chosen.detections.n_frames, Path(ground_truth), gt.n_frames, mode, scores)


def check_csv_path(path: Path) -> None:
    """Checked before the evaluation runs, so a typo costs a second, not a detection run."""
    if Path(path).is_dir():
        raise UserError(f"--out {path} is a folder; give a file name such as scores.csv")
    if is_special_file(path):  # a pipe or a device: never renamed over
        raise UserError(f"--out {path} is not a regular file (a device, a pipe or a socket); give a file name")


def write_csv(evaluation: Evaluation, path: Path) -> None:
    check_csv_path(path)
    write_atomic(path, evaluation.csv_bytes())
