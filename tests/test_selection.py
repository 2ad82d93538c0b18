import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.paths import ROOT
from core.detections import Detections
from core.errors import SelectionError
from core.lightly.config import build_selection_config, load_config
from core.lightly.selection import (
    build_inputs,
    embedding_map,
    frame_embeddings,
    mean_nearest_neighbour_distance,
    objectness_least_confidence,
    run_selection,
    selection_csv,
    selection_listing,
)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(1)
    n = 120
    counts = rng.integers(0, 4, n)
    xy = rng.uniform(0, 300, (counts.sum(), 2))
    det = Detections(np.repeat(np.arange(n), counts), np.concatenate([xy, xy + 40], 1), rng.uniform(0.1, 1, counts.sum()),
                     rng.choice([0, 2], counts.sum()), {0: "person", 2: "car"}, n)
    flickering = np.where(rng.random(n) < 0.1, 1.0, 0.5)
    embeddings = rng.normal(size=(n, 8)).astype(np.float32)
    return build_inputs(det, {"flickering": flickering}, embeddings)


def test_objectness_least_confidence_is_one_minus_mean_score():
    det = Detections([0, 0, 2], np.zeros((3, 4)), [0.9, 0.5, 0.2], [0, 0, 0], {0: "a"}, 3)
    np.testing.assert_allclose(objectness_least_confidence(det), [1 - 0.7, 0.0, 0.8])


def test_flickering_weights_pick_flagged_frames(inputs):
    picked = run_selection(build_selection_config(10, "t", diversity=0, least_confidence=0, flicker_strength=1.0), inputs)
    flagged = inputs.metadata["flickering"][picked] == 1.0
    assert flagged.sum() == min(10, int((inputs.metadata["flickering"] == 1.0).sum()))


def test_diversity_spreads_the_picks(inputs):
    diverse = run_selection(build_selection_config(15, "t", 1.0, 0, 0), inputs)
    rng = np.random.default_rng(0)
    random = np.mean([mean_nearest_neighbour_distance(inputs.embeddings[rng.choice(inputs.n, 15, replace=False)])
                      for _ in range(10)])
    assert mean_nearest_neighbour_distance(inputs.embeddings[diverse]) > random


def test_selection_is_deterministic_and_respects_n(inputs):
    config = build_selection_config(20, "t", 1.0, 0.5, 2.0)
    first, second = run_selection(config, inputs), run_selection(config, inputs)
    assert np.array_equal(first, second) and len(set(first.tolist())) == 20
    assert len(run_selection(config, inputs, n=5)) == 5
    assert len(run_selection({"proportion_samples": 0.25, "strategies": config["strategies"]}, inputs)) == 30


def test_strength_changes_the_mix(inputs):
    weak = run_selection(build_selection_config(12, "t", 1.0, 0, 0.01), inputs)
    strong = run_selection(build_selection_config(12, "t", 1.0, 0, 50.0), inputs)
    flagged = inputs.metadata["flickering"] == 1.0
    assert flagged[strong].sum() > flagged[weak].sum()


def test_balance_and_random_strategies_run(inputs):
    config = {"n_samples": 10, "strategies": [
        {"input": {"type": "PREDICTIONS", "task": "t"}, "strategy": {"type": "BALANCE", "target": {"car": 0.9, "person": 0.1}}},
        {"input": {"type": "RANDOM", "random_seed": 3}, "strategy": {"type": "WEIGHTS", "strength": 0.5}},
    ]}
    picked = run_selection(config, inputs)
    assert len(picked) == 10


def test_a_negative_random_seed_is_one_line_before_any_frame_is_read(inputs):
    """Lightly's config takes any integer seed; numpy's generator no negative one: `select` ended in a ValueError's
    traceback, after detecting the whole video."""
    from core.lightly.config import validate_selection_config
    from core.lightly.selection import check_runnable

    config = {"n_samples": 5, "strategies": [{"input": {"type": "RANDOM", "random_seed": -1},
                                              "strategy": {"type": "WEIGHTS", "strength": 1.0}}]}
    validate_selection_config(config)  # a config Lightly would run
    with pytest.raises(SelectionError, match=r"strategies\[0\]: random_seed -1 is negative"):
        check_runnable(config, Detections.empty(inputs.n, {0: "person"}), inputs.metadata)


