"""The flicker view: the tab's detections seen through the settings on screen, as the review,
verdicts and export pages show them: flicker's result and, when ghost or class flip are enabled,
theirs (their :class:`~core.assertions.NeighbourIndex` is built once per detections and score
floor, so a threshold move is a comparison per frame for them too)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import streamlit as st

from core.assertions import CLASS_FLIP, FLICKER, GHOST, NeighbourIndex
from core.detections import Detections
from core.flicker import FlickerIndex, FlickerResult
from core.render import FLAGGED_COLOR
from core.settings import FlickerSettings
from core.words import markdown_literal
from ui import flags, resources, session
from ui.boundary import error_boundary


@dataclass(frozen=True, eq=False)
class FlickerView:
    video: session.LoadedVideo
    detections: Detections  # the boxes the assertion sees (above the minimum score)
    index: FlickerIndex  # threshold-free: the QA estimates evaluate it at other thresholds
    flicker: FlickerResult  # the index at the settings' thresholds
    settings: FlickerSettings  # everything the flags depend on: equal settings give equal flags
    neighbours: NeighbourIndex | None = None  # ghost and class flip's index (None: flicker alone)

    @property
    def n_frames(self) -> int:
        return self.detections.n_frames

    @property
    def flagged_frames(self) -> np.ndarray:
        return np.flatnonzero(self.flicker.flag_array)

    @property
    def assertions(self) -> tuple[str, ...]:
        """The enabled assertions, flicker first (canonical order)."""
        return self.settings.assertions

    @property
    def assertion_flags(self) -> dict[str, np.ndarray]:
        """Per enabled assertion, its flags per frame at the settings on screen."""
        flags = {FLICKER: self.flicker.flag_array}
        for name in self.assertions:
            if name != FLICKER:
                flags[name] = self.neighbours.flags(name, self.settings.iou_track)
        return flags

    def ghost_rows(self) -> np.ndarray:
        """Rows of :attr:`detections` that make their frame a ghost frame (none when ghost is off)."""
        if GHOST not in self.assertions:
            return np.empty(0, np.int64)
        return self.neighbours.ghost_boxes(self.settings.iou_track)

    def flip_rows(self) -> np.ndarray:
        """Rows of :attr:`detections` whose class flips (``neighbours.neighbour_class``: the class
        both neighbours agree on); none when class flip is off."""
        if CLASS_FLIP not in self.assertions:
            return np.empty(0, np.int64)
        return self.neighbours.flipped_boxes(self.settings.iou_track)


def current_view() -> FlickerView | None:
    """The detections and flicker result for the settings on screen (None before detection)."""
    review = session.review()
    if review is None or review.detections is None:
        return None
    all_boxes = review.detections
    settings = flags.on_screen(float(all_boxes.score.min()) if len(all_boxes) else 0.0)
    kept, index = resources.flicker_index(review.detection_id, settings, all_boxes)
    neighbours = _neighbour_index(review.detection_id, settings.min_score, kept) if len(settings.assertions) > 1 else None
    return FlickerView(review.video, kept, index, index.evaluate(settings.iou_track, settings.iou_assert), settings,
                       neighbours)


@st.cache_resource(show_spinner=False, max_entries=8)
def _neighbour_index(detection_id: str, min_score: float, _kept: Detections) -> NeighbourIndex:
    """Ghost and class flip's threshold-free index of the kept boxes, once per detections and score
    floor (shared by every tab; flicker's options do not change it): a slider step only compares."""
    return NeighbourIndex.from_detections(_kept)


def assertion_label(name: str) -> str:
    """How the app names an assertion: "Flicker", "Ghost", "Class flip"."""
    return name.replace("-", " ").capitalize()


ASSERTION_COLORS = {FLICKER: FLAGGED_COLOR, GHOST: (0, 160, 190), CLASS_FLIP: (190, 60, 190)}  # lanes, drawn boxes
ASSERTION_HELP = {FLICKER: "an object seen in the frames around one, missed in it",
                  GHOST: "a box that no box in the frame before or after overlaps: there for one frame only",
                  CLASS_FLIP: "a box whose matches in the frames before and after share another class"}


def require_view() -> FlickerView:
    """The current view, or a pointer to the load page and a stop (also where the boxes under
    review cannot be indexed: one line, not a traceback)."""
    view, failed = None, True
    with error_boundary("These boxes cannot be reviewed"):
        view, failed = current_view(), False
    if view is None:
        from ui.url import names_a_review  # here: ui.url imports this module

        linked = names_a_review()
        if not failed:  # else the error above says why
            loaded = session.loaded_video()
            st.info("The review this link names is not open here (above: why); Load & detect opens videos and runs "
                    "detection." if linked else "No detections yet: load a video and run detection first." if loaded is None
                    else f"{markdown_literal(loaded.relpath)} is loaded, without detections yet: run detection on Load & detect.")
        if batch := st.query_params.get("batch"):  # a Fleet row that cannot be opened: back to its batch first
            st.page_link("pages/fleet.py", label="Back to the batch", icon=":material/view_list:", query_params={"dir": batch})
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
