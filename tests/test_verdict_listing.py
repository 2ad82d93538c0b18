"""The rows ``python -m core verdicts`` prints: one assertion's verdicts at a time."""
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
