"""Server-side cost of showing a frame on the review page: decode (FrameReader) + draw + JPEG encode.

    python bench/render.py [VIDEO]

Prints p50 / p95 for random jumps (slider, timeline clicks) and for stepping to the next frame,
with the boxes of a real HOG run when the detection cache has one, else synthetic boxes.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.render import render_frame  # noqa: E402
from core.samples import SAMPLE_VIDEO  # noqa: E402
from core.video import FrameReader, probe  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_VIDEO
    info = probe(path)
    reader = FrameReader(info)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, min(info.width, info.height) - 100, (8, 2))
    boxes = np.concatenate([xy, xy + 80], 1)

    def show(index: int) -> float:
        start = time.perf_counter()
        image = render_frame(reader.get(index), boxes, np.full(8, 0.8), np.arange(8), {}, boxes[:2] + 5, True, "frame")
        cv2.imencode(".jpg", image)
        return time.perf_counter() - start

    jumps = [show(int(i)) for i in rng.integers(0, info.frame_count, 200)]
    show(0)
    steps = [show(i) for i in range(1, min(200, info.frame_count))]
    print(f"{path.name}: {info.frame_count} frames {info.width}x{info.height}, {len(info.keyframes)} keyframes")
    for name, times in (("random jump", jumps), ("next frame", steps)):
        p50, p95 = np.percentile(np.asarray(times) * 1e3, [50, 95])
        print(f"decode + draw + JPEG, {name:11s}: p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")


if __name__ == "__main__":
    main()
