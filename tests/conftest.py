"""Shared fixtures: real videos (the bundled sample and short slices of it), broken files."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from core.paths import ROOT, SAMPLE_VIDEO  # noqa: E402,F401  (ROOT: re-exported to tests)
from core.video import iter_frames  # noqa: E402


ENCODER_THREADS = 3


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10, codec: str = "mpeg4", options: dict | None = None,
                container_format: str | None = None, first_pts: int | None = None) -> Path:
    """Encode RGB frames with PyAV (a real encoder; the result is read back by real decoders);
    ``options`` for the encoder (GOP, B-frames), ``container_format`` where the suffix does not say it.
    ``first_pts``: the first frame's timestamp, in frames (below 0, an MP4 hides the frames before 0
    behind an edit list, as a stream-copy trim off a keyframe writes)."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = options if options is not None else {"qscale": "2"} if codec == "mpeg4" else {}
        # Encoders split the work by thread, and the bits depend on the split: left to FFmpeg (a
        # thread per core, plus one) a clip came out different on a one-core machine, where walk_a
        # had 2 flagged frames instead of 3. Three threads everywhere: the bits of the two-core
        # machines the tests' counts were written on, now on any machine.
        stream.codec_context.thread_count = ENCODER_THREADS
        if first_pts is not None:
            stream.codec_context.time_base = Fraction(1, fps)
        for k, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if first_pts is not None:
                picture.pts, picture.time_base = first_pts + k, Fraction(1, fps)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def sample_frames(count: int, start: int = 0) -> list[np.ndarray]:
    return [frame for i, frame in iter_frames(SAMPLE_VIDEO) if start <= i < start + count][:count]


@pytest.fixture(scope="session")
def sample_video() -> Path:
    return SAMPLE_VIDEO


@pytest.fixture(scope="session")
def sample_slice(tmp_path_factory) -> Path:
    """Frames 0..39 of the bundled sample, re-encoded as MPEG-4 in an .mp4 container."""
    return write_video(tmp_path_factory.mktemp("slice") / "walk.mp4", sample_frames(40))


@pytest.fixture(scope="session")
def tiny_slice(tmp_path_factory) -> Path:
    """Six frames of the sample at half size: enough for a real YOLO forward pass on CPU."""
    import cv2

    frames = [cv2.resize(f, (384, 288)) for f in sample_frames(6, start=100)]
    return write_video(tmp_path_factory.mktemp("tiny") / "tiny.mp4", frames)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, sample_slice) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    data = sample_slice.read_bytes()
    rng = np.random.default_rng(0)
    files = {
        "empty": folder / "empty.mp4",
        "random": folder / "random.mp4",
        "text": folder / "notes.mp4",
        "header_only": folder / "header.mp4",
        "missing": folder / "missing.mp4",
        "directory": folder / "a_folder.mp4",
        "device": folder / "zero.mp4",
        "fifo": folder / "pipe.mp4",
        "loop": folder / "loop.mp4",
        "dangling": folder / "gone.mp4",
        "still": folder / "still.mp4",
        "no_frames_mkv": folder / "no_frames.mkv",
        "no_frames_mp4": folder / "no_frames.mp4",
        "cover_art": folder / "podcast.mp4",
    }
    for name in ("no_frames_mkv", "no_frames_mp4"):  # a recording stopped before its first frame
        with av.open(str(files[name]), "w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            container.start_encoding()  # the header, and not one packet
    _audio_with_cover_art(files["cover_art"])
    files["loop"].symlink_to(folder / "loop_back.mp4")
    (folder / "loop_back.mp4").symlink_to(files["loop"])
    files["dangling"].symlink_to(folder / "deleted.mp4")
    files["device"].symlink_to("/dev/zero")
    os.mkfifo(files["fifo"])  # nobody writes to it: opening it to read would wait forever
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["text"].write_text("this is a shopping list, not a video\n")
    files["header_only"].write_bytes(data[:64])
    files["directory"].mkdir()
    import cv2

    cv2.imwrite(str(folder / "still.png"), np.zeros((48, 64, 3), np.uint8))  # a picture renamed: FFmpeg reads it as one frame
    (folder / "still.png").rename(files["still"])
    return files


def _audio_with_cover_art(path: Path) -> None:
    """Sound and its cover picture (a podcast or song exported as .mp4): FFmpeg shows the picture as
    a video stream marked ``attached_pic``, one frame long."""
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=44100)
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        for packet in [*cover.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")),
                       *cover.encode()]:
            container.mux(packet)
        for k in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, k * 1024
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")  # the browser tests' Debian packages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(folder: Path, cache_dir: Path, *app_args: str, port: int | None = None) -> Iterator[str]:
    """`streamlit run app.py [-- app_args]` on ``port`` (default: a free one; a restart passes the
    port the open tab looks for), its log and data under ``folder``; yields the base URL once the
    port accepts connections (no HTTP probe: no session is opened)."""
    port = port or free_port()
    env = dict(os.environ, FLICKER_CACHE_DIR=str(cache_dir), FLICKER_DATA_DIR=str(folder / "data"))
    log_path = folder / f"streamlit-{time.monotonic_ns()}.log"
    SERVER_LOGS.append(log_path)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command + (["--", *app_args] if app_args else []), cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"the server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


