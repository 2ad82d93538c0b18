"""Read and check Lightly datasource files (seed 004): validation of an export, and import of an
object-detection prediction task back into :class:`Detections`."""
from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import orjson

from core.bounded import GrewWhileRead, NotRegularFile, TooLarge, brief, read_regular
from core.detections import Detections, xywh_to_xyxy
from core.errors import PredictionFormatError
from core.lightly.datasource import SCHEMA, Datasource, frame_name, frame_namer

TASK_TYPES = ("classification", "object-detection", "keypoint-detection", "instance-segmentation", "semantic-segmentation")
METADATA_TYPES = ("NUMERIC_FLOAT", "NUMERIC_INT", "CATEGORICAL_STRING", "CATEGORICAL_INT", "CATEGORICAL_BOOLEAN")


@dataclass(frozen=True)
class Violation:
    file: str  # relative to the datasource root
    rule: str

    def __str__(self) -> str:
        return f"{self.file}: {self.rule}"


MAX_FILE_BYTES = 16 << 20  # one frame's predictions; far above any real frame, far below a RAM problem
MAX_CATEGORY_ID = 2**31 - 1  # ids are stored as int32


def _read_capped(path: str | Path) -> bytes:
    """The bytes of a file this tool did not write (:func:`core.bounded.read_regular`): a link,
    something other than a plain file or an oversized file is refused before anything is read;
    FileNotFoundError when there is none."""
    try:
        return read_regular(path, MAX_FILE_BYTES, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PredictionFormatError(f"{path}: is a symbolic link; refusing to read through it") from None
        raise
    except NotRegularFile:
        raise PredictionFormatError(f"{path}: is not a regular file") from None
    except TooLarge as exc:
        raise PredictionFormatError(f"{path}: {exc.size / 1e6:.0f} MB is too large for one file of the format "
                                    f"(limit {MAX_FILE_BYTES >> 20} MiB)") from None
    except GrewWhileRead:
        raise PredictionFormatError(f"{path}: changed while it was read") from None


def _load_json(path: str | Path):
    """The JSON in a file; FileNotFoundError when there is none (the caller says what is missing)."""
    try:
        return orjson.loads(_read_capped(path))
    except orjson.JSONDecodeError as exc:
        raise PredictionFormatError(f"{path}: not valid JSON ({exc})") from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PredictionFormatError(f"{path}: cannot be read ({exc.strerror})") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_detection_singleton(pred, category_ids: set[int]) -> list[str]:
    """Rules for one object-detection prediction; returns the broken ones."""
    if not isinstance(pred, dict):
        return ["a prediction must be an object"]
    errors = []
    if not _is_int(pred.get("category_id")) or not 0 <= pred["category_id"] <= MAX_CATEGORY_ID:
        errors.append(f"category_id must be an integer in 0..{MAX_CATEGORY_ID}")
    elif pred["category_id"] not in category_ids:
        errors.append(f"category_id {pred['category_id']} is not in schema.json")
    bbox = pred.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_int(v) for v in bbox)):
        errors.append("bbox must be [x, y, w, h] in integer pixels")
    else:
        if bbox[0] < 0 or bbox[1] < 0:
            errors.append("bbox x, y must be >= 0")
        if bbox[2] < 1 or bbox[3] < 1:
            errors.append("bbox w, h must be >= 1")
    score = pred.get("score")
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        errors.append("score must be a number in [0, 1]")
    if "probabilities" in pred:
        probs = pred["probabilities"]
        if not (isinstance(probs, list) and len(probs) == len(category_ids) and all(_is_number(p) and 0 <= p <= 1 for p in probs)):
            errors.append("probabilities must hold one value in [0, 1] per category")
        elif abs(sum(probs) - 1.0) > 1e-3:
            errors.append("probabilities must sum to 1")
    return errors


