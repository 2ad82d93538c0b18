"""Pre-labels: the frames worth labelling, with the detector's boxes and the imputed ones, in the
format a labelling tool imports. This is where the active-learning loop pays off: a confirmed miss
becomes a label instead of a note.

**Which frames** (``python -m core prelabels --only``):

* ``confirmed`` (default): frames a reviewer judged true misses (``VerdictStore.truth`` is True).
* ``flagged``: every frame the source flags. An export's own flags are used when its flickering
  metadata holds the tutorial's binary values (1.0 flagged, 0.5 not), or scores (``--flickering
  score``) with the cut its manifest records; a score export from before that was recorded has its
  flags computed again from its predictions, as for a video, with the given mode and thresholds
  (run's defaults).

The imputed boxes always come from the flicker engine run on the source's detections with the given
mode and thresholds; when an export's recorded flags differ from those, a warning says so.

**Layout** of the output folder (built aside, then swapped in whole; an earlier pre-label folder
is replaced, and the summary says so with its format; a folder holding anything else is refused).
Frame files carry Lightly's frame names (:func:`core.lightly.datasource.frame_name`, ``.png``), decoded with PyAV as everywhere else:

============  ==========================================  =============================================
format        files                                       imputed boxes
============  ==========================================  =============================================
coco          images/, annotations.json                   ``score`` 1.0 (detections keep theirs) and
                                                          ``attributes: {"imputed": true}``
yolo          images/, labels/, data.yaml (YOLOv8)        not in the files (no field): prelabels.json
cvat          images/, annotations.xml (CVAT for images)  not in the files (labelformat writes no box
                                                          attributes): prelabels.json
youtubevis    images/, annotations.json                   not in the files: prelabels.json
labelstudio   tasks.json, label_config.xml                ``score`` 1.0 and ``meta.text``
============  ==========================================  =============================================

The track formats (``cvat-video``, ``mot``, ``labelstudio-tracks``, ``youtubevis-tracks``) write
whole videos, no frames: every detection plus the imputed boxes of the chosen frames, linked into
tracks by :mod:`core.tracks` (CVAT and Label Studio with keyframes only; MOT and YouTube-VIS every
box, with its track id; the imputed frames in an ``imputed`` attribute, the region's note, or an
annotation's ``imputed_frames``).

Every format also gets ``prelabels.json``: per frame its file name, video, frame index and boxes
(pixels, label, score, ``imputed``), and under ``files`` every entry written beside it: a later run
replaces the folder only when it holds nothing else. COCO, YOLO, CVAT and YouTube-VIS files are written by Lightly's
``labelformat``. Its COCO writer leaves out the annotation ``id``, ``area`` and ``iscrowd`` that
pycocotools and CVAT read, so they are added; it has no YouTube-VIS *box* writer, so boxes go
through its track writer as rectangle polygons (``segmentations`` hold the rectangles) and each
video's ``file_names`` are set to the frames written (it would name them ``NAME/00000.jpg``).
Categories follow the model's class ids in order, numbered 0..n-1 for YOLO (which needs exactly
that) and 1..n for the others (COCO's convention; some COCO importers read 0 as "no label"). Boxes
are clipped to the frame.

**Label Studio** (no library writer): one task per video, ``{"data": {"video", "fps"},
"predictions": [{"model_version", "result"}]}``, for the config in ``label_config.xml`` (``Video``
``video`` with ``frameRate="$fps"``, ``VideoRectangle`` ``box``, ``Labels``). Each box is one
``videorectangle`` region with a single keyframe: ``frame`` 1-based, ``time`` = frame / fps (as in
Label Studio's own examples: frame 1 at 24 fps is 0.0417 s),
``x``/``y``/``width``/``height`` in percent of the frame, ``enabled`` false so the box lives on that
frame only (no tracker links boxes across the scattered frames pre-labelled). ``data.video`` is
``--video-url-prefix`` + the video's relative path: point it where Label Studio serves the videos
(it plays them in the browser: MP4/H.264 is safest).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence
from xml.sax.saxutils import quoteattr

import numpy as np
import orjson
from labelformat.model.bounding_box import BoundingBox
from labelformat.model.category import Category
from labelformat.model.image import Image
from labelformat.model.instance_segmentation_track import (InstanceSegmentationTrackInput,
                                                           SingleInstanceSegmentationTrack,
                                                           VideoInstanceSegmentationTrack)
from labelformat.model.multipolygon import MultiPolygon
from labelformat.model.object_detection import ImageObjectDetection, ObjectDetectionInput, SingleObjectDetection
from labelformat.model.video import Video

from core.bounded import brief, read_capped
from core.detections import Detections
from core.errors import ExportError, UserError, VerdictError
from core.flicker import FlickerResult
from core.lightly.datasource import FLICKERING_KEY, Datasource, frame_name
from core.lightly.export import flags_recorded
from core.paths import check_output_folder, check_outside_export, recover_swaps, staged_dir, swap_in
from core.settings import DetectorSpec, FlickerSettings
from core.sources import SourceVideo, load_sources
from core.verdicts import VerdictStore
from core.video import FrameReader, VideoInfo
from core.words import counted

FORMATS = ("coco", "yolo", "cvat", "youtubevis", "labelstudio", "cvat-video", "mot", "labelstudio-tracks",
           "youtubevis-tracks")
TRACK_FORMATS = ("cvat-video", "mot", "labelstudio-tracks", "youtubevis-tracks")  # whole videos as tracks (core.tracks), imputed boxes on the chosen frames
SELECTIONS = ("confirmed", "flagged")
MANIFEST = "prelabels.json"
MAX_MANIFEST_BYTES = 256 << 20  # ~1 million boxes
IMAGES = "images"
IMPUTED_NOTE = "imputed by the flickering assertion"
LABEL_STUDIO_BOX, LABEL_STUDIO_VIDEO = "box", "video"  # from_name / to_name, as in label_config.xml


@dataclass(frozen=True)
class PrelabelVideo:
    """One video's part of a pre-label set: its boxes, the imputed ones, and the frames to write."""

    info: VideoInfo
    relpath: str  # the video's path relative to the input datasource root (names the frames)
    detections: Detections
    flicker: FlickerResult
    frames: tuple[int, ...]