SERVER_LOGS: list[Path] = []  # every server this test session started, latest last


def server_log_tail(chars: int = 3000) -> str:
    """The latest server's log, to read beside a browser test's failure."""
    if not SERVER_LOGS or not SERVER_LOGS[-1].exists():
        return ""
    return f"\n--- {SERVER_LOGS[-1].name}, its last {chars} characters ---\n{SERVER_LOGS[-1].read_text()[-chars:]}"


def browser_log_tail(browser, entries: int = 15) -> str:
    """The tab's last console entries (its JS errors, React's, failed loads), to read beside a browser
    test's failure; a line saying so when the tab does not answer within 15 s (a hung renderer)."""
    import threading

    box: list = []
    reader = threading.Thread(target=lambda: box.append(browser.get_log("browser")), daemon=True)
    reader.start()
    reader.join(15)
    if not box:
        return "\n--- the browser's console did not answer in 15 s ---"
    lines = [f"{entry['level']} {entry['message'][:300]}" for entry in box[0][-entries:]]
    return "\n--- the browser's console, last entries ---\n" + "\n".join(lines)


# A header's file name cut in its middle (ui/mount.js showName): [whole text, title, start cut with an ellipsis, the end
# shown, the name itself within its box]
NAME_CUT = """const name = arguments[0], [start, end] = name.children;
return [name.textContent, name.title, start.scrollWidth > start.clientWidth, end.textContent, name.scrollWidth <= name.clientWidth];"""


# Where a canvas drew its boxes' tags (data-tags, [x, y, width, height] each) and what is wrong with it: a tag out of the
# canvas, or two tags over each other (their indexes).
TAGS_APART = """const canvas = arguments[0], tags = JSON.parse(canvas.dataset.tags), wrong = [];
tags.forEach(([x, y, w, h], i) => {
  if (x < 0 || y < 0 || x + w > canvas.width || y + h > canvas.height) wrong.push(`tag ${i} out of the canvas`);
  tags.slice(0, i).forEach(([a, b, c, d], j) => x < a + c - 1 && a < x + w - 1 && y < b + d - 1 && b < y + h - 1 &&
    wrong.push(`tags ${j} and ${i}`)); // (apart but for rounding: a pixel)
});
return [tags.length, wrong];"""


def wait_for(browser, condition, timeout: float = 30, what: str = "condition"):
    """Poll ``condition`` until it gives a true value, and return that value. ``timeout`` is how
    long the page may stand still: any change to it (its text, such as a progress bar's count, or
    whether the app's script runs) starts the clock again, so a machine slowed down by other work
    makes a wait longer, not a failure. A page that keeps changing still fails after ten timeouts."""
    start = still_since = time.time()
    seen = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # the page re-renders under us; try again
            pass
        now, looks = time.time(), page_state(browser)
        if looks != seen:
            seen, still_since = looks, now
        if now - still_since > timeout or now - start > 10 * timeout:
            raise AssertionError(f"timed out waiting for {what} ({now - still_since:.0f} s without a change, "
                                 f"{now - start:.0f} s in all); page says: {clipped(seen[1])}{browser_log_tail(browser)}"
                                 f"{server_log_tail()}")
        time.sleep(0.25)


def clipped(text: str, head: int = 600, tail: int = 1800) -> str:
    """A page's text for a failure: its start (where it is) and its end (where the wait looked, often)."""
    return text if len(text) <= head + tail else f"{text[:head]}\n[... {len(text) - head - tail:,} characters ...]\n{text[-tail:]}"


