"""``python -m core run``: decode -> detect (cached) -> flicker -> export -> validate. Every input
is checked before anything is written to the output folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import fleet
from core.assertions import METADATA_KEYS, Corrections
from core.bounded import printable
from core.detect import Detector
from core.detections import Detections
from core.errors import UserError
from core.flicker import FlickerResult
from core.lightly.datasource import MANIFEST, Datasource
from core.lightly.export import (
    DEFAULT_TASK,
    ExportSummary,
    MetadataStyle,
    VideoPredictions,
    check_datasource_root,
    check_task_name,
    export_datasource,
    listed_videos,
    read_manifest,
)
from core.label_formats import import_boxes
from core.paths import SAMPLE_VIDEO, check_output_folder
from core.settings import DetectorSpec, FlickerSettings
from core.sources import detect_with_progress, find_videos, probe_all
from core.video import VideoInfo
from core.words import counted

BATCH_FILES = (str(fleet.DONE_DIR.parent), fleet.SUMMARY_CSV)  # .batch and summary.csv: what a batch writes beside its export


_ASSERTION_OF_KEY = {key: name for name, key in METADATA_KEYS.items()}  # class_flip -> class-flip, as --assertions spells it


@dataclass(frozen=True)
class ExportOptions:
    """How the flags and boxes are written: the prediction task, the metadata style and the
    optional task of imputed boxes (run and batch)."""

    task: str = DEFAULT_TASK
    metadata_style: MetadataStyle = "binary"  # CLI --flickering: the tutorial's 1.0 / 0.5, or scores
    imputed_task: str | None = None
    corrected_task: str | None = None  # run only: the corrected stream (core.assertions.Corrections)

    def check(self) -> None:
        tasks = [name for name in (self.task, self.imputed_task, self.corrected_task) if name is not None]
        for name in tasks:
            check_task_name(name)
        if len(set(tasks)) != len(tasks):
            raise UserError("each of --task, --imputed-task and --corrected-task needs its own name")


@dataclass(frozen=True)
class RunConfig:
    out: Path
    video: Path | None = None  # a video file or a folder of videos
    demo: bool = False
    detector: DetectorSpec = DetectorSpec()
    flicker: FlickerSettings = FlickerSettings()
    export: ExportOptions = ExportOptions()
    predictions: Path | None = None  # boxes made elsewhere instead of a model (core.label_formats)
    predictions_format: str = "auto"

    def check(self) -> None:
        """Every input a user gives, before anything runs or is written."""
        self.flicker.check()
        self.export.check()
        check_output_folder(self.out, "--out")
        check_datasource_root(self.out)
        check_not_batch_output(self.out)
        if self.predictions is None:
            self.detector.check()
        if self.video is None and not self.demo:
            raise UserError("Give a video (file or folder) or --demo")


@dataclass(frozen=True)
class VideoRun:
    info: VideoInfo
    relpath: str
    detections: Detections
    flicker: FlickerResult
    siblings: dict[str, np.ndarray]  # metadata key -> flags per frame of each enabled sibling assertion
    corrections: Corrections | None  # the corrected stream, when a corrected task is exported
    boxes_from: str = ""  # where the boxes came from when read from a file (its name and format), not detected


@dataclass(frozen=True)
class RunSummary:
    videos: tuple[VideoRun, ...]
    export: ExportSummary

    def text(self) -> str:
        frames = self.export.frames
        share = self.export.flagged / frames if frames else 0.0
        lines = [f"{counted(len(self.videos), 'video')}, {counted(frames, 'frame')}, {counted(self.export.boxes, 'box', 'boxes')} "
                 f"kept, {counted(self.export.flagged, 'flagged frame')} ({share:.1%})"]
        for run in self.videos:
            siblings = "".join(f", {counted(int(flags.sum()), _ASSERTION_OF_KEY[key] + ' flag')}"
                               for key, flags in run.siblings.items())
            by = " by flicker" if run.siblings else ""  # the total above counts the frames any assertion flags
            source = (f" ({run.boxes_from}, on {run.detections.frames_with_boxes:,} of {run.detections.n_frames:,} frames)"
                      if run.boxes_from else "")
            lines.append(f"  {run.relpath}: {counted(run.info.frame_count, 'frame')}, "
                         f"{counted(len(run.detections), 'box', 'boxes')}{source}, {run.flicker.n_flagged:,} flagged{by}, "
                         f"{counted(len(run.flicker.imputed_frame), 'imputed box', 'imputed boxes')}{siblings}")
        # the folder on one line, whatever its name holds
        lines.append(f"Lightly datasource written to {printable(str(Datasource(self.export.root).lightly))} "
                     f"({counted(self.export.files, 'file')}, tasks: {', '.join(self.export.tasks)}); validation passed")
        if replaced := self.replaced():
            lines.append(replaced)
        return "\n".join(lines)

    def replaced(self) -> str:
        """What the export replaced, when it held videos this one does not ("" when none, or the same videos again:
        a rerun at other thresholds updates its own export). Said, because another video's export went without a word."""
        earlier, root = self.export.earlier, printable(str(self.export.root))
        if earlier is None:
            return ""
        if not earlier:  # a .lightly written elsewhere, or one whose manifest was damaged
            return f"replaced the export that was in {root} (its {MANIFEST} listed no videos)"
        kept = {run.relpath for run in self.videos}
        gone = [{"relpath": relpath} for relpath in earlier if relpath not in kept]
        return f"replaced the earlier export in {root}; not in this one: {listed_videos(gone)}" if gone else ""


