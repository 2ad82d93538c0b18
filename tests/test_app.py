"""The app under streamlit.testing.v1.AppTest: every page runs, widgets drive real work."""
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.verdicts import VerdictStore


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.run()
    assert not at.exception
    return at


def click(at, label):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r} in {[b.label for b in at.button]}"
    matches[0].click()
    at.run()
    assert not at.exception, at.exception


def load_and_detect(at, video):
    """Load a local video and run a YOLO model built from its YAML (random weights, tiny floor)."""
    at.segmented_control(key="source").set_value("Local path")
    at.run()
    at.text_input[0].input(str(video))
    click(at, "Load file")
    at.radio(key="model_choice").set_value("YOLO weights path")
    at.run()
    at.text_input(key="weights_path").input("yolov8n.yaml")
    at.number_input(key="conf").set_value(0.0001)
    at.run()
    click(at, "Run detection")


def export_from_app(at, folder):
    """On the Export & schedule page, export the current review to ``folder``."""
    at.switch_page("pages/export.py")
    at.run()
    at.text_input(key="export_dir").input(str(folder))
    at.run()
    click(at, "Export")


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_pages_without_a_video_explain_what_to_do(app):
    for page in ("pages/review.py", "pages/export.py"):
        app.switch_page(page)
        app.run()
        assert not app.exception
        assert "No detections yet" in app.info[0].value


def test_bad_local_path_shows_an_error_not_a_traceback(app, bad_files):
    app.segmented_control(key="source").set_value("Local path")
    app.run()
    app.text_input[0].input(str(bad_files["text"]))
    click(app, "Load file")
    assert "not a video" in app.error[0].value


def test_missing_weights_show_an_error(app):
    app.radio(key="model_choice").set_value("YOLO weights path")
    app.run()
    app.text_input(key="weights_path").input("/nowhere/yolov8x.pt")
    app.run()
    assert not app.exception
    assert "Weights file not found" in app.error[0].value


def test_load_detect_review_export(app, tiny_slice, tmp_path):
    app.segmented_control(key="source").set_value("Local path")
    app.run()
    app.text_input[0].input(str(tiny_slice))
    click(app, "Load file")
    assert metric(app, "Frames (as PyAV decodes them)") == "6"
    app.radio(key="model_choice").set_value("YOLO weights path")
    app.run()
    app.text_input(key="weights_path").input("yolov8n.yaml")
    app.run()
    app.number_input(key="conf").set_value(0.0001)
    app.run()
    click(app, "Run detection")
    assert "boxes on" in app.success[0].value

    app.switch_page("pages/review.py")
    app.run()
    assert not app.exception
    assert metric(app, "Boxes kept") != "0"
    app.slider(key="iou_track").set_value(0.3)
    app.slider(key="iou_assert").set_value(0.9)
    app.run()
    flagged = int(metric(app, "Flagged frames"))
    click(app, "Next")
    assert app.session_state["frame"] == 1
    app.number_input(key="jump_to").set_value(4)
    app.run()
    assert app.session_state["frame"] == 4
    app.slider(key="iou_assert").set_value(0.0)
    app.run()
    assert int(metric(app, "Flagged frames")) == 0  # nothing has IoU below 0
    app.slider(key="iou_assert").set_value(0.9)
    app.run()
    assert int(metric(app, "Flagged frames")) == flagged
    assert flagged > 0, "random weights at a tiny floor flicker a lot"
    app.session_state["frame"] = 0
    click(app, "Flagged")  # previous flagged frame: there is none before frame 0
    assert app.session_state["frame"] == 0
    [b for b in app.button if b.key == "next_flagged"][0].click()
    app.run()
    frame = app.session_state["frame"]
    assert frame > 0
    click(app, "True miss")
    fingerprint = app.session_state["video"].info.fingerprint
    assert VerdictStore(tmp_path / "data" / "verdicts.sqlite").all(fingerprint) == {frame: "miss"}

    export_from_app(app, tmp_path / "export")
    assert "Valid Lightly datasource" in app.success[0].value
    assert len(list((tmp_path / "export/.lightly/predictions/yolov8_detection").glob("tiny-*-mp4.json"))) == 6


def test_improved_mode_options_update_the_result(app, tiny_slice):
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/review.py")
    app.run()
    app.radio(key="mode").set_value("improved")
    app.run()
    assert not app.exception
    assert app.toggle(key="class_aware").value is True
    app.slider(key="window").set_value(2)
    app.slider(key="min_score").set_value(float(np.float32(0.00015)))
    app.run()
    assert not app.exception


def test_thresholds_survive_page_switches_and_tabs_are_independent(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/review.py")
    app.run()
    app.slider(key="iou_track").set_value(0.42)
    app.run()
    app.switch_page("pages/export.py")
    app.run()
    app.switch_page("pages/review.py")
    app.run()
    assert app.slider(key="iou_track").value == pytest.approx(0.42)

    other_tab = AppTest.from_file("../app.py", default_timeout=180)
    other_tab.run()
    other_tab.switch_page("pages/review.py")
    other_tab.run()
    assert "No detections yet" in other_tab.info[0].value  # a second tab starts clean
    assert app.slider(key="iou_track").value == pytest.approx(0.42)


def test_export_then_push_to_a_folder(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    app.text_input(key="push_url").input(str(tmp_path / "bucket"))
    app.text_input(key="push_input_url").input(str(tmp_path / "input"))
    app.run()
    click(app, "Push")
    assert "uploaded" in app.success[-1].value
    assert (tmp_path / "bucket/.lightly/predictions/tasks.json").is_file()
    assert (tmp_path / "input/tiny.mp4").read_bytes() == tiny_slice.read_bytes()
    app.text_input(key="push_url").input(str(tmp_path / "nowhere.txt"))
    (tmp_path / "nowhere.txt").write_text("a file, not a folder")
    app.run()
    click(app, "Push")
    assert app.error, "pushing into a file path gives a clear error"


def test_schedule_from_the_app(app, tiny_slice, tmp_path, monkeypatch):
    from fake_lightly import GOOD_TOKEN, RUN_ID, FakeLightly

    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    app.text_area(key="extra_strategies").input("{not json")
    app.run()
    assert any("Selection config" in e.value for e in app.error)
    app.text_area(key="extra_strategies").input("")
    app.text_input(key="schedule_input_url").input("s3://bucket/input/")
    app.text_input(key="schedule_lightly_url").input("s3://bucket/lightly/")
    app.text_input(key="s3_role_arn").input("arn:aws:iam::123456789012:role/lightly-access")
    app.text_input(key="s3_external_id").input("flicker-external-id")
    app.text_input(key="lightly_token").input(GOOD_TOKEN)
    app.slider(key="flicker_strength").set_value(2.5)
    app.run()
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        click(app, "Schedule Lightly selection")
    assert RUN_ID in app.success[-1].value
    selection = fake.requests[-2]["body"]["config"]["selection"]
    assert selection["strategies"][2]["strategy"]["strength"] == 2.5


def test_local_selection_on_the_review_page(app, tiny_slice):
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/review.py")
    app.run()
    app.number_input(key="local_n").set_value(3)
    app.run()
    click(app, "Run local selection")
    selection = app.session_state["local_selection"]
    picked = selection.frames
    assert len(picked) == 3 and selection.config["n_samples"] == 3
    assert any("3 frames selected" in m.value for m in app.markdown)
    show = [b for b in app.button if b.key == f"show_{sorted(picked)[-1]}"][0]
    show.click()
    app.run()
    assert app.session_state["frame"] == sorted(picked)[-1]
