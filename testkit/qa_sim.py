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
from core.ground_truth import GroundTruth, read_mot_ground_truth

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
    occlusion_drop: float = 0.0  # extra drop probability per unit of a box's overlap with the boxes in front of it
    hard_tracks: float = 0.0  # > 0: each track gets a hardness; its boxes drop when a noisy score falls under a floor
    misplaced: float = 0.0  # extra jitter for hard tracks (a box half on the object)
    ghost_rate: float = 0.0  # one-frame false boxes per frame, next to a real person
    min_jitter_px: float = 0.0  # jitter floor in pixels: small objects are located no better than a few pixels

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
    hardness, kept = _seen(truth, profile, rng)
    jitter = profile.jitter * (1 + profile.misplaced * hardness[kept])
    boxes = _jittered(truth.xyxy[kept], jitter, rng, profile.min_jitter_px)
    frames = [truth.frame[kept], _false_positive_frames(truth.n_frames, profile, rng)]
    false_boxes = _random_boxes(len(frames[1]), rng)
    spurious_frames, spurious_boxes = _spurious_tracks(truth.n_frames, profile, rng)
    ghost_frames, ghost_boxes = _ghosts(truth, profile, rng)
    frame = np.concatenate([*frames, spurious_frames, ghost_frames])
    xyxy = np.concatenate([boxes, false_boxes, spurious_boxes, ghost_boxes])
    order = np.argsort(frame, kind="stable")
    score = rng.uniform(0.3, 0.95, len(frame))
    return Detections(frame[order], xyxy[order], score, np.zeros(len(frame)), {0: "person"}, truth.n_frames, IMAGE_SIZE)


