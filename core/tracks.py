"""Boxes linked into tracks, and tracks written with sparse keyframes for labelling tools.

An annotator fixes a track at a few keyframes instead of every frame, so pre-labels are worth most
as tracks. :func:`link_tracks` links boxes across frames with a plain IoU tracker (greedy, highest
IoU first, same class, bridging short gaps): the boxes are one video's detections plus the boxes
the flicker assertion imputed, which are means of their neighbours and so join the track they fill.
A detection tracker such as Ultralytics' ByteTrack needs per-box scores and a motion model tuned
for raw detector output; imputed boxes have no score and human labels neither, and the IoU between
neighbouring frames is what the assertions already rest on.

:func:`keyframes` keeps a track's first and last box and then, recursively, the box that linear
interpolation between the kept ones explains worst, until every box is within ``min_iou`` of its
interpolation: what CVAT and Label Studio draw between keyframes.
"""
from __future__ import annotations

import numpy as np

from core.detections import Detections, box_iou

LINK_IOU = 0.3
KEYFRAME_IOU = 0.9  # interpolating the written keyframes gives every box back at IoU >= this


def link_tracks(boxes: Detections, iou: float = LINK_IOU, max_gap: int = 1) -> np.ndarray:
    """A track id per box (0, 1, ...): each box joins the track of its class whose last box, at most
    ``max_gap`` frames back, overlaps it most at IoU >= ``iou`` (one box per track and frame),
    else starts a track."""
    track = np.full(len(boxes), -1, np.int64)
    # Only the tracks a box can still join, ids ascending: every track ever started, compared and copied on each
    # frame, made a long video quadratic (40,000 frames of short tracks: 30 s).
    ids, last_frame, last_box, last_cls = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 4), np.float32),
                                           np.empty(0, np.int64))
    started = 0
    for frame in range(boxes.n_frames):
        rows = np.arange(*boxes.rows(frame).indices(len(boxes)))
        live = frame - last_frame <= max_gap + 1
        ids, last_frame, last_box, last_cls = ids[live], last_frame[live], last_box[live], last_cls[live]
        if len(rows) and len(ids):
            overlap = box_iou(boxes.xyxy[rows][:, None], last_box[None])
            overlap[boxes.cls[rows][:, None] != last_cls[None]] = 0.0
            taken: set[int] = set()
            for k in np.argsort(-overlap, axis=None, kind="stable").tolist():
                r, t = divmod(k, overlap.shape[1])
                if overlap[r, t] < iou:
                    break
                if track[rows[r]] < 0 and t not in taken:
                    track[rows[r]] = ids[t]
                    taken.add(t)
                    last_frame[t], last_box[t] = frame, boxes.xyxy[rows[r]]
        fresh = rows[track[rows] < 0]
        track[fresh] = started + np.arange(len(fresh))
        started += len(fresh)
        ids = np.r_[ids, track[fresh]]
        last_frame = np.r_[last_frame, np.full(len(fresh), frame)]
        last_box = np.r_[last_box, boxes.xyxy[fresh]]
        last_cls = np.r_[last_cls, boxes.cls[fresh].astype(np.int64)]
    return track


