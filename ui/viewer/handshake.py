"""What the review page and the frame viewer tell each other, kept per tab in the session.

The viewer (JS in the browser) holds frames and moves on its own; Python moves it only through
:func:`go_to`, and sends frames only when the viewer asked for them (:func:`want_frames`) or a move
needs one. Each message is numbered, so the viewer acts on each once however often the page reruns.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import streamlit as st

FRAME = "frame"  # the frame on screen
SEEK = "seek"  # (count, reveal): moves made from Python (see seek())
FRAMES = "viewer_frames"  # (count, frames, received): the frames the viewer is sent, numbered
VIEWER_REQUEST = "viewer_request"  # id of the viewer's latest request for frames


def reset() -> None:
    """Back to frame 0 with no move pending: another video or other detections are under review."""
    st.session_state.pop(SEEK, None)
    st.session_state[FRAME] = 0


def current_frame(n_frames: int) -> int:
    return int(np.clip(st.session_state.get(FRAME, 0), 0, max(n_frames - 1, 0)))


def frame_shown(frame: int) -> None:
    """The viewer settled on ``frame`` (it is already on screen): remember it, move nothing."""
    st.session_state[FRAME] = frame


def go_to(frame: int, n_frames: int, reveal: bool = False) -> None:
    """Move the viewer to ``frame`` (clipped to the video), sending that frame alone with the move:
    one frame is on screen sooner than a chunk, and the viewer asks for its neighbours itself.
    ``reveal`` scrolls the viewer into view, for seeks made further down the page."""
    frame = int(np.clip(frame, 0, n_frames - 1))
    st.session_state[SEEK] = (seek()[0] + 1, reveal)
    want_frames([frame])
    frame_shown(frame)


def seek() -> tuple[int, bool]:
    """How many moves Python has made (the viewer makes each once, however often the page reruns),
    and whether the last one asked to scroll the viewer into view."""
    return st.session_state.get(SEEK, (0, False))


def want_frames(frames: Iterable[int], request: int | None = None) -> None:
    """Send the viewer ``frames`` (answering its ``request``, when it asked)."""
    count = st.session_state.get(FRAMES, (0,))[0] + 1
    st.session_state[FRAMES] = (count, tuple(frames), False)
    if request is not None:
        st.session_state[VIEWER_REQUEST] = request


def frames_wanted() -> tuple[int, tuple[int, ...], int | None] | None:
    """``(count, frames, request)`` of the frames to send with this run. They go with every run
    until the viewer says it has them (an update can be dropped when reruns overlap), and with none
    after that, so a threshold move or a settled frame re-sends no frames."""
    count, frames, received = st.session_state.get(FRAMES, (0, (), True))
    return None if received else (count, frames, st.session_state.get(VIEWER_REQUEST))


def frames_received(count: int) -> None:
    """The viewer has the frames of message ``count``: stop sending them."""
    frames = st.session_state.get(FRAMES)
    if frames is not None and frames[0] == count:
        st.session_state[FRAMES] = (*frames[:2], True)
