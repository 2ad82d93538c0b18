"""Files uploaded through the app, kept under the data folder in a folder named by their content.

Named by content so that uploading the same file again finds the copy already kept; written through
``paths.atomic_path`` so that an upload that fails half-way leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Iterator

from core import paths
from core.errors import UserError

CHUNK = 1 << 22  # read in pieces: an upload of several GB is never a second whole copy in memory


def uploads_dir() -> Path:
    return paths.data_dir() / "uploads"


def save_upload(name: str, upload: BinaryIO) -> Path:
    """Keep ``upload`` as ``uploads/<content key>/<name>`` (only the last part of ``name`` is used)
    and return that path. The content is read twice, once for its key and once to copy it, because
    the file's name depends on its content and the copy is written in place under that name."""
    digest = hashlib.sha256()
    for chunk in _chunks(upload):
        digest.update(chunk)
    target = uploads_dir() / digest.hexdigest()[:16] / _file_name(name)
    if target.is_file():
        return target
    try:
        with paths.atomic_path(target) as partial, partial.open("wb") as out:
            for chunk in _chunks(upload):
                out.write(chunk)
    except BaseException:
        with suppress(OSError):
            target.parent.rmdir()  # the folder made for it, when nothing else is kept there
        raise
    return target


@contextmanager
def upload_as_file(name: str, upload: BinaryIO, limit: int) -> Iterator[Path]:
    """``upload`` as a file named like it (last part only) in a private temporary folder, for a
    reader that takes a path, removed again on leaving (nothing of it is kept, read or refused).
    At most ``limit`` + 1 bytes are copied: a reader that caps at ``limit`` then refuses it. A
    :class:`~core.errors.UserError` from the reader names the file as uploaded, without that folder."""
    with tempfile.TemporaryDirectory(prefix="flicker-upload-") as folder:
        target = Path(folder) / _file_name(name)
        with target.open("wb") as out:
            upload.seek(0)
            left = limit + 1
            while left > 0 and (chunk := upload.read(min(CHUNK, left))):
                out.write(chunk)
                left -= len(chunk)
        try:
            yield target
        except UserError as error:  # the file as the user named it, not the private folder it passed through
            message = str(error)
            for private in (target.resolve(), target):  # resolved first: a reader may quote either
                message = message.replace(str(private), target.name)
            for private in (Path(folder).resolve(), Path(folder)):
                message = message.replace(f"{private}/", "").replace(str(private), "the upload")
            raise type(error)(message) from None


def discard_upload(path: Path) -> None:
    """Delete a file kept by :func:`save_upload` (one the app cannot use), with its content folder."""
    if path.parent.parent == uploads_dir():
        shutil.rmtree(path.parent, ignore_errors=True)


def _chunks(upload: BinaryIO) -> Iterator[bytes]:
    upload.seek(0)
    return iter(lambda: upload.read(CHUNK), b"")


MAX_NAME_BYTES = 200  # file systems take 255 bytes a name: 100 CJK characters are 300 in UTF-8


def _file_name(name: str) -> str:
    """The last part of an uploaded name (a hostile client may send ``../../x``), control characters
    (NUL among them) made "_", and cut to MAX_NAME_BYTES keeping its suffix (a long name a Mac takes
    crashed the page: "File name too long"); a name that is no file name (``..``) becomes ``upload``."""
    base = "".join("_" if ord(c) < 32 or ord(c) == 127 else c for c in Path(name).name)
    if base in ("", ".", ".."):
        return "upload"
    suffix = Path(base).suffix if len(Path(base).suffix.encode()) <= 16 else ""
    stem = (base[: len(base) - len(suffix)] if suffix else base).encode()
    # cut in bytes, once (a name of a megabyte cut a character at a time took quadratic time); a
    # character the cut splits is left out whole
    return stem[: MAX_NAME_BYTES - len(suffix.encode())].decode("utf-8", "ignore") + suffix
