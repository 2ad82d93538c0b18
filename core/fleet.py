"""A batch output folder read back as a fleet: one row per video (summary.csv, and while a batch
still runs, the done markers it wrote since), the settings the batch used, verdict progress, and
one video's detections re-imported from the combined datasource (nothing is detected again).

Every file in the folder is untrusted input: sizes are capped, links in the export are never
followed, the manifest's video paths are checked against ``FLICKER_ROOTS`` like any path.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import orjson

from core import paths
from core.bounded import SPREADSHEET_FORMULA_LEADS, brief, read_capped
from core.detections import Detections
from core.errors import UserError
from core.lightly.datasource import FLICKERING_KEY, SCHEMA, Datasource, frame_namer
from core.lightly.export import FLAGGED_ABOVE, FLAGS_FLIPPED, SIBLING_NAMES, assertion_flags, read_manifest, read_tasks
from core.lightly.push import check_local_sources
from core.lightly.validate import import_predictions
from core.settings import DetectorSpec, FlickerSettings
from core.verdicts import judged_frames
from core.video import VideoInfo, probe

SUMMARY_CSV = "summary.csv"  # a batch's table of its videos (core.batch writes it; imported there, never the other way)
DONE_DIR = Path(".batch") / "done"
SETTINGS_FILE = Path(".batch") / "settings.json"  # the detector and flicker settings of the last batch
MAX_SUMMARY_BYTES = 64 << 20  # a row of a real summary is 150-300 bytes: 64 MiB is 200,000+ videos
MAX_SUMMARY_ROWS = 200_000  # rows of a few bytes each: 20 MB held 3 M rows, 1.1 GB and 22 s to read
MAX_MARKER_BYTES = 1 << 20
# summary.csv's "skipped", as the pages say it: done by an earlier run, in the export all the same
STATUS_WORDS = {"skipped": "done earlier"}


@dataclass(frozen=True)
class FleetVideo:
    relpath: str
    source: str
    status: str  # done, skipped (done by an earlier run), failed
    error: str
    frames: int
    boxes: int
    flagged: int

    @property
    def flagged_share(self) -> float:
        return self.flagged / self.frames if self.frames else 0.0

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Fleet:
    root: Path
    videos: tuple[FleetVideo, ...]  # summary.csv's order, then videos only the done markers know
    running: bool  # a batch holds the folder's lock
    unsummarised: int = 0  # videos done after summary.csv was written (a batch running, or one that stopped)
    mixed: bool = False  # those were done with other parameters than the videos before them

    @property
    def flagged(self) -> int:
        return sum(v.flagged for v in self.videos)

    @property
    def failed(self) -> int:
        return sum(v.status == "failed" for v in self.videos)


def check_folder(path_text: str | Path) -> Path:
    """A batch output folder named by the user (or a URL): allowed, a folder, with a summary, or the
    settings and done markers of a batch that has not finished yet."""
    if not str(path_text).strip():
        raise UserError("Give the batch output folder (the --out of python -m core batch)")
    given = Path(str(path_text).strip())
    if not given.is_absolute() and not str(given).startswith("~"):  # it would be looked for wherever the server was started
        raise UserError(f"{path_text} is a relative path: give the batch output folder as an absolute path")
    root = paths.check_allowed(given)  # ~ expanded (a user this machine lacks: one line), links resolved
    if not root.exists():
        raise UserError(f"{path_text}: no such folder")
    started = _state_unlinked(root) and ((root / SETTINGS_FILE).is_file() or (root / DONE_DIR).is_dir())  # its first act, first video
    summary = root / SUMMARY_CSV
    if not root.is_dir() or not (summary.is_file() or started):
        raise UserError(f"{path_text} is not a batch output folder (no {SUMMARY_CSV}): run python -m core batch "
                        "INPUTS --out FOLDER first")
    if summary.is_symlink() or (summary.exists() and not summary.is_file()):  # the batch writes a plain file
        raise UserError(f"{summary} is not a regular file (a link, a pipe or a device): the batch writes a plain CSV "
                        "there; remove it and run the batch again")
    return root


def read_fleet(root: Path) -> Fleet:
    """The videos of a batch output folder: summary.csv (parsed once per version of the file), with
    each done marker newer than it applied on top (a running or interrupted batch)."""
    summary = root / SUMMARY_CSV
    status = summary.stat() if summary.is_file() else None
    rows = dict(_summary_rows(summary, status.st_mtime_ns, status.st_size)) if status else {}
    since = status.st_mtime_ns if status else -1
    newer, earlier_params = _newer_markers(root / DONE_DIR, since) if _state_unlinked(root) else ([], None)
    for relpath, row, _ in newer:
        if row is not None and row.relpath == relpath:
            rows[relpath] = row
    mixed = earlier_params is not None and any(params != earlier_params for _, _, params in newer)
    return Fleet(root, tuple(rows.values()), batch_running(root), len(newer), mixed)


@lru_cache(maxsize=8)
def _summary_rows(path: Path, _mtime_ns: int, _size: int) -> tuple[tuple[str, FleetVideo], ...]:
    text = _read(path, MAX_SUMMARY_BYTES, "Summary", _size).decode("utf-8-sig", "replace")  # saved again by a spreadsheet: a BOM
    rows = []
    records = csv.DictReader(io.StringIO(text))
    try:
        for count, record in enumerate(records):
            if count == MAX_SUMMARY_ROWS:
                raise UserError(f"{path} lists more than {MAX_SUMMARY_ROWS:,} videos: this page reads at most that many "
                                "(run the batch in parts, each with its own output folder)")
            relpath = _cell(record.get("relpath"))
            if relpath:
                video = FleetVideo(relpath, _cell(record.get("source")), _cell(record.get("status")) or "?",
                                   _cell(record.get("error")), _count(record.get("frames")), _count(record.get("boxes")),
                                   _count(record.get("flagged")))
                if video.flagged > video.frames:  # a share past 100%: a batch never writes it
                    raise UserError(f"{path} says {brief(relpath, 80)} has {video.flagged:,} flagged of {video.frames:,} "
                                    "frames: it is not a summary a batch wrote; remove it and run the batch again")
                rows.append((relpath, video))
    except csv.Error as exc:  # a cell past csv's field limit (131,072 characters), a NUL in older Pythons
        raise UserError(f"{path} is not a summary a batch wrote ({str(exc)[:120]}): remove it "
                        "and run the batch again") from None
    return tuple(rows)


def _read(path: Path, cap: int, what: str, size: int) -> bytes:
    """:func:`read_capped` (no link followed) asking for no more than the file's size: it allocates its
    whole limit up front, 256 MiB per read of a 90 KiB summary."""
    return read_capped(path, min(size, cap), what, follow_symlinks=False)


def _cell(value) -> str:
    text = value if isinstance(value, str) else ""
    return text[1:] if text[:1] == "'" and text[1:2] in SPREADSHEET_FORMULA_LEADS else text  # undoes inert_cell


def _count(value) -> int:
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0


def _state_unlinked(root: Path) -> bool:
    """Whether the batch's state folders (``.batch``, its ``done``) are no links: a batch writes real folders there,
    and one planted as a link (to /, or to another batch's) would be walked as this batch's markers and settings."""
    return not any((root / folder).is_symlink() for folder in (DONE_DIR.parent, DONE_DIR))


def _newer_markers(folder: Path, since_ns: int) -> tuple[list[tuple[str, FleetVideo | None, str | None]], str | None]:
    """``(relpath, row, parameters)`` of every done marker written after ``since_ns`` (at most ``MAX_SUMMARY_ROWS``),
    and the parameters of one marker written before (None: none), which tells whether the newer ones were made alike.
    Only what is shown is kept of a marker: each may be 1 MiB of JSON, ten times that once parsed."""
    found, earlier_params = [], None
    for directory, _, files in os.walk(folder):  # never follows links
        for name in files:
            path = Path(directory) / name
            try:
                status = path.lstat()
                newer = status.st_mtime_ns > since_ns
                if not name.endswith(".json") or (not newer and earlier_params is not None):  # one earlier is enough
                    continue
                marker = orjson.loads(_read(path, MAX_MARKER_BYTES, "Done marker", status.st_size))
            except (OSError, UserError, orjson.JSONDecodeError):
                continue  # a damaged marker: the batch itself runs that video again
            if newer:
                if len(found) == MAX_SUMMARY_ROWS:
                    raise UserError(f"{folder} holds more than {MAX_SUMMARY_ROWS:,} done markers: this page reads at most "
                                    "that many (run the batch in parts, each with its own output folder)")
                found.append((path.relative_to(folder).as_posix()[: -len(".json")], _marker_row(marker), _params(marker)))
            else:
                earlier_params = _params(marker)
    return found, earlier_params


def _params(marker) -> str | None:
    """What a done marker says its video was made with (a key of every parameter; core.batch.live)."""
    params = marker.get("params") if isinstance(marker, dict) else None
    return params if isinstance(params, str) else None


def _marker_row(marker) -> FleetVideo | None:
    row = marker.get("row") if isinstance(marker, dict) else None
    if not isinstance(row, dict) or not isinstance(row.get("relpath"), str):
        return None
    return FleetVideo(row["relpath"], str(row.get("source", "")), "done", "", _count(str(row.get("frames", ""))),
                      _count(str(row.get("boxes", ""))), _count(str(row.get("flagged", ""))))


def folder_version(root: Path) -> tuple[bool, int]:
    """What tells that a batch started, resumed or ended: whether one holds the folder's lock, and
    summary.csv's mtime (-1 when none). Two stats and /proc/locks: cheap to poll."""
    try:
        summary = (root / SUMMARY_CSV).stat().st_mtime_ns
    except OSError:
        summary = -1
    return batch_running(root), summary


def batch_running(root: Path) -> bool:
    """Whether a process holds the folder's writer lock (``core.paths.exclusive_lock``), read from
    /proc/locks so that looking never takes the lock a starting batch needs."""
    try:
        status = root.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    lock_id = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    return any(fields[1:2] == ["FLOCK"] and lock_id in fields for fields in map(str.split, locks.splitlines()))


@dataclass(frozen=True)
class BatchSettings:
    detector: DetectorSpec
    flicker: FlickerSettings
    videos: int | None = None  # how many videos the batch's inputs name (None: not recorded)


def write_settings(root: Path, detector: DetectorSpec, flicker: FlickerSettings, videos: int | None = None) -> None:
    """Record what a batch ran with, so the Fleet page reviews each video at the batch's settings,
    and how many videos its inputs name (the page counts them down while it runs)."""
    record = {"videos": videos, "detector": {"weights": detector.weights, "device": detector.device, "conf": detector.conf,
                           "classes": list(detector.classes or []), "backend": detector.backend},
              "flicker": {"iou_track": flicker.iou_track, "iou_assert": flicker.iou_assert,
                          "min_score": flicker.min_score, "assertions": list(flicker.assertions),
                          "options": asdict(flicker.options)}}
    target = paths.check_no_links(root, root / SETTINGS_FILE, "The batch's state")
    paths.write_atomic(target, orjson.dumps(record, option=orjson.OPT_INDENT_2))


def read_settings(root: Path) -> BatchSettings | None:
    """The settings :func:`write_settings` recorded; None when there are none or they are unreadable."""
    path = root / SETTINGS_FILE
    if not _state_unlinked(root) or not path.is_file():
        return None
    try:
        record = orjson.loads(_read(path, MAX_MARKER_BYTES, "Batch settings", path.lstat().st_size))
        detector, flicker = record["detector"], record["flicker"]
        options = dict(flicker["options"])
        settings = FlickerSettings.of_mode(options.pop("mode"), flicker["iou_track"], flicker["iou_assert"],
                                           flicker["min_score"], tuple(flicker["assertions"]), **options).check()
        spec = DetectorSpec.of(detector["weights"], device=str(detector["device"]), conf=float(detector["conf"]),
                               classes=[str(c) for c in detector["classes"]], backend=str(detector["backend"]))
        videos = record.get("videos")
        return BatchSettings(spec, settings, videos if type(videos) is int and videos >= 0 else None)
    except (OSError, UserError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def fingerprints(root: Path) -> dict[str, str]:
    """relpath -> the video's content key (what verdicts are keyed by), from the manifest."""
    try:
        return {e["relpath"]: e["fingerprint"] for e in read_manifest(root) if isinstance(e.get("fingerprint"), str)}
    except UserError:
        return {}


def reviewed_flagged(fleet: Fleet, store_path: Path) -> dict[str, int]:
    """relpath -> how many of its flagged frames (flagged in the export) have a verdict in the store."""
    keys = {key: relpath for relpath, key in fingerprints(fleet.root).items()}
    frames = {v.relpath: v.frames for v in fleet.videos if v.flagged}
    judged: dict[str, set[int]] = {}
    for video, frame in judged_frames(store_path):
        relpath = keys.get(video)
        if relpath in frames and 0 <= frame < frames[relpath]:
            judged.setdefault(relpath, set()).add(frame)
    datasource, cuts = Datasource(fleet.root), flagged_cuts(fleet.root)
    counts = {}
    for relpath, frames_judged in judged.items():
        name_of = frame_namer(relpath, frames[relpath])
        counts[relpath] = sum(_flagged_in_export(datasource.metadata_file(name_of(f)), f, cuts.get(relpath))
                              for f in frames_judged)
    return counts


def flagged_cuts(root: Path) -> dict[str, tuple[float, frozenset[int]]]:
    """relpath -> the flickering value past which a frame of the video is one the batch flagged, and the frames that
    cut tells wrongly: the cut its export recorded, else (a batch from before exports recorded it) 1 - 0.5 x the
    batch's assertion IoU, the score export's (``--flickering score``: 0.5 + 0.5 * score) line of a score above 1 -
    that IoU. Every frame whose tracked object is matched less than perfectly is above 0.5, so 'above 0.5' counted
    most verdicts on unflagged frames (116 of 15 flagged reviewed)."""
    try:
        entries = read_manifest(root)
    except UserError:
        return {}
    recorded = read_settings(root)
    above = 1.0 - 0.5 * (recorded.flicker if recorded is not None else FlickerSettings()).iou_assert
    return {entry["relpath"]: (above if entry.get(FLAGGED_ABOVE) is None else entry[FLAGGED_ABOVE],
                               frozenset(entry.get(FLAGS_FLIPPED, ()))) for entry in entries}


def _flagged_in_export(metadata: Path, frame: int, cut: tuple[float, frozenset[int]] | None = None) -> bool:
    """Whether a frame's metadata file marks it flagged by any assertion (:func:`assertion_flags`: flickering past
    the video's cut, but for the frames it lists as told wrongly, or a sibling's 1.0)."""
    return _flagged_record(metadata, frame, cut) is not None


def _flagged_record(metadata: Path, frame: int, cut: tuple[float, frozenset[int]] | None) -> dict | None:
    """A frame's metadata file as read, when it marks the frame flagged (:func:`_flagged_in_export`); else None."""
    above, flipped = cut if cut is not None else (None, frozenset())
    try:
        record = _export_document(metadata)
        values = {key: value for key, value in record["metadata"].items()
                  if key in (FLICKERING_KEY, *SIBLING_NAMES) and type(value) in (int, float)}
        return record if FLICKERING_KEY in values and bool(assertion_flags(values, above, flipped, frame)) else None
    except (OSError, UserError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class BatchVideo:
    info: VideoInfo
    relpath: str
    detections: Detections
    detection_id: str  # names these detections (the app's index cache key)


def open_video(root: Path, relpath: str, probe_video: Callable[[Path], VideoInfo] = probe) -> BatchVideo:
    """One video of the batch with its detections read back from the combined datasource
    (``probe_video``: how to probe the video, e.g. one that remembers)."""
    entry = next((e for e in read_manifest(root) if e.get("relpath") == relpath), None)
    if entry is None:
        raise UserError(f"{relpath} is not in the batch's export (it failed, or the batch has not reached it)")
    source = entry.get("source")
    if not isinstance(source, str) or "://" in source:
        raise UserError(f"{relpath} was read from {source or 'an unrecorded place'}: only a video on this machine "
                        "can be reviewed; download it and load it on Load & detect")
    info = probe_video(paths.check_allowed(source))
    if entry.get("fingerprint") and info.fingerprint != entry["fingerprint"]:
        raise UserError(f"{source} changed since the batch ran: run the batch again to review it")
    if isinstance(entry.get("frames"), int) and entry["frames"] != info.frame_count:  # counted otherwise since the batch ran
        raise UserError(f"{relpath} was exported with {entry['frames']:,} frames and reads as {info.frame_count:,} now "
                        "(frames are counted as PyAV decodes them since): run the batch again to review it")
    datasource = Datasource(root)
    task = read_tasks(root)[0]
    for folder in (datasource.lightly, datasource.predictions, datasource.task_dir(task)):
        if folder.is_symlink():
            raise UserError(f"{folder} is a symbolic link; links in an export are never followed")
    detections = read_predictions(datasource.task_dir(task), relpath, info.frame_count, (info.width, info.height))
    manifest_version = datasource.manifest.stat().st_mtime_ns
    return BatchVideo(info, relpath, detections, f"batch:{root}:{relpath}:{info.fingerprint}:{manifest_version}")


PREDICTIONS_CACHE = "batch-predictions"  # under paths.cache_dir(): one .npz per video's imported prediction files
_CACHE_FORMAT = 1  # bump when what import_predictions returns changes


def read_predictions(task_dir: Path, relpath: str, n_frames: int, image_size: tuple[int, int]) -> Detections:
    """``import_predictions`` of one video, remembered on disk while its files are unchanged.

    Importing 18,000 frame files takes ~0.5 s with a warm disk cache and ~3 s cold, paid by the
    first Fleet link to the video in every server process; the cached import loads in milliseconds
    after one ``stat`` per file (~75 ms for 18,000). The key covers every file's inode, size and
    mtime, so a rewritten, replaced or deleted file means a fresh import, which also gives its
    errors. A link or anything but a plain file is never cached: the import says what is wrong
    with it."""
    key = _predictions_key(task_dir, relpath, n_frames, image_size)
    if key is None:
        return import_predictions(task_dir, relpath, n_frames, image_size)
    cache = paths.cache_dir() / PREDICTIONS_CACHE / f"{key}.npz"
    try:
        detections = Detections.load(cache)
        paths.mark_used(cache)
        return detections
    except (OSError, ValueError):  # none yet, or damaged (Detections.load): import and replace it
        pass
    detections = import_predictions(task_dir, relpath, n_frames, image_size)
    try:
        detections.save_cached(cache)
    except OSError:
        pass  # a cache that cannot be written costs the next open its speed, nothing else
    return detections


def _predictions_key(task_dir: Path, relpath: str, n_frames: int, image_size: tuple[int, int]) -> str | None:
    """A digest of what the import reads (None when a file is missing or not a plain file)."""
    folder, name_of = str(task_dir), frame_namer(relpath, n_frames)
    digest = hashlib.blake2b(f"{_CACHE_FORMAT}\0{task_dir.resolve()}\0{relpath}\0{n_frames}\0{image_size}".encode(),
                             digest_size=20)
    names = [SCHEMA] + [name_of(frame) + ".json" for frame in range(n_frames)]
    for name in names:
        try:
            status = os.stat(os.path.join(folder, name), follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        digest.update(b"%d %d %d;" % (status.st_ino, status.st_size, status.st_mtime_ns))
    return digest.hexdigest()


@dataclass(frozen=True)
class CombinedDatasource:
    """The batch's combined Lightly datasource as the Export page shows it before a push."""
    root: Path
    tasks: tuple[str, ...]
    frame_counts: dict[str, int]  # relpath -> frames, of every video the manifest lists
    flagged: int  # flagged frames of those videos (summary.csv and the done markers)
    worst: str  # the listed video with the most flagged frames
    remote: tuple[str, ...]  # sources of videos read from a bucket (the push cannot send them)
    running: bool

    @property
    def frames(self) -> int:
        return sum(self.frame_counts.values())


def combined_datasource(root: Path) -> CombinedDatasource:
    """What a push of the batch output folder sends: the videos its manifest lists, complete."""
    found = read_fleet(root)
    try:
        entries, tasks = read_manifest(root), tuple(read_tasks(root))
    except UserError:
        entries, tasks = [], ()
    if not entries or not tasks:
        raise UserError(f"{root} holds no exported video yet: push it once the batch has finished one"
                        if found.running else f"{root} holds no exported video: every video of the batch failed")
    flagged = {v.relpath: v.flagged for v in found.videos if v.status != "failed"}
    counts = {e["relpath"]: e["frames"] for e in entries}
    remote = tuple(str(e.get("source")) for e in entries if "://" in str(e.get("source", "")))
    worst = max(counts, key=lambda relpath: flagged.get(relpath, 0))
    return CombinedDatasource(root, tasks, counts, sum(flagged.get(r, 0) for r in counts), worst, remote, found.running)


def sample_files(combined: CombinedDatasource, search: int = 2000) -> list[tuple[str, dict]] | None:
    """A flagged frame's prediction and metadata file of the worst video (among its first ``search``
    frames; else its first frame), as (name under .lightly, content); None when unreadable. Looks at
    one video's files, never lists the whole export (millions of files in a large batch)."""
    datasource, relpath = Datasource(combined.root), combined.worst
    name_of = frame_namer(relpath, combined.frame_counts[relpath])
    cut = flagged_cuts(combined.root).get(relpath)
    # the flagged frame's metadata as its flag was read from it (once: shown as checked), else the first frame's
    frame, metadata = next(((i, record) for i in range(min(search, combined.frame_counts[relpath]))
                            if (record := _flagged_record(datasource.metadata_file(name_of(i)), i, cut)) is not None), (0, None))
    stem = name_of(frame)
    prediction_path, metadata_path = datasource.prediction_file(combined.tasks[0], stem), datasource.metadata_file(stem)
    try:
        prediction = _export_document(prediction_path)
        metadata = _export_document(metadata_path) if metadata is None else metadata
    except (OSError, UserError, orjson.JSONDecodeError):
        return None
    return [(path.relative_to(datasource.lightly).as_posix(), document)
            for path, document in ((prediction_path, prediction), (metadata_path, metadata))]


def _export_document(path: Path):
    """An exported frame's JSON file, bounded (MAX_MARKER_BYTES); raises as :func:`_read` and orjson do."""
    return orjson.loads(_read(path, MAX_MARKER_BYTES, "Export file", path.lstat().st_size))


def check_input_push(combined: CombinedDatasource) -> None:
    """Videos read from a bucket are not on this machine to be pushed: say so in one line (push's own
    words), before a push that would stop at the first of them."""
    check_local_sources(list(combined.remote))
