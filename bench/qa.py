"""How good are suggested thresholds and their intervals after 30 verdicts? python bench/qa.py

Ground truth: the real pedestrian tracks that ship with motmetrics (TUD-Campus, TUD-Stadtmitte)
seen by a simulated detector (jitter, single-frame drops, longer gaps, false boxes and blinking
false tracks; testkit/qa_sim.py), 5 seeds each: 10 videos per flicker mode. A frame is a true miss
per :func:`core.qa.true_misses` with the mode's window (single-frame misses for reference).

For each video: ``review_plan`` picks 30 frames, an oracle answers from the truth, and
``suggest_thresholds`` proposes thresholds. Printed per video and on average:

* F1 ratio: the true F1 at the suggested thresholds / the best true F1 on the grid;
* whether the 90% intervals contain the true precision and recall there, and their widths;
* the same for the tutorial thresholds (0.9/0.6 and 0.8/0.6), estimated from the same verdicts;
* the same when the verdicts are instead the first (up to 30) frames flagged at 0.8/0.6, as a user
  reviewing flagged frames in order would give them;
* the plan over 10 seeds (robustness), and optionally (--stress) 1500-frame videos with rare misses.

Goals: F1 ratio >= 0.95 on average and >= 0.90 on every video; intervals containing both true
values on >= 8 videos in 10 while <= 0.35 wide on average.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from core.flicker import FlickerIndex, FlickerOptions
from core.qa import DEFAULT_GRID, FlagEvaluation, evaluate_flags, precision_recall, review_plan, suggest_thresholds, true_misses
from testkit.qa_sim import SimulatedVideo, simulated_videos

TUTORIAL_PAIRS = ((0.9, 0.6), (0.8, 0.6))


@dataclass(frozen=True)
class Case:
    name: str
    index: FlickerIndex
    truth: np.ndarray
    evaluation: FlagEvaluation


@dataclass(frozen=True)
class Outcome:
    """One threshold pair judged against the truth, with the estimate made from the verdicts."""

    pair: tuple[float, float]
    f1_ratio: float
    precision: float
    precision_ci: tuple[float, float]
    recall: float
    recall_ci: tuple[float, float]

    @property
    def covered(self) -> bool:
        return _inside(self.precision, self.precision_ci) and _inside(self.recall, self.recall_ci)

    @property
    def widths(self) -> tuple[float, float]:
        return self.precision_ci[1] - self.precision_ci[0], self.recall_ci[1] - self.recall_ci[0]


def _inside(value: float, interval: tuple[float, float]) -> bool:
    return bool(np.isnan(value) or interval[0] - 1e-9 <= value <= interval[1] + 1e-9)


def build_case(video: SimulatedVideo, options: FlickerOptions) -> Case:
    index = FlickerIndex.from_detections(video.detections, options)
    truth = true_misses(video.detections, video.ground_truth, max_gap=options.window)
    return Case(video.name, index, truth, evaluate_flags(index, truth))


def verdicts_for(case: Case, frames: list[int]) -> dict[int, bool]:
    return {f: bool(case.truth[f]) for f in frames}


def judged(case: Case, pair: tuple[float, float], estimate) -> Outcome:
    row = case.evaluation.rows[DEFAULT_GRID.index(pair)]
    return Outcome(pair, row.f1 / case.evaluation.best.f1, row.precision, estimate.precision_ci, row.recall, estimate.recall_ci)


def suggested(case: Case, frames: list[int]) -> Outcome:
    suggestion = suggest_thresholds(case.index, verdicts_for(case, frames))
    return judged(case, (suggestion.iou_track, suggestion.iou_assert), suggestion)


def at_pairs(case: Case, frames: list[int], pairs) -> list[Outcome]:
    rows = precision_recall(case.index, verdicts_for(case, frames), pairs)
    return [judged(case, pair, row) for pair, row in zip(pairs, rows)]


def flagged_in_order(case: Case, n: int) -> list[int]:
    return np.flatnonzero(case.index.evaluate(0.8, 0.6).flag_array)[:n].tolist()


def summary(label: str, outcomes: list[Outcome]) -> str:
    ratios = np.array([o.f1_ratio for o in outcomes])
    widths = np.array([o.widths for o in outcomes])
    covered = sum(o.covered for o in outcomes)
    return (f"  {label:34s} F1 ratio mean {ratios.mean():.3f} min {ratios.min():.3f} (<0.90: {np.sum(ratios < 0.9)})"
            f" | intervals contain both {covered}/{len(outcomes)} | width P {widths[:, 0].mean():.2f} R {widths[:, 1].mean():.2f}")


def video_line(case: Case, outcome: Outcome, estimate_p: float, estimate_r: float) -> str:
    best = case.evaluation.best
    p_lo, p_hi = outcome.precision_ci
    r_lo, r_hi = outcome.recall_ci
    return (f"  {case.name:13s} {case.index.n_frames:4d} fr {case.evaluation.n_true_misses:3d} misses"
            f" | best {best.iou_track:.2f}/{best.iou_assert:.2f} F1 {best.f1:.2f}"
            f" | suggested {outcome.pair[0]:.2f}/{outcome.pair[1]:.2f} ratio {outcome.f1_ratio:.3f}"
            f" | P {outcome.precision:.2f} est {estimate_p:.2f} [{p_lo:.2f}, {p_hi:.2f}]"
            f" | R {outcome.recall:.2f} est {estimate_r:.2f} [{r_lo:.2f}, {r_hi:.2f}] {'ok' if outcome.covered else 'MISSED'}")


def goals(outcomes: list[Outcome]) -> str:
    ratios = np.array([o.f1_ratio for o in outcomes])
    widths = np.array([o.widths for o in outcomes]).mean(axis=0)
    covered = sum(o.covered for o in outcomes)
    checks = {
        "F1 ratio mean >= 0.95": ratios.mean() >= 0.95,
        "every video >= 0.90": ratios.min() >= 0.90,
        "intervals contain truth on >= 8 in 10": covered >= 0.8 * len(outcomes),
        "mean widths <= 0.35": bool(np.all(widths <= 0.35)),
    }
    return "  goals: " + ", ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in checks.items())


def report_mode(mode: str, options: FlickerOptions, videos: list[SimulatedVideo], n: int, plan_seed: int, seeds: int) -> None:
    cases = [build_case(video, options) for video in videos]
    print(f"\n== {mode} ({len(cases)} videos, {n} verdicts from review_plan(seed={plan_seed}))")
    outcomes = []
    for case in cases:
        frames = review_plan(case.index, n, plan_seed)
        suggestion = suggest_thresholds(case.index, verdicts_for(case, frames))
        outcome = judged(case, (suggestion.iou_track, suggestion.iou_assert), suggestion)
        outcomes.append(outcome)
        print(video_line(case, outcome, suggestion.precision, suggestion.recall))
    print(summary("suggested thresholds", outcomes))
    print(goals(outcomes))
    for pair in TUTORIAL_PAIRS:
        print(summary(f"tutorial {pair[0]}/{pair[1]}, same verdicts", [at_pairs(c, review_plan(c.index, n, plan_seed), [pair])[0]
                                                                   for c in cases]))
    print(summary(f"first <={n} flagged@0.8/0.6 instead", [suggested(c, flagged_in_order(c, n)) for c in cases]))
    if seeds > 1:
        print(summary(f"plan seeds 0..{seeds - 1} (x{len(cases)} videos)",
                      [suggested(c, review_plan(c.index, n, s)) for c in cases for s in range(seeds)]))


def report_stress(n: int, seeds: int) -> None:
    videos = simulated_videos(range(3), stress=True)
    print(f"\n== stress: {len(videos)} videos of 1500 frames, misses on ~3% of frames, {n} verdicts, plan seeds 0..{seeds - 1}")
    for mode, options in (("reference", FlickerOptions()), ("improved", FlickerOptions.improved())):
        cases = [build_case(video, options) for video in videos]
        print(summary(mode, [suggested(c, review_plan(c.index, n, s)) for c in cases for s in range(seeds)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=30, help="verdicts per video (default 30)")
    parser.add_argument("--plan-seed", type=int, default=0, help="seed of the review plan in the per-video table")
    parser.add_argument("--seeds", type=int, default=10, help="plan seeds for the robustness line (default 10)")
    parser.add_argument("--stress", action="store_true", help="also 1500-frame videos with rare misses")
    args = parser.parse_args()
    start = time.perf_counter()
    videos = simulated_videos(range(5))
    for mode, options in (("reference", FlickerOptions()), ("improved", FlickerOptions.improved())):
        report_mode(mode, options, videos, args.verdicts, args.plan_seed, args.seeds)
    if args.stress:
        report_stress(args.verdicts, min(args.seeds, 5))
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
