"""Session-state keys and the app's shared, cached resources, named in one place.

Per-tab state lives in ``st.session_state`` (so two browser tabs never interfere); expensive,
immutable things (frame readers, flicker indexes, loaded models) are ``st.cache_resource`` and
shared between tabs, which is safe because readers lock and indexes are read-only.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from core.detections import Detections
from core.flicker import FlickerIndex, FlickerOptions, FlickerResult
from core.review import ReviewStore
from core.proxy import proxy_path, reader_for_display
from core.video import FrameReader, VideoInfo

# per-tab values set by code
VIDEO = "video"  # LoadedVideo
DETECTIONS = "detections"  # Detections of the loaded video
DETECTION_ID = "detection_id"  # names the video + model + floor the detections came from
FRAME = "frame"  # the frame on screen
EXPORT_RESULT = "export_result"

# widget keys (values persist across page switches with persist_state="session")
IOU_TRACK = "iou_track"
IOU_ASSERT = "iou_assert"
MIN_SCORE = "min_score"
MODE = "mode"
CLASS_AWARE = "class_aware"
ONE_TO_ONE = "one_to_one"
WINDOW = "window"
EMPTY_MEDIAN = "empty_median"
FRAME_SLIDER = "frame_slider"
JUMP_TO = "jump_to"
TIMELINE = "timeline"
EMBEDDING_PLOT = "embedding_plot"
DIVERSITY = "diversity"  # selection strengths, shared by the local and the scheduled selection
LEAST_CONFIDENCE = "least_confidence"
FLICKERING_STRENGTH = "flickering_strength"
SELECTED = "selected_frames"  # (settings, frame indices) of the last local selection
DETECTOR_SPEC = "detector_spec"  # (weights, device) of the model behind the detections

DEFAULTS = {IOU_TRACK: 0.8, IOU_ASSERT: 0.6, MODE: "reference", CLASS_AWARE: True, ONE_TO_ONE: True, WINDOW: 2,
            EMPTY_MEDIAN: True}


@dataclass(frozen=True)
class LoadedVideo:
    info: VideoInfo
    relpath: str  # name used in Lightly file names (relative to the input datasource root)


def data_dir() -> Path:
    return Path(os.environ.get("FLICKER_DATA_DIR", Path.home() / ".local" / "share" / "flicker-review"))


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded file under the data folder, named by content so re-uploads are free."""
    digest = hashlib.blake2b(data, digest_size=8).hexdigest()
    target = data_dir() / "uploads" / digest / Path(name).name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return target


@st.cache_resource(show_spinner=False, max_entries=8)
def _display_reader(fingerprint: str, proxy_ready: bool, _info: VideoInfo) -> FrameReader:
    return reader_for_display(_info)


def frame_reader(info: VideoInfo) -> FrameReader:
    """One reader per video, shared by every tab; it moves to the seek proxy once that is built."""
    return _display_reader(info.fingerprint, proxy_path(info).is_file(), info)


@st.cache_data(show_spinner=False, max_entries=512)
def thumbnail(fingerprint: str, frame: int, _info: VideoInfo) -> np.ndarray:
    """A quarter-size frame for the selection gallery: decoded once, not on every rerun."""
    return np.ascontiguousarray(frame_reader(_info).get(frame)[::4, ::4])


@st.cache_resource(show_spinner=False)
def review_store() -> ReviewStore:
    return ReviewStore()


@st.cache_resource(show_spinner=False, max_entries=32)
def flicker_index(detection_id: str, min_score: float, options: FlickerOptions,
                  _detections: Detections) -> tuple[Detections, FlickerIndex]:
    """The detections above ``min_score`` and their index, built once per detections x score floor x
    options; every threshold move is then an evaluate()."""
    kept = _detections.above(min_score)
    return kept, FlickerIndex.from_detections(kept, options)


def init_defaults() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)


def options() -> FlickerOptions:
    if st.session_state.get(MODE, "reference") == "reference":
        return FlickerOptions()
    return FlickerOptions.improved(
        class_aware=st.session_state.get(CLASS_AWARE, True),
        one_to_one=st.session_state.get(ONE_TO_ONE, True),
        window=int(st.session_state.get(WINDOW, 2)),
        empty_window_median=st.session_state.get(EMPTY_MEDIAN, True),
    )


@dataclass(frozen=True)
class Review:
    """Everything the review and export pages show for the current settings."""

    video: LoadedVideo
    detections: Detections  # above the minimum score
    flicker: FlickerResult
    min_score: float
    iou_track: float
    iou_assert: float
    options: FlickerOptions

    @property
    def flagged_frames(self) -> np.ndarray:
        return np.flatnonzero(self.flicker.flag_array)


def current_review() -> Review | None:
    """The detections and flicker result for the thresholds on screen (None before detection)."""
    video, detections = st.session_state.get(VIDEO), st.session_state.get(DETECTIONS)
    if video is None or detections is None:
        return None
    min_score = float(st.session_state.get(MIN_SCORE, float(detections.score.min()) if len(detections) else 0.0))
    chosen = options()
    kept, index = flicker_index(st.session_state[DETECTION_ID], min_score, chosen, detections)
    iou_track = float(st.session_state.get(IOU_TRACK, DEFAULTS[IOU_TRACK]))
    iou_assert = float(st.session_state.get(IOU_ASSERT, DEFAULTS[IOU_ASSERT]))
    return Review(video, kept, index.evaluate(iou_track, iou_assert), min_score, iou_track, iou_assert, chosen)


def require_review() -> Review:
    """The current review, or a pointer to the load page and a stop."""
    review = current_review()
    if review is None:
        st.info("No detections yet: load a video and run detection first.")
        st.page_link("pages/load.py", label="Go to Load & detect", icon=":material/movie:")
        st.stop()
    return review


@st.cache_resource(show_spinner="Loading model...", max_entries=4)
def detector(weights: str | None, device: str):
    """Loaded models are shared by every tab (loading a .pt takes seconds)."""
    from core.detect import load_detector

    return load_detector(weights, device=device)


@st.cache_resource(show_spinner="Computing frame embeddings...", max_entries=4)
def embeddings(fingerprint: str, detector_spec: tuple | None, _info: VideoInfo):
    """Per-frame embeddings (the detector's own features when it has them) and their 2D map,
    once per video and model."""
    from core.selection import embedding_map, frame_embeddings

    model = detector(*detector_spec) if detector_spec else None
    vectors = frame_embeddings(_info.path, detector=model)
    return vectors, embedding_map(vectors)
