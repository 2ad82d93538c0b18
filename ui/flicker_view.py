"""The flicker view: the tab's detections seen through the settings on screen, as the review,
verdicts and export pages show them."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import streamlit as st

from core.detections import Detections
from core.flicker import FlickerIndex, FlickerResult
from core.settings import FlickerSettings
from ui import flags, resources, session


@dataclass(frozen=True, eq=False)
class FlickerView:
    video: session.LoadedVideo
    detections: Detections  # the boxes the assertion sees (above the minimum score)
    index: FlickerIndex  # threshold-free: the QA estimates evaluate it at other thresholds
    flicker: FlickerResult  # the index at the settings' thresholds
    settings: FlickerSettings  # everything the flags depend on: equal settings give equal flags

    @property
    def n_frames(self) -> int:
        return self.detections.n_frames

    @property
    def flagged_frames(self) -> np.ndarray:
        return np.flatnonzero(self.flicker.flag_array)


def current_view() -> FlickerView | None:
    """The detections and flicker result for the settings on screen (None before detection)."""
    review = session.review()
    if review is None or review.detections is None:
        return None
    all_boxes = review.detections
    settings = flags.on_screen(float(all_boxes.score.min()) if len(all_boxes) else 0.0)
    kept, index = resources.flicker_index(review.detection_id, settings, all_boxes)
    return FlickerView(review.video, kept, index, index.evaluate(settings.iou_track, settings.iou_assert), settings)


def require_view() -> FlickerView:
    """The current view, or a pointer to the load page and a stop."""
    view = current_view()
    if view is None:
        st.info("No detections yet: load a video and run detection first.")
        st.page_link("pages/load.py", label="Go to Load & detect", icon=":material/movie:")
        st.stop()
    return view


def flags_with(view: FlickerView, **toggles) -> np.ndarray | None:
    """The flags the current thresholds give with some options of the improved mode changed (to tell
    whether a toggle matters); None when the index is too large to keep another beside it."""
    if view.index.nbytes > resources.INDEX_CACHE_BYTES // 4:
        return None
    other = replace(view.settings, options=replace(view.settings.options, **toggles))
    review = session.review()
    _, index = resources.flicker_index(review.detection_id, other, review.detections)
    return index.evaluate(other.iou_track, other.iou_assert).flag_array
