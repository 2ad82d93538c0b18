"""The Fleet page in a real browser: `streamlit run app.py` driven by headless Chromium on a real batch
output folder (tests/fleet_batch.py), with an empty detection cache: nothing may be detected again.

Screenshots at 1280x720 and 1600x1000 go to $FLEET_SCREENSHOTS (default: the test's tmp folder)."""
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import (CHROMEDRIVER, CHROMIUM, click_when, components_code_loaded, metric,
                      metric_value, page_link, press, shown_frame, streamlit_server, wait_for)
from core.fleet import PREDICTIONS_CACHE
from core.paths import exclusive_lock
from fleet_batch import make_batch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"),
]

# A verdict (M), then a click on the sidebar's link to ``arguments[0]`` as soon as the verdict's rerun
# runs; answers how many clicks the app held for a run (see ui/mount.js).
VERDICT_THEN_LEAVE = """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
const app = document.querySelector('[data-test-script-state]'), held = window.flickerNavigationHeld.held;
const leave = () => {
  watching.disconnect();
  document.querySelector(`[data-testid="stSidebarNav"] a[href$="${path}"]`).click();
  done(window.flickerNavigationHeld.held - held);
};
// each record's own change: a run that starts and ends within one batch of records still counts
const started = (records) => records.some((record, i) =>
  (i + 1 < records.length ? records[i + 1].oldValue : app.getAttribute('data-test-script-state')) === 'running');
const watching = new MutationObserver((records) => started(records) && leave());
watching.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'm', bubbles: true}));
"""
# Whether Review's side panels (their counts) were on the page when its viewer first drew a frame.
WATCH_FIRST_FRAME = """
window.panelsAtFirstFrame = null;
const watching = new MutationObserver(() => {
  if (!document.querySelector('.fv-root[data-frame]')) return;
  window.panelsAtFirstFrame = document.body.innerText.includes('Imputed boxes');
  watching.disconnect();
});
watching.observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-frame'], childList: true});
"""
WORST_FIRST = ["walk_c.mp4", "walk_a.mp4", "broken.mp4", "walk_b.mp4"]  # 4, 3, 0 (failed), 0 flagged frames; ties by name
GRID = '[data-testid="stDataFrame"]'
ROW_HEIGHT = 35  # Streamlit's dataframe rows (and its header row)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    return make_batch(tmp_path_factory.mktemp("fleet-browser"))


@pytest.fixture
def served(tmp_path):
    """The app with an empty detection cache of its own; yields (base URL, that cache)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    with streamlit_server(tmp_path, cache) as url:
        yield url, cache


def body(browser) -> str:
    return browser.find_element("tag name", "body").text


def idle(browser) -> bool:
    """The app is not running a script (Streamlit's status widget is away)."""
    return not browser.find_elements("css selector", '[data-testid="stStatusWidget"]')


def grid_rows(browser) -> list[list[str]]:
    """The table's rows as the grid's accessible table lists them (the rows on screen)."""
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' table tbody tr')]"
        ".map(r => [...r.querySelectorAll('td')].map(c => c.textContent))", GRID)


def videos(browser) -> list[str] | None:
    rows = grid_rows(browser) if idle(browser) else None
    return [row[0] for row in rows] if rows is not None else None


def links(browser) -> list[str]:
    """The texts of the visible links to other pages of the app (st.page_link), read in one go."""
    return browser.execute_script("return [...document.querySelectorAll('a[data-testid=\"stPageLink-NavLink\"]')]"
                                  ".filter((a) => a.offsetParent !== null).map((a) => a.innerText)")


