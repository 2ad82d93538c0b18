"""Decode and seek speed: python bench/video.py [VIDEO]

Prints sequential decode fps with PyAV threaded vs plain (and OpenCV for reference), and the
p50 / p95 latency of random frame access through FrameReader (cold decoder, random jumps; and
stepping to the next frame, as the review page's "next" button does).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np


from core.paths import SAMPLE_VIDEO
from core.video import FrameReader, iter_frames, probe


def decode_fps(path: Path, threaded: bool) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in iter_frames(path, threaded=threaded))
    return count / (time.perf_counter() - start)


def opencv_fps(path: Path) -> float:
    import cv2

    capture = cv2.VideoCapture(str(path))
    start, count = time.perf_counter(), 0
    while capture.read()[0]:
        count += 1
    return count / (time.perf_counter() - start)


def h264_copy(path: Path, folder: Path) -> Path:
    """The sample as typical camera H.264 (x264 defaults: B-frames, 250-frame GOP), whose decoder
    supports frame threads, unlike the sample's MS-MPEG4."""
    target = folder / f"{path.stem}-h264.mp4"
    with av.open(str(path)) as source, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = source.streams.video[0].width, source.streams.video[0].height, "yuv420p"
        stream.options = {"crf": "20"}
        for frame in source.decode(video=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_VIDEO
    with tempfile.TemporaryDirectory() as tmp:
        for video in (path, h264_copy(path, Path(tmp))):
            report(video)


def report(path: Path) -> None:
    start = time.perf_counter()
    info = probe(path)
    probe_ms = (time.perf_counter() - start) * 1e3
    print(f"{path.name}: {info.frame_count} frames {info.width}x{info.height} {info.codec}, "
          f"{len(info.keyframes)} keyframes; probe {probe_ms:.0f} ms")
    threaded = max(decode_fps(path, True) for _ in range(3))
    plain = max(decode_fps(path, False) for _ in range(3))
    print(f"decode RGB, PyAV threaded: {threaded:7.0f} fps")
    print(f"decode RGB, PyAV plain:    {plain:7.0f} fps   (threaded / plain = {threaded / plain:.2f}x)")
    print(f"decode BGR, OpenCV:        {opencv_fps(path):7.0f} fps   (reference)")

    reader = FrameReader(info)
    rng = np.random.default_rng(0)
    jumps = []
    for index in rng.integers(0, info.frame_count, 200):
        start = time.perf_counter()
        reader.get(int(index))
        jumps.append(time.perf_counter() - start)
    steps = []
    reader.get(0)
    for index in range(1, min(info.frame_count, 200)):
        start = time.perf_counter()
        reader.get(index)
        steps.append(time.perf_counter() - start)
    for name, times in (("random jump", jumps), ("next frame", steps)):
        p50, p95 = np.percentile(np.asarray(times) * 1e3, [50, 95])
        print(f"{name:12s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   ({len(times)} accesses)")


if __name__ == "__main__":
    main()
