"""Write the Lightly datasource files (seed 004): predictions and flickering metadata.

Crash safety. The tree and its manifest are built together in a staging folder beside the target,
validated, then swapped in together (:func:`core.paths.swap_in`), under a lock on the output folder::

    OUT/.lightly.partial-X/{.lightly, flicker_export.json, SWAP}   built, validated, marked

A crash (even ``kill -9``) at any point leaves either the old export or the new one once the next
writer (export or push) runs :func:`recover_export`: a marked staging folder is rolled forward, an
unmarked one deleted. Paths come from :class:`~core.lightly.datasource.Datasource`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Collection, Iterator, Literal, Mapping, Sequence

import numpy as np
import orjson

from core.bounded import brief, read_capped
from core.detections import Detections, lightly_xywh
from core.errors import ExportError, UserError
from core.flicker import FlickerResult
from core.assertions import Corrections
from core.lightly.datasource import CORRECTIONS, FLICKERING_KEY, LIGHTLY_DIR, MANIFEST, Datasource, frame_namer, image_name
from core.lightly.validate import validate_datasource
from core.paths import exclusive_lock, recover_swaps, staged_dir, swap_in, within, write_atomic
from core.video import VideoInfo

MetadataStyle = Literal["binary", "score"]  # what the flickering metadata holds (CLI --flickering)
METADATA_SCHEMA = [{"name": "Flickering", "path": FLICKERING_KEY, "defaultValue": 0.5, "valueDataType": "NUMERIC_FLOAT"}]
SIBLING_NAMES = {"ghost": "Ghost", "class_flip": "Class flip"}  # metadata key -> schema name of flicker's siblings
FLAGGED_VALUE, UNFLAGGED_VALUE = 1.0, 0.5  # the tutorial's values
FLAGGED_ABOVE = "flagged_above"  # a manifest entry's cut: the flickering values past it are the frames the export flags
FLAGS_FLIPPED = "flags_flipped"  # a manifest entry's frames the cut tells wrongly (improved mode's empty windows)
DEFAULT_TASK = "yolov8_detection"  # the tutorial's task name
MAX_TASK_NAME = 128
STAGING_PREFIX = f"{LIGHTLY_DIR}.partial-"
SWAPPED = (LIGHTLY_DIR, MANIFEST)  # what an export replaces, together (and the corrections sidecar when there is one)


@dataclass(frozen=True)
class VideoPredictions:
    """One video's part of an export."""

    relpath: str  # the video's path relative to the input datasource root, POSIX separators
    detections: Detections
    flicker: FlickerResult
    source: Path | None = None  # the video file, recorded so `push --input` can upload it
    frame_count: int | None = None  # as probe() decodes the video; the export is checked against it
    fingerprint: str | None = None  # the video's content key, so push can tell the source is unchanged
    siblings: tuple[tuple[str, np.ndarray], ...] = ()  # (metadata key, flag per frame) of ghost / class_flip
    corrections: Corrections | None = None  # the corrected stream, for a corrected task

    @classmethod
    def of_video(cls, info: VideoInfo, relpath: str, detections: Detections, flicker: FlickerResult,
                 siblings: Mapping[str, np.ndarray] | None = None, corrections: Corrections | None = None) -> "VideoPredictions":
        """A probed video's part: its file, decoded frame count and content key come from ``info``."""
        return cls(relpath, detections, flicker, info.path, info.frame_count, info.fingerprint,
                   tuple((siblings or {}).items()), corrections)

    @property
    def frames(self) -> int:
        return self.detections.n_frames if self.frame_count is None else self.frame_count

    @property
    def flagged(self) -> int:
        """Frames any enabled assertion flags (flicker, ghost, class flip): the Review page's "Any", where J / K go, and
        what summary.csv and Fleet count."""
        flags = np.asarray(self.flicker.flag_array, bool)
        for _, sibling in self.siblings:
            flags = flags | np.asarray(sibling, bool)
        return int(flags.sum())

    def flags_digest(self) -> str:
        """What this part of an export depends on beyond the video, in a few bytes: the boxes it keeps
        (another model, file or minimum score changes them) and the frames each assertion flags.
        Recorded in the manifest, so a page can tell whether an export on disk was written with the
        boxes and flags on screen (~1 ms per 10,000 boxes)."""
        digest = hashlib.sha256(b"%d;" % len(self.detections))
        self.detections.hash_boxes(digest)
        digest.update(np.packbits(np.asarray(self.flicker.flag_array, bool)).tobytes())
        for key, flags in self.siblings:
            digest.update(b";%s;" % key.encode() + np.packbits(np.asarray(flags, bool)).tobytes())
        return digest.hexdigest()[:20]


