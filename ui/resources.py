"""Expensive, immutable things shared by every tab: loaded models, frame readers, thumbnails, the
verdict store, embeddings, flicker indexes, probed videos and the videos of batch output folders.

``st.cache_resource`` keeps one of each per server, which is safe because readers lock, indexes
are frozen and the store serialises its writers. Everything per tab lives in :mod:`ui.session`.
"""
from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core import paths
from core.detect import Detector
from core.detections import Detections
from core.errors import UserError
from core.flicker import FlickerIndex
from core.proxy import proxy_path, reader_for_display
from core.settings import DetectorSpec, FlickerSettings
from core.verdicts import VerdictStore
from core.video import FrameReader, VideoInfo, probe

if TYPE_CHECKING:  # core.fleet loads on the pages that open batches
    from core.fleet import BatchVideo

SEEK_READER_FRAMES = 8  # decoded frames the seek reader keeps (a seek's neighbours; JPEGs are cached apart)
# Decoded frames the display reader keeps: ~128 MB of pixels, 96 frames of 768 x 576 but 21 of 1080p
# (the viewer's JPEGs are cached apart, so these only spare decoding a GOP again).
DISPLAY_READER_BYTES = 128 * 2**20
INDEX_CACHE_BYTES = 768 * 2**20  # flicker indexes kept for reruns and tabs (one always stays, whatever its size)
FILES_KEPT = 16  # probed videos, and batch videos with their detections, kept for links and reruns


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
def _verdict_store(path: str, file_id: tuple[int, int]) -> VerdictStore:
    return VerdictStore(path)


def verdict_store() -> VerdictStore:
    """The store under the data folder (one per path: FLICKER_DATA_DIR may change between tests),
    opened again when its file is another (a damaged store moved aside, as the error advises: the
    store kept open found no tables in the new empty file until the app was restarted)."""
    from core.verdicts import default_store_path

    path = default_store_path()
    try:
        status = path.stat()
    except OSError:  # none yet (or moved aside): made now, and found by its file from the next call on
        return VerdictStore(path)
    return _verdict_store(str(path), (status.st_dev, status.st_ino))


@st.cache_resource(show_spinner="Computing frame embeddings...", max_entries=4)
def _embeddings(fingerprint: str, model: tuple[str, str] | None, _info: VideoInfo):
    from core.lightly.selection import embedding_map, frame_embeddings

    vectors = frame_embeddings(_info, detector=_detector(*model) if model else None)
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


class FileMemo:
    """Values read from files, kept per key while the files they came from are unchanged (checked
    with a stat each, on every use), the ``size`` most recently used; shared by every tab. One read
    per key at a time: a tab asking for what another is reading waits for it rather than reading it
    again (a link prepared in the background is then ready, not read twice), while other keys are
    read beside it (a long batch video does not hold up the link to a short one)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[object, tuple[tuple, object]] = OrderedDict()
        self._lock = threading.Lock()  # guards _entries and _reading
        self._reading: dict[object, threading.Lock] = {}

    def get(self, key, read, files):
        """``read()``'s value for ``key``; ``files(value)``: the files it depends on."""
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None:
                identities, value = entry
                try:
                    if identities == tuple(map(paths.file_identity, files(value))):
                        with self._lock:
                            if key in self._entries:
                                self._entries.move_to_end(key)
                        return value
                except OSError:  # gone: read again, and say why there
                    pass
            value = read()
            identities = tuple(map(paths.file_identity, files(value)))
            with self._lock:
                self._entries[key] = identities, value
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._reading.pop(self._entries.popitem(last=False)[0], None)
                if len(self._reading) > 2 * self.size:  # keys whose reads failed: none kept
                    for stale in [k for k, lock in self._reading.items() if k not in self._entries and not lock.locked()]:
                        del self._reading[stale]
            return value


@st.cache_resource(show_spinner=False)
def _probes() -> FileMemo:
    return FileMemo(FILES_KEPT)


def video_info(path: Path) -> tuple[VideoInfo, tuple[str, ...]]:
    """``core.video.probe`` of the file, once while it is unchanged (a probe demuxes every packet:
    ~0.2 s for 10 minutes of 1080p, paid by every link that opens it), with the warnings it gave."""
    def read() -> tuple[VideoInfo, tuple[str, ...]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            info = probe(path)
        return info, tuple(str(warning.message) for warning in caught)
    return _probes().get(str(Path(path).resolve()), read, lambda value: [value[0].path])


@st.cache_resource(show_spinner=False)
def _batch_videos() -> FileMemo:
    return FileMemo(FILES_KEPT)


def batch_video(root: Path, relpath: str) -> BatchVideo:
    """One video of a batch output folder with its detections (``core.fleet.open_video``), read once
    while neither the batch's manifest nor the video changes: reading them back from the export is
    ~0.3 s for the 795-frame sample and seconds for 18,000 frames the first time, ~0.1 s once
    ``core.fleet.read_predictions`` has them on disk. The probe is ``video_info``'s, shared with the
    pages. The video is checked against ``FLICKER_ROOTS`` on every use."""
    from core import fleet
    from core.lightly.datasource import Datasource

    manifest = Datasource(root).manifest
    video = _batch_videos().get((str(root), relpath), lambda: fleet.open_video(root, relpath, lambda path: video_info(path)[0]),
                                lambda value: [manifest, value.info.path])
    paths.check_allowed(video.info.path)
    return video


_warming = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-video-warm")


def warm_batch_video(root: Path, relpath: str) -> None:
    """Read a batch video and prepare its first frame in the background, before the link that opens
    it is pressed (a failure is left for the link to say)."""
    from ui.viewer import frames

    def warm() -> None:
        try:
            frames.prepare(batch_video(root, relpath).info, 0)
        except (UserError, OSError):
            pass
    _warming.submit(warm)
