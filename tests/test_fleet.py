"""The Fleet page on a real batch: three clips of the sample and a broken file run through
``core.batch.run_batch`` with the offline HOG detector at non-default thresholds."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, sample_frames, write_video
from core import fleet
from core.batch import BatchConfig, run_batch
from core.run import RunConfig
from core.settings import DetectorSpec, FlickerSettings
from core.verdicts import VerdictStore

THRESHOLDS = (0.5, 0.5)  # not the tutorial's 0.8 / 0.6: the review must open at the batch's own


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """A batch output folder: walk_c (4 of 20 frames flagged), walk_a (3), walk_b (0), broken (failed)."""
    base = tmp_path_factory.mktemp("fleet")
    videos = base / "videos"
    videos.mkdir()
    frames = sample_frames(60, start=10)
    for k, name in enumerate(("walk_a", "walk_b", "walk_c")):
        write_video(videos / f"{name}.mp4", frames[20 * k: 20 * (k + 1)])
    (videos / "broken.mp4").write_bytes(b"not a video" * 200)
    spec = DetectorSpec(cache_dir=base / "cache")
    settings = FlickerSettings.of_mode("reference", *THRESHOLDS)
    out = base / "out"
    run_batch(BatchConfig((str(videos),), RunConfig(out=out, detector=spec, flicker=settings)))  # records its settings
    return out


@pytest.fixture
def fleet_app(tmp_path, monkeypatch, batch):
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))  # empty: nothing can come from a detection cache
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/fleet.py")
    return at


def open_fleet(at: AppTest, folder) -> AppTest:
    at.query_params["dir"] = str(folder)
    at.run()
    assert not at.exception, at.exception
    return at


def shown_rows(at: AppTest) -> list[str]:
    return at.dataframe[0].value["Video"].tolist()


def test_one_row_per_video_worst_first_with_the_failed_videos_error(fleet_app, batch):
    at = open_fleet(fleet_app, batch)
    table = at.dataframe[0].value
    assert table["Video"].tolist() == ["walk_c.mp4", "walk_a.mp4", "broken.mp4", "walk_b.mp4"]  # ties by name
    assert table["Flagged"].tolist() == [4, 3, 0, 0] and table["Frames"].tolist() == [20, 20, 0, 20]
    assert table["Flagged share"].tolist() == pytest.approx([0.2, 0.15, 0.0, 0.0])
    broken = table[table["Video"] == "broken.mp4"].iloc[0]
    assert broken["Status"] == "failed" and "not a video FFmpeg can read" in broken["Error"]
    assert "\n" not in broken["Error"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Flagged frames"] == "7" and metrics["Flagged frames reviewed"] == "0 / 7"
    assert "1 failed" in str(at.metric[0].delta)
    assert any("0.5" in c.value and "reference" in c.value for c in at.caption)


def test_the_name_filter_narrows_the_rows_and_the_video_choice(fleet_app, batch):
    at = open_fleet(fleet_app, batch)
    at.text_input(key="fleet_filter").input("WALK_").run()
    assert shown_rows(at) == ["walk_c.mp4", "walk_a.mp4", "walk_b.mp4"]  # broken.mp4 left out
    at.text_input(key="fleet_filter").input("_b").run()
    assert shown_rows(at) == ["walk_b.mp4"] and at.selectbox(key="fleet_video").options == ["walk_b.mp4"]


def test_open_in_review_uses_the_batch_detections_and_thresholds_without_detecting(fleet_app, batch, monkeypatch):
    import core.detect

    def no_detection(*args, **kwargs):
        raise AssertionError("detection ran again")

    monkeypatch.setattr(core.detect, "detect_video", no_detection)
    at = open_fleet(fleet_app, batch)
    assert at.selectbox(key="fleet_video").value == "walk_c.mp4"  # the worst first
    next(b for b in at.button if b.label == "Open in Review").click().run()
    assert not at.exception, at.exception
    assert (at.session_state["iou_track"], at.session_state["iou_assert"]) == THRESHOLDS
    review = at.session_state["review"]
    assert review.video.relpath == "walk_c.mp4" and review.detections is not None and len(review.detections) > 0
    assert any(m.label == "Imputed boxes" for m in at.metric)  # the Review page, not the fleet's figures
    flagged = next(m for m in at.metric if m.label == "Flagged frames")
    assert flagged.value == "4"  # the batch's 4 flags at its thresholds, from its exported boxes


def test_verdicts_on_flagged_frames_count_per_video_and_across_the_fleet(fleet_app, batch, tmp_path):
    key = next(e["fingerprint"] for e in fleet.read_manifest(batch) if e["relpath"] == "walk_c.mp4")
    flagged = [f for f in range(20) if fleet._flagged_in_export(
        fleet.Datasource(batch).metadata_file(fleet.frame_namer("walk_c.mp4", 20)(f)))]
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    store.set(key, flagged[0], "miss")
    store.set(key, flagged[1], "false_alarm")
    store.set(key, next(f for f in range(20) if f not in flagged), "miss")  # a spot check: not a flagged frame
    at = open_fleet(fleet_app, batch)
    table = at.dataframe[0].value
    assert table.set_index("Video").loc["walk_c.mp4", "Reviewed"] == 2
    assert {m.label: m.value for m in at.metric}["Flagged frames reviewed"] == "2 / 7"


@pytest.mark.parametrize("folder", ["/etc", "relative/../nowhere", "/nonexistent/fleet"])
def test_a_folder_that_is_not_a_batch_output_is_one_line(fleet_app, folder):
    at = open_fleet(fleet_app, folder)
    assert len(at.error) == 1 and "not a batch output folder" in at.error[0].value
    assert not at.dataframe


def test_a_folder_outside_flicker_roots_is_refused_in_one_line(fleet_app, batch, tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path))
    at = open_fleet(fleet_app, batch)
    assert len(at.error) == 1 and "outside the folders" in at.error[0].value and not at.dataframe


def test_a_running_batch_shows_the_videos_done_so_far(fleet_app, batch, tmp_path):
    """Only done markers (summary.csv is written at the end) and a held writer lock: the page lists
    the videos done so far and polls."""
    running = tmp_path / "running"
    shutil.copytree(batch, running)
    (running / "summary.csv").unlink()
    (running / ".batch" / "done" / "walk_b.mp4.json").unlink()
    from core.paths import exclusive_lock

    with exclusive_lock(running, "a test batch"):
        assert fleet.batch_running(running)
        at = open_fleet(fleet_app, running)
        assert sorted(shown_rows(at)) == ["walk_a.mp4", "walk_c.mp4"]
        assert any("A batch is writing this folder" in i.value for i in at.info)
    assert not fleet.batch_running(running)


def test_the_load_page_runs_a_batch_and_links_to_the_fleet(tmp_path, monkeypatch, batch):
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "short.mp4", sample_frames(6, start=10))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="batch_inputs").input(str(videos))
    at.text_input(key="batch_out").input(str(tmp_path / "out"))
    next(b for b in at.button if b.label == "Run batch").click().run()
    assert not at.exception, at.exception
    assert any("1 videos" in s.value for s in at.success)
    assert [v.relpath for v in fleet.read_fleet(tmp_path / "out").videos] == ["short.mp4"]
    assert fleet.read_settings(tmp_path / "out") is not None
