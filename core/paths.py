"""Where the app keeps its files, how it hashes them and how it writes them without tearing.

* ``cache_dir()``: detections and seek proxies, safe to delete (``FLICKER_CACHE_DIR``).
* ``data_dir()``: uploads and verdicts, the user's work (``FLICKER_DATA_DIR``).
* ``write_atomic`` / ``staged_dir``: a reader (or a crash) sees the old file or the new one, never
  half of one. Temporary names are unique per call, so two processes never collide.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = ROOT / "samples" / "vtest.avi"
_HASH_CHUNK = 1 << 22


def cache_dir() -> Path:
    return Path(os.environ.get("FLICKER_CACHE_DIR") or Path.home() / ".cache" / "flicker-review")


def data_dir() -> Path:
    return Path(os.environ.get("FLICKER_DATA_DIR") or Path.home() / ".local" / "share" / "flicker-review")


def hash_file(path: Path, digest_size: int = 16) -> str:
    """BLAKE2b of the whole file's content (hex)."""
    digest = hashlib.blake2b(digest_size=digest_size)
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: str | Path, data: bytes | Callable[[object], None], durable: bool = False) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file object) to ``path`` through
    a uniquely named temporary file beside it and one rename. ``durable`` fsyncs the file and its
    folder, for the user's work (verdicts, manifests); caches skip it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A fresh, uniquely named folder inside ``parent`` to build a tree in; removed on failure (and
    after success if the caller left anything in it). Swapping the result in is the caller's job."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
