"""The Review viewer in headless Chromium against the real app: a timeline drag shows the frame it
was let go on even while a stale fetch hangs, a server restart says to reload (with a button that
does), and the reviewer's keys work after a click on a radio group or a slider."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from conftest import (CHROMEDRIVER, CHROMIUM, NAME_CUT, SAMPLE_VIDEO, TAGS_APART, app_idle, click_when, free_port, metric, press,
                      shown_frame, streamlit_server, wait_for)
from core.flicker import FlickerIndex
from core.label_formats import read_boxes
from core.video import probe
from test_review_assertions import sample_predictions
from ui.js import MOUNT_JS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver"),
]
N_FRAMES = 795  # the sample's


def app_on(port: int, folder: Path, cache_dir: Path):
    """The app on ``port``: a restart must come back where the open tab looks for it."""
    return streamlit_server(folder, cache_dir, port=port)


def review_link(url: str, boxes: Path) -> str:
    """Review of the sample with the HOG boxes of its frames 10..29, straight from a link."""
    query = {"video": str(SAMPLE_VIDEO), "boxes": str(boxes), "boxes_format": "coco", "frame": "0"}
    return f"{url}/review?{urlencode(query)}"


def open_review(browser, url: str, boxes: Path) -> None:
    browser.get(review_link(url, boxes))
    wait_for(browser, lambda: shown_frame(browser) == 0, 90, "the viewer on frame 0")


def viewer(browser, name: str) -> str | None:
    return browser.find_element("css selector", ".fv-root").get_attribute(f"data-{name}")


def timeline_offset(browser, frame: int) -> tuple[object, int]:
    """The timeline and frame's x offset from its centre (Selenium's pointer offsets)."""
    timeline = browser.find_element("css selector", ".fv-timeline")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", timeline)
    width = timeline.size["width"]
    return timeline, round((frame + 0.5) / N_FRAMES * width - width / 2)


def click_timeline(browser, frame: int) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    timeline, x = timeline_offset(browser, frame)
    ActionChains(browser).move_to_element_with_offset(timeline, x, 0).click().perform()


LOG_FETCHES = """
if (!window.__fetches) {  // every image source set from now on, and whether the pointer was down then
  window.__fetches = [];
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, 'src');
  Object.defineProperty(HTMLImageElement.prototype, 'src', {...src, set(url) {
    __fetches.push([String(url), !!window.__scrubbing]);
    src.set.call(this, url);
  }});
  window.addEventListener('pointerdown', () => (window.__scrubbing = true), true);  // before the viewer hears them
  window.addEventListener('pointerup', () => (window.__scrubbing = false), true);
}
"""


def frames_fetched(browser) -> list[tuple[int, bool, bool]]:
    """The frames the viewer fetched since LOG_FETCHES: (frame, urgent, while the pointer was down)."""
    fetches = browser.execute_script("return window.__fetches")
    return [(int(url.rsplit("/", 1)[1].split(".")[0]), url.endswith("?now"), scrubbing)
            for url, scrubbing in fetches if "/frames/" in url]


def test_a_drag_shows_the_frame_let_go_on_while_a_stale_fetch_hangs(walk_hog, tmp_path, shared_cache, browser):
    """The press lands on frame 750, whose fetch never answers (Chromium holds the requests for
    frames 700..794 under the hand: a server stuck on them); the drag ends on frame 300. The viewer shows 300, and stays there, without waiting for 700;
    while the pointer was down it asked for no frame but the one under the press."""
    from selenium.webdriver.common.action_chains import ActionChains

    boxes, _ = sample_predictions(walk_hog, tmp_path)
    stuck, passed, released = 750, (600, 500, 400), 300
    with app_on(free_port(), tmp_path, shared_cache) as url:
        open_review(browser, url, boxes)
        browser.execute_cdp_cmd("Fetch.enable", {"patterns": [{"urlPattern": "*/frames/*/7??.jpg\\?now"}]})
        browser.execute_script(LOG_FETCHES)
        timeline, x = timeline_offset(browser, stuck)
        drag = ActionChains(browser).move_to_element_with_offset(timeline, x, 0).click_and_hold()
        for frame in (*passed, released):
            drag = drag.move_to_element_with_offset(timeline, timeline_offset(browser, frame)[1], 0).pause(0.05)
        drag.release().perform()
        wait_for(browser, lambda: shown_frame(browser) == released, 30, f"frame {released} after the release")
        assert browser.find_element("css selector", ".fv-label").text.startswith(f"Frame {released} /")
        assert browser.find_element("css selector", ".fv-loading").get_attribute("hidden") is not None
        fetched = frames_fetched(browser)
        assert (released, True, False) in fetched, f"the frame let go on, asked for at once: {fetched}"
        pressed = [frame for frame, _, down in fetched if down]
        assert len(pressed) == 1 and abs(pressed[0] - stuck) <= 1, \
            f"while the pointer was down, only the frame pressed on: {fetched}"
        wait_for(browser, lambda: any(not down and not urgent for _, urgent, down in frames_fetched(browser)), 10,
                 "the frames around it, fetched ahead once the pointer is up")
        assert shown_frame(browser) == released
        browser.execute_cdp_cmd("Fetch.disable", {})


def test_after_a_server_restart_the_viewer_says_to_reload_and_its_button_does(walk_hog, tmp_path, shared_cache,
                                                                                browser):
    """While the server is down a far frame waits (the fetch is tried again later: a network
    error passes); once it is back and answers 404 for a video it never registered, the viewer says
    in one line that the app was restarted, and its Reload button opens the same review on that frame.
    After another restart a verdict (which the new server never hears) says at once that it was not
    kept; after the reload it is given again and stored."""
    from core.verdicts import VerdictStore
    from core.video import fingerprint_file

    boxes, _ = sample_predictions(walk_hog, tmp_path)
    port, far = free_port(), 600
    store, fingerprint = VerdictStore(tmp_path / "data" / "verdicts.sqlite"), fingerprint_file(SAMPLE_VIDEO)
    note = lambda: browser.find_element("css selector", ".fv-gone")  # noqa: E731
    with app_on(port, tmp_path, shared_cache):
        open_review(browser, boxes=boxes, url=f"http://127.0.0.1:{port}")
    assert viewer(browser, "gone") == "false"
    click_timeline(browser, far)  # the server is down: the fetch fails, and is tried again later
    wait_for(browser, lambda: browser.find_element("css selector", ".fv-loading").is_displayed(), 10,
             "Loading frame... while the server is away")
    assert viewer(browser, "gone") == "false" and shown_frame(browser) == 0
    with app_on(port, tmp_path, shared_cache):
        wait_for(browser, lambda: note().is_displayed(), 30, "the restart note")
        assert note().text.splitlines()[0] == "The app was restarted: reload the page to go on reviewing."
        assert not browser.find_element("css selector", ".fv-loading").is_displayed()
        assert shown_frame(browser) == 0 and f"Frame {far} /" in browser.find_element("css selector", ".fv-label").text
        browser.save_screenshot(str(tmp_path / "restarted.png"))
        note().find_element("css selector", "button[data-action='reload']").click()
        wait_for(browser, lambda: shown_frame(browser) == far, 90, f"frame {far} after the reload")
        assert viewer(browser, "gone") == "false" and f"frame={far}" in browser.current_url
        press(browser, "j")  # the last flagged frame (the boxes are the sample's frames 10..29)
        flagged = wait_for(browser, lambda: shown_frame(browser) != far and shown_frame(browser), 30, "J")
        assert 10 <= flagged <= 29 and viewer(browser, "firing") == "flicker"
    with app_on(port, tmp_path, shared_cache):
        press(browser, "m")  # heard by no one: the server does not know this page's session
        wait_for(browser, lambda: note().is_displayed(), 30, "the restart note after a verdict")
        assert note().text.splitlines()[0] == (f"The app was restarted and did not keep the verdict on frame {flagged}: "
                                               "reload the page and give it again.")
        browser.save_screenshot(str(tmp_path / "verdict-not-kept.png"))
        assert store.all(fingerprint) == {}
        assert browser.find_element("css selector", ".fv-verdict").get_attribute("data-verdict") == "", \
            "a verdict not kept is not shown as given"
        note().find_element("css selector", "button[data-action='reload']").click()
        wait_for(browser, lambda: shown_frame(browser) == flagged and viewer(browser, "gone") == "false", 90,
                 f"frame {flagged} after the reload")
        press(browser, "m")
        wait_for(browser, lambda: store.all(fingerprint) == {flagged: "miss"}, 30, "the verdict given again, stored")
        assert not note().is_displayed()


def test_keys_work_after_a_click_on_a_radio_group_or_a_slider(walk_hog, tmp_path, shared_cache, browser):
    """K and M right after a click on the Mode radio (the option already chosen: the focus stays on
    it) go to a flagged frame and record the verdict; after a click on a slider J / K still move the
    viewer while the arrows move the slider and not the frame; in the Jump box letters are text."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from core.verdicts import VerdictStore
    from core.video import fingerprint_file

    boxes, _ = sample_predictions(walk_hog, tmp_path)
    keys = lambda text: ActionChains(browser).send_keys(text).perform()  # noqa: E731  (to what has the focus)
    focused = lambda: browser.execute_script(  # noqa: E731
        "const e = document.activeElement; return [e.tagName, e.type || '', e.getAttribute('role') || ''];")
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    fingerprint = fingerprint_file(SAMPLE_VIDEO)
    store.set(fingerprint, 0, "false_alarm", annotator="spot")  # a spot check of frame 0, which nothing flags
    with app_on(free_port(), tmp_path, shared_cache) as url:
        open_review(browser, url, boxes)
        status = lambda: browser.find_element("css selector", ".fv-status").text  # noqa: E731
        spot = "No flicker \u00b7 spot check: nothing missing"  # Review says what the check found
        wait_for(browser, lambda: status() == spot, 10, f"{spot!r} in the status line")
        flagged_count = int(metric(browser, "Flagged frames"))
        assert flagged_count > 0

        def scrolled_to(element):  # clear of the page's sticky header
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            return element

        # the panels are drawn anew by the settled frame's rerun: a radio or slider found before it may be stale
        click_when(browser, lambda: scrolled_to(next(label for label in browser.find_elements(
            "css selector", '[role="radiogroup"] label') if label.text == "reference")), 30, "the Mode radio")
        assert focused()[:2] == ["INPUT", "radio"], f"the focus is on the radio: {focused()}"
        keys("k")
        first = wait_for(browser, lambda: shown_frame(browser) or None, 30, "K to the first flagged frame")
        keys("m")
        wait_for(browser, lambda: store.all(fingerprint) == {0: "false_alarm", first: "miss"}, 30, "M's verdict in the store")
        assert browser.find_element("css selector", ".fv-verdict").get_attribute("data-verdict") == "miss"

        slider = lambda: browser.find_element("css selector", 'input[type="range"][aria-label="IoU assertion"]')  # noqa: E731
        wait_for(browser, lambda: ActionChains(browser).click(scrolled_to(slider())).perform() or True, 30, "a click on the slider")
        value = wait_for(browser, lambda: slider().get_attribute("aria-valuetext"), 10, "the slider's value")
        assert focused()[:2] == ["INPUT", "range"], f"the focus is on the slider: {focused()}"
        keys("k")
        second = wait_for(browser, lambda: shown_frame(browser) != first and shown_frame(browser), 30,
                          "K after a click on the slider")
        assert second > first
        keys(Keys.RIGHT)  # the slider's own key
        wait_for(browser, lambda: slider().get_attribute("aria-valuetext") != value, 30, "the slider to move")
        assert shown_frame(browser) == second, "the arrow moved the slider, not the frame"

        jump = browser.find_element("css selector", 'input[aria-label="Jump to frame"]')
        jump.click()
        keys("jk")  # text, not moves (a number box takes no letters)
        assert shown_frame(browser) == second


