"""End to end in a real browser: `streamlit run app.py` driven by headless Chromium (Selenium)."""
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (CHROMEDRIVER, CHROMIUM, app_idle, button, click_when, components_code_loaded, metric,
                      metric_value, press, shown_frame, streamlit_server, wait_for)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"),
]


@pytest.fixture
def server(tmp_path, shared_cache):
    with streamlit_server(tmp_path, shared_cache, "--sample") as url:
        yield url + "/"


def click_at(browser, element, fraction_x: float, fraction_y: float = 0.5) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    size = element.size
    ActionChains(browser).move_to_element_with_offset(
        element, int(size["width"] * (fraction_x - 0.5)), int(size["height"] * (fraction_y - 0.5))).click().perform()


def in_view(browser, element) -> bool:
    return browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                                  "return r.top >= -1 && r.top < window.innerHeight / 2;", element)


def test_sample_detect_review_retune_reload_select_in_chromium(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from core.paths import SAMPLE_VIDEO
    from core.verdicts import VerdictStore
    from core.video import fingerprint_file

    browser.get(server)
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    # the sample's caption comes before the cached boxes are read and their link drawn: decide once the run is over
    wait_for(browser, lambda: "795" in body() and app_idle(browser), 60, "the sample to load")
    icons = browser.execute_script("return Array.from(document.querySelectorAll('link[rel*=icon]')).map(l => l.href)")
    assert icons and all(icon.startswith(server) for icon in icons), icons  # a Material icon name was fetched from Google
    if "Review flickering frames" not in body():  # not cached yet: cancel a run, then run it through
        click_when(browser, lambda: button(browser, "Run detection"), 60, "the run button")
        wait_for(browser, lambda: " / 795 frames" in body(), 120, "detection progress")
        click_when(browser, lambda: button(browser, "Cancel"), 30, "the Cancel button")
        wait_for(browser, lambda: "Detection cancelled after" in body(), 30, "Cancel to say what it did")
        click_when(browser, lambda: button(browser, "Run detection"), 60, "the run button")
    # the progress bar's count changes with every few frames detected: 90 s without one is a stall
    wait_for(browser, lambda: browser.find_element("partial link text", "Review flickering frames"), 90,
             "detection to finish")
    # fetched once the page has drawn the preloading component, a moment after the link may be on screen
    wait_for(browser, lambda: components_code_loaded(browser), 10, "the component code, before the link is pressed")
    click_when(browser, lambda: browser.find_element("partial link text", "Review flickering frames"), 30, "the link")
    wait_for(browser, lambda: metric_value(browser, "Flagged frames"), 60, "the review page")
    assert browser.find_element("tag name", "h1").text == "Review"
    wait_for(browser, lambda: shown_frame(browser) == 0, 30, "the first frame in the viewer")
    before = int(metric(browser, "Flagged frames"))  # the settled frame reruns the panels: read them once drawn
    assert before > 0
    press(browser, "m")  # frame 0 is never flagged (no frame before it): the key says why it does nothing
    status = browser.find_element("css selector", ".fv-status")
    wait_for(browser, lambda: status.text == "Nothing flagged here", 10, "a word on the unanswered key")
    wait_for(browser, lambda: status.text != "Nothing flagged here", 10, "the status back")

    press(browser, "k")  # next flagged frame, found in the browser
    flagged = wait_for(browser, lambda: shown_frame(browser), 30, "a seek to the first flagged frame")
    assert f"Frame {flagged} / 794" in body() and "Flagged:" in body()
    press(browser, "m")  # true miss, sent with the frame it was given on
    verdicts = browser.find_element("css selector", ".fv-verdict")
    wait_for(browser, lambda: verdicts.get_attribute("data-verdict") == "miss", 10, "the verdict on screen")
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    wait_for(browser, lambda: store.all(fingerprint_file(SAMPLE_VIDEO)) == {flagged: "miss"}, 30, "the stored verdict")
    wait_for(browser, lambda: metric_value(browser, "Reviewed") == f"1 / {before}", 30, "the reviewed count")
    stored = lambda: store.all(fingerprint_file(SAMPLE_VIDEO))  # noqa: E731
    press(browser, "f")  # second thoughts, then Z as on the Verdicts page: each takes the latest verdict back
    wait_for(browser, lambda: stored() == {flagged: "false_alarm"}, 30, "the changed verdict")
    press(browser, "z")
    wait_for(browser, lambda: stored() == {flagged: "miss"} and verdicts.get_attribute("data-verdict") == "miss", 30,
             "the verdict before it, back")
    press(browser, Keys.RIGHT + "z")  # from another frame: back to the one it undoes
    wait_for(browser, lambda: stored() == {} and shown_frame(browser) == flagged, 30, "no verdict, on its frame")
    press(browser, "z")
    wait_for(browser, lambda: status.text == "Nothing to undo", 10, "a word on Z with nothing left to undo")
    press(browser, "m")
    wait_for(browser, lambda: stored() == {flagged: "miss"}, 30, "the verdict given again")
    wait_for(browser, lambda: metric_value(browser, "Reviewed") == f"1 / {before}", 30, "the reviewed count")
    # a 1280x720 screen: the frame was drawn 320x240, and the header (with its answer and x) cut to "vtes..."
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 720, "deviceScaleFactor": 1,
                                                                   "mobile": False})
    frame_height = "return document.querySelector('.fv-frame').getBoundingClientRect().height"
    wait_for(browser, lambda: browser.execute_script(frame_height) >= 360, 10, "the frame drawn at least 360 px high")
    assert browser.execute_script("return [...document.querySelectorAll('.fv-head > *')]"
                                  ".filter(e => e.scrollWidth > e.clientWidth).map(e => e.className)") == []
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    press(browser, Keys.RIGHT)
    wait_for(browser, lambda: shown_frame(browser) == flagged + 1, 10, "a step to the next frame")
    jump = browser.find_element("css selector", 'input[aria-label="Jump to frame"]')
    jump.send_keys("612" + Keys.ENTER)  # the viewer's own box: no rerun before the move
    wait_for(browser, lambda: shown_frame(browser) == 612, 10, "Jump to frame")
    assert jump.get_attribute("value") == "", "emptied: a number left there would soon disagree with the frame"
    wait_for(browser, lambda: "frame=612" in browser.current_url, 10, "the jump in the URL")
    press(browser, Keys.LEFT)  # the box let go of the keys: the arrows step frames again
    wait_for(browser, lambda: shown_frame(browser) == 611, 10, "a step after the jump")
    press(browser, Keys.HOME + "k")
    wait_for(browser, lambda: shown_frame(browser) == flagged, 10, "Home, then K to the first flagged frame")
    press(browser, Keys.RIGHT)
    wait_for(browser, lambda: shown_frame(browser) == flagged + 1, 10, "a step to the next frame")
    press(browser, Keys.SPACE)  # play at the video's 10 frames per second, pause after 5 frames or more
    started = time.time()
    wait_for(browser, lambda: shown_frame(browser) >= flagged + 6, 10, "playback to pass 5 frames")
    press(browser, Keys.SPACE)
    played, seconds = shown_frame(browser) - (flagged + 1), time.time() - started
    assert played <= 10 * seconds + 3, f"{played} frames in {seconds:.1f} s: faster than the video's 10 fps"

    slider = browser.find_element("css selector", 'input[type="range"][aria-label="IoU tracking"]')
    browser.execute_script("arguments[0].focus();", slider)
    ActionChains(browser).send_keys(Keys.LEFT * 30).perform()  # lower the tracking threshold from 0.80 to 0.50
    wait_for(browser, lambda: browser.find_element("css selector", 'input[type="range"][aria-label="IoU tracking"]')
             .get_attribute("aria-valuetext") == "0.50", 30, "the slider to reach 0.50")
    wait_for(browser, lambda: "0.5 0.6" in browser.find_element("css selector", ".fv-root").get_attribute("data-view"),
             30, "the viewer to redraw at the new thresholds")
    # the count of the same run as the viewer's: a count read at once could be one drawn before, at another threshold
    flagged_in_viewer = lambda: browser.find_element("css selector", ".fv-root").get_attribute("data-flagged")  # noqa: E731
    after = int(wait_for(browser, lambda: metric_value(browser, "Flagged frames") == flagged_in_viewer() and flagged_in_viewer(),
                         10, "the count to agree with the viewer's"))
    assert after > before  # a looser tracking threshold tracks more objects, so more frames are flagged

    timeline = browser.find_element("css selector", ".fv-timeline")
    click_at(browser, timeline, 0.25)
    seeked = wait_for(browser, lambda: 150 < (shown_frame(browser) or 0) < 250 and shown_frame(browser), 30,
                      "a timeline click to seek")
    wait_for(browser, lambda: f"frame={seeked}" in browser.current_url, 10, "the frame in the URL")

    browser.refresh()  # a reload opens the same frame with the same settings
    wait_for(browser, lambda: shown_frame(browser) == seeked, 60, "the same frame after a reload")
    # the frame first, the panels beside it once it is on screen (pages/review.py, workspace)
    wait_for(browser, lambda: browser.find_element("css selector", 'input[type="range"][aria-label="IoU tracking"]')
             .get_attribute("aria-valuetext") == "0.50", 30, "the same threshold after a reload")
    assert int(metric(browser, "Flagged frames")) == after

    click_when(browser, lambda: button(browser, "Run local selection"), 30, "the local selection's button")
    wait_for(browser, lambda: "frames selected" in body(), 120, "the local selection")
    # the map mounts (and learns where its points go) a moment after the run's text is on the page
    embedding_map = wait_for(browser, lambda: browser.find_element("css selector", ".fm-root"), 30, "the embedding map")

    def click_on_the_map(frame: int) -> None:
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", embedding_map)
        x, y = wait_for(browser, lambda: browser.execute_script("return arguments[0].pointOf(arguments[1]);", embedding_map,
                                                                frame), 30, f"frame {frame}'s point on the map")
        actions = ActionBuilder(browser)
        actions.pointer_action.move_to_location(round(x), round(y)).click()
        actions.perform()

    # Neighbouring frames lie together along a curve of similar frames: each opens exactly itself.
    for frame in (300, 233, 234, 235):
        click_on_the_map(frame)
        wait_for(browser, lambda: shown_frame(browser) == frame, 30, f"a click on the map to show frame {frame}")
        assert embedding_map.get_attribute("data-frame") == str(frame), "the map marks the frame in the viewer"
    viewer = browser.find_element("css selector", ".fv-root")
    wait_for(browser, lambda: in_view(browser, viewer), 10, "the viewer to scroll into view")
    press(browser, Keys.RIGHT)
    wait_for(browser, lambda: embedding_map.get_attribute("data-frame") == "236", 10, "the map's marker to follow a step")
    drawn = np.array(browser.execute_script(
        "const map = arguments[0]; map.scrollIntoView({block: 'center'});"
        "return Array.from({length: 795}, (_, frame) => map.pointOf(frame)).filter((p) => p);", embedding_map))
    gaps = np.linalg.norm(drawn[:, None] - drawn[None], axis=-1) + np.eye(len(drawn)) * 1e9
    assert len(drawn) == 795 and gaps.min() >= 7, "no point hides another at the whole-map zoom"
    time.sleep(1.5)
    shot = Path(os.environ.get("FLICKER_SCREENSHOT", tmp_path / "review.png"))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000

