"""Where the app keeps its files, how it hashes them and how it writes them without tearing.

* ``cache_dir()``: detections and seek proxies, safe to delete (``FLICKER_CACHE_DIR``).
* ``data_dir()``: uploads and verdicts, the user's work (``FLICKER_DATA_DIR``).
* ``atomic_path`` / ``write_atomic``: a reader (or a crash) sees the old file or the new one, never
  half of one. Temporary names are unique per call, so two processes never collide.
* ``staged_dir`` + ``swap_in``: a tree built beside its target and swapped in whole, a crash at any
  point finished by ``recover_swaps``.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = ROOT / "samples" / "vtest.avi"


def cache_dir() -> Path:
    return Path(os.environ.get("FLICKER_CACHE_DIR") or Path.home() / ".cache" / "flicker-review")


@contextmanager
def caching_in(folder: Path | None) -> Iterator[None]:
    """Every cache (detections, seek proxies, file hashes, staged copies) under ``folder`` while the block
    runs, as FLICKER_CACHE_DIR would put it; None leaves the setting as it is. The variable is set, not
    passed down, so that helpers reaching for :func:`cache_dir` and processes started inside follow it."""
    with environment_set("FLICKER_CACHE_DIR", None if folder is None else str(Path(folder).absolute())):
        yield


@contextmanager
def environment_set(name: str, value: str | None) -> Iterator[None]:
    """The environment variable ``name`` is ``value`` while the block runs, and what it was after (unset if it
    was); None leaves it as it is."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def data_dir() -> Path:
    return Path(os.environ.get("FLICKER_DATA_DIR") or Path.home() / ".local" / "share" / "flicker-review")


DEFAULT_RESULTS_CACHE_GB = 5.0  # detections and imported predictions kept at most: ~2 MB for a 10-minute video's


def gigabytes_setting(variable: str, default: float) -> int:
    """A size in bytes from the environment variable ``variable`` (in GB), else ``default`` GB; a
    value that is not a finite number is the default, a negative one 0."""
    text = os.environ.get(variable, "").strip()
    try:
        gigabytes = float(text) if text else default
    except ValueError:
        gigabytes = default
    if not math.isfinite(gigabytes):  # "nan", "inf": not a size
        gigabytes = default
    return int(max(gigabytes, 0.0) * 1024 ** 3)