def test_j_and_k_past_the_first_and_last_flagged_frame_and_a_jump_to_no_frame_say_so(walk_hog, tmp_path, shared_cache,
                                                                                      browser):
    """J on frame 0 and K on the last flagged frame have nowhere to go: the status says so for a
    moment (they did nothing, silently, as if the keys were broken). So does the Jump box given a
    number that names no frame; "1e2" is frame 100 (it was read as 1)."""
    from selenium.webdriver.common.keys import Keys

    boxes, _ = sample_predictions(walk_hog, tmp_path)
    status = lambda: browser.find_element("css selector", ".fv-status").text  # noqa: E731
    with app_on(free_port(), tmp_path, shared_cache) as url:
        open_review(browser, url, boxes)
        press(browser, "j")
        wait_for(browser, lambda: status() == "No flagged frame before this one", 10, "a word on J with none before")
        assert shown_frame(browser) == 0
        flagged = int(viewer(browser, "flagged"))
        for _ in range(flagged):  # to the last flagged frame, one K each
            at = shown_frame(browser)
            press(browser, "k")
            wait_for(browser, lambda: shown_frame(browser) != at, 10, "K to the next flagged frame")
        last = shown_frame(browser)
        press(browser, "k")
        wait_for(browser, lambda: status() == "No flagged frame after this one", 10, "a word on K with none after")
        assert shown_frame(browser) == last > 0 and flagged > 0
        wait_for(browser, lambda: status() != "No flagged frame after this one", 10, "the status back")
        jump = browser.find_element("css selector", 'input[aria-label="Jump to frame"]')
        jump.send_keys("1e2" + Keys.ENTER)  # a number box takes it: 100, which the box read as 1
        wait_for(browser, lambda: shown_frame(browser) == 100, 10, "frame 100 from 1e2")
        jump.send_keys("2.5" + Keys.ENTER)
        wait_for(browser, lambda: status() == "Not a frame number", 10, "a word on a number that names no frame")
        assert shown_frame(browser) == 100


