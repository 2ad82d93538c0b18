"""End to end in a real browser: `streamlit run app.py` driven by headless Chromium (Selenium)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"),
]


@pytest.fixture
def server(tmp_path, shared_cache):
    port = free_port()
    env = dict(os.environ, FLICKER_CACHE_DIR=str(shared_cache), FLICKER_DATA_DIR=str(tmp_path / "data"))
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--", "--sample"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1500,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(browser, condition, timeout=240, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # the page re-renders under us; try again
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; page says: {browser.find_element('tag name', 'body').text[:800]}")


def button(browser, text):
    return next((b for b in browser.find_elements("tag name", "button") if text in b.text and b.is_displayed()), None)


def metric_value(browser, label):
    for element in browser.find_elements("css selector", '[data-testid="stMetric"]'):
        if element.text.startswith(label):
            return element.text.split("\n")[1]
    return None


def test_sample_detect_seek_retune_in_chromium(server, browser, tmp_path):
    browser.get(server)
    wait_for(browser, lambda: "795" in browser.find_element("tag name", "body").text, 60, "the sample to load")
    wait_for(browser, lambda: button(browser, "Run detection"), 60, "the run button").click()
    link = wait_for(browser, lambda: browser.find_element("partial link text", "Review flickering frames"), 400,
                    "detection to finish")
    link.click()
    wait_for(browser, lambda: metric_value(browser, "Flagged frames"), 60, "the review page")
    before = int(metric_value(browser, "Flagged frames"))
    assert before > 0

    wait_for(browser, lambda: button(browser, "Flagged"), 30, "navigation buttons")
    next_flagged = [b for b in browser.find_elements("tag name", "button") if "Flagged" in b.text][1]
    next_flagged.click()
    def shown_frame():
        match = re.search(r"Frame (\d+) / 794", browser.find_element("tag name", "body").text)
        return int(match.group(1)) if match else 0

    assert wait_for(browser, shown_frame, 30, "a seek to the first flagged frame") > 0
    wait_for(browser, lambda: "Flagged:" in browser.find_element("tag name", "body").text, 30, "the flagged notice")

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    slider = browser.find_element("css selector", 'input[type="range"][aria-label="IoU tracking"]')
    browser.execute_script("arguments[0].focus();", slider)
    ActionChains(browser).send_keys(Keys.LEFT * 30).perform()  # lower the tracking threshold from 0.80 to 0.50
    wait_for(browser, lambda: browser.find_element("css selector", 'input[type="range"][aria-label="IoU tracking"]')
             .get_attribute("aria-valuetext") == "0.50", 30, "the slider to reach 0.50")
    wait_for(browser, lambda: int(metric_value(browser, "Flagged frames")) != before, 30, "the flagged count to change")
    time.sleep(2)  # let the reruns queued by the key presses finish before clicking on the page
    after = int(metric_value(browser, "Flagged frames"))
    assert after > before  # a looser tracking threshold tracks more objects, so more frames are flagged

    def click_timeline_quarter() -> bool:  # re-found on each try: a rerun may replace the plot
        plot_area = browser.find_element("css selector", ".js-plotly-plot .nsewdrag")
        browser.execute_script("arguments[0].scrollIntoView();", plot_area)
        width = plot_area.size["width"]
        ActionChains(browser).move_to_element_with_offset(plot_area, int(width * 0.25) - width // 2, 0).click().perform()
        return True

    wait_for(browser, click_timeline_quarter, 30, "the timeline to take a click")
    seeked = wait_for(browser, lambda: 150 < shown_frame() < 250 and shown_frame(), 30, "a timeline click to seek")
    assert 150 < seeked < 250  # a quarter into the 795-frame timeline

    button(browser, "Run local selection").click()
    wait_for(browser, lambda: "frames selected" in browser.find_element("tag name", "body").text, 120, "the local selection")

    def click_frame_300_on_the_map() -> bool:
        embedding_plot = browser.find_elements("css selector", ".js-plotly-plot")[1]
        browser.execute_script("arguments[0].scrollIntoView();", embedding_plot)
        x, y = browser.execute_script(
            "const gd = arguments[0], t = gd._fullData[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
            "return [xa.l2p(t.x[300]) + xa._offset, ya.l2p(t.y[300]) + ya._offset];", embedding_plot)
        size = embedding_plot.size
        ActionChains(browser).move_to_element_with_offset(embedding_plot, int(x - size["width"] / 2),
                                                          int(y - size["height"] / 2)).click().perform()
        return True

    wait_for(browser, click_frame_300_on_the_map, 30, "the embedding map to take a click")
    assert wait_for(browser, lambda: shown_frame() == 300, 30, "a click on the embedding map to seek to frame 300")
    time.sleep(1.5)
    shot = Path(os.environ.get("FLICKER_SCREENSHOT", tmp_path / "review.png"))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000