def interpolated(frames: np.ndarray, xyxy: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Every box of a track as linear interpolation between its keyframes (``key``: row indices,
    ascending, first and last included): what a labelling tool draws."""
    return np.stack([np.interp(frames, frames[key], xyxy[key, k]) for k in range(4)], axis=1)


def keyframes(frames: np.ndarray, xyxy: np.ndarray, min_iou: float = KEYFRAME_IOU) -> np.ndarray:
    """The rows of one track (``frames`` ascending) to write as keyframes (see the module docstring). A keyframe
    changes only the interpolation of the two stretches beside it, so each stretch is split on its own: refitting
    the whole track after every keyframe added took minutes for a long track of a jittery detector's boxes."""
    key = {0, len(frames) - 1}
    stretches = [(0, len(frames) - 1)]
    while stretches:
        first, last = stretches.pop()
        if last - first < 2:
            continue  # no box between the two: keyframes are never refitted (a box with no area has IoU 0 with itself)
        rows = slice(first, last + 1)
        fit = box_iou(interpolated(frames[rows], xyxy[rows], np.array([0, last - first])), xyxy[rows])[1:-1]
        worst = int(np.argmin(fit))
        if fit[worst] < min_iou:
            key.add(first + 1 + worst)
            stretches += [(first, first + 1 + worst), (first + 1 + worst, last)]
    return np.array(sorted(key))


def written_keyframes(frames: np.ndarray, xyxy: np.ndarray, min_iou: float = KEYFRAME_IOU) -> tuple[np.ndarray, np.ndarray]:
    """The rows of one track a labelling tool gets as keyframes, and which of them end a visible
    stretch: :func:`keyframes`, plus both sides of every gap the tracker bridged (a frame with no
    box), so the tool hides the object there instead of drawing it through the gap."""
    before_gap = np.flatnonzero(np.diff(frames) > 1)
    key = np.union1d(keyframes(frames, xyxy, min_iou), np.r_[before_gap, before_gap + 1]).astype(np.int64)
    return key, np.isin(key, np.r_[before_gap, len(frames) - 1])


def track_rows(track: np.ndarray) -> list[np.ndarray]:
    """Row indices of each track, in order of appearance (rows are in frame order)."""
    order = np.argsort(track, kind="stable")
    starts = np.flatnonzero(np.diff(track[order])) + 1
    return sorted(np.split(order, starts), key=lambda rows: int(rows[0])) if len(order) else []


def video_boxes(detections: Detections, imputed_frame: np.ndarray, imputed_xyxy: np.ndarray, imputed_cls: np.ndarray,
                frames: np.ndarray) -> tuple[Detections, np.ndarray]:
    """A video's detections plus the imputed boxes on ``frames`` (the frames chosen for pre-labels),
    clipped to the image, in frame order, and which of them are imputed."""
    chosen = np.isin(imputed_frame, frames)
    frame = np.concatenate([detections.frame, imputed_frame[chosen]]).astype(np.int64)
    order = np.argsort(frame, kind="stable")
    xyxy = np.concatenate([detections.xyxy, np.asarray(imputed_xyxy, np.float32)[chosen]])
    if detections.image_size is not None:
        width, height = detections.image_size
        xyxy = np.clip(xyxy, 0, np.asarray([width, height, width, height], np.float32))
    boxes = Detections(frame[order], xyxy[order], np.concatenate([detections.score, np.ones(chosen.sum())])[order],
                       np.concatenate([detections.cls, imputed_cls[chosen]])[order], detections.names,
                       detections.n_frames, detections.image_size)
    return boxes, np.r_[np.zeros(len(detections), bool), np.ones(chosen.sum(), bool)][order]


def cvat_video_xml(name: str, boxes: Detections, imputed: np.ndarray, labels: dict[int, str], size: tuple[int, int]) -> bytes:
    """CVAT for video 1.1: one ``<track>`` per linked track, boxes only at its keyframes (CVAT
    interpolates between them), an ``outside`` box after its last frame and on the first frame of
    each gap, an ``imputed`` attribute."""
    from xml.etree import ElementTree as ET

    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    for key, value in (("name", name), ("size", boxes.n_frames), ("mode", "interpolation"), ("start_frame", 0),
                       ("stop_frame", boxes.n_frames - 1)):
        ET.SubElement(task, key).text = str(value)
    label_list = ET.SubElement(task, "labels")
    for label in labels.values():
        element = ET.SubElement(label_list, "label")
        ET.SubElement(element, "name").text = label
        attribute = ET.SubElement(ET.SubElement(element, "attributes"), "attribute")
        for key, value in (("name", "imputed"), ("mutable", "True"), ("input_type", "checkbox"),
                           ("default_value", "false"), ("values", "false\ntrue")):
            ET.SubElement(attribute, key).text = value
    original = ET.SubElement(task, "original_size")
    ET.SubElement(original, "width").text, ET.SubElement(original, "height").text = str(size[0]), str(size[1])
    for track_id, rows in enumerate(track_rows(link_tracks(boxes))):
        track = ET.SubElement(root, "track", id=str(track_id), label=labels[int(boxes.cls[rows[0]])], source="auto")
        frames = boxes.frame[rows].astype(np.float64)
        key, stretch_ends = written_keyframes(frames, boxes.xyxy[rows].astype(np.float64))
        for k, ends in zip(key.tolist(), stretch_ends.tolist()):
            _cvat_box(track, int(frames[k]), boxes.xyxy[rows[k]], outside=False, imputed=bool(imputed[rows[k]]))
            if ends and frames[k] + 1 < boxes.n_frames:  # hidden from the next frame (to the next keyframe)
                _cvat_box(track, int(frames[k]) + 1, boxes.xyxy[rows[k]], outside=True, imputed=False)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _cvat_box(track, frame: int, xyxy, outside: bool, imputed: bool) -> None:
    from xml.etree import ElementTree as ET

    x0, y0, x1, y1 = (f"{float(v):.2f}" for v in xyxy)
    box = ET.SubElement(track, "box", frame=str(frame), keyframe="1", outside=str(int(outside)), occluded="0",
                        xtl=x0, ytl=y0, xbr=x1, ybr=y1, z_order="0")
    ET.SubElement(box, "attribute", name="imputed").text = "true" if imputed else "false"


def mot_rows(boxes: Detections) -> bytes:
    """MOTChallenge ``frame,id,x,y,w,h,score,-1,-1,-1`` (frames and ids from 1), every box of every track."""
    track = link_tracks(boxes)
    xyxy = boxes.xyxy.astype(np.float64)
    lines = [f"{f + 1},{t + 1},{x0:.2f},{y0:.2f},{x1 - x0:.2f},{y1 - y0:.2f},{s:.4f},-1,-1,-1"
             for f, t, (x0, y0, x1, y1), s in zip(boxes.frame.tolist(), track.tolist(), xyxy.tolist(), boxes.score.tolist())]
    return ("\n".join(lines) + "\n").encode() if lines else b""
