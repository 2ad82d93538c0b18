"""Ground truth: reading annotated tracks (MOTChallenge ``gt.txt``, YouTube-VIS through Lightly's
``labelformat``), finding the frames where a detector really misses an object, and scoring the
assertion's flags against them at every threshold pair. What ``evaluate`` and the QA benchmark use;
the review loop itself (:mod:`core.qa`) never needs ground truth."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping

import numpy as np

from core.bounded import check_ground_truth_rows
from core.detections import Detections, box_iou, xywh_to_xyxy
from core.errors import UserError
from core.flicker import FlickerIndex
from core.qa import APP_THRESHOLDS, DEFAULT_GRID, Grid, best_index, flag_matrix

MAX_GROUND_TRUTH_BYTES = 128 * 2**20  # a 10-minute video with 50 tracks is ~30 MB of YouTube-VIS; JSON parses to ~10x in objects


@dataclass(frozen=True)
class GroundTruth:
    """Annotated boxes of a video: ``frame`` (N,) 0-based, sorted; ``track_id`` (N,); ``xyxy``
    (N, 4) in pixels; ``n_frames`` is one past the last annotated frame."""

    frame: np.ndarray
    track_id: np.ndarray
    xyxy: np.ndarray
    n_frames: int

    def rows_per_track(self) -> list[np.ndarray]:
        """Row indices of each track, in frame order."""
        order = np.lexsort((self.frame, self.track_id))
        starts = np.flatnonzero(np.diff(self.track_id[order]) != 0) + 1
        return np.split(order, starts) if len(order) else []


def read_mot_ground_truth(path: str | Path) -> GroundTruth:
    """A MOTChallenge ``gt.txt``: rows ``frame,id,x,y,w,h[,conf,...]``, frames from 1.

    Rows whose ``conf`` (7th column) is 0 are ignored, as the MOT evaluation does; later columns
    (class and visibility in MOT16+, world coordinates in MOT15) are not used. Frame k of the
    file is frame k - 1 of the video.
    """
    path = _ground_truth_file(path)
    expected = "a MOT ground-truth file (rows frame,id,x,y,w,h,conf,... with frames from 1 and positive sizes)"
    try:
        with warnings.catch_warnings():  # an empty file: the error below says it
            warnings.simplefilter("ignore")
            table = np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path} is not {expected}: {first_line}") from None
    if table.shape[1] < 6 or (len(table) and (table[:, 0].min() < 1 or (table[:, 4:6] <= 0).any())):
        raise UserError(f"{path} is not {expected}")
    check_ground_truth_rows(table[:, 0] - 1, table[:, 1], table[:, 2:6], path)
    if table.shape[1] > 6:
        table = table[table[:, 6] != 0]
    table = table[np.argsort(table[:, 0], kind="stable")]
    return GroundTruth(
        frame=table[:, 0].astype(np.int32) - 1,
        track_id=table[:, 1].astype(np.int64),
        xyxy=xywh_to_xyxy(table[:, 2:6]).astype(np.float32),
        n_frames=int(table[:, 0].max()) if len(table) else 0,
    )


def read_ground_truth(path: str | Path) -> dict[str, GroundTruth]:
    """Ground truth per video name: a YouTube-VIS ``.json`` (through Lightly's ``labelformat``;
    the names are its videos' folder names) or otherwise a MOT ``gt.txt`` (one video, named "")."""
    if Path(path).suffix.lower() == ".json":
        return read_youtube_vis_ground_truth(path)
    return {"": read_mot_ground_truth(path)}


def ground_truth_for(truths: Mapping[str, GroundTruth], relpath: str, source: str | Path = "the ground truth") -> GroundTruth:
    """The ground truth of the video at ``relpath``: the file's only video, or the one named like
    the video's file (``walk`` or ``walk.mp4`` for ``clips/walk.mp4``)."""
    if len(truths) == 1:
        return next(iter(truths.values()))
    name = PurePosixPath(relpath)
    for key in (relpath, name.name, name.stem):
        if key in truths:
            return truths[key]
    listed = ", ".join(sorted(truths)[:10]) + (", ..." if len(truths) > 10 else "")
    raise UserError(f"{source} holds {len(truths)} videos and none is named {name.stem!r}: {listed}")


def read_youtube_vis_ground_truth(path: str | Path) -> dict[str, GroundTruth]:
    """A YouTube-VIS annotation file: per video, each annotation is one track with a box (or
    ``null``) per frame. Read with ``labelformat``'s own reader; every video of the file."""
    from labelformat.formats import YouTubeVISObjectDetectionTrackInput

    from core.label_formats import youtube_vis_problem

    path = _ground_truth_file(path)
    expected = "a YouTube-VIS annotation file (videos, categories, annotations with per-frame bboxes)"
    if (problem := youtube_vis_problem(path)) is not None:
        raise UserError(f"{path} is not {expected}: {problem}")
    try:
        videos = list(YouTubeVISObjectDetectionTrackInput(input_file=path).get_labels())
        truths = {str(v.video.filename): _track_ground_truth(v, path) for v in videos}
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError, OverflowError) as error:
        reason = (str(error).splitlines() or [""])[0][:200] or type(error).__name__
        raise UserError(f"{path} is not {expected}: {reason}") from None
    if not truths:
        raise UserError(f"{path} is not {expected}: it lists no video")
    return truths


