"""``python -m core evaluate VIDEO --gt LABELS --labels``: the assertions run on human labels, so a
labelling team can check its own work. A box missing for one frame in a labelled track (flicker),
a box labelled in one frame only (ghost), a box whose class differs from the same object's just
before and after (class flip): each is listed with its frame, box and class, in the terminal and
as CSV. Labels in any format :mod:`core.label_formats` reads."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from core.assertions import ASSERTIONS, CLASS_FLIP, FLICKER, GHOST, NeighbourIndex
from core.bounded import inert_cell
from core.detections import Detections
from core.label_formats import read_boxes
from core.settings import FlickerSettings
from core.video import VideoInfo

LABEL_IOU = 0.5  # human boxes of one object overlap well from frame to frame: both thresholds default to this
COLUMNS = ("frame", "assertion", "x0", "y0", "x1", "y1", "class", "detail")


@dataclass(frozen=True)
class Suspicion:
    frame: int
    assertion: str
    xyxy: tuple[float, float, float, float]
    label: str
    detail: str


@dataclass(frozen=True)
class LabelAudit:
    source: Path
    n_frames: int
    suspicions: tuple[Suspicion, ...]

    def text(self) -> str:
        counts = {name: len({s.frame for s in self.suspicions if s.assertion == name}) for name in ASSERTIONS}
        lines = [f"{self.source.name}: {self.n_frames} frames; suspicious frames: "
                 + ", ".join(f"{counts[name]} {name}" for name in ASSERTIONS)]
        lines += [f"  frame {s.frame}: {s.assertion}: {s.label} at {_box(s.xyxy)}: {s.detail}" for s in self.suspicions[:50]]
        if len(self.suspicions) > 50:
            lines.append(f"  ... {len(self.suspicions) - 50} more (--out writes them all as CSV)")
        return "\n".join(lines)

    def csv_bytes(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for s in self.suspicions:
            # a label's name comes from the labels file: a spreadsheet never runs it as a formula
            writer.writerow([s.frame, s.assertion, *(f"{v:.1f}" for v in s.xyxy), inert_cell(s.label), inert_cell(s.detail)])
        return buffer.getvalue().encode()


def audit_labels(labels_path: Path, video: VideoInfo, relpath: str, labels_format: str = "auto",
                 settings: FlickerSettings | None = None) -> LabelAudit:
    """Every frame and box the assertions find suspicious in the labels of ``video``."""
    return audit_detections(read_boxes(labels_path, video, relpath, labels_format), Path(labels_path), settings)


def audit_detections(labels: Detections, source: Path, settings: FlickerSettings | None = None) -> LabelAudit:
    """The same, for labels already read (``source`` names them)."""
    settings = settings or FlickerSettings(LABEL_IOU, LABEL_IOU, assertions=ASSERTIONS)
    return LabelAudit(Path(source), labels.n_frames, tuple(sorted(_suspicions(labels, settings),
                                                                  key=lambda s: (s.frame, s.assertion))))


def _suspicions(labels: Detections, settings: FlickerSettings) -> list[Suspicion]:
    names = labels.names
    flicker = settings.evaluate(labels)
    found = [Suspicion(int(f), FLICKER, tuple(map(float, box)), names.get(int(c), str(c)),
                       "no box here, but the object is labelled just before and just after")
             for f, box, c in zip(flicker.imputed_frame, flicker.imputed_xyxy, flicker.imputed_cls)]
    index = NeighbourIndex.from_detections(settings.kept(labels))
    if GHOST in settings.assertions:
        found += [Suspicion(int(labels.frame[row]), GHOST, tuple(map(float, labels.xyxy[row])),
                            names.get(int(labels.cls[row]), ""), "labelled in this frame only")
                  for row in index.ghost_boxes(settings.iou_track).tolist()]
    if CLASS_FLIP in settings.assertions:
        found += [Suspicion(int(labels.frame[row]), CLASS_FLIP, tuple(map(float, labels.xyxy[row])),
                            names.get(int(labels.cls[row]), ""),
                            f"labelled {names.get(int(index.neighbour_class[row]), '')!r} just before and just after")
                  for row in index.flipped_boxes(settings.iou_track).tolist()]
    return found


def _box(xyxy) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in xyxy) + ")"