@dataclass(frozen=True)
class PrelabelSummary:
    out: Path
    format: str
    frames: int  # the frames chosen (track formats: whose imputed boxes join the tracks)
    boxes: int  # boxes written (track formats: every box of the whole videos)
    imputed: int
    tracks: int | None = None  # track formats: how many tracks
    replaced: str | None = None  # the format of the earlier pre-labels this set replaced ("" when not recorded); None: none

    def text(self) -> str:
        if self.tracks is not None:
            written = (f"{counted(self.tracks, 'track')} with {counted(self.boxes, 'box', 'boxes')} ({self.imputed:,} imputed, "
                       f"on the {counted(self.frames, 'frame')} chosen) as {self.format} in {self.out}")
        else:
            written = (f"{counted(self.frames, 'frame')} pre-labelled with {counted(self.boxes, 'box', 'boxes')} "
                       f"({self.imputed:,} imputed) as {self.format} in {self.out}")
        if self.replaced is None:
            return written
        # said: yolo pre-labels replaced earlier coco ones in the same folder without a word
        return f"{written}\nreplaced earlier {self.replaced + ' ' if self.replaced else ''}pre-labels in {self.out}"


@dataclass(frozen=True)
class _TrackCounts:
    boxes: int
    imputed: int
    tracks: int


@dataclass(frozen=True)
class _Frame:
    """One frame as written: boxes inside the image, detections first, then imputed boxes."""

    video: int  # index into the videos
    frame: int
    file_name: str
    xyxy: np.ndarray  # (K, 4) float64 pixels
    category: np.ndarray  # (K,) index into the categories
    score: np.ndarray  # (K,) in [0, 1]; 1.0 for imputed boxes
    imputed: np.ndarray  # (K,) bool


# ---------------------------------------------------------------------------------------- the API

def write_prelabels(video: VideoInfo, relpath: str, detections: Detections, flicker: FlickerResult,
                    frames: Sequence[int], out_dir: str | Path, fmt: str, video_url_prefix: str = "") -> PrelabelSummary:
    """Pre-labels for some frames of one video (the app's entry point); see the module docstring."""
    return write_prelabel_set([PrelabelVideo(video, relpath, detections, flicker, tuple(frames))], out_dir, fmt,
                              video_url_prefix)