def _track_ground_truth(video, path: Path) -> GroundTruth:
    """One labelformat ``VideoObjectDetectionTrack`` as boxes per frame, one track per object."""
    rows = [(f, track, box.xmin, box.ymin, box.xmax, box.ymax)
            for track, obj in enumerate(video.objects, start=1) for f, box in enumerate(obj.boxes) if box is not None]
    table = np.array(rows, np.float64).reshape(-1, 6)
    # the file, and its video by name where it has one (labelformat's is empty for frames without a folder)
    source = f"{path}, video {video.video.filename!r}," if video.video.filename else str(path)
    check_ground_truth_rows(table[:, 0], table[:, 1], table[:, 2:], source)
    if not np.all(np.isfinite(table)) or np.any(table[:, 4:6] <= table[:, 2:4]):
        raise ValueError(f"video {video.video.filename!r} has a box with no area or a non-numeric coordinate")
    table = table[np.argsort(table[:, 0], kind="stable")]
    return GroundTruth(table[:, 0].astype(np.int32), table[:, 1].astype(np.int64), table[:, 2:].astype(np.float32),
                       int(video.video.number_of_frames))


def _ground_truth_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Ground truth not found: {path}")
    if path.stat().st_size > MAX_GROUND_TRUTH_BYTES:
        raise UserError(f"{path} is {path.stat().st_size / 2**20:.0f} MiB; ground truth files are read up to "
                        f"{MAX_GROUND_TRUTH_BYTES // 2**20} MiB")
    return path


def true_misses(detections: Detections, ground_truth: GroundTruth, iou: float = 0.5, max_gap: int = 1) -> np.ndarray:
    """Per frame of ``detections``, whether the detector really misses an object there.

    An annotated object is *matched* in a frame when a detection of that frame overlaps it at
    IoU >= ``iou`` (greedy one-to-one matching, highest IoU first; classes are ignored). Frame i
    *misses* an object when the object is unmatched in i, its unmatched stretch around i lasts at
    most ``max_gap`` frames, and the object is annotated in every frame of the stretch and matched
    in the frame just before and just after it. With ``max_gap=1`` that is a single-frame miss
    (matched in i-1 and i+1, missed in i), what the assertion's window of 3 targets; a half window
    of k (improved mode) targets ``max_gap=k``. Longer misses, objects never detected and misses
    at either end of a track do not count. Annotations past the last frame are ignored.
    """
    matched = _matched_rows(detections, ground_truth, iou)
    missed = np.zeros(detections.n_frames, bool)
    for rows in ground_truth.rows_per_track():
        for stretch in _short_unmatched_stretches(ground_truth.frame[rows], matched[rows], max_gap):
            missed[stretch[stretch < detections.n_frames]] = True
    return missed


