"""The Fleet page on a large batch: a synthetic output folder of N videos (summary.csv in the batch's
own format, a manifest, a verdict store with verdicts on some videos) opened with AppTest.

    .venv/bin/python bench/fleet.py [--videos 1000] [--browser]

Prints the time to open /fleet?dir= cold (summary parsed) and warm (cached by the file's mtime),
the parse alone, and the memory the page run allocated (tracemalloc peak) and the process's RSS.
Checks what it times: every row is in the table, sorted by flagged share.

``--browser``: the same folder in headless Chromium against `streamlit run app.py`: time from
navigation to the whole table on screen (the grid's row count, the app idle), the server's and the
page's memory, and the frame intervals while the wheel scrolls the table (smooth: one frame per
display refresh, the grid's rows moving).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # latency.py: the server and browser the other browser bench uses

import numpy as np  # noqa: E402

from core import fleet  # noqa: E402
from core.batch import summary_csv  # noqa: E402
from core.batch.sources import VideoRow  # noqa: E402
from core.lightly.datasource import Datasource  # noqa: E402
from core.lightly.export import write_manifest  # noqa: E402
from core.verdicts import VerdictStore  # noqa: E402


def synthetic_batch(out: Path, videos: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rows, entries = [], []
    for k in range(videos):
        relpath = f"cam{k % 40:02d}/clip_{k:05d}.mp4"
        if k % 50 == 7:
            rows.append(VideoRow(relpath, f"/data/{relpath}", "failed", f"{relpath} is not a video FFmpeg can read"))
            continue
        frames = int(rng.integers(300, 9000))
        rows.append(VideoRow(relpath, f"/data/{relpath}", "done", "", frames, frames * 4, int(rng.integers(0, frames // 20)),
                             1.5, 30.0))
        entries.append({"relpath": relpath, "frames": frames, "fingerprint": f"{k:064x}", "source": f"/data/{relpath}"})
    out.mkdir(parents=True, exist_ok=True)
    (out / fleet.SUMMARY_CSV).write_bytes(summary_csv(rows))
    write_manifest(Datasource(out), entries)
    store = VerdictStore(out.parent / "data" / "verdicts.sqlite")
    for entry in entries[::25]:  # verdicts on 4 % of the videos (their frames are not flagged in this export)
        for frame in range(20):
            store.set(entry["fingerprint"], frame, "miss")


def open_page(folder: Path, traced: bool = False):
    """The page run on ``folder``: (AppTest, seconds, tracemalloc peak or 0). Traced runs are slower:
    time and memory are measured on separate runs."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/fleet.py")
    at.query_params["dir"] = str(folder)
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    tracemalloc.stop()
    assert not at.exception, at.exception
    return at, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--browser", action="store_true", help="also open it in headless Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FLICKER_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["FLICKER_CACHE_DIR"] = str(Path(tmp) / "cache")
        out, small = Path(tmp) / "out", Path(tmp) / "small" / "out"
        synthetic_batch(out, args.videos)
        synthetic_batch(small, 3)
        _, imports, _ = open_page(small)  # the first page run imports the app's modules: not the page's cost
        start = time.perf_counter()
        found = fleet.read_fleet(out)
        parse = time.perf_counter() - start
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fleet._summary_rows.cache_clear()
        at, cold, _ = open_page(out)
        table = at.dataframe[0].value
        assert len(table) == len(found.videos) == args.videos
        assert table["Flagged share"].is_monotonic_decreasing
        warm = min(open_page(out)[1] for _ in range(3))
        fleet._summary_rows.cache_clear()
        cold_peak = open_page(out, traced=True)[2]
        warm_peak = open_page(out, traced=True)[2]
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"{args.videos} videos ({found.failed} failed), summary.csv {(out / fleet.SUMMARY_CSV).stat().st_size / 1024:.0f} KiB")
        print(f"parse summary.csv + markers: {parse * 1000:.1f} ms")
        print(f"open /fleet?dir= (AppTest run, whole script): cold {cold:.2f} s, warm {warm:.2f} s "
              f"(first run of the app in this process, imports included, on 3 videos: {imports:.2f} s)")
        print(f"memory allocated by a page run (tracemalloc peak): cold {cold_peak / 2**20:.1f} MiB, warm {warm_peak / 2**20:.1f} MiB")
        print(f"process max RSS: {rss_after / 1024:.0f} MiB (grew {(rss_after - rss_before) / 1024:.0f} MiB while opening)")
        if args.browser:
            browser_figures(out, small, Path(tmp) / "data", args.videos)


