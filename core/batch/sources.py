"""What both batch engines share: the video sources the inputs name (files, folders, globs, bucket
prefixes), a local copy of each, and what an engine hands back and reports."""
from __future__ import annotations

import fnmatch
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Iterator, Protocol, Sequence

from core import paths
from core.backends import describe
from core.bounded import inert_cell
from core.detections import Detections
from core.errors import CloudError, UserError
from core.lightly.push import BACKENDS, filesystem
from core.secrets import mask
from core.sources import find_videos, links_outside_roots
from core.video import VIDEO_EXTENSIONS, VideoInfo

TIMING_COLUMNS = ("decode_s", "detect_s")
_GLOB_MAGIC = re.compile(r"[*?[]")


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
    identity: list[int] | None = None  # the local file's identity_of() when it was probed (and hashed)


MAX_CELL_CHARS = 8000  # an error can quote a whole file's worth of text


@dataclass(frozen=True)
class VideoRow:
    """One line of summary.csv."""

    relpath: str
    source: str
    status: str  # done, skipped (done by an earlier run with the same parameters), failed
    error: str = ""
    frames: int = 0
    boxes: int = 0
    flagged: int = 0  # frames any enabled assertion flags (flicker, ghost, class flip): what Fleet shows
    decode_s: float = 0.0
    detect_s: float = 0.0

    @property
    def flagged_share(self) -> float:
        return self.flagged / self.frames if self.frames else 0.0

    def csv_fields(self) -> dict[str, str | int]:
        # a cell within MAX_CELL_CHARS: Python's csv reader (the Fleet page's) refuses a field past 131,072 characters
        values = {name: inert_cell(value)[:MAX_CELL_CHARS] if isinstance(value, str) else value
                  for name, value in asdict(self).items()}
        values["flagged_share"] = f"{self.flagged_share:.4f}"
        values.update({name: f"{values[name]:.3f}" for name in TIMING_COLUMNS})
        return values


SUMMARY_COLUMNS = (*(f.name for f in fields(VideoRow) if f.name not in TIMING_COLUMNS), "flagged_share", *TIMING_COLUMNS)


class BatchProgress:
    """What the engines and the driver report while they work; this base reports nowhere."""

    def started(self, videos: int, skipped: Sequence[VideoRow]) -> None:
        """The inputs name ``videos`` videos, of which ``skipped`` (their rows, in input order) were done by an earlier run
        with the same settings and are in the export already: they are not run again, and count as done from the start.
        Said once, after any checking and before the first video is opened."""

    def probed(self, frames: int, relpath: str = "") -> None:
        """The video ``relpath`` was opened: ``frames`` more to detect."""

    def detected(self, frames: int) -> None:
        """``frames`` more frames went through the detector (or came from its cache)."""

    def finished(self, row: VideoRow) -> None:
        """A video is done (it is in the export by now) or failed."""

    def checking(self, relpath: str, done: int, total: int) -> None:
        """Before any detection, done videos whose markers do not know their file (an older marker, a copy) are read
        again to check they still hold what was exported: ``done`` of ``total`` bytes read so far, ``relpath`` being
        read now ("" once all are)."""


class Engine(Protocol):
    names: dict[int, str]  # the detector's classes
    fingerprint: str  # the detector's, as in the detection cache key

    def detect(self, sources: Sequence[VideoSource], classes: list[int] | None, progress: BatchProgress) -> Iterator[Detected]:
        """One :class:`Detected` per source, in any order; a bad video is an error, never an exception."""

    def close(self) -> None:
        """Release workers."""



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
    try:
        status = path.stat()
    except OSError:  # a link to nothing: listed, and its row says why it failed
        status = path.lstat()
    return VideoSource(str(path.absolute()), relpath, f"{status.st_size}:{status.st_mtime_ns}")  # workers have other cwds


def _static_prefix(pattern: str) -> str:
    """The folders of a glob before its first wildcard: relpaths start below it."""
    parts = pattern.split("/")
    fixed = next(i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part))
    return "/".join(parts[:fixed])


def _glob_sources(pattern: str) -> list[VideoSource]:
    """The video files a glob matches (``**`` goes down folders), as buckets glob."""
    prefix = _static_prefix(pattern)
    base = Path(prefix or ("/" if pattern.startswith("/") else "."))
    parts = [part for part in pattern[len(prefix):].split("/") if part] + ([""] if pattern.endswith("/") else [])
    matches = sorted(set(_globbed(base, parts)))
    sources = [_local_source(match, match.relative_to(base).as_posix()) for match in matches  # as find_videos
               if not match.is_dir() and match.suffix.lower() in VIDEO_EXTENSIONS and not links_outside_roots(match, base)]
    if not sources:
        raise UserError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) match {pattern}")
    return sources


def _globbed(folder: Path, parts: list[str]) -> Iterator[Path]:
    """What ``glob.glob(folder/parts, recursive=True)`` matches, but ``**`` never goes through a link to a
    folder, as a folder input never does: glob's did, and one link back to a parent listed each video
    below it 41 times; two, without end. A wildcard part that names a link to a folder still reads it."""
    if not parts:
        yield folder
        return
    part, rest = parts[0], parts[1:]
    if not part:  # the pattern ended with a slash: folders only
        if folder.is_dir():
            yield folder
    elif part == "**":
        yield from _globbed(folder, rest)
        for child in _entries(folder, part):
            if child.is_dir(follow_symlinks=False):
                yield from _globbed(Path(child.path), parts)
            elif not rest:  # a trailing ** matches files too
                yield Path(child.path)
    elif _GLOB_MAGIC.search(part):
        for child in _entries(folder, part):
            if fnmatch.fnmatchcase(child.name, part) and (not rest or child.is_dir()):
                yield from _globbed(Path(child.path), rest)
    elif os.path.lexists(folder / part):
        yield from _globbed(folder / part, rest)


def _entries(folder: Path, part: str) -> list[os.DirEntry]:
    """The entries of ``folder`` a glob part may match: hidden ones only for a part that starts with a dot."""
    try:
        with os.scandir(folder) as entries:
            return [e for e in entries if part.startswith(".") or not e.name.startswith(".")]
    except OSError:  # not a folder, or unreadable: it matches nothing, as in glob
        return []


def _bucket_sources(url: str) -> list[VideoSource]:
    """A bucket prefix (recursive), one object, or a glob, listed once with sizes and ETags."""
    protocol = url.split("://", 1)[0].lower()
    if protocol not in BACKENDS:
        raise UserError(f"{protocol}:// is not a bucket batch reads: give s3://, gs:// or az:// URLs, or local paths")
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


def identity_of(source: VideoSource) -> list[int] | None:
    """What a done marker knows a local video's file by: [device, inode, size, mtime, ctime], from one stat; None for a
    bucket object and for anything but a regular file (a FIFO's open waits for a writer forever). The kernel sets
    ctime on every change and no call sets it back, so a copy (`cp -p` keeps mtime only) or a rewrite never has the
    identity of the file a marker was written for. Unlike :func:`core.paths.file_identity`, no path: a marker is
    matched by relpath, and a folder moved to another place holds the same files."""
    if source.remote:
        return None
    try:
        status = os.stat(source.location)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return list(paths.stat_identity(status))  # a list: what a marker's JSON reads back


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
