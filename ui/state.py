"""Session state, cached resources, the review's URL and the error boundary, named in one place.

Pages never write session keys directly: they call the functions here (``open_video``,
``use_detections``, ``go_to``, ...). Per-tab state lives in ``st.session_state`` (so two browser
tabs never interfere); expensive, immutable things (frame readers, flicker indexes, loaded models)
are ``st.cache_resource`` and shared between tabs, which is safe because readers lock and indexes
are frozen. The review itself (video, detector, thresholds, frame) is mirrored in the URL, so a
reload, a bookmark or a link opens the same frame with the same settings.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import streamlit as st

from core import paths
from core.detect import BUILTIN_HOG, DEFAULT_CONF, cached_detections
from core.detections import Detections
from core.errors import UserError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, MODES, FlickerIndex, FlickerOptions, FlickerResult
from core.lightly.export import DEFAULT_TASK
from core.proxy import proxy_path, reader_for_display
from core.verdicts import VerdictStore
from core.video import FrameReader, VideoInfo, probe

# per-tab values set by code
VIDEO = "video"  # LoadedVideo
DETECTIONS = "detections"  # Detections of the loaded video
DETECTION_ID = "detection_id"  # names the video + model + floor the detections came from
DETECTOR_SPEC = "detector_spec"  # (weights, device, conf, classes) of the run behind the detections
FRAME = "frame"  # the frame on screen
SEEK = "seek"  # (count, reveal): moves made from Python (see seek())
FRAMES = "viewer_frames"  # (count, first, last, received): the frames the viewer is sent, numbered
VIEWER_REQUEST = "viewer_request"  # id of the viewer's latest request for frames
EXPORT_RESULT = "export_result"
SELECTION = "local_selection"  # (VideoSelection, the settings its flags came from)
DETECTION_PROGRESS = "detection_progress"  # (done, total) of the run in progress: Cancel reports it
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
JUMP_TO = "jump_to"
VIEWER = "viewer"  # the frame viewer component
EMBEDDING_PLOT = "embedding_plot"
EXPORT_TASK = "export_task"
DIVERSITY = "diversity"  # selection strengths, shared by the local and the scheduled selection
LEAST_CONFIDENCE = "least_confidence"
FLICKER_STRENGTH = "flicker_strength"

_IMPROVED = FlickerOptions.improved()
DEFAULTS = {IOU_TRACK: DEFAULT_IOU_TRACK, IOU_ASSERT: DEFAULT_IOU_ASSERT, MODE: "reference",
            CLASS_AWARE: _IMPROVED.class_aware, ONE_TO_ONE: _IMPROVED.one_to_one, WINDOW: _IMPROVED.window,
            EMPTY_MEDIAN: _IMPROVED.empty_window_median}
WINDOW_RANGE = (1, 5)
INDEX_CACHE_BYTES = 768 * 2**20  # flicker indexes kept for reruns and tabs (one always stays, whatever its size)
FRAMES_AROUND_SEEK = (4, 20)  # frames sent with a move made from Python, before the viewer asks


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


def _forget_video() -> None:
    for key in (VIDEO, DETECTIONS, DETECTION_ID, DETECTOR_SPEC, EXPORT_RESULT, SELECTION, SEEK):
        st.session_state.pop(key, None)
    st.session_state[FRAME] = 0


def set_video(path: Path, relpath: str | None = None) -> bool:
    """Probe and open a video for review (warnings shown), replacing the previous video and its
    results. Returns False (with the error shown) when the file cannot be used: the previous video
    then stays open, and the page says so."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = None
        with error_boundary():
            info = probe(path)
    for warning in caught:
        st.warning(str(warning.message))
    if info is None:
        _say_still_open()
        return False
    _forget_video()
    st.session_state[VIDEO] = LoadedVideo(info, relpath or info.path.name)
    return True


def _say_still_open() -> None:
    if (previous := loaded_video()) is not None:
        st.info(f"{previous.relpath} is still open.", icon=":material/info:")


def open_video(path_text: str) -> bool:
    """A video named by the user (the path box, or a link's URL): outside ``FLICKER_ROOTS`` it is
    refused before anything touches the file."""
    path = Path(path_text.strip()).expanduser()
    with error_boundary():
        paths.check_allowed(path)
        return set_video(path)
    _say_still_open()
    return False


def save_upload(name: str, upload: BinaryIO) -> Path:
    """Keep an uploaded file under the data folder, named by content so re-uploads are free. It is
    copied to disk in chunks (never a second whole copy in memory) while its content key is taken."""
    staging = paths.data_dir() / "uploads" / ".incoming"
    staging.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=staging, delete=False) as out:
        upload.seek(0)
        for chunk in iter(lambda: upload.read(1 << 22), b""):
            digest.update(chunk)
            out.write(chunk)
    target = paths.data_dir() / "uploads" / digest.hexdigest()[:16] / Path(name).name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(out.name, target)
    return target


