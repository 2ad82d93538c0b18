"""Detection throughput: our pipeline vs Ultralytics' own video loop, same model, video and device.

    python bench/detect.py [--weights yolov8n.yaml] [--frames 200] [--device auto] [--batch N]

Baseline: ``model.predict(source=VIDEO, stream=True)`` (Ultralytics decodes with OpenCV, batch 1;
on CUDA also its best setting, ``half=True, batch=16``). Ours: ``detect_video`` (PyAV decode in a
background thread, batched inference, FP16 on CUDA), cache disabled. Both see the first
``--frames`` frames of the bundled sample, re-encoded to a temporary file so both read the same
bytes. Prints fps and the ratio.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.detect import YoloDetector, detect_video  # noqa: E402
from core.samples import SAMPLE_VIDEO  # noqa: E402
from core.video import iter_frames, probe  # noqa: E402


def write_slice(frames: int, folder: Path) -> Path:
    path = folder / "slice.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"qscale": "2"}
        for index, frame in iter_frames(SAMPLE_VIDEO):
            if index >= frames:
                break
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def ultralytics_fps(detector: YoloDetector, video: Path, n: int, **options) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in detector.model.predict(source=str(video), stream=True, conf=0.1, device=detector.device,
                                                  imgsz=detector.imgsz, verbose=False, **options))
    assert count == n, (count, n)
    return count / (time.perf_counter() - start)


def ours_fps(detector: YoloDetector, video: Path, n: int, cache: Path) -> float:
    info = probe(video)
    start = time.perf_counter()
    detections = detect_video(info, detector, conf=0.1, cache_dir=cache / str(time.time_ns()))
    assert detections.n_frames == n
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="yolov8n.yaml")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = write_slice(args.frames, Path(tmp))
        detector = YoloDetector(args.weights, device=args.device, imgsz=args.imgsz, batch_size=args.batch)
        warm = [frame for _, frame in islice(iter_frames(video, pixel_format="bgr24"), detector.batch_size)]
        detector.detect(warm, 0.1, None)  # warm-up: fuse, allocate, cudnn autotune
        print(f"model {args.weights}, device {detector.device}, FP16 {detector.half}, batch {detector.batch_size}, "
              f"imgsz {args.imgsz}, {args.frames} frames of 768x576")
        base = ultralytics_fps(detector, video, args.frames)
        print(f"ultralytics predict(stream=True), batch 1:     {base:7.1f} fps")
        best = base
        if detector.device.startswith("cuda"):
            best = ultralytics_fps(detector, video, args.frames, half=True, batch=16)
            print(f"ultralytics predict(stream=True), half, b16: {best:7.1f} fps")
        ours = ours_fps(detector, video, args.frames, Path(tmp))
        print(f"ours (PyAV thread + batched):                {ours:7.1f} fps")
        print(f"ratio ours / ultralytics best: {ours / best:.2f}x")


if __name__ == "__main__":
    main()
