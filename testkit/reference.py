"""The reference: the flickering assertion as a plain loop, written from the tutorial (seed 001).

For every frame i whose neighbours i-1 and i+1 both have boxes: convert boxes to int xyxy; every
pair (p in i-1, n in i+1) with IoU above the tracking threshold is one object; its mean box,
truncated to int, is where the object should be in frame i; if frame i has no box, or every box
of frame i has IoU below the assertion threshold with the mean box, the frame is flagged and the
mean box imputed. IoUs use torchvision's own ``box_iou`` on int tensors, as the tutorial does. Tests check the
fast engine against it and bench/flicker.py times it.
"""
import torch
from torchvision.ops import box_iou


def _int_xyxy(bbox):
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def oracle_flickering(predictions_list, iou_track, iou_assert):
    n = len(predictions_list)
    flags = [False] * n
    imputed = [[] for _ in range(n)]
    for i in range(1, n - 1):
        prev = predictions_list[i - 1]["predictions"]
        nxt = predictions_list[i + 1]["predictions"]
        if not prev or not nxt:
            continue
        curr = predictions_list[i]["predictions"]
        prev_boxes = torch.tensor([_int_xyxy(p["bbox"]) for p in prev], dtype=torch.int)
        next_boxes = torch.tensor([_int_xyxy(p["bbox"]) for p in nxt], dtype=torch.int)
        curr_boxes = torch.tensor([_int_xyxy(p["bbox"]) for p in curr], dtype=torch.int).reshape(-1, 4)
        ious = box_iou(prev_boxes, next_boxes)
        for p in range(len(prev)):
            for q in range(len(nxt)):
                if not bool(ious[p, q] > iou_track):
                    continue
                mean = torch.stack([prev_boxes[p], next_boxes[q]]).to(torch.float32).mean(dim=0).int()
                if len(curr) == 0:
                    missed = True
                else:
                    with_curr = box_iou(curr_boxes, mean.unsqueeze(0))
                    missed = all(bool(v < iou_assert) for v in with_curr.flatten())
                if missed:
                    flags[i] = True
                    imputed[i].append([mean.tolist()])
    return flags, imputed


def _plain_iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _frames(detections):
    return [[(detections.xyxy[k].tolist(), int(detections.cls[k])) for k in range(*detections.rows(i).indices(len(detections)))]
            for i in range(detections.n_frames)]


def oracle_ghost(detections, iou_track):
    """Frame i (1..n-2) is flagged when one of its boxes has no box in frame i-1 and none in frame
    i+1 overlapping it at IoU >= iou_track: the issue's words as a loop."""
    frames = _frames(detections)
    flags = [False] * len(frames)
    for i in range(1, len(frames) - 1):
        for box, _ in frames[i]:
            if all(_plain_iou(box, other) < iou_track for other, _ in frames[i - 1] + frames[i + 1]):
                flags[i] = True
    return flags


def oracle_class_flip(detections, iou_track):
    """Frame i (1..n-2) is flagged when one of its boxes has a best match (highest IoU, class
    ignored, IoU >= iou_track) in frame i-1 and one in frame i+1, of one class, not the box's."""
    frames = _frames(detections)
    flags = [False] * len(frames)
    for i in range(1, len(frames) - 1):
        for box, cls in frames[i]:
            matches = []
            for neighbour in (frames[i - 1], frames[i + 1]):
                scored = [(_plain_iou(box, other), other_cls) for other, other_cls in neighbour]
                best = max(scored, key=lambda s: s[0], default=None)
                matches.append(best if best is not None and best[0] >= iou_track else None)
            if all(matches) and matches[0][1] == matches[1][1] != cls:
                flags[i] = True
    return flags
