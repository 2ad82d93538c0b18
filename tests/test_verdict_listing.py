"""The rows ``python -m core verdicts`` prints: one assertion's verdicts at a time; what it refuses."""
import pytest

from core.errors import VerdictError
from core.verdict_listing import COLUMNS, formatted, verdict_rows
from core.verdicts import VerdictStore


def test_rows_list_one_assertions_verdicts_flickers_by_default(tmp_path):
    store = VerdictStore(tmp_path / "verdicts.sqlite")
    store.set("key", 4, "miss", annotator="ana", note="=1+1")
    store.set("key", 4, "false_alarm", annotator="ben", assertion="ghost")
    store.set("key", 9, "unsure", annotator="ben", assertion="ghost")
    flicker, ghost = verdict_rows(store, "key"), verdict_rows(store, "key", "ghost")
    assert [(r["frame"], r["verdict"], r["annotator"]) for r in flicker] == [(4, "miss", "ana")]
    assert [(r["frame"], r["verdict"], r["annotator"]) for r in ghost] == [(4, "false_alarm", "ben"), (9, "unsure", "ben")]
    assert all(tuple(row) == COLUMNS for row in flicker + ghost)
    assert formatted(flicker, "csv").splitlines()[1].split(",")[3] == "'=1+1"  # a spreadsheet shows it, never runs it


