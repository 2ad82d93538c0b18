import numpy as np

from core.detections import FrameDetections
from core.render import IMPUTED_COLOR, class_color, render_frame
from ui.plots import f1_map_figure


def test_render_draws_solid_predictions_and_dashed_imputed_boxes():
    frame = np.zeros((120, 160, 3), np.uint8)
    out = render_frame(frame, FrameDetections(np.array([[10, 20, 60, 100]]), np.array([0.9]), np.array([2])), {2: "car"},
                       imputed_xyxy=np.array([[80, 20, 150, 100]]), flagged=True)
    assert frame.sum() == 0, "the input frame is not modified"
    right_edge = out[30:90, 60]  # solid: every pixel of the left box's right edge is coloured
    assert (right_edge == class_color(2)).all(axis=1).mean() > 0.95
    imputed_edge = out[30:90, 150]  # dashed: some pixels of the imputed box's edge, not all
    coloured = (np.abs(imputed_edge.astype(int) - IMPUTED_COLOR).sum(axis=1) < 60).mean()
    assert 0.3 < coloured < 0.8
    assert (out[0, 80] == (214, 39, 40)).all(), "flagged frames get a red border"


def test_render_without_boxes_is_the_frame():
    frame = np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    assert np.array_equal(render_frame(frame, FrameDetections(np.empty((0, 4)), np.empty(0), np.empty(0)), {}), frame)


def test_f1_map_marks_current_and_suggested_thresholds():
    from core.qa import ThresholdEstimate

    estimates = [ThresholdEstimate(t, a, 0.8, (0.6, 0.9), 0.5, (0.3, 0.7), 2 * 0.4 / 1.3, 7)
                 for t in (0.5, 0.8) for a in (0.4, 0.6)]
    figure = f1_map_figure(estimates, current=(0.8, 0.6), suggested=(0.5, 0.4))
    heatmap, current, suggested = figure.data
    assert list(heatmap.x) == [0.5, 0.8] and list(heatmap.y) == [0.4, 0.6]
    assert "P 0.80 [0.60, 0.90]" in heatmap.text[0][0]
    assert (current.x[0], current.y[0]) == (0.8, 0.6) and (suggested.x[0], suggested.y[0]) == (0.5, 0.4)
    # the axes span every threshold whatever is marked: they followed the markers and moved between redraws
    assert tuple(figure.layout.xaxis.range) == tuple(figure.layout.yaxis.range) == (0, 1)
