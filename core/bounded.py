"""Reading files the tool did not write (configs, model YAMLs, metadata, ground truth) with bounds:
size before reading, UTF-8, nesting depth and YAML alias expansion before anything walks the
structure, numbers that fit the types they become. Every refusal is one line (a UserError) that
never echoes the parsed structure: :func:`brief` says what a bad value is without printing it."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError

MAX_CONFIG_BYTES = 1 << 20  # selection configs and model YAMLs: a few KiB in practice
MAX_DEPTH = 64  # nesting of mappings and lists; real configs nest 4 deep
MAX_NODES = 100_000  # values a YAML may hold once its aliases are expanded
INT32_MAX = np.iinfo(np.int32).max
MAX_TRACK_ID = 2**53  # ids stored as float64 by the readers: above this they no longer round-trip
MAX_COORDINATE = 1e7  # pixels: far beyond any video, far below float32's range


class NotRegularFile(Exception):
    """A device, FIFO or folder where a file was expected (see :func:`read_regular`)."""


class TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class GrewWhileRead(Exception):
    """The file got longer between its check and its read."""


def read_regular(path: str | Path, limit: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes: one non-blocking open (a FIFO would
    block a plain one forever) and the checks on its descriptor, before anything is read. The open's
    OSError is raised as it is (ELOOP: a symbolic link, when not followed); then NotRegularFile,
    TooLarge or GrewWhileRead. Callers say which in their own words (:func:`read_capped`)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
        os.close(fd)  # checked before a file object is made: one on a folder cannot be
        raise NotRegularFile(path) if not stat.S_ISREG(status.st_mode) else TooLarge(status.st_size)
    with os.fdopen(fd, "rb") as f:
        data = f.read(status.st_size + 1)  # not the whole limit: it is allocated up front
    if len(data) > status.st_size:
        raise GrewWhileRead(path)
    return data


def read_capped(path: str | Path, limit: int, what: str, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; a device (``/dev/zero``), a FIFO, a
    folder, a larger file (or, without ``follow_symlinks``, a symbolic link) is one line, unread."""
    try:
        return read_regular(path, limit, follow_symlinks)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise UserError(f"{what} {path} is a symbolic link, which is never followed") from None
        raise UserError(f"Cannot read {what} {path}: {exc.strerror}") from None
    except NotRegularFile:
        raise UserError(f"{what} {path} is not a regular file") from None
    except TooLarge as exc:
        raise UserError(f"{what} {path} is {exc.size:,} bytes; at most {limit:,} are read") from None
    except GrewWhileRead:
        raise UserError(f"{what} {path} changed while it was read (at most {limit:,} bytes are read)") from None


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} is not UTF-8 text (byte {exc.start})") from None


def load_json(text: str | bytes, what: str) -> Any:
    """JSON (NaN and Infinity read as the standard library reads them; the checks that follow refuse
    them where they matter), at most ``MAX_DEPTH`` deep."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise UserError(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes
        raise UserError(f"{what} is not valid JSON: {str(exc).splitlines()[0][:200]}") from None
    check_depth(value, what)
    return value


def load_yaml(text: str, what: str) -> Any:
    """YAML through the safe loader, refused before construction when it nests deeper than
    ``MAX_DEPTH``, refers to itself, or expands (aliases counted every time they are used) to more
    than ``MAX_NODES`` values: a 'billion laughs' file is a few hundred bytes."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise UserError(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{what} is not valid YAML: {_yaml_reason(exc)}") from None
    if node is None:
        return None
    _check_expansion(node, what)
    try:
        return yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 (SafeLoader; bounded above)
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # e.g. a mapping key that is a list
        raise UserError(f"{what} is not valid YAML: {_yaml_reason(exc)}") from None


def _yaml_reason(exc: Exception) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem[:120]}" + (f" (line {mark.line + 1})" if mark is not None else "")


