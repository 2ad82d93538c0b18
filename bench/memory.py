"""Peak memory of each step on a long video: detection, the flicker index, the Lightly export and one
review-page session, each in its own process so that every peak is that step's alone.

    python bench/memory.py [--minutes 0.5] [--height 1080] [--fps 30] [--frames N] [--weights yolov8n.yaml]
                           [--imgsz 640] [--no-app]

The target is a 10-minute 1080p video (``--minutes 10``) with every step under 2 GB and none that
holds all decoded frames (at 1080p one frame is 6 MB, so 18,000 of them would be 112 GB). The
default size runs in a few minutes on 2 cores. The video is the bundled sample scaled to
``--height`` (16:9) and looped, H.264-encoded with PyAV. Detection uses a YOLO model on the ONNX
backend (the HOG detector is too slow at 1080p); ``--frames N`` detects only the first N frames and
repeats their boxes over the rest, so the later steps still see the full length (the review step,
which detects through the app, then runs only when every frame was detected).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import av
import cv2
import numpy as np

from core.paths import SAMPLE_VIDEO
from core.video import iter_frames

TARGET_MB = 2048
STEPS = ("model", "detect", "flicker", "export", "review")
TARGET_FRAMES = 10 * 60 * 30


def peak_rss_mb() -> float:
    """This process's high-water RSS. (getrusage's ru_maxrss would include the parent's peak:
    Linux carries it across fork and exec.)"""
    status = Path("/proc/self/status")
    if status.exists():
        return int(next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # macOS: bytes


def write_video(path: Path, frames: int, height: int, fps: int) -> Path:
    width = round(height * 16 / 9 / 2) * 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"} if stream.codec_context.name == "libx264" else {"qscale": "4"}
        for frame in islice(_looped_sample(), frames):
            frame = cv2.resize(frame, (width, height))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _looped_sample():
    while True:
        yield from (frame for _, frame in iter_frames(SAMPLE_VIDEO))


def step_model(args, folder: Path) -> dict:
    """The ONNX export, once per weights (cached), so that the detect step measures detection."""
    from core.detect import load_detector

    return {"fingerprint": load_detector(args.weights, device="cpu", imgsz=args.imgsz, backend="onnx").fingerprint}


def step_detect(args, folder: Path) -> dict:
    from core.detect import detect_video, load_detector
    from core.video import probe

    info = probe(folder / ("first.mp4" if args.frames else "video.mp4"))
    detector = load_detector(args.weights, device="cpu", imgsz=args.imgsz, backend="onnx")
    assert "torch" not in sys.modules, "the ONNX backend runs without torch"
    detections = detect_video(info, detector, conf=args.conf)
    full = probe(folder / "video.mp4").frame_count
    repeat_over(detections, full).save(folder / "detections.npz")
    return {"frames detected": info.frame_count, "boxes": len(detections)}


def repeat_over(detections, n_frames: int):
    """The boxes of the detected frames, cycled over ``n_frames`` frames."""
    from core.detections import Detections

    if detections.n_frames == n_frames:
        return detections
    source = np.arange(n_frames) % detections.n_frames
    rows = np.concatenate([np.arange(detections.offsets[f], detections.offsets[f + 1]) for f in source])
    frame = np.repeat(np.arange(n_frames), np.diff(detections.offsets)[source])
    return Detections(frame, detections.xyxy[rows], detections.score[rows], detections.cls[rows], detections.names,
                      n_frames, detections.image_size)


def step_flicker(args, folder: Path) -> dict:
    """The index of the first half, then of the whole video: the difference of the peaks is what
    each further frame costs, projected to the target length."""
    from core.detections import Detections
    from core.flicker import FlickerIndex

    detections = Detections.load(folder / "detections.npz")
    half = detections.n_frames // 2
    FlickerIndex.from_detections(Detections(*(a[detections.frame < half] for a in (detections.frame, detections.xyxy,
                                 detections.score, detections.cls)), detections.names, half, detections.image_size))
    half_peak = peak_rss_mb()
    result = FlickerIndex.from_detections(detections).evaluate()
    (folder / "flicker.pickle").write_bytes(pickle.dumps(result))  # our own file, for the export step
    per_frame = (peak_rss_mb() - half_peak) / max(detections.n_frames - half, 1)
    return {"frames": detections.n_frames, "boxes per frame": round(len(detections) / detections.n_frames, 1),
            "flagged": int(result.n_flagged), f"projected MB at {TARGET_FRAMES} frames": round(
                peak_rss_mb() + per_frame * (TARGET_FRAMES - detections.n_frames))}


def step_export(args, folder: Path) -> dict:
    from core.detections import Detections
    from core.lightly.export import VideoPredictions, export_datasource  # the module is moving: import late

    detections = Detections.load(folder / "detections.npz")
    flicker = pickle.loads((folder / "flicker.pickle").read_bytes())
    summary = export_datasource(folder / "export", [VideoPredictions("video.mp4", detections, flicker)],
                                "yolov8_detection")
    return {"files": summary.files}


def step_review(args, folder: Path) -> dict:
    """Load the video in the app (detections come from the cache the detect step filled), open the
    review page and step through a few frames."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=600)
    app.run()
    app.segmented_control(key="source").set_value("Local path").run()
    app.text_input[0].input(str(folder / "video.mp4"))
    press(app, "Load file")
    app.radio(key="model_choice").set_value("YOLO weights path").run()
    app.text_input(key="weights_path").input(args.weights)
    app.selectbox(key="device").set_value("cpu")
    app.number_input(key="conf").set_value(args.conf).run()
    press(app, "Run detection")
    app.switch_page("pages/review.py").run()
    for frame in (1, 2, 100, 101, 1000):
        app.session_state["frame"] = frame
        app.run()
    if app.exception:
        raise RuntimeError(app.exception[0].message)
    return {"frames visited": 5}


