"""Review verdicts, kept in SQLite: the user's work, so it survives restarts, crashes and several
writers (browser tabs, processes) at once.

A verdict answers one assertion's question about a frame (``assertion``: flicker, ghost or
class-flip, :data:`core.assertions.ASSERTIONS`); for flicker "does this frame really miss an object?":

* ``miss``: yes, the detector erred as the assertion says (flicker: a true miss when the frame is
  flagged, a miss the assertion did not flag on a spot check; ghost: the one-frame box is not an
  object; class flip: the box's class is wrong), ``false_alarm``: no, ``unsure``: kept, but left
  out of estimates.

Rows are keyed by the video's content key, the assertion, the frame and ``box`` (-1: the frame as a
whole; k: the k-th imputed box of a flagged frame with several). ``drawn`` says whether the verdict
was given on a frame the review plan on screen had drawn (1), or on a frame picked otherwise (0: on
Review, or after the plan, worst first); the estimates rest on the first kind only. Each change also goes to
``history`` with the annotator and time, which is what ``undo`` reverts. Every reader and writer
takes ``assertion`` and defaults to flicker, the only assertion of schema 2; a schema-2 store is
migrated in place on open (its rows become flicker's, nothing is lost). WAL mode, a busy timeout and one short
transaction per change make concurrent writers safe; SQLite's journal makes a killed writer
lose at most its own unfinished change.
"""
from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path
from typing import Iterator, NamedTuple

from core import paths
from core.assertions import ASSERTIONS, FLICKER
from core.errors import VerdictError
from core.words import counted

VERDICTS = ("miss", "false_alarm", "unsure")
VERDICT_NAMES = {"miss": "true miss", "false_alarm": "false alarm", "unsure": "unsure"}  # on a flagged frame
# on a frame the flags leave alone the same keys answer "is an object missing?": no flag to call false
SPOT_CHECK_NAMES = {"miss": "object missing", "false_alarm": "nothing missing", "unsure": "unsure"}
WHOLE_FRAME = -1
SCHEMA_VERSION = 3  # 3: an assertion per verdict (2 had flicker's only; migrated on open)
MAX_NOTE = 2000
SQLITE_HEADER = b"SQLite format 3\x00"
_VERDICTS_TABLE = ("CREATE TABLE IF NOT EXISTS {name} (video TEXT NOT NULL, assertion TEXT NOT NULL, "
                   "frame INTEGER NOT NULL, box INTEGER NOT NULL, verdict TEXT NOT NULL, annotator TEXT NOT NULL, "
                   "note TEXT NOT NULL, updated REAL NOT NULL, PRIMARY KEY (video, assertion, frame, box))")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    _VERDICTS_TABLE.format(name="verdicts"),
    "CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, video TEXT NOT NULL, "
    "frame INTEGER NOT NULL, box INTEGER NOT NULL, verdict TEXT, previous TEXT, annotator TEXT NOT NULL, "
    "at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0, assertion TEXT NOT NULL DEFAULT 'flicker')",
    # frames some review plan drew (any size, any seed) and since when: the estimates rest on verdicts given
    # once a plan asked for them (added within schema 3: a store without it gains it on open; older code ignores it)
    "CREATE TABLE IF NOT EXISTS planned (video TEXT NOT NULL, frame INTEGER NOT NULL, at REAL NOT NULL, "
    "PRIMARY KEY (video, frame))",
    # the pair the last two-phase plan aimed at, per video: the estimates cut their strata by it (added within schema 3)
    "CREATE TABLE IF NOT EXISTS plan_focus (video TEXT PRIMARY KEY, iou_track REAL NOT NULL, iou_assert REAL NOT NULL)",
)
# Schema 2 -> 3, in the transaction that opens the store: the primary key gains the assertion, so
# the verdicts are copied into a new table (every row flicker's); history gains a column.
_FROM_SCHEMA_2 = (
    _VERDICTS_TABLE.format(name="verdicts_3"),
    "INSERT INTO verdicts_3 (video, assertion, frame, box, verdict, annotator, note, updated) "
    f"SELECT video, '{FLICKER}', frame, box, verdict, annotator, note, updated FROM verdicts",
    "DROP TABLE verdicts",
    "ALTER TABLE verdicts_3 RENAME TO verdicts",
    f"ALTER TABLE history ADD COLUMN assertion TEXT NOT NULL DEFAULT '{FLICKER}'",
)