def write_prelabel_set(videos: Sequence[PrelabelVideo], out_dir: str | Path, fmt: str,
                       video_url_prefix: str = "") -> PrelabelSummary:
    """Pre-labels for several videos (their detectors must share class names) into ``out_dir``."""
    out = check_prelabel_folder(out_dir)
    if fmt not in FORMATS:
        raise ExportError(f"Unknown pre-label format {fmt!r}; choose one of {', '.join(FORMATS)}")
    names = videos[0].detections.names if videos else {}
    frames = _frames(videos, names)
    if not frames:
        raise ExportError("No frames to pre-label")
    first_id = 0 if fmt == "yolo" else 1
    categories = [Category(first_id + k, names[class_id]) for k, class_id in enumerate(sorted(names))]
    staging_prefix = f".{out.name}.partial-"
    try:
        recover_swaps(out.parent, staging_prefix)  # a run killed while swapping its folder in
        with staged_dir(out.parent, prefix=staging_prefix) as staging:
            tree = staging / out.name
            tree.mkdir()
            tracks = _write_format(tree, fmt, frames, categories, videos, video_url_prefix)
            written = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*"))
            (tree / MANIFEST).write_bytes(_manifest(fmt, frames, categories, videos, written))
            check_prelabel_folder(out)  # again: something may have appeared there while the frames were written
            replaced = _earlier_format(out)
            swap_in(staging, out.parent, [out.name])
    except OSError as exc:
        raise ExportError(f"Cannot write the pre-labels to {out}: {exc.strerror or exc}") from None
    if tracks is not None:  # whole videos: every box of the tracks
        return PrelabelSummary(out, fmt, len(frames), tracks.boxes, tracks.imputed, tracks.tracks, replaced)
    imputed = sum(int(f.imputed.sum()) for f in frames)
    return PrelabelSummary(out, fmt, len(frames), sum(len(f.xyxy) for f in frames), imputed, replaced=replaced)


def check_prelabel_folder(out_dir: str | Path) -> Path:
    """A folder pre-labels may be written to: new, empty, or an earlier pre-label folder holding
    only what this tool wrote there (its ``prelabels.json`` lists it), which is replaced whole. A
    folder with anything else in it (a file of the user's, a link) is refused: nothing of theirs is
    ever deleted."""
    out = check_output_folder(Path(out_dir), "--out")
    if out.is_symlink():  # the folder is replaced whole: the link itself would go, and what it points to stay
        raise ExportError(f"--out {out} is a symbolic link: give the folder it points to ({out.resolve()})")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    written = _written_entries(out)
    for folder, dirs, files in os.walk(out):  # links are listed, never followed
        for name in dirs + files:
            entry = (Path(folder) / name).relative_to(out).as_posix()
            if entry not in written or (Path(folder) / name).is_symlink():
                raise ExportError(f"--out {out} holds {brief(entry)}, which pre-labels did not write: give a new or "
                                  "empty folder (an earlier pre-label folder is replaced only when it holds nothing else)")
    return out


