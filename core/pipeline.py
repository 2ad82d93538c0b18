"""The headless pipeline behind ``python -m core run``: decode -> detect (cached) -> flicker ->
export -> validate. Every input is checked before anything is written to the output folder."""
from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import orjson

from core.detect import BUILTIN_HOG, DEFAULT_CONF, Progress, detect_video, load_detector, resolve_device
from core.detections import Detections
from core.errors import UserError, VideoError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, FlickerIndex, FlickerOptions, FlickerResult
from core.lightly.datasource import Datasource, frame_namer
from core.lightly.export import (
    DEFAULT_TASK,
    UNFLAGGED_VALUE,
    ExportSummary,
    VideoPredictions,
    export_datasource,
    flickering_values,
    check_task_name,
    read_manifest,
    read_tasks,
)
from core.lightly.validate import import_predictions
from core.paths import SAMPLE_VIDEO, check_output_folder, write_atomic
from core.video import VIDEO_EXTENSIONS, FrameReader, VideoInfo, probe



@dataclass(frozen=True)
class RunConfig:
    out: Path
    video: Path | None = None  # a video file or a folder of videos
    demo: bool = False
    weights: str | None = None  # None: the offline HOG detector
    predictions: Path | None = None  # an existing .lightly/predictions/<task> folder instead of a model
    device: str = "auto"
    conf: float = DEFAULT_CONF
    classes: tuple[str, ...] | None = None  # names or ids
    mode: str = "reference"
    iou_track: float = DEFAULT_IOU_TRACK
    iou_assert: float = DEFAULT_IOU_ASSERT
    task: str = DEFAULT_TASK
    flickering: str = "binary"
    imputed_task: str | None = None
    cache_dir: Path | None = None
    backend: str = "auto"  # auto, torch or onnx (core.detect.BACKENDS)


@dataclass(frozen=True)
class VideoRun:
    info: VideoInfo
    relpath: str
    detections: Detections
    flicker: FlickerResult


@dataclass(frozen=True)
class RunSummary:
    videos: tuple[VideoRun, ...]
    export: ExportSummary

    def text(self) -> str:
        frames = self.export.frames
        share = self.export.flagged / frames if frames else 0.0
        lines = [f"{len(self.videos)} video(s), {frames} frames, {self.export.boxes} boxes kept, "
                 f"{self.export.flagged} flagged frames ({share:.1%})"]
        for run in self.videos:
            lines.append(f"  {run.relpath}: {run.info.frame_count} frames, {len(run.detections)} boxes, "
                         f"{run.flicker.n_flagged} flagged, {len(run.flicker.imputed_frame)} imputed boxes")
        lines.append(f"Lightly datasource written to {Datasource(self.export.root).lightly} "
                     f"({self.export.files} files, tasks: {', '.join(self.export.tasks)}); validation passed")
        return "\n".join(lines)


