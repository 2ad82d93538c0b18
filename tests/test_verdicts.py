import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from core.errors import VerdictError
from core.verdicts import Undone, VerdictStore


def test_verdicts_persist_across_store_instances(tmp_path):
    path = tmp_path / "v.sqlite"
    VerdictStore(path).set("video-a", 12, "miss")
    VerdictStore(path).set("video-a", 30, "false_alarm")
    VerdictStore(path).set("video-b", 12, "false_alarm")
    assert VerdictStore(path).all("video-a") == {12: "miss", 30: "false_alarm"}
    VerdictStore(path).set("video-a", 12, None)
    assert VerdictStore(path).all("video-a") == {30: "false_alarm"}
    VerdictStore(path).set("video-a", 30, "miss")
    assert VerdictStore(path).all("video-a") == {30: "miss"}


def test_rejects_unknown_verdicts(tmp_path):
    with pytest.raises(ValueError, match="verdict must be one of"):
        VerdictStore(tmp_path / "v.sqlite").set("v", 1, "maybe")


def test_two_sessions_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "v.sqlite"
    stores = [VerdictStore(path), VerdictStore(path)]

    def write(store, offset):
        for frame in range(offset, 400, 2):
            store.set("video", frame, "miss" if frame % 3 else "false_alarm")

    threads = [threading.Thread(target=write, args=(store, k)) for k, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdicts = VerdictStore(path).all("video")
    assert len(verdicts) == 400
    assert all(v == ("miss" if f % 3 else "false_alarm") for f, v in verdicts.items())


def test_box_verdicts_annotator_note_and_truth(tmp_path):
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("v", 5, "miss", box=0, annotator="ana", note="cyclist behind the pole")
    store.set("v", 5, "false_alarm", box=1, annotator="ana")
    store.set("v", 9, "false_alarm", box=0)
    store.set("v", 11, "unsure")
    store.set("v", 12, "miss")
    assert store.boxes("v") == {(5, 0): "miss", (5, 1): "false_alarm", (9, 0): "false_alarm"}
    assert store.truth("v") == {5: True, 9: False, 12: True}  # unsure is left out


def test_undo_reverts_the_latest_change_of_an_annotator(tmp_path):
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("v", 3, "miss", annotator="ana")
    store.set("v", 3, "false_alarm", annotator="ana")
    store.set("v", 4, "miss", annotator="bo")
    assert store.undo("v", annotator="ana") == Undone(3, "flicker", "miss", None)
    assert store.all("v") == {3: "miss", 4: "miss"}
    assert store.undo("v", annotator="ana").frame == 3
    assert store.all("v") == {4: "miss"}
    assert store.undo("v", annotator="ana") is None


def test_undo_never_takes_back_what_another_annotator_judged_since(tmp_path):
    """Ana's Z deleted Bo's later verdict on the same frame, and Bo's Z then brought Ana's back under
    Bo's name without its note (a durability walk, two browsers on one store)."""
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("v", 66, "miss", annotator="ana", note="a cyclist behind the bus")
    store.set("v", 66, "false_alarm", annotator="bo")
    assert store.undo("v", annotator="ana") == Undone(66, "flicker", "false_alarm", "bo")  # Bo's verdict stands
    assert store.records("v")[0][:4] == (66, "false_alarm", "bo", "")
    assert store.undo("v", annotator="bo") == Undone(66, "flicker", None, None)  # Ana took hers back: nothing
    assert store.all("v") == {}

    store.set("v", 7, "miss", annotator="ana", note="behind the tree")
    store.set("v", 7, "false_alarm", annotator="bo")
    assert store.undo("v", annotator="bo") == Undone(7, "flicker", "miss", None)
    assert store.records("v")[0][:4] == (7, "miss", "ana", "behind the tree")  # hers again, as she gave it
    store.set("v", 8, "unsure")  # no name: an unnamed tab's Z takes back only changes given with none
    assert store.undo("v", annotator="").frame == 8 and store.undo("v", annotator="") is None
    assert store.all("v") == {7: "miss"}


def test_a_store_in_another_layout_is_refused_in_one_line_and_left_as_it_is(tmp_path):
    import sqlite3

    from core.errors import VerdictError

    path = tmp_path / "v.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE verdicts (video TEXT NOT NULL, frame INTEGER NOT NULL, verdict TEXT NOT NULL)")
        db.execute("INSERT INTO verdicts VALUES ('v', 7, 'miss')")
    with pytest.raises(VerdictError, match="layout this version does not read"):
        VerdictStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM verdicts").fetchall() == [("v", 7, "miss")]


