"""Flicker's siblings: ghost and class-flip flags equal a plain loop, retune monotonically, find
planted errors, and reach the export and the command line."""
import os
import subprocess
import sys

import numpy as np
import orjson
import pytest

from core.assertions import CLASS_FLIP, FLICKER, GHOST, NeighbourIndex, parse_assertions
from core.detections import Detections
from core.errors import UserError
from core.lightly.validate import validate_datasource
from core.paths import ROOT
from testkit.qa_sim import planted_videos
from testkit.reference import oracle_class_flip, oracle_ghost

THRESHOLDS = (0.05, 0.3, 0.5, 0.7, 0.95)


def random_detections(rng: np.random.Generator) -> Detections:
    """A few objects that jitter, blink and change class, so every case of both definitions occurs."""
    n = int(rng.integers(3, 25))
    places = rng.uniform(0, 100, (4, 2))
    frames = []
    for _ in range(n):
        k = int(rng.integers(0, 5))
        xy = places[rng.integers(0, 4, k)] + rng.normal(0, 5, (k, 2))
        frames.append((np.c_[xy, xy + rng.uniform(10, 30, (k, 2))].astype(np.float32), rng.uniform(0.1, 1, k),
                       rng.integers(0, 3, k)))
    return Detections.from_frames(frames, {0: "person", 1: "car", 2: "dog"})


@pytest.mark.parametrize("seed", range(4))
def test_flags_equal_the_plain_loop_at_every_threshold(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        detections = random_detections(rng)
        index = NeighbourIndex.from_detections(detections)
        for iou in THRESHOLDS:
            assert index.ghost_flags(iou).tolist() == oracle_ghost(detections, iou)
            assert index.class_flip_flags(iou).tolist() == oracle_class_flip(detections, iou)


def test_a_stricter_tracking_iou_finds_more_ghosts_and_fewer_flips():
    rng = np.random.default_rng(7)
    for _ in range(40):
        index = NeighbourIndex.from_detections(random_detections(rng))
        ghosts = [index.ghost_flags(iou) for iou in THRESHOLDS]
        flips = [index.class_flip_flags(iou) for iou in THRESHOLDS]
        assert all(np.all(low <= high) for low, high in zip(ghosts, ghosts[1:]))
        assert all(np.all(low >= high) for low, high in zip(flips, flips[1:]))
        assert not any(flags[[0, -1]].any() for flags in ghosts + flips)  # a frame needs both neighbours


def test_flagged_boxes_are_the_ones_that_fire():
    box = [10, 10, 50, 90]
    frames = [([box], [0]), ([box, [200, 10, 240, 90]], [1, 0]), ([box], [0])]  # frame 1: a flip and a ghost
    detections = Detections.from_frames([(np.array(b, np.float32), np.ones(len(c)), np.array(c)) for b, c in frames],
                                        {0: "person", 1: "car"})
    index = NeighbourIndex.from_detections(detections)
    assert index.ghost_flags(0.5).tolist() == [False, True, False]
    assert index.class_flip_flags(0.5).tolist() == [False, True, False]
    flipped = index.flipped_boxes(0.5)
    assert detections.cls[flipped].tolist() == [1] and index.neighbour_class[flipped].tolist() == [0]
    assert detections.xyxy[index.ghost_boxes(0.5)].tolist() == [[200, 10, 240, 90]]


def test_planted_ghosts_and_flips_are_found_in_ordinary_footage():
    """Real tracks through a simulated detector, one-frame ghosts and class flips planted: at a
    tracking IoU of 0.3 both assertions find at least 90% of them at a precision of at least 0.9."""
    videos = planted_videos("mild", range(3))
    indexes = [NeighbourIndex.from_detections(v.detections) for v in videos]
    ghost = np.concatenate([index.ghost_flags(0.3) for index in indexes])
    flip = np.concatenate([index.class_flip_flags(0.3) for index in indexes])
    planted = np.concatenate([v.ghosts for v in videos])
    real_ghosts = planted | np.concatenate([v.lone for v in videos])
    flips = np.concatenate([v.flips for v in videos])
    assert planted.sum() >= 10 and flips.sum() >= 10
    assert (ghost & planted).sum() >= 0.9 * planted.sum() and (ghost & real_ghosts).sum() >= 0.9 * ghost.sum()
    assert (flip & flips).sum() >= 0.9 * flips.sum() and (flip & flips).sum() >= 0.9 * flip.sum()


def test_assertion_lists_are_parsed_in_canonical_order_with_flicker_always_on():
    assert parse_assertions("class-flip, ghost") == (FLICKER, GHOST, CLASS_FLIP)
    assert parse_assertions("flicker") == (FLICKER,)
    with pytest.raises(UserError, match="unknown ghosts"):
        parse_assertions("ghosts")


def test_run_exports_one_metadata_key_per_assertion(tmp_path, sample_slice):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "core", "run", str(sample_slice), "--out", str(out), "--quiet",
                             "--iou-track", "0.5", "--assertions", "flicker,ghost,class-flip"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, FLICKER_CACHE_DIR=str(tmp_path / "cache")))
    assert result.returncode == 0, result.stderr
    assert " ghost flag" in result.stdout and " class-flip flag" in result.stdout
    # the video's line names the flicker assertion's own count; the total counts the frames any assertion flags
    assert " flagged by flicker, " in result.stdout and "flagged frame" in result.stdout.splitlines()[0]
    schema = orjson.loads((out / ".lightly/metadata/schema.json").read_bytes())
    assert [entry["path"] for entry in schema] == ["flickering", "ghost", "class_flip"]
    metadata = [orjson.loads(p.read_bytes())["metadata"] for p in sorted((out / ".lightly/metadata").glob("walk-*.json"))]
    assert len(metadata) == 40 and all(set(m) == {"flickering", "ghost", "class_flip"} for m in metadata)
    assert all(m["ghost"] in (0.0, 1.0) and m["class_flip"] in (0.0, 1.0) for m in metadata)
    assert validate_datasource(out, {"walk.mp4": 40}) == []
    # the local selection reads every metadata key of the export: weights on ghost pick ghost frames
    config = tmp_path / "ghosts.json"
    config.write_text('{"n_samples": 3, "strategies": [{"input": {"type": "METADATA", "key": "ghost"}, '
                      '"strategy": {"type": "WEIGHTS", "strength": 1.0}}]}')
    picked = subprocess.run([sys.executable, "-m", "core", "select", str(out), "--config", str(config), "--out",
                             str(tmp_path / "picked")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, FLICKER_CACHE_DIR=str(tmp_path / "cache")))
    assert picked.returncode == 0, picked.stderr
    ghost_frames = {k for k, m in enumerate(metadata) if m["ghost"] == 1.0}
    assert len(ghost_frames) >= 3
    assert {entry["frame"] for entry in orjson.loads((tmp_path / "picked/selected.json").read_bytes())} <= ghost_frames