def mark_used(path: Path) -> None:
    """Renew a cache entry's mtime, which the pruning reads as its last use."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache still serves; only its pruning order suffers


_RESULT_NAME = re.compile(r"[0-9a-f]{16,64}\.npz")  # detect.cache_key's and fleet's digests
_RESULT_BEING_WRITTEN = re.compile(r"\.[0-9a-f]{16,64}\.npz\..+\.partial")  # atomic_path's, beside one
ABANDONED_WRITE_S = 3600  # a cache file being written, untouched this long, was left by a killed process


def prune_results(written: Path) -> list[Path]:
    """After ``written`` (a cached detection run or import of prediction files) joined its folder:
    the least recently used entries go until the folder fits in FLICKER_RESULTS_CACHE_GB (default
    DEFAULT_RESULTS_CACHE_GB). A team's many cameras would otherwise fill the disk over months.
    A write a killed process left goes whatever the room (see :func:`prune_least_used`)."""
    limit = gigabytes_setting("FLICKER_RESULTS_CACHE_GB", DEFAULT_RESULTS_CACHE_GB)
    return prune_least_used(written.parent, lambda name, status: (True, status.st_mtime_ns) if _RESULT_NAME.fullmatch(name)
                            else None, limit, keep=written, being_written=_RESULT_BEING_WRITTEN)


def prune_least_used(folder: Path, rank: Callable[[str, os.stat_result], tuple | None], limit_bytes: int,
                     keep: Path | None = None, being_written: re.Pattern | None = None) -> list[Path]:
    """Delete the least wanted entries of a cache folder until the rest fit in ``limit_bytes``.
    ``rank(name, status)`` says which plain files are entries (None: not one; links are never
    counted or touched) and orders them, least wanted first: ``(True, last use)`` for a live entry,
    ``(False, ...)`` for one that goes whatever the room (an old format). A file named as
    ``being_written`` (a writer's temporary file) is left alone while it is written, and goes
    whatever the room once untouched for ABANDONED_WRITE_S (its process was killed mid-write).
    ``keep`` (the entry just written) stays whatever its size. Returns what was deleted."""
    abandoned_before = time.time_ns() - ABANDONED_WRITE_S * 10 ** 9

    def ranked(name: str, status: os.stat_result) -> tuple | None:
        if being_written is not None and being_written.fullmatch(name):
            return (False, status.st_mtime_ns) if status.st_mtime_ns < abandoned_before else None
        return rank(name, status)

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            status = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(status.st_mode) and (key := ranked(entry.name, status)) is not None:
            found.append((key, status.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in found)
    deleted = []
    for (live, *_), size, path in sorted(found):
        if total <= limit_bytes and live:
            break
        if keep is not None and path == keep:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        deleted.append(path)
    return deleted


def hash_file(path: Path) -> str:
    """SHA-256 of the whole file's content (hex): collision-proof, and the fastest full-content hash
    here (SHA instructions: ~1 GB/s, 3x BLAKE2b)."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_identity(path: Path) -> tuple:
    """(path, device, inode, size, mtime, ctime): what changes whenever the file does (any write
    changes ctime), so a value remembered under it is never stale."""
    return (str(Path(path).resolve()), *stat_identity(Path(path).stat()))


def stat_identity(status: os.stat_result) -> tuple[int, int, int, int, int]:
    """(device, inode, size, mtime, ctime) of a stat: no other file has them all, and the file has them no longer
    once written to (the kernel sets ctime on every change, and no call sets it back)."""
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def content_key(path: Path) -> str:
    """:func:`hash_file`, remembered on disk per :func:`file_identity`."""
    path = Path(path)
    identity = "|".join(map(str, file_identity(path)))
    memo = cache_dir() / "content-keys" / hashlib.sha256(identity.encode()).hexdigest()[:32]
    try:
        key = memo.read_text()
        if len(key) == 64:
            return key
    except OSError:
        pass
    key = hash_file(path)
    try:
        write_atomic(memo, key.encode())
    except OSError:  # a read-only cache only costs speed
        pass
    return key


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (os.umask can only set it,
    and setting it for a moment races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files written through atomic_path get the mode a plain open() would give them (mkstemp's is 0600:
# an export, a CSV or a verdict listing would be unreadable to the group that pushes or reviews it).
_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | Path, durable: bool = False, suffix: str = ".partial") -> Iterator[Path]:
    """A uniquely named temporary path beside ``path`` for the caller to write (by name, so any
    writer works: numpy, a muxer, a library); renamed onto ``path`` in one step when the block
    ends normally, removed when it raises. ``durable`` fsyncs the file and its folder, for the
    user's work (verdicts, manifests); caches skip it. ``suffix`` keeps an extension some writers
    read the format from. A ``path`` that is (or links to) a device, a pipe or a socket is refused:
    renamed over, ``--out /dev/stdout`` or ``/dev/full`` became a plain file."""
    path = Path(path)
    if is_special_file(path):
        from core.errors import UserError

        raise UserError(f"{path} is not a regular file (a device, a pipe or a socket): give a file name; nothing was written")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # mkdir's "File exists", of a file where a folder must be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename) from None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:  # named for the file the user asked for, not the temporary one beside it
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.fchmod(fd, _FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        _fsync_dir(path.parent)


def is_special_file(path: str | Path) -> bool:
    """Whether ``path`` is (or links to) a device, a pipe or a socket, which a rename over it would replace
    with a plain file; False when it is not there yet (or is a link to nothing)."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def write_atomic(path: str | Path, data: bytes | Callable[[object], None], durable: bool = False) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file object) to ``path``
    through :func:`atomic_path`: a reader (or a crash) sees the old file or the new one."""
    with atomic_path(path, durable) as tmp, tmp.open("wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
    return Path(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two files or folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``), so that
    a crash leaves one or the other in place, never neither. False where the call is not available
    (other systems, old kernels, some file systems): :func:`swap_in` then falls back to two renames."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # no exchange on this kernel or file system
        return False
    raise OSError(error, os.strerror(error), str(a), None, str(b))


SWAP_MARKER = "SWAP"  # in a staging folder: its entries are complete and are being swapped in


def swap_in(staging: Path, target_dir: Path, names: Sequence[str]) -> None:
    """Replace ``target_dir/NAME`` with ``staging/NAME`` for every name (files or folders), then
    delete ``staging``. A durable marker first records each new entry's inode, so that a crash
    (even ``kill -9``) at any later point is finished by :func:`recover_swaps` whatever the order
    of renames it interrupted: an entry whose target already has the recorded inode is in place.
    Each entry is exchanged in one atomic step where the OS can, else moved aside and replaced."""
    inodes = {name: (staging / name).lstat().st_ino for name in names}
    write_atomic(staging / SWAP_MARKER, json.dumps(inodes).encode(), durable=True)
    fault_point("swap-marked")
    _roll_forward(staging, target_dir, inodes)


def _roll_forward(staging: Path, target_dir: Path, inodes: dict[str, int]) -> None:
    for name, inode in inodes.items():
        new, old = staging / name, target_dir / name
        if _inode(old) == inode or _inode(new) != inode:
            continue  # swapped in before a crash; ``new`` (if present) is the old entry
        if not os.path.lexists(old) or _empty_dir(old):
            os.replace(new, old)
        elif not exchange_paths(new, old):
            os.replace(old, staging / f"{name}.replaced")
            fault_point("swap-old-moved-aside")
            os.replace(new, old)
        fault_point("swap-one-entry-done")
    shutil.rmtree(staging, ignore_errors=True)


def _inode(path: Path) -> int | None:
    try:
        return path.lstat().st_ino
    except FileNotFoundError:
        return None


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def recover_swaps(target_dir: Path, staging_prefix: str) -> None:
    """Finish what interrupted :func:`swap_in` calls left in ``target_dir``'s staging folders
    (those named ``staging_prefix*`` in it): a marked one is rolled forward, an unmarked one (its
    build never completed) deleted. Call with the writers' lock held."""
    for staging in sorted(Path(target_dir).glob(staging_prefix + "*")):
        try:
            inodes = json.loads((staging / SWAP_MARKER).read_bytes())
        except (OSError, ValueError):
            shutil.rmtree(staging, ignore_errors=True)
            continue
        _roll_forward(staging, Path(target_dir), inodes)


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


@contextmanager
def exclusive_lock(folder: Path, what: str) -> Iterator[None]:
    """(``folder`` must exist.) Hold an OS lock on ``folder`` itself for the duration (no lock file left behind; released
    even by ``kill -9``). A second writer gets one clear line instead of a half-merged folder."""
    import fcntl

    from core.errors import UserError

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"Another process is writing {what} in {folder}; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def check_output_folder(path: Path, what: str) -> Path:
    """A folder this tool may create and write: not empty, not a file, not under a file, writable.
    Checked before any work starts, so a typo costs a second, not a detection run."""
    from core.errors import UserError

    if not str(path).strip():
        raise UserError(f"{what} is empty: give a folder")
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"{what} {path} exists and is not a folder")
        # a link to nothing is where the folder would be made: mkdir says "File exists", after the work
        existing = next(p for p in (path, *path.absolute().parents) if p.exists() or p.is_symlink())
        dangling = os.readlink(existing) if not existing.exists() else None
    except OSError as exc:  # a name longer than the file system allows, a loop of links, ...
        raise UserError(f"{what} {str(path)[:80]}{'...' if len(str(path)) > 80 else ''}: {exc.strerror}") from None
    if dangling is not None:
        shown = f"{dangling[:80]}..." if len(dangling) > 80 else dangling
        raise UserError(f"{what} {path}: {existing} is a link to {shown}, which leads to no folder; make that folder or "
                        "give another")
    if not existing.is_dir():
        raise UserError(f"{what} {path} lies under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: {existing} is not writable")
    return path


def check_no_links(root: Path, path: Path, what: str) -> Path:
    """``path``, once no folder between ``root`` and it is a symbolic link: a file written there
    (renamed onto its name, which replaces a link at the name itself) then stays inside ``root``,
    whatever someone who could write to ``root`` planted in it."""
    from core.errors import UserError

    folder = Path(root)
    for part in Path(path).relative_to(root).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise UserError(f"{what}: {folder} is a symbolic link, which is never followed (it could lead out of "
                            f"{root}); remove it")
    return path


def fault_point(name: str) -> None:
    """Crash tests: the process kills itself (SIGKILL, like ``kill -9``) when ``FLICKER_FAULT_POINT``
    names this point. Marks the moments where a crash could tear the user's data."""
    if os.environ.get("FLICKER_FAULT_POINT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def allowed_roots() -> list[Path] | None:
    """``FLICKER_ROOTS`` (``os.pathsep``-separated folders): when set, the app reads and writes local
    paths only under them (for an app served beyond localhost). None: no limit."""
    value = os.environ.get("FLICKER_ROOTS", "").strip()
    if not value:
        return None
    return [Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip()]


def check_allowed(path: str | Path) -> Path:
    """``path`` resolved (symlinks followed), or a UserError when it lies outside ``FLICKER_ROOTS``.
    The message never says whether the path exists, so it cannot be used to probe the server."""
    from core.errors import UserError

    if "\0" in str(path):  # the OS cannot name it; resolve() would raise ValueError
        raise UserError(f"{str(path)[:80]!r} holds a NUL byte, which no file name can hold")
    resolved = expand_home(path).resolve()
    if outside_roots(resolved):
        raise UserError(f"{path} is outside the folders this app may use (FLICKER_ROOTS)")
    return resolved


def typed_folder(text: str, what: str, error: type | None = None, alternative: str = "") -> Path:
    """A folder on this machine as a user typed it (``file://`` allowed), named ``what`` in messages: absolute (a
    relative one would land wherever the server was started, e.g. in the app's checkout), inside FLICKER_ROOTS,
    symlinks resolved. Refused with ``error`` (a UserError class; UserError itself by default), ``alternative``
    ending each message (what else may be given)."""
    from core.errors import UserError

    error = error or UserError
    text = text.strip()
    if not text:
        raise error(f"{what} is empty: give an absolute folder (like /data/flicker){alternative}")
    path = expand_home(text[len("file://"):] if text.lower().startswith("file://") else text)
    if not path.is_absolute():
        raise error(f"{what} {text!r} is a relative path: give an absolute folder (like /data/flicker){alternative}")
    allowed = check_allowed(path)  # first: its message never says whether a path outside the roots exists
    if allowed.exists() and not allowed.is_dir():  # the export's own error would only say "File exists"
        raise error(f"{what} {path} is a file, not a folder: give a folder (it is made if missing){alternative}")
    return allowed


def expand_home(path: str | Path) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; a ``~user`` this machine has no user of is a UserError
    (``Path.expanduser`` raises RuntimeError, a traceback wherever a typed or linked path reached it). Under
    FLICKER_ROOTS it reads as any path outside them: which users this machine has is not told."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        from core.errors import UserError

        if allowed_roots() is not None:
            raise UserError(f"{str(path)[:80]} is outside the folders this app may use (FLICKER_ROOTS)") from None
        raise UserError(f"{str(path)[:80]}: {str(path).split('/')[0][:40]} names no user's home folder on this machine") from None


def outside_roots(path: str | Path) -> bool:
    """Whether ``path``, links followed, lies outside ``FLICKER_ROOTS`` (never, when unset)."""
    roots = allowed_roots()
    return roots is not None and not any(within(path, root) for root in roots)


def check_outside_export(out: str | Path, lightly: Path, what: str = "--out") -> None:
    """Refuse an output at or under an export's own ``.lightly`` folder (``lightly``): every push sends what is
    there, and the next export's swap replaces the folder whole, deleting it (select's picks, pre-labels, a listing)."""
    if lightly.is_dir() and within(out, lightly):
        from core.errors import UserError

        raise UserError(f"{what} {out} is inside the export's own .lightly folder: choose another folder")


def within(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, links followed (both)."""
    path, folder = expand_home(path).resolve(), expand_home(folder).resolve()
    return path == folder or folder in path.parents
