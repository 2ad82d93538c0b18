import json
import shutil

import numpy as np
import orjson
import pytest

from core.detections import Detections
from core.lightly.export import ExportError, VideoPredictions, export_datasource, flickering_values, sample_files
from core.flicker import FlickerIndex, FlickerOptions, compute_flickering_assertion
from core.lightly.validate import PredictionFormatError, import_predictions, validate_datasource

NAMES = {0: "person", 1: "bicycle", 2: "car"}


def random_detections(n_frames, seed=0, size=(640, 360)):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5, n_frames)
    counts[::7] = 0
    xy = rng.uniform(-10, 600, (counts.sum(), 2))
    wh = rng.uniform(0.5, 120, (counts.sum(), 2))
    return Detections(np.repeat(np.arange(n_frames), counts), np.concatenate([xy, xy + wh], 1),
                      rng.uniform(0.1, 1, counts.sum()), rng.choice([0, 2], counts.sum()), NAMES, n_frames, size)


def video_export(relpath, n_frames, seed=0, options=None):
    det = random_detections(n_frames, seed)
    return VideoPredictions(relpath, det, FlickerIndex.from_detections(det, options).evaluate(0.3, 0.6))


def sample_paths(out_dir, task, **options):
    """The two files sample_files picks, without the contents it read."""
    sample = sample_files(out_dir, task, **options)
    return None if sample is None else tuple(path for path, _ in sample)


def test_layout_names_and_contents(tmp_path):
    video = video_export("cars.mp4", 120)
    summary = export_datasource(tmp_path, [video], task="yolov8_detection", classes=[0, 2])
    lightly = tmp_path / ".lightly"
    assert json.loads((lightly / "predictions/tasks.json").read_text()) == ["yolov8_detection"]
    assert json.loads((lightly / "predictions/yolov8_detection/schema.json").read_text()) == {
        "task_type": "object-detection", "categories": [{"id": 0, "name": "person"}, {"id": 2, "name": "car"}]}
    assert json.loads((lightly / "metadata/schema.json").read_text()) == [
        {"name": "Flickering", "path": "flickering", "defaultValue": 0.5, "valueDataType": "NUMERIC_FLOAT"}]
    predictions = sorted((lightly / "predictions/yolov8_detection").glob("cars-*-mp4.json"))
    assert len(predictions) == 120 and predictions[0].name == "cars-000-mp4.json"
    first_empty = json.loads((lightly / "predictions/yolov8_detection/cars-000-mp4.json").read_text())
    assert first_empty == {"file_name": "cars-000-mp4.png", "predictions": []}  # empty frames get a file too
    metadata = json.loads((lightly / "metadata/cars-000-mp4.json").read_text())
    assert metadata == {"file_name": "cars-000-mp4.png", "type": "frame", "metadata": {"flickering": 0.5}}
    assert summary.frames == 120 and summary.flagged == video.flicker.n_flagged
    assert validate_datasource(tmp_path, {"cars.mp4": 120}) == []


def test_schema_and_tasks_files_are_what_lightlys_own_writers_write(tmp_path):
    """We write schema.json and tasks.json ourselves (importing lightly costs every run seconds);
    they must stay byte-identical to lightly.utils.io's writers, non-ASCII names included."""
    from lightly.utils.io import save_schema, save_tasks

    names = {0: "person", 2: "car", 7: "Straßenbahn \"tram\""}
    det = random_detections(5, seed=0)
    det = Detections(det.frame, det.xyxy, det.score, det.cls, names, det.n_frames, det.image_size)
    video = VideoPredictions("cars.mp4", det, FlickerIndex.from_detections(det).evaluate(0.3, 0.6))
    export_datasource(tmp_path / "ours", [video], task="det", classes=[0, 2, 7], imputed_task="det_imputed")
    save_schema(str(tmp_path / "schema.json"), "object-detection", [0, 2, 7], [names[i] for i in (0, 2, 7)])
    save_tasks(str(tmp_path / "tasks.json"), ["det", "det_imputed"])
    predictions = tmp_path / "ours/.lightly/predictions"
    assert (predictions / "tasks.json").read_bytes() == (tmp_path / "tasks.json").read_bytes()
    for task in ("det", "det_imputed"):
        assert (predictions / task / "schema.json").read_bytes() == (tmp_path / "schema.json").read_bytes()


