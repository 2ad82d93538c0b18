"""The app under streamlit.testing.v1.AppTest: every page runs, widgets drive real work."""
import json
import re

import numpy as np
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from core.lightly.export import DEFAULT_TASK
from core.paths import SAMPLE_VIDEO
from core.verdicts import VerdictStore
from core.words import markdown_literal
from ui import session
from ui.viewer import frames


def click(at, label):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r} in {[b.label for b in at.button]}"
    matches[0].click()
    at.run()
    assert not at.exception, at.exception


def load_sample_with_boxes(at, path) -> None:
    """The sample on the Load page with the boxes of a file on this machine (*Boxes made elsewhere*, Local path)."""
    click(at, "Load the sample")
    at.segmented_control(key="boxes_origin").set_value("Local path")
    at.run()
    at.text_input(key="boxes_path").input(str(path))
    click(at, "Use these boxes")


def load_and_detect(at, video, classes: list[str] | None = None, conf: float = 0.0001):
    """Load a local video and run a YOLO model built from its YAML (random weights, tiny floor),
    keeping only ``classes`` when given."""
    at.segmented_control(key="source").set_value("Local path")
    at.run()
    at.text_input[0].input(str(video))
    click(at, "Load file")
    at.radio(key="model_choice").set_value("YOLO weights path")
    at.run()
    at.text_input(key="weights_path").input("yolov8n.yaml")
    at.number_input(key="conf").set_value(conf)
    at.run()
    if classes is not None:
        at.multiselect(key="classes").set_value(classes)
        at.run()
    click(at, "Run detection")


def reopen_review(query_params: dict) -> AppTest:
    """The review page opened from a link in a new session, as after a reload."""
    reloaded = AppTest.from_file("../app.py", default_timeout=180)
    reloaded.switch_page("pages/review.py")
    reloaded.query_params = dict(query_params)
    reloaded.run()
    assert not reloaded.exception and not reloaded.error
    return reloaded


def export_from_app(at, folder):
    """On the Export & schedule page, export the current review to ``folder``."""
    at.switch_page("pages/export.py")
    at.run()
    at.text_input(key="export_dir").input(str(folder))
    at.run()
    click(at, "Export")


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def viewer_data(at) -> dict:
    """What the review page sent to the frame viewer component."""
    return json.loads(at.get("bidi_component")[0].proto.json)


def viewer_sends(at, trigger: dict | None = None, **values) -> None:
    """Rerun as if the viewer (JS that AppTest cannot run) had sent ``values`` (its state: the frame) or
    ``trigger`` (an event such as a verdict), the way the browser sends them."""
    viewer_id = at.get("bidi_component")[0].proto.id
    states = at._tree.get_widget_states()
    if values:
        old = next((json.loads(w.json_value) for w in states.widgets if w.id == viewer_id), {})
        states.widgets.append(WidgetState(id=viewer_id, json_value=json.dumps({**old, **values})))
    if trigger:
        states.widgets.append(WidgetState(id=f"$$STREAMLIT_INTERNAL_KEY_{viewer_id}__events",
                                          json_trigger_value=json.dumps([trigger])))
    at._run(states)
    assert not at.exception, at.exception


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


def test_a_video_in_a_home_folder_of_no_user_is_an_error_not_a_traceback(app):
    """``~nosuchuser/walk.mp4`` in the path box raised Path.expanduser's RuntimeError before the error boundary."""
    app.segmented_control(key="source").set_value("Local path")
    app.run()
    app.text_input[0].input("~no-such-user-h7/walk.mp4")
    click(app, "Load file")
    assert not app.exception
    assert "names no user's home folder" in app.error[0].value
    app.text_input[0].input("/tmp/a\0b.mp4")
    click(app, "Load file")
    assert not app.exception
    assert "holds a NUL byte" in app.error[0].value


def test_a_folder_given_as_the_video_points_to_the_batch_section_filled_in(app, tmp_path):
    """"... is a directory, not a video file" said nothing of where a folder of videos, or a batch's
    output, opens: the batch section below takes either, filled in."""
    videos, out = tmp_path / "cams", tmp_path / "out"
    videos.mkdir()
    out.mkdir()
    (out / "summary.csv").write_text("relpath,source,status,error,frames,boxes,flagged,flagged_share\n")
    app.segmented_control(key="source").set_value("Local path")
    app.run()
    app.text_input[0].input(str(videos))
    click(app, "Load file")
    assert "is a directory" in app.error[0].value
    assert "run a batch on it under *Many videos: a batch*" in app.info[0].value
    assert app.text_input(key="batch_inputs").value == str(videos)
    app.text_input[0].input(str(out))
    click(app, "Load file")
    assert "This is a batch output folder" in app.info[0].value
    assert app.text_input(key="batch_open_dir").value == str(out)


def test_missing_weights_show_an_error(app):
    app.radio(key="model_choice").set_value("YOLO weights path")
    app.run()
    app.text_input(key="weights_path").input("/nowhere/yolov8x.pt")
    app.run()
    assert not app.exception
    assert "Weights file not found" in app.error[0].value
    click(app, "Load the sample")  # a video is open: the hint is about the model, not the video
    assert "Weights file not found" in app.error[0].value
    assert any(i.value.startswith("Choose a model that loads") for i in app.info), [i.value for i in app.info]


