"""Where a verb's boxes come from: the videos of a file or folder, probed, and their detections
(run here, cached) or the predictions and flickering values an export recorded. What ``run``,
``select``, ``evaluate`` and ``prelabels`` read."""
from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import orjson

from core import paths
from core.bounded import read_capped
from core.detect import Detector, Progress
from core.detections import Detections
from core.errors import UserError, VideoError
from core.lightly.datasource import FLICKERING_KEY, Datasource, frame_namer
from core.lightly.export import (FLAGGED_ABOVE, FLAGS_FLIPPED, UNFLAGGED_VALUE, check_task_name, flickering_flags, listed_videos,
                                 read_manifest, read_tasks, writing)
from core.lightly.metadata_keys import declared_metadata_fields
from core.lightly.validate import import_predictions
from core.settings import DetectorSpec
from core.video import VIDEO_EXTENSIONS, VideoInfo, probe


MAX_METADATA_BYTES = 1 << 20  # one frame's metadata: a few dozen bytes when this tool writes it


class SkippedVideoWarning(UserWarning):
    """A video in a folder could not be read and was left out."""


@dataclass(frozen=True)
class SourceVideo:
    """One video of a source (an export folder or videos), with its detections."""

    info: VideoInfo
    relpath: str
    detections: Detections
    metadata: dict[str, np.ndarray] | None  # an export's metadata per key (flickering, ghost, ...) per frame; None if detected here
    flagged_above: float | None = None  # the cut the export recorded: flickering values past it are flagged (None: not recorded)
    flags_flipped: tuple[int, ...] = ()  # the frames the export lists as told wrongly by its cut

    def flickering_flags(self) -> np.ndarray | None:
        """The frames the export's flickering values mark flagged; None for a video detected here."""
        return None if self.metadata is None else flickering_flags(self.metadata[FLICKERING_KEY], self.flagged_above,
                                                                   self.flags_flipped)


def find_videos(path: Path) -> list[tuple[Path, str]]:
    """``(file, relpath)`` for a single video, or every video under a folder (sub-folders kept)."""
    if path.is_dir():
        # a FIFO, a device or a broken link named like a video is listed (and refused by name when opened), not
        # left out without a word; a folder named so is only searched
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and not p.is_dir())
        found = [p for p in found if not links_outside_roots(p, path)]
        if not found:
            raise UserError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) under {path}")
        return [(p, p.relative_to(path).as_posix()) for p in found]
    return [(path, path.name)]


def links_outside_roots(video: Path, folder: Path) -> bool:
    """Whether ``video`` (found in ``folder``) is a link out of FLICKER_ROOTS, said as a warning: the
    folder was allowed, but a link planted in it must not open a file the roots keep out."""
    if not paths.outside_roots(video):
        return False
    warnings.warn(f"skipped {video.relative_to(folder).as_posix()}: it links outside the folders this app may use "
                  "(FLICKER_ROOTS)", SkippedVideoWarning, stacklevel=3)
    return True


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


def frame_bar(label: str, items: Iterable | None = None, total: int | None = None):
    """A tqdm bar of frames on stderr, as every verb shows its: on a terminal only, gone when done; over ``items``
    when given."""
    from tqdm import tqdm

    return tqdm(items, desc=label, total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False,
                mininterval=0.25, disable=None)


def progress_printer(label: str):
    """A tqdm bar on stderr and the callback that moves it."""
    bar = frame_bar(label)

    def update(progress: Progress) -> None:
        bar.total = progress.total
        bar.n = progress.done
        bar.refresh()  # tqdm's own rate and remaining time: the app's progress line reads them from Progress

    return update, bar


def detect_with_progress(spec: DetectorSpec, detector: Detector, info: VideoInfo, relpath: str,
                         progress_bar: bool) -> Detections:
    """:meth:`DetectorSpec.detect` (cached) with a tqdm bar on stderr when asked."""
    update, bar = progress_printer(f"detect {relpath}") if progress_bar else (None, None)
    try:
        return spec.detect(info, detector, progress=update)
    finally:
        if bar is not None:
            bar.close()