def test_the_sample_shown_after_an_export_is_a_flagged_frame_with_boxes(tmp_path):
    video = video_export("cars.mp4", 120)
    assert video.flicker.n_flagged and not video.flicker.flag_array[0]
    export_datasource(tmp_path, [video], task="det")
    (prediction, boxes), (metadata, values) = sample_files(tmp_path, "det")  # with their contents, as read: the page shows them
    assert values == orjson.loads(metadata.read_bytes()) and values["metadata"]["flickering"] == 1.0
    assert boxes == orjson.loads(prediction.read_bytes()) and boxes["predictions"] and prediction.name == metadata.name
    first_with_boxes = min(int(p.name.split("-")[1]) for p in (tmp_path / ".lightly/predictions/det").glob("cars-*.json")
                           if orjson.loads(p.read_bytes())["predictions"])
    assert sample_paths(tmp_path, "det", search=0)[0].name == f"cars-{first_with_boxes:03d}-mp4.json"



def test_the_sample_after_an_export_is_shown_when_its_manifest_is_damaged_since(tmp_path):
    """The Export page draws the sample on every rerun after an export, outside any error boundary: a manifest
    damaged since (or replaced) stopped the page on an ExportError traceback; the tutorial's 1.0 still finds one."""
    from core.lightly.datasource import Datasource

    video = video_export("cars.mp4", 120)
    export_datasource(tmp_path, [video], task="det")
    Datasource(tmp_path).manifest.write_text("{damaged")
    _, metadata = sample_paths(tmp_path, "det")
    assert orjson.loads(metadata.read_bytes())["metadata"]["flickering"] == 1.0


def test_the_sample_passes_over_exported_files_damaged_or_linked_since(tmp_path):
    """The sample is drawn on every rerun after an export: a prediction file damaged since (or made a link) stopped
    the Export page on a JSONDecodeError; a link was followed out of the export. Such files are passed over."""
    video = video_export("cars.mp4", 120)
    export_datasource(tmp_path, [video], task="det")
    prediction, metadata = sample_paths(tmp_path, "det")
    (tmp_path / "secret.json").write_text('{"predictions": [1], "metadata": {"flickering": 1.0}}')
    prediction.write_text("{damaged")
    metadata.unlink()
    metadata.symlink_to(tmp_path / "secret.json")
    again, its_metadata = sample_paths(tmp_path, "det")
    assert again != prediction and again.name == its_metadata.name
    assert orjson.loads(its_metadata.read_bytes())["metadata"]["flickering"] == 1.0 and not its_metadata.is_symlink()
    for path in (tmp_path / ".lightly/predictions/det").glob("cars-*.json"):
        path.write_bytes(b"\xff" * 3)
    assert sample_paths(tmp_path, "det") is None


def test_the_sample_and_its_metadata_are_read_whole_and_never_through_a_link(tmp_path):
    """The sample's metadata file was checked only when a flagged frame was found: a video with no flagged frame
    (the first frame with boxes is shown) returned its metadata file unread, and the Export page read it with a plain
    read: a link there was followed out of the export, a damaged file stopped the page on a JSONDecodeError. A
    metadata file without a readable flickering value stopped it with a KeyError or a ValueError."""
    from core.lightly.export import exported_document

    still = [[10.0, 10.0, 50.0, 50.0]]
    export_datasource(tmp_path / "calm", [improved_video("calm.mp4", [still] * 12)], task="det")
    prediction, metadata = sample_paths(tmp_path / "calm", "det")
    assert prediction.name == "calm-00-mp4.json"  # nothing flagged: the first frame with boxes
    (tmp_path / "secret.json").write_text('{"metadata": {"flickering": 1.0}, "secret": 1}')
    metadata.unlink()
    metadata.symlink_to(tmp_path / "secret.json")
    again, its_metadata = sample_paths(tmp_path / "calm", "det")
    assert again.name == its_metadata.name == "calm-01-mp4.json" and not its_metadata.is_symlink()
    assert exported_document(metadata) is None and exported_document(its_metadata)["metadata"]["flickering"] == 0.5
    video = video_export("cars.mp4", 120)
    export_datasource(tmp_path / "cars", [video], task="det")
    _, flagged = sample_paths(tmp_path / "cars", "det")
    flagged.write_text('{"metadata": {}}')
    _, later = sample_paths(tmp_path / "cars", "det")
    assert later != flagged and exported_document(later)["metadata"]["flickering"] == 1.0
    later.write_text('{"metadata": {"flickering": "high"}}')
    assert sample_paths(tmp_path / "cars", "det")[1] not in (flagged, later)


