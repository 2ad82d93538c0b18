"""``python -m core verdicts``: every verdict given on a video, as an audit trail or to hand to
another tool. JSON is a list of objects with the keys ``frame``, ``verdict``, ``annotator``,
``note`` and ``time`` (ISO 8601, UTC); CSV has the same columns."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

from core.assertions import FLICKER
from core.bounded import brief, inert_cell
from core.errors import UserError
from core.lightly.datasource import Datasource
from core.lightly.export import listed_videos, read_manifest
from core.paths import content_key
from core.video import open_video
from core.verdicts import VerdictStore

COLUMNS = ("frame", "verdict", "annotator", "note", "time")
FORMATS = ("json", "csv")


def video_key(source: Path, relpath: str | None = None) -> tuple[str, str]:
    """The content key verdicts are stored under and the video's name: of a video file, or of one
    video of an export (the only one, or the one named ``relpath``) as its manifest records it."""
    source = Path(source)
    if not Datasource(source).exists():
        if not source.exists():  # said as run says it
            raise UserError(f"No such file: {source}")
        if not source.is_file():
            raise UserError(f"{source} is neither a video file nor an export folder")
        open_video(source).close()  # a file FFmpeg cannot read as a video is one line, not an empty list
        return content_key(source), source.name
    entries = read_manifest(source)
    names = listed_videos(entries)
    chosen = [entry for entry in entries if relpath in (None, entry["relpath"])]
    if len(chosen) == 1 and not chosen[0].get("fingerprint"):
        raise UserError(f"{source} does not record the content of {brief(chosen[0]['relpath'], 80)}, which its verdicts "
                        "are kept by: export it again")
    if len(chosen) != 1:
        raise UserError(f"{source} holds {len(entries):,} videos ({names}): pick one with --video RELPATH" if relpath is None
                        else f"No video {brief(relpath, 80)} in {source}; it holds: {names}")
    return chosen[0]["fingerprint"], chosen[0]["relpath"]


def verdict_rows(store: VerdictStore, key: str, assertion: str = FLICKER) -> list[dict]:
    """The whole-frame verdicts on ``assertion``'s flags (flicker's by default: the columns stay those
    of the audit trail; ghost's and class flip's are listed one assertion at a time)."""
    return [{"frame": frame, "verdict": verdict, "annotator": annotator, "note": note,
             "time": datetime.fromtimestamp(updated, timezone.utc).isoformat(timespec="seconds")}
            for frame, verdict, annotator, note, updated in store.records(key, assertion)]


def formatted(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "note": inert_cell(row["note"]), "annotator": inert_cell(row["annotator"])}
                     for row in rows)
    return buffer.getvalue()

