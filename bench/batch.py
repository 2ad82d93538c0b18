"""Batch throughput: the local engine, and Ray with 1 and 2 detector workers, on the same short clips.

    python bench/batch.py [--clips 6] [--frames 16] [--weights yolov8n.yaml] [--commit-frames 18000]

Clips are cut from the bundled sample (each from a different start, so no two share detections)
and re-encoded as MPEG-4. Every run starts from an empty detection cache (ONNX exports are kept) and
an empty output folder; videos/s and frames/s count the run from engine start to the last export,
so Ray's figures include starting its actors (Ray itself is started once, before, and timed apart).
Ray gets one logical CPU per detector plus one to decode: on a 2-core machine the second worker
shares the cores with the first. Checks that every run exports every clip and that all runs
wrote byte-identical datasources.

Last, the driver's share of the work, which no number of GPUs speeds up: adding one long video
(synthetic boxes, ``--commit-frames``) to a live export (flicker assertion, export, validation,
renames, manifest), in frames/s.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from core.batch import BatchConfig, Detected, LiveExport, VideoSource, _finish, run_batch
from core.detections import Detections
from core.lightly.datasource import Datasource
from core.lightly.validate import validate_datasource
from core.paths import SAMPLE_VIDEO
from core.run import ExportOptions, RunConfig
from core.settings import DetectorSpec
from core.video import VideoInfo, iter_frames

ENGINES = (("local", None), ("ray", 1), ("ray", 2))


def write_clips(folder: Path, clips: int, frames: int) -> None:
    import av

    wanted = clips * frames
    decoded = [frame for index, frame in iter_frames(SAMPLE_VIDEO) if index < wanted]
    if len(decoded) < wanted:
        raise SystemExit(f"the sample has {len(decoded)} frames; ask for at most that many in all")
    for clip in range(clips):
        with av.open(str(folder / f"cam{clip:02d}.mp4"), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.height, stream.width = decoded[0].shape[:2]
            stream.pix_fmt, stream.options = "yuv420p", {"qscale": "2"}
            for image in decoded[clip * frames:(clip + 1) * frames]:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())


def timed_run(videos: Path, out: Path, cache: Path, weights: str | None, engine: str, workers: int | None):
    shutil.rmtree(cache / "detections", ignore_errors=True)  # detect again; keep the ONNX export
    options = RunConfig(out=out, detector=DetectorSpec.of(weights, cache_dir=cache))
    report = run_batch(BatchConfig((str(videos),), options, engine, workers))
    if any(row.status != "done" for row in report.rows):
        raise SystemExit(f"{engine} x{workers}: not every clip was exported: {report.text()}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--weights", help="model (default: the offline HOG people detector)")
    parser.add_argument("--commit-frames", type=int, default=18000, help="frames of the synthetic video the driver adds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = root / "videos"
        videos.mkdir()
        write_clips(videos, args.clips, args.frames)
        print(f"{args.clips} clips x {args.frames} frames (768x576 MPEG-4), detector: {args.weights or 'offline HOG'}")
        print(f"{'engine':<12} {'seconds':>8} {'videos/s':>9} {'frames/s':>9}")
        outs = []
        for engine, workers in ENGINES:
            if engine == "ray":
                ray_start = _restart_ray(workers)
            out = root / f"out-{engine}-{workers}"
            report = timed_run(videos, out, root / "cache", args.weights, engine, workers)
            frames = sum(row.frames for row in report.rows)
            label = engine if workers is None else f"ray x{workers}"
            print(f"{label:<12} {report.seconds:>8.1f} {len(report.rows) / report.seconds:>9.2f} {frames / report.seconds:>9.1f}"
                  + (f"   (+ {ray_start:.1f} s to start Ray)" if engine == "ray" else ""))
            outs.append(out)
        _check_identical(outs)
        print("all runs wrote byte-identical datasources")
        seconds = time_commit(root / "commit", args.commit_frames)
        print(f"driver: adding a {args.commit_frames}-frame video to the export took {seconds:.2f} s "
              f"({args.commit_frames / seconds:,.0f} frames/s)")


def time_commit(out: Path, frames: int) -> float:
    """Seconds for the driver to assert and add one video of ``frames`` frames (8 boxes a frame)."""
    detections = synthetic_detections(frames)
    source = VideoSource("drive.mp4", "drive.mp4", "v1")
    start = time.perf_counter()
    _finish(Detected(source, _info(frames), detections), LiveExport(out, ExportOptions(), None, detections.names), RunConfig(out=out))
    seconds = time.perf_counter() - start
    if validate_datasource(out, {"drive.mp4": frames}):
        raise SystemExit("the committed video does not validate")
    return seconds


def synthetic_detections(frames: int) -> Detections:
    rng = np.random.default_rng(0)
    counts = rng.poisson(8, frames)
    xy = rng.uniform(0, 1800, (counts.sum(), 2))
    return Detections(np.repeat(np.arange(frames), counts), np.concatenate([xy, xy + rng.uniform(10, 100, xy.shape)], 1),
                      rng.uniform(0.1, 1, counts.sum()), np.zeros(counts.sum()), {0: "car"}, frames, (1920, 1080))


def _info(frames: int) -> VideoInfo:
    return VideoInfo(Path("drive.mp4"), frames, 30.0, 1920, 1080, "h264", frames / 30.0, "synthetic")


def _restart_ray(workers: int) -> float:
    import ray

    ray.shutdown()
    start = time.perf_counter()
    ray.init(num_cpus=workers + 1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    return time.perf_counter() - start


def _check_identical(outs: list[Path]) -> None:
    first = Datasource(outs[0])
    expected = {p.relative_to(first.root): p.read_bytes() for p in first.files()}
    for out in outs[1:]:
        datasource = Datasource(out)
        found = {p.relative_to(out): p.read_bytes() for p in datasource.files()}
        if found != expected:
            raise SystemExit(f"{out.name} differs from {outs[0].name}")


if __name__ == "__main__":
    main()
