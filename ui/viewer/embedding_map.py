"""The local selection's embedding map: a small ``st.components.v2`` component in plain JS (map.js).

Why not a Plotly chart: a click on it reran the whole page before the viewer moved (about a second),
overlapping points along a curve of similar frames opened a neighbour of the frame clicked, and the
frame in the viewer could not be marked without another rerun on every step. Here the browser draws
the points, spreads those that would overlap, and moves the viewer itself through a window event.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ui.js import component_js

_HERE = Path(__file__).parent
_mount = st.components.v2.component(
    "flicker_review.embedding_map", html=(_HERE / "map.html").read_text(), css=(_HERE / "map.css").read_text(),
    js=component_js(_HERE / "map.js"), isolate_styles=False)


def map_payload(video_key: str, xy: np.ndarray, score: np.ndarray, selected: np.ndarray, frame: int) -> dict:
    """Each frame's 2D place and flicker score, the selected frames, and the frame on screen (the
    viewer says where it goes after that)."""
    return {"key": video_key, "x": np.round(xy[:, 0].astype(float), 5).tolist(),
            "y": np.round(xy[:, 1].astype(float), 5).tolist(), "score": np.round(score.astype(float), 3).tolist(),
            "selected": sorted(selected.tolist()), "frame": int(frame)}


def embedding_map(video_key: str, xy: np.ndarray, score: np.ndarray, selected: np.ndarray, frame: int) -> None:
    _mount(key="embedding_map", data=map_payload(video_key, xy, score, selected, frame))
