"""How often each assertion is right, from the verdicts given on its flags.

Precision only: a verdict on a flagged frame says whether that flag was right. What an assertion
misses needs spot checks of frames it does not flag, which core/qa.py plans and weighs for
flicker (its threshold suggestion stays flicker's). Here every enabled assertion gets the same
plain figure, so they compare like with like on the Verdicts page: among the frames the assertion
flags *at the settings on screen* that have a verdict on *that assertion* (unsure left out), the
share judged right, with a 90% Wilson interval. It estimates the precision over all flagged frames
without bias when the judged ones are a fair sample of them (reviewed in order with J/K, or at
random), not when a reviewer picked the obvious ones. Verdicts on frames a retune no longer flags
are kept in the store and count again when the frame is flagged again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from core.assertions import ASSERTIONS
from core.qa import _wilson
from core.verdicts import VerdictStore


@dataclass(frozen=True)
class AssertionPrecision:
    assertion: str  # flicker, ghost or class-flip
    flagged: int  # frames it flags at the current settings
    right: int  # of those, judged right ("miss": the detector erred as the assertion says)
    wrong: int  # judged false alarms
    unsure: int  # judged unsure (left out of the figure)
    low: float  # 90% Wilson interval of the precision (0 .. 1 without verdicts)
    high: float

    @property
    def judged(self) -> int:
        """Flagged frames with a verdict that counts (right or wrong)."""
        return self.right + self.wrong

    @property
    def precision(self) -> float | None:
        """Share of the judged flagged frames that were right; None before any verdict counts."""
        return self.right / self.judged if self.judged else None


def precision_per_assertion(store: VerdictStore, video: str, flags: Mapping[str, np.ndarray]) -> list[AssertionPrecision]:
    """Precision of each assertion in ``flags`` (assertion -> its per-frame flags at the settings on
    screen, e.g. ``FlickerView.assertion_flags``) on ``video`` (the content key the verdicts are
    stored under), from the verdicts given on that assertion (``VerdictStore.truth``: a frame's
    verdict, or its boxes' for flicker), in canonical order."""
    whole_frame = store.by_assertion(video)
    return [precision_of(name, flags[name], store.truth(video, name),
                         [frame for frame, verdict in whole_frame.get(name, {}).items() if verdict == "unsure"])
            for name in ASSERTIONS if name in flags]


def precision_of(assertion: str, flags: np.ndarray, truth: Mapping[int, bool],
                 unsure: Iterable[int] = ()) -> AssertionPrecision:
    """One assertion's precision from its flags, its truths (``{frame: flag right?}``) and the
    frames judged unsure."""
    flags = np.asarray(flags, bool)

    def flagged(frame: int) -> bool:
        return 0 <= frame < len(flags) and bool(flags[frame])

    judged = [right for frame, right in truth.items() if flagged(frame)]
    right, wrong = judged.count(True), judged.count(False)
    low, high = _wilson(np.array(right / len(judged) if judged else 0.0), np.array(float(len(judged))))
    return AssertionPrecision(assertion, int(flags.sum()), right, wrong,
                              sum(1 for frame in unsure if flagged(frame) and frame not in truth), float(low), float(high))