_KEY = "video = ? AND assertion = ? AND frame = ? AND box = ?"


def default_store_path() -> Path:
    return paths.data_dir() / "verdicts.sqlite"


class VerdictStore:
    def __init__(self, path: str | Path | None = None, create: bool = True):
        """The store at ``path`` (the app's by default). ``create=False``, for readers: the file must
        already hold verdicts; anything else (an empty file, another tool's database) is refused
        untouched instead of being turned into a store."""
        self.path = Path(path) if path else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # FLICKER_DATA_DIR under a file, on a read-only mount: one line, not a traceback
            reason = f"{exc.filename} is a file" if isinstance(exc, FileExistsError) else exc.strerror or exc
            raise VerdictError(f"Cannot keep verdicts in {self.path.parent}: {reason}") from None
        _refuse_foreign_file(self.path)
        _refuse_other_databases(self.path, holds_verdicts=not create)
        try:
            with closing(self._connect()) as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent; outside any transaction
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None
        with self._transaction() as db:
            version = self._version(db)
            if version == 2:
                for statement in _FROM_SCHEMA_2:
                    db.execute(statement)
            elif version != SCHEMA_VERSION:
                raise VerdictError(f"{self.path} holds verdicts in a layout this version does not read (schema "
                                   f"{version}, this version writes {SCHEMA_VERSION}); move it aside to start a new one")
            for statement in _SCHEMA:
                db.execute(statement)
            _add_history_columns(db)
            if "at" not in {row[1] for row in db.execute("PRAGMA table_info(planned)")}:
                # a planned table from before it kept when (a development build of 2026-12-06): its frames
                # count as planned from the start, as a video's first recorded plan does
                db.execute("ALTER TABLE planned ADD COLUMN at REAL NOT NULL DEFAULT 0")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            _refuse_damaged_rows(db, self.path)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0, isolation_level=None)

    def _transaction(self) -> Iterator[sqlite3.Connection]:
        return _Transaction(self)

    @staticmethod
    def _version(db: sqlite3.Connection) -> int | str:
        """The store's schema version (an int), or what stands in its place when it is not one."""
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            value = str(row[0]) if row is not None else "missing"
            return int(value) if value.isdecimal() and len(value) < 10 else f"{value[:20]!r}"
        return 0 if "verdicts" in tables else SCHEMA_VERSION  # a verdicts table this tool did not write

    def set(self, video: str, frame: int, verdict: str | None, box: int = WHOLE_FRAME, annotator: str = "",
            note: str = "", assertion: str = FLICKER, drawn: bool = False) -> None:
        """Record a verdict on what ``assertion`` says of the frame (or box), or clear it with ``None``.
        ``drawn``: given on a frame the review plan on screen drew (what the estimates count)."""
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS} or None, got {verdict!r}")
        if assertion not in ASSERTIONS:
            raise ValueError(f"assertion must be one of {ASSERTIONS}, got {assertion!r}")
        key = (video, assertion, int(frame), int(box))
        with self._transaction() as db:
            _add_history_columns(db)  # a store copied over this one since it was opened may be older
            row = db.execute(f"SELECT verdict, annotator, note, updated, drawn FROM verdicts WHERE {_KEY}", key).fetchone()
            previous, previous_annotator, previous_note, previous_updated, previous_drawn = row if row else (None,) * 5
            if verdict is None:
                db.execute(f"DELETE FROM verdicts WHERE {_KEY}", key)
            else:
                db.execute("INSERT OR REPLACE INTO verdicts (video, assertion, frame, box, verdict, annotator, note, "
                           "updated, drawn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (*key, verdict, annotator[:200], note[:MAX_NOTE], time.time(), int(bool(drawn))))
            db.execute("INSERT INTO history (video, assertion, frame, box, verdict, previous, annotator, at, "
                       "previous_annotator, previous_note, previous_updated, previous_drawn) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (*key, verdict, previous, annotator[:200], time.time(), previous_annotator, previous_note,
                        previous_updated, previous_drawn))

    def undo(self, video: str, annotator: str | None = None, assertion: str | None = None,
             frame: int | None = None) -> Undone | None:
        """Revert the latest change not yet undone on this video, whichever assertion it answered
        (by ``annotator`` when given; "" is the changes given with no name; on one ``assertion`` and
        ``frame`` when given); None when there is nothing to undo. The verdict it replaced comes back
        as it was given (its annotator and note), or, where that one was undone meanwhile, the one
        before it. A change someone has judged over since is only marked undone: their later verdict
        stays (it is the frame's now)."""
        with self._transaction() as db:
            query, args = "SELECT id, assertion, frame, box FROM history WHERE video = ? AND undone = 0", [video]
            for column, value in (("annotator", annotator), ("assertion", assertion), ("frame", frame)):
                if value is not None:
                    query, args = f"{query} AND {column} = ?", [*args, value]
            row = db.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
            if row is None:
                return None
            change, assertion, frame, box = row
            key = (video, assertion, frame, box)
            later = db.execute(f"SELECT annotator FROM history WHERE {_KEY} AND id > ? AND undone = 0 ORDER BY id DESC "
                               "LIMIT 1", (*key, change)).fetchone()
            if later is None:
                _restore(db, key, *_stood_before(db, key, change))
            db.execute("UPDATE history SET undone = 1 WHERE id = ?", (change,))
            now = db.execute(f"SELECT verdict FROM verdicts WHERE {_KEY}", key).fetchone()
            return Undone(frame, assertion, now[0] if now else None, None if later is None else later[0])

    def note_planned(self, video: str, frames, since: float | None = None) -> None:
        """Remember that a review plan drew these frames of the video, and since when (``since``,
        else now; the first time counts). The plan changes with its size, its seed and the first
        phase's verdicts."""
        now = time.time() if since is None else since
        planned = {int(frame): now for frame in frames}
        if planned:
            with self._transaction() as db:
                _add_planned(db, video, planned)

    def planned(self, video: str) -> dict[int, float]:
        """Every frame of the video some review plan drew, with when a plan first did (:meth:`note_planned`)."""
        with self._transaction() as db:
            return _planned(db, video)

    def answered_when_planned(self, video: str, assertion: str = FLICKER) -> set[int]:
        """Frames whose verdict was given on a frame the plan on screen had drawn (``drawn``): a random
        draw asked for them. A frame judged by hand, or after the plan, stays out even when a plan
        draws it, until it is judged again where the plan asks (the hand picked it, perhaps for what it
        shows). Verdicts from before the store kept ``drawn`` count when given once a plan had drawn
        their frame."""
        with self._transaction() as db:
            return _asked_for(db, video, assertion, _planned(db, video))

    def plan_drawn(self, video: str, frames, assertion: str = FLICKER) -> set[int]:
        """:meth:`note_planned` for a plan's ``frames``, then :meth:`answered_when_planned`, in one
        transaction (the Verdicts page's every run). A video with no plan recorded yet (verdicts from
        before the store kept plans) has these frames planned from the start."""
        with self._transaction() as db:
            planned = _planned(db, video)
            since = time.time() if planned else 0.0
            new = {int(frame): since for frame in frames if int(frame) not in planned}
            _add_planned(db, video, new)
            return _asked_for(db, video, assertion, planned | new)

    def estimate_focus(self, video: str, focus: tuple[float, float] | None) -> tuple[float, float] | None:
        """The pair the estimates cut their strata by: the plan's ``focus`` (:attr:`core.qa.ReviewQueue.focus`),
        remembered, or while the plan has none (a larger plan, or another seed, until its first phase is
        answered) the last one remembered for the video (by any tab). Without it the figures changed with
        no new verdict whenever the plan grew. Given its first phase, the aimed plan's verdicts are random
        within these cells, and frames drawn by band are random within any cut of their band; verdicts
        aimed at an older focus are cut by the newer one's cells, approximately (docs/qa.md, twelfth
        round: cutting by bands alone left coverage unchanged)."""
        with self._transaction() as db:
            row = db.execute("SELECT iou_track, iou_assert FROM plan_focus WHERE video = ? AND typeof(iou_track) = 'real' "
                             "AND typeof(iou_assert) = 'real'", (video,)).fetchone()
            remembered = None if row is None else (float(row[0]), float(row[1]))
            if focus is not None and tuple(focus) != remembered:  # written when it changes, not on every rerun
                db.execute("INSERT OR REPLACE INTO plan_focus VALUES (?, ?, ?)", (video, float(focus[0]), float(focus[1])))
        return remembered if focus is None else focus

    def older_verdicts(self, video: str) -> int:
        """How many of the video's verdicts were written before the store kept ``drawn`` (2026-12-07)."""
        with self._transaction() as db:
            return db.execute("SELECT COUNT(*) FROM verdicts WHERE video = ? AND drawn IS NULL", (video,)).fetchone()[0]

    def all(self, video: str, assertion: str = FLICKER) -> dict[int, str]:
        """Whole-frame verdicts on ``assertion``'s flags of a video: ``{frame: verdict}``."""
        with self._transaction() as db:
            return dict(db.execute("SELECT frame, verdict FROM verdicts WHERE video = ? AND assertion = ? AND box = ? "
                                   "ORDER BY frame", (video, assertion, WHOLE_FRAME)))

    def by_assertion(self, video: str) -> dict[str, dict[int, str]]:
        """Whole-frame verdicts of a video per assertion, in one read: ``{assertion: {frame: verdict}}``
        (every assertion a key, judged or not)."""
        verdicts: dict[str, dict[int, str]] = {name: {} for name in ASSERTIONS}
        with self._transaction() as db:
            rows = db.execute("SELECT assertion, frame, verdict FROM verdicts WHERE video = ? AND box = ? ORDER BY frame",
                              (video, WHOLE_FRAME))
            for assertion, frame, verdict in rows:
                verdicts.setdefault(assertion, {})[frame] = verdict
        return verdicts

    def records(self, video: str, assertion: str = FLICKER) -> list[tuple[int, str, str, str, float]]:
        """Whole-frame verdicts with who gave them, their note and when (epoch seconds), by frame:
        ``[(frame, verdict, annotator, note, updated)]``, the audit trail ``python -m core verdicts`` prints."""
        with self._transaction() as db:
            return db.execute("SELECT frame, verdict, annotator, note, updated FROM verdicts WHERE video = ? AND "
                              "assertion = ? AND box = ? ORDER BY frame", (video, assertion, WHOLE_FRAME)).fetchall()

    def boxes(self, video: str, assertion: str = FLICKER) -> dict[tuple[int, int], str]:
        """Per box verdicts (flicker: its imputed boxes): ``{(frame, box): verdict}``."""
        with self._transaction() as db:
            rows = db.execute("SELECT frame, box, verdict FROM verdicts WHERE video = ? AND assertion = ? AND box >= 0",
                              (video, assertion))
            return {(frame, box): verdict for frame, box, verdict in rows}

    def truth(self, video: str, assertion: str = FLICKER) -> dict[int, bool]:
        """What the estimates use, per frame: is ``assertion`` right about it (flicker: does it
        really miss an object)? A whole-frame verdict decides; otherwise any box judged a miss makes
        it True, all judged false alarms False. Unsure verdicts are left out."""
        truth: dict[int, bool] = {}
        for (frame, _), verdict in self.boxes(video, assertion).items():
            if verdict != "unsure":
                truth[frame] = truth.get(frame, False) or verdict == "miss"
        for frame, verdict in self.all(video, assertion).items():
            if verdict != "unsure":
                truth[frame] = verdict == "miss"
        return truth


