"""Boxes made elsewhere, for one video: predictions (or labels) in Lightly's format, COCO, YOLO, CVAT,
MOTChallenge (ground truth with its classes) or YouTube-VIS, read into :class:`~core.detections.Detections`.

Library per format: COCO, CVAT (for images) and YouTube-VIS through Lightly's ``labelformat``
readers; Lightly's own format through :func:`core.lightly.validate.import_predictions`; CVAT for
video (tracks with keyframes, which labelformat does not read), YOLO and MOT read here (YOLO's boxes are relative to the image, and the video's size is known without
reading images, which labelformat's YOLO reader needs; MOT is a CSV of frame, id, box, score).

Frames are matched to the video's frames: an image's file name by Lightly's frame naming
(``walk-012-mp4.png``), else by the trailing number of its stem (``frame_000012.jpg``: frame 12,
0-based; Roboflow's ``frame_000012_jpg.rf.<hash>.jpg`` by the name before its hash); MOT by its 1-based
frame column; YouTube-VIS by position in the video's frame list, or by Lightly's frame names where
every name is one (this tool's own pre-labels).
Category names become the classes of the review and of the export's schema. Every file is
untrusted and refused in one line, before anything is written, when it is: not a regular file or
larger than its format's cap (``MAX_LABEL_BYTES``, ``MAX_JSON_LABEL_BYTES`` for COCO and YouTube-VIS,
``MAX_XML_LABEL_BYTES`` for CVAT); nested too
deep; a box that is not finite, has no area, lies wholly outside the image or reaches more than an
image's size beyond it; a frame outside the video; a file name that is no frame, is absolute or
climbs out (``..``); a class id that is not a whole number in 0..2**31-1 or a class name that is
not short text; a MOT track id that is not a whole number in -1..2**53. Refused too, because each
would put boxes on frames or at scales they were not drawn on: two images (or YOLO label files) of
one frame, or two images with one id; an image whose recorded size is not the video's; a category id
with two names; a YouTube-VIS video listing fewer frames than ours whose numbered names skip; a CVAT
file with both images and tracks, or a track with two boxes on one frame; a MOT or YOLO number that
is not plainly written (``1_0``, other scripts' digits).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from core.bounded import INT32_MAX, MAX_TRACK_ID, brief, read_capped
from core.detections import Detections, xywh_to_xyxy
from core.errors import PredictionFormatError, UserError
from core.flicker import MAX_BOXES_PER_FRAME, check_crowding
from core.lightly.datasource import SCHEMA
from core.video import VideoInfo

FORMATS = ("auto", "lightly", "coco", "yolo", "cvat", "mot", "youtubevis")
FOLDER_FORMATS = ("lightly", "yolo")  # read from a folder, never from one file
MAX_LABEL_BYTES = 512 << 20
# JSON parses to ~10x its size in Python objects (a 480 MB COCO file reached 5.8 GB): a lower bound
# for COCO and YouTube-VIS; a 10-minute video with 50 boxes a frame is ~140 MB of COCO.
MAX_JSON_LABEL_BYTES = 256 << 20
JSON_FORMATS = ("coco", "youtubevis")
# CVAT for images parses (labelformat, pydantic-xml) to ~26x its size: a 32 MB file took 0.83 GB, so 512 MiB would
# take ~13 GB. 128 MiB is ~1.2 million boxes.
MAX_XML_LABEL_BYTES = 128 << 20
FILE_ID_PREFIX = "file:"  # detection ids of boxes read from a file (never a detector's cache key)
MAX_NAME_CHARS = 200  # a class name (it becomes a schema category and a label in the app)
MAX_INTERPOLATED_BOXES = 5_000_000  # CVAT video tracks drawn on every frame: a few keyframes can stand for many
MAX_ROWS_PER_FRAME = 2 * MAX_BOXES_PER_FRAME  # rows of a frame read before the score floor (MOT, YOLO)
_LIGHTLY_FRAME = re.compile(r"-(\d+)-[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)?$", re.ASCII)  # walk-012-mp4.png, or .txt beside it
_TRAILING_NUMBER = re.compile(r"(\d+)\D*$", re.ASCII)  # ASCII: other scripts' digits are no frame numbers
# Roboflow renames each image NAME_EXT.rf.<32 hex>.EXT: its hash ends in digits that are no frame number
_ROBOFLOW_SUFFIX = re.compile(r"(_[A-Za-z0-9]{1,5})?\.rf\.[0-9a-f]{32}$")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def read_boxes(path: str | Path, video: VideoInfo, relpath: str, fmt: str = "auto") -> Detections:
    """The boxes ``path`` holds for ``video`` (named ``relpath`` in an export), as Detections."""
    path = Path(path)
    if not path.exists():
        raise PredictionFormatError(f"Predictions not found: {path}")
    return _read_as(path, video, relpath, detect_format(path) if fmt == "auto" else fmt, guessed=fmt == "auto")


def _read_as(path: Path, video: VideoInfo, relpath: str, fmt: str, guessed: bool) -> Detections:
    """:func:`read_boxes` once the format is known (``guessed``: from the content, not named)."""
    if fmt not in FORMATS:
        raise PredictionFormatError(f"Unknown predictions format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt not in ("lightly", "yolo"):
        _check_regular_file(path, _byte_cap(fmt))
    try:
        return _READERS[fmt](path, video, relpath)
    except _NotMotRows as exc:
        if guessed:  # MOT is the guess for any text that is neither JSON nor XML: say it was one
            raise PredictionFormatError(f"{exc} (read as MOT, since it is neither JSON nor XML; name its format if it "
                                        "is another)") from None
        raise


class _NotMotRows(PredictionFormatError):
    """A line of a MOT file that is no MOT row at all (not one that is wrong for this video)."""


@dataclass(frozen=True)
class ImportedBoxes:
    """Boxes read for review (the app's Load page): what they are and a name for them."""

    detections: Detections
    format: str  # the format they were read as (never "auto")
    source: str  # the file's name, as shown
    detection_id: str  # names exactly these boxes on this video (the app's index cache key)


def import_boxes(path: str | Path, video: VideoInfo, relpath: str, fmt: str = "auto", shown_name: str = "",
                 single_file: bool = False, min_score: float = 0.0) -> ImportedBoxes:
    """:func:`read_boxes`, with the format resolved and an id made of the video and the boxes
    themselves (the same boxes from another file or format share it; a changed file does not).
    ``single_file`` (an upload): the formats that are folders are refused, not read as empty.
    ``min_score``: the boxes below it are dropped before a frame's boxes are counted (run's --conf)."""
    path = Path(path)
    if not path.exists():
        raise PredictionFormatError(f"Predictions not found: {path}")
    try:
        guessed, fmt = fmt == "auto", detect_format(path) if fmt == "auto" else fmt
        if single_file and fmt in FOLDER_FORMATS:
            raise PredictionFormatError(f"{shown_name or path.name}: a {fmt} dataset is a folder (a YOLO data.yaml reads "
                                        "the labels/ beside it): give its path on this machine instead of uploading one file")
        detections = _read_as(path, video, relpath, fmt, guessed)
        detections = detections.above(min_score) if min_score > 0 else detections
        try:
            check_crowding(detections.counts_per_frame())
        except UserError as crowded:  # refused as the file is read, in one line, not on Review afterwards
            raise PredictionFormatError(f"{path}: {crowded}") from None
    except PredictionFormatError as exc:
        if not shown_name:
            raise
        # an upload lives in a temporary folder of the server: its path means nothing to the user
        raise PredictionFormatError(str(exc).replace(str(path), shown_name)) from None
    digest = hashlib.sha256(video.fingerprint.encode())
    detections.hash_boxes(digest)
    digest.update(repr(sorted(detections.names.items())).encode())
    return ImportedBoxes(detections, fmt, shown_name or path.name, FILE_ID_PREFIX + digest.hexdigest()[:32])


def size_limits() -> str:
    """The byte caps above in one line, for a user choosing a file to upload (a local path has the same caps):
    the uploader's own limit alone said nothing of a format's lower one."""
    return (f"Up to {MAX_LABEL_BYTES >> 20} MiB; COCO and YouTube-VIS JSON up to {MAX_JSON_LABEL_BYTES >> 20} MiB, "
            f"CVAT XML up to {MAX_XML_LABEL_BYTES >> 20} MiB (what a file parses to in memory bounds it).")


def _byte_cap(fmt: str) -> int:
    """The largest file of a format read: what it parses to in memory bounds it."""
    return MAX_JSON_LABEL_BYTES if fmt in JSON_FORMATS else MAX_XML_LABEL_BYTES if fmt == "cvat" else MAX_LABEL_BYTES


def _check_regular_file(path: Path, limit: int) -> None:
    """A label file is a regular file of bounded size: never a folder, a FIFO or ``/dev/zero``,
    which a reader would wait on or read without end."""
    status = os.stat(path)
    if not stat.S_ISREG(status.st_mode):
        raise PredictionFormatError(f"{path} is not a regular file")
    if status.st_size > limit:
        raise PredictionFormatError(f"{path} is larger than {limit >> 20} MiB")
    if status.st_size == 0:
        raise PredictionFormatError(f"{path.name} is empty: it holds no boxes, not even an empty list")


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
    _check_regular_file(path, MAX_LABEL_BYTES)
    with path.open("rb") as f:  # a regular file (checked): no FIFO to wait on
        head = f.read(4096)
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise PredictionFormatError(f"{path.name} starts with a byte-order mark (UTF-16, or UTF-8 as some Windows tools "
                                    "save it): save it as plain UTF-8")
    head = head.lstrip()
    if not head:
        raise PredictionFormatError(f"{path.name} is empty: it holds no boxes, not even an empty list")
    if head.startswith(b"<"):
        return "cvat"
    if head.startswith(b"{"):  # COCO lists images, YouTube-VIS videos
        _check_regular_file(path, MAX_JSON_LABEL_BYTES)
        data = read_capped(path, MAX_JSON_LABEL_BYTES, "Predictions file")
        if b'"videos"' in data:
            return "youtubevis"
        if b'"images"' in data:
            return "coco"
        if _json_object(data):  # else the YouTube-VIS reader says what is wrong with the text
            raise PredictionFormatError(f"{path.name} is a JSON object with neither \"images\" (COCO) nor \"videos\" "
                                        "(YouTube-VIS)")
        return "youtubevis"
    if head.startswith(b"[") or path.suffix.lower() == ".json":
        raise PredictionFormatError(f"{path.name} is not a COCO or YouTube-VIS file: their JSON is one object ({{...}})")
    return "mot"


def _json_object(data: bytes) -> bool:
    """Whether ``data`` is a JSON object (read within the depth bound)."""
    from core.bounded import load_json

    try:
        return isinstance(load_json(data, "the file"), dict)
    except (UserError, ValueError):
        return False


def frame_of(file_name: str, n_frames: int) -> int:
    """The video frame an image file name stands for (see the module docstring). An absolute name
    or one with a ``..`` part is refused: it is never opened here, but a file that names frames
    outside its own folder was not made for this video, or was made to mislead."""
    name = relative_name(file_name).name
    frame = _frame_number(name)
    if frame is None:
        raise PredictionFormatError(f"{name[:80]!r} names no frame (expected e.g. walk-012-mp4.png or frame_000012.jpg)")
    if frame >= n_frames:
        raise PredictionFormatError(f"{name[:80]!r} is frame {frame}; the video has {n_frames} frames")
    return frame


def _frame_number(name: str) -> int | None:
    """The frame number an image's base name carries (Lightly's naming, else its stem's trailing
    number, of at most 9 digits), or None."""
    stem = _ROBOFLOW_SUFFIX.sub("", PurePosixPath(name).stem)
    match = _LIGHTLY_FRAME.search(name) or _LIGHTLY_FRAME.search(stem)
    if match is None and (match := _TRAILING_NUMBER.search(stem)) is not None:
        start = match.start(1)
        if stem[start - 1:start] == "-" and (start == 1 or not stem[start - 2].isalnum()):
            return None  # frame_-5.jpg: a negative number, no frame (read as frame 5 before); clip-5.jpg is frame 5
    return int(match.group(1)) if match is not None and len(match.group(1)) <= 9 else None


def _frames_at(names: list[str], n_frames: int, source: Path) -> list[int]:
    """The frame of each position of a YouTube-VIS video's ``file_names``: Lightly's frame names
    (what this tool's own pre-labels write, for the frames they hold) are placed by their number;
    any other list by position, as the format reads. A list shorter than the video whose numbered
    names skip (``00000.jpg, 00005.jpg``: annotated every fifth frame) cannot be placed by position,
    and is refused rather than read onto frames 0, 1, 2."""
    if names and all(_LIGHTLY_FRAME.search(PurePosixPath(name).name) for name in names):
        frames = [frame_of(name, n_frames) for name in names]
        if len(set(frames)) < len(frames):
            raise PredictionFormatError(f"{source}: a video lists one frame twice in its file_names")
        return frames
    numbers = [_frame_number(PurePosixPath(name).name) for name in names]
    numbered = None not in numbers and len(set(numbers)) == len(numbers)  # "00000_cam0.jpg" for each is no numbering
    skip = next((k for k in range(1, len(numbers)) if numbers[k] != numbers[k - 1] + 1), None) if numbered else None
    if skip is not None and len(names) < n_frames:
        raise PredictionFormatError(f"{source}: frame {skip} of the video is {brief(names[skip], 60)}, after "
                                    f"{brief(names[skip - 1], 60)}, and it lists {len(names):,} of {n_frames:,} frames: "
                                    "frames are read by position, and these names skip or go back (annotated every few "
                                    "frames)")
    return list(range(len(names)))


def relative_name(file_name: str) -> PurePosixPath:
    """An image name from a label file as a relative POSIX path; absolute or climbing with ``..``
    (either separator, or a drive letter) is refused."""
    posix = PurePosixPath(str(file_name).replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or re.match(r"[A-Za-z]:", posix.as_posix()):
        raise PredictionFormatError(f"{brief(str(file_name), 80)} climbs out of its folder (absolute, or with '..'): "
                                    "image names are relative to the labels")
    return posix


def youtube_vis_problem(path: Path) -> str | None:
    """What makes a YouTube-VIS file unreadable before labelformat walks it (nested past the depth
    bound, not JSON, a frame name that is not text or climbs out), or None. Its readers use frame
    positions, and the first name's folder as the video's name, but never such a file."""
    return _youtube_vis_names(path)[0]


def _youtube_vis_names(path: Path) -> tuple[str | None, dict]:
    """:func:`youtube_vis_problem`, and each video's ``file_names`` by its id."""
    from core.bounded import load_json

    names_by_id = {}
    try:
        data = load_json(read_capped(path, MAX_JSON_LABEL_BYTES, "YouTube-VIS file"), "the file")
        videos = data.get("videos") if isinstance(data, dict) else None
        for video in videos if isinstance(videos, list) else []:
            names = video.get("file_names") if isinstance(video, dict) else None
            for name in names if isinstance(names, list) else []:
                if not isinstance(name, str):
                    return f"a frame name that is {brief(name)}, not text", {}
                relative_name(name)
            if isinstance(names, list) and isinstance(video.get("id"), int):
                names_by_id[video["id"]] = names
    except UserError as error:
        return str(error), {}
    return None, names_by_id


def _from_rows(frames: list[int], xyxy: list, scores: list, classes: list, names: dict[int, str], video: VideoInfo,
               source: Path) -> Detections:
    """Checked rows (one box each, any frame order) as Detections of the whole video. A box may
    poke out of the image (it is clipped), but not lie wholly outside it or reach more than the
    image's own size beyond it (``1e300`` is no detector's box)."""
    _check_names(names, source)
    box = np.asarray(xyxy, np.float64).reshape(-1, 4)
    size = np.array([video.width, video.height, video.width, video.height], np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(box).all(axis=1) | (box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1])
        bad |= (box[:, 2] <= 0) | (box[:, 3] <= 0) | (box[:, 0] >= size[0]) | (box[:, 1] >= size[1])
        bad |= (box[:, :2] < -size[:2]).any(axis=1) | (box[:, 2:] > 2 * size[2:]).any(axis=1)
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


def _check_names(names: dict, source: Path) -> None:
    """Class ids whole numbers in 0..2**31-1 (they become int64 columns and schema ids) and names
    short text."""
    for class_id, name in names.items():
        if isinstance(class_id, bool) or not isinstance(class_id, int) or not 0 <= class_id <= INT32_MAX:
            raise PredictionFormatError(f"{source}: class id {brief(class_id)} is not a whole number in 0..{INT32_MAX}")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or not name.isprintable():
            raise PredictionFormatError(f"{source}: the name of class {class_id} ({brief(name)}) is not printable text "
                                        f"of 1..{MAX_NAME_CHARS} characters")


def _lightly(path: Path, video: VideoInfo, relpath: str) -> Detections:
    from core.lightly.validate import import_predictions

    if not path.is_dir():
        raise PredictionFormatError(f"{path}: Lightly predictions are a task folder (.lightly/predictions/TASK)")
    detections = import_predictions(path, relpath, video.frame_count, (video.width, video.height))
    _check_names(detections.names, path / SCHEMA)  # the format's own rules allow any string as a name
    return detections


def _image_labels(reader, path: Path, video: VideoInfo) -> Detections:
    """COCO or CVAT through labelformat: one image per frame, boxes in pixels."""
    from labelformat.errors import LabelWithoutImageError
    from labelformat.types import ParseError

    frames, boxes, scores, classes = [], [], [], []
    try:
        parsed = reader(input_file=path)  # parses the whole file: once
        labels = list(parsed.get_labels())
        category_list = list(parsed.get_categories())
        images = list(parsed.get_images())
    except (ParseError, LabelWithoutImageError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OverflowError) as exc:
        raise _unreadable(path, exc) from None
    categories = _categories(category_list, path)
    _check_one_image_per_frame(images, path, video.frame_count)
    _check_image_sizes(images, path, video)
    for label in labels:
        image_id = label.image.id
        if isinstance(image_id, bool) or not isinstance(image_id, int) or not 0 <= image_id <= MAX_TRACK_ID:
            raise PredictionFormatError(f"{path}: image id {brief(image_id)} is not a whole number in 0..2**53")
        frame = frame_of(label.image.filename, video.frame_count)
        for detected in label.objects:
            frames.append(frame)
            boxes.append([detected.box.xmin, detected.box.ymin, detected.box.xmax, detected.box.ymax])
            scores.append(getattr(detected, "confidence", None) if getattr(detected, "confidence", None) is not None else 1.0)
            classes.append(detected.category.id)
    return _from_rows(frames, boxes, scores, classes, categories, video, path)


def _categories(categories: list, path: Path) -> dict:
    """Class id -> name; an id given twice (its boxes took the last name, ``car`` for ``person``) is refused."""
    names: dict = {}
    for category in categories:
        if category.id in names and names[category.id] != category.name:
            raise PredictionFormatError(f"{path}: category id {brief(category.id)} is both {brief(names[category.id])} and "
                                        f"{brief(category.name)}: a box names its class by id")
        names[category.id] = category.name
    return names


def _check_one_image_per_frame(images: list, path: Path, n_frames: int) -> None:
    """Each image its own id and its own frame: two images with one id (COCO's boxes name an image by
    id: they went to the last) or two naming one frame (``cam1/frame_000012.jpg`` beside
    ``cam2/frame_000012.jpg``: their boxes were merged) put boxes on a frame they were not drawn on."""
    names_by_id: dict = {}
    names_by_frame: dict[int, str] = {}
    for image in images:
        if image.id in names_by_id:
            raise PredictionFormatError(f"{path}: two images have id {brief(image.id)} ({brief(names_by_id[image.id], 80)} "
                                        f"and {brief(image.filename, 80)}): image ids name one image each")
        frame = frame_of(image.filename, n_frames)
        if frame in names_by_frame:
            raise PredictionFormatError(f"{path}: {brief(names_by_frame[frame], 80)} and {brief(image.filename, 80)} are "
                                        f"both frame {frame}: a label file for one video holds one image per frame")
        names_by_id[image.id], names_by_frame[frame] = image.filename, image.filename


def _check_image_sizes(images: list, path: Path, video: VideoInfo) -> None:
    """Boxes are in their image's pixels: an image of another size than the video's frames (labels
    made on a 1920x1080 copy of a 768x576 video) would have them drawn at the wrong scale. A size of
    0 (not recorded, as some writers leave it) says nothing and is let be."""
    for image in images:
        size = (image.width, image.height)
        if all(isinstance(n, int) and n > 0 for n in size) and size != (video.width, video.height):
            turned = " (turned a quarter: labelled without the video's rotation?)" if size == (video.height, video.width) else ""
            raise PredictionFormatError(f"{path}: image {brief(image.filename, 80)} is {size[0]}x{size[1]} and the video's "
                                        f"frames are {video.width}x{video.height}{turned}: its boxes are in another image's "
                                        "pixels")


def _coco(path: Path, video: VideoInfo, relpath: str) -> Detections:
    from labelformat.formats import COCOObjectDetectionInput

    return _image_labels(COCOObjectDetectionInput, path, video)


def _cvat(path: Path, video: VideoInfo, relpath: str) -> Detections:
    """CVAT for images through labelformat; CVAT for video (``<track>``s, which labelformat does
    not read) here."""
    from labelformat.formats import CVATObjectDetectionInput

    root, has_track, has_image = _parse_xml(path)
    if has_track:  # a <track> element, not the bytes "<track" (a comment may hold them)
        if has_image:  # read as video, its images' boxes were left out without a word
            raise PredictionFormatError(f"{path} holds both <image>s (CVAT for images) and <track>s (CVAT for video): "
                                        "export it from CVAT in one of the two formats")
        return _cvat_video(root, path, video)
    return _image_labels(CVATObjectDetectionInput, path, video)  # which parses it again: the images were dropped


def _cvat_video(root, path: Path, video: VideoInfo) -> Detections:
    """CVAT for video 1.1: per ``<track label>`` its ``<box frame outside xtl ytl xbr ybr>``s; the
    object is drawn on every frame from a box that is not ``outside`` up to the next box (exclusive;
    to the video's end after the last), interpolated linearly towards a next box that is not
    ``outside``, as CVAT draws it. Labels are the task's (``meta``), else those the tracks use.
    ``root``: the file's parsed XML (:func:`_parse_xml`)."""
    if any(not track.get("label") for track in root.iter("track")):
        raise PredictionFormatError(f"{path}: a track without a label")
    names = [label.findtext("name") for label in root.iterfind("meta/*/labels/label")]
    names += sorted({str(t.get("label")) for t in root.iter("track")} - set(names))
    class_of = {name: k for k, name in enumerate(names)}
    frames, boxes, classes = [], [], []  # numpy pieces, one per drawn stretch
    drawn = 0
    for track in root.iter("track"):
        keys = _one_box_per_frame(path, track, video.frame_count)
        for (frame, box), following in zip(keys, keys[1:] + [(video.frame_count, None)]):
            end = following[0]
            if box.get("outside") == "1" or end <= frame:
                continue
            start_xyxy = _cvat_xyxy(path, box)
            end_xyxy = start_xyxy if following[1] is None or following[1].get("outside") == "1" else _cvat_xyxy(path, following[1])
            span = np.arange(frame, end)
            drawn += len(span)
            if drawn > MAX_INTERPOLATED_BOXES:
                raise PredictionFormatError(f"{path}: more than {MAX_INTERPOLATED_BOXES:,} boxes once its tracks are drawn")
            weight = ((span - frame) / (end - frame))[:, None]
            frames.append(span)
            boxes.append((1 - weight) * start_xyxy + weight * end_xyxy)
            classes.append(np.full(len(span), class_of[str(track.get("label"))]))
    return _from_rows(np.concatenate(frames or [np.empty(0, np.int64)]), np.concatenate(boxes or [np.empty((0, 4))]),
                      np.ones(drawn), np.concatenate(classes or [np.empty(0, np.int64)]), dict(enumerate(names)), video, path)


def _one_box_per_frame(path: Path, track, n_frames: int) -> list:
    """``(frame, box)`` of ``track``'s boxes in frame order. A box repeated as it was (an editor's
    double save) is kept once; two that differ on one frame are refused: the last won, silently."""
    keys, seen = [], {}
    for box in track.iter("box"):
        frame = _cvat_frame(path, box, n_frames)
        if frame not in seen:
            seen[frame] = box.attrib
            keys.append((frame, box))
        elif seen[frame] != box.attrib:
            raise PredictionFormatError(f"{path}: track {brief(track.get('id'), 20)} has two boxes on frame {frame}: "
                                        "a track holds one box per frame")
    return sorted(keys, key=lambda key: key[0])


def _parse_xml(path: Path):
    """The XML tree of ``path`` without its ``<image>``s (each dropped once read: CVAT for images
    goes to labelformat, which parses the file itself), whether it holds a ``<track>`` and whether
    an ``<image>``; refused when not well-formed or nested deeper than ``MAX_DEPTH`` (expat refuses
    external entities and entity expansion past its amplification limit)."""
    import io
    from xml.etree import ElementTree as ET

    from core.bounded import MAX_DEPTH

    events = ET.iterparse(io.BytesIO(read_capped(path, MAX_XML_LABEL_BYTES, "CVAT file")), events=("start", "end"))
    depth, has_track, has_image = 0, False, False
    try:
        for event, element in events:
            depth += 1 if event == "start" else -1
            if depth > MAX_DEPTH:
                raise PredictionFormatError(f"{path} nests deeper than {MAX_DEPTH} levels")
            has_track = has_track or (event == "start" and element.tag == "track")
            if event == "end" and depth == 1 and element.tag == "image":
                has_image = True
                element.clear()
    except ET.ParseError as exc:
        raise PredictionFormatError(f"{path}: not CVAT XML: {str(exc)[:200]}") from None
    return events.root, has_track, has_image


def _cvat_frame(path: Path, box, n_frames: int) -> int:
    text = str(box.get("frame"))
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and int(text) < n_frames):
        raise PredictionFormatError(f"{path}: a track box on frame {brief(text)}; the video's frames are 0..{n_frames - 1}")
    return int(text)


def _cvat_xyxy(path: Path, box) -> np.ndarray:
    try:
        return np.array([float(box.get(key)) for key in ("xtl", "ytl", "xbr", "ybr")])
    except (TypeError, ValueError):
        raise PredictionFormatError(f"{path}: a track box on frame {brief(box.get('frame'))} without numeric "
                                    "xtl, ytl, xbr, ybr") from None


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
    labels = data_yaml.parent / "labels"
    if labels.is_symlink():
        raise PredictionFormatError(f"{labels} is a link; label folders are never followed out of the dataset")
    if not labels.is_dir():  # a mistyped folder read as "0 boxes" replaced an export with an empty one
        raise PredictionFormatError(f"{data_yaml.parent} has no labels folder beside data.yaml: a YOLO dataset keeps "
                                    "one NAME.txt per frame in labels/")
    files_by_frame: dict[int, Path] = {}
    for text_file in sorted(labels.rglob("*.txt")):  # rglob does not descend into linked folders
        if text_file.is_symlink():
            raise PredictionFormatError(f"{text_file} is a link; label files are never followed")
        frame, rows = frame_of(text_file.name, video.frame_count), 0
        if frame in files_by_frame:  # labels/cam1/frame_000012.txt beside labels/cam2/frame_000012.txt: merged, before
            raise PredictionFormatError(f"{files_by_frame[frame]} and {text_file} are both frame {frame}: a YOLO dataset "
                                        "for one video holds one label file per frame")
        files_by_frame[frame] = text_file
        for line_number, line in _numbered_lines(read_capped(text_file, MAX_LABEL_BYTES, "YOLO label file")):
            values = line.split()
            if not values:
                continue
            rows += 1
            if rows > MAX_ROWS_PER_FRAME:
                raise _too_many_rows(text_file, frame)
            if len(values) not in (5, 6) or not _numbers(values) or not values[0].isdigit() or len(values[0]) > 9 \
                    or int(values[0]) not in names:
                raise PredictionFormatError(f"{text_file}:{line_number}: expected 'class cx cy w h [score]' with a known class")
            cx, cy, w, h = (float(v) for v in values[1:5])
            frames.append(frame)
            boxes.append([(cx - w / 2) * video.width, (cy - h / 2) * video.height,
                          (cx + w / 2) * video.width, (cy + h / 2) * video.height])
            scores.append(float(values[5]) if len(values) == 6 else 1.0)
            classes.append(int(values[0]))
    return _from_rows(frames, boxes, scores, classes, names, video, path)


# MOT16/17/20 ground truth's eighth column (Milan et al., "MOT16: A Benchmark for Multi-Object Tracking", table 5;
# MOT20 adds 13, crowd, as TrackEval reads it)
MOT_CLASSES = {1: "pedestrian", 2: "person on vehicle", 3: "car", 4: "bicycle", 5: "motorbike", 6: "non-motorized vehicle",
               7: "static person", 8: "distractor", 9: "occluder", 10: "occluder on the ground", 11: "occluder full",
               12: "reflection", 13: "crowd"}


def _mot(path: Path, video: VideoInfo, relpath: str) -> Detections:
    """MOTChallenge rows ``frame,id,x,y,w,h[,score,...]``, frames from 1; a score outside [0, 1]
    (some detectors write raw margins) or a missing one counts as 1.0. A row whose seventh column
    is 0 is skipped: MOTChallenge ground truth marks the rows its evaluation ignores so (its
    "consider" flag, as :func:`core.ground_truth.read_mot_ground_truth` reads it), and a detection
    scored 0 is no detection. Classes: MOT16+ ground truth (every row's seventh column 0 or 1 and
    its eighth a class of :data:`MOT_CLASSES`) keeps its classes; anything else, a detection file
    (``-1`` there) or MOT15, is one class, "object"."""
    rows, per_frame = [], np.zeros(video.frame_count + 1, np.int64)
    for line_number, line in _numbered_lines(read_capped(path, MAX_LABEL_BYTES, "MOT file")):
        values = [v.strip() for v in line.split(",")]
        if not line.strip():
            continue
        if len(values) < 6 or not _numbers(values[:7]):
            raise _NotMotRows(f"{path}:{line_number}: expected frame,id,x,y,w,h[,score,...]")
        frame, track_id = float(values[0]), float(values[1])
        if frame != int(frame) or not 1 <= frame <= video.frame_count:
            raise PredictionFormatError(f"{path}:{line_number}: frame {values[0][:20]} is not one of 1..{video.frame_count}")
        if track_id != int(track_id) or not -1 <= track_id <= MAX_TRACK_ID:
            raise PredictionFormatError(f"{path}:{line_number}: track id {values[1][:20]} is not a whole number in "
                                        "-1..2**53 (-1: no track)")
        per_frame[int(frame)] += 1
        if per_frame[int(frame)] > MAX_ROWS_PER_FRAME:
            raise _too_many_rows(path, int(frame) - 1)
        rows.append(values)
    classed = bool(rows) and all(_mot_class(values) is not None for values in rows)
    frames, boxes, scores, classes = [], [], [], []
    for values in rows:
        score = float(values[6]) if len(values) > 6 else 1.0
        if score == 0.0:
            continue
        frames.append(int(float(values[0])) - 1)
        boxes.append(xywh_to_xyxy(np.array([[float(v) for v in values[2:6]]]))[0].tolist())
        scores.append(score if 0.0 <= score <= 1.0 else 1.0)
        classes.append(_mot_class(values) if classed else 0)
    names = {c: MOT_CLASSES[c] for c in sorted(set(classes))} if classed else {0: "object"}
    return _from_rows(frames, boxes, scores, classes, names, video, path)


_BREAKS_BEFORE_A_NEWLINE = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines' line breaks but \n and \r


def _numbered_lines(data: bytes) -> Iterator[tuple[int, str]]:
    """The lines of a text file, numbered as ``enumerate(data.decode("utf-8", "replace").splitlines(), 1)`` numbers them,
    without that list: of a 512 MiB file of blank lines it took 4 GiB (8 bytes a line) and a Python step per line.
    Empty lines between newlines are left out (the regular expression skips their run); a newline is never part of a
    multi-byte UTF-8 character, so each line decodes alone."""
    number, end = 0, 0
    for match in re.finditer(rb"[^\n]+", data):
        gap = data.count(b"\n", end, match.start())
        number += gap - 1 if end else gap  # the first newline after a line ends it; each further one is an empty line
        text = str(memoryview(data)[match.start():match.end()], "utf-8", "replace")  # no copy of a 512 MiB line
        for piece in text.splitlines():
            number += 1
            yield number, piece
        if match.end() < len(data) and text[-1] in _BREAKS_BEFORE_A_NEWLINE:
            number += 1  # its newline ends one more, empty, line (after a \r, the two are one break)
        end = match.end()


def _too_many_rows(path: Path, frame: int) -> PredictionFormatError:
    """Rows of one frame past any the assertion takes, even below a score floor: refused as they are
    read (a 50 MB MOT file of 4 million rows took 2.3 GB and a minute before the crowding check)."""
    return PredictionFormatError(f"{path}: frame {frame:,} holds more than {MAX_ROWS_PER_FRAME:,} rows; the flickering "
                                 f"assertion takes at most {MAX_BOXES_PER_FRAME:,} boxes a frame, above the score floor")


def _mot_class(values: list[str]) -> int | None:
    """The MOT16+ class of a ground-truth row (consider flag 0 or 1, then a class id, written as
    ``3``, ``3.0`` or ``3.000000e+00`` as tools rewrite them), or None."""
    if len(values) < 8 or float(values[6]) not in (0.0, 1.0) or not _PLAIN_NUMBER.fullmatch(values[7]):
        return None  # (the seventh is a number: checked) float() alone also takes "1_2" and other scripts' digits
    value = float(values[7])
    return int(value) if value.is_integer() and int(value) in MOT_CLASSES else None


def _youtubevis(path: Path, video: VideoInfo, relpath: str) -> Detections:
    """YouTube-VIS through labelformat: the file's only video, or the one named like ours."""
    from labelformat.types import ParseError
    from labelformat.formats import YouTubeVISObjectDetectionTrackInput

    problem, names_by_id = _youtube_vis_names(path)
    if problem is not None:
        raise PredictionFormatError(f"{path}: {problem}")
    try:
        reader = YouTubeVISObjectDetectionTrackInput(input_file=path)
        tracks = list(reader.get_labels())
        categories = {category.id: category.name for category in reader.get_categories()}
    except (ParseError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OverflowError) as exc:
        raise _unreadable(path, exc) from None
    stem = PurePosixPath(relpath).stem
    chosen = [t for t in tracks if len(tracks) == 1 or str(t.video.filename) in (relpath, PurePosixPath(relpath).name, stem)]
    if len(chosen) != 1:
        raise PredictionFormatError(f"{path} holds {len(tracks)} videos and none is named {stem!r}")
    if not 0 <= chosen[0].video.number_of_frames <= INT32_MAX:
        raise PredictionFormatError(f"{path}: a video length of {brief(chosen[0].video.number_of_frames)} frames")
    frame_at = _frames_at(names_by_id.get(chosen[0].video.id, []), video.frame_count, path)
    frames, boxes, classes = [], [], []
    for track in chosen[0].objects:
        for position, box in enumerate(track.boxes):
            frame = frame_at[position] if position < len(frame_at) else position
            if box is not None:
                if frame >= video.frame_count:
                    raise PredictionFormatError(f"{path}: a box on frame {frame}; the video has {video.frame_count} frames")
                frames.append(frame)
                boxes.append([box.xmin, box.ymin, box.xmax, box.ymax])
                classes.append(track.category.id)
    return _from_rows(frames, boxes, [1.0] * len(frames), classes, categories, video, path)


def _unreadable(path: Path, exc: BaseException) -> PredictionFormatError:
    """labelformat's reason in one line (a KeyError's reason is the bare key it missed)."""
    if isinstance(exc, RecursionError):
        return PredictionFormatError(f"{path} nests too deep to be a label file")
    reason = (str(exc).splitlines() or [""])[0][:200]
    validation = next((e for e in (exc, exc.__cause__, exc.__context__) if callable(getattr(e, "errors", None))), None)
    if validation is not None:  # pydantic's (labelformat's CVAT reader): which field, and what is wrong with it
        try:
            first = validation.errors()[0]
            message = re.sub(r"^\[line -?\d+\]:\s*", "", str(first["msg"]))  # pydantic-xml's, with no line known
            reason = f"{'.'.join(map(str, first['loc']))[:120]}: {message[:120]}"
        except (TypeError, KeyError, IndexError):
            pass
    elif isinstance(exc, json.JSONDecodeError):  # a file given as COCO that is no JSON (a MOT txt, a CSV)
        reason = f"not JSON ({reason}), which a COCO file is"
    elif "Exceeds the limit" in reason and "digits" in reason:  # Python's words, with advice for programmers
        reason = f"it holds a number of more than {sys.get_int_max_str_digits():,} digits"
    if isinstance(exc, OverflowError):  # a 4,000-digit coordinate, a length of 1e999
        reason = "it holds a number too large for a coordinate, an id or a count"
    elif isinstance(exc, KeyError):
        reason = f"refers to {reason} (missing, or an id it does not define)"
    elif isinstance(exc, (TypeError, AttributeError, IndexError)):  # Python's words for a value of the wrong shape
        reason = f"a field holds a value of the wrong type or shape ({reason})"
    return PredictionFormatError(f"{path}: {reason or type(exc).__name__}")


def _numbers(values: list[str]) -> bool:
    """Whether every value is a finite number as MOT and YOLO write them: float() alone also takes
    ``1_0`` (10) and other scripts' digits (``\u0661\u0662``: 12), which no such file holds."""
    try:
        return all(_PLAIN_NUMBER.fullmatch(v) and math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


_READERS = {"lightly": _lightly, "coco": _coco, "yolo": _yolo, "cvat": _cvat, "mot": _mot, "youtubevis": _youtubevis}
