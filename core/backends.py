"""Inference backends for Ultralytics detection networks: the PyTorch module on any device, or an
ONNX Runtime session on an export cached per weights.

Both bypass Ultralytics' predictor (its per-call setup, Results objects and serial loop) and
reproduce what ``model.predict`` does at its defaults (letterbox with grey 114 padding, RGB in
[0, 1], class-aware NMS at IoU 0.7, at most 300 boxes), so that boxes match:

* ``onnx`` (CPU): OpenCV letterbox, ONNX Runtime, and NMS and rescaling ported to numpy, so that a
  run never imports torch (3 s here, 6 s with torchvision). ONNX Runtime is ~1.2x faster than
  torch per core and uses every core, where predict keeps one free (``cpu_count - 1`` threads).
* ``torch`` (any device; FP16 on CUDA): on a GPU the letterbox runs there as tensor code
  (:func:`letterbox_tensor`, which repeats OpenCV's fixed-point arithmetic), then Ultralytics' own
  ``non_max_suppression`` on the same device.

Every backend splits a batch into ``prepare`` (CPU work on decoded frames, run in its own thread by
``core.detect``) and ``infer`` (the model and NMS), so that the two overlap.
"""
from __future__ import annotations

import ast
import hashlib
import math
import os
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from core import paths
from core.errors import DetectorError

FrameBoxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (K, 4), score (K,), cls (K,)

LETTERBOX_FILL = 114  # Ultralytics' grey
NMS_IOU = 0.7  # predict's defaults
MAX_DET = 300
MAX_NMS = 30000  # candidates NMS looks at, by score
CLASS_OFFSET = 7680  # per-class shift that keeps classes apart in one NMS pass
MAX_ONNX_WORKERS = 4  # concurrent session runs: each holds its own activations
ONNX_EXPORT_VERSION = "1"  # bump when the export settings below change


@dataclass(frozen=True)
class Letterbox:
    """Where a frame lands in the network input: the geometry of Ultralytics' ``LetterBox``."""

    frame_hw: tuple[int, int]
    input_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    top: int
    left: int

    @property
    def bottom(self) -> int:
        return self.input_hw[0] - self.resized_hw[0] - self.top

    @property
    def right(self) -> int:
        return self.input_hw[1] - self.resized_hw[1] - self.left

    @staticmethod
    @lru_cache(maxsize=64)
    def fit(frame_hw: tuple[int, int], target_hw: tuple[int, int], stride: int, minimal: bool) -> "Letterbox":
        """Scale to fit ``target_hw``; ``minimal`` pads only to a multiple of ``stride`` (predict's
        ``auto``, for PyTorch and dynamic-shape models), otherwise to ``target_hw`` exactly."""
        h, w = frame_hw
        ratio = min(target_hw[0] / h, target_hw[1] / w)
        resized = max(round(h * ratio), 1), max(round(w * ratio), 1)
        pad_h, pad_w = target_hw[0] - resized[0], target_hw[1] - resized[1]
        if minimal:
            pad_h, pad_w = pad_h % stride, pad_w % stride
        return Letterbox(frame_hw, (resized[0] + pad_h, resized[1] + pad_w), resized,
                         round(pad_h / 2 - 0.1), round(pad_w / 2 - 0.1))

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The letterboxed uint8 frame, as ``LetterBox`` makes it (OpenCV bilinear, grey border)."""
        if self.resized_hw != self.frame_hw:
            frame = cv2.resize(frame, self.resized_hw[::-1], interpolation=cv2.INTER_LINEAR)
        return cv2.copyMakeBorder(frame, self.top, self.bottom, self.left, self.right, cv2.BORDER_CONSTANT,
                                  value=(LETTERBOX_FILL,) * 3)

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes in network-input pixels -> frame pixels, clipped: Ultralytics' ``scale_boxes``."""
        (in_h, in_w), (h, w) = self.input_hw, self.frame_hw
        gain = min(in_h / h, in_w / w)
        new_h, new_w = max(round(h * gain), 1), max(round(w * gain), 1)
        pad = np.float32([round((in_w - new_w) / 2 - 0.1), round((in_h - new_h) / 2 - 0.1)] * 2)
        scale = np.float32([new_w / w, new_h / h] * 2)
        return np.clip((xyxy - pad) / scale, 0, np.float32([w, h, w, h]))


def square_input(imgsz: int, stride: int) -> tuple[int, int]:
    """``imgsz`` rounded up to a multiple of the stride, as Ultralytics' ``check_imgsz`` does."""
    side = math.ceil(imgsz / stride) * stride
    return side, side


