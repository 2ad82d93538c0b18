"""``python -m core batch``: the run pipeline over many videos (folders, globs, bucket prefixes), on
this machine or on a Ray cluster (:mod:`core.batch_ray`), resumable and one video at a time safe.

The driver (this module) owns everything that touches ``--out``; an engine only turns video sources
into :class:`Detected` (frame count, detections, timings or an error). Per video the driver then
runs the flicker assertion and adds the video to the live export::

    OUT/.lightly/...              the combined Lightly datasource, valid after every video
    OUT/flicker_export.json       the manifest: the videos the export holds (rewritten per video)
    OUT/.batch/done/RELPATH.json  done markers: parameters + source version + the summary row
    OUT/summary.csv               every video of the last run: status, error, figures, timings

A video is added by exporting it alone into a staging folder beside the export (written and
validated by :func:`export_datasource`), renaming its per-frame files into the live tree, then
rewriting the manifest atomically: a crash at any point leaves a valid datasource whose manifest
lists only complete videos. This module never imports Ray: the local engine runs without it.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import Iterator, Protocol, Sequence

import orjson

from core import paths
from core.backends import describe
from core.detect import Progress, detect_video, load_detector
from core.detections import Detections
from core.errors import CloudError, ExportError, UserError
from core.flicker import FlickerIndex
from core.lightly.datasource import Datasource, frame_namer
from core.lightly.export import (
    VideoPredictions,
    check_task_name,
    export_datasource,
    read_manifest,
    read_tasks,
    write_manifest,
    writing,
)
from core.lightly.push import filesystem
from core.secrets import mask
from core.pipeline import VIDEO_EXTENSIONS, RunConfig, find_videos, flicker_options, resolve_classes
from core.video import VideoInfo, probe

ENGINES = ("local", "ray")
SUMMARY_CSV = "summary.csv"
STATE_DIR = ".batch"  # beside .lightly: the datasource itself stays pure
STAGING_PREFIX = ".batch.partial-"
TIMING_COLUMNS = ("decode_s", "detect_s")
EXIT_SOME_FAILED = 3
_GLOB_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True)
class BatchConfig:
    inputs: tuple[str, ...]  # videos, folders, globs, bucket URLs
    options: RunConfig  # run's detector, flicker and export options; options.out is the export root
    engine: str = "local"
    workers: int | None = None  # Ray detector actors (default: one per GPU, or CPUs - 1 without GPUs)

    @property
    def out(self) -> Path:
        return self.options.out


@dataclass(frozen=True)
class VideoSource:
    location: str  # a local path or a bucket URL
    relpath: str  # relative to its input folder or bucket prefix: names the frames in the export
    version: str  # size and mtime (or ETag): a changed file is processed again

    @property
    def remote(self) -> bool:
        return "://" in self.location


@dataclass(frozen=True)
class Detected:
    """What an engine hands back for one video."""

    source: VideoSource
    info: VideoInfo | None = None
    detections: Detections | None = None
    error: str = ""
    decode_s: float = 0.0
    detect_s: float = 0.0


@dataclass(frozen=True)
class VideoRow:
    """One line of summary.csv."""

    relpath: str
    source: str
    status: str  # done, skipped (done by an earlier run with the same parameters), failed
    error: str = ""
    frames: int = 0
    boxes: int = 0
    flagged: int = 0
    decode_s: float = 0.0
    detect_s: float = 0.0

    @property
    def flagged_share(self) -> float:
        return self.flagged / self.frames if self.frames else 0.0

    def csv_fields(self) -> dict[str, str | int]:
        values = asdict(self)
        values["flagged_share"] = f"{self.flagged_share:.4f}"
        values.update({name: f"{values[name]:.3f}" for name in TIMING_COLUMNS})
        return values


SUMMARY_COLUMNS = (*(f.name for f in fields(VideoRow) if f.name not in TIMING_COLUMNS), "flagged_share", *TIMING_COLUMNS)


class BatchProgress:
    """What the engines and the driver report while they work; this base reports nowhere."""

    def probed(self, frames: int) -> None:
        """A video was opened: ``frames`` more to detect."""

    def detected(self, frames: int) -> None:
        """``frames`` more frames went through the detector (or came from its cache)."""

    def finished(self, row: VideoRow) -> None:
        """A video is done (it is in the export by now) or failed."""


class TqdmProgress(BatchProgress):
    """Two bars on stderr: videos, and frames (whose total grows as videos are opened)."""

    def __init__(self, videos: int, already_done: int, disable: bool | None = None):
        from tqdm import tqdm

        common = dict(file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.25, disable=disable)
        self.videos = tqdm(total=videos, initial=already_done, desc="videos", unit="video", position=0, **common)
        self.frames = tqdm(total=0, desc="frames", unit="frame", position=1, **common)
        self.failed = 0

    def probed(self, frames: int) -> None:
        self.frames.total += frames
        self.frames.refresh()

    def detected(self, frames: int) -> None:
        self.frames.update(frames)

    def finished(self, row: VideoRow) -> None:
        self.failed += row.status == "failed"
        self.videos.set_postfix_str(f"{self.failed} failed", refresh=False)
        self.videos.update(1)

    def close(self) -> None:
        self.frames.close()
        self.videos.close()


class Engine(Protocol):
    names: dict[int, str]  # the detector's classes
    fingerprint: str  # the detector's, as in the detection cache key

    def detect(self, sources: Sequence[VideoSource], classes: list[int] | None, progress: BatchProgress) -> Iterator[Detected]:
        """One :class:`Detected` per source, in any order; a bad video is an error, never an exception."""

    def close(self) -> None:
        """Release workers."""


@dataclass(frozen=True)
class BatchReport:
    rows: tuple[VideoRow, ...]  # in input order
    out: Path
    seconds: float

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if any(r.status == "failed" for r in self.rows) else 0

    def text(self) -> str:
        """The final table: per status, videos, frames, boxes, flagged share and busy seconds."""
        lines = [f"{'status':<8} {'videos':>7} {'frames':>9} {'boxes':>9} {'flagged':>8} {'decode s':>9} {'detect s':>9}"]
        for status in ("done", "skipped", "failed", "total"):
            rows = [r for r in self.rows if status in (r.status, "total")]
            if not rows:
                continue
            frames, flagged = sum(r.frames for r in rows), sum(r.flagged for r in rows)
            share = f"{flagged / frames:.1%}" if frames else "-"
            lines.append(f"{status:<8} {len(rows):>7} {frames:>9} {sum(r.boxes for r in rows):>9} {share:>8} "
                         f"{sum(r.decode_s for r in rows):>9.1f} {sum(r.detect_s for r in rows):>9.1f}")
        done = [r for r in self.rows if r.status == "done"]
        rate = (f"{len(done) / self.seconds:.2f} videos/s, {sum(r.frames for r in done) / self.seconds:.1f} frames/s"
                if self.seconds > 0 else "-")
        lines.append(f"{len(done)} videos processed in {self.seconds:.1f} s ({rate}); "
                     f"summary in {self.out / SUMMARY_CSV}, Lightly datasource in {Datasource(self.out).lightly}")
        lines.extend(f"failed: {r.relpath}: {r.error}" for r in self.rows if r.status == "failed")
        return "\n".join(lines)


# --- inputs -------------------------------------------------------------------------------------


def find_sources(inputs: Sequence[str]) -> list[VideoSource]:
    """Every video the inputs name, in input order; relpaths must be unique across inputs."""
    if not inputs:
        raise UserError("Give at least one video, folder, glob or bucket URL")
    sources = [source for item in inputs for source in _sources_of(str(item))]
    seen: dict[str, str] = {}
    for source in sources:
        parts = PurePosixPath(source.relpath).parts
        if source.relpath.startswith("/") or ".." in parts:
            raise UserError(f"{source.location}: its path {source.relpath!r} leaves its input folder")
        if source.relpath in seen:
            raise UserError(f"{seen[source.relpath]} and {source.location} both export as {source.relpath!r}: "
                            "give them as one folder, or rename one")
        seen[source.relpath] = source.location
    return sources


def _sources_of(item: str) -> list[VideoSource]:
    if "://" in item:
        return _bucket_sources(item)
    if _GLOB_MAGIC.search(item):
        return _glob_sources(item)
    path = Path(item)
    if not path.exists():
        raise UserError(f"No such file or folder: {item}")
    return [_local_source(file, relpath) for file, relpath in find_videos(path)]


def _local_source(path: Path, relpath: str) -> VideoSource:
    status = path.stat()
    return VideoSource(str(path.absolute()), relpath, f"{status.st_size}:{status.st_mtime_ns}")  # workers have other cwds


def _static_prefix(pattern: str) -> str:
    """The folders of a glob before its first wildcard: relpaths start below it."""
    parts = pattern.split("/")
    fixed = next(i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part))
    return "/".join(parts[:fixed])


def _glob_sources(pattern: str) -> list[VideoSource]:
    """The video files a glob matches (``**`` goes down folders), as buckets glob."""
    base = Path(_static_prefix(pattern) or ".")
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    sources = [_local_source(match, match.relative_to(base).as_posix()) for match in matches
               if match.is_file() and match.suffix.lower() in VIDEO_EXTENSIONS]
    if not sources:
        raise UserError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) match {pattern}")
    return sources


def _bucket_sources(url: str) -> list[VideoSource]:
    """A bucket prefix (recursive), one object, or a glob, listed once with sizes and ETags."""
    fs, root = filesystem(url)
    try:
        if _GLOB_MAGIC.search(root):
            base, listing = _static_prefix(root), fs.glob(root, detail=True)
        elif fs.isdir(root):
            base, listing = root.rstrip("/"), fs.find(root, detail=True)
        else:
            base, listing = root.rsplit("/", 1)[0], {root: fs.info(root)}
    except FileNotFoundError:
        raise CloudError(f"Nothing at {url}") from None
    except Exception as exc:  # each backend raises its own types
        raise CloudError(f"Cannot list {url}: {describe(exc)}") from None
    sources = [VideoSource(fs.unstrip_protocol(key), key[len(base):].lstrip("/"), _remote_version(info))
               for key, info in sorted(listing.items())
               if info.get("type") != "directory" and PurePosixPath(key).suffix.lower() in VIDEO_EXTENSIONS]
    if not sources:
        raise UserError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) under {url}")
    return sources


def _remote_version(info: dict) -> str:
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or info.get("LastModified")
    return f"{info.get('size')}:{tag}"


@contextmanager
def local_copy(source: VideoSource, cache_dir: Path | None = None) -> Iterator[Path]:
    """The video as a local file: the file itself, or a bucket object downloaded into the staging
    cache and deleted when the caller is done, so a worker holds one video on disk at a time."""
    if not source.remote:
        yield Path(source.location)
        return
    fs, key = filesystem(source.location)
    with paths.staged_dir((cache_dir or paths.cache_dir()) / "batch-staging", prefix="video-") as folder:
        target = folder / PurePosixPath(source.relpath).name  # error messages name the video as the user knows it
        try:
            fs.get_file(key, str(target))
        except Exception as exc:  # each backend raises its own types
            raise CloudError(f"Cannot download {source.location}: {describe(exc)}") from None
        yield target


def failure_message(exc: BaseException) -> str:
    """One line for summary.csv, secrets masked; a Ray task's error is reported as the exception it wraps."""
    cause = getattr(exc, "cause", None) or exc
    return mask(describe(cause) if isinstance(cause, UserError) else f"{type(cause).__name__}: {describe(cause)}")