def batch_files(out: Path) -> list[str]:
    """The names of a batch's own files (:data:`BATCH_FILES`) that ``out`` holds: none when no batch wrote there. A
    batch writes .batch before any export; a summary.csv alone may be anyone's (an ``evaluate --out``)."""
    found = [name for name in BATCH_FILES if os.path.lexists(Path(out) / name)]
    return found if BATCH_FILES[0] in found else []


def check_not_batch_output(out: Path) -> None:
    """run replaces the export in ``out`` whole. Into a batch's folder it left summary.csv and the done markers claiming
    videos its export no longer held, and the next batch did them all again: a batch's export grows by batch alone."""
    if found := batch_files(out):
        try:
            listed = len(read_manifest(out))
        except (UserError, OSError):
            listed = 0
        held = f" of {counted(listed, 'video')}" if listed else ""
        raise UserError(f"--out {out} is a batch's output folder (it holds {' and '.join(found)}): run would replace the "
                        f"batch's export{held} with this run's alone; add videos to it with python -m core batch VIDEO "
                        f"--out {out}, or give run another --out")


def run_pipeline(config: RunConfig, progress_bar: bool = False) -> RunSummary:
    config.check()
    source = SAMPLE_VIDEO if config.demo else Path(config.video)
    videos = probe_all(find_videos(source))
    detector = None if config.predictions else config.detector.load()
    runs = []
    for info, relpath in videos:
        detections, boxes_from = _detections_for(config, detector, info, relpath, progress_bar)
        kept = _kept_classes(config.detector, detections)
        flicker = config.flicker.evaluate(kept)
        neighbours = config.flicker.neighbours(kept)
        corrections = config.flicker.corrections(kept, flicker, neighbours) if config.export.corrected_task else None
        runs.append(VideoRun(info, relpath, kept, flicker, config.flicker.siblings(kept, neighbours), corrections, boxes_from))
    export = export_datasource(
        config.out,
        [VideoPredictions.of_video(r.info, r.relpath, r.detections, r.flicker, r.siblings, r.corrections) for r in runs],
        task=config.export.task,
        classes=config.detector.class_ids(runs[0].detections.names),
        metadata_style=config.export.metadata_style,
        imputed_task=config.export.imputed_task,
        corrected_task=config.export.corrected_task,
    )
    return RunSummary(tuple(runs), export)


def _kept_classes(spec: DetectorSpec, detections: Detections) -> Detections:
    """Imported predictions hold every class: keep those the spec names (detection already did)."""
    classes = spec.class_ids(detections.names)
    return detections if classes is None else detections.select(np.isin(detections.cls, classes))


def _detections_for(config: RunConfig, detector: Detector | None, info: VideoInfo, relpath: str,
                    progress_bar: bool) -> tuple[Detections, str]:
    """The video's boxes, and where they came from when a file gave them ("" when detected)."""
    if config.predictions is not None:
        imported = import_boxes(config.predictions, info, relpath, config.predictions_format, min_score=config.detector.conf)
        return imported.detections, f"read from {Path(config.predictions).resolve().name} as {imported.format}"
    return detect_with_progress(config.detector, detector, info, relpath, progress_bar), ""
