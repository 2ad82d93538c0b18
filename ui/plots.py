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
