"""Links into Review (issue 26): a link from another page of the app moves this tab's review to its
frame (or opens the other review it names) without a run of the page it is on; the Fleet page opens
a video from what it read while the button was on screen; a video probed, and a batch video read,
once while their files are unchanged."""
from __future__ import annotations

import os
import time
from urllib.parse import parse_qsl

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SAMPLE_VIDEO
from core.errors import UserError
from core.lightly.datasource import Datasource
from fleet_batch import make_batch
from ui import resources
from ui.url import LINK, batch_link
from ui.viewer import frames


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    return make_batch(tmp_path_factory.mktemp("links"))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception and not at.error, (at.exception, at.error)
    return at


def review_at(batch, relpath: str, frame: int) -> AppTest:
    """Review of a batch video opened by a deep link, as a new tab opens it."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/review.py")
    at.query_params = {"batch": str(batch), "relpath": relpath, "frame": str(frame)}
    return run(at)


def url(at: AppTest) -> dict:
    return {key: value[0] if isinstance(value, list) else value for key, value in at.query_params.items()}


def follow(at: AppTest, params: dict) -> AppTest:
    """What a click on ``st.page_link("pages/review.py", query_params=params)`` does: Review runs in
    this tab, with the link's parameters and this tab's session."""
    at.switch_page("pages/review.py")
    at.query_params = dict(params)
    return run(at)


def test_a_link_from_another_page_moves_this_tabs_review_and_a_stale_url_does_not(env, batch):
    at = review_at(batch, "walk_c.mp4", 2)
    assert at.session_state["frame"] == 2
    # review_link(view, 15): the URL this review writes (review_params), at frame 15, marked as a link
    link = {**url(at), "frame": "15", LINK: "1"}
    at.switch_page("pages/qa.py")  # the link is on another page of the app, holding the same review
    run(at)
    at = follow(at, link)
    assert at.session_state["frame"] == 15 and at.session_state["seek"][1] is True  # moved, viewer revealed
    assert at.session_state["review"].video.relpath == "walk_c.mp4"
    assert url(at)["frame"] == "15" and LINK not in url(at)  # the link's mark is not kept in the URL

    at.query_params["frame"] = "7"  # a rerun carrying a URL written before the viewer moved: no jump back
    at = run(at)
    assert at.session_state["frame"] == 15


def test_review_link_is_the_review_in_the_url_at_its_frame_marked_as_a_link(env, batch):
    def page():  # what a page holding the review builds its links to Review with
        import streamlit as st

        from ui.flicker_view import current_view
        from ui.url import restore_from_url, review_link, sync_url

        restore_from_url()
        view = current_view()
        sync_url(view)
        st.session_state["link"] = review_link(view, 7)

    at = AppTest.from_function(page, default_timeout=120)
    at.query_params = {"batch": str(batch), "relpath": "walk_c.mp4", "frame": "2"}
    run(at)
    assert url(at)["frame"] == "2"
    assert at.session_state["link"] == {**url(at), "frame": "7", LINK: "1"}


def test_a_link_naming_another_review_opens_it_at_its_frame(env, batch):
    at = review_at(batch, "walk_c.mp4", 2)
    at = follow(at, {"batch": str(batch), "relpath": "walk_a.mp4", "frame": "6", LINK: "1"})
    review = at.session_state["review"]
    assert review.video.relpath == "walk_a.mp4" and at.session_state["frame"] == 6
    assert url(at)["relpath"] == "walk_a.mp4" and url(at)["frame"] == "6"


def test_fleet_open_in_review_opens_the_chosen_video_and_its_first_frame_is_prepared_while_the_button_shows(env, batch):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/fleet.py")
    at.query_params["dir"] = str(batch)
    run(at)
    assert at.selectbox(key="fleet_video").value == "walk_c.mp4"  # the worst first
    info = resources.batch_video(batch, "walk_c.mp4").info
    deadline = time.time() + 60
    while not frames.prepared(info, 0) and time.time() < deadline:  # warmed in the background
        time.sleep(0.05)
    assert frames.prepared(info, 0)
    (link,) = [p.proto for p in at.get("page_link") if p.proto.label == "Open in Review"]
    assert dict(parse_qsl(link.query_string)) == {"batch": str(batch), "relpath": "walk_c.mp4", LINK: "1"}
    at = follow(at, dict(parse_qsl(link.query_string)))  # Review at once: no run of the Fleet page first
    assert at.session_state["review"].video.relpath == "walk_c.mp4" and at.session_state["frame"] == 0
    assert any(m.label == "Imputed boxes" for m in at.metric)  # on Review
    at = follow(at, {**dict(parse_qsl(link.query_string)), "relpath": "walk_a.mp4"})  # another video of the batch
    assert at.session_state["review"].video.relpath == "walk_a.mp4" and url(at)["relpath"] == "walk_a.mp4"


def test_a_batch_video_is_read_once_while_its_batch_and_file_are_unchanged(env, batch, monkeypatch):
    first = resources.batch_video(batch, "walk_a.mp4")
    assert resources.batch_video(batch, "walk_a.mp4") is first
    manifest = Datasource(batch).manifest
    status = manifest.stat()
    os.utime(manifest, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))  # the batch wrote its manifest again
    again = resources.batch_video(batch, "walk_a.mp4")
    assert again is not first and again.detection_id != first.detection_id
    assert len(again.detections) == len(first.detections)
    monkeypatch.setenv("FLICKER_ROOTS", str(SAMPLE_VIDEO.parent))  # the video is outside the roots now
    with pytest.raises(UserError, match="outside"):
        resources.batch_video(batch, "walk_a.mp4")


def test_a_video_is_probed_once_while_unchanged_and_keeps_its_warnings(tmp_path):
    video = tmp_path / "cut.avi"
    video.write_bytes(SAMPLE_VIDEO.read_bytes()[:3_000_000])  # truncated: probe warns
    info, said = resources.video_info(video)
    assert 100 < info.frame_count < 795 and any("truncated" in line for line in said)
    assert resources.video_info(video)[0] is info  # not probed again
    assert resources.video_info(video)[1] == said  # and the warnings are said again where it is opened
    video.write_bytes(SAMPLE_VIDEO.read_bytes())  # replaced by the whole video
    whole, said = resources.video_info(video)
    assert whole.frame_count == 795 and whole.fingerprint != info.fingerprint and not said


def test_a_file_memo_reads_one_key_once_at_a_time_and_other_keys_beside_it(tmp_path):
    """A long read (an 18,000-frame batch video) holds up the tabs asking for the same key, which get
    its value, not a second read; a tab asking for another key is answered meanwhile."""
    import threading

    source = tmp_path / "source.txt"
    source.write_text("v")
    memo, reads, release = resources.FileMemo(4), [], threading.Event()

    def slow_read():
        reads.append("slow")
        assert release.wait(30)
        return "slow value"

    files = lambda value: [source]  # noqa: E731
    results = []
    waiting = [threading.Thread(target=lambda: results.append(memo.get("long", slow_read, files))) for _ in range(2)]
    for thread in waiting:
        thread.start()
    deadline = time.time() + 30
    while not reads and time.time() < deadline:  # the first of them is reading
        time.sleep(0.01)
    assert memo.get("short", lambda: "short value", files) == "short value"  # not held up by the long read
    assert results == []
    release.set()
    for thread in waiting:
        thread.join(30)
    assert results == ["slow value", "slow value"] and reads == ["slow"]


def test_fleets_link_to_the_video_this_tab_reviews_moves_it_to_frame_0_and_keeps_its_thresholds(env, batch):
    at = review_at(batch, "walk_c.mp4", 5)
    at.slider(key="iou_track").set_value(0.3).run()  # the reviewer's own threshold, not the batch's 0.5
    at.switch_page("pages/fleet.py")
    at.query_params = {"dir": str(batch)}
    run(at)
    at = follow(at, batch_link(batch, "walk_c.mp4"))
    assert at.session_state["frame"] == 0 and at.session_state["iou_track"] == pytest.approx(0.3)
    assert at.session_state["review"].video.relpath == "walk_c.mp4"


def test_review_waits_for_its_viewers_frame_on_the_run_that_brings_it_up_not_on_its_reruns(env, batch, monkeypatch):
    """In a browser's session, the run that brings Review up (a link, a reload, a switch from another
    page) sends the viewer, waits until it says its frame is on screen, then draws the side panels
    (pages/review.py, workspace). A rerun of the page on screen never waits: its viewer is already
    there and says nothing, so a threshold move would wait out the timeout every time."""
    import streamlit as st

    waits = []
    monkeypatch.setattr(frames, "wait_until_shown", lambda info, index, timeout: waits.append(index) or True)
    monkeypatch.setattr(type(st.context), "headers", property(lambda _: {"host": "127.0.0.1"}))  # a browser's
    at = review_at(batch, "walk_a.mp4", 4)
    assert waits == [4] and at.slider(key="iou_track") is not None, "once, and the side panels still drawn"
    at.slider(key="iou_track").set_value(0.3)
    run(at)
    assert waits == [4], "a threshold move waited for a frame"
    at.switch_page("pages/qa.py")
    run(at)
    at.switch_page("pages/review.py")
    run(at)
    assert waits == [4, 4], "back from another page: the viewer mounts anew"


def test_the_load_page_keeps_a_batch_videos_review(batch, tmp_path, monkeypatch):
    """Load & detect opened on a batch video's review: the review stays the batch's (its folder, its
    settings, Back to the batch). The detector's cached boxes of that video replaced it, and Export
    then offered that one video instead of the batch."""
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(batch.parent / "cache"))  # where the batch cached its detections
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = review_at(batch, "walk_c.mp4", 2)
    reviewed = at.session_state["review"]
    at.switch_page("pages/load.py")
    run(at)
    assert at.session_state["review"].batch == reviewed.batch == batch
    assert at.session_state["review"].detection_id == reviewed.detection_id
    assert url(at) == {}  # the batch's video is named by Review's URL, not this page's
    assert any("the batch in" in c.value and "walk\\_c.mp4" in c.value for c in at.caption), [c.value for c in at.caption]
    assert at.button(key="run_detection").proto.type == "secondary"  # the next step is Review
