import numpy as np

from core.detections import FrameDetections
from core.render import IMPUTED_COLOR, class_color, render_frame
from ui.plots import flicker_timeline


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


def test_timeline_marks_flagged_frames_and_current_frame():
    counts = np.array([2, 3, 0, 3, 2] * 5000)  # 25,000 frames
    flags = np.zeros(len(counts), bool)
    flags[[2, 7, 24_000]] = True
    figure = flicker_timeline(counts, flags, flags.astype(int), current=7, verdicts={7: "miss", 2: "false_alarm"})
    traces = {trace.name: trace for trace in figure.data}
    assert traces["boxes per frame"].type == "scattergl" and len(traces["boxes per frame"].x) == 25_000
    assert list(traces["flagged (flicker)"].x) == [2, 7, 24_000]
    assert list(traces["true miss"].x) == [7] and list(traces["false alarm"].x) == [2]
    assert figure.layout.shapes[0].x0 == 7
