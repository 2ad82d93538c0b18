"""Session state, cached resources and the error boundary, named in one place.

Pages never write session keys directly: they call the functions here (``set_video``,
``use_detections``, ``go_to``, ...). Per-tab state lives in ``st.session_state`` (so two browser
tabs never interfere); expensive, immutable things (frame readers, flicker indexes, loaded models)
are ``st.cache_resource`` and shared between tabs, which is safe because readers lock and indexes
are frozen.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import streamlit as st

from core import paths
from core.detections import Detections
from core.errors import UserError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, FlickerIndex, FlickerOptions, FlickerResult
from core.proxy import proxy_path, reader_for_display
from core.verdicts import VerdictStore
from core.video import FrameReader, VideoInfo, probe

# per-tab values set by code
VIDEO = "video"  # LoadedVideo
DETECTIONS = "detections"  # Detections of the loaded video
DETECTION_ID = "detection_id"  # names the video + model + floor the detections came from
DETECTOR_SPEC = "detector_spec"  # (weights, device) of the model behind the detections
FRAME = "frame"  # the frame on screen
EXPORT_RESULT = "export_result"
SELECTION = "local_selection"  # VideoSelection of the last local selection run
_SAMPLE_OFFERED = "_sample_offered"

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
FLICKER_STRENGTH = "flicker_strength"

_IMPROVED = FlickerOptions.improved()
DEFAULTS = {IOU_TRACK: DEFAULT_IOU_TRACK, IOU_ASSERT: DEFAULT_IOU_ASSERT, MODE: "reference",
            CLASS_AWARE: _IMPROVED.class_aware, ONE_TO_ONE: _IMPROVED.one_to_one, WINDOW: _IMPROVED.window,
            EMPTY_MEDIAN: _IMPROVED.empty_window_median}


@dataclass(frozen=True)
class LoadedVideo:
    info: VideoInfo
    relpath: str  # name used in Lightly file names (relative to the input datasource root)


@contextmanager
def error_boundary(action: str = "") -> Iterator[None]:
    """Show a user error as one red line (prefixed with what was being done) instead of a
    traceback; the rest of the page keeps working."""
    try:
        yield
    except UserError as exc:
        st.error(f"{action}: {exc}" if action else str(exc))
    except OSError as exc:
        st.error(f"{action + ': ' if action else ''}{exc.strerror or exc}")
    except MemoryError:
        st.error("Out of memory: try a smaller model, a smaller image size or a shorter video")


def init_defaults() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded file under the data folder, named by content so re-uploads are free."""
    import hashlib

    digest = hashlib.blake2b(data, digest_size=8).hexdigest()
    target = paths.data_dir() / "uploads" / digest / Path(name).name
    if not target.is_file():
        paths.write_atomic(target, data)
    return target


def set_video(path: Path, relpath: str | None = None) -> bool:
    """Probe and open a video for review (warnings shown); forgets the previous video's results.
    Returns False (with the error shown) when the file cannot be used."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = None
        with error_boundary():
            info = probe(path)
    for warning in caught:
        st.warning(str(warning.message))
    if info is None:
        return False
    st.session_state[VIDEO] = LoadedVideo(info, relpath or info.path.name)
    for key in (DETECTIONS, DETECTION_ID, EXPORT_RESULT, SELECTION):
        st.session_state.pop(key, None)
    st.session_state[FRAME] = 0
    return True


def open_sample_once() -> None:
    """``streamlit run app.py -- --sample``: the tab opens with the bundled sample loaded (once, so
    loading another video sticks)."""
    if st.session_state.get(VIDEO) is None and not st.session_state.get(_SAMPLE_OFFERED):
        st.session_state[_SAMPLE_OFFERED] = True
        set_video(paths.SAMPLE_VIDEO)


def loaded_video() -> LoadedVideo | None:
    return st.session_state.get(VIDEO)


def use_detections(detections: Detections, detection_id: str, conf: float, detector_spec: tuple) -> None:
    st.session_state[DETECTIONS] = detections
    st.session_state[DETECTOR_SPEC] = detector_spec
    st.session_state[DETECTION_ID] = detection_id
    st.session_state[MIN_SCORE] = conf
    st.session_state[FRAME] = 0
    st.session_state.pop(EXPORT_RESULT, None)


def detections_for(detection_id: str) -> Detections | None:
    """The tab's detections when they came from this video + model + floor."""
    if st.session_state.get(DETECTION_ID) != detection_id:
        return None
    return st.session_state.get(DETECTIONS)