# --- the local engine ---------------------------------------------------------------------------


class LocalEngine:
    """One detector in this process; videos one after the other (decode overlaps inference inside
    :func:`detect_video`)."""

    def __init__(self, options: RunConfig):
        self.options = options
        self.detector = load_detector(options.weights, options.device, backend=options.backend, cache_dir=options.cache_dir)
        self.names = self.detector.names
        self.fingerprint = self.detector.fingerprint

    def detect(self, sources: Sequence[VideoSource], classes: list[int] | None, progress: BatchProgress) -> Iterator[Detected]:
        for source in sources:
            yield self._detect_one(source, classes, progress)

    def _detect_one(self, source: VideoSource, classes: list[int] | None, progress: BatchProgress) -> Detected:
        last = Progress(0, 0, 0.0, 0.0)

        def update(current: Progress) -> None:
            nonlocal last
            progress.detected(current.done - last.done)
            last = current

        try:
            with local_copy(source, self.options.cache_dir) as path:
                info = probe(path)
                progress.probed(info.frame_count)
                detections = detect_video(info, self.detector, self.options.conf, classes, self.options.cache_dir, update)
        except Exception as exc:  # one bad video must not stop the batch
            return Detected(source, error=failure_message(exc))
        stage_seconds = {name: last.done / fps for name, fps in last.stage_fps.items()}
        return Detected(source, info, detections, decode_s=stage_seconds.get("decode", 0.0),
                        detect_s=stage_seconds.get("prepare", 0.0) + stage_seconds.get("infer", 0.0))

    def close(self) -> None:
        pass


