"""What the review page and the frame viewer tell each other, kept per tab in the session.

The viewer (JS in the browser) fetches its frames and moves on its own; Python moves it only
through :func:`go_to`. Each move is numbered, so the viewer makes each once however often the page
reruns.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

FRAME = "frame"  # the frame on screen
SEEK = "seek"  # (count, reveal): moves made from Python (see seek())


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
    """Move the viewer to ``frame`` (clipped to the video). ``reveal`` scrolls the viewer into
    view, for seeks made further down the page."""
    frame = int(np.clip(frame, 0, n_frames - 1))
    st.session_state[SEEK] = (seek()[0] + 1, reveal)
    frame_shown(frame)


def seek() -> tuple[int, bool]:
    """How many moves Python has made (the viewer makes each once, however often the page reruns),
    and whether the last one asked to scroll the viewer into view."""
    return st.session_state.get(SEEK, (0, False))
