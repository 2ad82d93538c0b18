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
    selected: np.ndarray | None = None,
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
    if selected is not None and len(selected):
        top = float(boxes_per_frame.max()) + 0.8 if len(boxes_per_frame) else 1.0
        figure.add_trace(go.Scattergl(
            x=np.sort(selected), y=np.full(len(selected), top), mode="markers", name="selected",
            marker={"size": 8, "color": "#9467bd", "symbol": "star"}, hovertemplate="frame %{x}: selected<extra></extra>",
        ))
    figure.add_vline(x=current, line={"color": "#ff7f0e", "width": 2})
    figure.update_layout(
        height=height, margin={"l": 40, "r": 10, "t": 10, "b": 30}, hovermode="closest", dragmode="zoom",
        legend={"orientation": "h", "y": 1.12, "x": 0}, xaxis={"title": None, "rangemode": "tozero"},
        yaxis={"title": "boxes", "rangemode": "tozero"}, clickmode="event+select",
    )
    return figure


def embedding_map_figure(xy: np.ndarray, score: np.ndarray, selected: np.ndarray | None, current: int,
                         height: int = 420) -> go.Figure:
    """Frames in 2D embedding space coloured by flickering score (as the tutorial's platform shows
    it); selected frames ringed, the current frame marked. Every point is clickable."""
    frames = np.arange(len(xy))
    figure = go.Figure(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", name="frames", customdata=frames,
        marker={"size": 6, "color": score, "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                "colorbar": {"title": "flicker"}},
        hovertemplate="frame %{customdata}<br>flicker %{marker.color:.2f}<extra></extra>",
    ))
    if selected is not None and len(selected):
        figure.add_trace(go.Scattergl(
            x=xy[selected, 0], y=xy[selected, 1], mode="markers", name="selected", customdata=selected,
            marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"color": "#9467bd", "width": 2}},
            hovertemplate="frame %{customdata}: selected<extra></extra>",
        ))
    figure.add_trace(go.Scattergl(
        x=xy[[current], 0], y=xy[[current], 1], mode="markers", name="current frame", customdata=[current],
        marker={"size": 14, "color": "#ff7f0e", "symbol": "x"}, hovertemplate="frame %{customdata}<extra></extra>",
    ))
    figure.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, clickmode="event+select",
                         legend={"orientation": "h", "y": 1.06, "x": 0}, xaxis={"visible": False},
                         yaxis={"visible": False})
    return figure
