"""Where is F1 lost: in the estimates' spread, or in their bias? python bench/qa_loss.py [--seeds 0-9]
[--kinds fast hard ...] [--verdicts 30 120] [--draws 20]

bench/qa.py scores the suggestion. This bench says how much better it could be with the same
verdicts. For each video it runs the same two-phase plan and oracle as bench/qa.py, then compares:

* real: F1 at the suggested pair / the best true F1 on the grid (mean, worst), as in bench/qa.py;
* ideal: the same ratio when the suggestion's own rule (core.qa._suggestion_score: lower bound,
  plateau, support) is applied to an *unbiased* estimate with the estimator's own spread: the true
  F1 at every pair plus Gaussian noise of that pair's estimated standard error, drawn independently
  per pair (more harmful than the real, correlated noise), mean over ``--draws`` draws per video;
  pairs without an estimate are left out, as the real rule leaves them, and so are videos without
  a true miss (no ratio to judge);
* z best / z sugg: the median over videos of (estimated F1 - true F1) / standard error at the truly
  best pair and at the suggested pair. An unbiased estimator gives about 0 at the best pair; the
  suggested pair sits above 0 for any estimator (it was picked for looking good);
* at the truly best pair, the mean over videos of the estimated minus the true count of flagged
  frames that miss an object, split by whether the pair's cell of a stratum holds a verdict
  ("TP err: cells with / without verdicts"), and the same for the misses among the frames it does
  not flag ("missed err"). Frames in bands without a verdict are left out of both sides.

A gap between real and ideal with z best well below 0 says the shortfall is bias against the best
pairs, which more verdicts alone cure slowly; real close to ideal says it is spread, which only more
verdicts (or a sharper design) cure.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from qa import MODES, build_case, reviewed, seed_range  # bench/qa.py, beside this file
from core import qa
from testkit.qa_sim import FOOTAGE, HELD_OUT, footage_videos


def count_errors(case, flags: np.ndarray, sample, best: int) -> tuple[float, float, float]:
    """At pair ``best``: estimated minus true misses among its flagged frames, in cells with verdicts
    and in cells without, and among the frames it does not flag (strata with verdicts only)."""
    cells = qa._Cells.of(flags, sample)
    rate_a, rate_b = cells.rates(sample)
    flagged, truth = flags[best].astype(bool), case.truth.astype(np.float64)
    strata = np.arange(len(sample.sizes))[:, None] == sample.of_frame[None, :]  # (H, frames)
    true_a, true_b = (strata & flagged) @ truth, (strata & ~flagged) @ truth
    est_a = cells.hits_a[best] + (cells.size_a[best] - cells.reviewed_a[best]) * rate_a[best]
    est_b = cells.hits_b[best] + (cells.size_b[best] - cells.reviewed_b[best]) * rate_b[best]
    judged = cells.reviewed_a[best] > 0
    error_a = est_a - true_a
    return float(error_a[judged].sum()), float(error_a[~judged].sum()), float((est_b - true_b).sum())


def losses(case, n: int, draws: int, rng: np.random.Generator) -> tuple[float, ...]:
    """(real ratio, ideal ratio, z at the best pair, z at the suggested pair, then count_errors) for one video."""
    verdicts, focus = reviewed(case, n, plan_seed=0)
    flags = qa.flag_matrix(case.index, qa.DEFAULT_GRID)
    sample = qa._post_stratify(flags, verdicts, focus)
    estimates = qa._estimates(flags, sample, qa.DEFAULT_GRID)
    supported = qa._supported(flags, sample)
    true_f1 = np.nan_to_num(np.array([row.f1 for row in case.evaluation.rows]))
    best = int(np.argmax(true_f1))
    if true_f1[best] <= 0:  # no true miss: no ratio to judge
        return (np.nan,) * 7
    suggestion = qa.suggest_thresholds(case.index, verdicts, focus=focus)
    suggested = qa.DEFAULT_GRID.index((suggestion.iou_track, suggestion.iou_assert))
    usable = supported & np.isfinite(estimates.f1_se)  # the real rule never picks a pair without an estimate either
    se = np.where(usable, estimates.f1_se, 0.0)
    ideal = []
    for _ in range(draws):
        noisy = true_f1 + rng.normal(size=len(true_f1)) * se
        pick = qa.best_index(qa._suggestion_score(noisy, se, usable), qa.DEFAULT_GRID, qa.APP_THRESHOLDS)
        ideal.append(true_f1[pick] / true_f1[best])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (estimates.f1 - true_f1) / estimates.f1_se  # NaN where F1 has no estimate: left out of the medians
    return (true_f1[suggested] / true_f1[best], float(np.mean(ideal)), float(z[best]), float(z[suggested]),
            *count_errors(case, flags, sample, best))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default=range(10))
    parser.add_argument("--verdicts", type=int, nargs="+", default=[30, 120])
    parser.add_argument("--kinds", nargs="+", choices=FOOTAGE + HELD_OUT, default=list(FOOTAGE))
    parser.add_argument("--draws", type=int, default=20, help="noise draws per video for the ideal estimator")
    args = parser.parse_args()
    start, rng = time.perf_counter(), np.random.default_rng(0)
    print(f"seeds {args.seeds.start}-{args.seeds.stop - 1}, plan seed 0")
    print("kind    mode         n | real: mean worst | ideal: mean worst | z best  z sugg | TP err: cells with / without verdicts"
          " | missed err")
    for kind in args.kinds:
        videos = footage_videos(kind, args.seeds)
        for mode, options in MODES.items():
            cases = [build_case(video, options) for video in videos]
            for n in args.verdicts:
                rows = np.array([losses(case, n, args.draws, rng) for case in cases])
                rows = rows[np.isfinite(rows[:, 0])]  # videos without a true miss have no ratio
                z = np.nanmedian(np.where(np.isfinite(rows[:, 2:4]), rows[:, 2:4], np.nan), axis=0)
                errors = rows[:, 4:].mean(axis=0)
                print(f"{kind:7s} {mode:9s} {n:4d} | {rows[:, 0].mean():10.3f} {rows[:, 0].min():5.3f} "
                      f"| {rows[:, 1].mean():11.3f} {rows[:, 1].min():5.3f} | {z[0]:6.2f} {z[1]:6.2f} "
                      f"| {errors[0]:+21.1f} {errors[1]:+8.1f} | {errors[2]:+10.1f}", flush=True)
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
