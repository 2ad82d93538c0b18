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