def test_the_cli_lists_the_assertion_it_is_asked_for(tmp_path, sample_slice):
    import json
    import subprocess
    import sys

    from core.video import probe

    key = probe(sample_slice).fingerprint
    store = VerdictStore(tmp_path / "verdicts.sqlite")
    store.set(key, 4, "miss", annotator="ana")
    store.set(key, 7, "false_alarm", annotator="ben", assertion="class-flip")

    def listed(*options):
        done = subprocess.run([sys.executable, "-m", "core", "verdicts", str(sample_slice), "--verdicts",
                               str(tmp_path / "verdicts.sqlite"), *options], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [(row["frame"], row["verdict"]) for row in json.loads(done.stdout)]

    assert listed() == [(4, "miss")]
    assert listed("--assertion", "class-flip") == [(7, "false_alarm")]
    assert listed("--assertion", "ghost") == []


def listing(capsys, *args):
    from core.cli import main

    code = main(["verdicts", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def test_a_file_that_is_not_a_video_is_one_line_not_an_empty_list(capsys, tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    code, out, err = listing(capsys, tmp_path / "notes.mp4", "--verdicts", tmp_path / "v.sqlite")
    assert code == 2 and out == "" and "is not a video FFmpeg can read" in err and len(err.splitlines()) == 1


def test_a_reader_leaves_another_tools_database_and_an_empty_file_untouched(capsys, tmp_path, sample_slice):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE foo (x)")
    before = other.read_bytes()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for store in (other, empty):
        code, out, err = listing(capsys, sample_slice, "--verdicts", store)
        assert code == 2 and "holds no verdicts (it is not a verdict store)" in err and len(err.splitlines()) == 1, err
    assert other.read_bytes() == before and empty.stat().st_size == 0
    assert not (tmp_path / "other.db-wal").exists()


def hand_edited(tmp_path, statement, *values):
    import sqlite3

    path = tmp_path / "verdicts.sqlite"
    VerdictStore(path).set("key", 4, "miss", annotator="ana")
    with sqlite3.connect(path) as db:
        db.execute(statement, values)
    return path


@pytest.mark.parametrize("value", ["abc", "9" * 5000, None])
def test_a_damaged_schema_version_is_one_line(tmp_path, value):
    statement = ("DELETE FROM meta WHERE key = 'schema_version' AND ? IS NULL" if value is None
                 else "UPDATE meta SET value = ? WHERE key = 'schema_version'")
    path = hand_edited(tmp_path, statement, value)
    with pytest.raises(VerdictError, match="in a layout this version does not read"):
        VerdictStore(path)


@pytest.mark.parametrize("column, value", [("frame", "abc"), ("updated", 1e308), ("updated", "when"), ("verdict", "-2+3"),
                                           ("note", b"\x00")])
def test_a_hand_edited_row_is_one_line_naming_it(tmp_path, column, value):
    path = hand_edited(tmp_path, f"UPDATE verdicts SET {column} = ?", value)
    with pytest.raises(VerdictError, match=r"holds a verdict this tool did not write \(frame"):
        VerdictStore(path)


def test_a_note_opening_with_a_tab_is_inert_in_csv():
    rows = [{"frame": 1, "verdict": "miss", "annotator": "ana", "note": "\t=1+1", "time": ""}]
    assert formatted(rows, "csv").splitlines()[1].split(",")[3] == "'\t=1+1"


def test_on_a_terminal_what_annotators_typed_is_shown_escaped(capsys, monkeypatch, tmp_path, sample_slice):
    """A note with an escape sequence set the terminal's title and cleared the screen; piped to a
    file or another tool, the listing stays what was typed."""
    import sys

    from core.video import probe

    store = VerdictStore(tmp_path / "v.sqlite")
    store.set(probe(sample_slice).fingerprint, 3, "miss", annotator="ana", note="\x1b]0;pwned\x07\x1b[2J\u202etxt")
    code, piped, _ = listing(capsys, sample_slice, "--verdicts", tmp_path / "v.sqlite", "--format", "csv")
    assert code == 0 and "\x1b[2J" in piped
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, shown, _ = listing(capsys, sample_slice, "--verdicts", tmp_path / "v.sqlite", "--format", "csv")
    assert code == 0 and "\x1b" not in shown and "\u202e" not in shown and "\\x1b[2J" in shown


def test_an_out_file_named_csv_gets_csv_unless_a_format_is_given(capsys, tmp_path, sample_slice):
    from core.video import probe

    VerdictStore(tmp_path / "v.sqlite").set(probe(sample_slice).fingerprint, 3, "miss", annotator="ana")
    store = ("--verdicts", tmp_path / "v.sqlite")
    assert listing(capsys, sample_slice, *store, "--out", tmp_path / "v.csv")[0] == 0
    assert (tmp_path / "v.csv").read_text().splitlines()[0] == "frame,verdict,annotator,note,time"
    assert listing(capsys, sample_slice, *store, "--out", tmp_path / "v.txt")[0] == 0
    assert (tmp_path / "v.txt").read_text().startswith("[")  # json, the default
    assert listing(capsys, sample_slice, *store, "--out", tmp_path / "w.csv", "--format", "json")[0] == 0
    assert (tmp_path / "w.csv").read_text().startswith("[")  # as asked


def test_no_verdicts_is_said_on_stderr_and_a_written_file_counts_its_verdicts(capsys, tmp_path, sample_slice):
    """An empty listing printed '[]' with no hint, and --out said 'verdicts written to v.csv' of a
    header alone; stdout stays the list a tool reads."""
    from core.video import probe

    store = ("--verdicts", tmp_path / "v.sqlite")
    VerdictStore(tmp_path / "v.sqlite").set(probe(sample_slice).fingerprint, 3, "miss", annotator="ana")
    code, out, err = listing(capsys, sample_slice, *store, "--assertion", "ghost")
    assert code == 0 and out == "[]\n"
    assert err == "no ghost verdicts for walk.mp4 (give them in the app, on Review or Verdicts & thresholds)"
    code, out, err = listing(capsys, sample_slice, *store, "--out", tmp_path / "v.csv")
    assert code == 0 and out == "" and err == f"1 verdict written to {tmp_path / 'v.csv'}"


def test_a_missing_file_is_said_missing_as_run_says_it(capsys, tmp_path):
    """It said 'is neither a video file nor an export folder' of a path that does not exist."""
    code, out, err = listing(capsys, tmp_path / "nope.mp4", "--verdicts", tmp_path / "v.sqlite")
    assert code == 2 and out == "" and err == f"error: No such file: {tmp_path / 'nope.mp4'}"