def open_engine(config: BatchConfig) -> Engine:
    if config.engine == "ray":
        from core.batch_ray import RayEngine

        return RayEngine(config.options, config.workers)
    return LocalEngine(config.options)


# --- the export under --out ---------------------------------------------------------------------


class LiveExport:
    """The datasource under ``--out``, grown one video at a time and valid after every one."""

    def __init__(self, options: RunConfig, classes: list[int] | None, names: dict[int, str]):
        self.options = options
        self.datasource = Datasource(options.out)
        self.tasks = [options.task] + ([options.imputed_task] if options.imputed_task else [])
        self.classes = classes
        self.entries = _manifest_entries(options.out)
        for leftover in options.out.glob(STAGING_PREFIX + "*"):  # a killed run's half-moved video
            shutil.rmtree(leftover, ignore_errors=True)
        if self.datasource.exists():
            self._check_compatible(names)

    def _check_compatible(self, names: dict[int, str]) -> None:
        """The live tasks.json and schemas are written once: later videos must fit them."""
        found = read_tasks(self.datasource.root)
        if found != self.tasks:
            raise ExportError(f"{self.datasource.root} holds an export of tasks {found}, not {self.tasks}: "
                              "use the same --task/--imputed-task, or another --out")
        kept = sorted(self.classes) if self.classes is not None else sorted(names)
        expected = [(i, names[i]) for i in kept]
        for task in found:
            try:
                categories = [(c["id"], c["name"]) for c in orjson.loads(self.datasource.task_schema(task).read_bytes())["categories"]]
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
                categories = None  # missing or damaged: not the schema this run would write either
            if categories != expected:
                raise ExportError(f"{self.datasource.root} holds an export of other classes (task {task}): use the "
                                  "same --weights/--classes, or another --out")

    def add(self, video: VideoPredictions, source: VideoSource) -> None:
        """Export the video alone beside the live tree (validated), rename its frame files in, then
        list it in the manifest."""
        with paths.staged_dir(self.datasource.root, prefix=STAGING_PREFIX) as staging_root:
            export_datasource(staging_root, [video], self.options.task, self.classes, self.options.flickering,
                              self.options.imputed_task)
            staged = Datasource(staging_root)
            entry = read_manifest(staging_root)[0]
            if not self.datasource.exists():
                os.replace(staged.lightly, self.datasource.lightly)  # the first video brings tasks.json and schemas
            else:
                self._move_frame_files(staged)
        if source.remote:
            entry["source"] = source.location  # the staged download is gone; the bucket object is the video
        previous = self.entries.get(video.relpath)
        self.entries[video.relpath] = entry
        write_manifest(self.datasource, sorted(self.entries.values(), key=_relpath))
        if previous is not None:
            self._remove_stale_frames(video.relpath, previous["frames"], entry["frames"])

    def _move_frame_files(self, staged: Datasource) -> None:
        layout = {staged.tasks_file, staged.metadata_schema, *(staged.task_schema(task) for task in self.tasks)}
        for path in staged.files():
            if path in layout:
                continue
            target = self.datasource.root / path.relative_to(staged.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)

    def _remove_stale_frames(self, relpath: str, old_frames: int, new_frames: int) -> None:
        """A video that changed length: drop the files of frames (or zero-padded names) it no longer has."""
        new_names = {frame_namer(relpath, new_frames)(i) for i in range(new_frames)}
        old_name = frame_namer(relpath, old_frames)
        for stem in {old_name(i) for i in range(old_frames)} - new_names:
            for task in self.tasks:
                self.datasource.prediction_file(task, stem).unlink(missing_ok=True)
            self.datasource.metadata_file(stem).unlink(missing_ok=True)


