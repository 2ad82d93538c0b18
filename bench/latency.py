"""How fast the review page keeps up with the hand, measured in headless Chromium on the bundled sample
or another video.

    python bench/latency.py [--app-dir DIR] [--video PATH] [--option KEY=VALUE] [--steps 40] [--hold-s 3]
                            [--threshold-steps 12] [--seek-rounds 8] [--map-clicks 8] [--verdict-links 6]
                            [--batch DIR] [--fleet-links 6] [--links-only] [--idle-s 10] [--browser-cache]
                            [--queue-verdicts 20] [--server-log PATH]

Starts ``streamlit run app.py -- --sample`` (from DIR, default this checkout, so an older checkout can
be measured the same way), runs detection (cached on disk after the first time, so that run can take
minutes), opens the review page as a user would (or, with ``--video``, through a link: detect it
first with ``python -m core run PATH --out DIR``, or make the 10-minute 1080p one with
``python bench/long_video.py``), waits for the seek proxy and prints:

* frame step: Right arrow pressed -> the next frame's image and its number on screen (p50 / p95);
* Next button: a click -> the same;
* ten quick Right presses (10 per second): how long after the last press its frame is on screen;
* held Right arrow: key repeat at 30 Hz for a few seconds: frames shown per second while held, and
  how far the video kept moving after the key was let go (a queue shows up there);
* threshold step: IoU tracking slider +0.01 (arrow key) -> flags, counts and imputed boxes redrawn;
* long seeks, each to a frame far from any the page has shown (outside any buffer; see seek_rounds):
  a timeline click, a timeline drag (from the release), K and J right after a jump, "Jump to frame"
  (from Enter), a deep link ``?frame=N`` (from navigation, and from the viewer's first appearance;
  how a shared link opens Review), "Open in Review" on the Verdicts page, a click on the embedding map
  (with how many opened exactly the frame clicked) and, given ``--batch`` (a batch output folder over
  the video: ``python bench/long_video.py`` makes one), the Fleet page's "Open in Review" (its first
  video at frame 0, from a new session's Fleet page): p50 / p95 each. The browser's cache is off
  (``--browser-cache`` turns it on), so a reload starts cold. ``--links-only`` skips the steps above;
* idle server CPU over a few seconds with the review page open, from /proc;
* Verdicts page: a verdict by key (M, F, U) or by a click on "False alarm" -> the next queued
  frame's image on screen, at 1280x720 and 1600x1000 (issue 20's goal: 150 ms at p95). The same
  measurement as ``bench/verdict_latency.py``, which times more verdicts and checks the store.

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
KEYS = {"ArrowRight": 39, "ArrowLeft": 37, "Enter": 13, "j": 74, "k": 75, "m": 77, "f": 70, "u": 85, "z": 90}

# Records, once per animation frame, what the page shows: the frame number under the viewer's label
# and a token that changes whenever the frame image is redrawn (the viewer's data-frame, or the src
# of the image in the older page), plus the viewer's threshold settings and flag count.
RECORDER = """
if (!window.__bench) {
  window.__bench = {events: [], keys: [], inputs: []};
  window.addEventListener("keydown", (e) => __bench.keys.push(performance.now()), true);
  window.addEventListener("click", (e) => __bench.keys.push(performance.now()), true);
  for (const type of ["keydown", "pointerdown", "pointerup", "mousedown"]) {
    window.addEventListener(type, (e) => __bench.inputs.push([performance.now(), type]), true);
  }
  const metric = (label) => {
    const box = [...document.querySelectorAll('[data-testid="stMetric"]')].find((m) => m.innerText.startsWith(label));
    return box ? box.innerText.split("\\n").filter((line) => line.trim())[1] : null;
  };
  const probe = () => {
    const viewer = document.querySelector(".fv-root");
    if (viewer) {
      const label = viewer.querySelector(".fv-label").textContent.match(/Frame ([\\d,]+)/);
      return {frame: label ? Number(label[1].replace(/,/g, "")) : null, token: viewer.dataset.frame, ready: true,
              view: viewer.dataset.view, flagged: viewer.dataset.flagged, metric: metric("Flagged frames"),
              quality: viewer.dataset.quality || null};
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
    """Trusted key and mouse events, as a keyboard and a mouse send them: straight to the page over
    the DevTools socket, without waiting for the page to take them (chromedriver's round trip of
    ~40 ms here would cap a held key's repeat rate, and waiting would hide a queue that real key
    repeat builds up)."""

    def __init__(self, browser):
        import json
        from urllib.request import urlopen

        import websocket

        address = browser.capabilities["goog:chromeOptions"]["debuggerAddress"]
        targets = json.load(urlopen(f"http://{address}/json"))
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
        self.sent = 0

    def command(self, method: str, params: dict) -> None:
        import json

        self.sent += 1
        self.socket.send(json.dumps({"id": self.sent, "method": method, "params": params}))

    def send(self, kind: str, name: str, repeat: bool = False) -> None:
        code = f"Key{name.upper()}" if len(name) == 1 else name
        self.command("Input.dispatchKeyEvent", {"type": kind, "key": name, "code": code,
                                                "windowsVirtualKeyCode": KEYS[name], "autoRepeat": repeat})

    def press(self, name: str) -> None:
        self.send("rawKeyDown", name)
        self.send("keyUp", name)
        self.drain()

    def type(self, text: str) -> None:
        self.command("Input.insertText", {"text": text})
        self.drain()

    def mouse(self, kind: str, x: float, y: float) -> None:
        """``kind``: mousePressed, mouseMoved or mouseReleased, at viewport pixels (x, y)."""
        pressed = kind == "mousePressed" or kind == "mouseMoved"
        self.command("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                  "buttons": 1 if pressed else 0, "clickCount": 1})

    def hover(self, x: float, y: float) -> None:
        """The pointer moved to viewport pixels (x, y), no button held."""
        self.command("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "none", "buttons": 0})
        self.drain()

    def click(self, x: float, y: float) -> None:
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y)
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


def wait_shown(browser, start: int, done, timeout: float = 10.0, required: bool = True, what: str = "") -> dict | None:
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
        raise SystemExit(f"timed out{' waiting for ' + what if what else ''}: last state {shown(browser)}")
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


SEEK_GAP = 40  # a seek target lies this far from every frame shown since the page opened: outside any buffer


def inputs_since(browser, index: int) -> list[tuple[float, str]]:
    return browser.execute_script("return __bench.inputs.slice(arguments[0])", index)


def label_frame(browser) -> int:
    text = browser.find_element("css selector", ".fv-label").text
    return int(text.split()[1].replace(",", ""))


def timed_seek(browser, act, target: int | str | None, since: str, timeout: float = 20) -> tuple[float, int] | None:
    """Do ``act``; return the ms from its first ``since`` input (keydown, pointerdown, pointerup,
    mousedown) to the first animation frame that shows the full image of the frame it led to, and
    that frame. ``target``: the frame expected, "label" (the frame the viewer's label shows once
    ``act`` returned: the hand's own moves; None is returned when it did not move), or None
    (whichever frame the page moves to next)."""
    before = shown(browser)
    start = len(browser.execute_script("return __bench.events"))
    inputs = len(browser.execute_script("return __bench.inputs"))
    act()
    if target == "label":
        target = label_frame(browser)
        if target == before["frame"]:
            return None  # nothing to move to (K after the last flagged frame)

    def full(event: dict) -> bool:
        return event.get("quality") in (None, "full") and event["token"] == str(event["frame"])

    if target is None:
        event = wait_shown(browser, start, lambda e: full(e) and e["frame"] != before["frame"], timeout,
                           what=f"a move from frame {before['frame']}")
    else:
        event = wait_shown(browser, start, lambda e: full(e) and e["frame"] == target, timeout, what=f"frame {target}")
    began = next(t for t, kind in inputs_since(browser, inputs) if kind == since)
    return event["t"] - began, event["frame"]


def cold_target(rng, n: int, avoid: set[int], candidates: list[int] | None = None) -> int:
    """A random frame (of ``candidates``, default all) at least SEEK_GAP from every frame in
    ``avoid``; failing that, the one farthest from them."""
    pool = candidates if candidates is not None else range(n)
    def distance(frame: int) -> int:
        return min((abs(frame - other) for other in avoid), default=n)
    for _ in range(200):
        frame = rng.choice(pool)
        if distance(frame) >= SEEK_GAP:
            return frame
    return max(pool, key=distance)


def frames_seen(browser) -> set[int]:
    """Every frame the page has shown, or moved its label to, since it opened."""
    events = browser.execute_script("return __bench.events")
    return {e["frame"] for e in events if e["frame"] is not None}


def element_box(browser, selector: str) -> dict:
    """The element's box in viewport pixels, scrolled into view first."""
    return browser.execute_script(
        "const e = document.querySelector(arguments[0]); e.scrollIntoView({block: 'center'});"
        "const r = e.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height};",
        selector)


def timeline_x(box: dict, frame: int, n: int) -> float:
    return box["left"] + (frame + 0.5) / n * box["width"]


def timeline_click(browser, keyboard: Keyboard, frame: int, n: int) -> tuple[float, int]:
    box = element_box(browser, ".fv-timeline")
    return timed_seek(browser, lambda: keyboard.click(timeline_x(box, frame, n), box["top"] + box["height"] / 2),
                      "label", "pointerdown")


def timeline_drag(browser, keyboard: Keyboard, start: int, end: int, n: int, moves: int = 10) -> tuple[float, int]:
    """Press on the timeline at ``start``, drag to ``end`` over ``moves`` moves 16 ms apart, let go:
    timed from the release."""
    box = element_box(browser, ".fv-timeline")
    y = box["top"] + box["height"] / 2

    def drag() -> None:
        keyboard.mouse("mousePressed", timeline_x(box, start, n), y)
        for move in range(1, moves + 1):
            keyboard.mouse("mouseMoved", timeline_x(box, round(start + (end - start) * move / moves), n), y)
            time.sleep(0.016)
        keyboard.mouse("mouseReleased", timeline_x(box, end, n), y)
        keyboard.drain()
    return timed_seek(browser, drag, "label", "pointerup")


def jump_to(browser, keyboard: Keyboard, frame: int) -> tuple[float, int]:
    """Type the frame into "Jump to frame" and press Enter: timed from the Enter key."""
    def typed() -> bool:  # typed into the box as a person would, at a person's pace (a rerun may redraw it)
        field = browser.find_element("css selector", 'input[aria-label="Jump to frame"]')
        if field.get_attribute("value") != str(frame):
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();"
                                   "arguments[0].select();", field)
            keyboard.type(str(frame))
        time.sleep(0.5)
        return field.get_attribute("value") == str(frame)
    wait_for(browser, typed, 10, "the frame typed into Jump to frame")

    def enter() -> None:
        keyboard.press("Enter")
    result = timed_seek(browser, enter, frame, "keydown")
    blur(browser)
    return result


def to_flagged(browser, keyboard: Keyboard, key: str) -> tuple[float, int] | None:
    """K (next flagged frame) or J (previous): None when there is none that way (the key stays put)."""
    blur(browser)
    return timed_seek(browser, lambda: keyboard.press(key), "label", "keydown")


MAP_POINT = """
const map = document.querySelector(".fm-root");
if (map) {
  map.scrollIntoView({block: "center"});
  return map.pointOf(arguments[0]);
}
const gd = document.querySelector(".js-plotly-plot");  // the Plotly map of earlier checkouts
gd.scrollIntoView({block: "center"});
const t = gd._fullData.find((d) => d.name === "frames"), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const i = t.customdata.indexOf(arguments[0]), box = gd.getBoundingClientRect();
return [box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i])];
"""
MAP_READY = """
const map = document.querySelector(".fm-root"), gd = document.querySelector(".js-plotly-plot");
return map ? !!map.pointOf : !!(gd && gd._fullData && gd._fullData.length);
"""


def map_click(browser, keyboard: Keyboard, frame: int) -> tuple[float, int]:
    """Click frame's point on the embedding map: timed from the mouse press, with the frame it opened."""
    x, y = browser.execute_script(MAP_POINT, frame)
    time.sleep(0.3)  # the map has been scrolled to: let it settle as a person's eye would
    x, y = browser.execute_script(MAP_POINT, frame)
    keyboard.command("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})  # Plotly clicks what it hovers
    keyboard.drain()
    time.sleep(0.2)
    return timed_seek(browser, lambda: keyboard.click(x, y), None, "mousedown")


def deep_link(browser, url: str, frame: int) -> tuple[float, float]:
    """Open the review at ``url`` with ``frame=frame`` (and the tutorial's thresholds): ms from
    navigation start and from the viewer's first appearance to that frame's full image on screen."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query), frame=str(frame), iou_track="0.8", iou_assert="0.6")  # the tutorial's
    browser.get(urlunsplit(parts._replace(query=urlencode(query))))
    event = wait_shown(browser, 0, lambda e: e["frame"] == frame and e["token"] == str(frame)
                       and e["quality"] in (None, "full"), 60)
    mounted = next(e["t"] for e in events_since(browser, 0) if e["frame"] is not None)
    return event["t"], event["t"] - mounted


def seek_rounds(browser, keyboard: Keyboard, rounds: int, n: int, seed: int = 0) -> dict[str, list[float]]:
    """``rounds`` times: open a deep link to a random frame (the reload empties the browser's frame
    buffer), let the page settle as a person looks at it, then two timeline clicks, a drag, a jump
    then K, and "Jump to frame", each to a frame far from any shown since the page opened."""
    import random

    rng, times = random.Random(seed), {}
    url = browser.current_url
    for _ in range(rounds):
        from_start, from_viewer = deep_link(browser, url, cold_target(rng, n, set()))
        times.setdefault("deep link ?frame=N (page load -> frame)", []).append(from_start)
        times.setdefault("deep link ?frame=N (viewer shown -> frame)", []).append(from_viewer)
        time.sleep(2.0)
        for _ in range(2):
            times.setdefault("timeline click", []).append(
                timeline_click(browser, keyboard, cold_target(rng, n, frames_seen(browser)), n)[0])
            time.sleep(0.5)
        start = cold_target(rng, n, frames_seen(browser))
        end = cold_target(rng, n, frames_seen(browser) | {start})
        times.setdefault("timeline drag (from release)", []).append(timeline_drag(browser, keyboard, start, end, n)[0])
        time.sleep(0.5)
        for key, where in (("k", range(n * 3 // 4)), ("j", range(n // 4, n))):
            timeline_click(browser, keyboard, cold_target(rng, n, frames_seen(browser), where), n)
            time.sleep(0.3)  # a glance at where the jump landed, then K (or J)
            if (moved := to_flagged(browser, keyboard, key)) is not None:
                times.setdefault(f"{key.upper()} after a jump", []).append(moved[0])
            time.sleep(0.5)
        times.setdefault("Jump to frame", []).append(jump_to(browser, keyboard, cold_target(rng, n, frames_seen(browser)))[0])
        time.sleep(0.5)
    return times


def map_clicks(browser, keyboard: Keyboard, clicks: int, n: int, seed: int = 1) -> tuple[list[float], int]:
    """Run the local selection, then click ``clicks`` random points of the embedding map: the times,
    and how many opened exactly the frame clicked."""
    import random

    rng, times, exact = random.Random(seed), [], 0
    wait_for(browser, lambda: next(b for b in browser.find_elements("tag name", "button")
                                   if "Run local selection" in b.text).click() or True, 30, "the selection button")
    wait_for(browser, lambda: browser.execute_script(MAP_READY), 300, "the embedding map")
    for _ in range(clicks):
        target = cold_target(rng, n, frames_seen(browser))
        took, landed = map_click(browser, keyboard, target)
        times.append(took)
        exact += landed == target
        time.sleep(0.8)
    return times, exact


OPEN_IN_REVIEW = """
document.getElementById("bench-open")?.removeAttribute("id");
const link = document.querySelector(`.st-key-qa_open_${arguments[0]} button`)
  || [...document.querySelectorAll('a[data-testid="stPageLink-NavLink"]')]
       .find((a) => new URL(a.href).searchParams.get("frame") === String(arguments[0]));
if (link) link.id = "bench-open";
return !!link;
"""


def verdict_links(browser, keyboard: Keyboard, clicks: int, n: int, video: Path | None, data_dir: Path,
                  seed: int = 2) -> tuple[list[float], list[float]]:
    """``clicks`` times: a verdict on a frame far from any shown (written to the app's store as a
    reviewer in another tab would), the Verdicts page opened from the sidebar, the pointer moved onto
    its "Open in Review" on that frame and, 0.5 s later, pressed: timed from the mouse press to the frame's full image in Review, and from
    the viewer's appearance to it (the rest is the page switch)."""
    import random

    sys.path.insert(0, str(ROOT))
    from core.paths import SAMPLE_VIDEO
    from core.verdicts import VerdictStore
    from core.video import probe

    rng, times, after_mount = random.Random(seed), [], []
    store, fingerprint = VerdictStore(data_dir / "verdicts.sqlite"), probe(video or SAMPLE_VIDEO).fingerprint
    for _ in range(clicks):
        frame = cold_target(rng, n, frames_seen(browser))
        store.set(fingerprint, frame, "unsure", annotator="bench")
        wait_for(browser, lambda: browser.find_element("css selector", '[data-testid="stSidebarNav"] a[href$="/qa"]')
                 .click() or True, 30, "the Verdicts page link")
        selector = "#bench-open"  # the frame's Open in Review: a button (older pages) or a link to Review
        wait_for(browser, lambda: browser.execute_script(OPEN_IN_REVIEW, frame), 60, f"Open in Review for frame {frame}")
        box = element_box(browser, selector)
        keyboard.hover(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
        time.sleep(0.5)  # scrolled to it: a person finds the button, the pointer on it, and presses
        browser.execute_script(OPEN_IN_REVIEW, frame)  # again: a rerun may have drawn it anew
        box = element_box(browser, selector)
        start = len(browser.execute_script("return __bench.events"))
        times.append(timed_seek(browser, lambda: keyboard.click(box["left"] + box["width"] / 2,
                                                                box["top"] + box["height"] / 2), frame, "mousedown")[0])
        events = events_since(browser, start)
        mounted = next(e["t"] for e in events if e["frame"] is not None)
        after_mount.append(next(e["t"] for e in events if e["frame"] == frame and e["token"] == str(frame)) - mounted)
        time.sleep(1.0)
    return times, after_mount


def fleet_links(browser, keyboard: Keyboard, clicks: int, url: str, batch: Path) -> tuple[list[float], list[float]]:
    """``clicks`` times: the Fleet page of ``batch`` opened by its link (a new session, as a bookmark
    or a colleague's link opens it), its "Open in Review" pressed on the first video: timed from the
    mouse press to that video's first frame's full image in Review, and from the viewer's appearance
    to it (the rest is the page switch and Review's run, opening what the Fleet page read ahead)."""
    from urllib.parse import urlencode

    times, after_mount = [], []
    selector = 'a[data-testid="stPageLink-NavLink"]'
    for _ in range(clicks):
        browser.get(f"{url}fleet?{urlencode({'dir': str(batch)})}")
        wait_for(browser, lambda: browser.execute_script(RECORDER + "return true"), 10, "the recorder")

        def open_button():
            return next((b for b in browser.find_elements("css selector", selector) if b.text.splitlines()[-1:] == ["Open in Review"]
                         and b.get_attribute("href")), None)
        wait_for(browser, open_button, 60, "Open in Review on the Fleet page")
        time.sleep(0.5)  # the page settles: a person finds the button
        box = browser.execute_script(
            "const e = arguments[0]; e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            "return {left: r.left, top: r.top, width: r.width, height: r.height};", open_button())
        start = len(browser.execute_script("return __bench.events"))
        times.append(timed_seek(browser, lambda: keyboard.click(box["left"] + box["width"] / 2,
                                                                box["top"] + box["height"] / 2), 0, "mousedown", 60)[0])
        events = events_since(browser, start)
        mounted = next(e["t"] for e in events if e["frame"] is not None)
        after_mount.append(next(e["t"] for e in events if e["frame"] == 0 and e["token"] == "0") - mounted)
        time.sleep(1.0)
    return times, after_mount


def seek_table(times: dict[str, list[float]]) -> str:
    width = max(map(len, times))
    return "\n".join(f"  {kind:<{width}}  {percentiles(values)}" for kind, values in times.items())


def cpu_percent(pid: int, seconds: float) -> float:
    """CPU time of the server process (all threads) over ``seconds`` of wall time, from /proc."""
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    before, start = ticks(), time.perf_counter()
    time.sleep(seconds)
    return 100 * (ticks() - before) / os.sysconf("SC_CLK_TCK") / (time.perf_counter() - start)


def open_review(browser, url: str, video: Path | None) -> None:
    """The review page of the sample, run through the load page as a user would, or a link to the
    review of ``video`` (its detections by the built-in detector must be cached: ``python -m core run
    VIDEO --out DIR`` caches them)."""
    if video is not None:
        from urllib.parse import urlencode

        browser.get(f"{url}review?{urlencode({'video': str(video.resolve())})}")
        wait_for(browser, lambda: browser.execute_script(
            RECORDER + "return __bench.events.some((e) => e.ready && e.frame !== null)"), 120, "the review page")
        return
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


def wait_for_proxy(video: Path | None, timeout: float = 600) -> None:
    """The seek proxy builds in the background once the video is on screen: measure with it."""
    sys.path.insert(0, str(ROOT))
    from core.paths import SAMPLE_VIDEO
    from core.proxy import PROXY_GOP, proxy_path
    from core.video import probe

    info, deadline = probe(video or SAMPLE_VIDEO), time.time() + timeout
    if len(info.keyframes) * PROXY_GOP >= info.frame_count:
        return  # short GOPs: no proxy
    while not proxy_path(info).is_file() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1)


def queue_verdicts(browser, keyboard: Keyboard, url: str, video: Path | None, verdicts: int) -> None:
    """Verdicts on the Verdicts page's queue at both window sizes, by key and by click (see
    bench/verdict_latency.py, whose steps these are): p50 / p95 from the input to the next frame."""
    import verdict_latency

    clicks, sizes = max(verdicts // 4, 3), ((1280, 720), (1600, 1000))
    # the plan's first phase (half of it) holds every verdict: the second phase's rerun never comes between
    plan = max(verdict_latency.DEFAULT_PLAN, 2 * len(sizes) * (verdicts + clicks) + 2)
    verdict_latency.open_queue(browser, url, "bench", plan, video)
    for width, height in sizes:
        verdict_latency.set_viewport(browser, width, height)
        keys, taps = verdict_latency.measure(browser, keyboard, verdicts, clicks)
        print(f"Verdicts page at {width}x{height}: key -> next frame {percentiles(keys)}; "
              f"click -> next frame {percentiles(taps)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="checkout to serve (default: this one)")
    parser.add_argument("--video", type=Path, help="a video whose detections by the built-in detector are cached "
                                                   "(default: the bundled sample, detected through the load page)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--hold-s", type=float, default=3.0)
    parser.add_argument("--threshold-steps", type=int, default=12)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--seek-rounds", type=int, default=8, help="rounds of long seeks (see seek_rounds)")
    parser.add_argument("--map-clicks", type=int, default=8)
    parser.add_argument("--verdict-links", type=int, default=6, help='"Open in Review" clicks on the Verdicts page')
    parser.add_argument("--batch", type=Path, help="a batch output folder over the video (python -m core batch VIDEO "
                                                   "--out DIR): times the Fleet page's Open in Review")
    parser.add_argument("--fleet-links", type=int, default=6, help='"Open in Review" clicks on the Fleet page (--batch)')
    parser.add_argument("--links-only", action="store_true",
                        help="skip the frame steps, held key and threshold steps: long seeks and links only (and the "
                             "Verdicts page's queue, unless --queue-verdicts 0)")
    parser.add_argument("--queue-verdicts", type=int, default=20,
                        help="verdicts by key per window size on the Verdicts page's queue (0: skip)")
    parser.add_argument("--server-log", type=Path, help="keep the server's log here")
    parser.add_argument("--browser-cache", action="store_true",
                        help="let the browser keep frames across the benchmark's reloads (off: each deep link "
                             "starts cold, as the older page did, so far seeks are not served from an earlier round)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a Streamlit option for the server, e.g. server.fileWatcherType=auto (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        data_dir = Path(tmp) / "data"
        server = start_server(args.app_dir, port, data_dir, Path(tmp) / "server.log", args.option)
        browser = start_browser()
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})  # deep links
        if not args.browser_cache:
            browser.execute_cdp_cmd("Network.enable", {})
            browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        try:
            open_review(browser, f"http://127.0.0.1:{port}/", args.video)
            wait_for_proxy(args.video)
            blur(browser)
            keyboard = Keyboard(browser)
            if not args.links_only:
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
            n = int(browser.find_element("css selector", ".fv-label").text.split("/")[1].replace(",", "")) + 1
            seeks = seek_rounds(browser, keyboard, args.seek_rounds, n)
            if args.verdict_links:
                seeks["Verdicts page: Open in Review"], seeks["  (viewer shown -> frame)"] = verdict_links(
                    browser, keyboard, args.verdict_links, n, args.video, data_dir)
            if args.map_clicks:
                clicks, exact = map_clicks(browser, keyboard, args.map_clicks, n)
                seeks[f"map click ({exact} of {len(clicks)} opened the frame clicked)"] = clicks
            if args.batch is not None and args.fleet_links:
                seeks["Fleet page: Open in Review (frame 0)"], seeks["  (viewer shown -> frame, Fleet)"] = fleet_links(
                    browser, keyboard, args.fleet_links, f"http://127.0.0.1:{port}/", args.batch)
            print(f"long seeks, each to a frame >= {SEEK_GAP} frames from any shown since the page opened "
                  f"(from the input to the frame's full image on screen):\n{seek_table(seeks)}", flush=True)
            blur(browser)
            browser.execute_script("__bench.stopped = true")
            time.sleep(2)
            print(f"idle server CPU over {args.idle_s:g} s (review page open): "
                  f"{cpu_percent(server.pid, args.idle_s):.1f}%", flush=True)
            if args.queue_verdicts:
                queue_verdicts(browser, keyboard, f"http://127.0.0.1:{port}/", args.video, args.queue_verdicts)
        finally:
            browser.quit()
            server.terminate()
            server.wait(timeout=20)
            if args.server_log:
                shutil.copy(Path(tmp) / "server.log", args.server_log)


if __name__ == "__main__":
    main()