def test_the_schedule_config_weighs_each_assertion_field_it_is_given():
    from core.lightly.config import build_selection_config

    config = build_selection_config(50, "det", 1.0, 0.0, 2.0, sibling_strengths={"ghost": 1.5, "class_flip": 0.0})
    metadata = [(s["input"]["key"], s["strategy"]["strength"]) for s in config["strategies"] if s["input"]["type"] == "METADATA"]
    assert metadata == [("flickering", 2.0), ("ghost", 1.5)]


def test_the_corrected_stream_adds_imputed_boxes_drops_ghosts_and_sets_flipped_classes():
    from core.assertions import corrected
    from core.flicker import FlickerIndex

    box, lone, missing = [10, 10, 50, 90], [200, 10, 240, 90], [400, 10, 440, 90]
    frames = [([box, missing], [0, 0]), ([box, lone], [1, 0]), ([box, missing], [0, 0])]  # frame 1: flip, ghost, miss
    detections = Detections.from_frames([(np.array(b, np.float32), np.ones(len(c)), np.array(c)) for b, c in frames],
                                        {0: "person", 1: "car"})
    flicker = FlickerIndex.from_detections(detections).evaluate(0.5, 0.5)
    result = corrected(detections, flicker.imputed_frame, flicker.imputed_xyxy, flicker.imputed_cls,
                       NeighbourIndex.from_detections(detections), 0.5, (FLICKER, GHOST, CLASS_FLIP))
    middle = result.detections.at(1)
    assert sorted(map(tuple, middle.xyxy.astype(int).tolist())) == [tuple(box), tuple(missing)]
    assert sorted(middle.cls.tolist()) == [0, 0]
    assert sorted(change["change"] for change in result.changes) == ["added", "reclassified", "removed"]
    reclassified = next(c for c in result.changes if c["change"] == "reclassified")
    assert (reclassified["from_class"], reclassified["class"], reclassified["frame"]) == (1, 0, 1)


def test_run_writes_the_corrected_task_and_lists_every_change(tmp_path, sample_slice):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "core", "run", str(sample_slice), "--out", str(out), "--quiet",
                             "--iou-track", "0.5", "--assertions", "ghost", "--corrected-task", "fixed"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, FLICKER_CACHE_DIR=str(tmp_path / "cache")))
    assert result.returncode == 0, result.stderr
    changes = orjson.loads((out / "flicker_corrections.json").read_bytes())
    assert changes["task"] == "fixed" and changes["videos"]["walk.mp4"]
    count = {kind: sum(c["change"] == kind for c in changes["videos"]["walk.mp4"]) for kind in ("added", "removed")}
    boxes = lambda task: sum(len(orjson.loads(p.read_bytes())["predictions"])  # noqa: E731
                             for p in (out / ".lightly/predictions" / task).glob("walk-*.json"))
    assert boxes("fixed") == boxes("yolov8_detection") - count["removed"] + count["added"]
    assert validate_datasource(out, {"walk.mp4": 40}) == []
    again = subprocess.run([sys.executable, "-m", "core", "run", str(sample_slice), "--out", str(out), "--quiet"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, FLICKER_CACHE_DIR=str(tmp_path / "cache")))
    assert again.returncode == 0 and not (out / "flicker_corrections.json").exists()  # no stale list of another export's
