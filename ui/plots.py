"""Figures: the estimated F1 map over the thresholds (Verdicts & thresholds page, Plotly), the worst
videos of a batch (Fleet page, Vega-Lite as Streamlit's own charts)."""
from __future__ import annotations

import altair as alt
import pandas as pd
import plotly.graph_objects as go

NAME_LABEL_PX = 380  # a video's name beside its bar: whole up to ~55 characters (Vega-Lite's default cut at 180 px)


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
    # The legend sits under the axis: above it, it covered the toolbar. Both axes span every threshold: left to
    # Plotly, their range followed the markers and changed between redraws.
    figure.update_layout(height=height, margin={"l": 50, "r": 10, "t": 30, "b": 85},
                         xaxis={"title": "IoU tracking", "dtick": 0.2, "range": [0, 1]},
                         yaxis={"title": "IoU assertion", "dtick": 0.2, "range": [0, 1]},
                         legend={"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0})
    return figure


def flagged_per_video_chart(rows: pd.DataFrame) -> alt.Chart:
    """One horizontal bar per video (``Video``, ``Flagged``), most flagged on top, each name whole
    (Streamlit's bar chart cut ``south_gate_cam_02.mp4`` to ``south_gate_cam…``) and in full on hover."""
    bars = alt.Chart(rows[["Video", "Flagged"]]).mark_bar()
    return bars.encode(
        x=alt.X("Flagged:Q", title="Flagged frames", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("Video:N", sort="-x", title=None, axis=alt.Axis(labelLimit=NAME_LABEL_PX)),
        tooltip=["Video", "Flagged"])