@dataclass(frozen=True)
class ExportSummary:
    root: Path  # the datasource root (holds .lightly/)
    tasks: tuple[str, ...]
    frames: int
    boxes: int
    flagged: int  # frames any enabled assertion flags
    files: int
    # the videos the export this one replaced listed: None when the folder held none, empty when its manifest listed
    # none (a .lightly made elsewhere, or a damaged manifest); run says which videos went
    earlier: tuple[str, ...] | None = None


def flickering_values(flicker: FlickerResult, style: MetadataStyle) -> np.ndarray:
    """Metadata values per frame: the tutorial's 1.0 (flagged) / 0.5, or ``0.5 + 0.5 * score``,
    which keeps the same [0.5, 1] range while ranking frames by how badly the object is missed."""
    if style == "binary":
        return np.where(flicker.flag_array, FLAGGED_VALUE, UNFLAGGED_VALUE)
    if style == "score":
        return np.round(0.5 + 0.5 * flicker.score.astype(np.float64), 6)
    raise ValueError(f"flickering metadata must be 'binary' or 'score', got {style!r}")


def flagged_cut(values: np.ndarray, flags: np.ndarray) -> float:
    """The flickering value a video's manifest entry records as its cut: the largest value of a frame it does not
    flag (0.5 where it flags every frame), so the frames past it are exactly the flagged ones (binary: 0.5). Taken
    from the values written rather than from 1 - 0.5 x the assertion IoU: rounding to 6 digits can put a frame the
    float32 comparison flags right on that line. A flagged frame rounded to its unflagged neighbour's value (IoUs
    within 1e-6) is the one frame no cut can tell."""
    unflagged = np.asarray(values, np.float64)[~np.asarray(flags, bool)]
    return float(unflagged.max()) if len(unflagged) else UNFLAGGED_VALUE


def flags_flipped(values: np.ndarray, flags: np.ndarray, above: float) -> list[int]:
    """The frames whose flag the cut ``above`` tells wrongly, which a manifest entry lists (:data:`FLAGS_FLIPPED`).
    None but in improved mode, where a frame with no box near it scores the video's median: an unflagged frame can
    then score above a flagged one, and no cut parts them."""
    return np.flatnonzero(flickering_flags(values, above) != np.asarray(flags, bool)).tolist()


def flags_recorded(values, above: float | None) -> bool:
    """Whether an export's flickering values tell its flags: the tutorial's binary values, or any values with the
    cut its manifest recorded (``above``); not a score export from before the cut was recorded."""
    return above is not None or bool(np.isin(values, (FLAGGED_VALUE, UNFLAGGED_VALUE)).all())


def flickering_flags(values, above: float | None, flipped: Collection[int] = (), frames=None) -> np.ndarray:
    """Which frames an export's flickering values mark flagged: those past the cut its manifest recorded for the
    video (:data:`FLAGGED_ABOVE`) but the ``flipped`` frames it lists, else (an export from before it was recorded)
    the tutorial's 1.0 only, which in a score export counts just the frames whose object is missed outright.
    ``frames``: the frame numbers of ``values`` (default: 0, 1, ...). Every reader of an export's flags asks here."""
    values = np.asarray(values, np.float64)
    flags = (values >= FLAGGED_VALUE) | (values > (FLAGGED_VALUE if above is None else above))
    if len(flipped):
        numbers = np.arange(values.size) if frames is None else np.asarray(frames)
        flags = flags ^ np.isin(numbers, np.fromiter(flipped, np.int64)).reshape(flags.shape)
    return flags


def assertion_flags(metadata: Mapping[str, object], above: float | None, flipped: Collection[int] = (),
                    frames=None) -> np.ndarray:
    """Frames any assertion flags in an export's metadata (per key, a value or one per frame): flickering past
    its cut (:func:`flickering_flags`), or a sibling's (ghost, class flip) 1.0."""
    flags = flickering_flags(metadata[FLICKERING_KEY], above, flipped, frames)
    for key in SIBLING_NAMES:
        if key in metadata:
            flags = flags | (np.asarray(metadata[key], np.float64) >= FLAGGED_VALUE)
    return flags


