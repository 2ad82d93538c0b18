"""The Verdicts & thresholds page under AppTest: the queue, verdict keys, undo, estimates, pre-labels."""
import json

from core.verdicts import VerdictStore
from test_app import click, load_and_detect


def progress_text(at) -> str:
    return at.get("progress")[0].proto.text


def test_queue_verdicts_undo_estimates_and_prelabels(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/qa.py")
    app.run()
    assert not app.exception
    app.number_input(key="qa_plan_size").set_value(5)
    app.text_input(key="annotator").input("ana")
    app.run()
    assert progress_text(app).startswith("Reviewed 0 / ")
    planned = int(progress_text(app).split(" / ")[1].split()[0])
    click(app, "False alarm")
    assert progress_text(app).startswith(f"Reviewed 1 / {planned}")
    click(app, "Undo")
    assert progress_text(app).startswith(f"Reviewed 0 / {planned}")
    note = next(t for t in app.text_input if t.label == "Note (optional)")
    note.input("a cyclist behind the bus")  # typed, then the verdict clicked: one run delivers both
    for label in ("True miss", "False alarm", "True miss"):
        click(app, label)
    assert progress_text(app).startswith(f"Reviewed {min(3, planned)} / {planned}")
    fingerprint = app.session_state["review"].video.info.fingerprint
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    truth = store.truth(fingerprint)
    assert sorted(truth.values()) == [False, True, True]
    assert "a cyclist behind the bus" in [note for *_, note, _ in store.records(fingerprint)]
    assert "a cyclist behind the bus" in [c.value for c in app.caption]  # shown in the reviewed list
    assert "Reviewed frames" in [h.value for h in app.subheader]
    # two confirmed misses: estimates at the thresholds in use and at the suggested ones, each row labelled
    assert [m.label for m in app.metric] == ["Precision", "Recall", "F1"] * 2
    rows = [md.value for md in app.markdown if md.value.startswith(("**Now**", "**Suggested**"))]
    assert [r.split("  \n")[0] for r in rows] == ["**Now**", "**Suggested**"] and rows[0] == "**Now**  \n0.80 / 0.60"
    preview = [md.value for md in app.markdown if md.value.startswith("The suggested thresholds flag")]
    assert len(preview) == 1 and "90% intervals" in preview[0]  # what the button would do, before it is pressed
    app.text_input(key="qa_prelabel_out").input(str(tmp_path / "prelabels"))
    app.run()
    click(app, "Write pre-labels")
    assert any("2 frames" in s.value for s in app.success), [s.value for s in app.success]
    written = json.loads((tmp_path / "prelabels" / "prelabels.json").read_text())
    assert written


def test_a_damaged_verdict_database_is_one_line_on_the_page(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "verdicts.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    app.switch_page("pages/qa.py")
    app.run()
    assert not app.exception
    assert any("not a readable verdicts database" in e.value for e in app.error)


def test_a_reload_reopens_the_same_video_queue_and_annotator(app, tiny_slice):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    load_and_detect(app, tiny_slice)
    app.switch_page("pages/qa.py")
    app.run()
    app.number_input(key="qa_plan_size").set_value(5)
    app.text_input(key="annotator").input("ana")
    app.run()
    click(app, "False alarm")
    link = {key: value[0] if isinstance(value, list) else value for key, value in app.query_params.items()}
    assert link["annotator"] == "ana" and link["plan"] == "5"
    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    reloaded.switch_page("pages/qa.py")
    reloaded.query_params.update(link)
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.text_input(key="annotator").value == "ana"
    assert progress_text(reloaded).startswith("Reviewed 1 / ")
