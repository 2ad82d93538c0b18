"""The Fleet page on a large batch: a synthetic output folder of N videos (summary.csv in the batch's
own format, a manifest, a verdict store with verdicts on some videos) opened with AppTest.

    .venv/bin/python bench/fleet.py [--videos 1000]

Prints the time to open /fleet?dir= cold (summary parsed) and warm (cached by the file's mtime),
the parse alone, and the memory the page run allocated (tracemalloc peak) and the process's RSS.
Checks what it times: every row is in the table, sorted by flagged share.
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


if __name__ == "__main__":
    main()