@pytest.mark.parametrize("linked", [".lightly", ".lightly/metadata", ".lightly/predictions/det"])
def test_the_sample_reads_nothing_through_a_folder_made_a_link_since(tmp_path, linked):
    """Each file was opened without following a link, but a folder on its way made a link since the export (to a
    copy elsewhere, holding anything) was read through. A sample only comes from inside the export's .lightly."""
    export_datasource(tmp_path / "export", [video_export("cars.mp4", 120)], task="det")
    assert sample_paths(tmp_path / "export", "det") is not None
    folder = tmp_path / "export" / linked
    shutil.copytree(folder, tmp_path / "elsewhere")
    shutil.rmtree(folder)
    folder.symlink_to(tmp_path / "elsewhere")
    assert sample_paths(tmp_path / "export", "det") is None


def improved_video(relpath: str, frames: list[list[list[float]]]) -> VideoPredictions:
    """A video of these boxes per frame, flagged in improved mode (one frame each side, any class)."""
    frame = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    xyxy = np.array([box for f in frames for box in f])
    det = Detections(frame, xyxy, np.full(len(frame), 0.9), np.zeros(len(frame), int), NAMES, len(frames), (640, 360))
    options = FlickerOptions.improved(class_aware=False, one_to_one=False, window=1)
    return VideoPredictions(relpath, det, FlickerIndex.from_detections(det, options).evaluate(0.1, 0.5))


def test_the_sample_after_a_score_export_is_a_frame_the_review_flagged(tmp_path):
    """The sample read flags past the largest cut the manifest recorded and left out its flags_flipped: a flagged
    partial miss (frame 5, 0.88) under the cut (improved mode's empty frames score the median, 1.0) was passed over
    for a later frame, and so was one past its own video's cut but under another video's. It reads each video's
    flags as every reader does (flickering_flags) now."""
    from core.lightly.export import FLAGGED_ABOVE, FLAGS_FLIPPED, read_manifest

    still, other = [10.0, 10.0, 50.0, 50.0], [200.0, 200.0, 240.0, 240.0]
    partial = [[still] for _ in range(12)]
    partial[5] = [[35.0, 10.0, 75.0, 50.0]]  # the object half there: a partial miss
    flickering = [[still] if i % 2 == 0 else [other] for i in range(20)]  # each missing on every other frame: 1.0
    video = improved_video("v.mp4", partial + flickering + [[] for _ in range(20)])  # then the scene empties
    export_datasource(tmp_path / "one", [video], task="det", metadata_style="score")
    assert np.flatnonzero(video.flicker.flag_array)[0] == 5 and 5 in read_manifest(tmp_path / "one")[0][FLAGS_FLIPPED]
    prediction, metadata = sample_paths(tmp_path / "one", "det")
    assert prediction.name == metadata.name == "v-05-mp4.json"
    export_datasource(tmp_path / "two", [improved_video("a.mp4", partial), video], task="det", metadata_style="score")
    assert [entry[FLAGGED_ABOVE] < 0.88 for entry in read_manifest(tmp_path / "two")] == [True, False]
    assert sample_paths(tmp_path / "two", "det")[0].name == "a-05-mp4.json"


def test_flickering_metadata_equals_reference_assertion_on_exported_predictions(tmp_path):
    video = video_export("walk.avi", 200, seed=4)
    export_datasource(tmp_path, [video], task="t")
    task_dir = tmp_path / ".lightly/predictions/t"
    predictions_list = [orjson.loads((task_dir / f"walk-{i:03d}-avi.json").read_bytes()) for i in range(200)]
    flags, _ = compute_flickering_assertion(predictions_list, 0.3, 0.6)
    values = [orjson.loads((tmp_path / f".lightly/metadata/walk-{i:03d}-avi.json").read_bytes())["metadata"]["flickering"]
              for i in range(200)]
    assert values == [1.0 if f else 0.5 for f in flags]
    assert any(flags)