def letterbox_array(frames: Sequence[np.ndarray], box: Letterbox) -> np.ndarray:
    """BGR uint8 frames -> (B, 3, h, w) float32 RGB in [0, 1], as predict prepares them."""
    out = np.empty((len(frames), 3, *box.input_hw), np.float32)
    for image, frame in zip(out, frames):
        np.divide(box.apply(frame).transpose(2, 0, 1)[::-1], np.float32(255), out=image)
    return out


def letterbox_tensor(frames, box: Letterbox, dtype):
    """(B, H, W, 3) uint8 BGR on any device -> (B, 3, h, w) RGB in [0, 1] of ``dtype``: the letterbox
    and normalisation of :func:`letterbox_array` as tensor code, so a GPU prepares its own input."""
    import torch.nn.functional as F

    images = resize_like_opencv(frames, box.resized_hw) if box.resized_hw != box.frame_hw else frames
    images = images.permute(0, 3, 1, 2).flip(1).float()
    images = F.pad(images, (box.left, box.right, box.top, box.bottom), value=float(LETTERBOX_FILL))
    return images.div_(255).to(dtype)


def resize_like_opencv(frames, size_hw: tuple[int, int]):
    """(B, H, W, C) uint8 -> (B, h, w, C) uint8 with the arithmetic of OpenCV's uint8 INTER_LINEAR:
    11-bit weights, a horizontal then a vertical pass, rounded as its SIMD code rounds. Downscaling
    gives OpenCV's bytes; upscaling differs by one grey level in about 0.1% of values. (Float
    bilinear differs by one level in ~11% of values, enough to move boxes of a sensitive model.)"""
    import torch

    x0, x1, a0, a1 = (torch.as_tensor(t, device=frames.device) for t in _linear_taps(frames.shape[2], size_hw[1]))
    y0, y1, b0, b1 = (torch.as_tensor(t, device=frames.device) for t in _linear_taps(frames.shape[1], size_hw[0]))
    images = frames.int()
    rows = images[:, :, x0] * a0[:, None] + images[:, :, x1] * a1[:, None]  # scaled by 2^11
    mixed = ((rows[:, y0] >> 4) * b0[:, None, None] >> 16) + ((rows[:, y1] >> 4) * b1[:, None, None] >> 16)
    return ((mixed + 2) >> 2).clamp_(0, 255).to(torch.uint8)