def open_upload(name: str, data: BinaryIO) -> bool:
    """Keep an uploaded video and open it; a file that is not a usable video is deleted again."""
    target = save_upload(name, data)
    if set_video(target, name):
        return True
    shutil.rmtree(target.parent, ignore_errors=True)
    return False


def open_sample_once() -> None:
    """``streamlit run app.py -- --sample``: the tab opens with the bundled sample loaded (once, so
    loading another video sticks)."""
    if st.session_state.get(VIDEO) is None and not st.session_state.get(_SAMPLE_OFFERED):
        st.session_state[_SAMPLE_OFFERED] = True
        set_video(paths.SAMPLE_VIDEO)


def loaded_video() -> LoadedVideo | None:
    return st.session_state.get(VIDEO)


@st.cache_resource(show_spinner="Loading model...", max_entries=4)
def _detector(weights: str, device: str):
    """Loaded models are shared by every tab (loading a .pt takes seconds)."""
    from core.detect import load_detector

    return load_detector(weights, device=device)


def detector(weights: str, device: str):
    """The model for a weights spec (the built-in detector, a model name Ultralytics ships, or a
    file): a file outside ``FLICKER_ROOTS`` is refused before it is read."""
    if weights != BUILTIN_HOG and (Path(weights).suffix.lower() in (".pt", ".onnx") or "/" in weights):
        paths.check_allowed(weights)
    return _detector(weights, device)


def detection_id(info: VideoInfo, model, conf: float, classes: list[int] | None) -> str:
    return f"{info.fingerprint}|{model.fingerprint}|{conf}|{classes}"


def use_detections(detections: Detections, detection_id: str, spec: tuple) -> None:
    """Review these detections; ``spec`` is ``(weights, device, conf, classes)``, the run that made them."""
    if st.session_state.get(DETECTOR_SPEC, spec)[0] != spec[0]:
        st.session_state.pop(EXPORT_TASK, None)  # the task name follows the detector
    st.session_state[DETECTIONS] = detections
    st.session_state[DETECTOR_SPEC] = spec
    st.session_state[DETECTION_ID] = detection_id
    st.session_state[MIN_SCORE] = spec[2]
    st.session_state[FRAME] = 0
    for key in (EXPORT_RESULT, SELECTION, SEEK):
        st.session_state.pop(key, None)


def detections() -> Detections | None:
    """The tab's detections, every box above the detection floor."""
    return st.session_state.get(DETECTIONS)


def detections_for(detection_id: str) -> Detections | None:
    """The tab's detections when they came from this video + model + floor."""
    if st.session_state.get(DETECTION_ID) != detection_id:
        return None
    return st.session_state.get(DETECTIONS)


def set_detection_progress(done: int, total: int) -> None:
    st.session_state[DETECTION_PROGRESS] = (done, total)


def pop_detection_progress() -> tuple[int, int] | None:
    return st.session_state.pop(DETECTION_PROGRESS, None)


def default_task_name() -> str:
    """The export's prediction task, named after the detector: ``hog_people_detection`` for the
    built-in one, ``<weights stem>_detection`` for a model file, the tutorial's name otherwise."""
    spec = st.session_state.get(DETECTOR_SPEC)
    if spec is None:
        return DEFAULT_TASK
    stem = "hog_people" if spec[0] == BUILTIN_HOG else re.sub(r"[^a-z0-9_]+", "_", Path(spec[0]).stem.lower())
    return f"{stem.strip('_') or 'model'}_detection"


def current_frame(n_frames: int) -> int:
    return int(np.clip(st.session_state.get(FRAME, 0), 0, max(n_frames - 1, 0)))


def frame_shown(frame: int) -> None:
    """The viewer settled on ``frame`` (it is already on screen): remember it, move nothing."""
    st.session_state[FRAME] = frame


def go_to(frame: int, n_frames: int, reveal: bool = False) -> None:
    """Move the viewer to ``frame`` (clipped to the video), sending the frames around it with the
    move. ``reveal`` scrolls the viewer into view, for seeks made further down the page."""
    frame = int(np.clip(frame, 0, n_frames - 1))
    st.session_state[SEEK] = (seek()[0] + 1, reveal)
    want_frames(frame - FRAMES_AROUND_SEEK[0], frame + FRAMES_AROUND_SEEK[1])
    frame_shown(frame)


def seek() -> tuple[int, bool]:
    """How many moves Python has made (the viewer makes each once, however often the page reruns),
    and whether the last one asked to scroll the viewer into view."""
    return st.session_state.get(SEEK, (0, False))


