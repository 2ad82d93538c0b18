"""Which flags: the settings widgets of the review (their keys and defaults) and the
:class:`~core.settings.FlickerSettings` they stand for.

The values live under widget keys (``persist_state="session"``), so they survive page switches;
this module only names the keys, gives them their first values and reads them as one settings
object.
"""
from __future__ import annotations

import streamlit as st

from core.assertions import ASSERTIONS, FLICKER
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, DEFAULT_MODE, FlickerOptions
from core.settings import FlickerSettings

IOU_TRACK = "iou_track"
IOU_ASSERT = "iou_assert"
MIN_SCORE = "min_score"
MODE = "mode"
CLASS_AWARE = "class_aware"
ONE_TO_ONE = "one_to_one"
WINDOW = "window"
EMPTY_MEDIAN = "empty_median"
SIBLINGS = "assertions"  # the assertions beside flicker (ghost, class-flip): ``--assertions`` of the CLI
SIBLING_CHOICES = tuple(name for name in ASSERTIONS if name != FLICKER)

_IMPROVED = FlickerOptions.improved()  # the improved mode's toggles start at its defaults
DEFAULTS = {IOU_TRACK: DEFAULT_IOU_TRACK, IOU_ASSERT: DEFAULT_IOU_ASSERT, MODE: DEFAULT_MODE,
            CLASS_AWARE: _IMPROVED.class_aware, ONE_TO_ONE: _IMPROVED.one_to_one, WINDOW: _IMPROVED.window,
            EMPTY_MEDIAN: _IMPROVED.empty_window_median, SIBLINGS: []}  # flicker alone, as --assertions defaults
WINDOW_RANGE = (1, 5)


def init_defaults() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)


def on_screen(detection_floor: float) -> FlickerSettings:
    """The settings the widgets show; the minimum score is ``detection_floor`` until it is set."""
    mode = _shown(MODE)
    toggles = {} if mode == "reference" else {  # reference mode takes none
        "class_aware": _shown(CLASS_AWARE), "one_to_one": _shown(ONE_TO_ONE), "window": int(_shown(WINDOW)),
        "empty_window_median": _shown(EMPTY_MEDIAN)}
    return FlickerSettings.of_mode(mode, float(_shown(IOU_TRACK)), float(_shown(IOU_ASSERT)),
                                   float(st.session_state.get(MIN_SCORE, detection_floor)), assertions(), **toggles)


def assertions() -> tuple[str, ...]:
    """Flicker and the siblings chosen on screen, in canonical order (anything else is left out)."""
    chosen = set(_shown(SIBLINGS) or ())
    return tuple(name for name in ASSERTIONS if name == FLICKER or name in chosen)


def use_assertions(names) -> None:
    """Put a choice of assertions (``FlickerSettings.assertions``, a batch's or a link's) on the widget."""
    st.session_state[SIBLINGS] = [name for name in SIBLING_CHOICES if name in set(names)]


def _shown(key: str):
    return st.session_state.get(key, DEFAULTS[key])


def start_at_floor(conf: float) -> None:
    """New detections: the minimum score starts at the floor they were detected with."""
    st.session_state[MIN_SCORE] = conf


def use_thresholds(iou_track: float, iou_assert: float) -> None:
    """Move the threshold sliders (a button callback: "use suggested thresholds")."""
    st.session_state[IOU_TRACK] = round(float(iou_track), 2)
    st.session_state[IOU_ASSERT] = round(float(iou_assert), 2)