def export_datasource(
    out_dir: str | Path,
    videos: Sequence[VideoPredictions],
    task: str,
    classes: Sequence[int] | None = None,
    metadata_style: MetadataStyle = "binary",
    imputed_task: str | None = None,
    corrected_task: str | None = None,
) -> ExportSummary:
    """Write ``out_dir/.lightly`` for these videos, check it against every rule of the format, then
    swap it in (replacing an earlier export only once the new one is complete and valid).
    ``corrected_task``: also the videos' corrected boxes as this task, every change listed in
    ``flicker_corrections.json`` beside ``.lightly``."""
    roles = {"boxes": task, "imputed": imputed_task, "corrected": corrected_task}  # what each task holds
    tasks = tuple(name for name in roles.values() if name is not None)
    for name in tasks:
        check_task_name(name)
    if len(set(tasks)) != len(tasks):
        raise ExportError(f"The imputed and corrected boxes need task names of their own, not {task!r} again")
    if corrected_task is not None and any(video.corrections is None for video in videos):
        raise ExportError("A corrected task needs the corrected boxes of every video")
    if not videos:
        raise ExportError("Nothing to export: no videos")
    for video in videos:
        if not is_safe_relpath(video.relpath):
            if not video.relpath.isprintable():  # the likelier cause for one file named on the command line
                raise ExportError(f"Video name {video.relpath[:200]!r} holds a character that is not printable (a "
                                  "newline, a tab, ...), which a Lightly frame name cannot: rename the file")
            raise ExportError(f"Video path {video.relpath[:200]!r} must be relative to the input datasource root, "
                              "without '..' or a backslash")
    for video in videos:
        if video.frames != video.detections.n_frames:
            raise ExportError(f"The detections of {video.relpath} cover {video.detections.n_frames} frames but the "
                              f"video decodes to {video.frames}: run detection again")
    names = videos[0].detections.names
    kept = sorted(classes) if classes is not None else sorted(names)
    target = Datasource(out_dir)
    try:
        files, earlier = _export_locked(target, videos, roles, kept, names, metadata_style)
    except OSError as exc:  # read-only folder, full disk, a file where a folder should be, ...
        raise ExportError(f"Cannot write the export to {target.root}: {exc.strerror or exc}") from None
    return ExportSummary(
        root=target.root,
        tasks=tasks,
        frames=sum(v.frames for v in videos),
        boxes=sum(int(np.isin(v.detections.cls, kept).sum()) for v in videos),
        flagged=sum(v.flagged for v in videos),
        files=files,
        earlier=earlier,
    )


def _export_locked(target: Datasource, videos, roles: dict[str, str | None], kept, names, metadata_style
                   ) -> tuple[int, tuple[str, ...] | None]:
    """The files written, and the videos of the export they replaced (:attr:`ExportSummary.earlier`)."""
    target.root.mkdir(parents=True, exist_ok=True)
    with writing(target.root):
        with staged_dir(target.root, prefix=STAGING_PREFIX) as staging_root:
            staging = Datasource(staging_root)
            files = _write_tree(staging, videos, roles, kept, names, metadata_style)
            _write_manifest(staging, videos, metadata_style)
            if roles["corrected"] is not None:
                write_atomic(staging.corrections, _corrections(roles["corrected"], videos))
            # Validate before the swap: a bad export never replaces a good one.
            violations = validate_datasource(staging.root, {v.relpath: v.frames for v in videos})
            if violations:
                raise ExportError(f"Export failed validation ({len(violations)} problems), first: {violations[0]}")
            swapped = SWAPPED + ((CORRECTIONS,) if staging.corrections.exists() else ())
            earlier = _earlier_videos(target)  # read under the lock, just before the swap: what it really replaces
            swap_in(staging.root, target.root, swapped)
            if len(swapped) == len(SWAPPED):
                target.corrections.unlink(missing_ok=True)  # an earlier export's: it lists another export's changes
    return files, earlier


def _earlier_videos(target: Datasource) -> tuple[str, ...] | None:
    """The videos the export in ``target`` lists; None when it holds no export, empty when its manifest is missing
    or damaged (the swap replaces it whatever it holds)."""
    if not target.exists():
        return None
    try:
        return tuple(entry["relpath"] for entry in read_manifest(target.root))
    except (ExportError, OSError):
        return ()