@lru_cache(maxsize=32)
def _linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: both source indices and their 11-bit weights."""
    position = ((np.arange(dst) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    first = np.floor(position)
    fraction = (position - first).astype(np.float32)
    first = first.astype(np.int64)
    fraction[(first < 0) | (first >= src - 1)] = 0  # OpenCV takes the edge pixel alone there
    first = np.clip(first, 0, src - 1)
    second = np.minimum(first + 1, src - 1)
    weight_second = np.rint(fraction * np.float32(2048)).astype(np.int32)
    weight_first = np.rint((np.float32(1) - fraction) * np.float32(2048)).astype(np.int32)
    return first, second, weight_first, weight_second


def select_boxes(preds: np.ndarray, conf: float, classes: Sequence[int] | None, end2end: bool) -> list[FrameBoxes]:
    """Ultralytics' ``non_max_suppression`` at predict's defaults, in numpy: raw output
    (B, 4 + classes, anchors) -> per image (xyxy, score, cls) in network-input pixels, best first."""
    if end2end or preds.shape[-1] == 6:  # NMS-free heads: (B, boxes, 6) already
        return [_filter_final(rows, conf, classes) for rows in preds]
    return [_nms_one(image, conf, classes) for image in preds]


def _filter_final(rows: np.ndarray, conf: float, classes: Sequence[int] | None) -> FrameBoxes:
    keep = rows[:, 4] > conf
    if classes is not None:
        keep &= np.isin(rows[:, 5], classes)
    rows = rows[keep][:MAX_DET]
    return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int32)


def _nms_one(image: np.ndarray, conf: float, classes: Sequence[int] | None) -> FrameBoxes:
    candidates = image[:, image[4:].max(0) > conf].T
    score, cls = candidates[:, 4:].max(1), candidates[:, 4:].argmax(1)
    xy, half_wh = candidates[:, :2], candidates[:, 2:4] / 2
    xyxy = np.concatenate([xy - half_wh, xy + half_wh], axis=1)
    keep = score > conf
    if classes is not None:
        keep &= np.isin(cls, classes)
    xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
    if len(score) > MAX_NMS:
        top = np.argsort(-score, kind="stable")[:MAX_NMS]
        xyxy, score, cls = xyxy[top], score[top], cls[top]
    kept = _greedy_nms(xyxy + (cls[:, None] * CLASS_OFFSET).astype(np.float32), score)
    return xyxy[kept], score[kept], cls[kept].astype(np.int32)


def _greedy_nms(xyxy: np.ndarray, score: np.ndarray) -> np.ndarray:
    """torchvision's ``nms`` (stable order by score, same float32 IoU arithmetic), stopped at
    ``MAX_DET`` kept boxes, since predict drops the rest."""
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    remaining = np.argsort(-score, kind="stable")
    kept = []
    while remaining.size and len(kept) < MAX_DET:
        best, rest = remaining[0], remaining[1:]
        kept.append(best)
        width = np.maximum(np.minimum(xyxy[best, 2], xyxy[rest, 2]) - np.maximum(xyxy[best, 0], xyxy[rest, 0]), 0)
        height = np.maximum(np.minimum(xyxy[best, 3], xyxy[rest, 3]) - np.maximum(xyxy[best, 1], xyxy[rest, 1]), 0)
        inter = width * height
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 for empty boxes is NaN: kept, as in torchvision
            overlap = inter / (area[best] + area[rest] - inter)
        remaining = rest[~(overlap > NMS_IOU)]
    return np.asarray(kept, np.int64)


def _frame_shape(frames: Sequence[np.ndarray]) -> tuple[int, int]:
    shapes = {frame.shape for frame in frames}
    if len(shapes) != 1:
        raise ValueError(f"a batch needs frames of one size, got {sorted(shapes)}")
    return frames[0].shape[:2]


class TorchBackend:
    """The Ultralytics PyTorch network on its device (FP16 on CUDA). A GPU letterboxes its own input
    (:func:`letterbox_tensor`); on the CPU, OpenCV's SIMD resize in the prepare thread is faster."""

    def __init__(self, network, device: str, half: bool, imgsz: int, letterbox_on_device: bool | None = None):
        import torch

        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        self.letterbox_on_device = self.device.type != "cpu" if letterbox_on_device is None else letterbox_on_device
        self.network = network.fuse().eval().to(self.device, self.dtype)
        self.stride = int(max(network.stride))
        self.target_hw = square_input(imgsz, self.stride)
        self.end2end = bool(getattr(network, "end2end", False))
        self.names = {int(k): str(v) for k, v in network.names.items()}
        self.fingerprint = f"torch-{'fp16' if half else 'fp32'}"
        self.workers = 1  # torch parallelises inside each call

    def prepare(self, frames: Sequence[np.ndarray]):
        """The network input, or for the device to letterbox: the frames stacked as uint8 (pinned on
        CUDA, so that the upload overlaps)."""
        import torch

        box = Letterbox.fit(_frame_shape(frames), self.target_hw, self.stride, True)
        if not self.letterbox_on_device:
            return torch.from_numpy(letterbox_array(frames, box)), box
        batch = torch.empty((len(frames), *frames[0].shape), dtype=torch.uint8, pin_memory=self.device.type == "cuda")
        np.stack(frames, out=batch.numpy())
        return batch, box

    def infer(self, prepared, conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        import torch
        import torchvision  # noqa: F401  Ultralytics' NMS takes torchvision's kernel once imported, as predict has it
        from ultralytics.utils.nms import non_max_suppression

        batch, box = prepared
        with torch.inference_mode():
            batch = batch.to(self.device, non_blocking=True)
            images = letterbox_tensor(batch, box, self.dtype) if self.letterbox_on_device else batch.to(self.dtype)
            preds = self.network(images)
            preds = preds[0] if isinstance(preds, (list, tuple)) else preds
            kept = non_max_suppression(preds.float(), conf, NMS_IOU, list(classes) if classes else None,
                                       max_det=MAX_DET, end2end=self.end2end)
            rows = torch.cat(kept).cpu().numpy()  # one device->host copy per batch
        parts = np.split(rows, np.cumsum([len(k) for k in kept])[:-1])
        return [(box.to_frame(part[:, :4]), part[:, 4], part[:, 5].astype(np.int32)) for part in parts]


class OnnxBackend:
    """An ONNX Runtime session. A dynamic-shape model (our exports) gets predict's minimal padding;
    a fixed-shape one is letterboxed to its input size, as Ultralytics does."""

    def __init__(self, model_path: Path, device: str, imgsz: int):
        cores = os.cpu_count() or 1
        # On the CPU, frames in parallel (one core each, up to MAX_ONNX_WORKERS) beat one frame on
        # every core: no thread waits for the slowest of its group, which matters most on a busy machine.
        self.workers = 1 if device.startswith("cuda") else min(cores, MAX_ONNX_WORKERS)
        self.session = _session(model_path, device, threads=max(1, cores // self.workers))
        meta = self.session.get_modelmeta().custom_metadata_map
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.stride = int(meta.get("stride", 32))
        fixed = [d if isinstance(d, int) else None for d in model_input.shape[2:]]
        self.minimal = None in fixed
        self.target_hw = square_input(imgsz, self.stride) if self.minimal else tuple(fixed)
        self.end2end = meta.get("end2end") == "True" or "'nms': True" in meta.get("args", "")
        _check_detection_graph(model_path, model_input.shape, self.session.get_outputs()[0].shape, self.end2end)
        self.names = _onnx_names(meta, self.session)
        self.fingerprint = "onnx"

    def prepare(self, frames: Sequence[np.ndarray]):
        box = Letterbox.fit(_frame_shape(frames), self.target_hw, self.stride, self.minimal)
        return letterbox_array(frames, box), box

    def infer(self, prepared, conf: float, classes: Sequence[int] | None) -> list[FrameBoxes]:
        images, box = prepared
        preds = self.session.run(None, {self.input_name: images})[0]
        _check_detection_graph("the ONNX model", images.shape, preds.shape, self.end2end)  # dynamic axes, as run
        return [(box.to_frame(xyxy), score, cls) for xyxy, score, cls in select_boxes(preds, conf, classes, self.end2end)]


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _session(model_path: Path, device: str, threads: int):
    import onnxruntime as ort

    providers: list = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("this ONNX Runtime build has no CUDA provider")
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Spinning idle workers would take the cores that decode and letterbox the next frames.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=providers)


def _check_detection_graph(model: Path | str, input_shape: Sequence, output_shape: Sequence, end2end: bool) -> None:
    """A YOLO detection graph: images (B, 3, H, W) in, (B, 4 + classes, anchors) out, or (B, boxes, 6)
    for an NMS-free head. Anything else (a classifier, a segmenter's extra output first, a graph
    of another shape) is refused in one line instead of failing deep in the box decoding."""
    def known(dim) -> int | None:
        return dim if isinstance(dim, int) else None

    name = getattr(model, "name", model)
    if len(input_shape) != 4 or known(input_shape[1]) not in (3, None):
        raise DetectorError(f"{name} is not a YOLO detection model: its input is not a batch of colour images")
    ok = len(output_shape) == 3 and (
        known(output_shape[-1]) in (6, None) if end2end
        else known(output_shape[1]) is None or known(output_shape[1]) >= 5 or known(output_shape[-1]) == 6)
    if not ok:
        raise DetectorError(f"{name} is not a YOLO detection model: its output has shape {list(output_shape)}, not "
                            "(batch, 4 + classes, anchors) or (batch, boxes, 6)")


def _onnx_names(meta: dict[str, str], session) -> dict[int, str]:
    if "names" in meta:
        try:
            names = ast.literal_eval(meta["names"][:1 << 20])
            return {int(k): str(v)[:200] for k, v in names.items()}
        except (ValueError, TypeError, SyntaxError, AttributeError, RecursionError, MemoryError):
            raise DetectorError("The ONNX model's class names (metadata 'names') are not a mapping of ids to names") from None
    channels = session.get_outputs()[0].shape[1]  # (B, 4 + classes, anchors) without Ultralytics metadata
    return {i: f"class{i}" for i in range(channels - 4)} if isinstance(channels, int) else {}


def onnx_export_path(cache_dir: Path, content: str, imgsz: int) -> Path:
    """Where the export of one set of weights is cached: keyed by their content and by everything
    that shapes the exported graph (image size, the exporter's and torch's versions)."""
    key = "|".join([content, f"imgsz{imgsz}", metadata.version("ultralytics"), metadata.version("torch"),
                    ONNX_EXPORT_VERSION])
    return cache_dir / "onnx" / f"{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}.onnx"


def export_onnx(network, target: Path, imgsz: int) -> Path:
    """Export with Ultralytics' exporter (dynamic shapes, FP32, slimmed) and move the result into
    place atomically, so a concurrent run never reads half a model."""
    from ultralytics.engine.exporter import Exporter

    with paths.staged_dir(target.parent, ".export-") as staging:
        network = deepcopy(network)
        network.pt_path = str(staging / "model.pt")  # the exporter writes beside this path
        settings = dict(format="onnx", dynamic=True, simplify=True, half=False, batch=1, imgsz=imgsz, device="cpu",
                        verbose=False)
        exported = Path(Exporter(overrides=settings)(model=network))
        data = exported.read_bytes()
        paths.write_atomic(target, data)
        paths.write_atomic(_digest_file(target), hashlib.sha256(data).hexdigest().encode())
    return target


def cached_export_is_ours(target: Path) -> bool:
    """Whether ``target`` is the file this tool exported (its SHA-256 recorded beside it at export
    time): a model put in the cache under that name by anyone else is never run."""
    try:
        recorded = _digest_file(target).read_text().strip()
        return target.is_file() and not target.is_symlink() and paths.hash_file(target) == recorded
    except OSError:
        return False


def _digest_file(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def describe(exc: BaseException) -> str:
    """The first line of an exception, for one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
