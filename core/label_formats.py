"""Boxes made elsewhere, for one video: predictions (or labels) in Lightly's format, COCO, YOLO, CVAT,
MOTChallenge or YouTube-VIS, read into :class:`~core.detections.Detections`.

Library per format: COCO, CVAT (for images) and YouTube-VIS through Lightly's ``labelformat``
readers; Lightly's own format through :func:`core.lightly.validate.import_predictions`; YOLO and
MOT read here (YOLO's boxes are relative to the image, and the video's size is known without
reading images, which labelformat's YOLO reader needs; MOT is a CSV of frame, id, box, score).

Frames are matched to the video's frames: an image's file name by Lightly's frame naming
(``walk-012-mp4.png``), else by the trailing number of its stem (``frame_000012.jpg``: frame 12,
0-based); MOT by its 1-based frame column; YouTube-VIS by position in the video's frame list.
Category names become the classes of the review and of the export's schema. Every file is
untrusted: its size is capped, and a box that is not finite, has no area, or lies outside the
image, a frame outside the video, or a name that is no frame is refused in one line.
"""
from __future__ import annotations

import math
import re
from pathlib import Path, PurePosixPath

import numpy as np

from core.bounded import read_capped
from core.detections import Detections, xywh_to_xyxy
from core.errors import PredictionFormatError
from core.lightly.datasource import SCHEMA
from core.video import VideoInfo

FORMATS = ("auto", "lightly", "coco", "yolo", "cvat", "mot", "youtubevis")
MAX_LABEL_BYTES = 512 << 20
_LIGHTLY_FRAME = re.compile(r"-(\d+)-[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)?$")  # walk-012-mp4.png, or .txt beside it
_TRAILING_NUMBER = re.compile(r"(\d+)\D*$")