def _relpath(entry: dict) -> str:
    return entry["relpath"]


def _manifest_entries(out: Path) -> dict[str, dict]:
    entries = read_manifest(out)
    if not all(isinstance(e, dict) and isinstance(e.get("relpath"), str) and isinstance(e.get("frames"), int) for e in entries):
        raise ExportError(f"{Datasource(out).manifest} is damaged: move --out aside and run again")
    return {entry["relpath"]: entry for entry in entries}


class DoneMarkers:
    """``OUT/.batch/done/RELPATH.json``: which videos an earlier run finished, and with what."""

    def __init__(self, out: Path, params: str):
        self.folder = out / STATE_DIR / "done"
        self.params = params

    def _path(self, relpath: str) -> Path:
        return self.folder / f"{relpath}.json"

    def done_row(self, source: VideoSource, listed: bool) -> VideoRow | None:
        """The earlier row of a video done with these parameters, still unchanged and still in the export."""
        path = self._path(source.relpath)
        if not listed or not path.is_file():
            return None
        try:
            marker = orjson.loads(path.read_bytes())
            if marker["params"] != self.params or marker["version"] != source.version:
                return None
            return replace(VideoRow(**marker["row"]), status="skipped")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None  # a damaged marker only costs a re-run of that video

    def mark(self, source: VideoSource, row: VideoRow) -> None:
        marker = {"params": self.params, "version": source.version, "row": asdict(row)}
        paths.write_atomic(self._path(source.relpath), orjson.dumps(marker), durable=True)


