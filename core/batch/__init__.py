"""``python -m core batch``: the run pipeline over many videos (folders, globs, bucket prefixes), on
this machine or on a Ray cluster (:mod:`core.batch.ray_engine`), resumable and one video at a time safe.

The driver (this module) owns everything that touches ``--out``; an engine only turns video sources
into :class:`Detected` (frame count, detections, timings or an error). Per video the driver then
runs the flicker assertion and adds the video to the live export::

    OUT/.lightly/...              the combined Lightly datasource, valid after every video
    OUT/flicker_export.json       the manifest: the videos the export holds (rewritten per video)
    OUT/.batch/done/RELPATH.json  done markers: parameters + source version and file identity + the summary row
    OUT/summary.csv               every video of the last run: status, error, figures, timings

A video is added by exporting it alone into a staging folder beside the export (written and
validated by :func:`export_datasource`), renaming its per-frame files into the live tree, then
rewriting the manifest atomically: a crash at any point leaves a valid datasource whose manifest
lists only complete videos. This module never imports Ray: the local engine runs without it.

An ``--out`` holding an export no batch wrote (one of ``run``'s) is refused, as ``run`` refuses a batch's folder: each
verb's export stays whole, and its own records (run's manifest; a batch's summary.csv and done markers) say what it holds.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from core import paths
from core.batch.live import DoneMarkers, LiveExport, batch_settings
from core.batch.local import LocalEngine
from core.batch.sources import (SUMMARY_COLUMNS, BatchProgress, Detected, Engine, VideoRow, VideoSource,
                                failure_message, find_sources)
from core.errors import UserError
from core.fleet import SUMMARY_CSV, write_settings
from core.lightly.datasource import Datasource
from core.lightly.export import VideoPredictions, check_datasource_root, listed_videos, read_manifest, writing
from core.run import RunConfig, batch_files
from core.settings import check_unit_interval
from core.words import counted

ENGINES = ("local", "ray")
EXIT_SOME_FAILED = 3


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
class BatchReport:
    rows: tuple[VideoRow, ...]  # in input order
    out: Path
    seconds: float
    notes: tuple[str, ...] = ()  # why videos an earlier run did were done again

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
            lines.append(f"{status:<8} {len(rows):>7,} {frames:>9,} {sum(r.boxes for r in rows):>9,} {share:>8} "
                         f"{sum(r.decode_s for r in rows):>9.1f} {sum(r.detect_s for r in rows):>9.1f}")
        done = [r for r in self.rows if r.status == "done"]
        rate = (f"{len(done) / self.seconds:.2f} videos/s, {sum(r.frames for r in done) / self.seconds:.1f} frames/s"
                if self.seconds > 0 else "-")
        lightly = Datasource(self.out).lightly
        written = f"Lightly datasource in {lightly}" if lightly.is_dir() else "no Lightly datasource (no video was processed)"
        failed = sum(r.status == "failed" for r in self.rows)  # tried this run too: "0 processed" alone read as nothing tried
        if done or failed:
            lines.append(f"{counted(len(done), 'video')} processed{f' and {failed} failed' if failed else ''} in "
                         f"{self.seconds:.1f} s ({rate}); summary in {self.out / SUMMARY_CSV}, {written}")
        else:  # every video done earlier: no rate of nothing ("0 videos processed in 0.0 s (0.00 videos/s, ...)")
            lines.append(f"Nothing to run: every video was done by an earlier run; summary in {self.out / SUMMARY_CSV}, "
                         f"{written}")
        if skipped := sum(r.status == "skipped" for r in self.rows):
            lines.append(f"{counted(skipped, 'video')} done by an earlier run and in the export already: skipped "
                         "(the table's figures for them are that run's)")
        lines.extend(self.notes)
        lines.extend(f"{'failed' if r.status == 'failed' else 'warning'}: {named_once(r.relpath, r.error)}"
                     for r in self.rows if r.error)
        if failed:
            lines.append("next: mend or move the failed videos, then run the same command again: the videos done are "
                         "skipped")
        return "\n".join(lines)


def named_once(relpath: str, error: str) -> str:
    """``relpath: error``, the video named once: an error about a file starts with its name ("cam06.mp4 is not a
    video FFmpeg can read", "cam07.mp4: 2 of 80 frames could not be decoded")."""
    name = PurePosixPath(relpath).name
    if name and error.startswith((name + " ", name + ": ")):
        return relpath + error[len(name):]
    return f"{relpath}: {error}"


_BAR_OPTIONS = dict(dynamic_ncols=True, leave=False, mininterval=0.25)  # every bar of a batch's


class TqdmProgress(BatchProgress):
    """Bars on stderr: while done videos are read again to check them, one of bytes naming the video being read (none
    when no video needs it); then two, videos (those done earlier counted in from the start, as the page's bar counts
    them) and frames (whose total grows as videos are opened)."""

    def __init__(self, disable: bool | None = None):
        self.disable = disable
        self.checked = self.videos = self.frames = None
        self.failed = 0

    def _bar(self, **options):
        from tqdm import tqdm

        return tqdm(file=sys.stderr, disable=self.disable, **_BAR_OPTIONS, **options)

    def checking(self, relpath: str, done: int, total: int) -> None:
        if self.checked is None:
            self.checked = self._bar(total=total, desc="checking done videos", unit="B", unit_scale=True, unit_divisor=1024)
        self.checked.update(done - self.checked.n)
        self.checked.set_postfix_str(relpath)
        if done >= total:
            self.checked.close()

    def started(self, videos: int, skipped: Sequence[VideoRow]) -> None:
        self.videos = self._bar(total=videos, initial=len(skipped), desc="videos", unit="video", position=0)
        self.frames = self._bar(total=0, desc="frames", unit="frame", position=1)

    def probed(self, frames: int, relpath: str = "") -> None:
        self.frames.total += frames
        self.frames.set_postfix_str(relpath, refresh=False)  # the video opened last (Ray detects several at once)
        self.frames.refresh()

    def detected(self, frames: int) -> None:
        self.frames.update(frames)

    def finished(self, row: VideoRow) -> None:
        self.failed += row.status == "failed"
        self.videos.set_postfix_str(f"{self.failed} failed", refresh=False)
        self.videos.update(1)

    def close(self) -> None:
        for bar in (self.checked, self.frames, self.videos):
            if bar is not None:
                bar.close()


def open_engine(config: BatchConfig) -> Engine:
    if config.engine == "ray":
        from core.batch.ray_engine import RayEngine

        return RayEngine(config.options.detector, config.workers)
    return LocalEngine(config.options.detector)


def check_config(config: BatchConfig) -> None:
    options = config.options
    options.flicker.check()
    options.detector.check()  # as run does: a device that cannot be used is refused, never ignored
    check_unit_interval("--conf", options.detector.conf)
    if config.engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {config.engine!r}")
    if config.workers is not None and (config.engine != "ray" or config.workers < 1):
        raise UserError("--workers is the number of Ray detector workers: use it with --engine ray, at least 1")
    paths.check_output_folder(options.out, "--out")
    check_datasource_root(options.out)
    check_not_run_export(options.out)
    options.export.check()


def check_not_run_export(out: Path) -> None:
    """A batch grows the export in ``out`` video by video, and its summary.csv and done markers list the videos it did.
    Into an export run wrote (no batch state beside it) it mixed its videos with that export's, which neither listed:
    the manifest held 5 videos, the summary 4. Refused: the earlier export stays as it is."""
    datasource = Datasource(out)
    if batch_files(out) or not any(os.path.lexists(path) for path in (datasource.lightly, datasource.manifest)):
        return
    try:
        entries = read_manifest(out)
    except (UserError, OSError):
        entries = []
    held = f" of {listed_videos(entries)}" if entries else ""
    raise UserError(f"--out {out} holds an export{held} that no batch wrote: a batch would mix its videos into it, and its "
                    f"{SUMMARY_CSV} would not count that export's; give batch a folder of its own (a batch's export takes "
                    "more videos when batch runs again)")


def run_batch(config: BatchConfig, progress: BatchProgress | None = None, quiet: bool = True) -> BatchReport:
    """Detect, assert and export every video the inputs name; videos already done with the same
    parameters are skipped. ``progress`` defaults to bars on stderr (none when ``quiet``)."""
    check_config(config)
    sources = find_sources(config.inputs)
    start = time.perf_counter()
    engine = open_engine(config)
    try:
        classes = config.options.detector.class_ids(engine.names)
        config.out.mkdir(parents=True, exist_ok=True)
        with writing(config.out):
            write_settings(config.out, config.options.detector, config.options.flicker, len(sources))  # what Fleet reviews at
            rows, notes = _run_locked(config, engine, sources, classes, progress, quiet)
            report = BatchReport(tuple(rows[s.relpath] for s in sources), config.out, time.perf_counter() - start, notes)
            paths.write_atomic(config.out / SUMMARY_CSV, summary_csv(report.rows))
    finally:
        engine.close()
    return report


def _run_locked(config: BatchConfig, engine: Engine, sources: list[VideoSource], classes: list[int] | None,
                progress: BatchProgress | None, quiet: bool) -> tuple[dict[str, VideoRow], tuple[str, ...]]:
    """Each video's row, and why videos an earlier run did were done again (DoneMarkers.notes)."""
    export = LiveExport(config.out, config.options.export, classes, engine.names, config.options.flicker.sibling_keys)
    markers = DoneMarkers(config.out, batch_settings(config.options, engine.fingerprint, classes),
                          siblings=bool(config.options.flicker.sibling_keys), names=engine.names)
    report_to = progress or TqdmProgress(disable=True if quiet else None)
    try:
        rows = markers.done_rows(sources, export.entries, report_to)
        report_to.started(len(sources), [rows[s.relpath] for s in sources if s.relpath in rows])
        for detected in engine.detect([s for s in sources if s.relpath not in rows], classes, report_to):
            row = _finish(detected, export, config.options)
            if row.status == "done":
                markers.mark(detected, row)
            rows[row.relpath] = row
            report_to.finished(row)
    finally:
        if progress is None:
            report_to.close()
    return rows, markers.notes()


def _finish(detected: Detected, export: LiveExport, options: RunConfig) -> VideoRow:
    """Flicker assertion and export of one detected video; a video the assertion (boxes stacked on one spot)
    or the export refuses fails alone."""
    source = detected.source
    if detected.error:
        return VideoRow(source.relpath, source.location, "failed", detected.error)
    detections = detected.detections
    try:
        video = VideoPredictions.of_video(detected.info, source.relpath, detections, options.flicker.evaluate(detections),
                                          options.flicker.siblings(detections))
        export.add(video, source)
    except UserError as exc:
        return VideoRow(source.relpath, source.location, "failed", failure_message(exc))
    # a done video's error column holds what its probe and its decoding warned of (a truncated file, frames
    # that did not decode), for Fleet to show
    warned = "; ".join(said for said in (detected.info.warning, detections.decode_warning) if said)
    return VideoRow(source.relpath, source.location, "done", warned, detections.n_frames, len(detections),
                    video.flagged, detected.decode_s, detected.detect_s)


def summary_csv(rows: Sequence[VideoRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.csv_fields() for row in rows)
    return buffer.getvalue().encode()