def click_row(browser, index: int) -> None:
    """Tick the selection box of the table's row ``index`` (the grid is a canvas: clicked by position)."""
    from selenium.webdriver.common.action_chains import ActionChains

    def clicked() -> bool:  # a rerun (a running batch's, every 2 s) may draw the grid anew under us: found again
        grid = browser.find_element("css selector", GRID)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
        size = grid.size  # a stale grid fails here or at the move, before the click: never two clicks
        ActionChains(browser).move_to_element_with_offset(
            grid, 16 - size["width"] // 2, ROW_HEIGHT * (index + 1) + ROW_HEIGHT // 2 - size["height"] // 2).click().perform()
        return True

    wait_for(browser, clicked, 30, f"a click on the table's row {index}")


def click_header(browser, column: int) -> None:
    """Click a column's header (the grid sorts by it, ascending then descending)."""
    from selenium.webdriver.common.action_chains import ActionChains

    def clicked() -> bool:
        # a rerun may be drawing the grid again: no header for an instant (CI failed on it), or the one
        # found gone stale by the time it is measured; each try finds them again
        header = browser.find_elements("css selector", f"{GRID} table thead th")[column]
        grid = browser.find_element("css selector", GRID)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
        offset = browser.execute_script("const g = arguments[0].getBoundingClientRect(), h = arguments[1].getBoundingClientRect();"
                                        "return h.width ? [h.x + h.width / 2 - g.x, 0] : null;", grid, header)
        x = offset[0] if offset else 100  # the accessible header may have no layout: the first column starts ~40 px in
        size = grid.size  # a stale grid fails here or at the move, before the click: never two clicks
        ActionChains(browser).move_to_element_with_offset(grid, int(x - size["width"] / 2),
                                                          ROW_HEIGHT // 2 - size["height"] // 2).click().perform()
        return True

    wait_for(browser, clicked, 30, f"a click on the table's header {column}")


def filter_by(browser, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    def typed() -> bool:  # a box drawn anew since it was found (stale) takes no key: found again, all typed again
        box = browser.find_element("css selector", 'input[aria-label="Filter by name"]')
        box.send_keys(Keys.CONTROL, "a", Keys.NULL)  # a modifier is held until NULL
        box.send_keys(Keys.DELETE, text, Keys.ENTER)
        return True

    wait_for(browser, typed, 30, f"the filter box to take {text!r}")


def screenshot(browser, name: str, width: int, height: int) -> None:
    """The viewport at exactly width x height (not the window: headless Chromium's includes no chrome,
    but the emulated size is the one a reader of the screenshot expects)."""
    folder = Path(os.environ.get("FLEET_SCREENSHOTS") or browser.shots)
    folder.mkdir(parents=True, exist_ok=True)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    wait_for(browser, lambda: idle(browser) and browser.execute_script("return window.innerWidth") == width, 30,
             "the page at its new size")
    browser.save_screenshot(str(folder / f"{name}-{width}x{height}.png"))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_fleet_worst_first_filter_open_a_row_in_review_and_reload(served, browser, batch, tmp_path):
    url, cache = served
    browser.shots = tmp_path / "shots"
    browser.get(f"{url}/fleet?dir={batch}")
    assert wait_for(browser, lambda: videos(browser), 60, "the fleet table") == WORST_FIRST
    assert metric(browser, "Flagged frames") == "7" and metric(browser, "Flagged frames reviewed") == "0 / 7"
    # the grid's accessible table is rebuilt as the grid is drawn again: it may list no row for an instant
    broken = wait_for(browser, lambda: next((row for row in grid_rows(browser) if row[0] == "broken.mp4"), None), 30,
                      "broken.mp4's row")
    assert broken[1] == "failed" and broken[-1].startswith("Not a video FFmpeg can read")  # the row names the video
    failed = body(browser)
    assert "1 video failed" in failed and "broken.mp4 is not a video FFmpeg can read" in failed
    assert "broken.mp4: broken.mp4" not in failed  # the name said once
    screenshot(browser, "fleet", 1280, 720)
    screenshot(browser, "fleet", 1600, 1000)

    filter_by(browser, "WALK_")
    wait_for(browser, lambda: videos(browser) == ["walk_c.mp4", "walk_a.mp4", "walk_b.mp4"], 30, "the filter")
    filter_by(browser, "_a")
    wait_for(browser, lambda: videos(browser) == ["walk_a.mp4"], 30, "a narrower filter")
    filter_by(browser, "")
    wait_for(browser, lambda: videos(browser) == WORST_FIRST, 30, "every row back")

    click_header(browser, 0)
    click_header(browser, 0)  # by name, descending: sorted in the browser, the script not run
    wait_for(browser, lambda: videos(browser) == ["walk_c.mp4", "walk_b.mp4", "walk_a.mp4", "broken.mp4"], 30,
             "the table sorted by name")
    chooser = lambda: browser.execute_script(  # noqa: E731  the Video chooser's value (walk_a.mp4 since the filter)
        "return [...document.querySelectorAll(\"[data-testid='stSelectbox'] input\")].map((i) => i.value)")
    click_row(browser, 3)  # broken.mp4: the openers below name another video, which the tick seemed to choose
    wait_for(browser, lambda: "broken.mp4 failed, so it is not in the export and cannot be opened" in body(browser), 30,
             "a word on the ticked failed row")
    filter_by(browser, "zzz")  # a filter's new table starts unticked: the word on a tick it no longer shows goes
    # cleared as soon as the caption shows, while the run may still be drawing: a run stopped so keeps the first
    # table's tick in the session, which a table under that table's key took back (pages/fleet.py, ticked_video)
    wait_for(browser, lambda: "0 of 4 videos match" in body(browser), 30, "a filter that matches nothing")
    filter_by(browser, "")
    wait_for(browser, lambda: videos(browser) and "cannot be opened" not in body(browser), 30, "no word on an untick")
    click_header(browser, 0)
    click_header(browser, 0)  # by name, descending again: the new table is sorted as sent
    wait_for(browser, lambda: videos(browser) == ["walk_c.mp4", "walk_b.mp4", "walk_a.mp4", "broken.mp4"], 30,
             "the table sorted by name again")
    click_row(browser, 0)  # walk_c.mp4: the chooser moves with the tick, so both openers name one video
    wait_for(browser, lambda: page_link(browser, "Open walk_c.mp4 in Review") and chooser() == ["walk_c.mp4"], 30,
             f"the chooser moved to the ticked row ({chooser()})")
    click_row(browser, 2)  # walk_a.mp4 where it is now, not the table's third row as sent (broken.mp4)
    wait_for(browser, lambda: page_link(browser, "Open walk_a.mp4 in Review"), 30, "the picked row's link")
    # Streamlit's code for components is in the page already: Review's viewer mounts without fetching it
    wait_for(browser, lambda: components_code_loaded(browser), 10, "the component code, before the link is pressed")
    browser.execute_script(WATCH_FIRST_FRAME)
    click_when(browser, lambda: page_link(browser, "Open walk_a.mp4 in Review"), 30, "the picked row's link")
    wait_for(browser, lambda: metric_value(browser, "Imputed boxes"), 60, "the review page")
    # the frame first, the panels beside it once the viewer says it is on screen (pages/review.py, workspace)
    assert browser.execute_script("return window.panelsAtFirstFrame") is False
    assert browser.find_element("tag name", "h1").text == "Review"
    wait_for(browser, lambda: "relpath=walk_a.mp4" in browser.current_url, 30, "the review in the URL")
    # which camera this is, of many: over the frame and in the tab
    assert browser.find_element("css selector", ".fv-name").text == "walk_a.mp4"
    wait_for(browser, lambda: browser.title.startswith("walk_a.mp4"), 30, f"the video in the tab's title ({browser.title})")
    assert metric(browser, "Flagged frames") == "3"  # the batch's flags, at its thresholds
    wait_for(browser, lambda: browser.find_element("css selector", 'input[aria-label="IoU tracking"]')
             .get_attribute("aria-valuetext") == "0.50", 30, "the batch's tracking threshold on its slider")
    screenshot(browser, "review-from-fleet", 1280, 720)

    browser.refresh()  # F5: the batch's export is read again, the detection cache is still empty
    wait_for(browser, lambda: metric_value(browser, "Imputed boxes"), 60, "the review page after a reload")
    assert metric(browser, "Flagged frames") == "3" and "not cached" not in body(browser)
    kept = list(cache.rglob("*.npz"))
    assert all(PREDICTIONS_CACHE in path.parts for path in kept), f"nothing was detected: {kept}"
    assert kept, "the batch's predictions, kept for the next server (core.fleet.read_predictions)"

    wait_for(browser, lambda: shown_frame(browser) == 0, 30, "the first frame in the viewer")
    entries = browser.execute_script("return history.length")
    for step in (1, 2):  # each settled frame goes in the URL, in place: Back leaves Review, not a frame
        press(browser, "\ue014")  # the right arrow
        wait_for(browser, lambda: f"frame={step}&" in browser.current_url, 30, f"frame {step} in the URL")
    assert browser.execute_script("return history.length") == entries
    press(browser, "k")  # the first flagged frame, then a verdict on it
    wait_for(browser, lambda: shown_frame(browser) not in (None, 2), 30, "a seek to the first flagged frame")
    # The verdict reruns Review's workspace fragment. A page switch while that rerun still sends its
    # elements blanks the page in Streamlit 1.67 ("Bad delta path index 4 (should be between [0, 0])" in
    # the console, "Couldn't find fragment" in the server's log: seen in CI), so the app holds a click
    # on a page link until the run is over (ui/mount.js). Here the click lands while the rerun runs.
    assert browser.execute_async_script(VERDICT_THEN_LEAVE, "/fleet") == 1, "the click was not held"  # no ?dir=
    wait_for(browser, lambda: videos(browser) == WORST_FIRST, 60, "the same batch back on the Fleet page")
    assert wait_for(browser, lambda: next((row for row in grid_rows(browser) if row[0] == "walk_a.mp4"), None), 30,
                    "walk_a.mp4's row")[5] == "1"
    assert metric(browser, "Flagged frames reviewed") == "1 / 7"
    # the run that draws the table writes the folder into the URL too, which the browser may show a moment later
    wait_for(browser, lambda: f"dir={quote(str(batch), safe='')}" in browser.current_url, 30, "the folder in the URL")
    browser.back()  # one press: the review, at the frame it was left on
    wait_for(browser, lambda: "relpath=walk_a.mp4" in browser.current_url and metric_value(browser, "Imputed boxes"), 60,
             "Review again after one Back")


def test_a_running_batch_grows_in_place_and_shows_its_summary_when_it_ends(served, browser, batch, tmp_path):
    """A batch holding the folder's lock writes its done markers one by one: the open page lists each
    video as it is done without a reload, and the full summary (the failed video too) once it ends."""
    url, _ = served
    browser.shots = tmp_path / "shots"
    running = Path(shutil.copytree(batch, tmp_path / "running"))
    markers = sorted((running / ".batch" / "done").glob("*.json"))
    kept = {marker: marker.read_bytes() for marker in markers}
    summary = (running / "summary.csv").read_bytes()
    (running / "summary.csv").unlink()
    for marker in markers:
        marker.unlink()
    with exclusive_lock(running, "a test batch"):
        browser.get(f"{url}/fleet?dir={running}")
        wait_for(browser, lambda: "A batch is writing this folder: 0 of 4 videos so far" in body(browser), 60, "the running batch")
        browser.execute_script("window.sameDocument = true")  # gone after any reload
        ticked, ticked_at, moved = None, -1, False
        for count, marker in enumerate(markers, 1):
            marker.write_bytes(kept[marker])
            listed = wait_for(browser, lambda: (shown := videos(browser)) and len(shown) == count and all(shown) and shown,
                              30, f"{count} videos done")
            if ticked is not None:  # rows move as videos are done (worst first): the pick stays with its video
                moved |= listed.index(ticked) != ticked_at
                wait_for(browser, lambda: page_link(browser, f"Open {ticked} in Review"), 30, f"{ticked} still picked")
                # one look at the whole page (the fragment redraws it every 2 s: links read one by one could go stale)
                shown_links = links(browser)
                assert not [video for video in listed if video != ticked and any(f"Open {video} in Review" in text
                                                                                 for text in shown_links)], shown_links
            openable = [video for video in listed if video != "broken.mp4"]
            if openable:  # tick the lowest row that opens: a video done later may sort in above it
                ticked, ticked_at = openable[-1], listed.index(openable[-1])
                click_row(browser, ticked_at)
                wait_for(browser, lambda: page_link(browser, f"Open {ticked} in Review"), 30, f"{ticked} picked")
        assert moved, "no ticked row moved: this batch did not test the tick"
        # videos() is None while the fragment's run (every 2 s) is on: wait for a table between two runs
        assert sorted(wait_for(browser, lambda: videos(browser), 30, "the table")) == ["walk_a.mp4", "walk_b.mp4", "walk_c.mp4"]
        screenshot(browser, "fleet-running", 1280, 720)
        (running / "summary.csv").write_bytes(summary)
    wait_for(browser, lambda: videos(browser) == WORST_FIRST and "A batch is writing" not in body(browser), 30,
             "the summary once the batch ends")
    assert browser.execute_script("return window.sameDocument") is True

    with exclusive_lock(running, "the same batch, resumed"):  # the page notices it start, still without a reload
        markers[0].write_bytes(kept[markers[0]])  # a video done again: newer than the summary
        wait_for(browser, lambda: "A batch is writing this folder: 4 of 4 videos so far" in body(browser), 30,
                 "the resumed batch")
    wait_for(browser, lambda: "The last batch stopped before it finished; the 1 video it did" in body(browser), 30,
             "the resumed batch, stopped before its summary")
    assert browser.execute_script("return window.sameDocument") is True


def test_a_hostile_name_in_a_link_is_shown_as_typed_not_as_markdown(served, browser):
    """A link that names a video called like a Markdown link, an image on another host and a
    colour: the page says no such file, with the name as typed; nothing is linked or fetched."""
    url, _ = served
    name = "/tmp/x [help](https://e.invalid) ![i](https://e.invalid/b.png) :red[x] **b** _www.e.invalid a@e.invalid.mp4"
    browser.get(f"{url}/review?video={quote(name)}")
    wait_for(browser, lambda: "No such file" in body(browser) and idle(browser), 60, "the page's one line")
    alert = browser.find_element("css selector", "[data-testid='stMain'] [data-testid='stAlert']")
    assert alert.text.replace("\u2060", "") == f"No such file: {name}".replace("//", "/")  # a path: // reads as /
    assert not alert.find_elements("css selector", "a, img, strong, [style*='color']")