def recounted_note(store: VerdictStore, video: str, hidden_frames: int, reordered: bool) -> str:
    """A warning for a video whose frames are counted otherwise since 2026-12-07 (those an MP4 edit
    list hides left out; an AVI's B-frames counted in decode order) that holds verdicts from before:
    they are keyed by frame, so they may sit on other frames now. "" when neither holds."""
    if not (hidden_frames or reordered) or not (older := store.older_verdicts(video)):
        return ""
    how = (f"an MP4 trimmed by stream copy, whose {hidden_frames:,} hidden frames were counted" if hidden_frames else
           "H.264 with B-frames in an AVI, whose frames were placed by timestamps that come out reordered")
    return (f"{counted(older, 'verdict')} on this video {'was' if older == 1 else 'were'} given before frames were counted "
            f"as PyAV decodes them (2026-12-07). This file is {how}, so {'it' if older == 1 else 'they'} may sit on other "
            "frames now: check on Review, or clear them.")


def _planned(db: sqlite3.Connection, video: str) -> dict[int, float]:
    return dict(db.execute("SELECT frame, at FROM planned WHERE video = ? AND typeof(frame) = 'integer' AND "
                           "typeof(at) IN ('real', 'integer')", (video,)))


def _add_history_columns(db: sqlite3.Connection) -> None:
    """Columns added within schema 3 (older stores gain them; older code ignores them): who gave the
    verdict a change replaced, its note, when it was given and whether a plan drew its frame; and per
    verdict ``drawn`` (NULL in rows from before: :func:`_asked_for` reads those by time)."""
    missing = {"previous_annotator": "TEXT", "previous_note": "TEXT", "previous_updated": "REAL",
               "previous_drawn": "INTEGER"}
    have = {row[1] for row in db.execute("PRAGMA table_info(history)")}
    for column in sorted(set(missing) - have):
        db.execute(f"ALTER TABLE history ADD COLUMN {column} {missing[column]}")
    if "drawn" not in {row[1] for row in db.execute("PRAGMA table_info(verdicts)")}:
        db.execute("ALTER TABLE verdicts ADD COLUMN drawn INTEGER")