def parameters_key(options: RunConfig, fingerprint: str, classes: list[int] | None) -> str:
    """Everything that changes a video's exported files."""
    values = [fingerprint, options.conf, classes, options.mode, options.iou_track, options.iou_assert, options.task,
              options.flickering, options.imputed_task]
    return hashlib.blake2b(orjson.dumps(values), digest_size=16).hexdigest()


# --- the driver ---------------------------------------------------------------------------------


def check_config(config: BatchConfig) -> None:
    options = config.options
    for name, value in (("--iou-track", options.iou_track), ("--iou-assert", options.iou_assert), ("--conf", options.conf)):
        if not 0.0 <= value <= 1.0:
            raise UserError(f"{name} must be in [0, 1], got {value}")
    if config.engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {config.engine!r}")
    if config.workers is not None and (config.engine != "ray" or config.workers < 1):
        raise UserError("--workers is the number of Ray detector workers: use it with --engine ray, at least 1")
    if options.out.exists() and not options.out.is_dir():
        raise UserError(f"--out {options.out} exists and is not a folder")
    for task in filter(None, (options.task, options.imputed_task)):
        check_task_name(task)
    if options.imputed_task == options.task:
        raise UserError(f"The imputed boxes need their own task name, not {options.task!r}")
    flicker_options(options.mode)


def run_batch(config: BatchConfig, progress: BatchProgress | None = None, quiet: bool = True) -> BatchReport:
    """Detect, assert and export every video the inputs name; videos already done with the same
    parameters are skipped. ``progress`` defaults to bars on stderr (none when ``quiet``)."""
    check_config(config)
    sources = find_sources(config.inputs)
    start = time.perf_counter()
    engine = open_engine(config)
    try:
        classes = resolve_classes(config.options.classes, engine.names)
        config.out.mkdir(parents=True, exist_ok=True)
        with writing(config.out):
            rows = _run_locked(config, engine, sources, classes, progress, quiet)
            report = BatchReport(tuple(rows[s.relpath] for s in sources), config.out, time.perf_counter() - start)
            paths.write_atomic(config.out / SUMMARY_CSV, summary_csv(report.rows))
    finally:
        engine.close()
    return report


def _run_locked(config: BatchConfig, engine: Engine, sources: list[VideoSource], classes: list[int] | None,
                progress: BatchProgress | None, quiet: bool) -> dict[str, VideoRow]:
    export = LiveExport(config.options, classes, engine.names)
    markers = DoneMarkers(config.out, parameters_key(config.options, engine.fingerprint, classes))
    rows: dict[str, VideoRow] = {}
    for source in sources:
        row = markers.done_row(source, listed=source.relpath in export.entries)
        if row is not None:
            rows[source.relpath] = row
    todo = [s for s in sources if s.relpath not in rows]
    bars = TqdmProgress(len(sources), len(rows), disable=True if quiet else None) if progress is None else None
    report_to = progress or bars
    try:
        for detected in engine.detect(todo, classes, report_to):
            row = _finish(detected, export, config.options)
            if row.status == "done":
                markers.mark(detected.source, row)
            rows[row.relpath] = row
            report_to.finished(row)
    finally:
        if bars is not None:
            bars.close()
    return rows


def _finish(detected: Detected, export: LiveExport, options: RunConfig) -> VideoRow:
    """Flicker assertion and export of one detected video; a video the export refuses fails alone."""
    source = detected.source
    if detected.error:
        return VideoRow(source.relpath, source.location, "failed", detected.error)
    detections = detected.detections.in_canonical_order()  # the Ray engine builds its own Detections
    flicker = FlickerIndex.from_detections(detections, flicker_options(options.mode)).evaluate(options.iou_track,
                                                                                               options.iou_assert)
    try:
        export.add(VideoPredictions.of_video(detected.info, source.relpath, detections, flicker), source)
    except UserError as exc:
        return VideoRow(source.relpath, source.location, "failed", failure_message(exc))
    return VideoRow(source.relpath, source.location, "done", "", detections.n_frames, len(detections), flicker.n_flagged,
                    detected.decode_s, detected.detect_s)


def summary_csv(rows: Sequence[VideoRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.csv_fields() for row in rows)
    return buffer.getvalue().encode()