def labelled_video(source: Path, relpath: str | None = None) -> tuple[VideoInfo, str]:
    """The video labels belong to: a video file, or one video of an export (the only one, or the
    one named ``relpath``), probed."""
    source = Path(source)
    if not Datasource(source).exists():
        return probe(source), source.name
    entries = read_manifest(source)
    chosen = [entry for entry in entries if relpath in (None, entry["relpath"])]
    if len(chosen) != 1 or not chosen[0].get("source"):
        raise UserError(f"{source} holds {len(entries):,} videos ({listed_videos(entries)}): pick one with --video RELPATH")
    return probe(chosen[0]["source"]), chosen[0]["relpath"]


def load_sources(source: Path, spec: DetectorSpec, task: str | None = None, progress_bar: bool = False,
                 detector: Detector | None = None) -> list[SourceVideo]:
    """The videos of an export folder (its prediction ``task``, default the first, and its recorded
    flickering values), or of a video file or folder run through the detector (cached; every class
    the spec keeps). ``detector``: one the caller already loaded from ``spec``."""
    source = Path(source)
    if Datasource(source).exists():
        return export_sources(source, task)
    spec.check()
    videos = probe_all(find_videos(source))
    detector = detector or spec.load()
    return [SourceVideo(info, relpath, detect_with_progress(spec, detector, info, relpath, progress_bar), None)
            for info, relpath in videos]


def export_sources(export_dir: Path, task: str | None = None) -> list[SourceVideo]:
    """Videos, imported detections and exported flickering values of an export folder, read under
    the writers' lock: a swap a crash interrupted is finished first (as every writer does), and no
    writer swaps the folder mid-read. Every file in it is untrusted: no link is followed."""
    with writing(Path(export_dir)):
        return _read_export(Path(export_dir), task)


def _read_export(export_dir: Path, task: str | None) -> list[SourceVideo]:
    datasource = Datasource(export_dir)
    manifest = read_manifest(export_dir)
    if not manifest:
        raise UserError(f"{export_dir} does not say which videos it was made from: export it again")
    if task is not None:
        check_task_name(task)
    task = task or read_tasks(export_dir)[0]
    for folder in (datasource.lightly, datasource.predictions, datasource.task_dir(task), datasource.metadata):
        if folder.is_symlink():
            raise UserError(f"{folder} is a symbolic link; links in an export are never followed: export again")
    defaults = _metadata_defaults(datasource)
    videos = []
    for entry in manifest:
        if not entry.get("source"):
            raise UserError(f"{export_dir} does not record where {entry['relpath']} is: export it again")
        info = probe(entry["source"])
        if entry.get("fingerprint") and info.fingerprint != entry["fingerprint"]:  # its boxes are another video's
            raise UserError(f"{entry['source']} changed since it was exported (or is not the exported video): "
                            "export it again (python -m core run) to use it")
        detections = import_predictions(datasource.task_dir(task), entry["relpath"], info.frame_count,
                                        (info.width, info.height))
        name_of = frame_namer(entry["relpath"], info.frame_count)
        values = [_metadata_values(datasource.metadata_file(name_of(frame)), defaults) for frame in range(info.frame_count)]
        videos.append(SourceVideo(info, entry["relpath"], detections,
                                  {key: np.asarray([v[k] for v in values]) for k, key in enumerate(defaults)},
                                  entry.get(FLAGGED_ABOVE), tuple(entry.get(FLAGS_FLIPPED, ()))))
    return videos


def _metadata_defaults(datasource: Datasource) -> dict[str, float]:
    """The numeric metadata keys the export declares, with their defaults (flickering always, also
    when the schema is missing or unreadable: the values files alone then say what they hold)."""
    try:
        fields = declared_metadata_fields(datasource.root)
    except (UserError, OSError):
        fields = {}
    return {FLICKERING_KEY: UNFLAGGED_VALUE} | {key: value for key, value in fields.items() if key != FLICKERING_KEY}


def _metadata_values(metadata: Path, defaults: dict[str, float]) -> list[float]:
    """A frame's recorded value of each key; a missing file or key is the default, a link or a
    damaged file an error."""
    if not os.path.lexists(metadata):
        return list(defaults.values())
    try:
        record = orjson.loads(read_capped(metadata, MAX_METADATA_BYTES, "Metadata file", follow_symlinks=False))
    except orjson.JSONDecodeError:
        raise UserError(f"{metadata} is not valid JSON: export again") from None
    values = record.get("metadata") if isinstance(record, dict) else None
    values = values if isinstance(values, dict) else {}
    return [float(value) if isinstance(value := values.get(key), (int, float)) and math.isfinite(value) else default
            for key, default in defaults.items()]