class Undone(NamedTuple):
    """What :meth:`VerdictStore.undo` did: the ``frame`` and ``assertion`` of the change taken back,
    the frame's ``verdict`` now (None: none), and who judged it over since (None: nobody, so the
    verdict before the change is back)."""
    frame: int
    assertion: str
    verdict: str | None
    judged_since_by: str | None


def _stood_before(db: sqlite3.Connection, key: tuple, change: int) -> tuple:
    """The verdict, annotator, note, time and ``drawn`` that stood on ``key`` before history row
    ``change``: what that change replaced, unless the change before it was itself undone (then what
    that one replaced). A change recorded before the time and ``drawn`` were kept gives None for them."""
    while True:
        row = db.execute("SELECT previous, previous_annotator, previous_note, previous_updated, previous_drawn FROM history "
                         "WHERE id = ?", (change,)).fetchone()
        earlier = db.execute(f"SELECT id, undone FROM history WHERE {_KEY} AND id < ? ORDER BY id DESC LIMIT 1",
                             (*key, change)).fetchone()
        if earlier is None or not earlier[1]:
            return row[0], row[1] or "", row[2] or "", row[3], row[4]
        change = earlier[0]


def _restore(db: sqlite3.Connection, key: tuple, verdict: str | None, annotator: str, note: str, updated: float | None,
             drawn: int | None) -> None:
    """Put back a verdict as it was given: its time and whether a plan drew its frame come back with it (a
    fresh time made a verdict picked by hand count once a plan drew its frame)."""
    if verdict is None:
        db.execute(f"DELETE FROM verdicts WHERE {_KEY}", key)
    else:
        db.execute("INSERT OR REPLACE INTO verdicts (video, assertion, frame, box, verdict, annotator, note, updated, "
                   "drawn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (*key, verdict, annotator, note, time.time() if updated is None else updated,
                    0 if updated is None else drawn))