def find_videos(path: Path) -> list[tuple[Path, str]]:
    """``(file, relpath)`` for a single video, or every video under a folder (sub-folders kept)."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not found:
            raise UserError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) under {path}")
        return [(p, p.relative_to(path).as_posix()) for p in found]
    return [(path, path.name)]


def _check_config(config: RunConfig) -> None:
    for name, value in (("--iou-track", config.iou_track), ("--iou-assert", config.iou_assert), ("--conf", config.conf)):
        if not 0.0 <= value <= 1.0:  # NaN fails too
            raise UserError(f"{name} must be in [0, 1], got {value}")
    check_output_folder(config.out, "--out")
    if config.cache_dir is not None:
        check_output_folder(config.cache_dir, "--cache-dir")
    check_task_name(config.task)
    if config.imputed_task is not None:
        check_task_name(config.imputed_task)
        if config.imputed_task == config.task:
            raise UserError("--imputed-task needs its own name, not the --task name")
    if config.predictions is None:
        check_device(config.device, config.weights)
    if config.video is None and not config.demo:
        raise UserError("Give a video (file or folder) or --demo")
    if config.weights is not None and config.predictions is not None:
        raise UserError("Use either --weights or --predictions, not both")


def check_device(device: str, weights: str | None) -> None:
    """A device that cannot be used fails here, before anything runs; it is never silently ignored."""
    resolved = resolve_device(device)
    if (weights is None or weights == BUILTIN_HOG) and resolved != "cpu" and device != "auto":
        raise UserError(f"The offline HOG detector runs on the CPU only; drop --device {device} or pass --weights")


def resolve_classes(requested: Sequence[str] | None, names: dict[int, str]) -> list[int] | None:
    """Class names or ids -> ids of the model; None keeps every class."""
    if not requested:
        return None
    by_name = {name.lower(): i for i, name in names.items()}
    ids = []
    for item in requested:
        if item.lower() in by_name:
            ids.append(by_name[item.lower()])
        elif item.isdigit() and int(item) in names:
            ids.append(int(item))
        else:
            sample = ", ".join(list(names.values())[:8])
            raise UserError(f"Unknown class {item!r}; the model's classes include: {sample}")
    return sorted(set(ids))


def flicker_options(mode: str) -> FlickerOptions:
    try:
        return FlickerOptions.from_mode(mode)
    except ValueError as exc:
        raise UserError(f"--{exc}") from None


def progress_printer(label: str):
    from tqdm import tqdm

    bar = tqdm(total=None, desc=label, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.25, disable=None)

    def update(progress: Progress) -> None:
        bar.total = progress.total
        bar.n = progress.done
        bar.set_postfix_str(f"{progress.fps:.1f} fps, ETA {progress.eta_s:.0f}s", refresh=True)

    return update, bar


def run_pipeline(config: RunConfig, progress_bar: bool = False) -> RunSummary:
    _check_config(config)
    options = flicker_options(config.mode)
    source = SAMPLE_VIDEO if config.demo else Path(config.video)
    videos = probe_all(find_videos(source))
    detector = None if config.predictions else load_detector(config.weights, config.device, backend=config.backend,
                                                             cache_dir=config.cache_dir)
    runs = []
    for info, relpath in videos:
        detections = _detections_for(config, detector, info, relpath, progress_bar)
        classes = resolve_classes(config.classes, detections.names)
        kept = detections if classes is None else detections.select(np.isin(detections.cls, classes))
        flicker = FlickerIndex.from_detections(kept, options).evaluate(config.iou_track, config.iou_assert)
        runs.append(VideoRun(info, relpath, kept, flicker))
    classes = resolve_classes(config.classes, runs[0].detections.names)
    export = export_datasource(
        config.out,
        [VideoPredictions.of_video(r.info, r.relpath, r.detections, r.flicker) for r in runs],
        task=config.task,
        classes=classes,
        flickering=config.flickering,
        imputed_task=config.imputed_task,
    )
    return RunSummary(tuple(runs), export)


def probe_all(found: list[tuple[Path, str]]) -> list[tuple[VideoInfo, str]]:
    """Probe every video; in a folder, an unreadable one is skipped with a warning, not fatal."""
    if len(found) == 1:
        return [(probe(found[0][0]), found[0][1])]
    videos = []
    for path, relpath in found:
        try:
            videos.append((probe(path), relpath))
        except VideoError as exc:
            warnings.warn(f"skipped {relpath}: {exc}", SkippedVideoWarning, stacklevel=2)
    if not videos:
        raise UserError("None of the videos in the folder can be read")
    return videos


class SkippedVideoWarning(UserWarning):
    """A video in a folder could not be read and was left out."""


def _detections_for(config: RunConfig, detector, info: VideoInfo, relpath: str, progress_bar: bool) -> Detections:
    if config.predictions is not None:
        imported = import_predictions(config.predictions, relpath, info.frame_count, (info.width, info.height))
        return imported.above(config.conf)
    classes = resolve_classes(config.classes, detector.names)
    return detect_with_progress(info, relpath, detector, config.conf, classes, config.cache_dir, progress_bar)


def detect_with_progress(info: VideoInfo, relpath: str, detector, conf: float, classes: Sequence[int] | None,
                         cache_dir: Path | None, progress_bar: bool) -> Detections:
    """:func:`detect_video` (cached) with a tqdm bar on stderr when asked."""
    update, bar = progress_printer(f"detect {relpath}") if progress_bar else (None, None)
    try:
        return detect_video(info, detector, conf=conf, classes=classes, cache_dir=cache_dir, progress=update)
    finally:
        if bar is not None:
            bar.close()


@dataclass(frozen=True)
class LocalSelection:
    names: list[str]  # Lightly frame names (.png), in the order picked
    videos: list[str]  # relpath of each pick
    frames: list[int]  # frame index of each pick
    flagged: int  # how many picks are flagged frames
    out: Path

    def text(self) -> str:
        return (f"selected {len(self.names)} frames ({self.flagged} of them flagged by the flicker assertion); "
                f"names in {self.out / 'selected.json'}, frames as PNG in {self.out / 'frames'}")


@dataclass(frozen=True)
class SourceVideo:
    """One video of a source (an export folder or videos), with its detections."""

    info: VideoInfo
    relpath: str
    detections: Detections
    flickering: np.ndarray | None  # an export's metadata value per frame; None for a video detected here


def load_sources(source: Path, task: str | None = None, weights: str | None = None, device: str = "auto",
                 conf: float = DEFAULT_CONF, cache_dir: Path | None = None, progress_bar: bool = False,
                 backend: str = "auto", detector=None) -> list[SourceVideo]:
    """The videos of an export folder (its prediction ``task``, default the first, and its recorded
    flickering values), or of a video file or folder run through the detector (cached). What
    ``select``, ``evaluate`` and ``prelabels`` read. ``detector``: one the caller already loaded."""
    source = Path(source)
    if Datasource(source).exists():
        return export_sources(source, task)
    check_device(device, weights)
    if cache_dir is not None:
        check_output_folder(cache_dir, "--cache-dir")
    videos = probe_all(find_videos(source))
    detector = detector or load_detector(weights, device, backend=backend, cache_dir=cache_dir)
    return [SourceVideo(info, relpath, detect_with_progress(info, relpath, detector, conf, None, cache_dir, progress_bar), None)
            for info, relpath in videos]


def export_sources(export_dir: Path, task: str | None = None) -> list[SourceVideo]:
    """Videos, imported detections and exported flickering values of an export folder."""
    datasource = Datasource(export_dir)
    manifest = read_manifest(export_dir)
    if not manifest:
        raise UserError(f"{export_dir} does not say which videos it was made from: export it again")
    task = task or read_tasks(export_dir)[0]
    videos = []
    for entry in manifest:
        if not entry.get("source"):
            raise UserError(f"{export_dir} does not record where {entry['relpath']} is: export it again")
        info = probe(entry["source"])
        detections = import_predictions(datasource.task_dir(task), entry["relpath"], info.frame_count,
                                        (info.width, info.height))
        name_of = frame_namer(entry["relpath"], info.frame_count)
        values = [_flickering_value(datasource.metadata_file(name_of(frame))) for frame in range(info.frame_count)]
        videos.append(SourceVideo(info, entry["relpath"], detections, np.asarray(values)))
    return videos


def _flickering_value(metadata: Path) -> float:
    if not metadata.is_file():
        return UNFLAGGED_VALUE
    value = orjson.loads(metadata.read_bytes()).get("metadata", {}).get("flickering", UNFLAGGED_VALUE)
    return float(value) if isinstance(value, (int, float)) else UNFLAGGED_VALUE


def run_local_selection(source: Path, config_path: Path, out: Path, n: int | None = None, weights: str | None = None,
                        device: str = "auto", conf: float = DEFAULT_CONF, task: str | None = None,
                        cache_dir: Path | None = None, backend: str = "auto") -> LocalSelection:
    """``python -m core select``: the config run locally on an export folder (its predictions and
    flickering metadata) or on a video (detected and asserted here), picks written as PNG."""
    import cv2

    from core.lightly.config import load_config, validate_selection_config
    from core.lightly.selection import build_inputs, frame_embeddings, run_selection, selection_listing

    config = load_config(config_path)
    validate_selection_config(config)
    check_output_folder(out, "--out")
    check_device(device, weights)
    detector = load_detector(weights, device, backend=backend, cache_dir=cache_dir)  # once: sources and embeddings
    sources = load_sources(source, task, weights, device, conf, cache_dir, backend=backend, detector=detector)
    values = np.concatenate([video.flickering if video.flickering is not None else
                             flickering_values(FlickerIndex.from_detections(video.detections).evaluate(), "binary")
                             for video in sources])
    merged = Detections.merge([video.detections for video in sources])
    embeddings = frame_embeddings(*[video.info.path for video in sources], detector=detector)
    picked = run_selection(config, build_inputs(merged, values, embeddings), n)
    starts = np.cumsum([0] + [video.info.frame_count for video in sources])
    which = np.searchsorted(starts, picked, side="right") - 1
    listing = selection_listing((sources[v].relpath, k - int(starts[v]), sources[v].info.frame_count)
                                for k, v in zip(picked.tolist(), which.tolist()))
    readers = {}
    for entry, video_index in zip(listing, which.tolist()):
        reader = readers.setdefault(video_index, FrameReader(sources[video_index].info))
        target = out / "frames" / entry["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.cvtColor(reader.get(entry["frame"]), cv2.COLOR_RGB2BGR))
    flagged = int((values[picked] >= 1.0).sum()) if len(picked) else 0
    write_atomic(out / "selected.json", json.dumps(listing, indent=2).encode())
    return LocalSelection([e["file_name"] for e in listing], [e["video"] for e in listing], [e["frame"] for e in listing],
                          flagged, out)