@contextmanager
def writing(out_dir: Path):
    """The lock every writer of an export folder holds; an interrupted earlier swap is finished (or
    rolled back) first."""
    with exclusive_lock(Path(out_dir), "an export"):
        recover_export(out_dir)
        yield


def _write_manifest(datasource: Datasource, videos: Sequence[VideoPredictions], metadata_style: MetadataStyle) -> None:
    write_manifest(datasource, [_manifest_entry(v, metadata_style) for v in videos])


def _manifest_entry(video: VideoPredictions, metadata_style: MetadataStyle) -> dict:
    values, flags = flickering_values(video.flicker, metadata_style), video.flicker.flag_array
    cut = flagged_cut(values, flags)
    entry = {"relpath": video.relpath, "frames": video.frames, "fingerprint": video.fingerprint,
             "source": str(Path(video.source).resolve()) if video.source else None, "flags": video.flags_digest(),
             FLAGGED_ABOVE: cut}
    flipped = flags_flipped(values, flags, cut)
    if flipped:
        entry[FLAGS_FLIPPED] = flipped
    return entry


def write_manifest(datasource: Datasource, entries: list[dict]) -> None:
    """The list of videos an export holds (what :func:`read_manifest` reads), written durably."""
    write_atomic(datasource.manifest, orjson.dumps({"videos": entries}, option=orjson.OPT_INDENT_2), durable=True)


def recover_export(out_dir: str | Path) -> None:
    """Finish what an interrupted export left in ``out_dir`` (call with the lock held): a staged
    export marked for the swap is rolled forward, an unfinished one deleted."""
    if Path(out_dir).is_dir():
        recover_swaps(Path(out_dir), STAGING_PREFIX)


MAX_MANIFEST_BYTES = 64 << 20
MAX_MANIFEST_FRAMES = 100_000_000  # 38 days at 30 fps; a video past it is not one this tool exported


def earlier_export(out_dir: str | Path, fingerprint: str) -> Path | None:
    """``out_dir`` when it holds an export (from an earlier session) of the video with this content
    ``fingerprint``, by its manifest; None when not, or when the folder cannot be read."""
    try:
        if Datasource(out_dir).exists() and any(entry.get("fingerprint") == fingerprint for entry in read_manifest(out_dir)):
            return Path(out_dir)
    except (ExportError, OSError, ValueError):
        pass
    return None


def exported_flags(out_dir: str | Path, fingerprint: str) -> str | None:
    """The :meth:`VideoPredictions.flags_digest` the export in ``out_dir`` recorded for the video with
    this content ``fingerprint``; None when it holds none (not this video, an older export, unreadable)."""
    try:
        return next((entry.get("flags") for entry in read_manifest(out_dir) if entry.get("fingerprint") == fingerprint), None)
    except (ExportError, OSError, ValueError):
        return None


