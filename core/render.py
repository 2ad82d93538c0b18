"""Drawing predictions on frames: solid boxes per class with label and score, dashed imputed boxes,
a red frame border for flagged frames. Pure numpy/OpenCV, so the app and the benchmarks share it."""
from __future__ import annotations

import cv2
import numpy as np

from core.detections import FrameDetections

# Tableau-like colours (RGB), readable on video; imputed boxes get their own colour.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (140, 86, 75), (227, 119, 194),
           (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232)]
IMPUTED_COLOR = (255, 221, 0)
FLAGGED_COLOR = (214, 39, 40)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_color(class_id: int) -> tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def draw_dashed_rectangle(image: np.ndarray, xyxy, color, thickness: int = 2, dash: int = 9) -> None:
    """Dashes along each edge; the tutorial's figures draw the imputed (mean) box this way."""
    x0, y0, x1, y1 = (int(round(v)) for v in xyxy)
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            p = (ax + (bx - ax) * start // max(length, 1), ay + (by - ay) * start // max(length, 1))
            q = (ax + (bx - ax) * end // max(length, 1), ay + (by - ay) * end // max(length, 1))
            cv2.line(image, p, q, color, thickness, cv2.LINE_AA)


def _label(image: np.ndarray, text: str, x: int, y: int, color, scale: float = 0.45) -> None:
    weight = max(1, round(scale * 2))  # a larger label in strokes as heavy: readable once the image is shown smaller
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, weight)
    y = max(y, h + baseline + 2)
    cv2.rectangle(image, (x, y - h - baseline - 2), (x + w + 4, y), color, -1)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    cv2.putText(image, text, (x + 2, y - baseline), _FONT, scale, (0, 0, 0) if luminance > 150 else (255, 255, 255), weight,
                cv2.LINE_AA)


def render_frame(
    frame: np.ndarray,
    boxes: FrameDetections,
    names: dict[int, str],
    imputed_xyxy: np.ndarray | None = None,
    flagged: bool = False,
    caption: str | None = None,
    thickness: int = 2,
    imputed_labels: list[str] | None = None,
    imputed_label_scale: float = 0.45,
) -> np.ndarray:
    """A copy of the RGB ``frame`` with one frame's predictions (solid) and imputed boxes (dashed,
    labelled "imputed" or by ``imputed_labels``, at ``imputed_label_scale``) drawn on it."""
    image = np.ascontiguousarray(frame).copy()
    for box, s, c in zip(boxes.xyxy, boxes.score, boxes.cls):
        color = class_color(c)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        _label(image, f"{names.get(int(c), str(int(c)))} {float(s):.2f}", x0, y0, color)
    imputed = np.asarray(imputed_xyxy if imputed_xyxy is not None else np.empty((0, 4)))
    for box, label in zip(imputed, imputed_labels or ["imputed"] * len(imputed)):
        draw_dashed_rectangle(image, box, IMPUTED_COLOR, thickness + 1)
        _label(image, label, int(box[0]), int(box[3]) + int(36 * imputed_label_scale), IMPUTED_COLOR, imputed_label_scale)
    if flagged:
        cv2.rectangle(image, (0, 0), (image.shape[1] - 1, image.shape[0] - 1), FLAGGED_COLOR, 6)
    if caption:
        _label(image, caption, 8, 28, FLAGGED_COLOR if flagged else (40, 40, 40), scale=0.6)
    return image
