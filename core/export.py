"""Write the Lightly datasource files (seed 004): predictions and flickering metadata.

Layout under the output folder, which is the root of the Lightly datasource::

    .lightly/predictions/tasks.json
    .lightly/predictions/<task>/schema.json
    .lightly/predictions/<task>/<video stem>-<frame>-<ext>.json   one per frame, also when empty
    .lightly/metadata/schema.json
    .lightly/metadata/<video stem>-<frame>-<ext>.json             one per frame

The whole tree is built beside the target and swapped in with renames, so an interrupted export
never leaves a half-written datasource and never destroys the previous one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Sequence

import numpy as np
import orjson

from core.detections import Detections, lightly_xywh
from core.errors import UserError
from core.flicker import FlickerResult
from core.lightly_format import validate_datasource
from core.video import lightly_frame_namer

FlickerValue = Literal["binary", "score"]
METADATA_SCHEMA = [{"name": "Flickering", "path": "flickering", "defaultValue": 0.5, "valueDataType": "NUMERIC_FLOAT"}]
FLAGGED_VALUE, UNFLAGGED_VALUE = 1.0, 0.5  # the tutorial's values


class ExportError(UserError):
    """The export cannot be written."""


@dataclass(frozen=True)
class VideoPredictions:
    """One video's part of an export."""

    relpath: str  # the video's path relative to the input datasource root, POSIX separators
    detections: Detections
    flicker: FlickerResult
    source: Path | None = None  # the video file, recorded so `push --input` can upload it


@dataclass(frozen=True)
class ExportSummary:
    root: Path  # the datasource root (holds .lightly/)
    tasks: tuple[str, ...]
    frames: int
    boxes: int
    flagged: int
    files: int


def flickering_values(flicker: FlickerResult, value: FlickerValue) -> np.ndarray:
    """Metadata values: the tutorial's 1.0 (flagged) / 0.5, or ``0.5 + 0.5 * score``, which keeps the
    same [0.5, 1] range while ranking frames by how badly the object is missed."""
    if value == "binary":
        return np.where(flicker.flag_array, FLAGGED_VALUE, UNFLAGGED_VALUE)
    if value == "score":
        return np.round(0.5 + 0.5 * flicker.score.astype(np.float64), 6)
    raise ValueError(f"flickering value must be 'binary' or 'score', got {value!r}")


def export_datasource(
    out_dir: str | Path,
    videos: Sequence[VideoPredictions],
    task: str,
    classes: Sequence[int] | None = None,
    flickering: FlickerValue = "binary",
    imputed_task: str | None = None,
) -> ExportSummary:
    """Write ``out_dir/.lightly`` for these videos, check it against every rule of the format, then
    swap it in (replacing an earlier export only once the new one is complete and valid)."""
    _check_task_name(task)
    if imputed_task is not None:
        _check_task_name(imputed_task)
    if not videos:
        raise ExportError("Nothing to export: no videos")
    for video in videos:
        parts = PurePosixPath(video.relpath).parts
        if not parts or video.relpath.startswith("/") or ".." in parts:
            raise ExportError(f"Video path {video.relpath!r} must be relative to the input datasource root")
    names = videos[0].detections.names
    kept = sorted(classes) if classes is not None else sorted(names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".lightly.partial-"))
    try:
        files = _write_tree(staging, videos, task, kept, names, flickering, imputed_task)
        # Validate before the swap: a bad export never replaces a good one.
        violations = validate_datasource(staging, {v.relpath: v.detections.n_frames for v in videos})
        if violations:
            raise ExportError(f"Export failed validation ({len(violations)} problems), first: {violations[0]}")
        _swap_in(staging, out_dir / ".lightly")
        _write_manifest(out_dir, videos)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    tasks = (task,) if imputed_task is None else (task, imputed_task)
    return ExportSummary(
        root=out_dir,
        tasks=tasks,
        frames=sum(v.detections.n_frames for v in videos),
        boxes=sum(int(np.isin(v.detections.cls, kept).sum()) for v in videos),
        flagged=sum(v.flicker.n_flagged for v in videos),
        files=files,
    )


MANIFEST = "flicker_export.json"  # beside .lightly, never inside it: the datasource stays pure


