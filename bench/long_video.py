"""The long video the seek benchmarks need, with its detections, made in minutes rather than hours.

    python bench/long_video.py [--out /tmp/long26] [--minutes 10] [--height 1080] [--fps 30]

Writes under ``--out``:

* ``long.mp4``: the bundled sample's frames scaled to 16:9 at ``--height``, played forwards then
  backwards (no cut where it loops) for ``--minutes`` at ``--fps``; H.264 by libx264 with its default
  GOP (keyint 250) and B-frames (the veryfast preset, to encode 18,000 1080p frames in ~10 minutes on
  2 cores), the kind of file users have;
* its detections by the built-in HOG detector, without running it for hours: the sample's (detected
  once, cached) repeated in the same order and scaled, written to the detection cache under the key a
  HOG run on ``long.mp4`` would use, so ``?video=PATH`` links, ``python -m core run`` and ``python -m
  core batch`` on it find them there (the review page reads them as it reads any cached run);
* ``long_mot.txt``: the same boxes as a MOT file, for ``python -m core run long.mp4 --predictions``;
* ``batch/``: ``python -m core batch long.mp4 --out batch`` (the cached boxes: nothing is detected),
  the batch output folder the Fleet page opens.

``bench/latency.py --video OUT/long.mp4 --batch OUT/batch --map-clicks 0`` then times seeks on it.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.detect import _cache_file  # noqa: E402  (the cache file a run would write)
from core.detections import Detections  # noqa: E402
from core.paths import SAMPLE_VIDEO  # noqa: E402
from core.settings import DetectorSpec  # noqa: E402
from core.video import iter_frames, probe  # noqa: E402


def ping_pong(n_source: int, n_frames: int) -> np.ndarray:
    """The source frame each output frame shows: forwards, then backwards, and again."""
    order = np.r_[np.arange(n_source), np.arange(n_source)[::-1]]
    return order[np.arange(n_frames) % len(order)]


def write_video(path: Path, n_frames: int, fps: int, size: tuple[int, int]) -> None:
    frames = [frame for _, frame in iter_frames(SAMPLE_VIDEO)]
    sources = ping_pong(len(frames), n_frames)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for index, source in enumerate(sources):
            yuv = cv2.cvtColor(cv2.resize(frames[source], size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2YUV_I420)
            for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                out.mux(packet)
            if index % 1000 == 0:
                print(f"  encoded {index:,} / {n_frames:,} frames", flush=True)
        for packet in stream.encode():
            out.mux(packet)
    partial.rename(path)


def repeated(sample: Detections, n_frames: int, size: tuple[int, int], sample_size: tuple[int, int]) -> Detections:
    """The sample's boxes on each frame that shows a sample frame, scaled to ``size``."""
    sources = ping_pong(sample.n_frames, n_frames)
    rows = [np.arange(sample.offsets[source], sample.offsets[source + 1]) for source in sources]
    frame = np.repeat(np.arange(n_frames, dtype=np.int32), [len(r) for r in rows])
    picked = np.concatenate(rows)
    scale = np.array([size[0] / sample_size[0], size[1] / sample_size[1]] * 2, np.float32)
    return Detections(frame, sample.xyxy[picked] * scale, sample.score[picked], sample.cls[picked], sample.names,
                      n_frames, size)


def write_mot(path: Path, detections: Detections) -> None:
    x0, y0, x1, y1 = detections.xyxy.T
    rows = np.c_[detections.frame + 1, np.arange(len(detections)) + 1, x0, y0, x1 - x0, y1 - y0, detections.score]
    np.savetxt(path, rows, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f"], delimiter=",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/long26"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    video, size, n_frames = args.out / "long.mp4", (args.height * 16 // 9, args.height), round(args.minutes * 60 * args.fps)
    if not video.is_file():
        began = time.perf_counter()
        write_video(video, n_frames, args.fps, size)
        print(f"{video}: {n_frames:,} frames of {size[0]}x{size[1]} in {time.perf_counter() - began:.0f} s")
    info, spec = probe(video), DetectorSpec()
    model = spec.load()
    sample_info = probe(SAMPLE_VIDEO)
    sample = spec.detect(sample_info, model)  # cached after the first time (~45 s)
    detections = repeated(sample, info.frame_count, size, (sample_info.width, sample_info.height))
    detections.save(_cache_file(info, model, spec.conf, None, spec.cache_dir))
    write_mot(args.out / "long_mot.txt", detections)
    print(f"{len(detections):,} boxes cached as the HOG detector's on {video.name}; MOT copy in long_mot.txt")
    batch = args.out / "batch"
    if not (batch / "summary.csv").is_file():
        subprocess.run([sys.executable, "-m", "core", "batch", str(video), "--out", str(batch)], cwd=ROOT, check=True)
    print(f"batch output folder (Fleet): {batch}")


if __name__ == "__main__":
    main()