def test_a_run_that_finds_no_box_says_so_as_a_warning_not_a_success(app, tiny_slice):
    """Random weights above a high floor find nothing: that is no result to celebrate or review."""
    load_and_detect(app, tiny_slice, conf=1.0)
    assert not app.success and not app.exception
    assert any("No boxes on any of the 6 frames" in w.value for w in app.warning), [w.value for w in app.warning]


@pytest.mark.filterwarnings("ignore::core.video.TruncatedVideoWarning")  # said on the page: what this checks
def test_frames_that_do_not_decode_are_said_beside_the_detections(app, tmp_path):
    """They were said only in the server's log: the page showed a plain success."""
    from test_video import _damaged_h264

    _, damaged = _damaged_h264(tmp_path, step=4)
    load_and_detect(app, damaged, conf=0.9)
    assert not app.exception
    assert any("damaged.mp4: 3 of 60 frames could not be decoded" in w.value for w in app.warning), \
        [w.value for w in app.warning]


def test_a_reload_of_the_load_page_reopens_its_video_model_and_cached_detections(app, tiny_slice):
    """The Load page keeps its video and model in its URL: a new tab on that URL (a reload) shows the
    same video, the same model choices, and the detections from the disk cache, without a run."""
    load_and_detect(app, tiny_slice, classes=["0", "2"])  # a model built from its YAML names classes by number
    app.run()  # (a run's speed is said once, after it: not on a reload)
    params = dict(app.query_params)
    assert (params["video"], params["weights"], params["conf"], params["classes"]) == (str(tiny_slice), "yolov8n.yaml",
                                                                                       "0.0001", "0,2")
    boxes = app.success[0].value
    reloaded = AppTest.from_file("../app.py", default_timeout=180)
    reloaded.query_params = params
    reloaded.run()
    assert not reloaded.exception and not reloaded.error, [e.value for e in reloaded.error]
    assert metric(reloaded, "Frames") == "6"
    # the Source where the video is: it read "Bundled sample", the sample's caption above another video's facts
    assert reloaded.segmented_control(key="source").value == "Local path"
    assert reloaded.text_input(key="weights_path").value == "yolov8n.yaml" and reloaded.number_input(key="conf").value == 0.0001
    assert reloaded.multiselect(key="classes").value == ["0", "2"]
    assert [s.value for s in reloaded.success] == [boxes]  # from the cache: the same boxes, no detection run
    sample = AppTest.from_file("../app.py", default_timeout=180)
    sample.query_params = {"video": str(SAMPLE_VIDEO)}
    assert sample.run().segmented_control(key="source").value == "Bundled sample"
    unknown = AppTest.from_file("../app.py", default_timeout=180)
    unknown.query_params = {"video": "/no/such/video.mp4", "weights": "yolov8n.yaml", "conf": "nan"}
    unknown.run()
    assert not unknown.exception and unknown.number_input(key="conf").value == 0.1  # a link's junk: the default
    assert any("video.mp4" in e.value for e in unknown.error)


def test_the_load_page_after_a_review_link_opens_on_that_video_and_model(app, tiny_slice):
    """Review opened from its URL first, then Load & detect: the Source and the model panel are the
    review's. They read "Bundled sample" (its caption above another video) and the default model,
    whose cached boxes of the video then replaced the review's."""
    load_and_detect(app, tiny_slice, classes=["0", "2"])
    app.switch_page("pages/review.py")
    app.run()
    review = reopen_review(app.query_params)
    reviewed = review.session_state["review"].detection_id
    review.switch_page("pages/load.py")
    review.run()
    assert not review.exception and not review.error, [e.value for e in review.error]
    assert review.segmented_control(key="source").value == "Local path"
    assert review.radio(key="model_choice").value == "YOLO weights path"
    assert review.text_input(key="weights_path").value == "yolov8n.yaml" and review.number_input(key="conf").value == 0.0001
    assert review.multiselect(key="classes").value == ["0", "2"]
    assert review.session_state["review"].detection_id == reviewed


@pytest.fixture
def started_with_sample(walk_hog, shared_cache, tmp_path, monkeypatch):
    """`streamlit run app.py -- --sample`, its sample a 20-frame cut whose boxes by the default (HOG)
    detector are cached; any detection run fails the test (the sample's boxes come from the cache)."""
    import sys

    from core import paths
    from core.settings import DetectorSpec

    monkeypatch.setattr(sys, "argv", [*sys.argv, "--sample"])
    monkeypatch.setattr(paths, "SAMPLE_VIDEO", walk_hog[0].path)
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(DetectorSpec, "detect", lambda *args, **kwargs: pytest.fail("detection ran"))
    return walk_hog