def press(app, label: str) -> None:
    next(button for button in app.button if button.label == label).click().run()
    if app.exception:
        raise RuntimeError(app.exception[0].message)


def run_step(name: str, args, folder: Path) -> dict:
    """One step in a fresh process; its own peak RSS, measured at its end."""
    command = [sys.executable, __file__, "--step", name, "--folder", str(folder), "--weights", args.weights,
               "--imgsz", str(args.imgsz), "--conf", str(args.conf)] + (["--frames", str(args.frames)] if args.frames else [])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "seconds": round(time.perf_counter() - start, 1)}


def child(args) -> None:
    folder = Path(args.folder)
    steps = {"model": step_model, "detect": step_detect, "flicker": step_flicker, "export": step_export,
             "review": step_review}
    facts = steps[args.step](args, folder)
    print(json.dumps({**facts, "peak_rss_mb": round(peak_rss_mb())}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=0.5)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, help="detect only the first N frames")
    parser.add_argument("--weights", default="yolov8n.yaml")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--conf", type=float, default=0.0001, help="tiny floor: random weights then give many boxes")
    parser.add_argument("--no-app", action="store_true", help="skip the review-page step")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        return child(args)
    total = round(args.minutes * 60 * args.fps)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_video(folder / "video.mp4", total, args.height, args.fps)
        if args.frames:
            write_video(folder / "first.mp4", min(args.frames, total), args.height, args.fps)
        print(f"{total} frames at {args.height}p ({args.minutes:g} min at {args.fps} fps), written in "
              f"{time.perf_counter() - start:.0f} s; one decoded frame is {args.height * args.height * 16 / 9 * 3 / 2**20:.1f} MB")
        steps = [s for s in STEPS if not (s == "review" and (args.no_app or args.frames))]
        os.environ["FLICKER_CACHE_DIR"] = str(folder / "cache")  # the steps, and the app, share one cache
        for name in steps:
            facts = run_step(name, args, folder)
            peak = facts.pop("peak_rss_mb", None)
            verdict = "" if peak is None else ("under" if peak < TARGET_MB else "OVER") + f" the {TARGET_MB} MB target"
            print(f"{name:8s} peak RSS {peak if peak is not None else '-':>6} MB  {verdict:28s} {facts}")
        if total < TARGET_FRAMES or args.height < 1080:
            print("target size: --minutes 10 --height 1080 (18,000 frames), every step under 2 GB")


if __name__ == "__main__":
    main()