def _matched_rows(detections: Detections, ground_truth: GroundTruth, iou: float) -> np.ndarray:
    matched = np.zeros(len(ground_truth.frame), bool)
    bounds = np.searchsorted(ground_truth.frame, np.arange(detections.n_frames + 1))
    for i in range(detections.n_frames):
        lo, hi = bounds[i], bounds[i + 1]
        boxes = detections.xyxy[detections.rows(i)]
        if hi > lo and len(boxes):
            matched[lo:hi] = _greedy_matches(box_iou(ground_truth.xyxy[lo:hi, None], boxes[None]), iou)
    return matched


def _greedy_matches(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Rows matched one-to-one to columns, highest IoU first, at IoU >= threshold."""
    rows, cols = np.nonzero(iou >= threshold)
    matched = np.zeros(iou.shape[0], bool)
    used: set[int] = set()
    for k in np.argsort(-iou[rows, cols], kind="stable").tolist():
        r, c = int(rows[k]), int(cols[k])
        if not matched[r] and c not in used:
            matched[r] = True
            used.add(c)
    return matched


def _short_unmatched_stretches(frames: np.ndarray, matched: np.ndarray, max_gap: int) -> list[np.ndarray]:
    """Frames of each unmatched stretch of one track that is at most max_gap long, annotated
    throughout and bounded by matched frames on both sides."""
    edges = np.flatnonzero(np.diff(np.r_[0, (~matched).astype(np.int8), 0]))
    stretches = []
    for start, stop in zip(edges[::2], edges[1::2]):  # rows start..stop-1 are unmatched
        bounded = 0 < start and stop < len(frames) and stop - start <= max_gap
        if bounded and frames[stop] - frames[start - 1] == stop - start + 1:
            stretches.append(frames[start:stop])
    return stretches


@dataclass(frozen=True)
class ThresholdScore:
    """The assertion's true quality at one threshold pair, against known truth."""

    iou_track: float
    iou_assert: float
    precision: float  # NaN when nothing is flagged
    recall: float  # NaN when there is no true miss
    f1: float
    n_flagged: int
    true_positives: int


@dataclass(frozen=True)
class FlagEvaluation:
    rows: tuple[ThresholdScore, ...]  # one per grid pair, in grid order
    best: ThresholdScore  # highest F1 (ties: nearest the app's thresholds)
    n_true_misses: int


def evaluate_flags(index: FlickerIndex, truth: np.ndarray, grid: Grid = DEFAULT_GRID) -> FlagEvaluation:
    """Precision, recall and F1 of the assertion at every grid pair against ``truth`` (bool per
    frame, e.g. from :func:`true_misses`), and the best pair."""
    truth = np.asarray(truth, bool)
    if truth.shape != (index.n_frames,):
        raise ValueError(f"truth has {truth.size} values for {index.n_frames} frames")
    flags = flag_matrix(index, grid)
    n_flagged = flags.sum(axis=1)
    hits = (flags & truth).sum(axis=1)
    n_true = int(truth.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_flagged > 0, hits / n_flagged, np.nan)
        recall = np.where(n_true > 0, hits / n_true, np.nan)
        f1 = np.where(n_flagged + n_true > 0, 2 * hits / (n_flagged + n_true), 0.0)
    rows = tuple(ThresholdScore(float(t), float(a), float(precision[g]), float(recall[g]), float(f1[g]), int(n_flagged[g]),
                                int(hits[g])) for g, (t, a) in enumerate(grid))
    return FlagEvaluation(rows, rows[best_index(f1, grid, APP_THRESHOLDS)], n_true)


def linked_ground_truth(labels: Detections, iou: float = 0.5, max_gap: int = 2) -> GroundTruth:
    """Labels without track ids (COCO, YOLO, CVAT, a Lightly task) as tracks
    (:func:`core.tracks.link_tracks`; ``max_gap`` lets a track survive the short gaps the assertion
    is about, and there are no scores for a detection tracker such as ByteTrack to work with)."""
    from core.tracks import link_tracks

    return GroundTruth(labels.frame.astype(np.int32), link_tracks(labels, iou, max_gap), labels.xyxy.astype(np.float32),
                       labels.n_frames)