def test_a_pointer_resting_on_a_verdicts_open_in_review_link_asks_for_that_frame_before_the_press(
        walk_hog, tmp_path, shared_cache, browser):
    """On the Verdicts page, the reviewed list's "Open in Review" for a frame far from the queue: no
    request for its JPEG while the pointer is elsewhere; once the pointer rests on the link, one (not
    ``?now``: behind the frame under a hand); the press then opens Review on that frame."""
    from selenium.webdriver.common.action_chains import ActionChains

    from core.verdicts import VerdictStore
    from core.video import fingerprint_file

    boxes, _ = sample_predictions(walk_hog, tmp_path)
    far = 700
    VerdictStore(tmp_path / "data" / "verdicts.sqlite").set(fingerprint_file(SAMPLE_VIDEO), far, "unsure", annotator="t")
    asked = lambda: browser.execute_script(  # noqa: E731
        "return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/frames/'))"
        f".filter((n) => /\\/{far}\\.jpg(\\?now)?$/.test(n))")
    with app_on(free_port(), tmp_path, shared_cache) as url:
        open_review(browser, url, boxes)
        click_when(browser, lambda: browser.find_element("css selector", '[data-testid="stSidebarNav"] a[href$="/qa"]'), 30,
                   "the Verdicts page's link")
        link = f'a[data-testid="stPageLink-NavLink"][href*="frame={far}&"], a[data-testid="stPageLink-NavLink"][href$="frame={far}"]'
        wait_for(browser, lambda: browser.find_elements("css selector", link), 60, f"Open in Review for frame {far}")
        wait_for(browser, lambda: browser.find_elements("css selector", ".vq-root"), 30, "the verdict queue")
        # the pointer rests on one link: found once the page's runs are over, none drawing it anew under the pointer
        anchor = wait_for(browser, lambda: app_idle(browser) and browser.find_element("css selector", link), 30,
                          "the page at rest")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", anchor)
        ActionChains(browser).move_to_element(browser.find_element("css selector", "h1")).perform()
        assert asked() == [], "asked for before any pointer came near its link"
        ActionChains(browser).move_to_element(anchor).pause(0.3).perform()
        wait_for(browser, lambda: asked(), 10, f"frame {far}'s JPEG asked for while the pointer rests on its link")
        assert all(not name.endswith("?now") for name in asked()), asked()
        ActionChains(browser).click(anchor).perform()
        wait_for(browser, lambda: browser.find_elements("css selector", ".fv-root") and shown_frame(browser) == far, 60,
                 f"Review on frame {far}")