def current_frame(n_frames: int) -> int:
    return int(np.clip(st.session_state.get(FRAME, 0), 0, max(n_frames - 1, 0)))


def go_to(frame: int, n_frames: int) -> None:
    """Show ``frame`` (clipped to the video): every widget that shows the position follows."""
    frame = int(np.clip(frame, 0, n_frames - 1))
    st.session_state[FRAME] = frame
    st.session_state[FRAME_SLIDER] = frame
    st.session_state[JUMP_TO] = frame


def set_export_result(summary) -> None:
    st.session_state[EXPORT_RESULT] = summary


def export_result():
    return st.session_state.get(EXPORT_RESULT)


def set_selection(selection) -> None:
    st.session_state[SELECTION] = selection


def selection():
    return st.session_state.get(SELECTION)


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
def verdict_store() -> VerdictStore:
    return VerdictStore()


@st.cache_resource(show_spinner=False, max_entries=32)
def flicker_index(detection_id: str, min_score: float, options: FlickerOptions,
                  _detections: Detections) -> tuple[Detections, FlickerIndex]:
    """The detections above ``min_score`` and their index, built once per detections x score floor x
    options; every threshold move is then an evaluate()."""
    kept = _detections.above(min_score)
    return kept, FlickerIndex.from_detections(kept, options)


def options() -> FlickerOptions:
    mode = st.session_state.get(MODE, DEFAULTS[MODE])
    if mode == "reference":
        return FlickerOptions.from_mode(mode)
    return FlickerOptions.from_mode(
        mode,
        class_aware=st.session_state.get(CLASS_AWARE, DEFAULTS[CLASS_AWARE]),
        one_to_one=st.session_state.get(ONE_TO_ONE, DEFAULTS[ONE_TO_ONE]),
        window=int(st.session_state.get(WINDOW, DEFAULTS[WINDOW])),
        empty_window_median=st.session_state.get(EMPTY_MEDIAN, DEFAULTS[EMPTY_MEDIAN]),
    )


@dataclass(frozen=True)
class FlickerView:
    """What the review and export pages show for the settings on screen."""

    video: LoadedVideo
    detections: Detections  # above the minimum score
    flicker: FlickerResult
    min_score: float
    iou_track: float
    iou_assert: float
    options: FlickerOptions

    @property
    def n_frames(self) -> int:
        return self.detections.n_frames

    @property
    def flagged_frames(self) -> np.ndarray:
        return np.flatnonzero(self.flicker.flag_array)


def current_view() -> FlickerView | None:
    """The detections and flicker result for the thresholds on screen (None before detection)."""
    video, detections = st.session_state.get(VIDEO), st.session_state.get(DETECTIONS)
    if video is None or detections is None:
        return None
    min_score = float(st.session_state.get(MIN_SCORE, float(detections.score.min()) if len(detections) else 0.0))
    chosen = options()
    kept, index = flicker_index(st.session_state[DETECTION_ID], min_score, chosen, detections)
    iou_track = float(st.session_state.get(IOU_TRACK, DEFAULTS[IOU_TRACK]))
    iou_assert = float(st.session_state.get(IOU_ASSERT, DEFAULTS[IOU_ASSERT]))
    return FlickerView(video, kept, index.evaluate(iou_track, iou_assert), min_score, iou_track, iou_assert, chosen)


def require_view() -> FlickerView:
    """The current view, or a pointer to the load page and a stop."""
    view = current_view()
    if view is None:
        st.info("No detections yet: load a video and run detection first.")
        st.page_link("pages/load.py", label="Go to Load & detect", icon=":material/movie:")
        st.stop()
    return view


@st.cache_resource(show_spinner="Loading model...", max_entries=4)
def detector(weights: str | None, device: str):
    """Loaded models are shared by every tab (loading a .pt takes seconds)."""
    from core.detect import load_detector

    return load_detector(weights, device=device)


@st.cache_resource(show_spinner="Computing frame embeddings...", max_entries=4)
def embeddings(fingerprint: str, detector_spec: tuple | None, _info: VideoInfo):
    """Per-frame embeddings (the detector's own features when it has them) and their 2D map,
    once per video and model."""
    from core.lightly.selection import embedding_map, frame_embeddings

    model = detector(*detector_spec) if detector_spec else None
    vectors = frame_embeddings(_info.path, detector=model)
    return vectors, embedding_map(vectors)


def video_embeddings(video: LoadedVideo):
    return embeddings(video.info.fingerprint, st.session_state.get(DETECTOR_SPEC), video.info)
