"""How well do the ghost and class-flip assertions find planted errors? python bench/assertions.py

Footage from testkit/qa_sim.py (real pedestrian tracks from motmetrics, four kinds) seen by a
simulated detector without one-frame false boxes of its own; planted per video: one-frame ghost
boxes (a person-sized box where no one stands in either neighbour frame) in ~5% of the frames, and
one-frame class flips (a tracked person's box turned to another class) in ~5%. A frame's ghost
truth also counts a real person the detector sees in that frame only (missed just before and just
after): in the detector's output that is an object that exists for one frame. Printed per kind and
tracking IoU: precision and recall of each assertion's frame flags, pooled over 10 videos.
Then the engine's speed on 18,000 frames x 8 boxes: index build and one retune per assertion.
"""
from __future__ import annotations

import time

import numpy as np

from core.assertions import NeighbourIndex
from core.detections import Detections
from testkit.qa_sim import planted_videos

KINDS = ("mild", "crowd", "fast", "small", "hard")


def quality() -> None:
    print("kind   IoU | ghost: P  R planted  R lone | class flip: P  R")
    for kind in KINDS:
        videos = planted_videos(kind, range(5))
        indexes = [NeighbourIndex.from_detections(v.detections) for v in videos]
        planted, lone, flips = (np.concatenate([getattr(v, name) for v in videos]) for name in ("ghosts", "lone", "flips"))
        for iou in (0.3, 0.5):
            ghost = np.concatenate([index.ghost_flags(iou) for index in indexes])
            flip = np.concatenate([index.class_flip_flags(iou) for index in indexes])
            print(f"{kind:6s} {iou:.1f} | {_share(ghost, planted | lone):6.3f} {_share(planted, ghost):9.3f} "
                  f"{_share(lone, ghost):6.3f} | {_share(flip, flips):13.3f} {_share(flips, flip):5.3f}")


def _share(of: np.ndarray, within: np.ndarray) -> float:
    """How many of the ``of`` frames are ``within`` frames too."""
    return float((of & within).sum() / max(of.sum(), 1))


def speed(n_frames: int = 18_000, boxes: int = 8) -> None:
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 600, (boxes, 2))
    frames = []
    for _ in range(n_frames):
        xy = centres + rng.normal(0, 4, (boxes, 2))
        frames.append((np.c_[xy, xy + 60].astype(np.float32), rng.uniform(0.1, 1, boxes), rng.integers(0, 3, boxes)))
    detections = Detections.from_frames(frames, {0: "a", 1: "b", 2: "c"})
    builds = []
    for _ in range(5):
        start = time.perf_counter()
        index = NeighbourIndex.from_detections(detections)
        builds.append(time.perf_counter() - start)
    for name, retune in (("ghost", index.ghost_flags), ("class flip", index.class_flip_flags)):
        start = time.perf_counter()
        for k in range(200):
            retune(0.05 + 0.9 * k / 200)
        print(f"{name:10s} retune {(time.perf_counter() - start) / 200 * 1000:.3f} ms", end="; ")
    print(f"index build (both) best {min(builds) * 1000:.0f} ms, median {np.median(builds) * 1000:.0f} ms "
          f"({n_frames} frames x {boxes} boxes)")


if __name__ == "__main__":
    quality()
    speed()