def test_play_goes_on_after_far_jumps_dropped_fetches_still_in_flight(walk_hog, tmp_path, shared_cache, browser):
    """Chromium never settles an image's decode() once its src is removed mid-request, and the viewer
    drops fetches ahead that way when the hand jumps far. Each such drop kept one of the three places
    for fetches ahead taken for good: after a few far jumps while the server was slow (building a
    seek proxy), nothing was fetched ahead again and Play stood on one frame until a reload. Here the
    fetches ahead of frames 100..199 never answer while the hand jumps there and away."""
    from selenium.webdriver.common.keys import Keys

    boxes, _ = sample_predictions(walk_hog, tmp_path)
    with app_on(free_port(), tmp_path, shared_cache) as url:
        open_review(browser, url, boxes)
        jump = browser.find_element("css selector", 'input[aria-label="Jump to frame"]')
        browser.execute_cdp_cmd("Fetch.enable", {"patterns": [{"urlPattern": "*/frames/*/1??.jpg"}]})  # not ?now
        browser.execute_script(LOG_FETCHES)
        for there in (150, 400, 120, 500):  # each lands with fetches ahead held, then leaves them far behind
            jump.send_keys(f"{there}" + Keys.ENTER)
            wait_for(browser, lambda: shown_frame(browser) == there, 30, f"frame {there}")
            if there < 200:
                wait_for(browser, lambda: sum(not urgent and 100 <= frame < 200 for frame, urgent, _ in
                                              frames_fetched(browser)) >= 3, 10,
                         "fetches ahead, held (none: fetching ahead had stopped)")
                browser.execute_script("window.__fetches = []")
        browser.execute_cdp_cmd("Fetch.disable", {})
        press(browser, Keys.SPACE)
        wait_for(browser, lambda: shown_frame(browser) >= 505, 20, "playback past five frames")
        press(browser, Keys.SPACE)