def first_page(page: str, **query_params) -> AppTest:
    """A new tab whose first page is ``page`` (a bookmark, a typed URL) as the server runs it: app.py's
    navigation first, then the page. AppTest alone runs a page opened before any run as a file of
    the pages/ folder, without app.py (the server's old mode, which app.py's lifespan turns off)."""
    from unittest.mock import patch

    from streamlit.runtime.pages_manager import PagesManager

    made = PagesManager.__init__

    def navigation_only(self, *args, **kwargs):
        made(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    at = AppTest.from_file("../app.py", default_timeout=180)
    at.switch_page(page)
    at.query_params = query_params
    with patch.object(PagesManager, "__init__", navigation_only):
        at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page, title", [("pages/review.py", "Review"), ("pages/qa.py", "Verdicts & thresholds")])
def test_with_sample_a_tab_opened_on_any_page_shows_the_sample(started_with_sample, page, title):
    """--sample opened the sample on the Load page only: a tab whose first page was Review or Verdicts
    (a bookmark, a URL typed) said "No detections yet: load a video and run detection first"."""
    info, boxes = started_with_sample
    at = first_page(page)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == title and not any("No detections" in i.value for i in at.info), [i.value for i in at.info]
    review = at.session_state["review"]
    assert review.video.info.path == info.path and len(review.detections) == len(boxes)
    at.switch_page("pages/load.py")  # the Load page shows the same review: the sample, its cached boxes
    at.run()
    assert not at.exception and at.session_state["review"].detection_id == review.detection_id
    assert at.segmented_control(key="source").value == "Bundled sample"


def test_with_sample_not_yet_detected_review_says_the_sample_is_loaded(started_with_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cold"))  # nothing detected yet: nothing runs either
    at = first_page("pages/review.py")
    assert [i.value for i in at.info] == ["walk.mp4 is loaded, without detections yet: run detection on Load & detect."]
    assert at.session_state["review"].detections is None


def test_with_sample_a_link_naming_no_video_opens_the_sample_at_its_frame(started_with_sample):
    """`/review?frame=12` (a review URL kept without its video) opened the sample on frame 0, and wrote
    frame=0 over the link's frame; the sample opens at the link's frame and settings now."""
    at = first_page("pages/review.py", frame="12", iou_track="0.5")
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["frame"] == 12 and at.query_params["frame"] == "12"
    assert at.session_state["iou_track"] == 0.5


def test_with_sample_a_link_to_another_video_still_wins(started_with_sample, sample_slice):
    """A tab opened on a link naming another video reviews that one, on that page and every page after."""
    at = first_page("pages/review.py", video=str(sample_slice))
    assert at.session_state["review"].video.info.path == sample_slice
    assert any("not cached here" in i.value for i in at.info)  # no boxes of it here: said, nothing detected
    for page in ("pages/load.py", "pages/qa.py"):
        at.switch_page(page)
        at.query_params.clear()
        at.run()
        assert not at.exception and at.session_state["review"].video.info.path == sample_slice, page


def test_the_export_pages_sample_reads_each_file_once_a_run(app, tiny_slice, tmp_path, monkeypatch):
    """The sample shown after an export read its prediction and its metadata file twice on every run of the
    Export page: once as sample_files chose it, again to show it."""
    from collections import Counter

    from core.lightly import export

    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    reads, read_capped = Counter(), export.read_capped
    monkeypatch.setattr(export, "read_capped", lambda path, *args, **kwargs: reads.update([path]) or read_capped(path, *args, **kwargs))
    app.run()  # a rerun of the page: the export's result and its sample drawn again
    assert not app.exception and [sorted(json.loads(shown.value)) for shown in app.json] == [
        ["file_name", "predictions"], ["file_name", "metadata", "type"]]
    lightly = tmp_path / "export/.lightly"
    shown = [lightly / m.value.split("`")[1] for m in app.markdown if m.value.startswith(("Sample prediction", "Its metadata"))]
    assert len(shown) == 2 and [reads[path] for path in shown] == [1, 1], reads.most_common(3)
    assert max(reads.values()) == 1  # nor any other file twice


def test_load_detect_review_export(app, tiny_slice, tmp_path):
    app.segmented_control(key="source").set_value("Local path")
    app.run()
    app.text_input[0].input(str(tiny_slice))
    click(app, "Load file")
    assert metric(app, "Frames") == "6"
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
    assert app.title[0].value == "Review"
    assert metric(app, "Boxes kept") != "0"
    app.slider(key="iou_track").set_value(0.3)
    app.slider(key="iou_assert").set_value(0.9)
    app.run()
    flagged = int(metric(app, "Flagged frames"))
    assert viewer_data(app)["view"]["flags"].count("1") == flagged, "the viewer draws the flags the counts count"
    review = app.session_state["review"]
    video = viewer_data(app)["video"]  # the viewer fetches frames and boxes from these (tests/test_frames_http.py)
    assert video["frames"] == frames.frames_url(review.video.info) == f"/api/viewer/frames/{review.video.info.fingerprint}/"
    assert video["boxes"] == frames.boxes_url(review.detection_id, review.detections)
    app.slider(key="iou_assert").set_value(0.0)
    app.run()
    assert int(metric(app, "Flagged frames")) == 0  # nothing has IoU below 0
    app.slider(key="iou_assert").set_value(0.9)
    app.run()
    assert int(metric(app, "Flagged frames")) == flagged
    assert flagged > 0, "random weights at a tiny floor flicker a lot"
    viewer_sends(app, frame=1)  # the viewer settled on frame 1
    assert app.session_state["frame"] == 1 and app.query_params["frame"] == "1"

    assert session.UNNAMED in [c.value for c in app.sidebar.caption]  # said while no name is given
    app.text_input(key="annotator").input("ana").run()  # Review's own field: its verdicts were stored unnamed
    assert session.UNNAMED not in [c.value for c in app.sidebar.caption]
    assert "annotator" not in app.query_params  # Review's links are shared: the name would sign another's verdicts
    frame = viewer_data(app)["view"]["flags"].index("1")
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": frame, "verdict": "miss"}})
    fingerprint = app.session_state["review"].video.info.fingerprint
    assert VerdictStore(tmp_path / "data" / "verdicts.sqlite").all(fingerprint) == {frame: "miss"}
    assert [r[2] for r in VerdictStore(tmp_path / "data" / "verdicts.sqlite").records(fingerprint)] == ["ana"]
    assert metric(app, "Reviewed") == f"1 / {flagged}"
    assert viewer_data(app)["view"]["verdicts"] == {str(frame): "miss"}

    # A burst of keys between two runs: Streamlit keeps the last trigger only (3 of 6 verdicts were
    # lost), so each carries every verdict the viewer has not seen back; those stored already are
    # not written again (their history, which Z walks back, has one change each).
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    others = [f for f, flag in enumerate(viewer_data(app)["view"]["flags"]) if flag == "1" and f != frame][:2]
    burst = [{"frame": frame, "verdict": "miss", "assertion": "flicker", "allowed": [None]},  # stored already
             {"frame": others[0], "verdict": "false_alarm", "assertion": "flicker", "allowed": [None]},
             {"frame": others[1], "verdict": "unsure", "assertion": "flicker", "allowed": [None]}]
    viewer_sends(app, trigger={"event": "verdict", "value": {**burst[-1], "unsent": burst}})
    assert store.all(fingerprint) == {frame: "miss", others[0]: "false_alarm", others[1]: "unsure"}
    assert store.undo(fingerprint).frame == others[1] and store.undo(fingerprint).frame == others[0]
    assert store.undo(fingerprint).frame == frame and store.all(fingerprint) == {}
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": frame, "verdict": "miss"}})
    store.set(fingerprint, others[0], "false_alarm")

    export_from_app(app, tmp_path / "export")
    assert "a valid Lightly datasource" in app.success[0].value
    assert [sorted(json.loads(shown.value)) for shown in app.json] == [["file_name", "predictions"], ["file_name", "metadata", "type"]]
    # a flagged frame judged a false alarm is exported flagged all the same: the page says so
    assert any(c.value.startswith("Verdicts do not change the export") and "1 frame judged a false alarm" in c.value
               for c in app.caption)
    task = app.text_input(key="export_task").value
    assert task == DEFAULT_TASK, "the app exports the task the CLI exports"
    assert len(list((tmp_path / f"export/.lightly/predictions/{task}").glob("tiny-*-mp4.json"))) == 6
    assert not any("nothing was written there" in c.value for c in app.caption)

    (tmp_path / "a_file").write_text("")
    export_from_app(app, tmp_path / "a_file" / "export")  # fails: under a file
    (error,) = app.error
    assert "Export failed" in error.value
    assert str(tmp_path / "export") in app.success[0].value  # the last export that worked, named by its folder
    assert any("nothing was written there" in c.value for c in app.caption)
    assert any(f"Sends `{tmp_path / 'export' / '.lightly'}`" in c.value for c in app.caption)
    for folder, says in ((tmp_path / "a_file", f"Output folder {markdown_literal(tmp_path / 'a_file')} is a file, not a folder: "
                                               "give a folder (it is made if missing)"),
                         ("  ", "Output folder is empty: give an absolute folder (like /data/flicker)")):
        export_from_app(app, folder)  # said so, not "File exists" or "'' is a relative path"
        assert [e.value for e in app.error] == [f"Export failed: {says}"]


def test_older_verdicts_on_a_trimmed_mp4_are_said_to_sit_on_other_frames_now(app, tmp_path):
    """A trimmed MP4's hidden frames were counted until 2026-12-07: its older verdicts are keyed by the frames
    of then, so Review and Verdicts say so instead of showing them on other frames without a word."""
    import sqlite3

    import cv2

    from conftest import sample_frames, write_video

    frames = [cv2.resize(f, (384, 288)) for f in sample_frames(12, start=100)]
    trimmed = write_video(tmp_path / "trim.mp4", frames, codec="libx264", options={"g": "6", "bf": "2"}, first_pts=-4)
    load_and_detect(app, trimmed)
    fingerprint = app.session_state["review"].video.info.fingerprint
    store_file = tmp_path / "data" / "verdicts.sqlite"
    VerdictStore(store_file).set(fingerprint, 2, "miss")
    db = sqlite3.connect(store_file)
    with db:
        db.execute("UPDATE verdicts SET drawn = NULL")  # as the version before wrote it
    db.close()
    for page in ("pages/review.py", "pages/qa.py"):
        app.switch_page(page)
        app.run()
        assert not app.exception, app.exception
        assert any("1 verdict on this video was given before frames were counted as PyAV decodes them" in w.value
                   and "4 hidden frames" in w.value for w in app.warning), (page, [w.value for w in app.warning])


def test_a_store_that_fails_leaves_review_usable_and_says_which_verdict_was_not_saved(app, tiny_slice, tmp_path):
    """A damaged (or locked, or full) verdict store took the whole Review page down with a redacted
    error, and a verdict given then was lost without a word."""
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/review.py")
    app.run()
    app.slider(key="iou_assert").set_value(0.9)  # random weights: frames flagged at this threshold
    app.run()
    frame = viewer_data(app)["view"]["flags"].index("1")
    store_file = tmp_path / "data" / "verdicts.sqlite"
    kept = store_file.read_bytes()
    store_file.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)  # damaged under the running app
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": frame, "verdict": "miss"}})
    errors = [e.value for e in app.error]
    assert any(e.startswith(f"The verdict on frame {frame:,} was not saved:") and "not a readable verdicts database" in e
               for e in errors), errors
    assert any(e.startswith("Verdicts cannot be read or saved now:") for e in errors), errors
    assert viewer_data(app)["unsaved"] == [f"flicker:{frame}"]  # the viewer shows it as not given
    assert metric(app, "Flagged frames"), "the frame and its counts are still there"
    store_file.write_bytes(kept)
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": frame, "verdict": "miss"}})  # given again
    assert not app.error and viewer_data(app)["unsaved"] == []
    fingerprint = app.session_state["review"].video.info.fingerprint
    assert VerdictStore(store_file).all(fingerprint) == {frame: "miss"}
    # damaged again, and moved aside as the error advises: the app starts a new store, no restart needed
    store_file.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    store_file.rename(tmp_path / "damaged.sqlite")
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": frame, "verdict": "false_alarm"}})
    assert not app.error, [e.value for e in app.error]
    assert VerdictStore(store_file).all(fingerprint) == {frame: "false_alarm"}


def test_an_export_the_data_folder_cannot_remember_is_still_an_export(app, tiny_slice, tmp_path):
    """A read-only data folder showed "Export failed" beside "Exported to ..." (only remembering the
    folder for the next visit had failed)."""
    from core.export_dirs import STORE_NAME

    load_and_detect(app, tiny_slice)
    (tmp_path / "data" / STORE_NAME).mkdir(parents=True)  # where that file goes: no file can be written there
    export_from_app(app, tmp_path / "export")
    assert not app.error and "a valid Lightly datasource" in app.success[0].value
    assert any(c.value.startswith("The folder was not remembered for the next visit") for c in app.caption)


def test_the_export_page_says_whether_the_export_holds_the_flags_on_screen(app, tiny_slice, tmp_path):
    """The manifest records a digest of each video's kept boxes and flags: after a retune on Review
    the Export page warns that the export holds other flags; a reload at the exported settings says
    the export from before this session holds those on screen."""
    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    stale = lambda at: [w.value for w in at.warning if "written with other flags than those on screen" in w.value]  # noqa: E731
    assert not stale(app)
    app.switch_page("pages/review.py")
    app.run()
    url, exported = dict(app.query_params), metric(app, "Flagged frames")  # the review as exported
    app.slider(key="iou_track").set_value(0.3)
    app.slider(key="iou_assert").set_value(0.9)
    app.run()
    assert metric(app, "Flagged frames") != exported  # random weights at a tiny floor flicker at these
    app.switch_page("pages/export.py")
    app.run()
    assert stale(app), "a retune since the export"
    reloaded = AppTest.from_file("../app.py", default_timeout=180)
    reloaded.switch_page("pages/export.py")
    reloaded.query_params = url
    reloaded.session_state["export_dir"] = str(tmp_path / "export")
    reloaded.run()
    assert not stale(reloaded)
    assert any("exported before this session with the flags on screen" in c.value for c in reloaded.caption), \
        [c.value for c in reloaded.caption]


def test_a_reload_reopens_the_same_review_from_the_url(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/review.py")
    app.run()
    app.slider(key="iou_track").set_value(0.42)
    app.radio(key="mode").set_value("improved")
    app.run()
    viewer_sends(app, frame=3)
    url = dict(app.query_params)
    assert url["video"] == str(tiny_slice) and url["frame"] == "3" and url["iou_track"] == "0.42"

    reloaded = reopen_review(url)
    assert reloaded.slider(key="iou_track").value == pytest.approx(0.42)
    assert reloaded.radio(key="mode").value == "improved"
    assert reloaded.session_state["frame"] == 3 and viewer_data(reloaded)["seek"][1] == 3
    assert metric(reloaded, "Flagged frames") == metric(app, "Flagged frames"), "detections came back from the cache"


def test_review_and_verdicts_name_the_video_whole_in_the_sidebar(app, tiny_slice):
    """Beside the frame a long name is cut ("north_entrance_camera..." at 1280 px), where a batch's cameras
    differ: the sidebar, which has the room, names it whole."""
    load_and_detect(app, tiny_slice)
    for page in ("pages/review.py", "pages/qa.py"):
        app.switch_page(page)
        app.run()
        assert not app.exception, app.exception
        assert "Video: tiny.mp4" in [caption.value for caption in app.sidebar.caption], page


def test_kept_classes_go_in_the_url_as_ids_and_a_link_brings_them_back(app, tiny_slice):
    load_and_detect(app, tiny_slice, classes=["0", "2"])  # a model built from its YAML names classes by number
    review = app.session_state["review"]
    assert review.detector.classes == ("0", "2") and set(review.detections.cls.tolist()) <= {0, 2}
    app.switch_page("pages/review.py")
    app.run()
    assert app.query_params["classes"] == "0,2"

    reloaded = reopen_review(app.query_params)
    assert reloaded.session_state["review"].detection_id == review.detection_id  # core's cache key, the same run


def test_a_link_is_untrusted_input(app, tiny_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "allowed"))
    app.switch_page("pages/review.py")
    app.query_params = {"video": str(tiny_slice), "weights": "builtin:hog-people", "frame": "zzz", "iou_track": "7"}
    app.run()
    assert not app.exception
    assert "outside the folders this app may use" in app.error[0].value
    assert "this link names is not open here" in app.info[0].value


def test_a_failed_load_keeps_the_previous_video_open_and_says_so(app, tiny_slice, bad_files):
    load_and_detect(app, tiny_slice)
    review = app.session_state["review"]
    app.text_input[0].input(str(bad_files["text"]))
    click(app, "Load file")
    assert "not a video" in app.error[0].value
    assert app.info[0].value == f"{review.video.relpath} is still open."
    assert app.session_state["review"] is review and review.detections is not None
    assert app.success, "its detections are still shown"


def test_cancel_is_offered_only_while_a_detection_runs(app):
    click(app, "Load the sample")
    assert next(b for b in app.button if b.label == "Load the sample").disabled, "not offered again while open"
    assert app.button(key="cancel_detection").disabled  # nothing runs (the browser test cancels a real run)
    app.session_state["detection_progress"] = (12, 795)  # a run this tab left, on another page, at frame 12
    app.run()
    click(app, "Cancel")
    assert "Detection cancelled after 12 of 795 frames" in app.warning[0].value
    app.run()
    assert app.button(key="cancel_detection").disabled  # from the next run on: the progress was said and forgotten


def test_a_finished_detection_no_longer_offers_cancel_and_says_its_speed(app, tiny_slice):
    """Drawn as it was while detecting, the page kept Cancel offered and Run detection red after the last frame."""
    load_and_detect(app, tiny_slice, conf=0.00009)  # a floor of its own: detected here, not read from the shared cache
    assert not app.exception and app.button(key="cancel_detection").disabled
    assert app.button(key="run_detection").proto.type == "secondary"  # the next step is Review's link
    assert re.search(r"\([\d.]+ per frame, detected at [\d.]+ frames per second\)", app.success[0].value), app.success[0].value
    app.run()  # said once, for the run just done: a cached reopen has no speed to tell
    assert "frames per second" not in app.success[0].value


def test_a_rejected_upload_is_not_kept(app, tmp_path):
    app.segmented_control(key="source").set_value("Upload")
    app.run()
    app.file_uploader[0].upload("notes.mp4", b"a shopping list, not a video")
    app.run()
    assert "not a video" in app.error[0].value
    assert not list((tmp_path / "data").rglob("notes.mp4"))
    app.run()  # tried once; while it stays chosen, said to be not open
    assert not app.error and [w.value for w in app.warning] == ["notes.mp4 did not open: choose another file."]


def test_a_video_chosen_in_the_uploader_opens_and_is_the_one_detected(app, tiny_slice, monkeypatch):
    """With the sample open, a video chosen in the uploader waited for a second click (*Load upload*): Run detection
    ran on the sample (its cached boxes), and Review opened it. Chosen, it opens, kept and probed once."""
    click(app, "Load the sample")
    app.segmented_control(key="source").set_value("Upload")
    app.run()
    opened = []
    monkeypatch.setattr(session, "open_upload", lambda *args, kept=session.open_upload: opened.append(args[0]) or kept(*args))
    app.file_uploader[0].upload("clip_a.mp4", tiny_slice.read_bytes())
    app.run()
    assert not app.exception and not app.error
    assert "**clip\\_a.mp4**" in [m.value for m in app.markdown] and metric(app, "Frames") == "6"
    click(app, "Run detection")
    said = [e.value for e in [*app.success, *app.warning]]  # boxes or none, on the upload's 6 frames (the sample has 795)
    assert any(" 6 frames" in text for text in said) and not any("795" in text for text in said), said
    app.switch_page("pages/review.py")
    app.run()
    assert not app.exception and app.session_state[session.REVIEW].video.relpath == "clip_a.mp4"
    assert opened == ["clip_a.mp4"]  # once: not at each run of the page while it stays chosen


def test_an_upload_is_named_as_kept_and_can_be_exported(app, tiny_slice, tmp_path):
    """A video uploaded as '../../cam\\n1.mp4' (a name a client sends as it likes; a newline is allowed on Linux and
    macOS) was kept as 'cam_1.mp4' but reviewed under the name sent: the Export page offered the folder 'cam\\n1' and
    its export failed, 'Video name ... holds a character that is not printable ...: rename the file'."""
    app.segmented_control(key="source").set_value("Upload")
    app.run()
    app.file_uploader[0].upload("../../cam\n1.mp4", tiny_slice.read_bytes())
    app.run()
    assert not app.exception and not app.error
    assert app.session_state[session.REVIEW].video.relpath == "cam_1.mp4"
    click(app, "Run detection")
    app.switch_page("pages/export.py")
    app.run()
    click(app, "Export")
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert (tmp_path / "data" / "exports" / "cam_1" / ".lightly").is_dir()


def test_refused_weights_uploaded_are_not_kept(app, tmp_path):
    """Weights refused on upload (here no model at all) stayed under the data folder."""
    app.radio(key="model_choice").set_value("Upload weights")
    app.run()
    app.file_uploader[0].upload("weights.pt", b"not a model")
    app.run()
    assert not app.exception and app.error, "refused in one line"
    uploads = tmp_path / "data" / "uploads"
    assert not uploads.exists() or not any(uploads.rglob("weights.pt"))


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
    app.checkbox(key="push_dry_run").check()
    app.run()
    click(app, "Push")
    [listing] = [c.value for c in app.code if " -> " in c.value]
    to_send = int(app.success[-1].value.split("dry run: ")[1].split(" file")[0])
    assert len(listing.splitlines()) == to_send and "more" not in listing  # every file, each line once
    assert not (tmp_path / "bucket").exists()
    app.checkbox(key="push_dry_run").uncheck()
    app.run()
    click(app, "Push")
    assert app.success[-1].value.startswith("Uploaded")
    assert (tmp_path / "bucket/.lightly/predictions/tasks.json").is_file()
    assert (tmp_path / "input/tiny.mp4").read_bytes() == tiny_slice.read_bytes()
    # a local folder is no datasource Lightly reads: the schedule's fields stay empty (a bucket fills them)
    assert app.text_input(key="schedule_lightly_url").value == "" == app.text_input(key="schedule_input_url").value
    app.text_input(key="push_url").input(str(tmp_path / "nowhere.txt"))
    (tmp_path / "nowhere.txt").write_text("a file, not a folder")
    app.run()
    click(app, "Push")
    assert app.error, "pushing into a file path gives a clear error"


def test_an_export_into_a_batchs_folder_is_refused_and_leaves_it_as_it_was(app, tiny_slice, tmp_path):
    """The Export page replaced a batch's export of many videos with the one on screen, and the batch's summary.csv and
    done markers went on claiming the rest."""
    batch_out = tmp_path / "fleet"
    (batch_out / ".batch" / "done").mkdir(parents=True)
    (batch_out / "summary.csv").write_text("relpath,status\n")
    load_and_detect(app, tiny_slice)
    export_from_app(app, batch_out)
    assert any("is a batch's output folder (it holds .batch and summary.csv)" in e.value for e in app.error)
    assert not (batch_out / ".lightly").exists() and (batch_out / "summary.csv").read_text() == "relpath,status\n"


def fill_schedule_form(app, **values):
    """Type into the schedule form's fields without rerunning: a form sends them on submit."""
    fields = {"schedule_input_url": "s3://bucket/input/", "schedule_lightly_url": "s3://bucket/lightly/",
              "s3_role_arn": "arn:aws:iam::123456789012:role/lightly-access", "s3_external_id": "flicker-external-id"}
    for key, value in {**fields, **values}.items():
        app.text_input(key=key).set_value(value)


def test_schedule_from_the_app(app, tiny_slice, tmp_path, monkeypatch):
    from fake_lightly import GOOD_TOKEN, RUN_ID, FakeLightly

    monkeypatch.delenv("LIGHTLY_TOKEN", raising=False)
    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    fill_schedule_form(app)
    app.text_area(key="extra_strategies").set_value("{not json")
    click(app, "Dry run")
    assert any("Dry run failed: Selection config: extra strategies are not valid JSON" in e.value for e in app.error)
    app.text_area(key="extra_strategies").set_value("")
    app.slider(key="flicker_strength").set_value(2.5)
    app.text_input(key="lightly_token").set_value(GOOD_TOKEN)  # typed, never committed by a rerun: the submit sends it
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        click(app, "Schedule Lightly selection")
    assert not app.error, [e.value for e in app.error]
    assert RUN_ID in app.success[-1].value
    selection = fake.requests[-2]["body"]["config"]["selection"]
    assert selection["strategies"][2]["strategy"]["strength"] == 2.5

    click(app, "Dry run")
    assert "nothing was sent" in app.success[-1].value
    scheduled = next(r["body"] for r in json.loads(app.json[-1].value) if "config" in (r["body"] or {}))
    assert scheduled["config"]["selection"]["strategies"][2]["strategy"]["strength"] == 2.5
    assert GOOD_TOKEN not in app.json[-1].value


def test_schedule_buttons_say_which_fields_are_missing(app, tiny_slice, tmp_path, monkeypatch):
    monkeypatch.delenv("LIGHTLY_TOKEN", raising=False)
    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    buttons = {b.label: b for b in app.button}
    assert not buttons["Dry run"].disabled and not buttons["Schedule Lightly selection"].disabled
    click(app, "Dry run")
    assert [e.value for e in app.error] == [
        "Fill in Input datasource URL, Lightly datasource URL, Role ARN, External ID first."]
    fill_schedule_form(app, s3_role_arn="")
    click(app, "Schedule Lightly selection")
    assert [e.value for e in app.error] == ["Fill in Role ARN, Lightly token (or set LIGHTLY_TOKEN) first."]


def test_lightly_field_rules_are_one_line_before_anything_is_sent(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    fill_schedule_form(app, s3_external_id="short")
    click(app, "Dry run")
    assert [e.value for e in app.error] == ["Dry run failed: External ID must be at least 10 characters (Lightly's rule)"]
    fill_schedule_form(app, s3_region="mars-1", s3_role_arn="arn:aws:iam::12:role/x")
    click(app, "Dry run")
    assert "validation error" not in app.error[0].value and "\n" not in app.error[0].value
    assert "Bucket region must be one of" in app.error[0].value and "Role ARN must look like" in app.error[0].value


def test_output_folder_defaults_to_the_data_folder_and_is_remembered(app, tiny_slice, tmp_path, monkeypatch):
    from conftest import ROOT

    load_and_detect(app, tiny_slice)
    app.switch_page("pages/export.py")
    app.run()
    default = tmp_path / "data" / "exports" / "tiny"
    assert app.text_input(key="export_dir").value == str(default)
    export_from_app(app, tmp_path / "mine")
    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)  # a reload: a new session
    reloaded.run()
    load_and_detect(reloaded, tiny_slice)
    reloaded.switch_page("pages/export.py")
    reloaded.run()
    assert reloaded.text_input(key="export_dir").value == str(tmp_path / "mine")
    # the export is on disk though this session never made it: Push sends it, and says so
    assert any("exported before this session" in c.value for c in reloaded.caption)
    reloaded.text_input(key="push_url").input(str(tmp_path / "bucket"))
    reloaded.run()
    click(reloaded, "Push")
    assert reloaded.success[-1].value.startswith("Uploaded") and (tmp_path / "bucket/.lightly/predictions/tasks.json").is_file()
    reloaded.text_input(key="export_dir").input("relative/folder")
    reloaded.run()
    click(reloaded, "Export")
    assert "relative path" in reloaded.error[0].value
    assert not (ROOT / "relative").exists()


def test_push_refuses_a_relative_folder(app, tiny_slice, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load_and_detect(app, tiny_slice)
    export_from_app(app, tmp_path / "export")
    app.text_input(key="push_url").input("relative/folder")
    app.run()
    click(app, "Push")
    assert app.error[0].value == ("Push failed: Lightly datasource URL 'relative/folder' is a relative path: give an "
                                  "absolute folder (like /data/flicker) or a bucket URL (s3://, gs://, az://)")
    assert not (tmp_path / "relative").exists()


def test_local_selection_on_the_review_page(app, tiny_slice):
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/review.py")
    app.run()
    app.number_input(key="local_n").set_value(3)
    app.run()
    click(app, "Run local selection")
    selection, settings = app.session_state["review"].selection
    assert (settings.iou_track, settings.iou_assert) == (0.8, 0.6)
    picked = selection.frames
    assert len(picked) == 3 and selection.config["n_samples"] == 3
    assert any("3 frames selected" in m.value for m in app.markdown)
    show = [b for b in app.button if b.key == f"show_{sorted(picked)[-1]}"][0]
    show.click()
    app.run()
    assert app.session_state["frame"] == sorted(picked)[-1]
    assert viewer_data(app)["seek"][2] is True, "a seek from the gallery brings the viewer into view"
    assert viewer_data(app)["view"]["selected"] == sorted(picked.tolist())
    downloads = [d.proto.label for d in app.get("download_button")]
    assert downloads == ["JSON", "CSV"] and "Download the selected frames:" in [m.value for m in app.markdown]


def test_index_cache_keeps_indexes_within_a_byte_budget_newest_first():
    """Every score floor or option builds an index; the cache drops the least recently used once
    they hold more than the budget, keeps the newest whatever its size, and builds each once."""
    from core.detections import Detections
    from core.settings import FlickerSettings
    from ui.resources import IndexCache

    rng = np.random.default_rng(0)
    n, counts = 200, rng.integers(1, 6, 200)
    xy = rng.uniform(0, 50, (counts.sum(), 2))
    detections = Detections(np.repeat(np.arange(n), counts), np.concatenate([xy, xy + 40], 1),
                            rng.uniform(0, 1, counts.sum()), np.zeros(counts.sum(), np.int32), {0: "a"}, n, (100, 100))
    def floor(min_score: float) -> FlickerSettings:
        return FlickerSettings(min_score=min_score)

    one = IndexCache(budget=10**12).get("d", floor(0.0), detections)
    size = one[1].nbytes + sum(a.nbytes for a in (one[0].frame, one[0].xyxy, one[0].score, one[0].cls))
    cache = IndexCache(budget=2 * size)  # room for the full index and one smaller
    first = cache.get("d", floor(0.0), detections)
    assert cache.get("d", floor(0.0), detections) is first  # built once
    assert cache.get("d", floor(0.0).with_thresholds(0.3, 0.9), detections) is first  # thresholds: the same index
    cache.get("d", floor(0.1), detections)
    cache.get("d", floor(0.0), detections)  # used again: now the newest
    cache.get("d", floor(0.2), detections)  # over budget: the least recently used (0.1) goes
    assert [score for _, score, _ in cache._entries] == [0.0, 0.2]
    assert cache.get("d", floor(0.0), detections) is first
    tiny = IndexCache(budget=1)
    kept = tiny.get("d", floor(0.5), detections)
    assert len(kept[0]) < len(detections) and len(tiny._entries) == 1  # the newest stays