def _check_expansion(root, what: str) -> None:
    """Expanded size and depth of a composed YAML node graph, in time linear in its distinct nodes."""
    import yaml

    size: dict[int, int] = {}  # id(node) -> values it expands to
    height: dict[int, int] = {}
    on_path: set[int] = set()
    repeated = False  # a node reached twice: an alias
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES:
                why = " (YAML aliases used over and over)" if repeated else ""
                raise UserError(f"{what} {'expands to' if why else 'holds'} more than {MAX_NODES:,} values{why}")
            if height[key] > MAX_DEPTH:
                raise UserError(f"{what} nests deeper than {MAX_DEPTH} levels")
            continue
        if key in size:
            repeated = True
            continue
        if key in on_path:
            raise UserError(f"{what} refers to itself (a YAML alias inside its own anchor)")
        on_path.add(key)
        stack.append((node, True))
        fresh = [c for c in children if id(c) not in size]
        repeated = repeated or len(fresh) < len(children)
        stack.extend((c, False) for c in fresh)


def check_depth(value: Any, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse a parsed structure nested deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > limit:
                raise UserError(f"{what} nests deeper than {limit} levels")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def read_config(path: str | Path, what: str, limit: int = MAX_CONFIG_BYTES) -> Any:
    """A JSON or YAML file (by its suffix; JSON otherwise) read with every bound above."""
    text = decode_utf8(read_capped(path, limit, what), f"{what} {path}")
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        return load_yaml(text, f"{what} {path}")
    return load_json(text, f"{what} {path}")


# A CSV cell that opens with one of these is run as a formula by a spreadsheet (=HYPERLINK(...)),
# also after a tab or carriage return: such a cell is written with a leading ' (OWASP's advice).
SPREADSHEET_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text, never runs."""
    return "'" + text if text[:1] in SPREADSHEET_FORMULA_LEADS else text


def printable(text: str, lines: bool = False) -> str:
    """``text`` safe to show: characters that are not printable (an escape sequence, a newline, a
    right-to-left override in a name or note someone else wrote) become their escapes, so they can
    neither drive a terminal nor rearrange what is shown; ``lines`` keeps the newlines between lines."""
    def escaped(line: str) -> str:
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)

    return "\n".join(map(escaped, text.split("\n"))) if lines else escaped(text)


def brief(value: Any, width: int = 40) -> str:
    """A short description of a value for an error line: never the whole structure, never a
    conversion that can itself fail (an int of 5,000 digits has no ``str`` in Python 3.11+)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        shown = repr(value[:width])
        return shown if len(value) <= width else f"{shown[:-1]}...{shown[-1]} ({len(value):,} characters)"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} keys"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    return f"a {type(value).__name__}"


def check_ground_truth_rows(frame: np.ndarray, track_id: np.ndarray, boxes: np.ndarray, source: str | Path) -> None:
    """Ground-truth rows as read (float64 columns, before any cast): frames whole numbers in
    [0, int32 max], ids whole numbers in [0, 2**53], box coordinates finite and within
    ``MAX_COORDINATE`` pixels. One line naming the first bad row; a cast would wrap or go NaN silently."""
    frame, track_id, boxes = (np.asarray(a, np.float64) for a in (frame, track_id, boxes))
    checks = [
        (~np.isfinite(frame) | (frame != np.round(frame)) | (frame < 0) | (frame > INT32_MAX),
         f"a frame that is not a whole number in 0..{INT32_MAX}"),
        (~np.isfinite(track_id) | (track_id != np.round(track_id)) | (np.abs(track_id) > MAX_TRACK_ID),
         "a track id that is not a whole number of at most 2**53"),
        (~np.isfinite(boxes).all(axis=-1) | (np.abs(boxes) > MAX_COORDINATE).any(axis=-1),
         f"a box coordinate that is not a finite number within {MAX_COORDINATE:.0e} pixels"),
    ]
    for bad, problem in checks:
        rows = np.flatnonzero(bad)
        if rows.size:
            raise UserError(f"{source} has {problem} (row {int(rows[0]) + 1}; {rows.size} such rows)")