def test_plus_on_a_flagged_frame_zooms_into_its_imputed_box(walk_hog, tmp_path, shared_cache, browser):
    """+ zoomed about the frame's centre, and a dashed box near the frame's edge went out of view."""
    boxes, _ = sample_predictions(walk_hog, tmp_path)
    with app_on(free_port(), tmp_path, shared_cache) as url:
        open_review(browser, url, boxes)
        press(browser, "k")
        flagged = wait_for(browser, lambda: shown_frame(browser) or None, 30, "a flagged frame")
        assert viewer(browser, "zoom") == "1 384 288"
        press(browser, "+")
        wait_for(browser, lambda: (viewer(browser, "zoom") or "").startswith("1.5 "), 10, "zoomed in")
        level, cx, cy = viewer(browser, "zoom").split()
        assert (int(cx), int(cy)) != (768 // 2, 576 // 2), f"centred on the imputed box of frame {flagged}, not the frame"
        detections = read_boxes(boxes, probe(SAMPLE_VIDEO), "vtest.avi")
        box = FlickerIndex.from_detections(detections).evaluate(0.8, 0.6).imputed_for(flagged)[0]
        for zoom in ("2", "3", "4"):  # each + after the first keeps the whole box in view (it went out at 2x; then its edge)
            press(browser, "+")
            wait_for(browser, lambda: (viewer(browser, "zoom") or "").startswith(zoom + " "), 10, f"zoomed to {zoom}x")
            level, cx, cy = (float(value) for value in viewer(browser, "zoom").split())
            half_w, half_h = 768 / 2 / level, 576 / 2 / level
            if box[2] - box[0] <= 2 * half_w:  # where it fits
                assert cx - half_w - 1 <= box[0] and box[2] <= cx + half_w + 1, (zoom, box, cx)
            if box[3] - box[1] <= 2 * half_h:
                assert cy - half_h - 1 <= box[1] and box[3] <= cy + half_h + 1, (zoom, box, cy)
            else:  # taller than the view: its centre stays in it
                assert abs((box[1] + box[3]) / 2 - cy) <= half_h, (zoom, box, cy)
        press(browser, "0")
        wait_for(browser, lambda: viewer(browser, "zoom") == "1 384 288", 10, "the whole frame again")


def test_a_long_file_name_is_cut_in_its_middle_at_1280_px(walk_hog, tmp_path, shared_cache, browser):
    """Review's header at 1280x720 has room for a few letters of the name: a camera's long file name
    read "north_gate..." there, alike for every camera of the site. Its start and end are kept now
    ("north..._shift.mp4"), the frame and the flag whole beside it, the whole name in its title."""
    import shutil

    info, _ = walk_hog
    video = tmp_path / "north_gate_camera_07_2024-06-01_morning_shift.mp4"
    shutil.copy(info.path, video)  # the same content: the same cached boxes
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 720, "deviceScaleFactor": 1,
                                                                   "mobile": False})
    with app_on(free_port(), tmp_path, shared_cache) as url:
        browser.get(f"{url}/review?{urlencode({'video': str(video), 'frame': '0'})}")
        wait_for(browser, lambda: shown_frame(browser) == 0, 90, "the viewer on frame 0")
        name = browser.find_element("css selector", ".fv-name")
        assert browser.execute_script(NAME_CUT, name) == [video.name, video.name, True, "_shift.mp4", True]
        cut = "return [...document.querySelectorAll('.fv-head > *')].filter(e => e.scrollWidth > e.clientWidth)" \
              ".map(e => e.className)"
        assert browser.execute_script(cut) == [] and name.size["height"] < 30


