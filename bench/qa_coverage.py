"""Are the 90% intervals honest away from the suggested pair? python bench/qa_coverage.py [--seeds 0-9]
[--plan-seeds 0] [--kinds ...] [--verdicts 30 120]

bench/qa.py judges the intervals at the suggested pair and at one fixed pair. This bench judges
them at eight fixed pairs spread over the grid (no selection involved), for precision and recall
apart, and says which way they miss: ``+k`` when the truth sat above the interval k times (the
estimate too low), ``-k`` below. A cell is the share of videos (x plan seeds) whose interval holds
the truth; ``*`` marks one under 0.80. With 20 videos a cell moves by about 0.05 from noise alone.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from qa import MODES, build_case, reviewed, seed_range  # bench/qa.py, beside this file
from core.qa import DEFAULT_GRID, precision_recall
from testkit.qa_sim import FOOTAGE, HELD_OUT, footage_videos

PAIRS = ((0.2, 0.2), (0.2, 0.5), (0.5, 0.3), (0.5, 0.5), (0.8, 0.6), (0.3, 0.8), (0.9, 0.9), (0.05, 0.95))
FLOOR = 0.80


def misses(truth: float, interval: tuple[float, float]) -> int:
    """0 when ``interval`` holds ``truth`` (or the truth is undefined), +1 above it, -1 below it."""
    if np.isnan(truth) or interval[0] - 1e-9 <= truth <= interval[1] + 1e-9:
        return 0
    return 1 if truth > interval[1] else -1


def cell(sides: list[int]) -> str:
    held = sides.count(0) / len(sides)
    above, below = sides.count(1), sides.count(-1)
    return (f"{held:4.2f}{'*' if held < FLOOR else ' '}" + (f"+{above}" if above else "") + (f"-{below}" if below else "")).ljust(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default=range(10))
    parser.add_argument("--plan-seeds", type=seed_range, default=range(1))
    parser.add_argument("--verdicts", type=int, nargs="+", default=[30, 120])
    parser.add_argument("--kinds", nargs="+", choices=FOOTAGE + HELD_OUT, default=list(FOOTAGE + HELD_OUT))
    args = parser.parse_args()
    start = time.perf_counter()
    header = "kind    mode         n metric    | " + " | ".join(f"{str(p):12s}" for p in PAIRS)
    print(f"seeds {args.seeds.start}-{args.seeds.stop - 1}, plan seeds {args.plan_seeds.start}-{args.plan_seeds.stop - 1}")
    print(header)
    low = total = 0
    for kind in args.kinds:
        videos = footage_videos(kind, args.seeds)
        for mode, options in MODES.items():
            cases = [build_case(video, options) for video in videos]
            for n in args.verdicts:
                sides = {"precision": [[] for _ in PAIRS], "recall": [[] for _ in PAIRS]}
                for case in cases:
                    for plan_seed in args.plan_seeds:
                        verdicts, focus = reviewed(case, n, plan_seed)
                        for k, (pair, estimate) in enumerate(zip(PAIRS, precision_recall(case.index, verdicts, PAIRS, focus))):
                            truth = case.evaluation.rows[DEFAULT_GRID.index(pair)]
                            sides["precision"][k].append(misses(truth.precision, estimate.precision_ci))
                            sides["recall"][k].append(misses(truth.recall, estimate.recall_ci))
                for metric, per_pair in sides.items():
                    print(f"{kind:7s} {mode:9s} {n:4d} {metric:9s} | " + " | ".join(cell(s) for s in per_pair), flush=True)
                    low += sum(s.count(0) / len(s) < FLOOR for s in per_pair)
                    total += len(per_pair)
    print(f"\n{low} of {total} cells under {FLOOR:.2f}; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