def _earlier_manifest(out: Path) -> dict | None:
    """The ``prelabels.json`` an earlier run wrote in ``out`` (untrusted input: read with bounds, never through a
    link); None when there is none or it cannot be read."""
    try:
        manifest = orjson.loads(read_capped(out / MANIFEST, MAX_MANIFEST_BYTES, "pre-label manifest", follow_symlinks=False))
    except (UserError, orjson.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _earlier_format(out: Path) -> str | None:
    """The format of the pre-labels in ``out`` that a swap is about to replace (:attr:`PrelabelSummary.replaced`): None
    for a new or empty folder, "" when their manifest names no format this tool writes."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    recorded = (_earlier_manifest(out) or {}).get("format")
    return recorded if recorded in FORMATS else ""


def _written_entries(out: Path) -> set[str]:
    """What an earlier run wrote into ``out``, as its manifest lists it; an empty set when it lists nothing usable."""
    manifest = _earlier_manifest(out)
    files = manifest.get("files") if manifest is not None else None
    if not isinstance(files, list):
        raise ExportError(f"--out {out} already holds other files; give a new or empty folder")
    return {MANIFEST, *(entry for entry in files if isinstance(entry, str))}


# ---------------------------------------------------------------------------------------- from a source

@dataclass(frozen=True)
class PrelabelConfig:
    """``python -m core prelabels``: the source (an export folder, or a video or folder of videos
    detected here) and the same detector and flicker settings as ``run``."""

    source: Path
    out: Path
    format: str
    only: str = "confirmed"
    verdicts: Path | None = None  # the verdict store; default: the app's
    task: str | None = None  # an export's prediction task; default: the first in tasks.json
    detector: DetectorSpec = DetectorSpec()
    flicker: FlickerSettings = FlickerSettings()
    video_url_prefix: str = ""


class FlagMismatchWarning(UserWarning):
    """An export's recorded flags differ from those of the thresholds the imputed boxes come from."""


def prelabels_from_source(config: PrelabelConfig, progress_bar: bool = False) -> PrelabelSummary:
    """Pick the frames (confirmed or flagged), impute the missed boxes and write the pre-labels.
    Every option and the verdict store are checked before any detection runs."""
    _check_config(config)
    store = open_verdicts(config.verdicts) if config.only == "confirmed" else None
    chosen, flagged_by_thresholds = [], 0
    for video in load_sources(config.source, config.detector, config.task, progress_bar):
        flicker = config.flicker.evaluate(video.detections)
        flagged_by_thresholds += flicker.n_flagged
        frames = confirmed_frames(video, store) if store is not None else flagged_frames(video, flicker)
        if len(frames):
            chosen.append(PrelabelVideo(video.info, video.relpath, video.detections, flicker, tuple(frames.tolist())))
    if not chosen and store is not None:
        raise UserError("No confirmed misses for these videos yet: review flagged frames first (or use --only flagged)")
    if not chosen:  # an export's recorded flags choose the frames: say so where the thresholds given would flag some
        raise UserError("The assertion flags no frame in these videos: nothing to pre-label" if not flagged_by_thresholds
                        else f"The export flags no frame, so nothing is pre-labelled; the given mode and thresholds flag "
                             f"{counted(flagged_by_thresholds, 'frame')}, but an export's frames are those it recorded "
                             "as flagged: export again at these thresholds, or give the video itself")
    return write_prelabel_set(chosen, config.out, config.format, config.video_url_prefix)


def _check_config(config: PrelabelConfig) -> None:
    if config.format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {config.format!r}")
    if config.only not in SELECTIONS:
        raise UserError(f"--only must be one of {', '.join(SELECTIONS)}, got {config.only!r}")
    config.flicker.check()
    check_prelabel_folder(config.out)
    check_outside_export(config.out, Datasource(config.source).lightly)


def open_verdicts(path: Path | None) -> VerdictStore:
    """The verdict store at ``path`` (which must exist: a typo must not start an empty one), or the app's."""
    if path is not None and not Path(path).exists():
        raise VerdictError(f"Verdict store not found: {path}")
    if path is not None and not Path(path).is_file():
        raise VerdictError(f"Verdict store {path} is not a regular file")
    return VerdictStore(path, create=path is None)


def confirmed_frames(video: SourceVideo, store: VerdictStore) -> np.ndarray:
    """Frames of the video that a reviewer judged true misses."""
    truth = store.truth(video.info.fingerprint)
    frames = np.asarray(sorted(f for f, miss in truth.items() if miss), np.int64)
    n = video.info.frame_count
    outside = frames[(frames < 0) | (frames >= n)]
    if len(outside):
        raise VerdictError(f"{store.path} has verdicts on frame {int(outside[0])} of {video.relpath}, which has {n} "
                           "frames: the store is damaged or was edited by hand")
    return frames


def flagged_frames(video: SourceVideo, flicker: FlickerResult) -> np.ndarray:
    """The frames the source flags: an export's recorded flags (binary, or scores with their recorded cut), else
    ``flicker``'s (see the module docstring)."""
    values = video.metadata.get(FLICKERING_KEY) if video.metadata is not None else None
    if values is None or not flags_recorded(values, video.flagged_above):
        return np.flatnonzero(flicker.flag_array)
    recorded = video.flickering_flags()
    if not np.array_equal(recorded, flicker.flag_array):
        warnings.warn(f"{video.relpath}: the export flags {int(recorded.sum())} frames and the given mode and thresholds "
                      f"flag {flicker.n_flagged}; the imputed boxes follow the thresholds: pass the ones the export "
                      "was made with", FlagMismatchWarning, stacklevel=2)
    return np.flatnonzero(recorded)


# ---------------------------------------------------------------------------------------- frames and boxes

def _frames(videos: Sequence[PrelabelVideo], names: dict[int, str]) -> list[_Frame]:
    category_of = {class_id: k for k, class_id in enumerate(sorted(names))}
    frames = []
    for v, video in enumerate(videos):
        n = video.info.frame_count
        if video.detections.n_frames != n or video.detections.names != names:
            raise ExportError(f"The detections of {video.relpath} do not fit it ({video.detections.n_frames} frames for "
                              f"{n}, or other class names than the first video's): run detection again")
        for frame in sorted(set(video.frames)):
            if not 0 <= frame < n:
                raise ExportError(f"{video.relpath} has no frame {frame}: its frames are 0..{n - 1}")
            frames.append(_frame(v, video, int(frame), category_of))
    return frames


def _frame(v: int, video: PrelabelVideo, frame: int, category_of: dict[int, int]) -> _Frame:
    found = video.detections.at(frame)
    imputed_xyxy = video.flicker.imputed_for(frame)
    xyxy = np.concatenate([found.xyxy, imputed_xyxy]).astype(np.float64)
    classes = np.concatenate([found.cls, video.flicker.imputed_cls_for(frame)])
    score = np.concatenate([np.clip(found.score, 0.0, 1.0), np.ones(len(imputed_xyxy))]).astype(np.float64)
    imputed = np.arange(len(xyxy)) >= len(found.xyxy)
    width, height = video.info.width, video.info.height
    xyxy = np.clip(xyxy, 0.0, [width, height, width, height])
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])  # a box wholly outside the frame has no area left
    category = np.asarray([category_of[int(c)] for c in classes[keep]], np.int64)
    name = frame_name(video.relpath, frame, video.info.frame_count, ".png")
    return _Frame(v, frame, name, xyxy[keep], category, score[keep], imputed[keep])


