"""The frame viewer: a small ``st.components.v2`` component in plain JS (viewer.js).

Why a component: Streamlit reruns the script and re-sends the page on every interaction, which made
a frame step take about a second and a held arrow key queue reruns. Here the browser holds frames
(JPEG) with their boxes, plus the flags, imputed boxes and verdicts of the whole video, so steps,
playback, the timeline and the i-k..i+k strip never wait for the server. Python answers three
things: which frames the viewer needs next (it asks ahead of the hand, and for a frame it jumped to
before anything else), where it settled, and verdicts, each with the frame it was given on.
"""
from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from core.detections import Detections
from core.render import FLAGGED_COLOR, IMPUTED_COLOR, PALETTE
from core.verdicts import VERDICTS
from core.video import VideoInfo
from ui import resources, session
from ui.flicker_view import FlickerView
from ui.viewer import handshake

_HERE = Path(__file__).parent
_mount = st.components.v2.component(
    "flicker_review.viewer", html=(_HERE / "viewer.html").read_text(), css=(_HERE / "viewer.css").read_text(),
    js=(_HERE / "viewer.js").read_text(), isolate_styles=False)
VIEWER = "viewer"  # the component's key
MAX_REQUEST = 16  # frames one request may ask for (the viewer asks for 8 or 1)
DISPLAY_SIDE = 1920  # longer sides are scaled down: detail to zoom into in HD, not 4K-sized messages
JPEG_QUALITY = 80  # ~75 KB for a 768 x 576 frame


@st.cache_data(show_spinner=False, max_entries=400)
def frame_jpeg(fingerprint: str, index: int, _info: VideoInfo) -> str:
    """Frame ``index`` as a JPEG data URL, decoded and encoded once however often it is asked for."""
    image = cv2.cvtColor(resources.frame_reader(_info).get(index), cv2.COLOR_RGB2BGR)
    scale = DISPLAY_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


def frames_payload(info: VideoInfo, detections: Detections, frames: Iterable[int]) -> dict:
    """``frames``, each a JPEG and every box with its score and class (the viewer applies the
    minimum score, so moving that slider needs no frame again). In frame order: the reader decodes
    forward from one keyframe instead of seeking back."""
    payload = {}
    for index in sorted(frames):
        boxes = detections.at(index)
        rows = zip(np.round(boxes.xyxy.astype(float), 1).tolist(), boxes.score.astype(float).tolist(), boxes.cls.tolist())
        payload[str(index)] = {"src": frame_jpeg(info.fingerprint, index, info),
                               "boxes": [[*xyxy, score, int(cls)] for xyxy, score, cls in rows]}
    return payload


def requested_frames(need: dict, n_frames: int) -> list[int]:
    """The frames a request from the browser names, as valid frame indices: at most MAX_REQUEST,
    each once, anything else dropped."""
    frames = need.get("frames")
    if not isinstance(frames, list):
        return []
    valid = (int(f) for f in frames if isinstance(f, int) and not isinstance(f, bool) and 0 <= f < n_frames)
    return list(dict.fromkeys(valid))[:MAX_REQUEST]


def view_payload(view: FlickerView, verdicts: dict[int, str], selected: np.ndarray | None) -> dict:
    """Everything the thresholds decide, for the whole video (small next to the frames)."""
    flicker, settings = view.flicker, view.settings
    imputed: dict[str, list] = {}
    for frame, box in zip(flicker.imputed_frame.tolist(), np.round(flicker.imputed_xyxy.astype(float), 1).tolist()):
        imputed.setdefault(str(frame), []).append(box)
    return {
        "id": f"{settings.iou_track:g} {settings.iou_assert:g} {settings.min_score:g} {settings.options}",
        "flags": (flicker.flag_array.astype(np.uint8) + ord("0")).tobytes().decode(),
        "counts": view.detections.counts_per_frame().tolist(),
        "imputed": imputed,
        "verdicts": {str(frame): verdict for frame, verdict in verdicts.items()},
        "selected": [] if selected is None else sorted(selected.tolist()),
        "min_score": float(np.float32(settings.min_score)),  # the float32 the detections are filtered with
        "k": settings.options.window,
        "names": {str(cls): name for cls, name in view.detections.names.items()},
        "palette": [list(color) for color in PALETTE],
        "imputed_color": list(IMPUTED_COLOR),
        "flagged_color": list(FLAGGED_COLOR),
    }


def frame_viewer(view: FlickerView, verdicts: dict[int, str], selected: np.ndarray | None) -> None:
    """The viewer, with the frames it asked for last (or the frame a move made from Python needs)."""
    info, n = view.video.info, view.n_frames
    store = resources.verdict_store()

    def sent(name: str):
        """What the viewer sent (None when a run lost the component's state: nothing to do then)."""
        return st.session_state[VIEWER].get(name)

    def on_need() -> None:
        if isinstance(need := sent("need"), dict) and isinstance(need.get("id"), int):
            handshake.want_frames(requested_frames(need, n), need["id"])

    def on_have() -> None:
        if (chunk := sent("have")) is not None:
            handshake.frames_received(chunk)

    def on_frame() -> None:
        if (frame := sent("frame")) is not None:
            handshake.frame_shown(int(np.clip(frame, 0, n - 1)))

    def on_verdict() -> None:
        verdict = sent("verdict") or {}
        if verdict.get("verdict") in (*VERDICTS, None) and 0 <= int(verdict.get("frame", -1)) < n:
            store.set(info.fingerprint, int(verdict["frame"]), verdict["verdict"], annotator=session.annotator())

    count, reveal = handshake.seek()
    chunk, frames, request = handshake.frames_wanted() or (None, (), None)
    _mount(key=VIEWER, on_need_change=on_need, on_have_change=on_have, on_frame_change=on_frame,
           on_verdict_change=on_verdict, data={
               "video": {"key": info.fingerprint, "n": n, "fps": info.fps, "width": info.width, "height": info.height},
               "view": view_payload(view, verdicts, selected),
               "seek": [count, handshake.current_frame(n), reveal],
               "frames": frames_payload(info, session.detections(), frames),
               "chunk": chunk,
               "served": request,
           })