def read_manifest(out_dir: str | Path) -> list[dict]:
    """The videos of an export: ``[{"relpath", "frames", "source", "fingerprint", "flags", "flagged_above"}]`` (empty
    for older exports; older entries lack the later keys). The file is untrusted input: every entry is checked."""
    path = Datasource(out_dir).manifest
    if not path.is_file():
        return []
    if path.is_symlink() or path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ExportError(f"{path} is not a manifest this tool wrote (a link, or too large); export again")
    try:
        entries = orjson.loads(path.read_bytes())["videos"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ExportError(f"{path} is damaged; export again to recreate it") from None
    if not isinstance(entries, list):
        raise ExportError(f"{path} is damaged; export again to recreate it")
    first_of: dict[str, int] = {}
    for k, entry in enumerate(entries):
        problem = _manifest_entry_problem(entry)
        if problem is None and first_of.setdefault(entry["relpath"], k) != k:  # its frames' files would be read twice
            problem = f"repeats the relpath of videos[{first_of[entry['relpath']]}]"
        if problem:
            raise ExportError(f"{path}: videos[{k}] {problem}; export again to recreate it")
    # a null optional key is an absent one (older entries lack the later keys): `entry.get(key, default)` then holds
    return [{key: value for key, value in entry.items() if value is not None} for entry in entries]


SHOWN_NAMES = 5  # videos an error line names, of an export that holds more


def listed_videos(entries: Sequence[dict]) -> str:
    """The manifest's videos for an error line: the first SHOWN_NAMES, each cut short, and how many more (a
    manifest may list 100,000 long names)."""
    shown = ", ".join(brief(entry["relpath"], 80) for entry in entries[:SHOWN_NAMES])
    return shown + (f" and {len(entries) - SHOWN_NAMES:,} more" if len(entries) > SHOWN_NAMES else "")


def _manifest_entry_problem(entry) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    relpath = entry.get("relpath")
    if not isinstance(relpath, str) or not is_safe_relpath(relpath):
        return f"has an unsafe relpath {str(relpath)[:80]!r} (it must stay inside the input datasource)"
    if not isinstance(entry.get("frames"), int) or isinstance(entry.get("frames"), bool) or entry["frames"] < 1:
        return "has no frame count"
    if entry["frames"] > MAX_MANIFEST_FRAMES:  # every frame's file name is listed or made: 10^12 of them never ends
        return f"has a frame count of {entry['frames']:,} (at most {MAX_MANIFEST_FRAMES:,})"
    for key in ("source", "fingerprint", "flags"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"has a {key} that is not a string"
    cut = entry.get(FLAGGED_ABOVE)
    if cut is not None and not (type(cut) in (int, float) and UNFLAGGED_VALUE <= cut <= FLAGGED_VALUE):
        return f"has a {FLAGGED_ABOVE} that is not a flickering value (0.5 to 1)"
    flipped = entry.get(FLAGS_FLIPPED)
    if flipped is not None and not (isinstance(flipped, list) and len(flipped) <= entry["frames"] and all(
            type(frame) is int and 0 <= frame < entry["frames"] for frame in flipped)):
        return f"has {FLAGS_FLIPPED} that are not frame numbers of the video"
    return None


def is_safe_relpath(relpath: str) -> bool:
    """A video path relative to the input datasource root that cannot climb out of it."""
    parts = PurePosixPath(relpath).parts
    return (bool(parts) and not relpath.startswith("/") and ".." not in parts and "\\" not in relpath and len(relpath) <= 1024
            and relpath.isprintable())  # no NUL, newline or control character: they end up in file names and lines


def read_tasks(out_dir: str | Path) -> list[str]:
    """The prediction tasks an export lists in tasks.json."""
    path = Datasource(out_dir).tasks_file
    try:
        tasks = orjson.loads(read_capped(path, MAX_MANIFEST_BYTES, "tasks.json", follow_symlinks=False))
    except (UserError, orjson.JSONDecodeError):
        raise ExportError(f"{path} is missing, damaged or a link; export again to recreate it") from None
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise ExportError(f"{path} must list the prediction tasks")
    for task in tasks:  # a name like ../../elsewhere or /abs would lead a reader out of the export
        try:
            check_task_name(task)
        except ExportError:
            raise ExportError(f"{path} names a task that is not a plain folder name; export again") from None
    return tasks


def check_datasource_root(out: str | Path, what: str = "--out") -> None:
    """An export's root is the folder that holds .lightly. One given inside a .lightly folder (``--out OUT/.lightly``)
    was written as OUT/.lightly/.lightly, which neither push nor a Lightly worker reads: refused, naming the root meant.
    The path as given and with links followed: either way the files would land inside a datasource."""
    given = Path(os.path.abspath(out))
    try:
        seen = (given, given.resolve())
    except (OSError, RuntimeError):  # a loop of links: check_output_folder says so
        seen = (given,)
    for path in seen:
        inside = next((folder for folder in (path, *path.parents) if folder.name == LIGHTLY_DIR), None)
        if inside is not None:
            where = "is a" if inside == given else f"lies in {inside}, a"
            raise ExportError(f"{what} {out} {where} Lightly datasource's own {LIGHTLY_DIR} folder: give the folder that "
                              f"holds it ({inside.parent})")


def check_task_name(task: str) -> None:
    if (not task or task.startswith(".") or any(c in task for c in "/\\") or not task.isprintable()
            or task != task.strip() or len(task) > MAX_TASK_NAME or task.endswith(".json")):
        raise ExportError(f"Invalid task name {task[:40]!r}: use a plain folder name of at most {MAX_TASK_NAME} "
                          f"characters, such as {DEFAULT_TASK}")


def prediction_schema(kept: Sequence[int], names: Sequence[str]) -> bytes:
    """A task's ``schema.json``, byte for byte what ``lightly.utils.io.save_schema`` writes (a test
    holds them equal). Written here because importing ``lightly`` costs every run seconds."""
    return json.dumps({"task_type": "object-detection",
                       "categories": [{"id": i, "name": names[i]} for i in kept]}).encode()


def prediction_tasks(tasks: Sequence[str]) -> bytes:
    """``tasks.json``, as ``lightly.utils.io.save_tasks`` writes it."""
    return json.dumps(list(tasks)).encode()


def _corrections(task: str, videos: Sequence[VideoPredictions]) -> bytes:
    return orjson.dumps({"task": task, "videos": {video.relpath: list(video.corrections.changes) for video in videos}},
                        option=orjson.OPT_INDENT_2)


def _write_tree(staging: Datasource, videos, roles: dict[str, str | None], kept, names, metadata_style) -> int:
    tasks = [name for name in roles.values() if name is not None]
    for name in tasks:
        staging.task_dir(name).mkdir(parents=True)
        _write_new_file(staging.task_schema(name), prediction_schema(kept, names))
    _write_new_file(staging.tasks_file, prediction_tasks(tasks))
    staging.metadata.mkdir(parents=True)
    staging.metadata_schema.write_bytes(orjson.dumps(metadata_schema(videos), option=orjson.OPT_INDENT_2))

    writes: list[tuple[Path, bytes]] = []
    for video in videos:
        writes.extend(video_files(staging, video, roles, kept, metadata_style))
    for folder in {path.parent for path, _ in writes}:
        folder.mkdir(parents=True, exist_ok=True)
    for path, data in writes:
        _write_new_file(path, data)
    return len(writes) + len(tasks) + 2


def metadata_schema(videos: Sequence[VideoPredictions]) -> list[dict]:
    """Flickering, then every sibling assertion the videos carry (all of them the same)."""
    keys = [key for key, _ in videos[0].siblings]
    if any([key for key, _ in video.siblings] != keys for video in videos):
        raise ExportError("The videos of one export must carry the same assertions")
    return metadata_schema_of(keys)


def metadata_schema_of(sibling_keys: Sequence[str]) -> list[dict]:
    """The metadata schema.json of videos carrying these sibling assertions' keys (flickering first)."""
    return METADATA_SCHEMA + [{"name": SIBLING_NAMES[key], "path": key, "defaultValue": 0.0, "valueDataType": "NUMERIC_FLOAT"}
                              for key in sibling_keys]


def _write_new_file(path: Path, data: bytes) -> None:
    """Raw os calls: ~7x faster than Path.write_bytes for tens of thousands of tiny files. Only for
    files inside a fresh staging folder (atomicity comes from the swap)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def video_files(datasource: Datasource, video: VideoPredictions, roles: dict[str, str | None], kept: Sequence[int],
                metadata_style: MetadataStyle) -> Iterator[tuple[Path, bytes]]:
    """Every per-frame file of one video as (path, bytes), paths under ``datasource``: each task's
    predictions (the detections, and where named the imputed and the corrected boxes), metadata."""
    n = video.detections.n_frames
    flicker = video.flicker
    boxes_of = {
        "boxes": lambda: video.detections,
        "imputed": lambda: Detections(flicker.imputed_frame, flicker.imputed_xyxy, np.ones(len(flicker.imputed_frame)),
                                      flicker.imputed_cls, video.detections.names, n, video.detections.image_size),
        "corrected": lambda: video.corrections.detections,
    }
    streams = [(name, _frame_predictions(boxes_of[role](), kept)) for role, name in roles.items() if name is not None]
    values = flickering_values(video.flicker, metadata_style).tolist()
    siblings = [(key, np.where(flags, 1.0, 0.0).tolist()) for key, flags in video.siblings]
    name_of = frame_namer(video.relpath, n)
    for frame in range(n):
        stem = name_of(frame)
        file_name = image_name(stem)
        for task, predictions_of in streams:
            yield datasource.prediction_file(task, stem), orjson.dumps({"file_name": file_name,
                                                                         "predictions": predictions_of(frame)})
        metadata = {"file_name": file_name, "type": "frame",
                    "metadata": {FLICKERING_KEY: values[frame], **{key: flags[frame] for key, flags in siblings}}}
        yield datasource.metadata_file(stem), orjson.dumps(metadata)


def _frame_predictions(detections: Detections, kept: Sequence[int]):
    """A function giving one frame's Lightly predictions of the kept classes (columns converted once)."""
    keep = np.isin(detections.cls, kept).tolist()
    bbox = lightly_xywh(detections.xyxy, detections.image_size).tolist()
    score = np.clip(detections.score, 0.0, 1.0).astype(np.float64).tolist()
    cls = detections.cls.tolist()
    offsets = detections.offsets.tolist()
    return lambda frame: [{"category_id": cls[k], "bbox": bbox[k], "score": score[k]}
                          for k in range(offsets[frame], offsets[frame + 1]) if keep[k]]


def sample_files(out_dir: str | Path, task: str, search: int = 2000) -> tuple[tuple[Path, dict], tuple[Path, dict]] | None:
    """A prediction file with boxes and its metadata file, each with its content as read here (once: the page
    shows what was checked), to show a user what was written: the first flagged frame among the first ``search``
    files with boxes, else the first frame with boxes. Flagged as every reader reads it (:func:`assertion_flags`):
    past its own video's recorded cut, but for the frames the manifest lists as told wrongly by it."""
    first = None
    for prediction, metadata, (above, flipped, frame) in _exported_frames(Datasource(out_dir), task):
        if not (boxes := exported_document(prediction) or {}).get("predictions"):
            continue
        values = (document := exported_document(metadata) or {}).get("metadata")
        if not isinstance(values, dict):
            continue  # both are shown: a metadata file damaged or linked since is passed over too
        pair = (prediction, boxes), (metadata, document)
        first = first or pair
        if search <= 0:
            break
        search -= 1
        try:
            if assertion_flags(values, above, flipped, frame):
                return pair
        except (KeyError, ValueError, TypeError):  # its flickering value gone or not a number since the export
            continue
    return first


MAX_SAMPLE_BYTES = 16 << 20  # one frame's file: a few KiB in practice


def exported_document(path: Path) -> dict | None:
    """An exported frame's JSON file as the sample shows it; None when the file is gone, damaged, not a regular
    file or a link (changed since the export: the page shows it on every rerun, and passes over such a file rather
    than stop or follow a link out of the export)."""
    try:
        document = orjson.loads(read_capped(path, MAX_SAMPLE_BYTES, "An exported file", follow_symlinks=False))
    except (UserError, orjson.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


FrameReading = tuple[float | None, Collection[int], int | None]  # how a frame's flags are read: cut, flipped, frame


def _exported_frames(datasource: Datasource, task: str) -> Iterator[tuple[Path, Path, FrameReading]]:
    """Each exported frame's prediction and metadata file, and how to read its flags: video by video as the
    manifest lists them (a video's listing ends at its first missing file: a manifest is untrusted), else
    (none, or one damaged since: drawn on each rerun after an export, it must not stop the page) every
    prediction file in name order, read with the tutorial's 1.0. Nothing is read through a link: a file whose
    path leads out of the export's .lightly folder (a folder on the way made a link since) is passed over."""
    if datasource.lightly.is_symlink():
        return
    lightly = datasource.lightly
    try:
        entries = read_manifest(datasource.root)
    except (ExportError, OSError, ValueError):
        entries = []
    for entry in entries:
        name_of = frame_namer(entry["relpath"], entry["frames"])
        above, flipped = entry.get(FLAGGED_ABOVE), frozenset(entry.get(FLAGS_FLIPPED, ()))
        for frame in range(entry["frames"]):
            prediction = datasource.prediction_file(task, name_of(frame))
            if not prediction.is_file():
                break
            # each frame's own flip alone: a manifest may list a million, and a sample reads up to 2,000 frames
            pair = prediction, datasource.metadata_file(name_of(frame))
            if all(within(path, lightly) for path in pair):
                yield *pair, (above, (frame,) if frame in flipped else (), frame)
    if not entries:
        task_dir = datasource.task_dir(task)
        for path in sorted(task_dir.rglob("*.json")):
            pair = path, datasource.metadata / path.relative_to(task_dir)
            if path.name != "schema.json" and all(within(path, lightly) for path in pair):
                yield *pair, (None, (), None)


def zip_datasource(out_dir: str | Path) -> bytes:
    """The whole .lightly folder as a zip (paths start with .lightly/), for a download button. Made
    under the export's lock: an export writing the folder meanwhile (another tab, a batch) makes it
    refuse in one line rather than zip half of each."""
    datasource = Datasource(out_dir)
    buffer = io.BytesIO()
    with exclusive_lock(Path(out_dir), "an export"), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in datasource.files():
            archive.write(path, path.relative_to(datasource.root).as_posix())
    return buffer.getvalue()