def test_round_trip_export_import(tmp_path):
    video = video_export("sub/dir/cam.mp4", 57)
    export_datasource(tmp_path, [video], task="det")
    back = import_predictions(tmp_path / ".lightly/predictions/det", "sub/dir/cam.mp4", 57, (640, 360))
    exported = video.detections.lightly_xywh()
    back_xywh = np.concatenate([back.xyxy[:, :2], back.xyxy[:, 2:] - back.xyxy[:, :2]], 1)
    assert np.array_equal(back.frame, video.detections.frame)
    assert np.array_equal(back_xywh, exported)
    assert np.array_equal(back.cls, video.detections.cls)
    np.testing.assert_allclose(back.score, video.detections.score, rtol=1e-6)
    # a second export of the imported detections writes the same files
    again = tmp_path / "again"
    export_datasource(again, [VideoPredictions("sub/dir/cam.mp4", back, video.flicker)], task="det")
    for path in (tmp_path / ".lightly/predictions/det/sub/dir").glob("*.json"):
        assert path.read_bytes() == (again / ".lightly/predictions/det/sub/dir" / path.name).read_bytes()


def test_several_videos_keep_their_folders(tmp_path):
    videos = [video_export("a.mp4", 9, 1), video_export("day2/b.avi", 100, 2), video_export("day2/night/c.mov", 1000, 3)]
    export_datasource(tmp_path, videos, task="det", imputed_task="det_imputed")
    task = tmp_path / ".lightly/predictions/det"
    assert (task / "a-8-mp4.json").is_file()
    assert (task / "day2/b-099-avi.json").is_file()
    assert (task / "day2/night/c-0999-mov.json").is_file()
    assert json.loads((tmp_path / ".lightly/predictions/tasks.json").read_text()) == ["det", "det_imputed"]
    frame_counts = {"a.mp4": 9, "day2/b.avi": 100, "day2/night/c.mov": 1000}
    assert validate_datasource(tmp_path, frame_counts) == []


def test_continuous_flickering_values(tmp_path):
    video = video_export("v.mp4", 80, 6, FlickerOptions.improved())
    values = flickering_values(video.flicker, "score")
    assert values.min() >= 0.5 and values.max() <= 1.0
    export_datasource(tmp_path, [video], task="det", metadata_style="score")
    assert validate_datasource(tmp_path, {"v.mp4": 80}) == []


@pytest.mark.parametrize("style", ["binary", "score"])
def test_the_manifest_records_the_cut_that_tells_the_flagged_frames_from_the_values(tmp_path, style):
    """A score export's values (0.5 + 0.5 * score) say how badly a frame misses its object, not whether it is flagged:
    the manifest's cut does, for every reader (flickering_flags); without it only values of 1.0 counted."""
    from core.lightly.datasource import Datasource, frame_namer
    from core.lightly.export import FLAGGED_ABOVE, flickering_flags, read_manifest

    n = 30
    xyxy = np.tile([100.0, 100.0, 200.0, 300.0], (n, 1))
    xyxy[[10, 20], 0::2] += 54  # IoU 0.30 with its neighbours: flagged at 0.8 / 0.6, value 0.85 in a score export
    xyxy[5, 0::2] += 18  # IoU 0.69: not flagged, value 0.6525
    kept = np.arange(n) != 25  # missed outright: value 1.0
    det = Detections(np.flatnonzero(kept), xyxy[kept], np.full(kept.sum(), 0.9), np.zeros(kept.sum(), int), NAMES, n, (640, 360))
    video = VideoPredictions("v.mp4", det, FlickerIndex.from_detections(det).evaluate())
    export_datasource(tmp_path, [video], task="det", metadata_style=style)
    cut = read_manifest(tmp_path)[0][FLAGGED_ABOVE]
    name_of = frame_namer("v.mp4", n)
    values = [orjson.loads(Datasource(tmp_path).metadata_file(name_of(f)).read_bytes())["metadata"]["flickering"]
              for f in range(n)]
    flags = flickering_flags(values, cut)
    assert np.flatnonzero(flags).tolist() == np.flatnonzero(video.flicker.flag_array).tolist() == [10, 20, 25]
    assert cut == (0.652542 if style == "score" else 0.5)
    if style == "score":
        assert np.flatnonzero(flickering_flags(values, None)).tolist() == [25]  # the tutorial's 1.0 alone: too few
    manifest = Datasource(tmp_path).manifest
    record = orjson.loads(manifest.read_bytes())
    for hostile in (2.0, 0.2, "0.8", True, [0.8]):  # the manifest is untrusted input
        record["videos"][0][FLAGGED_ABOVE] = hostile
        manifest.write_bytes(orjson.dumps(record))
        with pytest.raises(ExportError, match=FLAGGED_ABOVE):
            read_manifest(tmp_path)