def test_a_damaged_database_is_one_clear_error(tmp_path):
    from core.errors import VerdictError

    path = tmp_path / "v.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    with pytest.raises(VerdictError, match="not a readable verdicts database"):
        VerdictStore(path)


def test_two_processes_and_a_killed_writer_lose_nothing_committed(tmp_path):
    """Two processes write at once; a third is killed with SIGKILL in the middle of its writes.
    Every change a writer finished is there, and the database opens cleanly afterwards."""
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "v.sqlite"
    VerdictStore(path)
    script = ("import sys\nfrom core.verdicts import VerdictStore\ns = VerdictStore(sys.argv[1])\n"
              "for f in range(int(sys.argv[2]), int(sys.argv[3]), 1):\n    s.set('video', f, 'miss')\n"
              "    print(f, flush=True)\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), str(a), str(a + 150)], stdout=subprocess.PIPE,
                                text=True) for a in (0, 1000)]
    victim = subprocess.Popen([sys.executable, "-c", script, str(path), "5000", "100000"], stdout=subprocess.PIPE, text=True)
    done_by_victim = [int(victim.stdout.readline()) for _ in range(30)]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    verdicts = VerdictStore(path).all("video")
    assert set(range(150)) | set(range(1000, 1150)) | set(done_by_victim) <= set(verdicts)


