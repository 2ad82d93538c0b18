"""How fast the Verdicts page takes a verdict: from the key (or click) to the next queued frame's
image on screen, measured in headless Chromium on the bundled sample at two window sizes.

    python bench/verdict_latency.py [--app-dir DIR] [--verdicts 40] [--clicks 10] [--sizes 1280x720 1600x1000]
                                    [--shots DIR]

Starts ``streamlit run app.py -- --sample`` with an empty data folder, runs detection through the
load page (cached on disk after the first time; see bench/latency.py), opens Verdicts & thresholds
through the page's navigation, and for each window size prints p50 / p95 of:

* key: M, F or U pressed at a reviewer's pace (the next verdict once the last frame is on screen
  and a moment passed), from the keydown event to the first animation frame that shows the next
  queued frame's image;
* click: a click on "False alarm", from mousedown to the same.

Then it checks what it timed: every verdict given is in the store, with the annotator, and Undo (Z)
takes the latest one back. Times are the page's own (``performance.now()``). With ``--shots`` it
saves a screenshot of each size once the page has updated its figures. The machine's load average
is printed before and after.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import latency  # noqa: E402  (the server, browser, trusted keys and page-opening of the review bench)
from selenium.webdriver.common.keys import Keys  # noqa: E402

VERDICT_KEYS = "fmfufmff"  # mostly false alarms, as on the sample; the order does not change the timing

# Records, once per animation frame, the frame whose image the queue has on screen and its progress.
RECORDER = """
if (!window.__vq) {
  window.__vq = {events: [], inputs: []};
  for (const type of ["keydown", "mousedown"]) {
    window.addEventListener(type, () => __vq.inputs.push(performance.now()), true);
  }
  let last = "";
  const loop = () => {
    const root = document.querySelector(".vq-root");
    const state = root ? {frame: root.dataset.frame ?? null, reviewed: root.dataset.reviewed ?? null} : null;
    const key = JSON.stringify(state);
    if (state && key !== last) { __vq.events.push({t: performance.now(), ...state}); last = key; }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}
"""


DEFAULT_PLAN = 250  # frames: its first phase (half) holds every verdict the bench gives, so no rerun comes between


def recorded(browser) -> list[dict]:
    return browser.execute_script("return __vq.events")


def timed_verdict(browser, act) -> float:
    """``act`` (a key or a click); the ms from its input to the first animation frame showing another
    queued frame's image."""
    before, start = recorded(browser)[-1], len(recorded(browser))
    act()
    deadline = time.time() + 10
    while time.time() < deadline:
        for event in recorded(browser)[start:]:
            if event["frame"] != before["frame"]:
                return event["t"] - browser.execute_script("return __vq.inputs[__vq.inputs.length - 1]")
        time.sleep(0.01)
    raise SystemExit(f"no next frame 10 s after a verdict; from {before}: {recorded(browser)[start - 1:]}")


def open_queue(browser, url: str, annotator: str, plan: int, video: Path | None = None) -> None:
    """The Verdicts page of the sample (or of ``video``: see latency.open_review), through the page's
    own link, with ``annotator`` and a plan of ``plan`` frames typed into the sidebar."""
    latency.open_review(browser, url, video)
    latency.wait_for(browser, lambda: browser.find_element("partial link text", "Verdicts & thresholds").click() or True,
                     30, "the page's link")
    latency.wait_for(browser, lambda: browser.execute_script(
        RECORDER + "return !!document.querySelector('.vq-root[data-frame]')"), 60, "the queue's first frame")
    for label, value in (("Annotator", annotator), ("Frames in the plan", str(plan))):
        field = latency.wait_for(browser, lambda: browser.find_element("css selector", f'input[aria-label="{label}"]'),
                                 30, label)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value + Keys.ENTER)
        latency.wait_for(browser, lambda: browser.execute_script(
            "return new URLSearchParams(location.search).get(arguments[0]) === arguments[1]",
            "annotator" if label == "Annotator" else "plan", value), 30, f"{label} in the page's link")
    latency.wait_for(browser, lambda: browser.execute_script(
        "return document.querySelector('.vq-progress-text').textContent.includes(' / ' + arguments[0])", plan),
        30, "the new plan in the queue")


def set_viewport(browser, width: int, height: int) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(1)


def stored(data_dir: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(data_dir / "verdicts.sqlite") as db:
        return db.execute("SELECT frame, verdict, annotator FROM verdicts ORDER BY updated").fetchall()


def button_centre(browser, verdict: str) -> tuple[float, float]:
    return tuple(browser.execute_script(
        "const r = document.querySelector(`.vq-root button[data-verdict='${arguments[0]}']`).getBoundingClientRect();"
        "return [r.x + r.width / 2, r.y + r.height / 2];", verdict))


def measure(browser, keyboard, verdicts: int, clicks: int) -> tuple[list[float], list[float]]:
    latency.blur(browser)
    keys = []
    for count in range(verdicts):
        keys.append(timed_verdict(browser, lambda: keyboard.press(VERDICT_KEYS[count % len(VERDICT_KEYS)])))
        time.sleep(0.3)
    taps = []
    for _ in range(clicks):
        taps.append(timed_verdict(browser, lambda: keyboard.click(*button_centre(browser, "false_alarm"))))
        time.sleep(0.3)
    return keys, taps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="checkout to serve (default: this one)")
    parser.add_argument("--verdicts", type=int, default=40, help="verdicts by key per window size")
    parser.add_argument("--clicks", type=int, default=10, help="verdicts by click per window size")
    parser.add_argument("--plan", type=int, default=DEFAULT_PLAN,
                        help="frames in the plan (its first phase, half of them, holds every verdict given: no rerun between)")
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1600x1000"])
    parser.add_argument("--shots", type=Path, help="save a screenshot of each size here")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", latency.free_port()
        server = latency.start_server(args.app_dir, port, data_dir, Path(tmp) / "server.log", [])
        browser = latency.start_browser()
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        try:
            open_queue(browser, f"http://127.0.0.1:{port}/", "bench", args.plan)
            keyboard = latency.Keyboard(browser)
            given = 0
            for size in args.sizes:
                width, height = map(int, size.split("x"))
                set_viewport(browser, width, height)
                keys, taps = measure(browser, keyboard, args.verdicts, args.clicks)
                given += len(keys) + len(taps)
                print(f"{size}: key -> next frame {latency.percentiles(keys)}; "
                      f"click -> next frame {latency.percentiles(taps)}", flush=True)
                if args.shots:
                    browser.find_element("css selector", '.vq-root button[data-action="refresh"]').click()
                    time.sleep(4)  # the rerun that brings the figures up to date
                    args.shots.mkdir(parents=True, exist_ok=True)
                    browser.save_screenshot(str(args.shots / f"verdicts-{size}.png"))
            time.sleep(1)
            rows = stored(data_dir)
            assert len(rows) == given and {annotator for *_, annotator in rows} == {"bench"}, rows[-3:]
            latest = rows[-1][0]
            latency.blur(browser)
            keyboard.press("z")
            deadline = time.time() + 10
            while time.time() < deadline and len(stored(data_dir)) == given:
                time.sleep(0.05)
            assert latest not in [frame for frame, *_ in stored(data_dir)], "Z took the latest verdict back"
            print(f"checked: {given} verdicts stored with their annotator; Z took the latest back", flush=True)
        finally:
            browser.quit()
            server.terminate()
            server.wait(timeout=20)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