def want_frames(first: int, last: int, request: int | None = None) -> None:
    """Send the viewer frames ``first..last`` (answering its ``request``, when it asked)."""
    count = st.session_state.get(FRAMES, (0,))[0] + 1
    st.session_state[FRAMES] = (count, first, last, False)
    if request is not None:
        st.session_state[VIEWER_REQUEST] = request


def frames_wanted() -> tuple[int, int, int, int | None] | None:
    """``(count, first, last, request)`` of the frames to send with this run. They go with every run
    until the viewer says it has them (an update can be dropped when reruns overlap), and with none
    after that, so a threshold move or a settled frame re-sends no frames."""
    count, first, last, received = st.session_state.get(FRAMES, (0, 0, 0, True))
    return None if received else (count, first, last, st.session_state.get(VIEWER_REQUEST))


def frames_received(count: int) -> None:
    frames = st.session_state.get(FRAMES)
    if frames is not None and frames[0] == count:
        st.session_state[FRAMES] = (*frames[:3], True)


def set_export_result(summary) -> None:
    st.session_state[EXPORT_RESULT] = summary


def export_result():
    return st.session_state.get(EXPORT_RESULT)


def set_selection(selection, view: "FlickerView") -> None:
    st.session_state[SELECTION] = (selection, view.settings)


def selection():
    """The last local selection and the settings (thresholds, mode, floor) its flags came from."""
    return st.session_state.get(SELECTION, (None, None))


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


@st.cache_resource(show_spinner=False, max_entries=4)
def _verdict_store(path: str) -> VerdictStore:
    return VerdictStore(path)


def verdict_store() -> VerdictStore:
    """The store under the data folder (one per path: FLICKER_DATA_DIR may change between tests)."""
    from core.verdicts import default_store_path

    return _verdict_store(str(default_store_path()))


