"""Plotly figures for the review page: the 2D embedding map of the local selection."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def embedding_map_figure(xy: np.ndarray, score: np.ndarray, selected: np.ndarray | None,
                         height: int = 440) -> go.Figure:
    """Frames in 2D embedding space coloured by flickering score (as the tutorial's platform shows
    it), selected frames ringed. Rings are drawn first and wider than the points, so a ringed
    point keeps its colour; every point is clickable."""
    frames = np.arange(len(xy))
    figure = go.Figure()
    if selected is not None and len(selected):
        figure.add_trace(go.Scattergl(
            x=xy[selected, 0], y=xy[selected, 1], mode="markers", name="selected", customdata=selected,
            marker={"size": 15, "color": "rgba(0,0,0,0)", "line": {"color": "#9467bd", "width": 2}},
            hovertemplate="frame %{customdata}: selected<extra></extra>",
        ))
    figure.add_trace(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", name="frames", customdata=frames,
        marker={"size": 7, "color": score, "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                "colorbar": {"title": "flicker", "thickness": 12}},
        hovertemplate="frame %{customdata}<br>flicker %{marker.color:.2f}<extra></extra>",
    ))
    # The legend sits under the plot: above it, it covered the toolbar.
    figure.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, clickmode="event+select",
                         legend={"orientation": "h", "yanchor": "top", "y": -0.02, "x": 0}, xaxis={"visible": False},
                         yaxis={"visible": False})
    return figure


def f1_map_figure(estimates, current: tuple[float, float], suggested: tuple[float, float] | None,
                  height: int = 380) -> go.Figure:
    """Estimated F1 over the threshold grid (from verdicts), the current thresholds and the suggested
    ones marked; hover shows precision and recall with their 90% intervals."""
    tracks = sorted({e.iou_track for e in estimates})
    asserts = sorted({e.iou_assert for e in estimates})
    at = {(e.iou_track, e.iou_assert): e for e in estimates}
    f1 = [[at[t, a].f1 for t in tracks] for a in asserts]
    text = [[(f"P {at[t, a].precision:.2f} [{at[t, a].precision_ci[0]:.2f}, {at[t, a].precision_ci[1]:.2f}]<br>"
              f"R {at[t, a].recall:.2f} [{at[t, a].recall_ci[0]:.2f}, {at[t, a].recall_ci[1]:.2f}]<br>"
              f"{at[t, a].n_flagged} flagged") for t in tracks] for a in asserts]
    figure = go.Figure(go.Heatmap(x=tracks, y=asserts, z=f1, text=text, colorscale="Viridis", zmin=0, zmax=1,
                                  colorbar={"title": "est. F1"},
                                  hovertemplate="track %{x:.2f} / assert %{y:.2f}<br>F1 %{z:.2f}<br>%{text}<extra></extra>"))
    figure.add_trace(go.Scatter(x=[current[0]], y=[current[1]], mode="markers", name="current",
                                marker={"size": 14, "color": "#ff7f0e", "symbol": "x"}))
    if suggested is not None:
        figure.add_trace(go.Scatter(x=[suggested[0]], y=[suggested[1]], mode="markers", name="suggested",
                                    marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "#d62728", "width": 3},
                                            "symbol": "circle"}))
    # The legend sits under the axis: above it, it covered the toolbar.
    figure.update_layout(height=height, margin={"l": 50, "r": 10, "t": 30, "b": 70},
                         xaxis={"title": "IoU tracking"}, yaxis={"title": "IoU assertion"},
                         legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    return figure
