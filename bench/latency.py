"""How fast the review page keeps up with the hand, measured in headless Chromium on the bundled sample.

    python bench/latency.py [--app-dir DIR] [--option KEY=VALUE] [--steps 40] [--hold-s 3] [--threshold-steps 12]
                            [--idle-s 10]

Starts ``streamlit run app.py -- --sample`` (from DIR, default this checkout, so an older checkout can
be measured the same way), runs detection (cached on disk after the first time, so that run can take
minutes), opens the review page as a user would and prints:

* frame step: Right arrow pressed -> the next frame's image and its number on screen (p50 / p95);
* Next button: a click -> the same;
* ten quick Right presses (10 per second): how long after the last press its frame is on screen;
* held Right arrow: key repeat at 30 Hz for a few seconds: frames shown per second while held, and
  how far the video kept moving after the key was let go (a queue shows up there);
* threshold step: IoU tracking slider +0.01 (arrow key) -> flags, counts and imputed boxes redrawn;
* idle server CPU over a few seconds with the review page open, from /proc.

Times are taken in the page (``performance.now()``): from the keydown event to the first animation
frame that shows the result, so the transport of the key press itself is not counted.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"ArrowRight": 39, "ArrowLeft": 37}

# Records, once per animation frame, what the page shows: the frame number under the viewer's label
# and a token that changes whenever the frame image is redrawn (the viewer's data-frame, or the src
# of the image in the older page), plus the viewer's threshold settings and flag count.
RECORDER = """
if (!window.__bench) {
  window.__bench = {events: [], keys: []};
  window.addEventListener("keydown", (e) => __bench.keys.push(performance.now()), true);
  window.addEventListener("click", (e) => __bench.keys.push(performance.now()), true);
  const metric = (label) => {
    const box = [...document.querySelectorAll('[data-testid="stMetric"]')].find((m) => m.innerText.startsWith(label));
    return box ? box.innerText.split("\\n").filter((line) => line.trim())[1] : null;
  };
  const probe = () => {
    const viewer = document.querySelector(".fv-root");
    if (viewer) {
      const label = viewer.querySelector(".fv-label").textContent.match(/Frame ([\\d,]+)/);
      return {frame: label ? Number(label[1].replace(/,/g, "")) : null, token: viewer.dataset.frame, ready: true,
              view: viewer.dataset.view, flagged: viewer.dataset.flagged, metric: metric("Flagged frames")};
    }
    const heading = [...document.querySelectorAll("h3")].map((h) => h.textContent.match(/Frame ([\\d,]+) \\//)).find(Boolean);
    const image = document.querySelector('[data-testid="stImage"] img');
    const app = document.querySelector("[data-test-script-state]");
    return {frame: heading ? Number(heading[1].replace(/,/g, "")) : null, token: image && image.src,
            ready: !!image && image.complete, view: null, flagged: null, metric: metric("Flagged frames"),
            script: app && app.getAttribute("data-test-script-state")};
  };
  let last = "";
  const loop = () => {
    const state = probe(), key = JSON.stringify(state);
    if (key !== last) { __bench.events.push({t: performance.now(), ...state}); last = key; }
    if (!__bench.stopped) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app_dir: Path, port: int, data_dir: Path, log: Path, options: list[str]) -> subprocess.Popen:
    env = dict(os.environ, FLICKER_DATA_DIR=str(data_dir))
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                *(f"--{option}" for option in options), "--", "--sample"],
                               cwd=app_dir, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not start; see {log}")


def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1500,1000",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def wait_for(browser, condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # the page re-renders under us
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}; the page says: {browser.find_element('tag name', 'body').text[:600]}")


class Keyboard:
    """Trusted key events, as a keyboard sends them: straight to the page over the DevTools socket,
    without waiting for the page to take them (chromedriver's round trip of ~40 ms here would cap a
    held key's repeat rate, and waiting would hide a queue that real key repeat builds up)."""

    def __init__(self, browser):
        import json
        from urllib.request import urlopen

        import websocket

        address = browser.capabilities["goog:chromeOptions"]["debuggerAddress"]
        targets = json.load(urlopen(f"http://{address}/json"))
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
        self.sent = 0

    def send(self, kind: str, name: str, repeat: bool = False) -> None:
        import json

        self.sent += 1
        self.socket.send(json.dumps({"id": self.sent, "method": "Input.dispatchKeyEvent", "params": {
            "type": kind, "key": name, "code": name, "windowsVirtualKeyCode": KEYS[name], "autoRepeat": repeat}}))

    def press(self, name: str) -> None:
        self.send("rawKeyDown", name)
        self.send("keyUp", name)
        self.drain()

    def drain(self) -> None:
        """Read the acknowledgements of everything sent so far."""
        import json

        while self.sent:
            if "id" in json.loads(self.socket.recv()):
                self.sent -= 1


def events_since(browser, index: int) -> list[dict]:
    return browser.execute_script("return __bench.events.slice(arguments[0])", index)


def shown(browser) -> dict:
    return browser.execute_script("return __bench.events[__bench.events.length - 1]")


def wait_shown(browser, start: int, done, timeout: float = 10.0, required: bool = True) -> dict | None:
    """The first recorded state after event ``start`` for which ``done(state)`` holds (each state
    is looked at once, in order); None after ``timeout`` unless ``required``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for event in events_since(browser, start):
            start += 1
            if done(event):
                return event
        time.sleep(0.01)
    if required:
        raise SystemExit(f"timed out: last state {shown(browser)}")
    return None


def last_input(browser) -> float:
    return browser.execute_script("return __bench.keys[__bench.keys.length - 1]")


def blur(browser) -> None:
    browser.execute_script("document.activeElement && document.activeElement.blur()")


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"p50 {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, max {values[-1]:.0f} ms (n={len(values)})"


def frame_steps(browser, steps: int, press) -> list[float]:
    """One step at a time, at a reviewer's pace: press, wait until the next frame is on screen, look."""
    times = []
    for _ in range(steps):
        before = shown(browser)
        start = len(browser.execute_script("return __bench.events"))
        press()
        target = before["frame"] + 1
        event = wait_shown(browser, start, lambda e: e["frame"] == target and e["ready"] and e["token"] != before["token"])
        times.append(event["t"] - last_input(browser))
        time.sleep(0.35)
    return times


def held_key(browser, keyboard: Keyboard, seconds: float, rate_hz: float = 30.0) -> tuple[float, float, int, float]:
    """Hold Right with the keyboard's auto-repeat: the key rate the page received, frames shown per
    second while held, and how many frames (over how long) the video still moved after release."""
    blur(browser)
    start = len(browser.execute_script("return __bench.events"))
    presses = len(browser.execute_script("return __bench.keys"))
    first = shown(browser)["frame"]
    began = time.perf_counter()
    for count in range(int(seconds * rate_hz)):
        keyboard.send("rawKeyDown", "ArrowRight", repeat=count > 0)
        time.sleep(max(0.0, began + (count + 1) / rate_hz - time.perf_counter()))
    keyboard.send("keyUp", "ArrowRight")
    keyboard.drain()
    time.sleep(4.0)  # long enough for a queue to show itself
    keys = browser.execute_script("return __bench.keys")[presses:]
    pressed, released = keys[0], keys[-1]
    events = [e for e in events_since(browser, start) if e["ready"] and e["frame"] is not None]
    at_release = max((e["frame"] for e in events if e["t"] <= released), default=first)
    after = [e for e in events if e["t"] > released and e["frame"] != at_release]
    held_s = (released - pressed) / 1000
    return (len(keys) - 1) / held_s, (at_release - first) / held_s, (after[-1]["frame"] - at_release if after else 0), \
        (after[-1]["t"] - released if after else 0.0)


def quick_presses(browser, keyboard: Keyboard, count: int = 10, rate_hz: float = 10.0) -> str:
    """``count`` separate Right presses at ``rate_hz``: how long after the last one the last frame
    is on screen (a queue of reruns shows up here), or how far the page got in 30 s."""
    blur(browser)
    before, start = shown(browser), len(browser.execute_script("return __bench.events"))
    began = time.perf_counter()
    for number in range(count):
        keyboard.press("ArrowRight")
        time.sleep(max(0.0, began + (number + 1) / rate_hz - time.perf_counter()))
    target = before["frame"] + count
    event = wait_shown(browser, start, lambda e: e["frame"] == target and e["ready"] and e["token"] != before["token"],
                       30, required=False)
    if event is None:
        return f"only {shown(browser)['frame'] - before['frame']} of {count} steps made it to the screen (30 s later)"
    return f"the last frame on screen {event['t'] - last_input(browser):.0f} ms after the last press"


def redrawn(before: dict):
    """When a threshold step is on screen: the viewer drew the new settings and the flagged-frames
    count beside it agrees with its flags (the older page has no viewer: when its rerun finished)."""
    started = False

    def done(event: dict) -> bool:
        nonlocal started
        if "script" not in event:
            return event["view"] != before["view"] and event["ready"] and event["metric"] == event["flagged"]
        started = started or event["script"] == "running"
        return started and event["script"] != "running"
    return done


def threshold_steps(browser, keyboard: Keyboard, steps: int) -> list[float]:
    """IoU tracking +0.01 by arrow key on the focused slider, until flags, counts and imputed boxes
    are redrawn (see ``redrawn``)."""
    times = []
    for _ in range(steps):
        slider = browser.find_element("css selector", 'input[type="range"][aria-label="IoU tracking"]')
        browser.execute_script("arguments[0].focus()", slider)
        before, start = shown(browser), len(browser.execute_script("return __bench.events"))
        keyboard.press("ArrowRight")
        event = wait_shown(browser, start, redrawn(before))
        times.append(event["t"] - last_input(browser))
        time.sleep(0.6)
    blur(browser)
    return times


def cpu_percent(pid: int, seconds: float) -> float:
    """CPU time of the server process (all threads) over ``seconds`` of wall time, from /proc."""
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    before, start = ticks(), time.perf_counter()
    time.sleep(seconds)
    return 100 * (ticks() - before) / os.sysconf("SC_CLK_TCK") / (time.perf_counter() - start)


def open_review(browser, url: str) -> None:
    browser.get(url)
    wait_for(browser, lambda: "795" in browser.find_element("tag name", "body").text, 90, "the sample to load")
    run = wait_for(browser, lambda: next((b for b in browser.find_elements("tag name", "button")
                                          if "Run detection" in b.text), None), 60, "the run button")
    if not browser.find_elements("partial link text", "Review flickering frames"):
        print("running detection on the sample (cached afterwards)...", flush=True)
        run.click()
    # find and click together, retried: the page re-renders the link while the run finishes (stale element)
    wait_for(browser, lambda: browser.find_element("partial link text", "Review flickering frames").click() or True, 900,
             "detection")
    wait_for(browser, lambda: browser.execute_script(RECORDER + "return __bench.events.some((e) => e.ready && e.frame !== null)"),
             60, "the review page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="checkout to serve (default: this one)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--hold-s", type=float, default=3.0)
    parser.add_argument("--threshold-steps", type=int, default=12)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a Streamlit option for the server, e.g. server.fileWatcherType=auto (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(args.app_dir, port, Path(tmp) / "data", Path(tmp) / "server.log", args.option)
        browser = start_browser()
        try:
            open_review(browser, f"http://127.0.0.1:{port}/")
            time.sleep(3)  # the seek proxy builds in the background on first view
            blur(browser)
            keyboard = Keyboard(browser)
            steps = frame_steps(browser, args.steps, lambda: keyboard.press("ArrowRight"))
            print(f"frame step (Right arrow): {percentiles(steps)}", flush=True)
            next_button = browser.find_element(
                "xpath", "//button[@data-action='next'] | //button[.//p[normalize-space()='Next']]")
            clicks = frame_steps(browser, max(args.steps // 4, 5), next_button.click)
            print(f"Next button: {percentiles(clicks)}", flush=True)
            print(f"ten quick Right presses (10 per second): {quick_presses(browser, keyboard)}", flush=True)
            time.sleep(1)
            keys, rate, after, drain = held_key(browser, keyboard, args.hold_s)
            print(f"held Right arrow ({args.hold_s:g} s, key repeat delivered at {keys:.0f} Hz): {rate:.1f} frames/s "
                  f"shown; after release {after} more frames over {drain:.0f} ms", flush=True)
            thresholds = threshold_steps(browser, keyboard, args.threshold_steps)
            print(f"threshold step (IoU tracking +0.01): {percentiles(thresholds)}", flush=True)
            browser.execute_script("__bench.stopped = true")
            time.sleep(2)
            print(f"idle server CPU over {args.idle_s:g} s (review page open): "
                  f"{cpu_percent(server.pid, args.idle_s):.1f}%", flush=True)
        finally:
            browser.quit()
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