def _check_schema(schema) -> list[str]:
    if not isinstance(schema, dict):
        return ["schema.json must be an object with task_type and categories"]
    errors = []
    if schema.get("task_type") not in TASK_TYPES:
        errors.append(f"task_type must be one of {', '.join(TASK_TYPES)}")
    categories = schema.get("categories")
    if not isinstance(categories, list) or not categories:
        errors.append("categories must be a non-empty list")
    elif not all(isinstance(c, dict) and _is_int(c.get("id")) and 0 <= c["id"] <= MAX_CATEGORY_ID
                 and isinstance(c.get("name"), str) for c in categories):
        errors.append(f"each category needs an integer id in 0..{MAX_CATEGORY_ID} and a string name")
    elif len({c["id"] for c in categories}) != len(categories):
        errors.append("category ids must be unique")
    return errors


def _reporter(root: Path, violations: list[Violation]):
    """``report(path, rule)`` appends a violation named relative to the datasource root."""
    def report(path: Path, rule: str) -> None:
        violations.append(Violation(str(path.relative_to(root)), rule))

    return report


def validate_datasource(root: str | Path, frame_counts: dict[str, int] | None = None) -> list[Violation]:
    """Check ``root/.lightly`` against every rule of seed 004 for object-detection tasks and the
    metadata files. ``frame_counts`` maps video relpaths to PyAV frame counts; when given, every
    frame of every video must have its prediction and metadata file, padded correctly."""
    datasource = Datasource(root)
    root = datasource.root
    violations: list[Violation] = []
    report = _reporter(root, violations)

    tasks_file = datasource.tasks_file
    if not tasks_file.is_file():
        report(tasks_file, "tasks.json is missing: only tasks listed there are read")
        tasks = []
    else:
        tasks = _try_load(tasks_file, report)
        if not (isinstance(tasks, list) and all(isinstance(t, str) and t for t in tasks)):
            report(tasks_file, "tasks.json must be a list of task names")
            tasks = []
    for task in tasks:
        violations.extend(_validate_task(root, datasource.task_dir(task), frame_counts))
    metadata_dir = datasource.metadata
    if metadata_dir.exists():
        violations.extend(_validate_metadata(root, metadata_dir, frame_counts))
    return violations


def _try_load(path: Path, report):
    try:
        return orjson.loads(_read_capped(path))
    except PredictionFormatError as exc:
        report(path, str(exc).split(": ", 1)[-1])
    except (orjson.JSONDecodeError, OSError):
        report(path, "not valid JSON")
    return None


def _validate_task(root: Path, task_dir: Path, frame_counts) -> list[Violation]:
    violations: list[Violation] = []
    report = _reporter(root, violations)

    schema_file = task_dir / SCHEMA
    if not schema_file.is_file():
        report(schema_file, "every task in tasks.json needs a schema.json")
        return violations
    schema = _try_load(schema_file, report)
    problems = _check_schema(schema)
    for problem in problems:
        report(schema_file, problem)
    if problems or schema.get("task_type") != "object-detection":
        return violations
    category_ids = {c["id"] for c in schema["categories"]}
    for path in sorted(task_dir.rglob("*.json")):
        if path == schema_file:
            continue
        data = _try_load(path, report)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("file_name"), str) or not isinstance(data.get("predictions"), list):
            report(path, "a prediction file needs a file_name string and a predictions list")
            continue
        expected = str(PurePosixPath(path.relative_to(task_dir).as_posix()).with_suffix(".png"))
        if data["file_name"] != expected:
            report(path, f"file_name must be {expected!r} (the frame's path relative to the input root, ending .png)")
        for k, pred in enumerate(data["predictions"]):
            for problem in check_detection_singleton(pred, category_ids):
                report(path, f"predictions[{k}]: {problem}")
    violations.extend(_missing_frames(root, task_dir, frame_counts))
    return violations


