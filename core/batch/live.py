"""The combined export under ``--out``, grown one video at a time and valid after every one, and the
done markers that make a batch resumable."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections import Counter
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import orjson

from core import paths
from core.batch.sources import BatchProgress, Detected, VideoRow, VideoSource, identity_of
from core.bounded import printable, read_capped
from core.errors import ExportError, UserError
from core.fleet import DONE_DIR, MAX_MARKER_BYTES
from core.lightly.datasource import Datasource, frame_namer
from core.lightly.export import (VideoPredictions, export_datasource, metadata_schema_of, read_manifest, read_tasks,
                                 write_manifest)
from core.run import ExportOptions, RunConfig
from core.words import counted

STAGING_PREFIX = ".batch.partial-"
CHANGED = "the video changed since"  # why a video is done again: another file, or other bytes, where it was
COUNTED = "any assertion"  # what a done marker's row counts as flagged (markers without it: flicker's flags alone)


class LiveExport:
    """The datasource under ``--out``, grown one video at a time and valid after every one."""

    def __init__(self, out: Path, options: ExportOptions, classes: list[int] | None, names: dict[int, str],
                 sibling_keys: tuple[str, ...] = ()):
        self.options = options
        self.sibling_keys = sibling_keys  # the metadata keys of ghost / class_flip each video carries
        self.datasource = Datasource(out)
        self.tasks = [options.task] + ([options.imputed_task] if options.imputed_task else [])
        self.classes = classes
        self.entries = _manifest_entries(out)
        for leftover in out.glob(STAGING_PREFIX + "*"):  # a killed run's half-moved video
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
        try:  # written once too: with other assertions, later videos' keys were left undeclared (or declared, and absent)
            declared = orjson.loads(self.datasource.metadata_schema.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            declared = None
        if declared != metadata_schema_of(self.sibling_keys):
            raise ExportError(f"{self.datasource.root} holds an export of other assertions (its metadata schema): use the "
                              "same --assertions, or another --out")

    def add(self, video: VideoPredictions, source: VideoSource) -> None:
        """Export the video alone beside the live tree (validated), rename its frame files in, then
        list it in the manifest."""
        with paths.staged_dir(self.datasource.root, prefix=STAGING_PREFIX) as staging_root:
            export_datasource(staging_root, [video], self.options.task, self.classes, self.options.metadata_style,
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
        paths.check_no_links(self.datasource.root, self.datasource.manifest, "The batch's export")
        write_manifest(self.datasource, sorted(self.entries.values(), key=_relpath))
        if previous is not None:
            self._remove_stale_frames(video.relpath, previous["frames"], entry["frames"])

    def _move_frame_files(self, staged: Datasource) -> None:
        layout = {staged.tasks_file, staged.metadata_schema, *(staged.task_schema(task) for task in self.tasks)}
        checked: set[Path] = set()
        for path in staged.files():
            if path in layout:
                continue
            target = self.datasource.root / path.relative_to(staged.root)
            if target.parent not in checked:  # a few folders for thousands of frame files
                paths.check_no_links(self.datasource.root, target, "The batch's export")
                checked.add(target.parent)
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

    def __init__(self, out: Path, settings: dict[str, object], siblings: bool = False, names: dict[int, str] | None = None):
        self.out = out
        self.names = names or {}  # the model's class names, to say which classes a run kept
        self.siblings = siblings  # ghost or class flip is on: a row that counted flicker's flags alone is done again
        self.folder = out / DONE_DIR  # .batch/done, beside .lightly: the datasource itself stays pure
        self.settings = settings  # batch_settings(): kept in each marker, to say what changed since
        self.params = parameters_key(settings)
        self.redone: Counter[str] = Counter()  # why videos an earlier run did are done again, and how many

    def _path(self, relpath: str) -> Path:
        """The marker's path, once no folder on the way from ``--out`` is a link (through a planted
        one, the next run would write its markers wherever it points)."""
        return paths.check_no_links(self.out, self.folder / f"{relpath}.json", "The batch's state")

    def done_rows(self, sources: Sequence[VideoSource], exported: dict[str, dict], progress: BatchProgress
                  ) -> dict[str, VideoRow]:
        """The earlier rows (status skipped) of the videos done with these parameters, still unchanged and still in the
        export (``exported``: the manifest's entries by relpath). A local video whose marker does not name the file it
        is now (a marker from before markers named it, a copy) is read again for its content key, with ``progress``."""
        earlier = [found for source in sources if (found := self._earlier(source, exported.get(source.relpath)))]
        rows = {found.source.relpath: found.row for found in earlier if _trusted(found)}
        unproven = [found for found in earlier if found.source.relpath not in rows]
        rows.update((found.source.relpath, found.row) for found in self._read_again(unproven, progress))
        return rows

    def _earlier(self, source: VideoSource, exported: dict | None) -> _Earlier | None:
        """The video's marker, when an earlier run did it with these parameters, its size and mtime are the same and
        the export (``exported``: its manifest entry, None when the export lacks it) was made of the content the marker
        names; whether the file still holds that content is checked after (done_rows)."""
        path = self._path(source.relpath)
        if exported is None or not path.is_file():
            return None
        try:
            marker = orjson.loads(read_capped(path, MAX_MARKER_BYTES, "Done marker", follow_symlinks=False))
            if marker["params"] != self.params:
                self.redone[self._changed(marker.get("settings"))] += 1
                return None
            fingerprint = exported.get("fingerprint")
            # a marker's content key other than the export's: a run with other parameters redid the video (another
            # content) and stopped before its own marker was written
            if marker["version"] != source.version or marker.get("fingerprint", fingerprint) != fingerprint:
                self.redone[CHANGED] += 1
                return None
            if self.siblings and marker.get("counted") != COUNTED:
                self.redone["its flagged count was flicker's alone (done before ghost and class flip were counted)"] += 1
                return None
            return _Earlier(source, marker, replace(_checked_row(marker["row"]), status="skipped"), fingerprint)
        except (UserError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None  # a damaged marker only costs a re-run of that video

    def _read_again(self, unproven: list[_Earlier], progress: BatchProgress) -> Iterator[_Earlier]:
        """The videos that still hold the content their export was made from, each read whole (or its content key
        remembered for this very file); a proven video's marker then names its file, so no later run reads it."""
        identities = [identity_of(found.source) for found in unproven]
        total, done = sum(identity[2] for identity in identities if identity), 0
        for found, identity in zip(unproven, identities):
            if identity is None:  # a FIFO (its open waits for a writer forever), a device, a file gone: no video
                self.redone[CHANGED] += 1
                continue
            progress.checking(found.source.relpath, done, total)
            if _content_key(found.source) != found.fingerprint:
                self.redone[CHANGED] += 1
            else:
                if identity_of(found.source) == identity:  # not written to while it was read
                    self._upgrade(found, identity)
                yield found
            done += identity[2]
        if any(identities):
            progress.checking("", total, total)

    def _upgrade(self, found: _Earlier, identity: list[int]) -> None:
        """Name the file in a proven video's marker, which keeps its time: Fleet reads a marker newer than summary.csv
        as a video done since (by a batch stopped before its summary), and this run did not do the video."""
        path = self._path(found.source.relpath)
        earlier = path.stat()
        self._write(found.source.relpath, {**found.marker, "fingerprint": found.fingerprint, "identity": identity})
        os.utime(path, ns=(earlier.st_atime_ns, earlier.st_mtime_ns))

    def _changed(self, earlier) -> str:
        """What differs between the settings a marker kept and this run's, in the options' words."""
        changed = [self._difference(name, earlier.get(name), now)
                   for name, now in self.settings.items() if isinstance(earlier, dict) and earlier.get(name) != now]
        # no settings kept: a marker from before markers kept them
        return f"the earlier run had {', '.join(changed) or 'other settings'}"

    def _difference(self, name: str, earlier, now) -> str:
        if name == CLASSES:
            return f"{name} {self._classes(earlier)} (now {self._classes(now)})"
        if name == FLICKER_SETTINGS and isinstance(earlier, str) and (fields_changed := _flicker_changes(earlier, now)):
            return ", ".join(fields_changed)
        if name.startswith(("the ", "flicker")):
            return f"other {name.removeprefix('the ')}"
        return f"{name} {_brief(earlier)} (now {_brief(now)})"

    def _classes(self, ids) -> str:
        """Classes by name as --classes takes them; "all" for none given."""
        if ids is None:
            return "all"
        return _brief([self.names.get(i, i) if isinstance(i, int) else i for i in ids]) if isinstance(ids, list) else _brief(ids)

    def notes(self) -> tuple[str, ...]:
        """One line per reason a video an earlier run did is done again."""
        return tuple(f"{counted(n, 'video')} done again: {reason}" for reason, n in self.redone.most_common())

    def mark(self, detected: Detected, row: VideoRow) -> None:
        """Write the marker of a video just exported. It names the file (identity_of) only when the file still has the
        identity it had before it was hashed for the export: a marker vouches for no bytes other than those exported."""
        source = detected.source
        identity = detected.identity if detected.identity is not None and detected.identity == identity_of(source) else None
        self._write(source.relpath, {"params": self.params, "version": source.version, "row": asdict(row),
                                     "settings": self.settings, "counted": COUNTED, "fingerprint": detected.info.fingerprint,
                                     "identity": identity})

    def _write(self, relpath: str, marker: dict) -> None:
        path = self._path(relpath)
        if paths.is_special_file(path):  # a pipe, or a link to /dev/null, where the batch keeps its own state: read as a
            path.unlink()  # damaged marker (_earlier), then replaced as one; refused, it stopped every run at its video
        paths.write_atomic(path, orjson.dumps(marker), durable=True)


class _Earlier(NamedTuple):
    """A video an earlier run did with this run's parameters; the export holds it."""

    source: VideoSource
    marker: dict
    row: VideoRow  # the marker's, status skipped
    fingerprint: object  # the export's content key of the video (manifests before content keys: None)


def _trusted(found: _Earlier) -> bool:
    """Whether the video is the one done without reading it: a bucket object (its ETag is its content's), an export from
    before content keys, or a file with the very identity its marker names beside this content key. Device, inode and
    ctime cannot be given to another file (ctime is the kernel's, set on every change), so a copy, a file written over
    or a marker edited to name another file's identity is read, never trusted."""
    source, marker = found.source, found.marker
    if source.remote or not isinstance(found.fingerprint, str):
        return True
    identity = identity_of(source)
    return identity is not None and marker.get("identity") == identity and marker.get("fingerprint") == found.fingerprint


def _content_key(source: VideoSource) -> str | None:
    """The local video's content key (SHA-256, remembered per file identity); None when it cannot be read now (its
    run then says why)."""
    try:
        return paths.content_key(Path(source.location))
    except OSError:
        return None


_ROW_TYPES = {f.name: (str,) if f.type == "str" else (int,) if f.type == "int" else (int, float) for f in fields(VideoRow)}


def _checked_row(values: dict) -> VideoRow:
    """A marker's summary row, each field of its own type (TypeError otherwise: a damaged marker)."""
    if set(values) != set(_ROW_TYPES) or any(isinstance(values[name], bool) or not isinstance(values[name], types)
                                             for name, types in _ROW_TYPES.items()):
        raise TypeError("not a summary row")
    return VideoRow(**values)


CLASSES = "--classes"
FLICKER_SETTINGS = "flicker settings (--mode, --iou-track, --iou-assert, --assertions)"
# FlickerSettings' fields in a marker's repr() of them, in the words of the option or widget that sets each
_FLICKER_FIELDS = {"iou_track": "--iou-track", "iou_assert": "--iou-assert", "mode": "--mode", "min_score": "minimum score",
                   "assertions": "--assertions", "class_aware": "class-aware matching", "one_to_one": "one-to-one matching",
                   "window": "window", "empty_window_median": "empty-window median"}
_MODE_TOGGLES = ("class_aware", "one_to_one", "window", "empty_window_median")
_FIELD = re.compile(r"(\w+)=(\([^()]*\)|[^,()]+)")  # name=value, a value being a tuple or up to the next , or )


def _flicker_changes(earlier: str, now: str) -> list[str]:
    """``--iou-track 0.8 (now 0.7)`` for each field that differs between two FlickerSettings reprs (a marker's, which
    may be anything, and this run's); none when they cannot be compared."""
    before, after = dict(_FIELD.findall(earlier[:2000])), dict(_FIELD.findall(now))
    changed = [field for field in _FLICKER_FIELDS if field in before and field in after and before[field] != after[field]]
    if "mode" in changed:  # the improved mode's toggles come with it
        changed = [field for field in changed if field not in _MODE_TOGGLES]
    return [f"{_FLICKER_FIELDS[field]} {_setting(before[field])} (now {_setting(after[field])})" for field in changed]


def _setting(text: str) -> str:
    """A repr'd value as an option takes it: ``('flicker', 'ghost')`` -> ``flicker,ghost``."""
    return _brief(text.strip("()").replace("'", "").replace(" ", "").rstrip(","))


def batch_settings(options: RunConfig, fingerprint: str, classes: list[int] | None) -> dict[str, object]:
    """Everything that changes a video's exported files, named by the options that set it."""
    flicker = options.flicker
    if flicker.min_score <= options.detector.conf:  # no box under the floor was kept: the same flags as no minimum
        flicker = replace(flicker, min_score=0.0)  # (the Load page's minimum starts at the floor, the CLI's at 0)
    return {"the detector (--weights, --backend)": fingerprint, "--conf": options.detector.conf, CLASSES: classes,
            FLICKER_SETTINGS: repr(flicker),
            "--task": options.export.task, "--flickering": options.export.metadata_style,
            "--imputed-task": options.export.imputed_task}


def parameters_key(settings: dict[str, object]) -> str:
    """The digest a done marker is matched by (of the values in order, as markers have always had it)."""
    return hashlib.blake2b(orjson.dumps(list(settings.values())), digest_size=16).hexdigest()


def _brief(value) -> str:
    """A setting as an option would give it; a marker's (a file) in one short printable piece."""
    text = "none" if value is None else " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return printable(text)[:40]
