"""Expensive, immutable things shared by every tab: loaded models, frame readers, thumbnails, the
verdict store, embeddings and flicker indexes.

``st.cache_resource`` keeps one of each per server, which is safe because readers lock, indexes
are frozen and the store serialises its writers. Everything per tab lives in :mod:`ui.session`.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import streamlit as st

from core import paths
from core.detect import Detector
from core.detections import Detections
from core.flicker import FlickerIndex
from core.proxy import proxy_path, reader_for_display
from core.settings import DetectorSpec, FlickerSettings
from core.verdicts import VerdictStore
from core.video import FrameReader, VideoInfo

SEEK_READER_FRAMES = 8  # decoded frames the seek reader keeps (a seek's neighbours; JPEGs are cached apart)
# Decoded frames the display reader keeps: ~128 MB of pixels, 96 frames of 768 x 576 but 21 of 1080p
# (the viewer's JPEGs are cached apart, so these only spare decoding a GOP again).
DISPLAY_READER_BYTES = 128 * 2**20
INDEX_CACHE_BYTES = 768 * 2**20  # flicker indexes kept for reruns and tabs (one always stays, whatever its size)


@st.cache_resource(show_spinner="Loading model...", max_entries=4)
def _detector(weights: str, device: str) -> Detector:
    """Loaded models are shared by every tab (loading a .pt takes seconds); the floor and the
    classes do not change the model, so they are not part of its key."""
    return DetectorSpec(weights, device).load()


def detector(spec: DetectorSpec) -> Detector:
    """The model of a spec (the built-in detector, a model name Ultralytics ships, or a file): a file
    outside ``FLICKER_ROOTS`` is refused before it is read (a bare name too: it would be read from
    the server's working folder)."""
    local = Path(spec.weights)
    if not spec.builtin and (local.suffix.lower() in (".pt", ".onnx") or "/" in spec.weights or local.exists()):
        paths.check_allowed(spec.weights)
    return _detector(spec.weights, spec.device)


@st.cache_resource(show_spinner=False, max_entries=8)
def _display_reader(fingerprint: str, proxy_ready: bool, _info: VideoInfo) -> FrameReader:
    frames = DISPLAY_READER_BYTES // max(1, _info.width * _info.height * 3)
    return reader_for_display(_info, cache_frames=int(np.clip(frames, SEEK_READER_FRAMES, 96)))


def frame_reader(info: VideoInfo) -> FrameReader:
    """One reader per video, shared by every tab; it moves to the seek proxy once that is built."""
    return _display_reader(info.fingerprint, proxy_path(info).is_file(), info)


@st.cache_resource(show_spinner=False, max_entries=8)
def _seek_reader(fingerprint: str, proxy_ready: bool, _info: VideoInfo) -> FrameReader:
    return reader_for_display(_info, cache_frames=SEEK_READER_FRAMES)


def seek_reader(info: VideoInfo) -> FrameReader:
    """A second reader per video for the frame under the hand: a reader decodes one frame at a
    time, so a seek through :func:`frame_reader` would wait behind the frames fetched ahead."""
    return _seek_reader(info.fingerprint, proxy_path(info).is_file(), info)


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


@st.cache_resource(show_spinner="Computing frame embeddings...", max_entries=4)
def _embeddings(fingerprint: str, model: tuple[str, str] | None, _info: VideoInfo):
    from core.lightly.selection import embedding_map, frame_embeddings

    vectors = frame_embeddings(_info.path, detector=_detector(*model) if model else None)
    return vectors, embedding_map(vectors)


def embeddings(info: VideoInfo, spec: DetectorSpec | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame embeddings (the detector's own features when it has them) and their 2D map, once
    per video and model (``spec`` None: without a detector)."""
    return _embeddings(info.fingerprint, (spec.weights, spec.device) if spec else None, info)


class IndexCache:
    """Flicker indexes shared by every tab, least recently used dropped once together they hold more
    than ``budget`` bytes (the newest always stays). A count limit would not do: on a long, crowded
    video one index can take hundreds of MB, and every score-floor or option change builds another."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[tuple, tuple[Detections, FlickerIndex]] = OrderedDict()
        self._lock = threading.Lock()  # held while building too: two tabs never build the same index twice

    def get(self, detection_id: str, settings: FlickerSettings, detections: Detections) -> tuple[Detections, FlickerIndex]:
        """The boxes of ``detections`` the settings keep, and their index. The thresholds are not part
        of the key: the index is threshold-free, and every threshold move is an evaluate()."""
        key = (detection_id, settings.min_score, settings.options)
        with self._lock:
            if key not in self._entries:
                kept = settings.kept(detections)
                self._entries[key] = kept, FlickerIndex.from_detections(kept, settings.options)
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


def flicker_index(detection_id: str, settings: FlickerSettings, detections: Detections) -> tuple[Detections, FlickerIndex]:
    """The detections (named by ``detection_id``) the settings keep and their index, built once per
    detections x score floor x options, whichever tab asks first."""
    return _index_cache().get(detection_id, settings, detections)
