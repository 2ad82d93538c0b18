"""The Verdicts page's queue: its verdict route (validated, written to a real SQLite store) and what
the page sends the browser."""
import json
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from conftest import CHROMEDRIVER, CHROMIUM, NAME_CUT, TAGS_APART, click_when, free_port, streamlit_server, wait_for
from core.qa import ReviewQueue
from core.verdicts import VerdictStore
from ui.verdict_queue.component import AFTER_PLAN, unjudged_after_plan, queue_frames
from ui.verdict_queue.routes import MAX_BODY, NOTE_CHARS, PREFIX, QueueTarget, new_token, queue_url, routes


# Counts the page's runs from now on in ``window.__runs``, each change of the app's script state
# read from its own record. A short run on a loaded machine can still go unseen (React may draw only
# its end), so this backs "no run happened"; waits for a run look for what the run draws instead.
COUNT_RUNS = """
window.__runs = 0;
const app = document.querySelector('[data-test-script-state]');
new MutationObserver((records) => records.forEach((record, i) => {
  const now = i + 1 < records.length ? records[i + 1].oldValue : app.getAttribute('data-test-script-state');
  if (now === 'running' && record.oldValue !== 'running') window.__runs++;
})).observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
"""

@pytest.fixture
def store(tmp_path) -> VerdictStore:
    return VerdictStore(tmp_path / "verdicts.sqlite")


@pytest.fixture
def client() -> TestClient:
    return TestClient(Starlette(routes=routes()))


ON_VIDEO = {"video": "video-key"}  # the content key the page shows, sent with each request


def register(store: VerdictStore, annotator: str = "ana", n_frames: int = 50) -> str:
    return queue_url(new_token(), QueueTarget(store, "video-key", n_frames, annotator))


def test_a_verdict_is_stored_with_the_registered_annotator_and_its_note(client, store):
    url = register(store)
    answer = client.post(f"{url}/verdict", json={"video": "video-key", "frame": 7, "verdict": "miss", "note": "  a cyclist behind the bus "})
    assert answer.status_code == 200 and answer.json() == {"frame": 7, "verdict": "miss"}
    assert answer.headers["cache-control"] == "no-store"
    [(frame, verdict, annotator, note, _)] = store.records("video-key")
    assert (frame, verdict, annotator, note) == (7, "miss", "ana", "a cyclist behind the bus")
    client.post(f"{url}/verdict", json={"video": "video-key", "frame": 7, "verdict": "false_alarm"})  # a later verdict replaces it
    assert store.all("video-key") == {7: "false_alarm"}


@pytest.mark.parametrize("body, status, says", [
    ({"frame": 50, "verdict": "miss"}, 422, "from 0 to 49"),
    ({"frame": -1, "verdict": "miss"}, 422, "from 0 to 49"),
    ({"frame": "3", "verdict": "miss"}, 422, "whole number"),
    ({"frame": True, "verdict": "miss"}, 422, "whole number"),
    ({"frame": 3.0, "verdict": "miss"}, 422, "whole number"),
    ({"frame": 3, "verdict": "An object is missing"}, 422, "miss, false_alarm, unsure"),
    ({"frame": 3, "verdict": None}, 422, "miss, false_alarm, unsure"),
    ({"frame": 3, "verdict": "miss", "note": "x" * (NOTE_CHARS + 1)}, 422, f"at most {NOTE_CHARS}"),
    ({"frame": 3, "verdict": "miss", "note": ["not", "text"]}, 422, "text"),
    ({"frame": 3, "verdict": "miss", "note": "\ud800x"}, 422, "text"),  # a lone surrogate: SQLite cannot store it
    ({"frame": 3, "verdict": "miss", "video": "another-key"}, 409, "another video"),  # the tab moved on meanwhile
    ({"frame": 3, "verdict": "miss", "video": None}, 409, "another video"),
    ([3, "miss"], 400, "JSON object"),
])
def test_a_verdict_outside_the_rules_is_refused_and_nothing_is_written(client, store, body, status, says):
    body = ON_VIDEO | body if isinstance(body, dict) else body
    answer = client.post(f"{register(store)}/verdict", content=json.dumps(body),  # \ud800 stays an escape, as sent
                         headers={"content-type": "application/json"})
    assert answer.status_code == status and says in answer.json()["error"]
    assert store.all("video-key") == {}