def browser_figures(out: Path, small: Path, data: Path, videos: int) -> None:
    """Open ``out`` on the Fleet page in Chromium (a small batch first: the server's first page run
    imports the app) and print what a user waits for and what it costs."""
    from latency import free_port, start_browser, start_server, wait_for

    port = free_port()
    server = start_server(ROOT, port, data, out.parent / "streamlit.log", ["server.headless=true"])
    browser = start_browser()
    browser.set_window_size(1600, 1100)
    try:
        url = f"http://127.0.0.1:{port}/fleet?dir="
        open_in_browser(browser, url + str(small), 4, wait_for)
        rss_before = _rss_mib(server.pid)
        baseline = sorted(open_in_browser(browser, url + str(small), 4, wait_for) for _ in range(3))[1]
        seconds = [open_in_browser(browser, url + str(out), videos + 1, wait_for) for _ in range(3)]
        heap = browser.execute_cdp_cmd("Performance.getMetrics", {}) if browser.execute_cdp_cmd("Performance.enable", {}) is not None else {}
        js_heap = next((m["value"] for m in heap.get("metrics", []) if m["name"] == "JSHeapUsedSize"), 0)
        intervals, first_row = scroll_table(browser)
        print(f"browser: open /fleet?dir= until all {videos:,} rows are in the grid and the app is idle: first "
              f"{seconds[0]:.2f} s (summary parsed), then {seconds[1]:.2f} s, {seconds[2]:.2f} s (a new page load each; "
              f"the same page on a 3-video batch: {baseline:.2f} s, median of 3)")
        print(f"memory: server RSS {_rss_mib(server.pid):.0f} MiB (+{_rss_mib(server.pid) - rss_before:.0f} MiB for the "
              f"large batch), page JS heap {js_heap / 2**20:.0f} MiB")
        intervals.sort()
        print(f"scrolling the table with the wheel: {len(intervals)} frames, interval p50 {intervals[len(intervals) // 2]:.1f} ms, "
              f"p95 {intervals[int(len(intervals) * 0.95)]:.1f} ms, max {intervals[-1]:.1f} ms; the grid's first row "
              f"went from 1 to {first_row}")
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=10)


def open_in_browser(browser, url: str, rows: int, wait_for) -> float:
    """Seconds from navigation to the grid holding ``rows`` rows (header included) with the app idle."""
    browser.get("about:blank")
    start = time.perf_counter()
    browser.get(url)
    grid = '[data-testid="stDataFrame"] table[aria-rowcount="%d"]' % rows
    wait_for(browser, lambda: browser.find_elements("css selector", grid) and not browser.find_elements(
        "css selector", '[data-testid="stStatusWidget"]'), 60, f"a table of {rows - 1} videos")
    return time.perf_counter() - start


def scroll_table(browser) -> tuple[list[float], int]:
    """Wheel over the table for ~2 s (30 notches); the frame intervals meanwhile and the first row shown."""
    table = browser.find_element("css selector", '[data-testid="stDataFrame"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                           "window.__frames = []; window.__recording = true;"
                           "const tick = t => { window.__frames.push(t); if (window.__recording) requestAnimationFrame(tick); };"
                           "requestAnimationFrame(tick);", table)
    box = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];", table)
    browser.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": box[0], "y": box[1]})  # hover first
    for _ in range(30):
        browser.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": box[0], "y": box[1],
                                                              "deltaX": 0, "deltaY": 240})
        time.sleep(1 / 15)
    time.sleep(0.3)
    frames = browser.execute_script("window.__recording = false; return window.__frames;")
    first = browser.execute_script("const r = document.querySelector('[data-testid=\"stDataFrame\"] tbody tr');"
                                   "return r ? Number(r.getAttribute('aria-rowindex')) - 1 : 0;")
    return [b - a for a, b in zip(frames, frames[1:])], first


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


if __name__ == "__main__":
    main()