def test_a_space_where_a_long_name_is_cut_is_still_shown(tmp_path, browser):
    """showName (ui/mount.js) splits a long name in two spans; a space at the split ended the first or
    started the second, where CSS drops it: "My holiday video clip part 2.mp4" read "...clippart 2.mp4"
    in Review's and the Verdicts queue's header, with room for the whole name."""
    ui = Path(__file__).parent.parent / "ui"
    css = "\n".join((ui / name).read_text() for name in ("viewer/viewer.css", "verdict_queue/queue.css"))
    name = "My holiday video clip part 2.mp4"
    page = tmp_path / "names.html"
    page.write_text(f"""<html><head><style>{css}</style></head><body>
<div class="fv-head" style="width: 1200px"><div class="fv-name"></div></div>
<div class="vq-head" style="width: 1200px"><div class="vq-name"></div></div>
<span id="whole" style="white-space: nowrap">{name}</span>
<script>{(ui / "mount.js").read_text()}
for (const element of document.querySelectorAll(".fv-name, .vq-name")) showName(element, {name!r});</script></body></html>""")
    browser.get(page.as_uri())
    widths = browser.execute_script("""return [...document.querySelectorAll('.fv-name, .vq-name, #whole')].map((element) => {
      const range = document.createRange(); range.selectNodeContents(element);
      return Math.round(range.getBoundingClientRect().width); });""")
    assert widths[0] == widths[1] == widths[2], f"the names shown are {widths[:2]} px wide, the name {widths[2]} px"


def test_a_long_name_is_never_cut_inside_a_character(tmp_path, browser):
    """showName (ui/mount.js) cuts a long name 10 UTF-16 units from its end: an emoji there (two units) was split,
    each span showing half of it (two replacement marks in the header)."""
    ui = Path(__file__).parent.parent / "ui"
    page = tmp_path / "names.html"
    page.write_text(f"""<html><head><meta charset="utf-8"></head><body><div class="fv-name"></div>
<script>{(ui / "mount.js").read_text()}
showName(document.querySelector(".fv-name"), "cam_north_2024\U0001F60012345.mp4");</script></body></html>""", encoding="utf-8")
    browser.get(page.as_uri())
    name = browser.find_element("css selector", ".fv-name")
    whole = browser.execute_script("return [...arguments[0].children].map((span) => span.textContent.isWellFormed())", name)
    assert whole == [True, True] and browser.execute_script("return arguments[0].textContent", name) == \
        "cam_north_2024\U0001F60012345.mp4", whole


# ui/mount.js's placeTags on a page of its own: [[video box, text, a marked (dashed) box?], ...] drawn at ``scale`` onto a
# canvas ``width`` x ``height`` (12 px text, taken as 7 px a letter); gives [text, [x, y, width, height], the boxes it covers].
PLACE_TAGS = MOUNT_JS + """
const [boxes, scale, width, height] = arguments;
const tags = boxes.map(([[ax, ay, bx, by], text, mark]) => ({ text, width: text.length * 7 + 6, height: 17,
  box: [ax * scale, ay * scale, (bx - ax) * scale, (by - ay) * scale], sides: mark ? TAG_SIDES.mark : TAG_SIDES.box }));
const over = (a, b) => a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
const covered = (spot) => tags.filter((tag) => over(spot, tag.box)).map((tag) => tag.text);
return placeTags(tags, width, height).map((spot, i) => [tags[i].text, spot, covered(spot)]);"""
IMPUTED_122 = ([547, 39, 640, 225], "imputed", True)  # the sample's frame 122 (the default detector's boxes)
DETECTED_122 = [([510, 195, 582, 339], "person 0.94"), ([356, 157, 421, 287], "person 0.76"), ([496, 132, 596, 333], "person 0.24")]
DETECTED_199 = [([596, 246, 666, 387], "person 0.90"), ([683, 225, 758, 375], "person 0.86"), ([206, 165, 272, 297], "person 0.22")]