def test_frames_no_cut_can_tell_are_listed_so_every_reader_gets_the_exports_flags(tmp_path):
    """Improved mode scores a frame with no box near it at the video's median: where most frames near objects are
    flagged, 20 empty frames scored 1.0 unflagged, above a flagged partial miss (0.88). No cut parts them, and
    readers counted the empty frames flagged and the partial miss not; the manifest now lists the frames its cut
    tells wrongly."""
    from core.lightly.datasource import Datasource, frame_namer
    from core.lightly.export import FLAGGED_ABOVE, FLAGS_FLIPPED, flickering_flags, read_manifest

    first, second = [10.0, 10.0, 50.0, 50.0], [200.0, 200.0, 240.0, 240.0]
    frames = [[first] if i % 2 == 0 else [second] for i in range(12)]  # each missing on every other frame
    frames[5] = [second, [35.0, 10.0, 75.0, 50.0]]  # the first one half there: a partial miss
    frames += [[] for _ in range(20)]  # then the scene empties
    frame = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    xyxy = np.array([box for f in frames for box in f])
    det = Detections(frame, xyxy, np.full(len(frame), 0.9), np.zeros(len(frame), int), NAMES, len(frames), (640, 360))
    options = FlickerOptions.improved(class_aware=False, one_to_one=False, window=1)
    video = VideoPredictions("v.mp4", det, FlickerIndex.from_detections(det, options).evaluate(0.1, 0.5))
    export_datasource(tmp_path, [video], task="det", metadata_style="score")
    [entry] = read_manifest(tmp_path)
    name_of = frame_namer("v.mp4", len(frames))
    values = [orjson.loads(Datasource(tmp_path).metadata_file(name_of(f)).read_bytes())["metadata"]["flickering"]
              for f in range(len(frames))]
    truth = video.flicker.flag_array
    assert 5 in np.flatnonzero(truth) and not truth[11:].any() and np.min(np.asarray(values)[13:]) > values[5]
    assert not np.array_equal(flickering_flags(values, entry[FLAGGED_ABOVE]), truth)  # the cut alone
    flags = flickering_flags(values, entry[FLAGGED_ABOVE], entry[FLAGS_FLIPPED])
    assert np.array_equal(flags, truth)
    one_by_one = [bool(flickering_flags(v, entry[FLAGGED_ABOVE], entry[FLAGS_FLIPPED], f)) for f, v in enumerate(values)]
    assert one_by_one == truth.tolist()  # a frame's file read alone (Fleet's counts)
    manifest = Datasource(tmp_path).manifest
    record = orjson.loads(manifest.read_bytes())
    for hostile in ([len(frames)], [-1], [1.5], [True], "5", list(range(len(frames) + 1))):  # untrusted input
        record["videos"][0][FLAGS_FLIPPED] = hostile
        manifest.write_bytes(orjson.dumps(record))
        with pytest.raises(ExportError, match=FLAGS_FLIPPED):
            read_manifest(tmp_path)


def test_failed_export_keeps_the_previous_one(tmp_path):
    export_datasource(tmp_path, [video_export("v.mp4", 20)], task="det")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    broken = video_export("bad\0name.mp4", 20)  # the OS refuses this file name mid-export
    with pytest.raises((ValueError, ExportError)):
        export_datasource(tmp_path, [broken], task="det")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(ExportError, match="Invalid task name"):
        export_datasource(tmp_path, [video_export("v.mp4", 20)], task="../escape")
    with pytest.raises(ExportError, match="must be relative"):
        export_datasource(tmp_path, [video_export("../v.mp4", 20)], task="det")
    with pytest.raises(ExportError, match=r"^Video name 'a\\nb.mp4' holds a character that is not printable"):
        export_datasource(tmp_path, [video_export("a\nb.mp4", 20)], task="det")  # said as what it is
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_invalid_export_never_replaces_a_valid_one(tmp_path):
    export_datasource(tmp_path, [video_export("v.mp4", 20)], task="det")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.json")}
    broken = video_export("v.mp4", 20)
    object.__setattr__(broken.detections, "score", np.full(len(broken.detections), np.nan, np.float32))  # a broken model
    with pytest.raises(ExportError, match="score must be a number"):
        export_datasource(tmp_path, [broken], task="det")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.json")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lightly", "flicker_export.json"]


