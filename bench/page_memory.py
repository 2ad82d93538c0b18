"""Does the browser tab grow as a reviewer goes back and forth between the Fleet page and Review?

    python bench/page_memory.py --batch DIR [--rounds 25] [--every 5]

``DIR`` is a batch output folder (``python -m core batch VIDEO --out DIR``). Headless Chromium opens
its Fleet page, then, ``--rounds`` times, follows "Open in Review" and Review's "Back to the batch".
Every ``--every`` rounds, after a forced garbage collection, it prints the tab's JS heap, DOM nodes
and event listeners on each page.

The links are found and clicked by a script in the page. WebDriver element handles are never taken,
because the driver keeps every element it ever returned alive in the page, with the tree it was in
once that tree is detached. Measured that way, the tab seemed to grow by ~950 DOM nodes and ~1.3 MB
per round trip, all of it held by the driver, none by the app.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import ROOT, free_port, start_browser, start_server, wait_for  # noqa: E402

LINK = """const [text, click] = arguments;
const link = [...document.querySelectorAll('a[data-testid="stPageLink-NavLink"]')]
  .find((a) => a.innerText.split('\\n').pop() === text && a.getAttribute('href'));
if (link && click) link.click();
return !!link;"""
VIEWER = "return !!document.querySelector('.fv-root')"


def tab_metrics(browser) -> tuple[float, int, int]:
    """JS heap (MB), DOM nodes and event listeners, after a garbage collection."""
    browser.execute_cdp_cmd("HeapProfiler.enable", {})
    browser.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    found = {m["name"]: m["value"] for m in browser.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    return found["JSHeapUsedSize"] / 1e6, int(found["Nodes"]), int(found["JSEventListeners"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=Path, required=True, help="a batch output folder")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="checkout to serve (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(args.app_dir, port, Path(tmp) / "data", Path(tmp) / "server.log", [])
        browser = start_browser()
        browser.execute_cdp_cmd("Performance.enable", {})
        try:
            browser.get(f"http://127.0.0.1:{port}/fleet?{urlencode({'dir': str(args.batch.resolve())})}")
            print("round  page    JS heap MB  DOM nodes  listeners")
            for round_ in range(args.rounds + 1):
                wait_for(browser, lambda: browser.execute_script(LINK, "Open in Review", False), 60, "Open in Review")
                time.sleep(1.5)  # the page settles, as a hand finds the link
                browser.execute_script(LINK, "Open in Review", True)
                wait_for(browser, lambda: browser.execute_script(VIEWER) and browser.execute_script(
                    LINK, "Back to the batch", False), 60, "Review with its viewer")
                time.sleep(2.5)
                review = tab_metrics(browser)
                browser.execute_script(LINK, "Back to the batch", True)
                wait_for(browser, lambda: browser.execute_script(LINK, "Open in Review", False)
                         and not browser.execute_script(VIEWER), 60, "the Fleet page")
                time.sleep(1.5)
                if round_ % args.every == 0:
                    fleet = tab_metrics(browser)
                    for page, (heap, nodes, listeners) in (("review", review), ("fleet", fleet)):
                        print(f"{round_:5d}  {page:6s}  {heap:10.1f}  {nodes:9d}  {listeners:9d}", flush=True)
        finally:
            browser.quit()
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