def _validate_metadata(root: Path, metadata_dir: Path, frame_counts) -> list[Violation]:
    violations: list[Violation] = []
    report = _reporter(root, violations)

    schema_file = metadata_dir / SCHEMA
    schema = _try_load(schema_file, report) if schema_file.is_file() else None
    if schema_file.is_file() and schema is None:
        return violations
    if schema is None:
        report(schema_file, "metadata needs a schema.json")
        return violations
    entries_ok = isinstance(schema, list) and all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("path"), str)
        and e.get("valueDataType") in METADATA_TYPES and "defaultValue" in e for e in schema)
    if not entries_ok:
        report(schema_file, f"schema.json must list entries with name, path, defaultValue and valueDataType in {METADATA_TYPES}")
        return violations
    numeric = {e["path"] for e in schema if e["valueDataType"].startswith("NUMERIC")}
    for path in sorted(metadata_dir.rglob("*.json")):
        if path == schema_file:
            continue
        data = _try_load(path, report)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("file_name"), str) or not isinstance(data.get("metadata"), dict):
            report(path, "a metadata file needs a file_name string and a metadata object")
            continue
        if data.get("type") != "frame":
            report(path, 'a video frame\'s metadata needs "type": "frame"')
        expected = str(PurePosixPath(path.relative_to(metadata_dir).as_posix()).with_suffix(".png"))
        if data["file_name"] != expected:
            report(path, f"file_name must be {expected!r}")
        for key in numeric & set(data["metadata"]):
            if not _is_number(data["metadata"][key]):
                report(path, f"metadata {key!r} must be a number")
    violations.extend(_missing_frames(root, metadata_dir, frame_counts))
    return violations


def _missing_frames(root: Path, folder: Path, frame_counts) -> list[Violation]:
    if not frame_counts:
        return []
    violations = []
    for relpath, n in frame_counts.items():
        for frame in range(n):
            path = folder / frame_name(relpath, frame, n, ".json")
            if not path.is_file():
                violations.append(Violation(str(path.relative_to(root)), f"frame {frame} of {relpath} has no file"))
                break  # one line per video is enough to act on
    return violations


def import_predictions(task_dir: str | Path, video_relpath: str, n_frames: int,
                       image_size: tuple[int, int] | None = None) -> Detections:
    """Read an object-detection task's files for one video back into :class:`Detections`.

    Every frame must have its file (named for ``n_frames`` frames); malformed files raise a
    :class:`PredictionFormatError` that names the file and the broken rule.
    """
    task_dir = Path(task_dir)
    if not task_dir.is_dir():
        raise PredictionFormatError(f"Prediction folder not found: {task_dir}")
    schema_file = task_dir / SCHEMA
    if not schema_file.is_file():
        raise PredictionFormatError(f"{schema_file}: missing (every prediction task needs a schema.json)")
    schema = _load_json(schema_file)
    problems = _check_schema(schema)
    if problems:
        raise PredictionFormatError(f"{schema_file}: {problems[0]}")
    if schema["task_type"] != "object-detection":
        raise PredictionFormatError(f"{schema_file}: task_type is {schema['task_type']!r}; only object-detection can be reviewed")
    names = {c["id"]: c["name"] for c in schema["categories"]}
    category_ids = set(names)
    name_of, folder = frame_namer(video_relpath, n_frames), str(task_dir)
    counts, boxes, scores, classes = np.zeros(n_frames, np.int64), [], [], []
    for frame in range(n_frames):
        path = os.path.join(folder, name_of(frame) + ".json")
        try:
            data = _load_json(path)
        except FileNotFoundError:
            raise PredictionFormatError(f"{path}: missing (frame {frame} of {n_frames} of {video_relpath})") from None
        predictions = data.get("predictions") if isinstance(data, dict) else None
        if not isinstance(predictions, list):
            raise PredictionFormatError(f"{path}: needs a file_name and a predictions list")
        if not _names_its_frame(data.get("file_name"), name_of(frame)):
            raise PredictionFormatError(f"{path}: file_name {brief(data.get('file_name'))} names another image than this "
                                        f"file's frame ({name_of(frame)}.png): the file was made for another frame or video")
        for k, pred in enumerate(predictions):
            if not _plain_prediction(pred, category_ids) and (problems := check_detection_singleton(pred, category_ids)):
                raise PredictionFormatError(f"{path}: predictions[{k}]: {problems[0]}")
            boxes.append(pred["bbox"])
            scores.append(pred["score"])
            classes.append(pred["category_id"])
        counts[frame] = len(predictions)
    _refuse_other_frames(task_dir, video_relpath, n_frames)
    frame_of = np.repeat(np.arange(n_frames), counts)
    xyxy = xywh_to_xyxy(np.asarray(boxes, np.float32).reshape(-1, 4))
    _check_inside(xyxy, image_size, lambda row: (os.path.join(folder, name_of(int(frame_of[row])) + ".json"),
                                                  row - int(np.searchsorted(frame_of, frame_of[row]))))
    return Detections(frame=frame_of, xyxy=xyxy, score=np.asarray(scores, np.float32).reshape(-1),
                      cls=np.asarray(classes, np.int32).reshape(-1), names=names, n_frames=n_frames, image_size=image_size)


