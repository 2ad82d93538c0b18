"""Detection throughput: each backend against Ultralytics' own video loop, same model, video and device.

    python bench/detect.py [--weights yolov8n.yaml] [--frames 200] [--device auto] [--batch N] [--imgsz 640]
                           [--process-frames 300 | --process-frames 0]

In one process: ``model.predict(source=VIDEO, stream=True)`` (Ultralytics decodes with OpenCV, batch 1;
on CUDA also its best setting, ``half=True, batch=16``) is timed before and after our backends, and
each backend's ``detect_video`` (PyAV decode, letterbox and inference overlapped; cache off) is
reported as fps end to end, fps of each stage alone (its busy time; inference per worker, ONNX runs
one per core) and the ratio to the mean of the two baseline runs. ONNX exports happen before any timing, into a temporary cache.

As a user feels it: the whole ``python -m core run CLIP --weights W --out DIR`` process on a
``--process-frames`` clip, its ONNX export cached by an earlier run on another clip, against a
process that loads the same weights and runs ``predict(stream=True)`` over the same clip. Clips are
the bundled sample's frames, re-encoded so that every reader decodes the same bytes.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import av

from core.backends import onnxruntime_available
from core.detect import Progress, YoloDetector, detect_video, resolve_device
from core.paths import SAMPLE_VIDEO
from core.video import iter_frames, probe

PREDICT_PROCESS = """
import sys, torch
from ultralytics import YOLO
weights, clip, device, frames = sys.argv[1:]
if weights.endswith((".yaml", ".yml")):
    torch.manual_seed(0)  # the weights YoloDetector builds
count = sum(1 for _ in YOLO(weights).predict(source=clip, stream=True, conf=0.1, device=device, verbose=False))
assert count == int(frames), (count, frames)
"""


def write_clip(frames: int, path: Path, codec: str = "mpeg4") -> Path:
    """The first ``frames`` frames of the sample (looping it if needed) as MPEG-4 (or H.264 with
    libx264's default GOP and B-frames, the kind of video users have)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {"crf": "20"}
        written = 0
        while written < frames:
            for _, frame in islice(iter_frames(SAMPLE_VIDEO), frames - written):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
                written += 1
        for packet in stream.encode():
            out.mux(packet)
    return path


def predict_fps(model, video: Path, n: int, device: str, imgsz: int, **options) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in model.predict(source=str(video), stream=True, conf=0.1, device=device, imgsz=imgsz,
                                         verbose=False, **options))
    assert count == n, (count, n)
    return count / (time.perf_counter() - start)


def ours(detector: YoloDetector, video: Path, n: int, cache: Path) -> tuple[float, Progress]:
    info = probe(video)
    seen: list[Progress] = []
    start = time.perf_counter()
    detections = detect_video(info, detector, conf=0.1, cache_dir=cache / str(time.time_ns()), progress=seen.append)
    elapsed = time.perf_counter() - start
    assert detections.n_frames == n and seen[-1].done == n
    return n / elapsed, seen[-1]


def warm(detector: YoloDetector, video: Path) -> None:
    frames = [frame for _, frame in islice(iter_frames(video, pixel_format="bgr24"), detector.batch_size)]
    detector.detect(frames, 0.1, None)  # fuse, allocate, autotune


def in_process(args, device: str, video: Path, cache: Path) -> None:
    backends = ["torch"] + (["onnx"] if device == "cpu" and onnxruntime_available() else [])
    detectors = {b: YoloDetector(args.weights, device=device, imgsz=args.imgsz, batch_size=args.batch, backend=b,
                                 cache_dir=cache) for b in backends}
    for detector in detectors.values():
        warm(detector, video)
    model = detectors["torch"].model
    print(f"model {args.weights}, device {device}, imgsz {args.imgsz}, {args.frames} frames of 768x576")
    best = "half=True, batch=16" if device.startswith("cuda") else "batch 1"
    options = dict(half=True, batch=16) if device.startswith("cuda") else {}
    before = predict_fps(model, video, args.frames, device, args.imgsz, **options)
    results = {b: ours(d, video, args.frames, cache) for b, d in detectors.items()}
    after = predict_fps(model, video, args.frames, device, args.imgsz, **options)
    base = (before + after) / 2
    print(f"ultralytics predict(stream=True), {best}: {before:.1f} fps before, {after:.1f} fps after")
    for backend, (fps, last) in results.items():
        stages = ", ".join(f"{name} {value:.0f}" for name, value in last.stage_fps.items())
        detector = detectors[backend]
        print(f"ours, {backend:5s} (batch {detector.batch_size}, {detector.workers} inference workers): {fps:6.1f} fps "
              f"end to end = {fps / base:.2f}x predict; stages alone (fps, inference per worker): {stages}")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def whole_process(args, device: str, folder: Path, rounds: int = 3) -> None:
    """Best of ``rounds``, the two processes alternating (so a change in machine load hits both)."""
    clip = write_clip(args.process_frames, folder / "clip.mp4", codec="libx264")
    earlier = write_clip(5, folder / "earlier.mp4")
    env = {**os.environ, "FLICKER_CACHE_DIR": str(folder / "cache"), "YOLO_OFFLINE": "1"}
    run = [sys.executable, "-m", "core", "run", "--weights", args.weights, "--device", device, "--quiet"]
    timed(run + [str(earlier), "--out", str(folder / "earlier-out")], env)  # exports (and caches) the model
    ours, theirs = [], []
    for k in range(rounds):
        seconds, summary = timed(run + [str(clip), "--out", str(folder / "out"), "--conf", f"{0.1 + k * 1e-6:.6f}"], env)
        assert f"{args.process_frames} frames" in summary, summary  # each round a new floor: the cache never answers
        ours.append(seconds)
        theirs.append(timed([sys.executable, "-c", PREDICT_PROCESS, args.weights, str(clip), device,
                             str(args.process_frames)], env)[0])
    print(f"whole process, {args.process_frames} H.264 frames at imgsz 640, best of {rounds} alternating: "
          f"python -m core run {min(ours):.1f} s (detect, flicker, export, validate; all {', '.join(f'{s:.1f}' for s in ours)}) "
          f"vs a predict(stream=True) process {min(theirs):.1f} s (all {', '.join(f'{s:.1f}' for s in theirs)}) "
          f"= {min(theirs) / min(ours):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="yolov8n.yaml")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--process-frames", type=int, default=300, help="0 skips the whole-process comparison")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        in_process(args, device, write_clip(args.frames, folder / "slice.mp4"), folder / "cache")
        if args.process_frames:
            whole_process(args, device, folder)


if __name__ == "__main__":
    main()
