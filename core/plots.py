"""Plotly figures for the review page: the flicker timeline under the video."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

VERDICT_STYLE = {"miss": ("true miss", "#2ca02c", "circle"), "false_alarm": ("false alarm", "#7f7f7f", "x")}


def flicker_timeline(
    boxes_per_frame: np.ndarray,
    flags: np.ndarray,
    imputed_per_frame: np.ndarray,
    current: int,
    verdicts: dict[int, str] | None = None,
    height: int = 260,
) -> go.Figure:
    """Boxes per frame as a line, flagged frames as red marks, the current frame as a vertical line.

    WebGL traces (Scattergl) keep 20,000+ frames smooth. Every frame is a selectable point, so a
    click anywhere on the line selects that frame.
    """
    frames = np.arange(len(boxes_per_frame))
    figure = go.Figure()
    figure.add_trace(go.Scattergl(
        x=frames, y=boxes_per_frame, mode="lines+markers", name="boxes per frame",
        line={"color": "#1f77b4", "width": 1.5}, marker={"size": 3, "color": "#1f77b4"},
        hovertemplate="frame %{x}<br>%{y} boxes<extra></extra>",
    ))
    flagged = np.flatnonzero(flags)
    figure.add_trace(go.Scattergl(
        x=flagged, y=boxes_per_frame[flagged] if len(flagged) else [], mode="markers", name="flagged (flicker)",
        marker={"size": 9, "color": "#d62728", "symbol": "triangle-down"},
        customdata=imputed_per_frame[flagged] if len(flagged) else [],
        hovertemplate="frame %{x}: flagged<br>%{customdata} imputed box(es)<extra></extra>",
    ))
    for verdict, (label, color, symbol) in VERDICT_STYLE.items():
        marked = sorted(f for f, v in (verdicts or {}).items() if v == verdict and f < len(frames))
        if marked:
            figure.add_trace(go.Scattergl(
                x=marked, y=np.full(len(marked), -0.6), mode="markers", name=label,
                marker={"size": 8, "color": color, "symbol": symbol}, hovertemplate=f"frame %{{x}}: {label}<extra></extra>",
            ))
    figure.add_vline(x=current, line={"color": "#ff7f0e", "width": 2})
    figure.update_layout(
        height=height, margin={"l": 40, "r": 10, "t": 10, "b": 30}, hovermode="closest", dragmode="zoom",
        legend={"orientation": "h", "y": 1.12, "x": 0}, xaxis={"title": None, "rangemode": "tozero"},
        yaxis={"title": "boxes", "rangemode": "tozero"}, clickmode="event+select",
    )
    return figure
