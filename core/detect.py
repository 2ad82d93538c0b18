"""Detection over a whole video: Ultralytics YOLO (or the offline HOG people detector), frames from
PyAV, results in one columnar :class:`Detections`, cached on disk.

Frames come from :func:`core.video.iter_frames`, never from Ultralytics' own video reader, so frame
i here is frame i in review and export. Decoding runs in a background thread so that it overlaps
inference.
"""
from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from core.detections import Detections
from core.errors import DetectionCancelled, DetectorError
from core import paths
from core.video import VideoInfo, iter_frames

os.environ.setdefault("YOLO_OFFLINE", "1")  # never let Ultralytics probe the network
os.environ.setdefault("YOLO_VERBOSE", "False")

DEFAULT_CONF = 0.1  # the tutorial's floor: low, to surface likely false negatives
BUILTIN_HOG = "builtin:hog-people"
MODEL_SUFFIXES = (".pt", ".onnx", ".yaml", ".yml")
CACHE_VERSION = "2"

_HOG_WINDOW = (64, 128)  # width, height of OpenCV's people detector window
FrameBoxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (K, 4), score (K,), cls (K,)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    fps: float
    eta_s: float


class Detector(Protocol):
    names: dict[int, str]
    fingerprint: str  # changes whenever the model's outputs could change
    batch_size: int
    device: str

    def detect(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        """Boxes for a batch of BGR frames."""


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks the first CUDA GPU when one is present, else the CPU."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(f"Device {device!r} asked for, but no CUDA GPU is available here")
    if device != "cpu" and not device.startswith("cuda"):
        raise DetectorError(f"Unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    return device


class YoloDetector:
    """Any Ultralytics detection model from a path: ``.pt``, ``.onnx``, or a model ``.yaml``.

    A ``.yaml`` (a file, or a name Ultralytics ships such as ``yolov8n.yaml``) builds the network
    with random weights, seeded so that the same yaml always gives the same model: the real code
    path, without downloads.
    """

    def __init__(self, weights: str | Path, device: str = "auto", imgsz: int = 640, batch_size: int | None = None):
        weights = str(weights)
        suffix = Path(weights).suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise DetectorError(f"Unsupported model file {Path(weights).name!r}: expected one of {', '.join(MODEL_SUFFIXES)}")
        local = Path(weights).expanduser()
        if suffix in (".pt", ".onnx") and not local.is_file():
            # Ultralytics would try to download a missing .pt by name; we never go online.
            raise DetectorError(f"Weights file not found: {weights} (weights cannot be downloaded here; pass a local path)")
        self.device = resolve_device(device)
        self.half = self.device.startswith("cuda") and suffix == ".pt"
        self.imgsz = imgsz
        # CPU: batching buys nothing (measured in bench/detect.py) and delays the progress bar
        self.batch_size = batch_size or (32 if self.device.startswith("cuda") else 1)
        self.model = self._load(weights, local, suffix)
        self.names = {int(k): str(v) for k, v in self.model.names.items()}
        content = paths.hash_file(local) if local.is_file() else f"ultralytics-cfg:{weights}"
        self.fingerprint = f"yolo:{content}:seed0:imgsz{imgsz}:half{int(self.half)}"

    @staticmethod
    def _load(weights: str, local: Path, suffix: str):
        import torch
        from ultralytics import YOLO

        if suffix in (".yaml", ".yml"):
            torch.manual_seed(0)
        try:
            model = YOLO(str(local) if local.is_file() else weights, task="detect")
        except Exception as exc:  # Ultralytics raises many types for a bad file
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DetectorError(f"Could not load model {Path(weights).name}: {reason}") from None
        if model.task != "detect":
            raise DetectorError(f"{Path(weights).name} is a {model.task} model; a detection model is needed")
        return model

    def embed(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """The network's own features for a batch of BGR frames, pooled per frame (Ultralytics' embed)."""
        vectors = self.model.embed(list(frames), imgsz=self.imgsz, device=self.device, half=self.half, verbose=False)
        return np.stack([v.float().cpu().numpy() for v in vectors])

    def detect(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        results = self.model.predict(
            list(frames),
            conf=conf,
            classes=list(classes) if classes else None,
            device=self.device,
            half=self.half,
            imgsz=self.imgsz,
            batch=len(frames),
            verbose=False,
        )
        out = []
        for result in results:
            boxes = result.boxes
            out.append((boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy().astype(np.int32)))
        return out


class HogPeopleDetector:
    """OpenCV's HOG + linear SVM pedestrian detector: a real detector that works fully offline.

    Speed: the image pyramid is capped at 16 levels (people up to ~2.2x the 128 px window), which
    on the bundled sample keeps the detections of OpenCV's default settings while running ~30%
    faster and dropping the huge boxes the extra levels produce. Scores: the SVM margin ``w`` is
    mapped to ``1 - exp(-w)``, a monotone map into [0, 1).
    """

    names = {0: "person"}  # COCO id 0, as in YOLO models, so exports from both agree
    device = "cpu"
    batch_size = 1

    def __init__(self, pyramid_levels: int = 16, scale: float = 1.05, win_stride: int = 8):
        import cv2

        self._hog = cv2.HOGDescriptor(_HOG_WINDOW, (16, 16), (8, 8), (8, 8), 9, 1, -1, 0, 0.2, True, pyramid_levels)
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._kwargs = dict(winStride=(win_stride, win_stride), padding=(8, 8), scale=scale)
        self.fingerprint = f"hog-people:cv{cv2.__version__}:levels{pyramid_levels}:scale{scale}:stride{win_stride}"

    def detect(self, frames: Sequence[np.ndarray], conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        out = []
        for frame in frames:
            if frame.shape[0] < _HOG_WINDOW[1] or frame.shape[1] < _HOG_WINDOW[0]:
                # OpenCV crashes the process on images smaller than the window; nobody fits anyway
                out.append((np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int32)))
                continue
            rects, weights = self._hog.detectMultiScale(frame, **self._kwargs)
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            score = (1.0 - np.exp(-np.clip(np.asarray(weights, np.float32).reshape(-1), 0, None))).astype(np.float32)
            keep = score >= conf
            if classes is not None and 0 not in classes:
                keep[:] = False
            xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
            out.append((xyxy[keep], score[keep], np.zeros(int(keep.sum()), np.int32)))
        return out


def load_detector(weights: str | Path | None = None, device: str = "auto", imgsz: int = 640) -> Detector:
    """``None`` or ``builtin:hog-people`` gives the offline HOG detector; anything else is a model path."""
    if weights is None or str(weights) == BUILTIN_HOG:
        return HogPeopleDetector()
    return YoloDetector(weights, device=device, imgsz=imgsz)


def cache_key(video: VideoInfo, detector: Detector, conf: float, classes: Sequence[int] | None) -> str:
    parts = [CACHE_VERSION, video.fingerprint, str(video.frame_count), detector.fingerprint, f"{conf:.6g}",
             ",".join(map(str, sorted(classes))) if classes else "all"]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def detect_video(
    video: VideoInfo,
    detector: Detector,
    conf: float = DEFAULT_CONF,
    classes: Sequence[int] | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Detections:
    """Run ``detector`` on every frame of ``video`` (or load the cached result of an identical run)."""
    if not 0.0 <= conf <= 1.0:
        raise DetectorError(f"Confidence floor must be in [0, 1], got {conf}")
    unknown = sorted(set(classes or ()) - set(detector.names))
    if unknown:
        raise DetectorError(f"Unknown class ids {unknown}; the model has {len(detector.names)} classes")
    cached = cached_detections(video, detector, conf, classes, cache_dir)
    if cached is not None:
        if progress:
            progress(Progress(cached.n_frames, cached.n_frames, 0.0, 0.0))
        return cached
    detections = _run(video, detector, conf, classes, progress, cancel)
    detections.save(_cache_file(video, detector, conf, classes, cache_dir))
    return detections


def _cache_file(video, detector, conf, classes, cache_dir) -> Path:
    return (cache_dir or paths.cache_dir()) / "detections" / f"{cache_key(video, detector, conf, classes)}.npz"


def cached_detections(video: VideoInfo, detector: Detector, conf: float = DEFAULT_CONF,
                      classes: Sequence[int] | None = None, cache_dir: Path | None = None) -> Detections | None:
    """The result of an identical earlier run, or None."""
    cache_file = _cache_file(video, detector, conf, classes, cache_dir)
    if not cache_file.is_file():
        return None
    try:
        return Detections.load(cache_file)
    except (OSError, ValueError, KeyError):
        cache_file.unlink(missing_ok=True)  # a damaged cache entry is recomputed, not fatal
        return None


def _run(video, detector, conf, classes, progress, cancel) -> Detections:
    per_frame: list[FrameBoxes] = []
    start = time.perf_counter()
    for batch in batches(_prefetch(iter_frames(video.path, pixel_format="bgr24")), detector.batch_size):
        if cancel is not None and cancel.is_set():
            raise DetectionCancelled(f"Detection on {video.name} cancelled after {len(per_frame)} frames")
        try:
            per_frame.extend(detector.detect(batch, conf, classes))
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise DetectorError("The GPU ran out of memory: pick a smaller model or image size") from None
            raise
        if progress:
            elapsed = time.perf_counter() - start
            fps = len(per_frame) / elapsed if elapsed > 0 else 0.0
            remaining = max(video.frame_count - len(per_frame), 0)
            progress(Progress(len(per_frame), video.frame_count, fps, remaining / fps if fps else 0.0))
    size = (video.width, video.height)
    bounds = np.asarray([*size, *size], np.float32)
    per_frame = [(np.clip(xyxy, 0, bounds), score, cls) for xyxy, score, cls in per_frame]
    return Detections.from_frames(per_frame, detector.names, image_size=size)


def _prefetch(frames: Iterator[tuple[int, np.ndarray]], depth: int = 64) -> Iterator[np.ndarray]:
    """Decode in a background thread (PyAV releases the GIL) while the model runs."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for _, frame in frames:
                if stop.is_set():
                    return
                buffer.put(frame)
            buffer.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive lists of ``size`` frames (the last one shorter)."""
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