@pytest.fixture
def valid_export(tmp_path):
    export_datasource(tmp_path, [video_export("v.mp4", 12, seed=8)], task="det")
    return tmp_path


def edit_json(path, change):
    data = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps(change(data)))


def first_prediction_file(root):
    return next(p for p in sorted((root / ".lightly/predictions/det").glob("v-*.json"))
                if orjson.loads(p.read_bytes())["predictions"])


BREAKS = {
    "tasks.json is missing": lambda root: (root / ".lightly/predictions/tasks.json").unlink(),
    "needs a schema.json": lambda root: (root / ".lightly/predictions/det/schema.json").unlink(),
    "task_type must be one of": lambda root: edit_json(root / ".lightly/predictions/det/schema.json", lambda d: d | {"task_type": "boxes"}),
    "category ids must be unique": lambda root: edit_json(root / ".lightly/predictions/det/schema.json",
                                                          lambda d: d | {"categories": d["categories"] * 2}),
    "not valid JSON": lambda root: first_prediction_file(root).write_text("{oops"),
    "file_name must be": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"file_name": "v-00-mp4.jpg"}),
    "bbox w, h must be >= 1": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"predictions": [
        {**d["predictions"][0], "bbox": [0, 0, 0, 5]}]}),
    "bbox x, y must be >= 0": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"predictions": [
        {**d["predictions"][0], "bbox": [-1, 0, 5, 5]}]}),
    "integer pixels": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"predictions": [
        {**d["predictions"][0], "bbox": [0.5, 0, 5, 5]}]}),
    "score must be a number in [0, 1]": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"predictions": [
        {**d["predictions"][0], "score": 1.2}]}),
    "is not in schema.json": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"predictions": [
        {**d["predictions"][0], "category_id": 7}]}),
    "probabilities must sum to 1": lambda root: edit_json(first_prediction_file(root), lambda d: d | {"predictions": [
        {**d["predictions"][0], "probabilities": [0.2, 0.2, 0.2]}]}),
    "has no file": lambda root: (root / ".lightly/metadata/v-05-mp4.json").unlink(),
    '"type": "frame"': lambda root: edit_json(root / ".lightly/metadata/v-03-mp4.json", lambda d: d | {"type": "image"}),
    "must be a number": lambda root: edit_json(root / ".lightly/metadata/v-03-mp4.json", lambda d: d | {"metadata": {"flickering": "high"}}),
    "metadata needs a schema.json": lambda root: (root / ".lightly/metadata/schema.json").unlink(),
}


@pytest.mark.parametrize("rule", BREAKS)
def test_validator_catches_each_broken_rule(valid_export, rule):
    assert validate_datasource(valid_export, {"v.mp4": 12}) == []
    BREAKS[rule](valid_export)
    violations = validate_datasource(valid_export, {"v.mp4": 12})
    assert any(rule in v.rule for v in violations), violations
    assert all(v.file.startswith(".lightly/") for v in violations)


def test_padding_mismatch_is_reported(valid_export):
    task = valid_export / ".lightly/predictions/det"
    shutil.move(task / "v-04-mp4.json", task / "v-004-mp4.json")
    violations = validate_datasource(valid_export, {"v.mp4": 12})
    assert any("v-04-mp4.json" in v.file and "has no file" in v.rule for v in violations)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda task: (task / "v-02-mp4.json").write_text("[not json"), "v-02-mp4.json: not valid JSON"),
        (lambda task: (task / "v-11-mp4.json").unlink(), "v-11-mp4.json: missing"),
        (lambda task: edit_json(task / "v-01-mp4.json", lambda d: d | {"predictions": [
            {"category_id": 5, "bbox": [0, 0, 3, 3], "score": 0.5}]}), "category_id 5 is not in schema.json"),
        (lambda task: edit_json(task / "v-01-mp4.json", lambda d: d | {"predictions": [
            {"category_id": 0, "bbox": [0, 0, 3], "score": 0.5}]}), "bbox must be"),
        (lambda task: (task / "schema.json").unlink(), "schema.json: missing"),
    ],
)
def test_importer_names_the_bad_file(valid_export, damage, message):
    task = valid_export / ".lightly/predictions/det"
    damage(task)
    with pytest.raises(PredictionFormatError, match=message.replace("[", r"\[")):
        import_predictions(task, "v.mp4", 12)


