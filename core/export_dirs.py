"""Where the app offers to export a video: the folder last used for that video (remembered in the
data folder, so a reload or a restart offers it again), else ``data_dir()/exports/<video stem>``.
Never a folder inside the app's own checkout, and never one outside ``FLICKER_ROOTS``."""
from __future__ import annotations

import json
from pathlib import Path

from core.bounded import load_json, read_capped
from core.errors import UserError
from core.paths import allowed_roots, check_allowed, data_dir, write_atomic

STORE_NAME = "export_dirs.json"  # {video content key: last output folder}
MAX_REMEMBERED = 500  # videos; the least recently exported are forgotten first
MAX_STORE_BYTES = 1 << 20


def _store() -> Path:
    return data_dir() / STORE_NAME


def _allowed(folder: Path) -> bool:
    try:
        check_allowed(folder)
    except UserError:
        return False
    return True


def default_export_dir(stem: str, kind: str = "exports") -> Path:
    """``data_dir()/<kind>/<stem>`` (``kind``: exports, prelabels); under the first of
    ``FLICKER_ROOTS`` when the data folder is outside them (a write there would be refused). Never
    the folder the app was started from, which may be its own checkout."""
    base = data_dir() / kind
    roots = allowed_roots()
    if roots and not _allowed(base):
        base = roots[0] / kind
    return base / stem


def _remembered() -> dict[str, str]:
    """The store, read as untrusted input: anything unreadable counts as empty."""
    try:  # non-blocking and bounded: a FIFO there held the Export page forever, a deep nesting raised RecursionError
        entries = load_json(read_capped(_store(), MAX_STORE_BYTES, "The remembered export folders"), STORE_NAME)
    except UserError:
        return {}
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str) and v.strip()}


def export_dir_for(video_key: str, stem: str) -> Path:
    """The folder last exported to for this video (while it is still allowed), else the default."""
    folder = _remembered().get(video_key)
    if folder is not None and Path(folder).is_absolute() and _allowed(Path(folder)):
        return Path(folder)
    return default_export_dir(stem)


def remember_export_dir(video_key: str, folder: str | Path) -> None:
    """Record the folder an export of this video went to (one atomic write; the last writer wins)."""
    entries = _remembered()
    entries.pop(video_key, None)
    entries[video_key] = str(Path(folder).absolute())
    kept = dict(list(entries.items())[-MAX_REMEMBERED:])
    write_atomic(_store(), json.dumps(kept, indent=1).encode())