def test_the_verdicts_verb_lists_every_verdict_as_json_and_csv(tmp_path, sample_slice):
    """``python -m core verdicts`` on a video and on an export made from it: the same audit trail,
    with the contract's keys; a note a spreadsheet would run as a formula is quoted in CSV."""
    import csv
    import io
    import json
    import subprocess
    import sys

    from core.detections import Detections
    from core.flicker import FlickerIndex
    from core.lightly.export import VideoPredictions, export_datasource
    from core.video import probe

    info = probe(sample_slice)
    store_path = tmp_path / "verdicts.sqlite"
    store = VerdictStore(store_path)
    store.set(info.fingerprint, 12, "miss", annotator="ana", note="=HYPERLINK(\"x\")")
    store.set(info.fingerprint, 3, "false_alarm", annotator="bo", note="a shadow")
    store.set("another video", 5, "miss")
    detections = Detections.empty(info.frame_count, {0: "person"})
    export_datasource(tmp_path / "export", [VideoPredictions.of_video(info, "walk.mp4", detections,
                                                                       FlickerIndex.from_detections(detections).evaluate())],
                      task="det")

    def verdicts(source, *options):
        result = subprocess.run([sys.executable, "-m", "core", "verdicts", str(source), "--verdicts", str(store_path),
                                 *options], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    listed = json.loads(verdicts(sample_slice))
    assert [(r["frame"], r["verdict"], r["annotator"]) for r in listed] == [(3, "false_alarm", "bo"), (12, "miss", "ana")]
    assert all(set(r) == {"frame", "verdict", "annotator", "note", "time"} and r["time"].endswith("+00:00") for r in listed)
    assert json.loads(verdicts(tmp_path / "export")) == listed
    rows = list(csv.DictReader(io.StringIO(verdicts(sample_slice, "--format", "csv"))))
    assert [row["frame"] for row in rows] == ["3", "12"] and rows[1]["note"].startswith("'=")
    missing = subprocess.run([sys.executable, "-m", "core", "verdicts", str(sample_slice), "--verdicts",
                              str(tmp_path / "nope.sqlite")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not found" in missing.stderr


def test_a_small_file_that_is_not_sqlite_is_refused_and_left_as_it_is(tmp_path):
    from core.errors import VerdictError

    path = tmp_path / "notes.txt"
    path.write_bytes(b"x")
    with pytest.raises(VerdictError, match="not a readable verdicts database"):
        VerdictStore(path)
    assert path.read_bytes() == b"x"
    (tmp_path / "empty.sqlite").write_bytes(b"")
    assert VerdictStore(tmp_path / "empty.sqlite").all("v") == {}  # an empty file is a new store


SCHEMA_2 = Path(__file__).parent / "data" / "verdicts-schema2.sqlite"  # written by the schema-2 store (1b002ed)


def schema_2_copy(tmp_path) -> Path:
    path = tmp_path / "verdicts.sqlite"
    shutil.copyfile(SCHEMA_2, path)
    return path


def test_a_schema_2_store_is_migrated_in_place_every_verdict_flickers_and_history_still_undoes(tmp_path):
    """A store the schema-2 code wrote (whole-frame and box verdicts, notes, a changed verdict, a
    cleared one) opens as schema 3 with every row, annotator, note and time as it was, counted as
    flicker's; its undo history still reverts, into flicker's rows."""
    path = schema_2_copy(tmp_path)
    with sqlite3.connect(path) as db:
        before = sorted(db.execute("SELECT video, frame, box, verdict, annotator, note, updated FROM verdicts"))
        history = db.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    assert len(before) == 7 and history == 10
    store = VerdictStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        after = sorted(db.execute("SELECT video, frame, box, verdict, annotator, note, updated FROM verdicts"))
        assert {row[0] for row in db.execute("SELECT assertion FROM verdicts")} == {"flicker"}
        assert db.execute("SELECT COUNT(*) FROM history WHERE assertion = 'flicker'").fetchone()[0] == history
    assert after == before
    assert store.all("video-a") == {12: "miss", 30: "false_alarm", 31: "unsure", 50: "false_alarm"}
    assert store.truth("video-a") == {12: True, 30: False, 40: True, 50: False}
    assert store.all("video-a", "ghost") == {} and store.truth("video-a", "class-flip") == {}
    assert [note for *_, note, _ in store.records("video-a")] == ["cyclist behind the bus", "", "", "a shadow"]
    assert store.undo("video-a", annotator="ana").frame == 50  # the schema-2 history: "a shadow" back to miss
    assert store.all("video-a")[50] == "miss"
    store.set("video-a", 12, "false_alarm", assertion="ghost")
    assert VerdictStore(path).all("video-a")[12] == "miss", "reopening migrates nothing twice"
    assert VerdictStore(path).all("video-a", "ghost") == {12: "false_alarm"}


def test_two_processes_opening_a_schema_2_store_at_once_migrate_it_once(tmp_path):
    import subprocess
    import sys

    path = schema_2_copy(tmp_path)
    script = ("import sys\nfrom core.verdicts import VerdictStore\ns = VerdictStore(sys.argv[1])\n"
              "s.set('video-c', int(sys.argv[2]), 'miss', assertion='ghost')\nprint(len(s.all('video-a')))\n")
    openers = [subprocess.Popen([sys.executable, "-c", script, str(path), str(k)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for k in range(3)]
    outputs = [opener.communicate(timeout=120) for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0, 0], [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["4", "4", "4"]
    store = VerdictStore(path)
    assert store.all("video-c", "ghost") == {0: "miss", 1: "miss", 2: "miss"}
    assert len(store.all("video-a")) == 4


def test_each_assertion_keeps_its_own_verdict_on_the_same_frame(tmp_path):
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("v", 8, "miss", annotator="ana")
    store.set("v", 8, "false_alarm", annotator="ana", assertion="ghost")
    store.set("v", 9, "miss", annotator="ana", assertion="class-flip")
    store.set("v", 10, "unsure", annotator="ana", assertion="class-flip")
    assert store.all("v") == {8: "miss"}
    assert store.by_assertion("v") == {"flicker": {8: "miss"}, "ghost": {8: "false_alarm"},
                                       "class-flip": {9: "miss", 10: "unsure"}}
    assert store.truth("v", "ghost") == {8: False} and store.truth("v", "class-flip") == {9: True}
    assert store.undo("v", annotator="ana").frame == 10  # the latest change, whichever assertion it answered
    assert store.undo("v", annotator="ana").frame == 9
    assert store.undo("v", annotator="ana").frame == 8
    assert store.by_assertion("v") == {"flicker": {8: "miss"}, "ghost": {}, "class-flip": {}}
    with pytest.raises(ValueError, match="assertion must be one of"):
        store.set("v", 1, "miss", assertion="wobble")


def test_planned_frames_are_remembered_per_video_across_plans_with_when(tmp_path):
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("a", 5, "miss")  # judged by hand, before any plan drew frame 5
    store.note_planned("a", [3, 1, 2, 5])
    store.note_planned("a", [2, 9])  # another plan: its new frames join; frame 2 keeps its first time
    store.note_planned("b", [])
    store.set("a", 3, "false_alarm", drawn=True)
    store.set("a", 9, "miss", box=0, drawn=True)  # a box's verdict answers for its frame too
    assert set(store.planned("a")) == {1, 2, 3, 5, 9} and store.planned("b") == {}
    assert store.answered_when_planned("a") == {3, 9}  # 5 was judged before a plan asked for it
    store.set("a", 5, "false_alarm", drawn=True)  # judged again, where a plan asks
    assert VerdictStore(tmp_path / "v.sqlite").answered_when_planned("a") == {3, 5, 9}  # kept across opens


def test_a_verdict_counts_only_where_the_plan_on_screen_asked(tmp_path):
    """Counted by time alone, an answer given after the plan (worst first) counted wherever some earlier
    plan had once drawn its frame: a plan of 120 looked at, then one of 30 finished and 20 answered after
    it, counted 6.8 of those 20, and the precision intervals held the truth on 0.897 instead of 0.944."""
    store = VerdictStore(tmp_path / "v.sqlite")
    store.note_planned("a", [1, 2, 3, 4])  # a larger plan, looked at
    store.note_planned("a", [1, 2])  # the plan answered
    store.set("a", 1, "miss", drawn=True)
    store.set("a", 2, "false_alarm", drawn=True)
    store.set("a", 3, "miss")  # after the plan, worst first: frame 3 was the larger plan's
    assert store.answered_when_planned("a") == {1, 2}
    # an undo puts back what it replaced as it was given: a verdict by hand stays uncounted (a fresh time counted it)
    store.set("a", 3, "false_alarm", drawn=True)
    assert store.answered_when_planned("a") == {1, 2, 3}
    store.undo("a")
    assert store.all("a")[3] == "miss" and store.answered_when_planned("a") == {1, 2}


def test_a_plan_drawn_counts_verdicts_given_once_a_plan_asked(tmp_path):
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("a", 4, "miss")
    db = sqlite3.connect(tmp_path / "v.sqlite")  # from before the store kept plans or whether a plan drew a frame
    with db:
        db.execute("UPDATE verdicts SET drawn = NULL")
    db.close()
    assert store.plan_drawn("a", [4, 6]) == {4}  # a video's first recorded plan: planned from the start
    store.set("a", 8, "false_alarm")  # by hand, outside any plan
    assert store.plan_drawn("a", [4, 6, 8]) == {4}  # a later plan draws 8: judged before it asked
    store.set("a", 6, "unsure", drawn=True)
    store.set("a", 8, "miss", drawn=True)
    assert store.plan_drawn("a", [4, 6, 8]) == {4, 6, 8} == store.answered_when_planned("a")


def test_a_planned_table_without_its_times_is_given_them(tmp_path):
    """A store whose planned table kept frames but not when (a development build): opened, not refused."""
    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("a", 3, "miss")
    db = sqlite3.connect(tmp_path / "v.sqlite")
    db.executescript("DROP TABLE planned; CREATE TABLE planned (video TEXT NOT NULL, frame INTEGER NOT NULL, "
                     "PRIMARY KEY (video, frame)); INSERT INTO planned VALUES ('a', 3); UPDATE verdicts SET drawn = NULL;")
    db.close()
    reopened = VerdictStore(tmp_path / "v.sqlite")
    assert reopened.planned("a") == {3: 0.0} and reopened.plan_drawn("a", [3, 4]) == {3}


def test_review_verdicts_are_written_only_over_what_the_page_saw_and_z_undoes_in_the_store(tmp_path):
    """Review's viewer sends every verdict it has not seen back (record_given). A resend writes
    nothing twice; a verdict over a frame another annotator judged since is refused, not written over
    theirs; Z is the store's undo of this annotator's change on that frame (author and note back), and
    never takes back a colleague's later verdict (it was a plain write of what the page had shown)."""
    from core.errors import VerdictError
    from ui.viewer.component import record_given

    store = VerdictStore(tmp_path / "v.sqlite")

    def give(*entries, annotator="ana"):
        return record_given(lambda: store, "v", 100, ("flicker", "ghost"), list(entries), annotator)

    burst = [{"frame": 1, "verdict": "miss", "allowed": [None]}, {"frame": 2, "verdict": "unsure", "allowed": [None]},
             {"frame": 3, "verdict": "false_alarm", "assertion": "ghost", "allowed": [None]}]
    assert give(*burst) == ([], "") and give(*burst) == ([], "")  # sent again with the next trigger: nothing new
    assert store.all("v") == {1: "miss", 2: "unsure"} and store.all("v", "ghost") == {3: "false_alarm"}
    assert store.undo("v", "ana").frame == 3 and store.undo("v", "ana").frame == 2 and store.undo("v", "ana").frame == 1
    assert store.undo("v", "ana") is None  # one change each, not two

    store.set("v", 5, "false_alarm", annotator="bo", note="a shadow")  # judged in another tab since ana's page drew
    refused, why = give({"frame": 5, "verdict": "miss", "allowed": [None]})
    assert refused == ["flicker:5"] and why.startswith("Frame 5 was judged again since this page showed it (now false alarm)")
    assert store.records("v")[0][:4] == (5, "false_alarm", "bo", "a shadow")

    assert give({"frame": 5, "verdict": "miss", "allowed": ["false_alarm"]}) == ([], "")  # over what she saw: hers
    assert give({"frame": 5, "verdict": "unsure", "allowed": ["false_alarm", "miss"]}) == ([], "")  # M then U, both sent
    assert give({"frame": 5, "verdict": "miss", "allowed": ["unsure"], "undo": True}) == ([], "")  # Z: the U taken back
    assert give({"frame": 5, "verdict": "false_alarm", "allowed": ["miss"], "undo": True}) == ([], "")  # Z: the M
    assert store.records("v")[0][:4] == (5, "false_alarm", "bo", "a shadow")  # bo's, with its author and note

    give({"frame": 7, "verdict": "miss", "allowed": [None]})
    store.set("v", 7, "unsure", annotator="bo")  # bo judges it after ana's M, then ana presses Z
    refused, why = give({"frame": 7, "verdict": None, "allowed": ["miss"], "undo": True})
    assert refused == ["flicker:7"] and "now unsure" in why and store.all("v")[7] == "unsure"

    def locked():
        raise VerdictError("v.sqlite stayed locked by another writer for 30 s; try again")

    entries = [{"frame": 8, "verdict": "miss"}, {"frame": 9, "verdict": "miss"}]
    refused, why = record_given(locked, "v", 100, ("flicker",), entries, "ana")  # the rest wait: no 30 s each
    assert refused == ["flicker:8", "flicker:9"]
    assert why == "The verdict on frame 8 was not saved: v.sqlite stayed locked by another writer for 30 s; try again"


def test_a_store_copied_over_an_open_one_gains_the_columns_it_lacks(tmp_path):
    """A backup from before the history kept who gave a replaced verdict, copied over the store the
    app had open (same file, so no new open): its next verdict failed with "no column previous_annotator"."""
    import sqlite3

    store = VerdictStore(tmp_path / "v.sqlite")
    with sqlite3.connect(tmp_path / "v.sqlite") as db:  # what that older layout lacked
        db.execute("ALTER TABLE history DROP COLUMN previous_note")
        db.execute("ALTER TABLE history DROP COLUMN previous_annotator")
    store.set("v", 1, "miss", annotator="ana", note="behind the bus")
    store.set("v", 1, "false_alarm", annotator="bo")
    assert store.undo("v", "bo").verdict == "miss" and store.records("v")[0][:4] == (1, "miss", "ana", "behind the bus")


def test_older_verdicts_on_a_video_counted_otherwise_now_are_said_to_move(tmp_path):
    """Frames are counted as PyAV decodes them since 2026-12-07: a trimmed MP4's hidden frames are left out
    (every frame moved 10 earlier in the walk's file) and an AVI's B-frames are counted in decode order.
    Verdicts are keyed by frame, so those given before may sit on other frames: said, not silently moved."""
    from core.verdicts import recounted_note

    store = VerdictStore(tmp_path / "v.sqlite")
    store.set("a", 3, "miss")
    store.set("a", 7, "false_alarm", drawn=True)
    assert recounted_note(store, "a", 10, False) == ""  # both written since: on today's frames
    db = sqlite3.connect(tmp_path / "v.sqlite")
    with db:
        db.execute("UPDATE verdicts SET drawn = NULL WHERE frame = 3")  # as an older version wrote it
    db.close()
    assert recounted_note(store, "a", 0, False) == ""  # a file counted as before
    note = recounted_note(store, "a", 10, False)
    assert note.startswith("1 verdict on this video was given before frames were counted as PyAV decodes them")
    assert "10 hidden frames were counted" in note and "may sit on other frames" in note
    assert "B-frames in an AVI" in recounted_note(store, "a", 0, True)
    assert recounted_note(store, "b", 10, True) == ""  # no verdicts there


def test_the_estimates_focus_is_the_plans_or_the_last_one_remembered(tmp_path):
    """A plan's focus is remembered per video (across restarts); while a plan has none (a larger
    plan before its first phase is answered) the last one stands; a damaged row reads as none."""
    path = tmp_path / "v.sqlite"
    store = VerdictStore(path)
    assert store.estimate_focus("a", None) is None
    assert store.estimate_focus("a", (0.35, 0.4)) == (0.35, 0.4)
    assert VerdictStore(path).estimate_focus("a", None) == (0.35, 0.4)
    assert store.estimate_focus("b", None) is None  # per video
    assert store.estimate_focus("a", (0.5, 0.55)) == (0.5, 0.55) == store.estimate_focus("a", None)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE plan_focus SET iou_track = 'x' WHERE video = 'a'")
    assert store.estimate_focus("a", None) is None


def test_a_store_whose_folder_cannot_be_made_is_one_clear_error(tmp_path):
    """FLICKER_DATA_DIR under a file (or on a read-only mount): mkdir's NotADirectoryError crashed the
    Review, Verdicts and Export pages with a redacted traceback; they show a VerdictError in one line."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(VerdictError, match=r"Cannot keep verdicts in .*notes.txt/data: Not a directory") as info:
        VerdictStore(a_file / "data" / "verdicts.sqlite")
    assert "\n" not in str(info.value) and a_file.read_text() == "x"