def _seen(truth: GroundTruth, profile: DetectorProfile, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per ground-truth row, its track's hardness and whether the detector sees it."""
    hardness = _track_hardness(truth, profile, rng)
    return hardness, _detected_mask(truth, profile, hardness, rng)


def lone_detections(truth: GroundTruth, seed: int, profile: DetectorProfile) -> np.ndarray:
    """Frames (1..n-2) where :func:`simulate_detections` sees a person it misses in the frames just
    before and just after: in the detector's output an object that exists for one frame only."""
    _, kept = _seen(truth, profile, np.random.default_rng(seed))
    lone = np.zeros(truth.n_frames, bool)
    for rows in truth.rows_per_track():
        frames, seen = truth.frame[rows], kept[rows]
        before = np.r_[False, seen[:-1] & (np.diff(frames) == 1)]
        after = np.r_[seen[1:] & (np.diff(frames) == 1), False]
        hits = frames[seen & ~before & ~after]
        lone[hits[(hits > 0) & (hits < truth.n_frames - 1)]] = True
    return lone


def _track_hardness(truth: GroundTruth, profile: DetectorProfile, rng: np.random.Generator) -> np.ndarray:
    """Per ground-truth row, its track's hardness in [0, 1] (0 for every row without hard tracks)."""
    if not profile.hard_tracks:
        return np.zeros(len(truth.frame))
    ids, of_row = np.unique(truth.track_id, return_inverse=True)
    return rng.beta(0.6, 1.4, len(ids))[of_row]


def _detected_mask(truth: GroundTruth, profile: DetectorProfile, hardness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per ground-truth row, whether the detector sees it: single drops (more for occluded boxes),
    longer gaps, and for hard tracks a noisy score that falls under the floor in clusters."""
    drop = profile.drop_rate + profile.occlusion_drop * _occlusion(truth)
    kept = rng.random(len(truth.frame)) >= np.clip(drop, 0, 0.95)
    for rows in truth.rows_per_track():
        starts = np.flatnonzero(rng.random(len(rows)) < profile.gap_rate)
        for start, length in zip(starts, rng.integers(2, profile.max_gap_length + 1, len(starts))):
            kept[rows[start:start + length]] = False
        if profile.hard_tracks:  # AR(1) score noise: misses come in clusters on hard objects
            noise = np.zeros(len(rows))
            for k in range(1, len(rows)):
                noise[k] = 0.6 * noise[k - 1] + rng.normal(0, 0.15)
            score = 0.85 - profile.hard_tracks * hardness[rows] + noise
            kept[rows[score < 0.35]] = False
    return kept


def _occlusion(truth: GroundTruth) -> np.ndarray:
    """Per row, the largest share of its box covered by a box lower in the image (nearer the camera)."""
    covered = np.zeros(len(truth.frame))
    bounds = np.searchsorted(truth.frame, np.arange(truth.n_frames + 1))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi - lo < 2:
            continue
        a, b = truth.xyxy[lo:hi, None].astype(np.float64), truth.xyxy[None, lo:hi].astype(np.float64)
        wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
        area = np.prod(a[..., 2:] - a[..., :2], axis=-1)
        share = wh[..., 0] * wh[..., 1] / np.maximum(area, 1)
        in_front = b[..., 3] > a[..., 3]
        covered[lo:hi] = np.max(np.where(in_front, share, 0), axis=1)
    return covered


def _jittered(xyxy: np.ndarray, jitter, rng: np.random.Generator, min_px: float = 0.0) -> np.ndarray:
    size = xyxy[:, 2:] - xyxy[:, :2]
    jitter = np.broadcast_to(np.asarray(jitter, np.float64).reshape(-1, 1), size.shape)
    spread = np.maximum(jitter * size, min_px)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2 + rng.normal(0, 1, size.shape) * spread
    size = size * np.exp(rng.normal(0, 1, size.shape) * spread / np.maximum(size, 1))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _ghosts(truth: GroundTruth, profile: DetectorProfile, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One-frame false boxes next to a real person (a shadow, a reflection, a double detection)."""
    rows = np.flatnonzero(rng.random(len(truth.frame)) < profile.ghost_rate)
    boxes = truth.xyxy[rows].astype(np.float64)
    width = boxes[:, 2] - boxes[:, 0]
    shift = width * rng.uniform(0.4, 0.9, len(rows)) * rng.choice([-1, 1], len(rows))
    return truth.frame[rows], boxes + np.stack([shift, np.zeros_like(shift), shift, np.zeros_like(shift)], axis=1)


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


# ---------------------------------------------------------------------------------------- harder footage

FOOTAGE = ("mild", "crowd", "fast", "small", "hard", "rare", "mixed")
HELD_OUT = ("traffic", "sports", "static", "night")  # footage no constant was chosen on: checks of the estimator, not targets


def footage_videos(kind: str, seeds: range = range(5)) -> list[SimulatedVideo]:
    """Videos of one kind of footage, one per motmetrics sequence and seed (``mixed``: one per seed):

    * ``mild``: today's bench (the tracks as they are, a plausible detector per seed);
    * ``crowd``: the people duplicated side by side and behind each other; misses driven by occlusion;
    * ``fast``: every third frame (low frame-to-frame IoU) and camera jolts that move every box;
    * ``small``: far-away people (boxes a third of the size) located to a few pixels;
    * ``hard``: score-dependent misses clustered on hard objects, misplaced boxes, one-frame ghosts;
    * ``rare``: 3,000-frame videos where the detector rarely drops a box;
    * ``mixed``: segments of the kinds above one after the other, with scene cuts between them.
    """
    if kind == "mixed":
        return [_mixed(seed) for seed in seeds]
    if kind == "traffic":
        return [_traffic(road, seed) for road in ROADS for seed in seeds]
    if kind in ("sports", "static", "night"):
        from testkit.held_out import held_out_videos  # it builds on this module

        return held_out_videos(kind, seeds)
    videos = []
    for sequence in MOT_SEQUENCES:
        for seed in seeds:
            truth, profile = _footage(kind, motmetrics_ground_truth(sequence), seed)
            name = f"{kind}-{sequence.removeprefix('TUD-')}-{seed}"
            videos.append(SimulatedVideo(name, simulate_detections(truth, seed, profile), truth))
    return videos


def footage_of_length(kind: str, sequence: str, seed: int, n_frames: int) -> SimulatedVideo:
    """One video of ``kind`` (not mixed) over a motmetrics ``sequence``, played back and forth to
    ``n_frames``, its boxes clipped to the image: boxes for a real video that long (the app tests lay
    them on the bundled sample)."""
    truth, profile = _footage(kind, motmetrics_ground_truth(sequence), seed)
    truth = ping_pong(truth, n_frames)
    boxes = simulate_detections(truth, seed, profile)
    xyxy = np.clip(boxes.xyxy, 0, np.tile(np.asarray(IMAGE_SIZE, np.float32), 2))
    inside = np.all(xyxy[:, 2:] - xyxy[:, :2] >= 1, axis=1)
    boxes = replace(boxes, xyxy=xyxy).select(inside)
    return SimulatedVideo(f"{kind}-{sequence.removeprefix('TUD-')}-{seed}-{n_frames}", boxes, truth)


def _footage(kind: str, truth: GroundTruth, seed: int) -> tuple[GroundTruth, DetectorProfile]:
    rng = np.random.default_rng([seed, 11])
    profile = DetectorProfile.for_seed(seed)
    if kind == "mild":
        return truth, profile
    if kind == "crowd":
        crowd = _crowded(ping_pong(truth, 300), rng, copies=1)
        return crowd, replace(profile, drop_rate=profile.drop_rate / 4, occlusion_drop=0.25)
    if kind == "fast":
        return _jolted(_every(ping_pong(truth, 900), 3), rng), profile
    if kind == "small":
        return _scaled(ping_pong(truth, 300), 0.35), replace(profile, min_jitter_px=1.5, drop_rate=profile.drop_rate * 1.5)
    if kind == "hard":
        return ping_pong(truth, 300), replace(profile, drop_rate=profile.drop_rate / 3, hard_tracks=0.45, misplaced=2.0,
                                              ghost_rate=0.03)
    if kind == "rare":
        return ping_pong(truth, 3000), replace(profile, drop_rate=profile.drop_rate / 15, gap_rate=profile.gap_rate / 5,
                                               false_positive_rate=profile.false_positive_rate / 3)
    raise ValueError(f"unknown footage {kind!r}; one of {', '.join(FOOTAGE + HELD_OUT)}")


def _mixed(seed: int) -> SimulatedVideo:
    """Four segments (crowd, fast, small, hard) of alternating sequences, cut together; each segment's
    detector errs in its own way."""
    parts, truths = [], []
    for k, kind in enumerate(("crowd", "fast", "small", "hard")):
        truth, profile = _footage(kind, motmetrics_ground_truth(MOT_SEQUENCES[(seed + k) % 2]), seed * 10 + k)
        truth = _first_frames(truth, 150)
        truths.append(truth)
        parts.append(simulate_detections(truth, seed * 10 + k, profile))
    return SimulatedVideo(f"mixed-{seed}", Detections.merge(parts), _concatenated(truths))


def _every(truth: GroundTruth, step: int) -> GroundTruth:
    keep = truth.frame % step == 0
    return GroundTruth(truth.frame[keep] // step, truth.track_id[keep], truth.xyxy[keep], (truth.n_frames + step - 1) // step)


def _jolted(truth: GroundTruth, rng: np.random.Generator, rate: float = 0.04, step_px: float = 25.0) -> GroundTruth:
    """A hand-held camera: at random frames the view jumps (every box moves) and stays there."""
    steps = np.where(rng.random((truth.n_frames, 1)) < rate, rng.normal(0, step_px, (truth.n_frames, 2)), 0.0)
    offset = np.cumsum(steps, axis=0)
    offset -= offset.mean(axis=0)
    shift = np.tile(offset[truth.frame], 2)
    return GroundTruth(truth.frame, truth.track_id, (truth.xyxy + shift).astype(np.float32), truth.n_frames)


def _scaled(truth: GroundTruth, factor: float) -> GroundTruth:
    centre = np.array(IMAGE_SIZE, np.float64) / 2
    xyxy = (truth.xyxy.reshape(-1, 2, 2) - centre) * factor + centre
    return GroundTruth(truth.frame, truth.track_id, xyxy.reshape(-1, 4).astype(np.float32), truth.n_frames)


def _crowded(truth: GroundTruth, rng: np.random.Generator, copies: int = 2) -> GroundTruth:
    """The same people two more times, shifted sideways by part of a body width and a little in
    depth, and a few frames later: a crowd where people pass behind each other."""
    parts = [truth]
    for k in range(1, copies + 1):
        dx, dy = rng.uniform(15, 45) * rng.choice([-1, 1]), rng.uniform(-15, 15)
        lag = int(rng.integers(3, 20))
        frame = (truth.frame + lag) % truth.n_frames
        xyxy = truth.xyxy + np.array([dx, dy, dx, dy], np.float32)
        parts.append(GroundTruth(frame, truth.track_id + 1000 * k, xyxy, truth.n_frames))
    return _merged(parts, truth.n_frames)


def _merged(parts: list[GroundTruth], n_frames: int) -> GroundTruth:
    frame = np.concatenate([p.frame for p in parts])
    order = np.argsort(frame, kind="stable")
    return GroundTruth(frame[order], np.concatenate([p.track_id for p in parts])[order],
                       np.concatenate([p.xyxy for p in parts])[order], n_frames)


def _first_frames(truth: GroundTruth, n: int) -> GroundTruth:
    keep = truth.frame < n
    return GroundTruth(truth.frame[keep], truth.track_id[keep], truth.xyxy[keep], min(n, truth.n_frames))


def _concatenated(truths: list[GroundTruth]) -> GroundTruth:
    """Segments one after another (a scene cut between each): frames and track ids offset."""
    offsets = np.cumsum([0] + [t.n_frames for t in truths])
    parts = [GroundTruth(t.frame + offsets[k], t.track_id + 100_000 * k, t.xyxy, 0) for k, t in enumerate(truths)]
    return _merged(parts, int(offsets[-1]))


# ---------------------------------------------------------------------------------------- planted ghosts and flips

@dataclass(frozen=True)
class PlantedVideo:
    """Detections with one-frame ghost boxes and one-frame class flips planted where the truth is exact."""

    name: str
    detections: Detections
    ghosts: np.ndarray  # (n_frames,) bool: a planted ghost box is in the frame
    lone: np.ndarray  # (n_frames,) bool: a real person the detector sees in this frame only is in it (also a ghost)
    flips: np.ndarray  # (n_frames,) bool: a planted class flip is in the frame


def planted_videos(kind: str, seeds: range = range(5), rate: float = 0.05) -> list[PlantedVideo]:
    """Footage of ``kind`` seen by a detector without one-frame false boxes of its own (so every
    ghost is a planted one), with ghosts planted in ~``rate`` of the frames (a person-sized box
    where no one stands, for one frame) and class flips in another ~``rate`` (a tracked person's box
    turned to class 1 for one frame, where that person is detected just before and just after)."""
    videos = []
    for sequence in MOT_SEQUENCES:
        for seed in seeds:
            truth, profile = _footage(kind, motmetrics_ground_truth(sequence), seed)
            profile = replace(profile, false_positive_rate=0.0, spurious_track_rate=0.0, ghost_rate=0.0)
            rng = np.random.default_rng([seed, 23])
            detected = simulate_detections(truth, seed, profile)
            detections, ghosts = _plant_ghosts(detected, rate, rng)
            detections, flips = _plant_flips(detections, rate, rng)
            videos.append(PlantedVideo(f"{kind}-{sequence.removeprefix('TUD-')}-{seed}", detections, ghosts,
                                       lone_detections(truth, seed, profile), flips))
    return videos


def _plant_ghosts(detections: Detections, rate: float, rng: np.random.Generator) -> tuple[Detections, np.ndarray]:
    n = detections.n_frames
    frames = np.flatnonzero(rng.random(n) < rate)
    frames = frames[(frames > 0) & (frames < n - 1)]
    boxes = _random_boxes(len(frames), rng)
    near = [detections.xyxy[detections.rows(f - 1)].tolist() + detections.xyxy[detections.rows(f + 1)].tolist()
            for f in frames]
    clear = np.array([all(_overlap(box, other) == 0 for other in others) for box, others in zip(boxes, near)], bool)
    frames, boxes = frames[clear], boxes[clear]  # where no one stands in either neighbour: exactly a ghost
    frame = np.concatenate([detections.frame, frames])
    order = np.argsort(frame, kind="stable")
    merged = Detections(frame[order], np.concatenate([detections.xyxy, boxes])[order],
                        np.concatenate([detections.score, np.full(len(frames), 0.5)])[order],
                        np.concatenate([detections.cls, np.zeros(len(frames))])[order], detections.names, n,
                        detections.image_size)
    truth = np.zeros(n, bool)
    truth[frames] = True
    return merged.in_canonical_order(), truth


def _plant_flips(detections: Detections, rate: float, rng: np.random.Generator) -> tuple[Detections, np.ndarray]:
    """Flip one box of a frame whose every box is matched (IoU >= 0.5, one to one) in both neighbours."""
    n = detections.n_frames
    cls = detections.cls.copy()
    truth = np.zeros(n, bool)
    for frame in np.flatnonzero(rng.random(n) < rate):
        if not 0 < frame < n - 1 or truth[frame - 1] or truth[frame + 1]:
            continue
        rows = np.arange(*detections.rows(frame).indices(len(detections)))
        matched = [row for row in rows if all(max((_overlap(detections.xyxy[row], detections.xyxy[other])
                                                   for other in range(*detections.rows(f).indices(len(detections)))),
                                                  default=0.0) >= 0.5 for f in (frame - 1, frame + 1))]
        if matched:
            cls[rng.choice(matched)] = 1
            truth[frame] = True
    names = {**detections.names, 1: "bicycle"}
    return Detections(detections.frame, detections.xyxy, detections.score, cls, names, n, detections.image_size), truth


def _overlap(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - width * height
    return width * height / union if union > 0 else 0.0


# ---------------------------------------------------------------------------------------- held-out footage

ROADS = {"highway": ((4.0, 22.0), (25, 45)), "street": ((0.5, 6.0), (8, 16))}  # vehicle speeds (pixels per frame), vehicles


def _traffic(road: str, seed: int) -> SimulatedVideo:
    """Vehicles on a road seen from above and to the side, from tracks made up here rather than
    annotated: nothing in the estimator was tuned on them. Lanes at several depths (far vehicles are
    small), vehicles of mixed speeds that overtake and hide one another, a detector that drops
    occluded and far vehicles more often."""
    rng = np.random.default_rng([seed, 23, len(road)])
    speeds, vehicles = ROADS[road]
    truth = _vehicle_tracks(rng, 400, speeds, vehicles)
    base = DetectorProfile.for_seed(seed + 100)
    profile = replace(base, occlusion_drop=0.15, ghost_rate=0.01, spurious_track_rate=base.spurious_track_rate / 2)
    far = _far_drops(truth, rng)
    detections = simulate_detections(_without(truth, far), seed + 100, profile)
    return SimulatedVideo(f"traffic-{road}-{seed}", detections, truth)


def _vehicle_tracks(rng: np.random.Generator, n_frames: int, speeds: tuple[float, float], vehicles: tuple[int, int]) -> GroundTruth:
    """Vehicles entering from either side in one of four lanes; a lane's depth sets the vehicles'
    size, and each vehicle keeps a speed with a little wobble."""
    width, _ = IMAGE_SIZE
    lanes = np.array([150.0, 220.0, 310.0, 420.0])  # bottom edge of a vehicle in each lane
    frames, ids, boxes = [], [], []
    for vehicle in range(int(rng.integers(*vehicles))):
        lane = int(rng.integers(len(lanes)))
        scale = lanes[lane] / lanes[-1]
        w, h = rng.uniform(70, 130) * scale, rng.uniform(35, 60) * scale
        speed = rng.uniform(*speeds) * scale * (1 if lane % 2 else -1)
        start = int(rng.integers(-60, n_frames))
        t = np.arange(max(start, 0), n_frames)
        x = (-w if speed > 0 else width) + speed * (t - start) + np.cumsum(rng.normal(0, 0.3, len(t)))
        y = lanes[lane] + rng.normal(0, 1.0, len(t))
        inside = (x + w > 0) & (x < width)
        t, x, y = t[inside], x[inside], y[inside]
        frames.append(t)
        ids.append(np.full(len(t), vehicle))
        boxes.append(np.stack([x, y - h, x + w, y], axis=1))
    frame = np.concatenate(frames)
    order = np.argsort(frame, kind="stable")
    return GroundTruth(frame[order].astype(np.int32), np.concatenate(ids)[order], np.concatenate(boxes)[order].astype(np.float32),
                       n_frames)


def _far_drops(truth: GroundTruth, rng: np.random.Generator) -> np.ndarray:
    """Rows the detector misses because the vehicle is small: up to one in five for the farthest."""
    height = truth.xyxy[:, 3] - truth.xyxy[:, 1]
    return rng.random(len(height)) < np.clip(0.2 * (30 - height) / 20, 0, 0.2)


def _without(truth: GroundTruth, rows: np.ndarray) -> GroundTruth:
    """The same video with some boxes unseen (for the detector only: the truth keeps them)."""
    keep = ~rows
    return GroundTruth(truth.frame[keep], truth.track_id[keep], truth.xyxy[keep], truth.n_frames)
