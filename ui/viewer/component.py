"""The frame viewer: a small ``st.components.v2`` component in plain JS (viewer.js).

Why a component: Streamlit reruns the script and re-sends the page on every interaction, which made
a frame step take about a second and a held arrow key queue reruns. Here the browser holds frames
(JPEG, fetched over HTTP: see :mod:`ui.viewer.frames`) and the boxes, flags, imputed boxes and
verdicts of the whole video, so steps, playback, seeks, the timeline and the i-k..i+k strip never
wait for a rerun. Python hears where the viewer settled and verdicts, each with the frame it was
given on, and moves it (:func:`ui.viewer.handshake.go_to`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.render import FLAGGED_COLOR, IMPUTED_COLOR, PALETTE
from core.verdicts import VERDICTS
from ui import resources, session
from ui.flicker_view import FlickerView
from ui.viewer import frames, handshake

_HERE = Path(__file__).parent
_mount = st.components.v2.component(
    "flicker_review.viewer", html=(_HERE / "viewer.html").read_text(), css=(_HERE / "viewer.css").read_text(),
    js=(_HERE / "viewer.js").read_text(), isolate_styles=False)
VIEWER = "viewer"  # the component's key


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
    """The viewer, moved when Python made a move since it last drew."""
    info, n = view.video.info, view.n_frames
    store = resources.verdict_store()

    def sent(name: str):
        """What the viewer sent (None when a run lost the component's state: nothing to do then)."""
        return st.session_state[VIEWER].get(name)

    def on_frame() -> None:
        if (frame := sent("frame")) is not None:
            handshake.frame_shown(int(np.clip(frame, 0, n - 1)))

    def on_verdict() -> None:
        verdict = sent("verdict") or {}
        if verdict.get("verdict") in (*VERDICTS, None) and 0 <= int(verdict.get("frame", -1)) < n:
            store.set(info.fingerprint, int(verdict["frame"]), verdict["verdict"], annotator=session.annotator())

    count, reveal = handshake.seek()
    review = session.review()
    _mount(key=VIEWER, on_frame_change=on_frame, on_verdict_change=on_verdict, data={
        "video": {"key": info.fingerprint, "n": n, "fps": info.fps, "width": info.width, "height": info.height,
                  "frames": frames.frames_url(info), "boxes": frames.boxes_url(review.detection_id, review.detections)},
        "view": view_payload(view, verdicts, selected),
        "seek": [count, handshake.current_frame(n), reveal],
    })