@pytest.mark.parametrize("boxes, scale, width, height", [
    ([IMPUTED_122, *DETECTED_122], 540 / 768, 540, 405),  # Review's frame 122 at 1280x720
    ([IMPUTED_122, *DETECTED_122], 1, 768, 576),  # and at full size
    (DETECTED_199, 364 / 768, 364, 273),  # the Verdicts queue's frame 199 at 1280x720
])
def test_box_tags_keep_off_each_other_and_the_imputed_one_off_the_people(browser, boxes, scale, width, height):
    """On Review's frame 122 of the sample, "person 0.24" and "person 0.94" stood over each other and the
    "imputed" tag (under its dashed box) over the person in a detected box; on the queue's frame 199,
    "person 0.86", kept in the frame at its right edge, over "person 0.90". Both drawers place their
    tags with one function now: no tag over another, each inside the frame, the dashed box's over no box."""
    browser.get("data:text/html,<title>tags</title>")
    placed = browser.execute_script(PLACE_TAGS, [[box, *rest] for box, *rest in boxes], scale, width, height)
    spots = [spot for _, spot, _ in placed]
    assert all(0 <= x and x + w <= width and 0 <= y and y + h <= height for x, y, w, h in spots), placed
    assert not [(a, b) for i, a in enumerate(spots) for b in spots[:i]
                if a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]], placed
    assert [covers for text, _, covers in placed if text == "imputed"] in ([], [[]]), placed


def test_review_draws_its_tags_apart_inside_the_frame(walk_hog, tmp_path, shared_cache, browser):
    """Review's viewer draws the boxes' tags where the shared placement puts them: on each frame of the
    walk, no tag over another or out of the frame. They were drawn one by one, each on its box's corner."""
    from selenium.webdriver.common.keys import Keys

    info, _ = walk_hog
    with app_on(free_port(), tmp_path, shared_cache) as url:
        browser.get(f"{url}/review?{urlencode({'video': str(info.path), 'frame': '0'})}")
        wait_for(browser, lambda: shown_frame(browser) == 0, 90, "the viewer on frame 0")
        canvas, drawn = browser.find_element("css selector", ".fv-frame"), 0
        for frame in range(1, info.frame_count):
            press(browser, Keys.ARROW_RIGHT)
            wait_for(browser, lambda: shown_frame(browser) == frame, 30, f"frame {frame}")
            count, wrong = browser.execute_script(TAGS_APART, canvas)
            assert not wrong, (frame, wrong)
            drawn += count
        assert drawn > info.frame_count, "the walk's people, tagged"


# The timeline's boxes-per-frame graph (its first TIMELINE_HEIGHT pixel rows): [the lowest row of its label's grey text
# (in the left 80 CSS pixels), the highest row of the count line's blue anywhere], in device pixels.
LABEL_AND_LINE = """const canvas = arguments[0], dpr = window.devicePixelRatio || 1, rows = 80 * dpr;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, rows).data;
let label = -1, line = rows;
for (let y = 0; y < rows; y++) for (let x = 0; x < canvas.width; x++) {
  const [r, g, b, a] = data.subarray(4 * (y * canvas.width + x), 4 * (y * canvas.width + x) + 4); // a: the canvas is clear
  if (x < 80 * dpr && a > 100 && Math.max(r, g, b) - Math.min(r, g, b) < 30) label = Math.max(label, y);
  if (a > 100 && b - r > 100 && g < b) line = Math.min(line, y);
}
return [label, line];"""


def test_the_timelines_box_count_label_stands_above_the_count_line(walk_hog, tmp_path, shared_cache, browser):
    """The boxes-per-frame graph's "N boxes" was drawn where the line reaches its highest (the line ran
    through "7 boxes" on the sample's frames with most boxes); it stands above the line's highest point."""
    info, _ = walk_hog
    with app_on(free_port(), tmp_path, shared_cache) as url:
        browser.get(f"{url}/review?{urlencode({'video': str(info.path), 'frame': '5'})}")
        wait_for(browser, lambda: shown_frame(browser) == 5, 90, "the viewer on frame 5")
        label, line = browser.execute_script(LABEL_AND_LINE, browser.find_element("css selector", ".fv-timeline"))
        assert 0 <= label < line, (label, line)