def page_state(browser) -> tuple[str | None, str]:
    """Whether the app's script runs, and the page's text: what changes while the app works."""
    try:
        return tuple(browser.execute_script(
            "const app = document.querySelector('[data-test-script-state]');"
            "return [app && app.getAttribute('data-test-script-state'), document.body.innerText];"))
    except Exception as error:  # between two pages, or the tab does not answer: a failure says which
        return None, f"(no page: {type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]})"


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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for a failed wait to show
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_home(tmp_path_factory) -> Iterator[None]:
    """The app's cache and data folders default to the user's home (core.paths); the tests use this
    session's own, so they never fill (or read) a real cache, store or export there. A test that
    needs others sets them itself."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLICKER_CACHE_DIR", str(tmp_path_factory.mktemp("home-cache")))
        patch.setenv("FLICKER_DATA_DIR", str(tmp_path_factory.mktemp("home-data")))
        yield


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """A detection cache shared by the app tests and the slow end-to-end tests, so each detection
    (the HOG run on the whole sample above all) is paid once per test session."""
    return tmp_path_factory.mktemp("shared-detection-cache")


@pytest.fixture(scope="session")
def walk_hog(tmp_path_factory, shared_cache):
    """20 frames of the sample (from frame 10) and the offline HOG detector's boxes on them: one
    detection run per test session, shared by the QA, evaluate and pre-label tests."""
    from core.detect import detect_video, load_detector
    from core.video import probe

    info = probe(write_video(tmp_path_factory.mktemp("walk") / "walk.mp4", sample_frames(20, start=10)))
    return info, detect_video(info, load_detector(None), cache_dir=shared_cache)


@pytest.fixture
def app(tmp_path, monkeypatch, shared_cache):
    """The whole app under streamlit's AppTest, with its own data folder (verdicts, uploads, exports).
    The detection cache is shared: no app test is about a cold cache, and each would otherwise run
    the same detection again."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FLICKER_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception
    return at


def shown_frame(browser) -> int | None:
    """The frame whose image the Review page's viewer has on screen."""
    frame = browser.find_element("css selector", ".fv-root").get_attribute("data-frame")
    return int(frame) if frame is not None else None


def press(browser, keys: str) -> None:
    """Keys typed with the focus on the page itself (no field), as a reviewer's shortcuts are."""
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("document.activeElement && document.activeElement.blur()")
    ActionChains(browser).send_keys(keys).perform()


def button(browser, text):
    """The visible button whose text holds ``text`` (None while there is none)."""
    return next((b for b in browser.find_elements("tag name", "button") if text in b.text and b.is_displayed()), None)


def page_link(browser, text):
    """The visible link to another page of the app (st.page_link) whose text holds ``text`` (None while there is none)."""
    return next((a for a in browser.find_elements("css selector", 'a[data-testid="stPageLink-NavLink"]')
                 if text in a.text and a.is_displayed()), None)


def click_when(browser, find, timeout: float = 30, what: str = "an element to click"):
    """Wait for ``find()`` to give an element and click it; found again where a rerun drew it anew
    between the find and the click (a stale element, or none for an instant). Returns it."""
    def clicked():
        element = find()
        if element:
            element.click()
        return element

    return wait_for(browser, clicked, timeout, what)


def app_idle(browser) -> bool:
    """The app's script is not running, nor asked to run again: what its last run drew is all there."""
    return browser.execute_script(
        "const app = document.querySelector('[data-test-script-state]');"
        "return !!app && !['running', 'rerunRequested'].includes(app.getAttribute('data-test-script-state'));")


def components_code_loaded(browser) -> bool:
    """Whether the page has fetched Streamlit's code for components (a lazily loaded script, fetched
    when a page draws its first component; pages that link to Review draw one ahead: preload_viewer)."""
    return browser.execute_script(
        "return performance.getEntriesByType('resource').some((e) => /\\/BidiComponent\\.[\\w-]+\\.js$/.test(e.name))")


def metric(browser, label, timeout: float = 30) -> str:
    """The value of the metric labelled ``label`` once the page shows it: read at once, a rerun drawing
    the metrics again could leave none for an instant (or a stale element)."""
    return wait_for(browser, lambda: metric_value(browser, label), timeout, f"the {label} metric")


def metric_value(browser, label):
    """The value of the metric labelled ``label`` (None while there is none)."""
    for element in browser.find_elements("css selector", '[data-testid="stMetric"]'):
        if element.text.startswith(label):
            return element.text.split("\n")[1]
    return None