def test_the_manifest_records_which_boxes_and_flags_each_video_was_exported_with(tmp_path):
    """exported_flags gives back the digest of the boxes and flags written; it changes with the boxes
    kept, the thresholds and the sibling assertions' flags; an older or damaged manifest says nothing."""
    from core.lightly.export import exported_flags

    frames = [f for f in range(30) if f not in (5, 15)]  # a walker dropped on frames 5 and 15, a weaker box beside
    xyxy = [[100.0 + 2 * f, 50.0, 160.0 + 2 * f, 200.0] for f in frames] + [[400.0, 50.0, 450.0, 150.0]] * 30
    order = np.argsort(np.array(frames + list(range(30))), kind="stable")
    det = Detections(np.array(frames + list(range(30)))[order], np.array(xyxy)[order],
                     np.r_[np.full(len(frames), 0.9), np.full(30, 0.3)][order], np.zeros(len(xyxy), int), NAMES, 30, (640, 360))
    index = FlickerIndex.from_detections(det)
    part = VideoPredictions("a.mp4", det, index.evaluate(0.3, 0.6), fingerprint="key-a")
    export_datasource(tmp_path, [part], task="det")
    assert exported_flags(tmp_path, "key-a") == part.flags_digest() and exported_flags(tmp_path, "key-b") is None
    kept = det.above(0.5)
    others = [VideoPredictions("a.mp4", det, index.evaluate(0.99, 0.6), fingerprint="key-a"),  # other thresholds
              VideoPredictions("a.mp4", kept, FlickerIndex.from_detections(kept).evaluate(0.3, 0.6), fingerprint="key-a"),
              VideoPredictions("a.mp4", det, part.flicker, fingerprint="key-a", siblings=(("ghost", np.ones(30, bool)),))]
    assert part.flicker.flag_array.any() and not np.array_equal(others[0].flicker.flag_array, part.flicker.flag_array)
    assert len({part.flags_digest(), *(other.flags_digest() for other in others)}) == 4
    moved = Detections(det.frame, det.xyxy + 1.0, det.score, det.cls, det.names, det.n_frames, det.image_size)
    assert VideoPredictions("a.mp4", moved, part.flicker).flags_digest() != part.flags_digest()  # same count, other boxes
    manifest = tmp_path / "flicker_export.json"
    entries = orjson.loads(manifest.read_bytes())
    del entries["videos"][0]["flags"]  # an export from before the digest
    manifest.write_bytes(orjson.dumps(entries))
    assert exported_flags(tmp_path, "key-a") is None
    entries["videos"][0]["flags"] = 5  # not what this tool writes
    manifest.write_bytes(orjson.dumps(entries))
    assert exported_flags(tmp_path, "key-a") is None


def test_the_download_zip_holds_the_lightly_folder_and_waits_for_no_half_written_export(tmp_path):
    """What the Export page's Download button sends: every file of .lightly under its own path; while
    another writer holds the export's lock, one line instead of a zip of half of each."""
    import io
    import zipfile

    from core.errors import UserError
    from core.lightly.export import writing, zip_datasource

    export_datasource(tmp_path, [video_export("walk.mp4", 12)], task="det")
    names = zipfile.ZipFile(io.BytesIO(zip_datasource(tmp_path))).namelist()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / ".lightly").rglob("*") if p.is_file())
    assert sorted(names) == files and len(files) == 12 * 2 + 3  # 12 frames x (prediction, metadata), two schemas, tasks
    with writing(tmp_path), pytest.raises(UserError, match="Another process is writing an export"):
        zip_datasource(tmp_path)