def _add_planned(db: sqlite3.Connection, video: str, planned: dict[int, float]) -> None:
    """Frames a plan drew, with since when; a frame already recorded keeps its first time."""
    db.executemany("INSERT OR IGNORE INTO planned (video, frame, at) VALUES (?, ?, ?)",
                   [(video, frame, at) for frame, at in planned.items()])


def _asked_for(db: sqlite3.Connection, video: str, assertion: str, planned: dict[int, float]) -> set[int]:
    """The frames whose latest verdict (whole-frame or on a box) was given where the plan on screen asked
    (``drawn``); for a verdict from before ``drawn`` was kept, one given after a plan (of ``planned``) drew the
    frame. Any plan's frames count by time alone let answers given after the plan, worst first, count
    wherever some earlier plan had once drawn their frame: precision intervals at 8 pairs held the truth on
    0.897 of 320 instead of 0.944."""
    latest: dict[int, tuple[float, int | None]] = {}
    for frame, at, drawn in db.execute("SELECT frame, updated, drawn FROM verdicts WHERE video = ? AND assertion = ?",
                                       (video, assertion)):
        if frame not in latest or at > latest[frame][0]:
            latest[frame] = (at, drawn)
    return {frame for frame, (at, drawn) in latest.items()
            if drawn == 1 or (drawn is None and frame in planned and at >= planned[frame])}


def judged_frames(path: Path) -> list[tuple[str, int]]:
    """Every (video key, frame) with a verdict, whole-frame or per box, in one read-only query: what
    a fleet view counts without creating a store where there is none. A missing or unreadable store
    has no verdicts here; the verdict pages report its damage."""
    if not path.is_file():
        return []
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)) as db:
            if db.execute("SELECT type FROM sqlite_master WHERE name = 'verdicts'").fetchone() != ("table",):
                return []  # a view of that name (a recursive one never ends): no store this tool wrote
            return db.execute("SELECT DISTINCT video, frame FROM verdicts").fetchall()
    except sqlite3.Error:
        return []