def _boxes(frame: _Frame) -> Iterable[tuple[list[float], int, float, bool]]:
    return zip(frame.xyxy.tolist(), frame.category.tolist(), frame.score.tolist(), frame.imputed.tolist())


def _write_images(folder: Path, frames: list[_Frame], videos: Sequence[PrelabelVideo]) -> None:
    import cv2

    for v, video in enumerate(videos):
        own = [f for f in frames if f.video == v]
        if not own:
            continue
        reader = FrameReader(video.info)
        try:
            for frame in own:
                ok, png = cv2.imencode(".png", cv2.cvtColor(reader.get(frame.frame), cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ExportError(f"Cannot encode frame {frame.frame} of {video.relpath} as PNG")
                target = folder / frame.file_name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(png.tobytes())
        finally:
            reader.close()


def _manifest(fmt: str, frames: list[_Frame], categories: list[Category], videos: Sequence[PrelabelVideo],
              written: list[str]) -> bytes:
    """``prelabels.json``: the frames and boxes, and ``files``, every entry written beside it (what a
    later run may replace)."""
    entries = [{"file_name": f.file_name, "video": videos[f.video].relpath, "frame": f.frame,
                "boxes": [{"xyxy": box, "label": categories[c].name, "score": s, "imputed": i} for box, c, s, i in _boxes(f)]}
               for f in frames]
    return json.dumps({"format": fmt, "frames": entries, "files": written}, indent=1).encode()


# ---------------------------------------------------------------------------------------- formats

def _write_format(tree: Path, fmt: str, frames: list[_Frame], categories: list[Category],
                  videos: Sequence[PrelabelVideo], video_url_prefix: str) -> _TrackCounts | None:
    """The format's files; for track formats, what the tracks hold."""
    if fmt == "labelstudio":
        _write_label_studio(tree, frames, categories, videos, video_url_prefix)
        return None
    if fmt in TRACK_FORMATS:
        return _write_tracks(tree, fmt, frames, categories, videos, video_url_prefix)
    _write_images(tree / IMAGES, frames, videos)
    if fmt == "youtubevis":
        _write_youtube_vis(tree / "annotations.json", frames, categories, videos)
        return None
    from labelformat.formats import COCOObjectDetectionOutput, CVATObjectDetectionOutput, YOLOv8ObjectDetectionOutput

    labels = _ImageLabels(categories, [_image_label(k, f, categories, videos) for k, f in enumerate(frames, start=1)])
    if fmt == "coco":
        COCOObjectDetectionOutput(output_file=tree / "annotations.json").save(labels)
        _complete_coco(tree / "annotations.json", np.concatenate([f.imputed for f in frames]))
    elif fmt == "yolo":
        YOLOv8ObjectDetectionOutput(output_file=tree / "data.yaml", output_split="train").save(labels)
    else:
        CVATObjectDetectionOutput(output_folder=tree).save(labels)
    return None


class _InMemory:
    """Pre-labels as one of labelformat's inputs, built in memory, so its writers produce the files."""

    def __init__(self, categories: list[Category], labels: list):
        self._categories, self._labels = categories, labels

    @staticmethod
    def add_cli_arguments(parser) -> None:
        raise NotImplementedError("built in memory, never from a command line")

    def get_categories(self) -> Iterable[Category]:
        return self._categories

    def get_labels(self) -> Iterable:
        return self._labels


class _ImageLabels(_InMemory, ObjectDetectionInput):
    def get_images(self) -> Iterable[Image]:
        return [label.image for label in self._labels]


def _image_label(image_id: int, frame: _Frame, categories: list[Category],
                 videos: Sequence[PrelabelVideo]) -> ImageObjectDetection:
    info = videos[frame.video].info
    objects = [SingleObjectDetection(categories[c], BoundingBox(*box), confidence=score)
               for box, c, score, _ in _boxes(frame)]
    return ImageObjectDetection(Image(image_id, frame.file_name, info.width, info.height), objects)


def _complete_coco(path: Path, imputed: np.ndarray) -> None:
    """Add what labelformat's COCO writer leaves out: annotation ``id``, ``area`` and ``iscrowd``
    (pycocotools and CVAT read them) and an ``imputed`` attribute (CVAT's COCO import keeps
    ``attributes``). Annotations come in the order the frames' boxes were given."""
    data = json.loads(path.read_bytes())
    for k, (annotation, is_imputed) in enumerate(zip(data["annotations"], imputed.tolist(), strict=True), start=1):
        width, height = annotation["bbox"][2:]
        annotation.update(id=k, area=width * height, iscrowd=0, attributes={"imputed": is_imputed})
    path.write_bytes(json.dumps(data, indent=2).encode())


class _VideoTracks(_InMemory, InstanceSegmentationTrackInput):
    def get_videos(self) -> Iterable[Video]:
        return [label.video for label in self._labels]


def _write_youtube_vis(path: Path, frames: list[_Frame], categories: list[Category],
                       videos: Sequence[PrelabelVideo]) -> None:
    """One YouTube-VIS video per source video, made of its pre-labelled frames; every box is a track
    of its own (present in one frame, None in the others)."""
    from labelformat.formats import YouTubeVISInstanceSegmentationTrackOutput

    per_video = [[f for f in frames if f.video == v] for v in range(len(videos))]
    labels, track_id = [], 0
    for v, own in enumerate(per_video):
        if not own:
            continue
        info = videos[v].info
        tracks = []
        for position, frame in enumerate(own):
            for (x0, y0, x1, y1), c, _, _ in _boxes(frame):
                track_id += 1
                masks: list[MultiPolygon | None] = [None] * len(own)
                masks[position] = MultiPolygon([[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]])
                tracks.append(SingleInstanceSegmentationTrack(categories[c], masks, track_id))
        labels.append(VideoInstanceSegmentationTrack(Video(v + 1, videos[v].relpath, info.width, info.height, len(own)), tracks))
    YouTubeVISInstanceSegmentationTrackOutput(output_file=path).save(_VideoTracks(categories, labels))
    data = json.loads(path.read_bytes())
    names = {v + 1: [f.file_name for f in own] for v, own in enumerate(per_video)}
    for video in data["videos"]:
        video["file_names"] = names[video["id"]]
    path.write_bytes(json.dumps(data, indent=2).encode())


def _write_tracks(tree: Path, fmt: str, frames: list[_Frame], categories: list[Category],
                  videos: Sequence[PrelabelVideo], video_url_prefix: str) -> _TrackCounts:
    """Per video, every detection and the imputed boxes of its chosen frames, linked into tracks:
    ``VIDEO.xml`` (CVAT for video, keyframes only), ``VIDEO.txt`` (MOT, every box), one Label
    Studio task per video in ``tasks.json`` (a ``VideoRectangle`` sequence per track, keyframes
    only) or one YouTube-VIS video per video in ``annotations.json`` (an annotation per track)."""
    from core.tracks import cvat_video_xml, link_tracks, mot_rows, video_boxes

    tasks, vis_videos = [], []
    counts = _TrackCounts(0, 0, 0)
    for v, video in enumerate(videos):
        chosen = np.array([f.frame for f in frames if f.video == v], np.int64)
        flicker = video.flicker
        boxes, imputed = video_boxes(video.detections, flicker.imputed_frame, flicker.imputed_xyxy, flicker.imputed_cls,
                                     chosen)
        counts = _TrackCounts(counts.boxes + len(boxes), counts.imputed + int(imputed.sum()),
                              counts.tracks + len(np.unique(link_tracks(boxes))))
        if fmt == "labelstudio-tracks":
            tasks.append(_label_studio_tracks(video, boxes, imputed, video_url_prefix))
            continue
        if fmt == "youtubevis-tracks":
            vis_videos.append((video, boxes, imputed))
            continue
        target = tree / f"{video.relpath}.{'xml' if fmt == 'cvat-video' else 'txt'}"
        target.parent.mkdir(parents=True, exist_ok=True)
        size = (video.info.width, video.info.height)
        target.write_bytes(cvat_video_xml(video.relpath, boxes, imputed, boxes.names, size) if fmt == "cvat-video"
                           else mot_rows(boxes))
    if fmt == "labelstudio-tracks":
        (tree / "tasks.json").write_bytes(json.dumps(tasks, indent=1).encode())
        (tree / "label_config.xml").write_text(label_studio_config([c.name for c in categories]))
    if fmt == "youtubevis-tracks":
        _write_youtube_vis_tracks(tree / "annotations.json", vis_videos, categories)
    return counts


def _write_youtube_vis_tracks(path: Path, videos: list[tuple[PrelabelVideo, Detections, np.ndarray]],
                              categories: list[Category]) -> None:
    """YouTube-VIS with track ids, through labelformat's writer: per video every frame (named
    ``RELPATH/<Lightly frame name>``: labelformat names a video by the folder of its frames), per
    linked track one annotation (``id`` the track, 1.. over the file) with its box on every frame
    it covers and ``null`` elsewhere, as rectangle polygons (labelformat writes no bare boxes; the
    ``bboxes`` are those rectangles'). No interpolation: every box is written. ``imputed_frames``
    (beside the standard keys) lists the frames where the track's box is an imputed one."""
    from labelformat.formats import YouTubeVISInstanceSegmentationTrackOutput

    from core.tracks import link_tracks, track_rows

    category_of = {class_id: categories[k] for k, class_id in enumerate(sorted(videos[0][1].names))} if videos else {}
    labels, file_names, imputed_frames = [], {}, {}
    for v, (video, boxes, imputed) in enumerate(videos, start=1):
        n = video.info.frame_count
        tracks = []
        for rows in track_rows(link_tracks(boxes)):
            masks: list[MultiPolygon | None] = [None] * n
            for frame, (x0, y0, x1, y1) in zip(boxes.frame[rows].tolist(), boxes.xyxy[rows].astype(np.float64).tolist()):
                masks[frame] = MultiPolygon([[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]])
            track_id = len(imputed_frames) + 1
            imputed_frames[track_id] = boxes.frame[rows[imputed[rows]]].tolist()
            tracks.append(SingleInstanceSegmentationTrack(category_of[int(boxes.cls[rows[0]])], masks, track_id))
        labels.append(VideoInstanceSegmentationTrack(Video(v, video.relpath, video.info.width, video.info.height, n), tracks))
        file_names[v] = [f"{video.relpath}/{PurePosixPath(frame_name(video.relpath, frame, n, '.png')).name}"
                         for frame in range(n)]
    YouTubeVISInstanceSegmentationTrackOutput(output_file=path).save(_VideoTracks(categories, labels))
    data = json.loads(path.read_bytes())
    for entry in data["videos"]:
        entry["file_names"] = file_names[entry["id"]]
    for annotation in data["annotations"]:
        annotation["imputed_frames"] = imputed_frames[annotation["id"]]
    path.write_bytes(json.dumps(data).encode())


def _label_studio_tracks(video: PrelabelVideo, boxes: Detections, imputed: np.ndarray, video_url_prefix: str) -> dict:
    """One Label Studio task: per track a region whose sequence holds only its keyframes, each
    interpolated to the next (``enabled``) but the last and those before a gap; the region id names
    the track."""
    from core.tracks import link_tracks, track_rows, written_keyframes

    info = video.info
    if not info.fps > 0:
        raise ExportError(f"{video.relpath} has no frame rate, which Label Studio needs to place boxes in time")
    regions = []
    for track_id, rows in enumerate(track_rows(link_tracks(boxes))):
        frames = boxes.frame[rows].astype(np.float64)
        key, stretch_ends = written_keyframes(frames, boxes.xyxy[rows].astype(np.float64))
        sequence = [_keyframe(int(frames[k]), boxes.xyxy[rows[k]].tolist(), info, enabled=not ends)
                    for k, ends in zip(key.tolist(), stretch_ends.tolist())]
        region = {"id": f"track{track_id}", "type": "videorectangle", "from_name": LABEL_STUDIO_BOX,
                  "to_name": LABEL_STUDIO_VIDEO, "origin": "prediction",
                  "score": float(np.clip(boxes.score[rows].mean(), 0, 1)),
                  "value": {"sequence": sequence, "labels": [boxes.names[int(boxes.cls[rows[0]])]],
                            "framesCount": info.frame_count, "duration": info.frame_count / info.fps}}
        if imputed[rows].any():
            region["meta"] = {"text": [f"{IMPUTED_NOTE} on frames "
                                       + ", ".join(str(int(f) + 1) for f in boxes.frame[rows[imputed[rows]]])]}
        regions.append(region)
    return {"data": {LABEL_STUDIO_VIDEO: video_url_prefix + video.relpath, "fps": info.fps},
            "predictions": [{"model_version": "flicker-review", "result": regions}]}


def _keyframe(frame: int, box: list[float], info: VideoInfo, enabled: bool) -> dict:
    """A Label Studio keyframe (1-based frame, percent of the image); ``enabled``: interpolate to the next."""
    x0, y0, x1, y1 = box
    return {"frame": frame + 1, "enabled": enabled, "rotation": 0,
            "x": 100 * x0 / info.width, "y": 100 * y0 / info.height,
            "width": 100 * (x1 - x0) / info.width, "height": 100 * (y1 - y0) / info.height,
            "time": (frame + 1) / info.fps}


def _write_label_studio(tree: Path, frames: list[_Frame], categories: list[Category],
                        videos: Sequence[PrelabelVideo], video_url_prefix: str) -> None:
    tasks = []
    for v, video in enumerate(videos):
        own = [f for f in frames if f.video == v]
        if not own:
            continue
        if not video.info.fps > 0:
            raise ExportError(f"{video.relpath} has no frame rate, which Label Studio needs to place boxes in time")
        regions = [_video_rectangle(f, k, box, categories[c].name, score, imputed, video.info)
                   for f in own for k, (box, c, score, imputed) in enumerate(_boxes(f))]
        tasks.append({"data": {LABEL_STUDIO_VIDEO: video_url_prefix + video.relpath, "fps": video.info.fps},
                      "predictions": [{"model_version": "flicker-review", "result": regions}]})
    (tree / "tasks.json").write_bytes(json.dumps(tasks, indent=1).encode())
    (tree / "label_config.xml").write_text(label_studio_config([c.name for c in categories]))


def _video_rectangle(frame: _Frame, k: int, box: list[float], label: str, score: float, imputed: bool,
                     info: VideoInfo) -> dict:
    keyframe = _keyframe(frame.frame, box, info, enabled=False)
    region = {"id": f"f{frame.frame + 1}b{k}", "type": "videorectangle", "from_name": LABEL_STUDIO_BOX,
              "to_name": LABEL_STUDIO_VIDEO, "origin": "prediction", "score": score,
              "value": {"sequence": [keyframe], "labels": [label], "framesCount": info.frame_count,
                        "duration": info.frame_count / info.fps}}
    if imputed:
        region["meta"] = {"text": [IMPUTED_NOTE]}
    return region


def label_studio_config(labels: Sequence[str]) -> str:
    """The labelling config the Label Studio tasks are written for."""
    choices = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in labels)
    return (f'<View>\n  <Video name="{LABEL_STUDIO_VIDEO}" value="${LABEL_STUDIO_VIDEO}" frameRate="$fps"/>\n'
            f'  <VideoRectangle name="{LABEL_STUDIO_BOX}" toName="{LABEL_STUDIO_VIDEO}"/>\n'
            f'  <Labels name="labels" toName="{LABEL_STUDIO_VIDEO}">\n{choices}\n  </Labels>\n</View>\n')
