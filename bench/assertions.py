"""How well do the ghost and class-flip assertions find planted errors? python bench/assertions.py

Footage from testkit/qa_sim.py (real pedestrian tracks from motmetrics, four kinds) seen by a
simulated detector without one-frame false boxes of its own; planted per video: one-frame ghost
boxes (a person-sized box where no one stands in either neighbour frame) in ~5% of the frames, and
one-frame class flips (a tracked person's box turned to another class) in ~5%. A frame's ghost
truth also counts a real person the detector sees in that frame only (missed just before and just
after): in the detector's output that is an object that exists for one frame. Printed per kind and
tracking IoU: precision and recall of each assertion's frame flags, pooled over 10 videos.
The engine's speed (index build, one retune per assertion, against plain loops and the tutorial's
loop on the same 18,000 frames) is measured by ``python bench/flicker.py --frames 18000``.
"""
from __future__ import annotations

import numpy as np

from core.assertions import NeighbourIndex
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


if __name__ == "__main__":
    quality()
