"""Review verdicts (true miss / false alarm) per flagged frame, kept in SQLite.

One row per (video fingerprint, frame). WAL mode and a busy timeout make it safe for several app
sessions (browser tabs) writing at once; each call opens its own connection, so the store can be
shared between threads. Verdicts survive restarts and re-detections of the same video.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from core import paths

VERDICTS = ("miss", "false_alarm")


def default_store_path() -> Path:
    return paths.data_dir() / "verdicts.sqlite"


class VerdictStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts (video TEXT NOT NULL, frame INTEGER NOT NULL, "
                "verdict TEXT NOT NULL, updated REAL NOT NULL, PRIMARY KEY (video, frame))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10.0)

    def set(self, video: str, frame: int, verdict: str | None) -> None:
        """Record a verdict, or clear it with ``None``."""
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS} or None, got {verdict!r}")
        with closing(self._connect()) as db, db:
            if verdict is None:
                db.execute("DELETE FROM verdicts WHERE video = ? AND frame = ?", (video, int(frame)))
            else:
                db.execute(
                    "INSERT INTO verdicts (video, frame, verdict, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (video, frame) DO UPDATE SET verdict = excluded.verdict, updated = excluded.updated",
                    (video, int(frame), verdict, time.time()),
                )

    def all(self, video: str) -> dict[int, str]:
        with closing(self._connect()) as db:
            return dict(db.execute("SELECT frame, verdict FROM verdicts WHERE video = ? ORDER BY frame", (video,)))