@pytest.mark.parametrize(
    "strategy, message",
    [
        ({"input": {"type": "SCORES", "task": "t", "score": "uncertainty_entropy"}, "strategy": {"type": "WEIGHTS"}},
         "not available locally"),
        ({"input": {"type": "METADATA", "key": "weather"}, "strategy": {"type": "WEIGHTS"}}, "not available locally"),
        ({"input": {"type": "EMBEDDINGS", "task": "t"}, "strategy": {"type": "WEIGHTS"}}, "not supported locally"),
        ({"input": {"type": "METADATA", "key": "flickering"}, "strategy": {"type": "THRESHOLD", "threshold": 0.7,
                                                                           "operation": "BIGGER"}}, "not supported locally"),
        ({"input": {"type": "PREDICTIONS", "task": "t"}, "strategy": {"type": "BALANCE", "target": {"truck": 1.0}}},
         "unknown classes"),
        ({"input": {"type": "SALIENCY"}, "strategy": {"type": "WEIGHTS"}}, "not supported locally"),
    ],
)
def test_unsupported_parts_are_reported(inputs, strategy, message):
    with pytest.raises(SelectionError, match=message):
        run_selection({"n_samples": 5, "strategies": [strategy]}, inputs)


def test_bad_config_files(tmp_path):
    (tmp_path / "a.yaml").write_text("n_samples: [unclosed")
    with pytest.raises(SelectionError, match="not valid YAML"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(SelectionError, match="must hold a mapping"):
        load_config(tmp_path / "b.json")
    with pytest.raises(SelectionError, match="Cannot read"):
        load_config(tmp_path / "missing.json")


def test_embeddings_of_real_frames(sample_slice):
    embeddings = frame_embeddings(sample_slice)
    assert embeddings.shape == (40, 32) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    # neighbouring frames look alike; frames far apart less so
    near = np.linalg.norm(embeddings[1:] - embeddings[:-1], axis=1).mean()
    far = np.linalg.norm(embeddings[20:] - embeddings[:20], axis=1).mean()
    assert near < far
    assert embedding_map(embeddings).shape == (40, 2)


def test_cli_select_on_an_export_of_the_sample(sample_slice, tmp_path, monkeypatch):
    config = tmp_path / "selection.yaml"
    config.write_text("n_samples: 8\nstrategies:\n"
                      "  - {input: {type: EMBEDDINGS, task: yolov8_detection}, strategy: {type: DIVERSITY}}\n"
                      "  - {input: {type: METADATA, key: flickering}, strategy: {type: WEIGHTS, strength: 2}}\n")
    env = {**__import__("os").environ, "FLICKER_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "core", "run", str(sample_slice), "--out", str(tmp_path / "export"),
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    result = subprocess.run([sys.executable, "-m", "core", "select", str(tmp_path / "export"), "--config", str(config),
                             "--out", str(tmp_path / "picked")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr
    picked = json.loads((tmp_path / "picked/selected.json").read_text())
    assert len(picked) == 8 and all(p["file_name"].startswith("walk-") and p["file_name"].endswith("-mp4.png") for p in picked)
    assert all((tmp_path / "picked/frames" / p["file_name"]).is_file() for p in picked)
    # a link planted where a pick goes is replaced, never written through (the file it names is not the tool's)
    victim, planted = tmp_path / "victim.txt", tmp_path / "again/frames" / picked[0]["file_name"]
    victim.write_text("mine")
    planted.parent.mkdir(parents=True)
    planted.symlink_to(victim)
    again = subprocess.run([sys.executable, "-m", "core", "select", str(tmp_path / "export"), "--config", str(config),
                            "--out", str(tmp_path / "again")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again/selected.json").read_text()) == picked  # deterministic
    assert victim.read_text() == "mine" and not planted.is_symlink() and planted.read_bytes().startswith(b"\x89PNG")
    # a second selection into the same folder leaves its own picks there, not the first one's beside them;
    # what a planted listing names beside them (not a pick's name, or out of the folder) is left alone
    listing = json.loads((tmp_path / "again/selected.json").read_text())
    listing += [{"file_name": "notes.txt"}, {"file_name": "../victim.txt"}, {"file_name": "../../victim-0-mp4.png"}]
    (tmp_path / "again/selected.json").write_text(json.dumps(listing))
    (tmp_path / "again/frames/notes.txt").write_text("mine")
    fewer = subprocess.run([sys.executable, "-m", "core", "select", str(tmp_path / "export"), "--config", str(config),
                            "--out", str(tmp_path / "again"), "--n", "3"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, env=env)
    assert fewer.returncode == 0, fewer.stderr
    kept = json.loads((tmp_path / "again/selected.json").read_text())
    assert len(kept) == 3 and sorted(p.name for p in (tmp_path / "again/frames").iterdir()) == sorted(
        [p["file_name"] for p in kept] + ["notes.txt"])
    assert victim.read_text() == "mine"
    # a folder whose selected.json is someone else's file is refused before any work
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs/selected.json").write_text("my notes")
    theirs = subprocess.run([sys.executable, "-m", "core", "select", str(tmp_path / "export"), "--config", str(config),
                             "--out", str(tmp_path / "theirs")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=env)
    assert theirs.returncode == 2 and "not a selection's listing" in theirs.stderr
    assert (tmp_path / "theirs/selected.json").read_text() == "my notes"
    bad = subprocess.run([sys.executable, "-m", "core", "select", str(tmp_path / "export"), "--config",
                          str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: Cannot read")
    # a metadata key the export does not hold is refused before the embeddings (seconds per video) are computed
    import core.lightly.selection
    from core.select import run_local_selection
    from core.settings import DetectorSpec

    monkeypatch.setattr(core.lightly.selection, "frame_embeddings", lambda *a, **k: pytest.fail("embedded before the check"))
    config.write_text("n_samples: 8\nstrategies:\n  - {input: {type: METADATA, key: weather}, strategy: {type: WEIGHTS}}\n")
    with pytest.raises(SelectionError, match="metadata 'weather' is not available locally"):
        run_local_selection(tmp_path / "export", config, tmp_path / "y", DetectorSpec.of(None, cache_dir=tmp_path / "cache"))


def test_picks_are_never_written_into_the_exports_own_lightly_folder(sample_slice, tmp_path):
    """--out inside the export's .lightly put selected.json and the PNG picks into the datasource: every push sent
    them to the bucket, and the next export's swap deleted them."""
    from core.errors import UserError
    from core.flicker import FlickerIndex
    from core.lightly.export import VideoPredictions, export_datasource
    from core.select import run_local_selection
    from core.settings import DetectorSpec
    from core.video import probe

    info = probe(sample_slice)
    boxes = Detections.empty(info.frame_count, {0: "person"}, (info.width, info.height))
    video = VideoPredictions.of_video(info, sample_slice.name, boxes, FlickerIndex.from_detections(boxes).evaluate())
    export_datasource(tmp_path / "export", [video], task="yolov8_detection")
    written = sorted((tmp_path / "export/.lightly").rglob("*"))
    config = tmp_path / "selection.json"
    config.write_text(json.dumps(build_selection_config(4, "yolov8_detection", least_confidence=0)))
    with pytest.raises(UserError, match="inside the export's own .lightly folder"):
        run_local_selection(tmp_path / "export", config, tmp_path / "export/.lightly/predictions", DetectorSpec())
    assert sorted((tmp_path / "export/.lightly").rglob("*")) == written


def test_select_counts_the_flagged_picks_of_a_score_export_by_the_cut_it_recorded(sample_slice, tmp_path):
    """A score export (0.5 + 0.5 * score) flags frames whose value is below 1.0: select counted values of 1.0 only,
    7 flagged picks on the sample where the binary export of the same flags said 15. An older export without the
    recorded cut is still counted that way, and the count says so."""
    from core.flicker import FlickerIndex
    from core.lightly.datasource import Datasource
    from core.lightly.export import FLAGGED_ABOVE, VideoPredictions, export_datasource
    from core.select import run_local_selection
    from core.settings import DetectorSpec
    from core.video import probe

    info = probe(sample_slice)
    xyxy = np.tile([100.0, 100.0, 200.0, 300.0], (info.frame_count, 1))
    xyxy[[10, 25], 0::2] += 54  # IoU 0.30 with its neighbours: flagged at 0.8 / 0.6, score 0.70, value 0.85
    xyxy[5, 0::2] += 18  # IoU 0.69: a partial match, not flagged (value 0.6525)
    kept = np.arange(info.frame_count) != 32  # missed outright: score 1, value 1.0
    boxes = Detections(np.flatnonzero(kept), xyxy[kept], np.full(kept.sum(), 0.9), np.zeros(kept.sum(), int),
                       {0: "person"}, info.frame_count, (info.width, info.height))
    flicker = FlickerIndex.from_detections(boxes).evaluate()
    assert np.flatnonzero(flicker.flag_array).tolist() == [10, 25, 32]
    export_datasource(tmp_path / "export", [VideoPredictions.of_video(info, sample_slice.name, boxes, flicker)],
                      task="yolov8_detection", metadata_style="score")
    config = tmp_path / "selection.json"
    config.write_text(json.dumps(build_selection_config(info.frame_count, "yolov8_detection", least_confidence=0)))
    every = run_local_selection(tmp_path / "export", config, tmp_path / "picked", DetectorSpec())
    assert len(every.frames) == info.frame_count and every.flagged == 3
    assert "(3 of them flagged by the flicker assertion)" in every.text()
    manifest = Datasource(tmp_path / "export").manifest
    record = json.loads(manifest.read_text())
    assert record["videos"][0].pop(FLAGGED_ABOVE) == 0.652542  # frame 5's, the largest value of a frame not flagged
    manifest.write_text(json.dumps(record))  # as an export before the cut was recorded
    older = run_local_selection(tmp_path / "export", config, tmp_path / "picked", DetectorSpec())
    assert older.flagged == 1 and "1 of them flagged by the flicker assertion, counting only scores of 1.0" in older.text()


def test_yolo_models_embed_frames_with_their_own_features(tiny_slice):
    from core.detect import YoloDetector

    detector = YoloDetector("yolov8n.yaml", device="cpu", imgsz=320, backend="torch")  # embeds only: no ONNX export
    embeddings = frame_embeddings(tiny_slice, detector=detector)
    assert embeddings.shape == (6, 6)  # 6 frames: at most 6 principal components
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(embeddings, frame_embeddings(tiny_slice)[:, :6])


def test_local_selection_weights_each_enabled_sibling_assertion(inputs):
    """select_in_video reads a sibling assertion's flags as the export writes them (1.0 / 0.0) and
    adds one WEIGHTS strategy on its key: a strong ghost strength picks ghost frames first."""
    from core.flicker import FlickerIndex
    from core.lightly.selection import select_in_video

    rng = np.random.default_rng(3)
    n = inputs.n
    detections = Detections(np.arange(n), np.tile([10.0, 10.0, 50.0, 90.0], (n, 1)), np.full(n, 0.9), np.zeros(n, int),
                            {0: "person"}, n)
    flicker = FlickerIndex.from_detections(detections).evaluate()
    ghost = rng.random(n) < 0.15
    plain = select_in_video(detections, flicker, inputs.embeddings, 10, 1.0, 0.0, 0.0)
    weighted = select_in_video(detections, flicker, inputs.embeddings, 10, 1.0, 0.0, 0.0, {"ghost": (ghost, 50.0)})
    keys = [s["input"].get("key") for s in weighted.config["strategies"]]
    assert keys == [None, "ghost"] and "ghost" not in [s["input"].get("key") for s in plain.config["strategies"]]
    assert ghost[weighted.frames].sum() == min(10, ghost.sum()) > ghost[plain.frames].sum()
    off = select_in_video(detections, flicker, inputs.embeddings, 10, 1.0, 0.0, 0.0, {"ghost": (ghost, 0.0)})
    assert np.array_equal(off.frames, plain.frames), "strength 0 leaves the strategy out"


def test_a_selection_asked_for_more_frames_than_there_are_says_so(tmp_path):
    from core.select import LocalSelection

    every = LocalSelection(["a-0-mp4.png", "a-1-mp4.png"], ["a.mp4"] * 2, [0, 1], 1, tmp_path, asked=1000, available=2)
    assert every.text().startswith("selected 2 frames (every frame: 1,000 were asked for, and the videos hold 2)")
    some = LocalSelection(["a-0-mp4.png"], ["a.mp4"], [0], 1, tmp_path, asked=1, available=2)
    assert some.text().startswith("selected 1 frame (1 of them")


def test_the_shipped_selection_config_is_the_tutorials_and_valid():
    from core.lightly.config import validate_selection_config
    from core.paths import ROOT

    config = load_config(ROOT / "samples" / "selection.yaml")
    validate_selection_config(config)
    assert config == build_selection_config(100, "yolov8_detection", 1.0, 1.0, 1.0)  # the app's defaults too


@pytest.mark.parametrize("n, d", [(40, 100), (300, 50)])
def test_the_principal_projection_is_the_svds_up_to_each_axis_sign(n, d):
    """The projection comes from the smaller of the Gram and covariance matrices (a full SVD took
    1.1 GB for 3,180 frames): the same axes, in the same order, each up to its sign."""
    from core.lightly.selection import _principal_projection

    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, d)).astype(np.float32) @ np.diag(np.linspace(3, 0.1, d)).astype(np.float32)
    centred = features - features.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ axes[:8].T
    got = _principal_projection(centred, 8)
    signs = np.sign(np.sum(got * expected, axis=0))
    np.testing.assert_allclose(got * signs, expected, atol=1e-4 * np.abs(expected).max())


def test_the_diversity_of_many_picks_is_measured_in_bounded_memory():
    """Picking every frame of a long video on the Review page measured diversity over an n x n x d array: 9 GB and
    24 s for 6,000 picks. Same figure as the plain definition, a small block at a time."""
    import resource

    rng = np.random.default_rng(3)
    small = rng.normal(size=(50, 8)).astype(np.float32)
    small[7] = small[3]  # twins: nearest distance 0
    plain = np.linalg.norm(small[:, None] - small[None], axis=-1) + np.diag(np.full(50, np.inf))
    assert mean_nearest_neighbour_distance(small) == pytest.approx(plain.min(axis=1).mean(), abs=1e-6)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mean_nearest_neighbour_distance(rng.normal(size=(6000, 32)).astype(np.float32))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024  # KiB: less than 512 MB more


@pytest.mark.parametrize("entry, message", [
    ({"input": {"type": "PREDICTIONS", "task": "t"}, "strategy": {"type": "BALANCE", "target": {"person": "most"}}},
     "target's shares must be numbers"),
    ({"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS", "strength": None}}, None),
])
def test_what_lightlys_config_check_lets_through_is_one_line_or_runs(inputs, entry, message):
    """A config that passes Lightly's own check ended the local run in float()'s TypeError or ValueError traceback:
    a share given as text, a strength left null (Lightly's default strength then)."""
    from core.lightly.config import validate_selection_config

    config = {"n_samples": 5, "strategies": [entry]}
    validate_selection_config(config)
    if message is None:
        assert len(run_selection(config, inputs)) == 5
    else:
        with pytest.raises(SelectionError, match=message):
            run_selection(config, inputs)


def test_the_selection_csv_never_hands_a_spreadsheet_a_formula():
    """The Review page's CSV of picked frames wrote a video named by whoever made it (an upload's
    name, a bucket key) as it is: a spreadsheet ran "=HYPERLINK(...)" as a formula."""
    import csv
    import io

    listing = selection_listing([("=HYPERLINK(\"x.example\").mp4", 3, 9), ("cams/+a.mp4", 0, 9), ("walk.mp4", 1, 9)])
    rows = list(csv.DictReader(io.StringIO(selection_csv(listing))))
    assert [(r["file_name"], r["video"], r["frame"]) for r in rows] == [
        ("'=HYPERLINK(\"x.example\")-3-mp4.png", "'=HYPERLINK(\"x.example\").mp4", "3"),
        ("cams/+a-0-mp4.png", "cams/+a.mp4", "0"), ("walk-1-mp4.png", "walk.mp4", "1")]


def test_select_refuses_a_config_whose_task_the_export_does_not_have(sample_slice, tmp_path, monkeypatch):
    """An export whose only task is `other` and the shipped config (task yolov8_detection): select picked 5 frames and exited
    0, while the same config sent with `schedule` points Lightly at a task that is not there. Now one line naming the export's
    tasks and the fix, before the embeddings; a config reading another task than the boxes read here is refused too."""
    import core.lightly.selection
    from core.flicker import FlickerIndex
    from core.lightly.export import VideoPredictions, export_datasource
    from core.select import run_local_selection
    from core.settings import DetectorSpec
    from core.video import probe

    info = probe(sample_slice)
    boxes = Detections.empty(info.frame_count, {0: "person"}, (info.width, info.height))
    video = VideoPredictions.of_video(info, sample_slice.name, boxes, FlickerIndex.from_detections(boxes).evaluate())
    export_datasource(tmp_path / "export", [video], task="other", imputed_task="other_imputed")
    monkeypatch.setattr(core.lightly.selection, "frame_embeddings", lambda *a, **k: pytest.fail("embedded before the check"))
    with pytest.raises(SelectionError) as info_:
        run_local_selection(tmp_path / "export", ROOT / "samples/selection.yaml", tmp_path / "picked", DetectorSpec(), n=5)
    assert str(info_.value) == (f"The selection config reads task yolov8_detection, which {tmp_path / 'export'} does not have "
                                "(its tasks: other, other_imputed): set the config's task to other, or export again with "
                                "run --task yolov8_detection")
    config = tmp_path / "selection.json"
    config.write_text(json.dumps(build_selection_config(5, "other_imputed")))
    with pytest.raises(SelectionError, match="reads task other_imputed, and this run would read the boxes of other: "
                                             "pass --task other_imputed$"):
        run_local_selection(tmp_path / "export", config, tmp_path / "picked", DetectorSpec())
    assert not (tmp_path / "picked").exists()


def test_the_samples_readme_says_the_strengths_the_shipped_config_sets():
    """samples/README.md said the config had "flickering twice as strong" while selection.yaml (as the tutorial, seed 001)
    sets strength 1.0 for every strategy."""
    config = load_config(ROOT / "samples" / "selection.yaml")
    assert {entry["strategy"]["strength"] for entry in config["strategies"]} == {1.0}
    readme = " ".join((ROOT / "samples" / "README.md").read_text().split())
    assert "twice" not in readme and "least confidence and flickering, each at strength 1 as in the tutorial" in readme


def test_a_config_that_cannot_be_read_is_named_mid_sentence_in_lower_case(tmp_path):
    """"Cannot read The selection config samples/nope.yaml": the capital belonged to the start of other lines only."""
    with pytest.raises(SelectionError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"Cannot read the selection config {tmp_path / 'nope.yaml'}: No such file or directory"
    (tmp_path / "bad.yaml").write_text("n_samples: [1")
    with pytest.raises(SelectionError, match=r"^The selection config .*bad\.yaml is not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_select_shows_its_progress_on_a_terminal_and_reruns_from_cached_embeddings(sample_slice, tmp_path, monkeypatch):
    """select ran 13-15 s without a word, and as long again on every rerun (the embeddings computed each time); --n 5000 wrote
    795 PNGs in 51 s in silence. Now bars on a terminal's stderr (embeddings, PNGs), and the embeddings come from the cache."""
    import io

    import core.lightly.selection
    from core.flicker import FlickerIndex
    from core.lightly.export import VideoPredictions, export_datasource
    from core.select import run_local_selection
    from core.settings import DetectorSpec
    from core.video import probe

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))
    info = probe(sample_slice)
    boxes = Detections.empty(info.frame_count, {0: "person"}, (info.width, info.height))
    video = VideoPredictions.of_video(info, sample_slice.name, boxes, FlickerIndex.from_detections(boxes).evaluate())
    export_datasource(tmp_path / "export", [video], task="yolov8_detection")
    config = tmp_path / "selection.json"
    config.write_text(json.dumps(build_selection_config(6, "yolov8_detection", least_confidence=0)))
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    first = run_local_selection(tmp_path / "export", config, tmp_path / "picked", DetectorSpec())
    shown = terminal.getvalue().replace("\r", "\n")
    assert "embed frames:" in shown and "/40 [" in shown and "write frames as PNG:" in shown and "/6 [" in shown
    with monkeypatch.context() as patched:
        patched.setattr(core.lightly.selection, "_frames_of", lambda *a: pytest.fail("embedded again"))
        again = run_local_selection(tmp_path / "export", config, tmp_path / "again", DetectorSpec())
    assert again.names == first.names
    [entry] = (tmp_path / "cache/embeddings").iterdir()
    entry.write_bytes(b"damaged")  # computed again, never an error
    assert run_local_selection(tmp_path / "export", config, tmp_path / "third", DetectorSpec()).names == first.names
    entry.unlink()
    os.mkfifo(entry)  # planted in the cache: np.load waited on it for a writer forever
    assert run_local_selection(tmp_path / "export", config, tmp_path / "fourth", DetectorSpec()).names == first.names
