"""Server-side cost of showing a frame on the review page: decode (FrameReader) + draw + JPEG encode.

    python bench/render.py [VIDEO]

Prints p50 / p95 for random jumps (slider, timeline clicks) and for stepping to the next frame
(8 boxes, 2 dashed imputed boxes), reading the original file and the seek proxy the app builds.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


from core.detections import FrameDetections
from core.render import render_frame
from core.paths import SAMPLE_VIDEO
from core.proxy import build_seek_proxy
from core.video import FrameReader, probe


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_VIDEO
    info = probe(path)
    print(f"{path.name}: {info.frame_count} frames {info.width}x{info.height}, {len(info.keyframes)} keyframes")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proxy = build_seek_proxy(info, Path(tmp) / "proxy.mp4")
        print(f"seek proxy built in {time.perf_counter() - start:.1f} s ({proxy.stat().st_size / 1e6:.0f} MB)")
        for label, reader in (("original", FrameReader(info)), ("seek proxy", FrameReader(probe(proxy)))):
            measure(label, reader, info.frame_count, min(info.width, info.height))


def measure(label: str, reader: FrameReader, n_frames: int, size: int) -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, size - 100, (8, 2))
    boxes = FrameDetections(np.concatenate([xy, xy + 80], 1), np.full(8, 0.8), np.arange(8))

    def show(index: int) -> float:
        start = time.perf_counter()
        image = render_frame(reader.get(index), boxes, {}, boxes.xyxy[:2] + 5, True, "frame")
        cv2.imencode(".jpg", image)
        return time.perf_counter() - start

    jumps = [show(int(i)) for i in rng.integers(0, n_frames, 200)]
    show(0)
    steps = [show(i) for i in range(1, min(200, n_frames))]
    for name, times in (("random jump", jumps), ("next frame", steps)):
        p50, p95 = np.percentile(np.asarray(times) * 1e3, [50, 95])
        print(f"{label:10s} decode + draw + JPEG, {name:11s}: p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")


if __name__ == "__main__":
    main()