class _Transaction:
    """One connection, one immediate transaction (writers queue on SQLite's lock instead of
    failing mid-way); any SQLite failure becomes one VerdictError line."""

    def __init__(self, store: VerdictStore):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db = self.store._connect()
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.store.path, exc) from None
        return self.db

    def __exit__(self, kind, exc, traceback) -> bool:
        with closing(self.db):
            if kind is None:
                try:
                    self.db.execute("COMMIT")
                    return False
                except sqlite3.DatabaseError as failed:  # a full disk, an I/O error: the change is not kept
                    kind, exc = type(failed), failed
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass  # SQLite rolled back already (a failed COMMIT can end the transaction itself)
        if isinstance(exc, sqlite3.DatabaseError):
            raise _damaged(self.store.path, exc) from None
        return False


def _refuse_foreign_file(path: Path) -> None:
    """SQLite turns a file shorter than its header into a new database, overwriting it: a file that
    is not empty and not SQLite is someone else's, and stays untouched."""
    try:  # non-blocking: a FIFO there (the default store's path included) would hold a plain open forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise VerdictError(f"Cannot read the verdict store {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)  # before a file object is made: one on a folder cannot be
        raise VerdictError(f"The verdict store {path} is not a regular file (a pipe, a device or a folder); give "
                           "another path, nothing was written")
    try:
        with os.fdopen(fd, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:  # a failing disk (EIO): one line, as for the open
        raise VerdictError(f"Cannot read the verdict store {path}: {exc.strerror or exc}") from None
    if head and head != SQLITE_HEADER:
        raise VerdictError(f"{path} is not a readable verdicts database (not SQLite); give another path, nothing was written")


def _refuse_other_databases(path: Path, holds_verdicts: bool) -> None:
    """Checked read-only, before anything is written: no store holds a trigger or a view (this tool makes neither;
    one in a store someone handed over ran on every change: a recursive one held the reader forever, another could
    rewrite or delete verdicts), and a reader's store (``holds_verdicts``) must hold verdicts, so another tool's
    database (or an empty file) is neither given our tables nor switched to WAL. A writer's new or empty file is
    not looked at."""
    if not holds_verdicts and (not path.exists() or path.stat().st_size == 0):
        return
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0)) as db:
            entries = db.execute("SELECT type, name FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    code = next(((kind, name) for kind, name in entries if kind in ("trigger", "view")), None)
    if code is not None:
        raise VerdictError(f"{path} holds a {code[0]} ({str(code[1])[:40]!r}), which no verdict store this tool writes "
                           "has (it would run with every change): give another store, or remove it; nothing was written")
    tables = {name for kind, name in entries if kind == "table"}
    if holds_verdicts and "verdicts" not in tables:
        raise VerdictError(f"{path} holds no verdicts (it is not a verdict store); give the app's store or one "
                           "written by it")


# A row this tool would never write: hand-edited or damaged. Readers would fail on it mid-way.
_DAMAGED_ROW = ("SELECT frame, box, verdict FROM verdicts WHERE typeof(frame) != 'integer' OR typeof(box) != 'integer' "
                "OR verdict NOT IN ('miss', 'false_alarm', 'unsure') OR typeof(annotator) != 'text' "
                "OR typeof(note) != 'text' OR typeof(updated) NOT IN ('real', 'integer') OR updated < 0 "
                "OR updated > 253402300799 LIMIT 1")  # 253402300799: 9999-12-31, the last time Python can show


def _refuse_damaged_rows(db: sqlite3.Connection, path: Path) -> None:
    row = db.execute(_DAMAGED_ROW).fetchone()
    if row is not None:
        frame, box, verdict = (repr(value)[:40] for value in row)
        raise VerdictError(f"{path} holds a verdict this tool did not write (frame {frame}, box {box}, verdict "
                           f"{verdict}): it was edited by hand or is damaged; fix or remove that row")


def _damaged(path: Path, exc: Exception) -> VerdictError:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return VerdictError(f"{path} stayed locked by another writer for 30 s; try again")
    if isinstance(exc, sqlite3.OperationalError) and ("full" in str(exc) or "readonly" in str(exc)
                                                      or "unable to open" in str(exc)):
        return VerdictError(f"{path} cannot be written ({exc}): free space on its disk, or make its folder "
                            "writable; the verdicts it holds are kept")
    return VerdictError(f"{path} is not a readable verdicts database ({exc}); move it (with any -wal and -shm file "
                        "beside it) aside to start a new one")