def test_only_registered_queues_take_verdicts_and_only_as_json_of_bounded_size(client, store):
    url = register(store)
    assert client.post(f"{PREFIX}/{new_token()}/verdict", json={"video": "video-key", "frame": 1, "verdict": "miss"}).status_code == 404
    assert client.post(f"{PREFIX}/video-key/verdict", json={"video": "video-key", "frame": 1, "verdict": "miss"}).status_code == 404
    assert client.post(f"{PREFIX}/..%2F..%2Fetc%2Fpasswd/verdict", json={"video": "video-key", "frame": 1, "verdict": "miss"}).status_code == 404
    assert client.get(f"{url}/verdict").status_code in (404, 405)  # never the page Streamlit serves elsewhere
    assert client.post(f"{url}/delete-everything", json={}).status_code == 404
    # a form post, as another site's page could send without asking: refused
    form = client.post(f"{url}/verdict", content='{"frame": 1, "verdict": "miss"}',
                       headers={"content-type": "text/plain"})
    assert form.status_code == 415
    huge = client.post(f"{url}/verdict", content=json.dumps({"frame": 1, "verdict": "miss", "pad": "x" * MAX_BODY}),
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413
    broken = client.post(f"{url}/verdict", content=b"{\"frame\": 1, \xff", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    for kind in ("verdict", "undo"):  # nested a thousand deep in 1 KB: Python's parser runs out of stack
        deep = client.post(f"{url}/{kind}", content=b"[" * 1000, headers={"content-type": "application/json"})
        assert deep.status_code == 400 and deep.json()["error"] == "the body is not JSON"
    assert client.post(f"{url}/undo", json={"video": "another-key"}).status_code == 409
    assert store.all("video-key") == {}


def test_registering_again_changes_the_annotator_under_the_same_token(client, store):
    token = new_token()
    url = queue_url(token, QueueTarget(store, "video-key", 50, "ana"))
    assert queue_url(token, QueueTarget(store, "video-key", 50, "ben")) == url
    client.post(f"{url}/verdict", json={"video": "video-key", "frame": 2, "verdict": "unsure"})
    assert [annotator for _, _, annotator, _, _ in store.records("video-key")] == ["ben"]


def test_undo_reverts_the_annotators_latest_verdict_and_answers_what_the_frame_holds_now(client, store):
    ana, ben = register(store, "ana"), register(store, "ben")
    client.post(f"{ana}/verdict", json={"video": "video-key", "frame": 4, "verdict": "miss"})
    client.post(f"{ana}/verdict", json={"video": "video-key", "frame": 4, "verdict": "false_alarm"})
    client.post(f"{ben}/verdict", json={"video": "video-key", "frame": 9, "verdict": "miss"})
    undo = lambda url: client.post(f"{url}/undo", json=ON_VIDEO).json()  # noqa: E731
    assert undo(ana) == {"frame": 4, "verdict": "miss", "judged_since_by": None}
    assert undo(ana) == {"frame": 4, "verdict": None, "judged_since_by": None}
    assert undo(ana) == {"frame": None, "verdict": None, "judged_since_by": None}
    assert store.all("video-key") == {9: "miss"}  # ben's verdict stays
    # ana's verdict that ben judged over since: taken back, ben's stays (it was deleted)
    client.post(f"{ana}/verdict", json={"video": "video-key", "frame": 9, "verdict": "false_alarm"})
    client.post(f"{ben}/verdict", json={"video": "video-key", "frame": 9, "verdict": "unsure"})
    assert undo(ana) == {"frame": 9, "verdict": "unsure", "judged_since_by": "ben"}
    anonymous = register(store, "")  # a tab with no name takes back only changes given with none
    assert undo(anonymous) == {"frame": None, "verdict": None, "judged_since_by": None}
    assert store.all("video-key") == {9: "unsure"}


def test_a_damaged_store_is_one_line_not_a_traceback(client, tmp_path):
    store = VerdictStore(tmp_path / "verdicts.sqlite")
    url = register(store)
    (tmp_path / "verdicts.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    answer = client.post(f"{url}/verdict", json={"video": "video-key", "frame": 1, "verdict": "miss"})
    assert answer.status_code == 503 and "not a readable verdicts database" in answer.json()["error"]


def test_the_browser_gets_the_whole_plan_and_the_next_flagged_frames_after_it():
    after = list(range(100, 100 + AFTER_PLAN + 50))
    queue = ReviewQueue([5, 1, 9, *after], 3)
    judged = {1: "miss", 100: "miss", 101: "false_alarm"}
    frames = queue_frames(queue, judged)
    assert frames[:3] == [5, 1, 9], "the plan, judged frames too (Undo shows them again without a rerun)"
    assert frames[3:] == after[:AFTER_PLAN + 2], "judged frames after the plan, then AFTER_PLAN without a verdict"
    assert queue_frames(ReviewQueue([5, 1], 2), {}) == [5, 1]
    # the browser counts what is left after the plan from the frames it has, plus those a later run sends
    judged[after[-1]] = "miss"
    assert unjudged_after_plan(queue, judged, len(frames)) == len(after) - (AFTER_PLAN + 2) - 1


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_keys_and_clicks_give_verdicts_with_notes_without_a_rerun_in_chromium(walk_hog, shared_cache, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    info, detections = walk_hog
    store_path = tmp_path / "data" / "verdicts.sqlite"
    with streamlit_server(tmp_path, shared_cache) as url:
        browser.get(f"{url}/qa?{urlencode({'video': str(info.path), 'annotator': 'ana', 'plan': '8'})}")
        root = wait_for(browser, lambda: browser.find_element("css selector", ".vq-root[data-frame]"), 120, "the queue")
        progress = lambda: root.find_element("css selector", ".vq-progress-text").text  # noqa: E731
        shown = lambda: int(root.get_attribute("data-frame"))  # noqa: E731
        runs = lambda: browser.execute_script("return window.__runs")  # noqa: E731
        assert progress().startswith("Reviewed 0 / 8 of the plan")
        assert root.find_element("css selector", ".vq-name").text == info.path.name  # which camera, of many
        # the page's title is set by its run, which the browser may show a moment after the queue
        wait_for(browser, lambda: browser.title.startswith(f"{info.path.name} · Verdicts"), 30,
                 f"the video in the tab's title ({browser.title})")
        # count the page's reruns from here on: a verdict must not cause one
        browser.execute_script(COUNT_RUNS)

        def press(key: str) -> None:
            browser.execute_script("document.activeElement && document.activeElement.blur()")
            ActionChains(browser).send_keys(key).perform()

        first = shown()
        label = lambda: root.find_element("css selector", ".vq-label").text  # noqa: E731
        arrow, other, word = (Keys.ARROW_LEFT, first - 1, "before") if first else (Keys.ARROW_RIGHT, first + 1, "after")
        ActionChains(browser).key_down(arrow).perform()  # held: the frame before (after), this one's dashed boxes on it
        wait_for(browser, lambda: label() == f"Frame {other} ({word} {first})", 10, "the frame next door")
        canvas = root.find_element("css selector", "canvas")  # its image drawn, not only its label set
        wait_for(browser, lambda: canvas.get_attribute("data-boxes-frame") == str(other), 10, "the frame next door drawn")
        assert int(canvas.get_attribute("data-boxes")) == int((detections.frame == other).sum()) > 0, \
            "the neighbour's own boxes (the page's minimum score is 0), beside the dashed ones"
        ActionChains(browser).key_up(arrow).perform()
        wait_for(browser, lambda: label().startswith(f"Frame {first} /"), 10, "back on the queued frame")
        assert shown() == first and progress().startswith("Reviewed 0 / 8"), "a look around gives no verdict"
        root.find_element("css selector", ".vq-note").send_keys("by Enter" + Keys.ENTER)  # done typing: the keys answer
        ActionChains(browser).send_keys("f").perform()
        wait_for(browser, lambda: progress().startswith("Reviewed 1 / 8") and shown() != first, 10, "the next frame")
        second = shown()
        note = root.find_element("css selector", ".vq-note")
        # Markdown in a note is shown as typed in the reviewed list: no link, no image from another host
        typed = "mum *behind* the [van](http://127.0.0.1:9/x) ![t](http://127.0.0.1:9/b.png) :red[x] "
        note.send_keys(typed)  # typing in the note gives no verdict: M goes into the text
        note.send_keys("m")
        assert progress().startswith("Reviewed 1 / 8") and note.get_attribute("value") == typed + "m"
        root.find_element("css selector", 'button[data-verdict="miss"]').click()
        wait_for(browser, lambda: progress().startswith("Reviewed 2 / 8") and shown() != second, 10, "the click's frame")
        store = VerdictStore(store_path)
        wait_for(browser, lambda: len(store.records(info.fingerprint)) == 2, 10, "both verdicts stored")
        records = {frame: (verdict, annotator, note) for frame, verdict, annotator, note, _ in store.records(info.fingerprint)}
        assert records == {first: ("false_alarm", "ana", "by Enter"), second: ("miss", "ana", (typed + "m").strip())}
        assert note.get_attribute("value") == "", "the note went with its verdict"
        assert not browser.execute_script("return !!document.activeElement.closest('.vq-buttons')"), \
            "the clicked button's focus ring would read as an answer on the next frame"
        third = shown()
        # the answers' words follow the frame: a spot check has no flag to call true or false
        flagged = root.find_element("css selector", ".vq-status").text.startswith("Flagged")
        assert [root.find_element("css selector", f".vq-{side}").text for side in ("yes", "no")] == \
            (["True miss", "False alarm"] if flagged else ["Object missing", "Nothing missing"])
        ActionChains(browser).send_keys("u").perform()  # the click let go of the note: the next key is a verdict
        wait_for(browser, lambda: progress().startswith("Reviewed 3 / 8") and shown() != third, 10, "a key after a click")
        assert note.get_attribute("value") == ""
        assert runs() == 0, "verdicts by key and click reran nothing"
        # ...so the figures beside the queue are behind it, and the button that updates them says by how much
        refresh = root.find_element("css selector", 'button[data-action="refresh"]')
        assert refresh.find_element("css selector", ".vq-since").text == "+3" and "3 verdicts given" in refresh.get_attribute("title")
        click_when(browser, lambda: browser.find_element("css selector", ".st-key-qa_plan_size input"), 30,
                   "the plan size field")  # a field of the sidebar has the focus
        ActionChains(browser).send_keys("z").perform()
        assert progress().startswith("Reviewed 3 / 8"), "a key typed into a field is no undo"
        ActionChains(browser).send_keys(Keys.ESCAPE).perform()  # Esc leaves any field: the keys answer again
        ActionChains(browser).send_keys("z").perform()
        wait_for(browser, lambda: progress().startswith("Reviewed 2 / 8") and shown() == third, 10, "Undo")
        wait_for(browser, lambda: third not in store.all(info.fingerprint), 10, "the undo stored")
        assert store.all(info.fingerprint) == {first: "false_alarm", second: "miss"}
        body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
        listed = lambda: any(f"frame {first} · {said}" in body() for said in ("false alarm", "nothing missing"))  # noqa: E731
        assert not listed()  # the reviewed list is the page's: it waits for a rerun (spot checks read "nothing missing")
        root.find_element("css selector", 'button[data-action="refresh"]').click()  # ...which the button asks for
        wait_for(browser, listed, 60, "the page brought up to date")  # only a run lists it
        wait_for(browser, lambda: (typed + "m").strip() in body(), 30, "the note in the reviewed list")
        assert not browser.find_elements("css selector", "[data-testid='stMain'] :is(img[src*='127.0.0.1:9'], a[href*='127.0.0.1:9'])")
        # a key works with the focus on any widget but a text field: here the reviewed list's filter, just clicked
        click_when(browser, lambda: next(b for b in browser.find_elements("css selector", "[data-testid='stButtonGroup'] button")
                                         if b.text == "nothing missing"), 30, "the reviewed list's filter")
        idle = lambda: browser.execute_script(  # noqa: E731
            "return document.querySelector('[data-test-script-state]').getAttribute('data-test-script-state')") != "running"
        wait_for(browser, lambda: idle() and f"frame {second} ·" not in body(), 30, "the filter's rerun")  # a true miss
        assert browser.execute_script("return !!document.activeElement.closest(\"[role='radiogroup']\")")
        ActionChains(browser).send_keys("u").perform()
        wait_for(browser, lambda: progress().startswith("Reviewed 3 / 8"), 10, "a key with the focus on a filter")
        # the fourth verdict ends the plan's first phase (4 of 8): one rerun draws the second from its verdicts
        fourth = shown()
        press("m")  # the first phase has no frame left: a frame shown now is the second's, sent by a run
        wait_for(browser, lambda: progress().startswith("Reviewed 4 / 8") and root.get_attribute("data-frame")
                 and shown() != fourth, 60, "the second phase")
        store = VerdictStore(store_path)
        assert shown() not in store.all(info.fingerprint), "a frame of the second phase, without a verdict"
        # the plan's last four (its end asks for the figures), then a frame after it: the figures leave that one out,
        # so the button does not say they are behind
        since = lambda: root.find_element("css selector", 'button[data-action="refresh"] .vq-since').text  # noqa: E731
        for done in range(5, 9):
            press("m")
            wait_for(browser, lambda: progress().startswith(f"Reviewed {done} / 8"), 10, f"verdict {done}")
        done = root.find_element("css selector", ".vq-done")  # said above the queue: the frame shown is after the plan
        wait_for(browser, lambda: "flagged frames after the plan follow" in done.text and not since(),
                 60, "a frame after the plan, with the figures up to date")
        press("f")
        wait_for(browser, lambda: len(store.all(info.fingerprint)) == 9, 10, "the verdict after the plan stored")
        assert since() == "", "a verdict the figures leave out does not put them behind"


@contextmanager
def queue_at_1280(browser, tmp_path, shared_cache, video, misses: int = 0, **params: str) -> Iterator[tuple[str, object]]:
    """The Verdicts queue of an 8-frame plan of ``video`` at 1280x720: the window sized, a server started on ``tmp_path``,
    the queue opened (``params``: more of its link's, as a seed) and M pressed on its first ``misses`` frames, each waited
    for ("Reviewed N / 8" and the next frame shown). Yields the server's address and the queue's root element."""
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 720, "deviceScaleFactor": 1,
                                                                   "mobile": False})
    with streamlit_server(tmp_path, shared_cache) as url:
        browser.get(f"{url}/qa?{urlencode({'video': str(video), 'plan': '8', **params})}")
        root = wait_for(browser, lambda: browser.find_element("css selector", ".vq-root[data-frame]"), 120, "the queue")
        progress = lambda: root.find_element("css selector", ".vq-progress-text").text  # noqa: E731
        for done in range(1, misses + 1):  # the plan's second half comes with a run after the fourth verdict
            before = root.get_attribute("data-frame")
            ActionChains(browser).send_keys("m").perform()
            wait_for(browser, lambda: progress().startswith(f"Reviewed {done} / 8") and root.get_attribute("data-frame") != before,
                     60, f"verdict {done} and the next frame")
        yield url, root


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_a_long_file_name_is_cut_in_its_middle_before_the_flag_at_1280_px(walk_hog, shared_cache, browser, tmp_path):
    """A camera's long file name beside the queued frame: the name gives way, the flag is read whole.
    The name keeps its start and its end ("north_gate_camera_0..._shift.mp4"): cut at its end, the
    cameras' files of one day read alike ("north_gate_camera_0...")."""
    import shutil

    info, _ = walk_hog
    video = tmp_path / "north_gate_camera_07_2024-06-01_morning_shift.mp4"
    shutil.copy(info.path, video)  # the same content: the same cached boxes
    with queue_at_1280(browser, tmp_path, shared_cache, video) as (_, root):
        cut = "return [...document.querySelectorAll('.vq-head > *')].filter(e => e.scrollWidth > e.clientWidth)" \
              ".map(e => e.className)"
        assert root.find_element("css selector", ".vq-status").text and browser.execute_script(cut) == []
        name = root.find_element("css selector", ".vq-name")
        assert browser.execute_script(NAME_CUT, name) == [video.name, video.name, True, "_shift.mp4", True]
        assert name.size["height"] < 30 and root.find_element("css selector", ".vq-head").size["height"] < 40, "one line"


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_a_frame_after_the_plan_reads_whole_at_1280_px(walk_hog, shared_cache, browser, tmp_path):
    """Once the plan is done, the progress line, the file name and the flag of a frame after the plan
    are read whole at 1280x720: the flag said "· after the pl..." (what the lines above it say) and
    cut the name to "wal...", and the progress line ended "optional (n..."."""
    info, _ = walk_hog
    # M on all 8 (false alarms on every frame leave none after the plan)
    with queue_at_1280(browser, tmp_path, shared_cache, info.path, misses=8) as (_, root):
        progress = lambda: root.find_element("css selector", ".vq-progress-text").text  # noqa: E731
        done = root.find_element("css selector", ".vq-done")
        wait_for(browser, lambda: "flagged frames after the plan follow" in done.text, 60, "a frame after the plan")
        assert "optional" in progress()
        cut = "return [...document.querySelectorAll('.vq-head > *, .vq-progress-text')]" \
              ".filter(e => e.scrollWidth > e.clientWidth).map(e => e.className + ': ' + e.textContent)"
        assert browser.execute_script(cut) == []
        assert root.find_element("css selector", ".vq-status").text.startswith("Flagged: ")


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_progress_line_with_earlier_verdicts_fits_one_line_at_1280_px(walk_hog, shared_cache, browser, tmp_path):
    """Verdicts on another plan's frames (another seed) are counted beside this plan's: the progress
    line said so in a sentence cut at 1280x720 ("(and 2 earlier verdicts outside it, also counte...").
    The line is short now, the whole sentence in its title."""
    info, _ = walk_hog
    with queue_at_1280(browser, tmp_path, shared_cache, info.path, misses=2, seed="0") as (url, root):
        store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
        wait_for(browser, lambda: len(store.all(info.fingerprint)) == 2, 10, "both verdicts stored")
        browser.get(f"{url}/qa?{urlencode({'video': str(info.path), 'plan': '8', 'seed': '1'})}")  # another plan
        root = wait_for(browser, lambda: browser.find_element("css selector", ".vq-root[data-frame]"), 120, "the other plan's queue")
        line = root.find_element("css selector", ".vq-progress-text")
        assert "earlier" in line.text and "optional" in line.text, line.text
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", line), f"cut: {line.text}"
        title = line.get_attribute("title")  # the whole sentence, where the pointer rests
        assert line.text.startswith("Reviewed 0 / 8") and title.startswith("Reviewed 0 / 8")
        assert "2 earlier verdicts outside it, also counted" in title and "optional frame" in title and "not counted" in title


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_queue_draws_its_tags_apart_inside_the_frame(walk_hog, shared_cache, browser, tmp_path):
    """The queue's frames draw their boxes' tags where Review's viewer does (one placement, ui/mount.js): no
    tag over another or out of the frame at 1280x720, where a tag kept in the frame at its edge covered its
    neighbour's ("person 0.86" over "person 0.90")."""
    from selenium.webdriver.common.action_chains import ActionChains

    info, _ = walk_hog
    with queue_at_1280(browser, tmp_path, shared_cache, info.path) as (_, root):
        canvas, drawn = root.find_element("css selector", ".vq-frame"), 0
        for done in range(1, 5):
            count, wrong = browser.execute_script(TAGS_APART, canvas)
            assert not wrong, (root.get_attribute("data-frame"), wrong)
            drawn += count
            before = root.get_attribute("data-frame")
            ActionChains(browser).send_keys("f").perform()
            wait_for(browser, lambda: root.get_attribute("data-frame") != before, 60, f"the frame after verdict {done}")
        assert drawn, "the walk's people, tagged"


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_page_stops_saying_no_verdict_yet_once_the_queue_gives_one_without_a_rerun(walk_hog, shared_cache, browser,
                                                                                        tmp_path):
    """The figures wait for a run; the queue gives verdicts without one. "No verdict on the plan's
    frames yet" stood beside "Reviewed 1 / 8" until the figures were updated: the page now says that
    verdicts were given since, and how to count them, still without a run."""
    from selenium.webdriver.common.action_chains import ActionChains

    info, _ = walk_hog
    with streamlit_server(tmp_path, shared_cache) as url:
        browser.get(f"{url}/qa?{urlencode({'video': str(info.path), 'plan': '8'})}")
        root = wait_for(browser, lambda: browser.find_element("css selector", ".vq-root[data-frame]"), 120, "the queue")
        main = lambda: browser.find_element("css selector", "[data-testid='stMain']").text  # noqa: E731 (what is shown)
        wait_for(browser, lambda: "No verdict on the plan's frames yet" in main(), 30, "the note before any verdict")
        assert "Verdicts were given since" not in main()
        browser.execute_script(COUNT_RUNS)
        ActionChains(browser).send_keys("f").perform()
        wait_for(browser, lambda: root.find_element("css selector", ".vq-progress-text").text.startswith("Reviewed 1 / 8"),
                 10, "the verdict")
        shown = main()
        assert "No verdict on the plan's frames yet" not in shown and \
            "Verdicts were given since these figures were drawn: Update the estimates" in shown, shown
        assert browser.execute_script("return window.__runs") == 0, "no run per verdict"
        root.find_element("css selector", 'button[data-action="refresh"]').click()  # the figures count it now
        wait_for(browser, lambda: "No verdict on the plan's frames confirms a miss yet" in main(), 60, "the figures updated")
        assert "Verdicts were given since" not in main()


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_a_verdict_given_across_a_server_restart_is_stored(walk_hog, shared_cache, browser, tmp_path):
    """The restarted server does not know the queue the page registered (404): the queue asks the
    page to register it again and sends the verdict once more, so it is stored as the annotator's,
    with its note, and nothing says it failed."""
    from selenium.webdriver.common.action_chains import ActionChains

    info, _ = walk_hog
    store, port = VerdictStore(tmp_path / "data" / "verdicts.sqlite"), free_port()
    link = f"http://127.0.0.1:{port}/qa?{urlencode({'video': str(info.path), 'annotator': 'ana', 'plan': '8'})}"
    root = lambda: browser.find_element("css selector", ".vq-root[data-frame]")  # noqa: E731
    shown = lambda: int(root().get_attribute("data-frame"))  # noqa: E731

    def press(key: str) -> None:
        browser.execute_script("document.activeElement && document.activeElement.blur()")
        ActionChains(browser).send_keys(key).perform()

    with streamlit_server(tmp_path, shared_cache, port=port):
        browser.get(link)
        wait_for(browser, root, 120, "the queue")
        first = shown()
        press("f")
        wait_for(browser, lambda: store.all(info.fingerprint) == {first: "false_alarm"}, 30, "the first verdict stored")
    with streamlit_server(tmp_path, shared_cache, port=port):
        second = shown()
        root().find_element("css selector", ".vq-note").send_keys("behind the lamp post")
        press("m")
        wait_for(browser, lambda: store.all(info.fingerprint) == {first: "false_alarm", second: "miss"}, 60,
                 "the verdict given across the restart, stored")
        records = {frame: (annotator, note) for frame, _, annotator, note, _ in store.records(info.fingerprint)}
        assert records[second] == ("ana", "behind the lamp post")
        wait_for(browser, lambda: root().get_attribute("data-frame") and shown() not in (first, second), 30, "the next frame")
        assert root().find_element("css selector", ".vq-message").text == ""


def test_a_body_that_never_ends_is_refused_in_bounded_time(store, monkeypatch):
    """A client that sends headers and then a trickle (or nothing) held the request open for ever;
    1,000 such requests would take 1,000 of the server's connections."""
    import asyncio
    import time

    from starlette.requests import Request

    from ui.verdict_queue import routes as queue_routes

    monkeypatch.setattr(queue_routes, "BODY_SECONDS", 0.2)
    url = register(store)

    async def receive():  # the body's first bytes, then nothing more, ever
        await asyncio.sleep(3600)

    scope = {"type": "http", "method": "POST", "path": f"{url}/verdict", "headers": [(b"content-type", b"application/json")],
             "path_params": {"token": url.rsplit("/", 1)[-1]}, "query_string": b""}
    start = time.monotonic()
    answer = asyncio.run(asyncio.wait_for(queue_routes._verdict(Request(scope, receive)), 5))  # fails, never hangs
    assert answer.status_code == 408 and time.monotonic() - start < 2
    assert store.all("video-key") == {}
