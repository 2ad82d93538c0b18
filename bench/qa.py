"""How good are the suggested thresholds and their intervals after 30 and 120 verdicts, in footage
of every kind? python bench/qa.py [--seeds 0-4] [--verdicts 30 120] [--kinds mild crowd ...]

Ground truth: the real pedestrian tracks that ship with motmetrics (TUD-Campus, TUD-Stadtmitte)
turned into seven kinds of footage and seen by a simulated detector (testkit/qa_sim.py): mild (the
tracks as they are), crowds with occlusion-driven misses, fast motion with camera jolts, small
far-away people, score-dependent misses clustered on hard objects with misplaced boxes and one-frame
ghosts, rare flicker in 3,000-frame videos, and a mix of those with scene cuts. ``--kinds traffic
sports static night`` is footage no constant was chosen on: made-up vehicle tracks on a highway and
a street (lanes at several depths, overtaking, occlusion), and testkit/held_out.py's pitch,
parking lot and night street. A frame is a true miss per
:func:`core.ground_truth.true_misses` with the mode's window.

For each video and verdict count: the two-phase plan (``ReviewPlan.draw``) picks the first phase,
an oracle answers from the truth, the plan draws its second phase from those answers, the oracle
answers again, ``suggest_thresholds`` proposes a pair (``--by-band``: the plan by band alone). Per kind, mode and count it prints:

* F1 ratio: the true F1 at the suggested pair / the best true F1 on the grid (mean, worst);
* how often the 90% intervals at the suggested pair hold the true precision and recall, and their
  mean widths; the same at the tutorial's fixed pair 0.8 / 0.6 (no selection involved);
* the share of the video the suggestion flags.

Goals (issue 20): at 30 verdicts mean ratio >= 0.95 and >= 0.85 on every video, intervals holding
both true values on >= 80% of videos, mean widths <= 0.40; at 120: mean >= 0.97, >= 80%, <= 0.25;
mild footage at 30: mean >= 0.95, worst >= 0.90.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from core.flicker import FlickerIndex, FlickerOptions
from core.ground_truth import FlagEvaluation, evaluate_flags, true_misses
from core.qa import DEFAULT_GRID, ReviewPlan, precision_recall, review_plan, suggest_thresholds
from testkit.qa_sim import FOOTAGE, HELD_OUT, SimulatedVideo, footage_videos

MODES = {"reference": FlickerOptions(), "improved": FlickerOptions.improved()}
FIXED_PAIR = (0.8, 0.6)


@dataclass(frozen=True)
class Case:
    name: str
    index: FlickerIndex
    truth: np.ndarray
    evaluation: FlagEvaluation


@dataclass(frozen=True)
class Outcome:
    """One threshold pair judged against the truth, with the estimate made from the verdicts."""

    f1_ratio: float
    covered: bool
    widths: tuple[float, float]
    flagged_share: float


def build_case(video: SimulatedVideo, options: FlickerOptions) -> Case:
    index = FlickerIndex.from_detections(video.detections, options)
    truth = true_misses(video.detections, video.ground_truth, max_gap=options.window)
    return Case(video.name, index, truth, evaluate_flags(index, truth))


def _inside(value: float, interval: tuple[float, float]) -> bool:
    return bool(np.isnan(value) or interval[0] - 1e-9 <= value <= interval[1] + 1e-9)


def judged(case: Case, pair: tuple[float, float], estimate) -> Outcome:
    row = case.evaluation.rows[DEFAULT_GRID.index(pair)]
    best = case.evaluation.best.f1
    covered = _inside(row.precision, estimate.precision_ci) and _inside(row.recall, estimate.recall_ci)
    widths = (estimate.precision_ci[1] - estimate.precision_ci[0], estimate.recall_ci[1] - estimate.recall_ci[0])
    return Outcome(row.f1 / best if best > 0 else 1.0, covered, widths, row.n_flagged / case.index.n_frames)


def reviewed(case: Case, n: int, plan_seed: int, steered: bool = True) -> tuple[dict[int, bool], tuple[float, float] | None]:
    """The verdicts an honest reviewer gives on the plan's ``n`` frames, and the pair it aimed at:
    the first phase, then the second drawn from the first's verdicts (or, not ``steered``, the
    plan by band alone)."""
    if not steered:
        return {f: bool(case.truth[f]) for f in review_plan(case.index, n, plan_seed)}, None
    verdicts: dict[int, bool] = {}
    while True:
        plan = ReviewPlan.draw(case.index, n, plan_seed, verdicts)
        verdicts |= {f: bool(case.truth[f]) for f in plan.frames if f not in verdicts}
        if len(plan.frames) == plan.plan_size:
            return verdicts, plan.focus


def outcomes(case: Case, n: int, plan_seed: int, steered: bool = True) -> tuple[Outcome, Outcome]:
    """At the suggested pair, and at the fixed pair, from the same ``n`` planned verdicts."""
    verdicts, focus = reviewed(case, n, plan_seed, steered)
    suggestion = suggest_thresholds(case.index, verdicts, focus=focus)
    fixed = precision_recall(case.index, verdicts, [FIXED_PAIR], focus=focus)[0]
    return judged(case, (suggestion.iou_track, suggestion.iou_assert), suggestion), judged(case, FIXED_PAIR, fixed)


@dataclass(frozen=True)
class Row:
    kind: str
    mode: str
    n: int
    suggested: list[Outcome]
    fixed: list[Outcome]

    def line(self) -> str:
        ratios = np.array([o.f1_ratio for o in self.suggested])
        widths = np.array([o.widths for o in self.suggested]).mean(axis=0)
        fixed_widths = np.array([o.widths for o in self.fixed]).mean(axis=0)
        share = np.mean([o.flagged_share for o in self.suggested])
        return (f"{self.kind:7s} {self.mode:9s} {self.n:4d} | {ratios.mean():5.3f} {ratios.min():5.3f} "
                f"| {self._held(self.suggested):>5s} {widths[0]:4.2f} {widths[1]:4.2f} "
                f"| {self._held(self.fixed):>5s} {fixed_widths[0]:4.2f} {fixed_widths[1]:4.2f} | {share:5.1%} | {self.verdict()}")

    @staticmethod
    def _held(outcomes: list[Outcome]) -> str:
        return f"{sum(o.covered for o in outcomes)}/{len(outcomes)}"

    def verdict(self) -> str:
        ratios = np.array([o.f1_ratio for o in self.suggested])
        widths = np.array([o.widths for o in self.suggested]).mean(axis=0)
        held = np.mean([o.covered for o in self.suggested])
        mean_goal, worst_goal, width_goal = (0.97, 0.0, 0.25) if self.n >= 120 else (0.95, 0.85, 0.40)
        if self.kind == "mild" and self.n < 120:
            worst_goal = 0.90
        failed = [name for name, ok in (("mean", ratios.mean() >= mean_goal), ("worst", ratios.min() >= worst_goal),
                                        ("held", held >= 0.8), ("width", bool(np.all(widths <= width_goal)))) if not ok]
        return "PASS" if not failed else "FAIL " + ",".join(failed)


def seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default=range(5), help="detector seeds, e.g. 0-4 (tuning) or 5-9 (held out)")
    parser.add_argument("--verdicts", type=int, nargs="+", default=[30, 120])
    parser.add_argument("--kinds", nargs="+", choices=FOOTAGE + HELD_OUT, default=list(FOOTAGE),
                        help="footage to simulate; 'traffic', 'sports', 'static' and 'night' were never tuned on")
    parser.add_argument("--plan-seed", type=int, default=0)
    parser.add_argument("--by-band", action="store_true", help="the plan by band alone (before the two phases), for comparison")
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"seeds {args.seeds.start}-{args.seeds.stop - 1}, plan seed {args.plan_seed}")
    print("kind    mode         n | F1 ratio    | suggested: held  wP   wR | at 0.8/0.6: held wP wR | flags | goals")
    rows = []
    for kind in args.kinds:
        videos = footage_videos(kind, args.seeds)
        for mode, options in MODES.items():
            cases = [build_case(video, options) for video in videos]
            for n in args.verdicts:
                pairs = [outcomes(case, n, args.plan_seed, not args.by_band) for case in cases]
                rows.append(Row(kind, mode, n, [p[0] for p in pairs], [p[1] for p in pairs]))
                print(rows[-1].line(), flush=True)
    passed = sum(row.verdict() == "PASS" for row in rows)
    print(f"\n{passed}/{len(rows)} rows meet their goals; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