def _refuse_other_frames(task_dir: Path, video_relpath: str, n_frames: int) -> None:
    """A prediction file named for this video but for a frame it does not have means the folder was
    made for another video of that name: refused, as the other formats refuse a frame outside the
    video, rather than read in part. Such a video's files include the first frame past this one's
    end (a longer one, numbered alike) or frame 0 numbered with one digit more or less: three
    look-ups, whatever the folder holds (a batch's folder holds every video's frames)."""
    width = len(str(n_frames))
    # Lightly's names (frame_namer) in a video of this length, and in videos whose frame numbers have
    # one digit more or fewer (10 ** k frames take k + 1 digits)
    others = [frame_namer(video_relpath, n_frames)(n_frames), frame_namer(video_relpath, 10 ** width)(0)]
    if width > 1:
        others.append(frame_namer(video_relpath, 10 ** (width - 2))(0))
    for name in (other + ".json" for other in others):
        if os.path.lexists(os.path.join(task_dir, name)):
            raise PredictionFormatError(f"{os.path.join(task_dir, name)}: a prediction for a frame {video_relpath} "
                                        f"({n_frames} frames) does not have: the folder was made for another video "
                                        "of that name")


def _names_its_frame(file_name, stem: str) -> bool:
    """Whether a prediction file's ``file_name`` is its own frame's image (any image extension)."""
    try:
        return isinstance(file_name, str) and PurePosixPath(file_name).with_suffix("").as_posix() == stem
    except ValueError:  # a name with no stem ("", ".", "/")
        return False


def _plain_prediction(pred, category_ids: set[int]) -> bool:
    """The common valid prediction (integer box, score, known class, no probabilities) in a few type
    checks: what :func:`check_detection_singleton` accepts, at a fraction of its cost, so an import
    of 18,000 frames runs the full rules only on what this does not recognise."""
    if type(pred) is not dict or "probabilities" in pred:
        return False
    bbox, score, cls = pred.get("bbox"), pred.get("score"), pred.get("category_id")
    return (type(cls) is int and cls in category_ids and type(bbox) is list and len(bbox) == 4
            and all(type(v) is int for v in bbox) and bbox[0] >= 0 and bbox[1] >= 0 and bbox[2] >= 1 and bbox[3] >= 1
            and type(score) in (float, int) and 0.0 <= score <= 1.0)


def _check_inside(xyxy: np.ndarray, image_size: tuple[int, int] | None, where) -> None:
    """A box that does not touch the image is a broken file, not a detection to clip into a 1x1 box;
    nor is one reaching more than the image's own size beyond it (a width of ``10**15`` became the
    whole frame), as every other format's reader refuses it. ``where(row)``: the file holding box
    ``row`` and the box's position in that file's predictions."""
    if image_size is None or not len(xyxy):
        return
    width, height = image_size
    outside = (xyxy[:, 0] >= width) | (xyxy[:, 1] >= height) | (xyxy[:, 2] <= 0) | (xyxy[:, 3] <= 0)
    if outside.any():
        path, k = where(int(np.flatnonzero(outside)[0]))
        raise PredictionFormatError(f"{path}: predictions[{k}]: the box lies entirely outside the {width}x{height} frame")
    beyond = (xyxy[:, 2] > 2 * width) | (xyxy[:, 3] > 2 * height)  # x, y >= 0: a rule of the format
    if beyond.any():
        path, k = where(int(np.flatnonzero(beyond)[0]))
        raise PredictionFormatError(f"{path}: predictions[{k}]: the box reaches more than the {width}x{height} frame's "
                                    "own size beyond it")