class IndexCache:
    """Flicker indexes shared by every tab, least recently used dropped once together they hold more
    than ``budget`` bytes (the newest always stays). A count limit would not do: on a long, crowded
    video one index can take hundreds of MB, and every score-floor or option change builds another."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[tuple, tuple[Detections, FlickerIndex]] = OrderedDict()
        self._lock = threading.Lock()  # held while building too: two tabs never build the same index twice

    def get(self, key: tuple, detections: Detections) -> tuple[Detections, FlickerIndex]:
        _, min_score, options = key  # (detection id, score floor, options)
        with self._lock:
            if key not in self._entries:
                kept = detections.above(min_score)
                self._entries[key] = kept, FlickerIndex.from_detections(kept, options)
            self._entries.move_to_end(key)
            while len(self._entries) > 1 and sum(map(_entry_bytes, self._entries.values())) > self.budget:
                self._entries.popitem(last=False)
            return self._entries[key]


def _entry_bytes(entry: tuple[Detections, FlickerIndex]) -> int:
    kept, index = entry
    return index.nbytes + sum(a.nbytes for a in (kept.frame, kept.xyxy, kept.score, kept.cls))


@st.cache_resource(show_spinner=False)
def _index_cache() -> IndexCache:
    return IndexCache(INDEX_CACHE_BYTES)


def flicker_index(detection_id: str, min_score: float, options: FlickerOptions,
                  detections: Detections) -> tuple[Detections, FlickerIndex]:
    """The detections above ``min_score`` and their index, built once per detections x score floor x
    options; every threshold move is then an evaluate()."""
    return _index_cache().get((detection_id, float(min_score), options), detections)


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

    @property
    def settings(self) -> tuple:
        """Everything the flags depend on: equal settings give equal flags."""
        return self.iou_track, self.iou_assert, self.min_score, self.options


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


def flags_with(view: FlickerView, **changes) -> np.ndarray | None:
    """The flags the current thresholds give with some options changed (to tell whether a toggle
    matters); None when the index is too large to keep another beside it."""
    detection_id, detections = st.session_state[DETECTION_ID], st.session_state[DETECTIONS]
    if flicker_index(detection_id, view.min_score, view.options, detections)[1].nbytes > INDEX_CACHE_BYTES // 4:
        return None
    other = FlickerOptions.from_mode(view.options.mode, **{**_toggles(view.options), **changes})
    _, index = flicker_index(detection_id, view.min_score, other, detections)
    return index.evaluate(view.iou_track, view.iou_assert).flag_array


def _toggles(chosen: FlickerOptions) -> dict:
    return {"class_aware": chosen.class_aware, "one_to_one": chosen.one_to_one, "window": chosen.window,
            "empty_window_median": chosen.empty_window_median}


def require_view() -> FlickerView:
    """The current view, or a pointer to the load page and a stop."""
    view = current_view()
    if view is None:
        st.info("No detections yet: load a video and run detection first.")
        st.page_link("pages/load.py", label="Go to Load & detect", icon=":material/movie:")
        st.stop()
    return view


# The review in the URL. Every value read back is untrusted: paths go through the load page's
# checks, numbers are parsed and clipped, anything unreadable falls back to its default.
_URL_TOGGLES = {CLASS_AWARE: "class_aware", ONE_TO_ONE: "one_to_one", EMPTY_MEDIAN: "empty_median"}


def sync_url(view: FlickerView) -> None:
    """Mirror the review in the URL (written only when something changed)."""
    weights, device, conf, classes = st.session_state[DETECTOR_SPEC]
    params = {"video": str(view.video.info.path), "weights": weights, "device": device, "conf": str(conf),
              "frame": str(current_frame(view.n_frames)), "mode": view.options.mode,
              "iou_track": str(view.iou_track), "iou_assert": str(view.iou_assert),
              "min_score": str(view.min_score)}
    if classes:
        params["classes"] = ",".join(map(str, classes))
    if view.options.mode == "improved":
        params["window"] = str(view.options.window)
        params.update({name: str(int(st.session_state[key])) for key, name in _URL_TOGGLES.items()})
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def _number(text: str | None, default: float, low: float, high: float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    return float(np.clip(value, low, high)) if np.isfinite(value) else default


def restore_from_url() -> None:
    """A reload, bookmark or link reopens the review it names, when this tab has none yet. Nothing
    runs: the detections come from the disk cache, or the page says to run detection."""
    params = st.query_params
    if st.session_state.get(DETECTIONS) is not None or "video" not in params:
        return
    with error_boundary("Cannot reopen the review in this link"):
        if not open_video(params["video"]):
            return
        weights, device = params.get("weights", BUILTIN_HOG), params.get("device", "auto")
        conf = _number(params.get("conf"), DEFAULT_CONF, 0.0, 1.0)
        classes = sorted({int(c) for c in params.get("classes", "").split(",") if c.strip().isdigit()}) or None
        model = detector(weights, device)
        info = st.session_state[VIDEO].info
        detections = cached_detections(info, model, conf, classes)
        if detections is None:
            st.info(f"{info.path.name} is loaded, but its detections for this link are not cached here: "
                    "run detection on Load & detect.")
            return
        use_detections(detections, detection_id(info, model, conf, classes), (weights, device, conf, classes))
        _restore_settings(params, detections.n_frames)


def _restore_settings(params, n_frames: int) -> None:
    if params.get("mode") in MODES:
        st.session_state[MODE] = params["mode"]
    for key in (IOU_TRACK, IOU_ASSERT, MIN_SCORE):
        st.session_state[key] = _number(params.get(key), st.session_state.get(key, DEFAULTS.get(key, 0.0)), 0.0, 1.0)
    st.session_state[WINDOW] = int(_number(params.get("window"), DEFAULTS[WINDOW], *WINDOW_RANGE))
    for key, name in _URL_TOGGLES.items():
        if params.get(name) in ("0", "1"):
            st.session_state[key] = params[name] == "1"
    go_to(int(_number(params.get("frame"), 0, 0, n_frames - 1)), n_frames)


@st.cache_resource(show_spinner="Computing frame embeddings...", max_entries=4)
def embeddings(fingerprint: str, detector_spec: tuple | None, _info: VideoInfo):
    """Per-frame embeddings (the detector's own features when it has them) and their 2D map,
    once per video and model."""
    from core.lightly.selection import embedding_map, frame_embeddings

    model = _detector(*detector_spec[:2]) if detector_spec else None
    vectors = frame_embeddings(_info.path, detector=model)
    return vectors, embedding_map(vectors)


def video_embeddings(video: LoadedVideo):
    spec = st.session_state.get(DETECTOR_SPEC)
    return embeddings(video.info.fingerprint, spec[:2] if spec else None, video.info)


# Verdicts and thresholds (the QA page).
ANNOTATOR = "annotator"
QA_PLAN_SIZE = "qa_plan_size"
QA_SEED = "qa_seed"


def current_index(view: FlickerView) -> FlickerIndex:
    """The index behind the view (threshold-free), for the QA estimates."""
    return flicker_index(st.session_state[DETECTION_ID], view.min_score, view.options, st.session_state[DETECTIONS])[1]


def use_thresholds(iou_track: float, iou_assert: float) -> None:
    """Move the threshold sliders (a button callback: "use suggested thresholds")."""
    st.session_state[IOU_TRACK] = round(float(iou_track), 2)
    st.session_state[IOU_ASSERT] = round(float(iou_assert), 2)


def annotator() -> str:
    return str(st.session_state.get(ANNOTATOR, "")).strip()