def _write_manifest(out_dir: Path, videos: Sequence[VideoPredictions]) -> None:
    entries = [{"relpath": v.relpath, "frames": v.detections.n_frames,
                "source": str(Path(v.source).resolve()) if v.source else None} for v in videos]
    partial = out_dir / f".{MANIFEST}.partial"
    partial.write_bytes(orjson.dumps({"videos": entries}, option=orjson.OPT_INDENT_2))
    os.replace(partial, out_dir / MANIFEST)


def read_manifest(out_dir: str | Path) -> list[dict]:
    """The videos of an export: ``[{"relpath", "frames", "source"}]`` (empty for older exports)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return []
    try:
        return list(orjson.loads(path.read_bytes())["videos"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ExportError(f"{path} is damaged; export again to recreate it") from None


def _check_task_name(task: str) -> None:
    if not task or task.startswith(".") or any(c in task for c in "/\\\0") or task != task.strip():
        raise ExportError(f"Invalid task name {task!r}: use a plain folder name such as yolov8_detection")


def _swap_in(staging: Path, target: Path) -> None:
    previous = None
    if target.exists():
        previous = target.with_name(f".lightly.previous-{os.getpid()}")
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
    os.replace(staging / ".lightly", target)
    staging.rmdir()
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _write_tree(staging, videos, task, kept, names, flickering, imputed_task) -> int:
    from lightly.utils.io import save_schema, save_tasks

    predictions_dir = staging / ".lightly" / "predictions"
    metadata_dir = staging / ".lightly" / "metadata"
    tasks = [task] if imputed_task is None else [task, imputed_task]
    for name in tasks:
        (predictions_dir / name).mkdir(parents=True)
        save_schema(str(predictions_dir / name / "schema.json"), "object-detection", kept, [names[i] for i in kept])
    save_tasks(str(predictions_dir / "tasks.json"), tasks)
    metadata_dir.mkdir(parents=True)
    (metadata_dir / "schema.json").write_bytes(orjson.dumps(METADATA_SCHEMA, option=orjson.OPT_INDENT_2))

    writes: list[tuple[Path, bytes]] = []
    for video in videos:
        writes.extend(_video_files(video, task, kept, flickering, imputed_task, predictions_dir, metadata_dir))
    for folder in {path.parent for path, _ in writes}:
        folder.mkdir(parents=True, exist_ok=True)
    for path, data in writes:
        _write_file(path, data)
    return len(writes) + len(tasks) + 2


def _write_file(path: Path, data: bytes) -> None:
    """Raw os calls: ~7x faster than Path.write_bytes for tens of thousands of tiny files."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _video_files(video: VideoPredictions, task, kept, flickering, imputed_task, predictions_dir, metadata_dir):
    det = video.detections
    n = det.n_frames
    keep = np.isin(det.cls, kept).tolist()
    bbox = lightly_xywh(det.xyxy, det.image_size).tolist()
    score = np.clip(det.score, 0.0, 1.0).astype(np.float64).tolist()
    cls = det.cls.tolist()
    offsets = det.offsets.tolist()
    values = flickering_values(video.flicker, flickering).tolist()
    imputed_rows = np.searchsorted(video.flicker.imputed_frame, np.arange(n + 1)).tolist()
    imputed_bbox = lightly_xywh(video.flicker.imputed_xyxy, det.image_size).tolist()
    imputed_cls = video.flicker.imputed_cls.tolist()
    frame_name = lightly_frame_namer(video.relpath, n)
    for frame in range(n):
        stem = frame_name(frame)
        file_name = f"{stem}.png"
        predictions = [{"category_id": cls[k], "bbox": bbox[k], "score": score[k]}
                       for k in range(offsets[frame], offsets[frame + 1]) if keep[k]]
        yield predictions_dir / task / f"{stem}.json", orjson.dumps({"file_name": file_name, "predictions": predictions})
        metadata = {"file_name": file_name, "type": "frame", "metadata": {"flickering": values[frame]}}
        yield metadata_dir / f"{stem}.json", orjson.dumps(metadata)
        if imputed_task is not None:
            boxes = [{"category_id": imputed_cls[k], "bbox": imputed_bbox[k], "score": 1.0}
                     for k in range(imputed_rows[frame], imputed_rows[frame + 1]) if imputed_cls[k] in kept]
            yield predictions_dir / imputed_task / f"{stem}.json", orjson.dumps({"file_name": file_name, "predictions": boxes})
