"""A simulated detector over real ground-truth tracks, to measure the QA estimators against the truth.

motmetrics ships real pedestrian annotations (TUD-Campus, TUD-Stadtmitte). The simulated detector
sees every ground-truth box with position/size jitter, drops boxes (mostly for a single frame, some
for a few frames), and adds false positives: scattered single boxes and short-lived spurious tracks
that blink, which is what fools the flickering assertion in real footage.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.detections import Detections
from core.qa import GroundTruth, read_mot_ground_truth

MOT_SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
IMAGE_SIZE = (640, 480)  # both TUD sequences


@dataclass(frozen=True)
class SimulatedVideo:
    name: str
    detections: Detections
    ground_truth: GroundTruth


def simulated_videos(seeds: range = range(5), stress: bool = False) -> list[SimulatedVideo]:
    """One video per motmetrics sequence and seed. ``stress``: 1500 frames (the tracks played back
    and forth) from a detector that rarely drops a box, so true misses are a few percent of the
    frames and blinking false tracks dominate the most suspicious frames."""
    videos = []
    for sequence in MOT_SEQUENCES:
        truth = motmetrics_ground_truth(sequence)
        for seed in seeds:
            profile = DetectorProfile.for_seed(seed)
            video_truth = truth
            if stress:
                profile = replace(profile, drop_rate=profile.drop_rate / 8, gap_rate=profile.gap_rate / 4)
                video_truth = ping_pong(truth, 1500)
            name = f"{sequence.removeprefix('TUD-')}-{seed}"
            videos.append(SimulatedVideo(name, simulate_detections(video_truth, seed, profile), video_truth))
    return videos


def motmetrics_ground_truth(sequence: str) -> GroundTruth:
    """A ground truth that ships with the installed motmetrics package."""
    import motmetrics  # test/bench dependency only

    return read_mot_ground_truth(Path(motmetrics.__file__).parent / "data" / sequence / "gt.txt")


@dataclass(frozen=True)
class DetectorProfile:
    """How the simulated detector errs: drop and gap rates per ground-truth box and frame, false-box rates per frame."""

    drop_rate: float = 0.06  # single-frame misses: what the assertion is for
    gap_rate: float = 0.01  # starts of longer misses (2..max_gap_length frames)
    max_gap_length: int = 5
    jitter: float = 0.04  # std of box position and size noise, as a fraction of the box size
    false_positive_rate: float = 0.05  # scattered one-frame false boxes per frame
    spurious_track_rate: float = 0.03  # starts of short false tracks per frame
    spurious_blink_rate: float = 0.3  # a spurious track's chance to vanish in each of its frames

    @classmethod
    def for_seed(cls, seed: int) -> "DetectorProfile":
        """A different but plausible detector per seed, so a bench covers easy and hard videos."""
        rng = np.random.default_rng([seed, 7])
        return cls(
            drop_rate=float(rng.uniform(0.03, 0.10)),
            gap_rate=float(rng.uniform(0.005, 0.02)),
            jitter=float(rng.uniform(0.02, 0.06)),
            false_positive_rate=float(rng.uniform(0.0, 0.1)),
            spurious_track_rate=float(rng.uniform(0.01, 0.05)),
        )


def simulate_detections(truth: GroundTruth, seed: int, profile: DetectorProfile | None = None) -> Detections:
    """The boxes a flawed detector would report on the video ``truth`` annotates (class 0, person)."""
    profile = profile or DetectorProfile.for_seed(seed)
    rng = np.random.default_rng(seed)
    kept = _detected_mask(truth, profile, rng)
    boxes = _jittered(truth.xyxy[kept], profile.jitter, rng)
    frames = [truth.frame[kept], _false_positive_frames(truth.n_frames, profile, rng)]
    false_boxes = _random_boxes(len(frames[1]), rng)
    spurious_frames, spurious_boxes = _spurious_tracks(truth.n_frames, profile, rng)
    frame = np.concatenate([*frames, spurious_frames])
    xyxy = np.concatenate([boxes, false_boxes, spurious_boxes])
    order = np.argsort(frame, kind="stable")
    score = rng.uniform(0.3, 0.95, len(frame))
    return Detections(frame[order], xyxy[order], score, np.zeros(len(frame)), {0: "person"}, truth.n_frames, IMAGE_SIZE)


def _detected_mask(truth: GroundTruth, profile: DetectorProfile, rng: np.random.Generator) -> np.ndarray:
    """Per ground-truth row, whether the detector sees it: independent single drops plus gaps."""
    kept = rng.random(len(truth.frame)) >= profile.drop_rate
    for rows in truth.rows_per_track():
        starts = np.flatnonzero(rng.random(len(rows)) < profile.gap_rate)
        for start, length in zip(starts, rng.integers(2, profile.max_gap_length + 1, len(starts))):
            kept[rows[start:start + length]] = False
    return kept


def _jittered(xyxy: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    size = xyxy[:, 2:] - xyxy[:, :2]
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2 + rng.normal(0, jitter, size.shape) * size
    size = size * np.exp(rng.normal(0, jitter, size.shape))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _false_positive_frames(n_frames: int, profile: DetectorProfile, rng: np.random.Generator) -> np.ndarray:
    counts = rng.poisson(profile.false_positive_rate, n_frames)
    return np.repeat(np.arange(n_frames), counts)


def _random_boxes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Pedestrian-sized boxes anywhere in the image."""
    width, height = IMAGE_SIZE
    h = rng.uniform(60, 250, count)
    w = h * rng.uniform(0.3, 0.5, count)
    x0 = rng.uniform(0, width - w)
    y0 = rng.uniform(0, height - h)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def _spurious_tracks(n_frames: int, profile: DetectorProfile, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Short static false tracks (a poster, a reflection) that blink on and off."""
    frames, boxes = [], []
    starts = np.flatnonzero(rng.random(n_frames) < profile.spurious_track_rate)
    for start, box in zip(starts, _random_boxes(len(starts), rng)):
        span = np.arange(start, min(start + int(rng.integers(3, 12)), n_frames))
        span = span[rng.random(len(span)) >= profile.spurious_blink_rate]
        frames.append(span)
        boxes.append(_jittered(np.repeat(box[None], len(span), axis=0), 0.02, rng))
    if not frames:
        return np.empty(0, np.int64), np.empty((0, 4))
    return np.concatenate(frames), np.concatenate(boxes)


def ping_pong(truth: GroundTruth, n_frames: int) -> GroundTruth:
    """A longer video from the same real tracks: played forward, then backward, and so on."""
    period = 2 * (truth.n_frames - 1)
    source = np.arange(n_frames) % period
    source = np.where(source < truth.n_frames, source, period - source)
    offsets = np.searchsorted(truth.frame, np.arange(truth.n_frames + 1))
    rows = [np.arange(offsets[s], offsets[s + 1]) for s in source]
    counts = [len(r) for r in rows]
    rows = np.concatenate(rows)
    return GroundTruth(np.repeat(np.arange(n_frames), counts).astype(np.int32), truth.track_id[rows], truth.xyxy[rows], n_frames)