# The columns, in device pixels, of the timeline's "N boxes" label (grey text above the count line's highest point, 16 CSS
# pixels) and of the orange current-frame cursor in those rows: [[first, last] of the label, [first, last] of the cursor].
LABEL_AND_CURSOR = """const canvas = arguments[0], rows = 16 * (window.devicePixelRatio || 1);
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, rows).data, label = [], cursor = [];
for (let y = 0; y < rows; y++) for (let x = 0; x < canvas.width; x++) {
  const [r, g, b, a] = data.subarray(4 * (y * canvas.width + x), 4 * (y * canvas.width + x) + 4);
  if (a > 100 && Math.max(r, g, b) - Math.min(r, g, b) < 30) label.push(x);
  if (a > 200 && r > 200 && g > 90 && g < 160 && b < 80) cursor.push(x);
}
const span = (xs) => xs.length ? [Math.min(...xs), Math.max(...xs)] : null;
return [span(label), span(cursor)];"""


def test_the_timelines_cursor_never_crosses_its_box_count_label(walk_hog, tmp_path, shared_cache, browser):
    """On the first frames the orange current-frame mark was drawn through "N boxes" at the timeline's
    left end (the walk's frame 0 cut "7 boxes" in two); on every frame of the walk the label stands clear of it."""
    from selenium.webdriver.common.keys import Keys

    info, _ = walk_hog
    with app_on(free_port(), tmp_path, shared_cache) as url:
        browser.get(f"{url}/review?{urlencode({'video': str(info.path), 'frame': '0'})}")
        wait_for(browser, lambda: shown_frame(browser) == 0, 90, "the viewer on frame 0")
        timeline = browser.find_element("css selector", ".fv-timeline")
        for frame in range(info.frame_count):
            if frame:
                press(browser, Keys.ARROW_RIGHT)
                wait_for(browser, lambda: shown_frame(browser) == frame, 30, f"frame {frame}")
            label, cursor = wait_for(browser, lambda: browser.execute_script(LABEL_AND_CURSOR, timeline), 10, "the timeline")
            assert label and cursor and (cursor[1] < label[0] - 1 or cursor[0] > label[1] + 1), (frame, label, cursor)


def test_a_nudge_on_an_unflagged_frame_leaves_the_name_whole_at_1280_px(walk_hog, tmp_path, shared_cache, browser):
    """M on an unflagged frame says "Nothing flagged here" for a moment: beside the hidden
    answers it took the header's room and cut even a short name ("vtest.avi" read "vtes..."). The word
    takes only the room left now (cut short there, the whole of it in its title); the name stays whole."""
    info, _ = walk_hog
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 720, "deviceScaleFactor": 1,
                                                                   "mobile": False})
    with app_on(free_port(), tmp_path, shared_cache) as url:
        browser.get(f"{url}/review?{urlencode({'video': str(info.path), 'frame': '0'})}")
        wait_for(browser, lambda: shown_frame(browser) == 0, 90, "the viewer on frame 0")
        assert viewer(browser, "firing") == "", "frame 0 of the walk is not flagged"
        name, status = (browser.find_element("css selector", selector) for selector in (".fv-name", ".fv-status"))
        whole = "return [...arguments[0].querySelectorAll('*')].every(e => e.scrollWidth <= e.clientWidth)"
        press(browser, "m")
        wait_for(browser, lambda: "Nothing flagged" in status.text, 10, "the nudge")
        assert name.text == info.path.name and browser.execute_script(whole, name), "the name, whole beside the nudge"
        assert status.get_attribute("title").startswith("Nothing flagged here: M / F / U answer a flag")
        assert browser.execute_script(whole, status), "the nudge, whole too ('Nothing flagged to judge here' was cut)"
        assert browser.find_element("css selector", ".fv-head").size["height"] < 45, "one line"
        wait_for(browser, lambda: "Nothing flagged" not in status.text, 10, "the status back")
        assert browser.execute_script(whole, status.find_element("xpath", "..")) and not status.get_attribute("title")
