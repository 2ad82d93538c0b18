"""Frames over HTTP: the viewer loads each frame's JPEG, and the boxes of the whole video, from
routes of the app's own server (app.py mounts :func:`routes`).

Why not through reruns: a frame the viewer lacked reached the screen 150-250 ms after a seek that
way (the rerun's start, the fragment, its deltas, React's redraw, a base64 JPEG inside JSON), while
a fetch takes ~30 ms, runs beside others, carries bytes and is cached by the browser (the URL names
the content). A seek now waits for one small request and for no rerun.

Only what a review page registered is served, named by content keys, never by a path: a video's
frames by its fingerprint (:func:`frames_url`), boxes by a hash of the detections' id
(:func:`boxes_url`). What a tab's session holds stays served; anything else under the prefix is 404.
The frame under the hand is asked for with ``?now`` and decoded by a reader of its own, so a seek
does not wait behind the frames the viewer fetches ahead (nor behind a fetch ahead of that same frame).
A request the viewer dropped (the hand moved on) before its turn to decode is not decoded.

One route goes the other way: a viewer the page has just sent (a link, a page switch, a reload)
POSTs ``<frame>/shown`` once that frame is painted, and the review page, waiting in
:func:`wait_until_shown`, draws the rest of itself only then: drawn together, its other widgets held
the frame up.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.detections import Detections
from core.errors import UserError
from core.video import VideoInfo
from ui.viewer import handshake

PREFIX = "/api/viewer"
DISPLAY_SIDE = 1920  # longer sides are scaled down: detail to zoom into in HD, not 4K-sized images
JPEG_QUALITY = 80  # ~75 KB for a 768 x 576 frame
CACHE_BYTES = 256 * 2**20  # encoded frames kept for every tab (~3,400 frames of 768 x 576, ~1,000 of 1080p)
BOXES_BYTES = 64 * 2**20  # the boxes' gzipped JSON kept for every tab (~0.6 MB for 57,000 boxes)
RECENT = 4  # the last videos and detections registered stay served even when no session holds them
# Requests of one video and lane (the frame under the hand, or frames fetched ahead) past the wait
# for their turn: one decoding, one encoding beside it (a reader decodes one frame at a time anyway).
TURNS = 2
CLIENT_GONE = 499  # answered to no one: the viewer dropped the request before its turn came
# The URL names the content, so a browser may keep a response as long as it likes.
HEADERS = {"Cache-Control": "private, max-age=604800, immutable", "X-Content-Type-Options": "nosniff"}
_log = logging.getLogger(__name__)


class _Registry:
    """Values by key, shared by every tab and the routes' threads: served while a session holds them
    (weakly referenced here, so a closed tab's detections are not kept alive) and the last
    ``recent`` registered in any case."""

    def __init__(self, recent: int) -> None:
        self._alive: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[str, object] = OrderedDict()
        self._size = recent
        self._lock = threading.Lock()

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._alive[key] = value
            self._recent[key] = value
            self._recent.move_to_end(key)
            while len(self._recent) > self._size:
                self._recent.popitem(last=False)

    def get(self, key: str):
        with self._lock:
            return self._alive.get(key)


class _Lru:
    """Bytes by key, least recently used dropped beyond ``budget`` bytes (the newest always stays)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._values: OrderedDict[object, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key) -> bytes | None:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
            return self._values.get(key)

    def put(self, key, value: bytes) -> None:
        with self._lock:
            if key in self._values:
                return
            self._values[key] = value
            self._bytes += len(value)
            while self._bytes > self.budget and len(self._values) > 1:
                self._bytes -= len(self._values.popitem(last=False)[1])


class _JpegCache:
    """Encoded frames by (video, frame). A frame being encoded is encoded once: a second request
    for it waits for the first, except that the frame under the hand waits only for another such
    request (one fetched ahead may sit behind other frames fetched ahead, on the other reader)."""

    def __init__(self, budget: int) -> None:
        self._jpegs = _Lru(budget)
        self._pending: dict[tuple[str, int], dict[bool, Future]] = {}  # by whether it is the frame under the hand
        self._lock = threading.Lock()

    def has(self, info: VideoInfo, index: int, pending: bool = True) -> bool:
        """Whether frame ``index`` is encoded (or, with ``pending``, being encoded)."""
        key = (info.fingerprint, index)
        with self._lock:
            return self._jpegs.get(key) is not None or (pending and key in self._pending)

    def cached(self, info: VideoInfo, index: int) -> bytes | None:
        with self._lock:
            return self._jpegs.get((info.fingerprint, index))

    def get(self, info: VideoInfo, index: int, now: bool) -> bytes:
        """Frame ``index`` of ``info``; ``now``: the frame under the hand, decoded by a reader of
        its own rather than behind the frames fetched ahead."""
        key = (info.fingerprint, index)
        with self._lock:
            if (jpeg := self._jpegs.get(key)) is not None:
                return jpeg
            lanes = self._pending.setdefault(key, {})
            pending = lanes.get(True) if now else next(iter(lanes.values()), None)
            if pending is None:
                lanes[now] = mine = Future()
        if pending is not None:
            return pending.result()
        try:
            jpeg = encode(_reader(info, now).get(index))  # outside the lock: tabs and readers encode side by side
        except BaseException as error:
            self._done(key, now)
            mine.set_exception(error)
            raise
        self._done(key, now, jpeg)
        mine.set_result(jpeg)
        return jpeg

    def _done(self, key: tuple[str, int], now: bool, jpeg: bytes | None = None) -> None:
        with self._lock:
            lanes = self._pending[key]
            del lanes[now]
            if not lanes:
                del self._pending[key]
            if jpeg is not None:
                self._jpegs.put(key, jpeg)


def _reader(info: VideoInfo, now: bool):
    # Imported here: app.py imports this module before Streamlit's runtime exists, and ui.resources
    # declares its caches on import (they would not be the runtime's).
    from ui import resources

    return resources.seek_reader(info) if now else resources.frame_reader(info)


_videos = _Registry(RECENT)
_detections = _Registry(RECENT)
_jpegs = _JpegCache(CACHE_BYTES)
_box_jsons = _Lru(BOXES_BYTES)
_preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viewer-prepare")
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()


def _turn(info: VideoInfo, now: bool) -> asyncio.Semaphore:
    """Where one video's requests of one lane wait for their turn to decode: in the event loop, not
    in a worker thread, so a request dropped meanwhile is seen as such (and costs no thread)."""
    turns = _turns.setdefault(asyncio.get_running_loop(), {})  # a lock belongs to one event loop
    return turns.setdefault((info.fingerprint, now), asyncio.Semaphore(TURNS))


def encode(rgb: np.ndarray) -> bytes:
    """An RGB frame as the JPEG the viewer shows."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = DISPLAY_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()


def frames_url(info: VideoInfo) -> str:
    """Where the viewer fetches the frames of ``info`` (the frame index and ``.jpg`` appended),
    serving them from now on. The frame it is about to show is prepared at once, in the background
    (see :func:`prepare`)."""
    _videos.put(info.fingerprint, info)
    prepare(info, handshake.current_frame(info.frame_count))
    return f"{PREFIX}/frames/{info.fingerprint}/"


def prepare(info: VideoInfo, index: int) -> None:
    """Decode and encode frame ``index`` in the background unless it is cached already. After a
    move made from Python (a link, the Verdicts page, the gallery) the page still runs for a while
    after the viewer is sent; the frame is encoded meanwhile instead of once the viewer asks."""
    if not _jpegs.has(info, index):
        _preparing.submit(_prepare_now, info, index)


def prepared(info: VideoInfo, index: int) -> bool:
    """Whether frame ``index`` of ``info`` is encoded, ready to be served."""
    return _jpegs.has(info, index, pending=False)


def _prepare_now(info: VideoInfo, index: int) -> None:
    try:
        _jpegs.get(info, index, now=True)
    except (UserError, OSError) as error:  # the viewer's own request answers it
        _log.info("viewer frame %d of %s not prepared: %s", index, info.name, error)


def wait_until_shown(info: VideoInfo, index: int, timeout: float) -> bool:
    """Block until a viewer says frame ``index`` of ``info`` is on screen (a POST to the frame's URL
    with ``/shown`` appended, made by a viewer sent with ``announce``), at most ``timeout`` s; whether
    it did. The review page waits so before drawing what sits beside a viewer that was just
    sent: drawn together, the page's other widgets kept the browser from drawing the frame."""
    key = (info.fingerprint, index)
    with _shown_lock:
        waiting = _shown_waits.setdefault(key, _Waiting(threading.Event()))
        waiting.count += 1
    try:
        return waiting.event.wait(timeout)
    finally:
        with _shown_lock:
            waiting.count -= 1
            if not waiting.count and _shown_waits.get(key) is waiting:
                del _shown_waits[key]


@dataclass
class _Waiting:
    """The pages waiting for one frame of one video (two tabs may open the same link at once)."""

    event: threading.Event
    count: int = 0


_shown_waits: dict[tuple[str, int], _Waiting] = {}
_shown_lock = threading.Lock()


def boxes_url(detection_id: str, detections: Detections) -> str:
    """Where the viewer fetches every box of ``detections``, serving them from now on (their JSON
    is written at once, in the background: the viewer needs it before it shows any frame). The URL
    holds a hash of ``detection_id``: an id may hold a folder's path (a batch's), which neither fits
    in one URL segment nor belongs in a URL."""
    key = hashlib.sha256(detection_id.encode()).hexdigest()[:32]
    _detections.put(key, detections)
    if _box_jsons.get(key) is None:
        _preparing.submit(_boxes_json_gzip, key, detections)
    return f"{PREFIX}/boxes/{key}.json"


def boxes_json(detections: Detections) -> bytes:
    """Every box as JSON, flat: frame i's boxes are rows ``offsets[i]:offsets[i+1]`` of ``boxes``,
    each row x0, y0, x1, y1, score, class (the viewer applies the minimum score, so moving that
    slider fetches nothing). orjson: ~10 ms for 57,000 boxes, where json took ~90 ms."""
    rows = np.column_stack([np.round(detections.xyxy.astype(np.float64), 1), detections.score.astype(np.float64),
                            detections.cls.astype(np.float64)])  # scores exact: the viewer's minimum score agrees with Python's
    return orjson.dumps({"offsets": detections.offsets, "boxes": rows.ravel()}, option=orjson.OPT_SERIALIZE_NUMPY)


def _boxes_json_gzip(key: str, detections: Detections) -> bytes:
    """The boxes' JSON, gzipped once here: Streamlit's middleware would gzip it on every request
    (~200 ms for the 10-minute 1080p video's 2.9 MB, while the page still runs; 6 ms here at level 1)."""
    if (cached := _box_jsons.get(key)) is None:
        _box_jsons.put(key, cached := gzip.compress(boxes_json(detections), compresslevel=1))
    return cached


def _registered_frame(request: Request) -> tuple[VideoInfo, int] | None:
    """The video and frame a route's path names: a video a page registered, a frame it has."""
    info, index = _videos.get(request.path_params["key"]), request.path_params["index"]
    return (info, index) if info is not None and 0 <= index < info.frame_count else None


async def _frame(request: Request) -> Response:
    if (named := _registered_frame(request)) is None:
        return _not_found(request)
    info, index = named
    now = "now" in request.query_params
    if (jpeg := _jpegs.cached(info, index)) is None:
        async with _turn(info, now):
            if await request.is_disconnected():  # dropped by the viewer while it waited: the hand moved on
                return Response(status_code=CLIENT_GONE)
            try:  # decoding blocks: in a worker thread
                jpeg = await run_in_threadpool(_jpegs.get, info, index, now)
            except (UserError, OSError) as error:  # a video that broke or went away since it was registered
                _log.warning("viewer frame %d of %s: %s", index, info.name, error)
                return Response(f"frame {index} could not be decoded", status_code=500, media_type="text/plain")
    return Response(jpeg, media_type="image/jpeg", headers=HEADERS)


async def _shown(request: Request) -> Response:
    if (named := _registered_frame(request)) is None:  # no such frame to have shown
        return _not_found(request)
    info, index = named
    with _shown_lock:
        waiting = _shown_waits.get((info.fingerprint, index))
    if waiting is not None:
        waiting.event.set()
    return Response(status_code=204)


async def _boxes(request: Request) -> Response:
    key = request.path_params["key"]
    detections = _detections.get(key)
    if detections is None:
        return _not_found(request)
    body = await run_in_threadpool(_boxes_json_gzip, key, detections)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(body, media_type="application/json",
                        headers={**HEADERS, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(gzip.decompress(body), media_type="application/json", headers={**HEADERS, "Vary": "Accept-Encoding"})


def _not_found(_request: Request) -> Response:
    return Response("not found", status_code=404, media_type="text/plain")


class _FrameNumber(IntegerConvertor):
    """A frame number of at most 9 digits: Starlette's ``int`` took any length, and Python refuses
    to convert more than 4,300 digits (a 500 with a traceback, before any key was checked)."""

    regex = "[0-9]{1,9}"


register_url_convertor("frame_number", _FrameNumber())


def routes() -> list[Route]:
    """The routes for ``st.App(routes=...)``. The last one answers 404 for anything else under the
    prefix (Streamlit would answer its page, with 200, for a path no route takes)."""
    return [Route(PREFIX + "/frames/{key}/{index:frame_number}.jpg", _frame, methods=["GET"]),
            Route(PREFIX + "/frames/{key}/{index:frame_number}/shown", _shown, methods=["POST"]),
            Route(PREFIX + "/boxes/{key}.json", _boxes, methods=["GET"]),
            Route(PREFIX + "/{rest:path}", _not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