def read_boxes(path: str | Path, video: VideoInfo, relpath: str, fmt: str = "auto") -> Detections:
    """The boxes ``path`` holds for ``video`` (named ``relpath`` in an export), as Detections."""
    path = Path(path)
    if not path.exists():
        raise PredictionFormatError(f"Predictions not found: {path}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise PredictionFormatError(f"Unknown predictions format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt != "lightly" and path.is_file() and path.stat().st_size > MAX_LABEL_BYTES:
        raise PredictionFormatError(f"{path} is larger than {MAX_LABEL_BYTES >> 20} MiB")
    return _READERS[fmt](path, video, relpath)


def detect_format(path: Path) -> str:
    """The format of a file or folder from its content (its name only where the content agrees)."""
    if path.is_dir():
        if (path / SCHEMA).is_file():
            return "lightly"
        if (path / "data.yaml").is_file():
            return "yolo"
        raise PredictionFormatError(f"{path}: a folder of predictions is a Lightly task folder (schema.json) or a "
                                    "YOLO dataset (data.yaml)")
    if path.name == "data.yaml":
        return "yolo"
    head = read_capped(path, MAX_LABEL_BYTES, "Predictions file")[:4096].lstrip()
    if head.startswith(b"<"):
        return "cvat"
    if head.startswith(b"{"):  # COCO lists images; anything else a JSON holds is read as YouTube-VIS (videos)
        data = read_capped(path, MAX_LABEL_BYTES, "Predictions file")
        return "coco" if b'"images"' in data and b'"videos"' not in data else "youtubevis"
    return "mot"


def frame_of(file_name: str, n_frames: int) -> int:
    """The video frame an image file name stands for (see the module docstring)."""
    name = PurePosixPath(str(file_name).replace("\\", "/")).name
    match = _LIGHTLY_FRAME.search(name) or _TRAILING_NUMBER.search(PurePosixPath(name).stem)
    if match is None or len(match.group(1)) > 9:
        raise PredictionFormatError(f"{name[:80]!r} names no frame (expected e.g. walk-012-mp4.png or frame_000012.jpg)")
    frame = int(match.group(1))
    if frame >= n_frames:
        raise PredictionFormatError(f"{name[:80]!r} is frame {frame}; the video has {n_frames} frames")
    return frame


def _from_rows(frames: list[int], xyxy: list, scores: list, classes: list, names: dict[int, str], video: VideoInfo,
               source: Path) -> Detections:
    """Checked rows (one box each, any frame order) as Detections of the whole video."""
    box = np.asarray(xyxy, np.float64).reshape(-1, 4)
    size = np.array([video.width, video.height, video.width, video.height], np.float64)
    bad = ~np.isfinite(box).all(axis=1) | (box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1])
    bad |= (box[:, 2] <= 0) | (box[:, 3] <= 0) | (box[:, 0] >= size[0]) | (box[:, 1] >= size[1])
    score = np.asarray(scores, np.float64)
    bad |= ~np.isfinite(score) | (score < 0) | (score > 1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise PredictionFormatError(f"{source}: box {k + 1} (frame {frames[k]}) is not a box inside the "
                                    f"{video.width}x{video.height} image with a score in [0, 1]")
    order = np.argsort(np.asarray(frames, np.int64), kind="stable")
    detections = Detections(np.asarray(frames, np.int64)[order], np.clip(box, 0, size)[order], score[order],
                            np.asarray(classes, np.int64)[order], names, video.frame_count, (video.width, video.height))
    return detections.in_canonical_order()


def _lightly(path: Path, video: VideoInfo, relpath: str) -> Detections:
    from core.lightly.validate import import_predictions

    if not path.is_dir():
        raise PredictionFormatError(f"{path}: Lightly predictions are a task folder (.lightly/predictions/TASK)")
    return import_predictions(path, relpath, video.frame_count, (video.width, video.height))


def _image_labels(reader, path: Path, video: VideoInfo) -> Detections:
    """COCO or CVAT through labelformat: one image per frame, boxes in pixels."""
    from labelformat.errors import LabelWithoutImageError
    from labelformat.types import ParseError

    frames, boxes, scores, classes = [], [], [], []
    try:
        labels = list(reader(input_file=path).get_labels())
        categories = {category.id: category.name for category in reader(input_file=path).get_categories()}
    except (ParseError, LabelWithoutImageError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise PredictionFormatError(f"{path}: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}") from None
    for label in labels:
        frame = frame_of(label.image.filename, video.frame_count)
        for detected in label.objects:
            frames.append(frame)
            boxes.append([detected.box.xmin, detected.box.ymin, detected.box.xmax, detected.box.ymax])
            scores.append(getattr(detected, "confidence", None) if getattr(detected, "confidence", None) is not None else 1.0)
            classes.append(detected.category.id)
    return _from_rows(frames, boxes, scores, classes, categories, video, path)


def _coco(path: Path, video: VideoInfo, relpath: str) -> Detections:
    from labelformat.formats import COCOObjectDetectionInput

    return _image_labels(COCOObjectDetectionInput, path, video)


def _cvat(path: Path, video: VideoInfo, relpath: str) -> Detections:
    from labelformat.formats import CVATObjectDetectionInput

    return _image_labels(CVATObjectDetectionInput, path, video)


def _yolo(path: Path, video: VideoInfo, relpath: str) -> Detections:
    """A YOLO dataset: ``data.yaml`` (class names) and ``labels/.../NAME.txt`` per image, rows
    ``class cx cy w h [score]`` relative to the image (here: the video's frame size)."""
    from core.bounded import read_config

    data_yaml = path / "data.yaml" if path.is_dir() else path
    config = read_config(data_yaml, "YOLO data.yaml")
    names = config.get("names") if isinstance(config, dict) else None
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(k, int) and isinstance(v, str) for k, v in names.items()):
        raise PredictionFormatError(f"{data_yaml}: needs names, a list or a mapping of class id to name")
    frames, boxes, scores, classes = [], [], [], []
    for text_file in sorted((data_yaml.parent / "labels").rglob("*.txt")):
        if text_file.is_symlink():
            raise PredictionFormatError(f"{text_file} is a link; label files are never followed")
        frame = frame_of(text_file.name, video.frame_count)
        for line_number, line in enumerate(read_capped(text_file, MAX_LABEL_BYTES, "YOLO label file").decode(
                "utf-8", "replace").splitlines(), start=1):
            values = line.split()
            if not values:
                continue
            if len(values) not in (5, 6) or not _numbers(values) or not values[0].isdigit() or int(values[0]) not in names:
                raise PredictionFormatError(f"{text_file}:{line_number}: expected 'class cx cy w h [score]' with a known class")
            cx, cy, w, h = (float(v) for v in values[1:5])
            frames.append(frame)
            boxes.append([(cx - w / 2) * video.width, (cy - h / 2) * video.height,
                          (cx + w / 2) * video.width, (cy + h / 2) * video.height])
            scores.append(float(values[5]) if len(values) == 6 else 1.0)
            classes.append(int(values[0]))
    return _from_rows(frames, boxes, scores, classes, names, video, path)


def _mot(path: Path, video: VideoInfo, relpath: str) -> Detections:
    """MOTChallenge rows ``frame,id,x,y,w,h[,score,...]``, frames from 1; one class, "object"; a
    score outside [0, 1] (some detectors write raw margins) or a missing one counts as 1.0."""
    frames, boxes, scores = [], [], []
    for line_number, line in enumerate(read_capped(path, MAX_LABEL_BYTES, "MOT file").decode("utf-8", "replace").splitlines(),
                                       start=1):
        values = [v.strip() for v in line.split(",")]
        if not line.strip():
            continue
        if len(values) < 6 or not _numbers(values[:7]):
            raise PredictionFormatError(f"{path}:{line_number}: expected frame,id,x,y,w,h[,score,...]")
        frame = float(values[0])
        if frame != int(frame) or not 1 <= frame <= video.frame_count:
            raise PredictionFormatError(f"{path}:{line_number}: frame {values[0][:20]} is not one of 1..{video.frame_count}")
        score = float(values[6]) if len(values) > 6 else 1.0
        frames.append(int(frame) - 1)
        boxes.append(xywh_to_xyxy(np.array([[float(v) for v in values[2:6]]]))[0].tolist())
        scores.append(score if 0.0 <= score <= 1.0 else 1.0)
    return _from_rows(frames, boxes, scores, [0] * len(frames), {0: "object"}, video, path)


def _youtubevis(path: Path, video: VideoInfo, relpath: str) -> Detections:
    """YouTube-VIS through labelformat: the file's only video, or the one named like ours."""
    from labelformat.types import ParseError
    from labelformat.formats import YouTubeVISObjectDetectionTrackInput

    try:
        reader = YouTubeVISObjectDetectionTrackInput(input_file=path)
        tracks = list(reader.get_labels())
        categories = {category.id: category.name for category in reader.get_categories()}
    except (ParseError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise PredictionFormatError(f"{path}: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}") from None
    stem = PurePosixPath(relpath).stem
    chosen = [t for t in tracks if len(tracks) == 1 or str(t.video.filename) in (relpath, PurePosixPath(relpath).name, stem)]
    if len(chosen) != 1:
        raise PredictionFormatError(f"{path} holds {len(tracks)} videos and none is named {stem!r}")
    frames, boxes, classes = [], [], []
    for track in chosen[0].objects:
        for frame, box in enumerate(track.boxes):
            if box is not None:
                if frame >= video.frame_count:
                    raise PredictionFormatError(f"{path}: a box on frame {frame}; the video has {video.frame_count} frames")
                frames.append(frame)
                boxes.append([box.xmin, box.ymin, box.xmax, box.ymax])
                classes.append(track.category.id)
    return _from_rows(frames, boxes, [1.0] * len(frames), classes, categories, video, path)


def _numbers(values: list[str]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


_READERS = {"lightly": _lightly, "coco": _coco, "yolo": _yolo, "cvat": _cvat, "mot": _mot, "youtubevis": _youtubevis}
