"""The Fleet page on a real batch (tests/fleet_batch.py), and Review and Export opened from it."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, quote

import numpy as np
import orjson
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, sample_frames, write_video
from core import fleet
from core.batch import BatchConfig, run_batch
from core.batch.sources import BatchProgress
from core.run import RunConfig
from core.settings import DetectorSpec, FlickerSettings
from core.verdicts import VerdictStore
from core.words import markdown_literal
from fleet_batch import THRESHOLDS, make_batch

@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    return make_batch(tmp_path_factory.mktemp("fleet"))


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


def follow_open_link(at: AppTest, label: str) -> AppTest:
    """What a click on the Fleet page's link ``label`` does: Review runs in this tab with its parameters."""
    (link,) = [p.proto for p in at.get("page_link") if p.proto.label == label]
    assert link.page == "review" and not link.disabled
    at.switch_page("pages/review.py")
    at.query_params = dict(parse_qsl(link.query_string))
    return at.run()


def test_one_row_per_video_worst_first_with_the_failed_videos_error(fleet_app, batch):
    at = open_fleet(fleet_app, batch)
    table = at.dataframe[0].value
    assert table["Video"].tolist() == ["walk_c.mp4", "walk_a.mp4", "broken.mp4", "walk_b.mp4"]  # ties by name
    done = table[table["Video"] != "broken.mp4"]
    assert done["Flagged"].tolist() == [4, 3, 0] and done["Frames"].tolist() == [20, 20, 20]
    assert done["Flagged share"].tolist() == pytest.approx([20.0, 15.0, 0.0])  # percent, one decimal shown
    # a failed video has no figures: blank cells, where "0 frames, 0 flagged" and an empty bar read as a clean video
    assert table.loc[table["Video"] == "broken.mp4", ["Frames", "Flagged", "Flagged share", "Reviewed"]].isna().all(axis=None)
    bars = at.dataframe[0].proto.columns  # the bars run to the largest share shown, not 100%
    assert '"max_value":20' in bars or '"max_value": 20' in bars, bars[:400]
    broken = table[table["Video"] == "broken.mp4"].iloc[0]
    assert broken["Status"] == "failed"
    # the row names the video: its error is the cause alone (the name said again filled the column)
    assert broken["Error"].startswith("Not a video FFmpeg can read (") and table["Error"].tolist().count("") == 3
    assert "\n" not in broken["Error"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Flagged frames"] == "7" and metrics["Flagged frames reviewed"] == "0 / 7"
    assert "1 failed" in str(at.metric[0].delta)
    assert any("0.5" in c.value and "reference" in c.value for c in at.caption)


def test_the_name_filter_narrows_the_rows_and_the_video_choice(fleet_app, batch):
    at = open_fleet(fleet_app, batch)
    charts = lambda: at.get("vega_lite_chart")  # noqa: E731
    assert len(charts()) == 1  # walk_c's and walk_a's flags
    at.text_input(key="fleet_filter").input("WALK_").run()
    assert shown_rows(at) == ["walk_c.mp4", "walk_a.mp4", "walk_b.mp4"]  # broken.mp4 left out
    at.text_input(key="fleet_filter").input("_b").run()
    assert shown_rows(at) == ["walk_b.mp4"] and at.selectbox(key="fleet_video").options == ["walk_b.mp4"]
    assert not charts(), "the chart follows the filter: walk_b has no flags to chart"
    assert at.query_params["filter"] == "_b"  # in the URL: a reload or a link keeps it
    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    reloaded.switch_page("pages/fleet.py")
    reloaded.query_params.update(dict(at.query_params))
    reloaded.run()
    assert reloaded.text_input(key="fleet_filter").value == "_b" and shown_rows(reloaded) == ["walk_b.mp4"]
    at.text_input(key="fleet_filter").input("").run()
    assert "filter" not in at.query_params and len(shown_rows(at)) == 4
    chosen = at.selectbox(key="fleet_video").value
    at.text_input(key="fleet_filter").input("zzz").run()  # nothing matches: the chooser has no video to name
    assert shown_rows(at) == [] and at.selectbox(key="fleet_video").value is None
    at.text_input(key="fleet_filter").input("").run()
    assert at.selectbox(key="fleet_video").value == chosen, "the chooser's video back (Open in Review stayed disabled)"


def test_open_in_review_uses_the_batch_detections_and_thresholds_without_detecting(fleet_app, batch, monkeypatch):
    import core.detect

    def no_detection(*args, **kwargs):
        raise AssertionError("detection ran again")

    monkeypatch.setattr(core.detect, "detect_video", no_detection)
    at = open_fleet(fleet_app, batch)
    assert at.selectbox(key="fleet_video").value == "walk_c.mp4"  # the worst first
    follow_open_link(at, "Open in Review")
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
        fleet.Datasource(batch).metadata_file(fleet.frame_namer("walk_c.mp4", 20)(f)), f)]
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    store.set(key, flagged[0], "miss")
    store.set(key, flagged[1], "false_alarm")
    store.set(key, next(f for f in range(20) if f not in flagged), "miss")  # a spot check: not a flagged frame
    at = open_fleet(fleet_app, batch)
    table = at.dataframe[0].value
    assert table.set_index("Video").loc["walk_c.mp4", "Reviewed"] == 2
    assert {m.label: m.value for m in at.metric}["Flagged frames reviewed"] == "2 / 7"


def test_verdicts_on_unflagged_frames_of_a_score_export_are_not_counted_as_flagged(batch, tmp_path):
    """A batch run with --flickering score writes 0.5 + 0.5 * score for every frame, above 0.5 wherever an object is
    matched less than perfectly: a verdict on each of its frames read as 18 flagged frames reviewed of 4 flagged."""
    from core.run import ExportOptions

    out = tmp_path / "scores"
    options = RunConfig(out=out, detector=DetectorSpec(cache_dir=batch.parent / "cache"),
                        flicker=FlickerSettings.of_mode("reference", *THRESHOLDS), export=ExportOptions(metadata_style="score"))
    (row,) = run_batch(BatchConfig((str(batch.parent / "videos" / "walk_c.mp4"),), options)).rows
    key = fleet.fingerprints(out)["walk_c.mp4"]
    store = VerdictStore(tmp_path / "verdicts.sqlite")
    for frame in range(row.frames):  # spot checks on the unflagged frames too
        store.set(key, frame, "false_alarm")
    assert row.flagged == 4
    assert fleet.reviewed_flagged(fleet.read_fleet(out), tmp_path / "verdicts.sqlite") == {"walk_c.mp4": 4}


def test_with_ghost_and_class_flip_on_flagged_frames_are_those_any_assertion_flags(batch, tmp_path):
    """--assertions ghost,class-flip: summary.csv and Fleet counted flicker's flags alone, while Review counts (and J / K
    visit) the frames any enabled assertion flags, and a verdict on a ghost frame counted as no flagged frame reviewed."""
    from core.assertions import CLASS_FLIP, FLICKER, GHOST

    out = tmp_path / "assertions"
    settings = FlickerSettings.of_mode("reference", *THRESHOLDS, assertions=(FLICKER, GHOST, CLASS_FLIP))
    videos = tuple(str(batch.parent / "videos" / f"{name}.mp4") for name in ("walk_a", "walk_c"))
    run_batch(BatchConfig(videos, RunConfig(out=out, detector=DetectorSpec(cache_dir=batch.parent / "cache"), flicker=settings)))
    any_flags, flicker_only = {}, 0
    for relpath in ("walk_a.mp4", "walk_c.mp4"):  # as Review opens the video from Fleet: the exported boxes
        detections = fleet.open_video(out, relpath).detections
        flicker = settings.evaluate(detections).flag_array
        any_flags[relpath] = np.logical_or.reduce([flicker, *settings.siblings(detections).values()])
        flicker_only += int(flicker.sum())
    assert sum(int(flags.sum()) for flags in any_flags.values()) > flicker_only  # ghosts and flips beside the flickers
    found = fleet.read_fleet(out)
    assert {v.relpath: v.flagged for v in found.videos} == {r: int(flags.sum()) for r, flags in any_flags.items()}
    summary = {row["relpath"]: int(row["flagged"]) for row in csv.DictReader(io.StringIO((out / "summary.csv").read_text()))}
    assert summary == {v.relpath: v.flagged for v in found.videos}
    # a verdict on each frame: the reviewed count is the frames any assertion flags, as Review's "Any" row
    store = VerdictStore(tmp_path / "verdicts.sqlite")
    for relpath, key in fleet.fingerprints(out).items():
        for frame in range(len(any_flags[relpath])):
            store.set(key, frame, "false_alarm")
    assert fleet.reviewed_flagged(found, tmp_path / "verdicts.sqlite") == {r: int(flags.sum()) for r, flags in any_flags.items()
                                                                           if flags.any()}



def test_a_resumed_batch_with_ghost_on_recounts_videos_an_earlier_version_counted_by_flicker_alone(batch, tmp_path):
    """Done markers written before flagged counted every assertion hold flicker's count: resumed with the same
    settings, those videos were skipped and kept it beside the new videos' counts of every assertion."""
    from core.assertions import FLICKER, GHOST

    out = tmp_path / "resumed"
    settings = FlickerSettings.of_mode("reference", *THRESHOLDS, assertions=(FLICKER, GHOST))
    config = BatchConfig((str(batch.parent / "videos" / "walk_a.mp4"),),
                         RunConfig(out=out, detector=DetectorSpec(cache_dir=batch.parent / "cache"), flicker=settings))
    [row] = run_batch(config, quiet=True).rows
    flicker_only = int(settings.evaluate(fleet.open_video(out, "walk_a.mp4").detections).flag_array.sum())
    assert row.flagged > flicker_only
    marker_path = out / ".batch" / "done" / "walk_a.mp4.json"
    marker = orjson.loads(marker_path.read_bytes())
    marker.pop("counted", None)  # as the earlier version wrote it
    marker["row"]["flagged"] = flicker_only
    marker_path.write_bytes(orjson.dumps(marker))
    again = run_batch(config, quiet=True)
    assert [(r.status, r.flagged) for r in again.rows] == [("done", row.flagged)]
    assert {v.relpath: v.flagged for v in fleet.read_fleet(out).videos} == {"walk_a.mp4": row.flagged}
    assert run_batch(config, quiet=True).rows[0].status == "skipped"


def test_a_batch_that_counted_flicker_alone_opens_with_verdicts_on_its_ghost_frames(fleet_app, batch, tmp_path):
    """A batch with ghost on from before flagged counted every assertion lists flicker's count in summary.csv, while
    the verdicts counted as reviewed are on the frames any assertion flags: more reviewed than flagged, and the page
    stopped on its progress bar (a share above 1)."""
    from core.assertions import FLICKER, GHOST

    out = tmp_path / "earlier"
    settings = FlickerSettings.of_mode("reference", *THRESHOLDS, assertions=(FLICKER, GHOST))
    run_batch(BatchConfig((str(batch.parent / "videos" / "walk_a.mp4"),),
                          RunConfig(out=out, detector=DetectorSpec(cache_dir=batch.parent / "cache"), flicker=settings)), quiet=True)
    detections = fleet.open_video(out, "walk_a.mp4").detections
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    rows[0]["flagged"] = str(int(settings.evaluate(detections).flag_array.sum()))  # as the earlier version wrote it
    with (out / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")  # fleet_app's FLICKER_DATA_DIR
    for frame in range(detections.n_frames):
        store.set(fleet.fingerprints(out)["walk_a.mp4"], frame, "false_alarm")
    reviewed = fleet.reviewed_flagged(fleet.read_fleet(out), tmp_path / "data" / "verdicts.sqlite")["walk_a.mp4"]
    assert reviewed > int(rows[0]["flagged"])
    at = open_fleet(fleet_app, out)
    assert {m.label: m.value for m in at.metric}["Flagged frames reviewed"] == f"{reviewed} / {rows[0]['flagged']}"

@pytest.mark.parametrize("folder, message", [("/etc", "not a batch output folder"), ("/nonexistent/fleet", "no such folder")])
def test_a_folder_that_is_not_a_batch_output_is_one_line(fleet_app, folder, message):
    at = open_fleet(fleet_app, folder)
    assert len(at.error) == 1 and message in at.error[0].value
    assert not at.dataframe


def test_a_relative_folder_is_refused_even_where_one_exists(fleet_app, batch, monkeypatch):
    monkeypatch.chdir(batch.parent)  # "out" names the batch from here: still refused
    at = open_fleet(fleet_app, "out")
    assert [e.value for e in at.error] == ["out is a relative path: give the batch output folder as an absolute path"]
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


def load_page_batch(tmp_path, monkeypatch, videos: Path) -> AppTest:
    """The Load page, empty caches, its batch section filled in: ``videos`` in, ``tmp_path / "out"`` out; nothing run."""
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="batch_inputs").input(str(videos))
    at.text_input(key="batch_out").input(str(tmp_path / "out"))
    return at


@pytest.mark.parametrize("field", ["batch_out", "batch_inputs"])
def test_the_load_page_batch_refuses_a_relative_folder(tmp_path, monkeypatch, field):
    """An output folder typed as 'fleet-out' was made wherever the server was started (the app's checkout), and the
    batch's export written there; a relative folder of videos was read from there. The Export page refused them."""
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "short.mp4", sample_frames(6, start=10))
    monkeypatch.chdir(tmp_path / "videos")  # where the server was started
    at = load_page_batch(tmp_path, monkeypatch, videos)
    at.text_input(key=field).input("fleet-out" if field == "batch_out" else ".")
    at.button(key="run_batch").click().run()
    assert not at.exception, at.exception
    said = {"batch_out": "Batch failed: Output folder 'fleet-out' is a relative path: give an absolute folder (like "
                         "/data/flicker)",
            "batch_inputs": "Batch failed: Folder of videos '.' is a relative path: give an absolute folder (like /data/cams)"}
    assert [e.value for e in at.error] == [markdown_literal(said[field])]
    assert not (videos / "fleet-out").exists() and not (videos / ".lightly").exists() and not (tmp_path / "out").exists()


def test_the_load_page_runs_a_batch_and_links_to_the_fleet(tmp_path, monkeypatch, batch):
    videos = tmp_path / "videos"
    videos.mkdir()
    hostile = "[cam](javascript:alert) **1**.mp4"  # its line in the batch's log was Markdown: a link, bold
    write_video(videos / "short.mp4", sample_frames(6, start=10)).rename(videos / hostile)
    at = load_page_batch(tmp_path, monkeypatch, videos)
    next(b for b in at.button if b.label == "Run batch").click().run()
    assert not at.exception, at.exception
    assert any("1 video run in" in s.value for s in at.success)
    assert [v.relpath for v in fleet.read_fleet(tmp_path / "out").videos] == [hostile]
    [line] = [m.value for m in at.markdown if ": done" in m.value]
    assert line.startswith(r"- \[cam\]") and r"\*\*1\*\*" in line
    assert fleet.read_settings(tmp_path / "out") is not None
    at.run()  # the next run offers the batch's folder to open
    assert at.text_input(key="batch_open_dir").value == str((tmp_path / "out").resolve())
    marker = tmp_path / "out" / ".batch" / "done" / f"{hostile}.json"
    older = {k: v for k, v in json.loads(marker.read_text()).items() if k != "identity"}  # a batch before markers named files
    marker.write_text(json.dumps(older))
    next(b for b in at.button if b.label == "Run batch").click().run()  # the video is read again, with a bar
    assert not at.exception, at.exception
    assert [p.proto.text for p in at.get("progress")][1].startswith("Done videos checked (")
    assert json.loads(marker.read_text())["identity"]  # checked unchanged: the next resume reads nothing


def test_a_resumed_batch_on_the_load_page_counts_the_videos_done_earlier(tmp_path, monkeypatch):
    """Run again after a stop, the page's bars counted only the videos run: "0 / 3 videos" at the start, "2 / 3" at the
    end, the last one "video 2 of 3", and the video done earlier named nowhere (while the summary said "3 videos")."""
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "cam_gate.mp4", sample_frames(4))
    at = load_page_batch(tmp_path, monkeypatch, videos)
    at.button(key="run_batch").click().run()  # stopped after its first video, as by a closed tab
    for name, start in (("cam_north.mp4", 10), ("cam_south.mp4", 20)):
        write_video(videos / name, sample_frames(4, start=start))
    at.button(key="run_batch").click().run()
    assert not at.exception, at.exception
    overall, current = (p.proto.text for p in at.get("progress"))
    assert overall == "3 / 3 videos" and current.startswith("cam\\_south.mp4 (video 3 of 3): 4 / 4 frames"), (overall, current)
    [log] = [m.value for m in at.markdown if "cam\\_gate.mp4" in m.value]
    assert log.splitlines()[0].startswith("- cam\\_gate.mp4: done earlier, ") and len(log.splitlines()) == 3, log
    [said] = [s.value for s in at.success if " run in " in s.value]
    assert said.startswith("2 videos run in ") and said.endswith(" s; 1 done earlier"), said
    at.button(key="run_batch").click().run()
    assert [p.proto.text for p in at.get("progress")] == ["3 / 3 videos", "Nothing to run: 3 videos, all done earlier"]


def no_detection(*args, **kwargs):
    raise AssertionError("detection ran again")


def open_row_in_review(at: AppTest, batch) -> AppTest:
    at = follow_open_link(open_fleet(at, batch), "Open in Review")  # the worst first: walk_c.mp4
    assert not at.exception, at.exception
    return at


def reload_review(query_params) -> AppTest:
    """The review page opened from its URL in a new session, as after F5."""
    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    reloaded.switch_page("pages/review.py")
    reloaded.query_params = dict(query_params)
    reloaded.run()
    assert not reloaded.exception and not reloaded.error, (reloaded.exception, reloaded.error)
    return reloaded


def test_a_reload_of_review_opened_from_a_row_reads_the_batch_output_again(fleet_app, batch, monkeypatch):
    """F5 on Review: the URL names the batch folder and the video; the detections come from the batch's
    export again (the detection cache is empty and detection may not run) at the batch's thresholds."""
    import core.detect

    monkeypatch.setattr(core.detect, "detect_video", no_detection)
    at = open_row_in_review(fleet_app, batch)
    url = dict(at.query_params)
    assert url["batch"] == str(batch) and url["relpath"] == "walk_c.mp4" and "weights" not in url
    reloaded = reload_review(url)
    review = reloaded.session_state["review"]
    assert review.batch == batch and review.video.relpath == "walk_c.mp4"
    assert review.detection_id == at.session_state["review"].detection_id  # the batch's exported boxes
    assert (reloaded.session_state["iou_track"], reloaded.session_state["iou_assert"]) == THRESHOLDS
    assert next(m.value for m in reloaded.metric if m.label == "Flagged frames") == "4"

    reloaded.slider(key="iou_track").set_value(0.3).run()  # the user's own threshold outlives a reload
    again = reload_review(reloaded.query_params)
    assert again.session_state["iou_track"] == pytest.approx(0.3) and again.session_state["iou_assert"] == 0.5


def test_a_link_to_a_batch_video_is_checked_like_any_path(fleet_app, batch, tmp_path, monkeypatch):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/review.py")
    at.query_params = {"batch": str(batch), "relpath": "../../etc/passwd"}
    at.run()
    assert not at.exception and "not in the batch's export" in at.error[0].value
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path))
    at.query_params = {"batch": str(batch), "relpath": "walk_c.mp4"}
    at.run()
    assert "outside the folders" in at.error[0].value and "this link names is not open here" in at.info[-1].value
    (back,) = [p.proto for p in at.get("page_link") if p.proto.label == "Back to the batch"]  # not only Load & detect
    assert back.page == "fleet" and back.query_string == f"dir={quote(str(batch), safe='')}"


def test_a_batch_that_has_just_started_is_a_batch_output_folder(fleet_app, batch, tmp_path):
    """Before its first video is done a batch has written only its settings: the page says it runs."""
    starting = tmp_path / "starting"
    (starting / ".batch").mkdir(parents=True)
    shutil.copy(batch / ".batch" / "settings.json", starting / ".batch" / "settings.json")
    from core.paths import exclusive_lock

    with exclusive_lock(starting, "a test batch"):
        at = open_fleet(fleet_app, starting)
        assert not at.error and shown_rows(at) == []
        assert any("A batch is writing this folder: 0 of 4 videos so far" in i.value for i in at.info)
        settings = starting / ".batch" / "settings.json"  # from before the count was recorded, or damaged: no total
        for videos in (None, -3, "4", True):
            settings.write_bytes(orjson.dumps({**orjson.loads(settings.read_bytes()), "videos": videos}))
            at.run()
            assert any("A batch is writing this folder: 0 videos so far" in i.value for i in at.info), videos


def test_the_video_chooser_names_the_first_video_a_running_batch_finishes(fleet_app, batch, tmp_path):
    """Opened before any video was done, the chooser had nothing to name and stayed empty as rows came in:
    Open in Review was greyed out until a video was picked by hand."""
    running = tmp_path / "running"
    shutil.copytree(batch, running)
    (running / "summary.csv").unlink()
    done, later = running / ".batch" / "done", tmp_path / "done_later"
    shutil.move(done, later)
    done.mkdir()
    from core.paths import exclusive_lock

    with exclusive_lock(running, "a test batch"):
        at = open_fleet(fleet_app, running)
        assert shown_rows(at) == [] and at.selectbox(key="fleet_video").value is None
        for marker in later.iterdir():
            shutil.move(marker, done / marker.name)
        at.run()
        assert not at.exception, at.exception
        assert at.selectbox(key="fleet_video").value == shown_rows(at)[0]
        (opener,) = [p.proto for p in at.get("page_link") if p.proto.label == "Open in Review"]
        assert not opener.disabled


def test_a_batch_that_stopped_early_shows_its_videos_and_is_not_polled(fleet_app, batch, tmp_path):
    """Ctrl-C leaves done markers newer than the summary and no lock: shown, said, not polled forever."""
    stopped = tmp_path / "stopped"
    shutil.copytree(batch, stopped)
    (stopped / "summary.csv").unlink()
    at = open_fleet(fleet_app, stopped)
    assert sorted(shown_rows(at)) == ["walk_a.mp4", "walk_b.mp4", "walk_c.mp4"]
    assert not fleet.read_fleet(stopped).running
    assert any("stopped before it finished; the 3 videos it did" in i.value for i in at.info)
    assert not any("A batch is writing" in i.value for i in at.info)


def test_a_filter_typed_and_cleared_fast_never_brings_back_the_tick_it_cleared(fleet_app, batch):
    """Typed fast, each keystroke's run stops the one before it, and Streamlit keeps the state of a widget
    a stopped run did not draw (it drops those only when a run ends): the first table's tick is still in
    the session when the filter is cleared. The table listing the same rows again must not take it."""
    at = open_fleet(fleet_app, batch)
    first = at.session_state["fleet_table"]
    tick = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.session_state[first] = tick
    at.run()
    opens = lambda: [p.proto.label for p in at.get("page_link") if p.proto.label.startswith("Open walk")]  # noqa: E731
    assert opens() == ["Open walk\\_c.mp4 in Review"]
    at.text_input(key="fleet_filter").input("zzz").run()
    assert shown_rows(at) == [] and not opens()
    at.session_state[first] = tick  # what a run stopped by the next keystroke leaves behind
    at.text_input(key="fleet_filter").input("").run()
    assert len(shown_rows(at)) == 4 and not opens(), "the tick the filter cleared came back"


LONG_NAME = "north_entrance_camera_07_2026-11-30_morning_shift.mp4"  # a camera's dated file name


def renamed_in_summary(root: Path, name: str, new_name: str) -> Path:
    """The batch ``root`` with a video listed under another name (its summary row: what the Fleet page lists)."""
    summary = root / "summary.csv"
    summary.write_text(summary.read_text().replace(name, new_name))
    return root


def test_a_long_video_name_gets_a_column_wide_enough_to_read_it_whole(batch_copy, fleet_app):
    """A camera's dated file name was cut to ``north_entrance_camera_07_202`` at 1280 px: the Video column
    is as wide as the longest name shown, and the Error column, empty while nothing failed, gives it room."""
    root, _ = batch_copy
    at = open_fleet(fleet_app, renamed_in_summary(root, "walk_a.mp4", LONG_NAME))
    columns = json.loads(at.dataframe[0].proto.columns)
    assert LONG_NAME in shown_rows(at)
    assert columns["Video"]["width"] >= 6.5 * len(LONG_NAME) + 17  # the grid's 14 px font, 8.5 px each side
    assert not columns["Error"].get("hidden")  # broken.mp4 failed: its error has a column
    at.text_input(key="fleet_filter").input("walk").run()  # nothing failed among the rows shown
    assert json.loads(at.dataframe[0].proto.columns)["Error"].get("hidden")
    assert json.loads(at.dataframe[0].proto.columns)["Video"]["width"] < columns["Video"]["width"]


def test_the_chart_of_flagged_frames_names_each_video_whole(batch_copy, fleet_app):
    """Streamlit's bar chart cut its names at ~100 px (``south_gate_cam…``): the names beside the bars
    have room for a long one."""
    root, _ = batch_copy
    at = open_fleet(fleet_app, renamed_in_summary(root, "walk_c.mp4", LONG_NAME))
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["encoding"]["y"]["field"] == "Video" and spec["encoding"]["y"]["sort"] == "-x"  # most flagged on top
    assert spec["encoding"]["y"]["axis"]["labelLimit"] >= 6.5 * len(LONG_NAME)


def test_a_done_videos_warning_keeps_the_error_column_where_nothing_failed(batch_copy, fleet_app):
    """The Error column was left out while no row shown failed, taken for empty: a video done with frames that did
    not decode (or a truncated file) has its warning there, and the page said it nowhere else."""
    import csv
    import io

    root, _ = batch_copy
    summary = root / "summary.csv"
    rows = list(csv.DictReader(io.StringIO(summary.read_text())))
    warned = next(row for row in rows if row["relpath"] == "walk_a.mp4")
    assert warned["status"] == "done"
    warned["error"] = "walk_a.mp4: 2 of 40 frames could not be decoded"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    summary.write_text(buffer.getvalue())
    at = open_fleet(fleet_app, root)
    at.text_input(key="fleet_filter").input("walk_a").run()  # nothing failed among the rows shown
    columns = json.loads(at.dataframe[0].proto.columns)
    assert shown_rows(at) == ["walk_a.mp4"] and not columns["Error"].get("hidden")
    assert at.dataframe[0].value["Error"].tolist() == ["2 of 40 frames could not be decoded"]


def test_a_failed_videos_error_is_shown_in_full_under_the_table(fleet_app, batch):
    at = open_fleet(fleet_app, batch)
    warning = at.warning[0].value
    assert "1 video failed" in warning and "- `broken.mp4` is not a video FFmpeg can read" in warning  # the name once
    assert "broken.mp4" not in at.selectbox(key="fleet_video").options  # nothing to review


def export_page_on(at: AppTest, batch) -> AppTest:
    """Fleet's "Export & schedule" link, then the Export page it opens."""
    at = open_fleet(at, batch)
    (link,) = [p.proto for p in at.get("page_link") if p.proto.label == "Export & schedule"]
    assert link.page == "export" and dict(parse_qsl(link.query_string)) == {"dir": str(batch)}
    at.switch_page("pages/export.py")  # what a click on the link does
    at.query_params = dict(parse_qsl(link.query_string))
    at.run()
    assert not at.exception and at.title[0].value == "Export & schedule", at.exception
    return at


def test_the_export_page_on_a_batch_describes_and_validates_its_combined_datasource(fleet_app, batch):
    at = export_page_on(fleet_app, batch)
    assert "3 videos, 60 frames, 7 flagged frames" in at.info[0].value
    assert at.expander[0].label == markdown_literal("Sample files: a flagged frame of walk_c.mp4")  # a label is Markdown
    assert at.markdown[0].value.startswith("Prediction `predictions/yolov8_detection/walk_c-")
    assert json.loads(at.json[1].value)["metadata"]["flickering"] == 1.0  # a flagged frame of the worst video
    assert any("run the batch with --assertions ghost,class-flip" in c.value for c in at.caption)  # not Review's way
    next(b for b in at.button if b.label == "Validate every file").click().run()
    assert "Valid Lightly datasource: 60 frames of 3 videos" in at.success[0].value


def test_schedule_the_combined_datasource_against_the_recorded_lightly_fake(fleet_app, batch, monkeypatch):
    from fake_lightly import GOOD_TOKEN, RUN_ID, FakeLightly

    monkeypatch.delenv("LIGHTLY_TOKEN", raising=False)
    at = export_page_on(fleet_app, batch)
    next(b for b in at.button if b.label == "Schedule Lightly selection").click().run()
    assert [e.value for e in at.error] == [
        "Fill in Input datasource URL, Lightly datasource URL, Role ARN, External ID, Lightly token (or set "
        "LIGHTLY_TOKEN) first."]  # the same checks as for one video
    fields = {"schedule_input_url": "s3://bucket/input/", "schedule_lightly_url": "s3://bucket/lightly/",
              "s3_role_arn": "arn:aws:iam::123456789012:role/lightly-access", "s3_external_id": "short"}
    for key, value in fields.items():
        at.text_input(key=key).set_value(value)
    next(b for b in at.button if b.label == "Dry run").click().run()
    assert [e.value for e in at.error] == ["Dry run failed: External ID must be at least 10 characters (Lightly's rule)"]
    at.text_input(key="s3_external_id").set_value("flicker-external-id")
    at.text_input(key="lightly_token").set_value(GOOD_TOKEN)
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        next(b for b in at.button if b.label == "Schedule Lightly selection").click().run()
    assert not at.error, [e.value for e in at.error]
    assert RUN_ID in at.success[-1].value and f"flicker-{batch.name}" in at.success[-1].value
    config = fake.requests[-2]["body"]["config"]
    strategies = config["selection"]["strategies"]
    assert {s["input"].get("task") for s in strategies} >= {"yolov8_detection"}  # the batch's own task


def test_a_link_to_the_verdicts_page_of_a_batch_video_reopens_it_from_the_batch(fleet_app, batch, monkeypatch):
    import core.detect

    monkeypatch.setattr(core.detect, "detect_video", no_detection)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/qa.py")
    at.query_params = {"batch": str(batch), "relpath": "walk_a.mp4", "iou_track": "0.5", "iou_assert": "0.5"}
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    review = at.session_state["review"]
    assert review.batch == batch and review.video.relpath == "walk_a.mp4" and len(review.detections) > 0
    assert at.query_params["batch"] == str(batch) and "annotator" in at.query_params  # the page's own beside it


def test_the_load_page_opens_a_batch_output_folder_on_the_fleet_page(tmp_path, monkeypatch, batch):
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="batch_open_dir").input(str(tmp_path))  # not a batch output folder: one line, Load stays
    next(b for b in at.button if b.label == "Open on the Fleet page").click().run()
    assert [e.value for e in at.error] == [markdown_literal(f"{tmp_path} is not a batch output folder (no summary.csv): run "
                                                            "python -m core batch INPUTS --out FOLDER first")]
    at.text_input(key="batch_open_dir").input(str(batch))
    next(b for b in at.button if b.label == "Open on the Fleet page").click().run()
    assert not at.exception and not at.error and dict(at.query_params) == {"dir": str(batch)}
    assert at.title[0].value == "Fleet" and shown_rows(at)[0] == "walk_c.mp4"


def test_a_batch_still_running_is_pushed_once_it_ends(fleet_app, batch, tmp_path):
    running = tmp_path / "running"
    shutil.copytree(batch, running)
    from core.paths import exclusive_lock

    with exclusive_lock(running, "a test batch"):
        at = export_page_on(fleet_app, running)
        at.text_input(key="push_url").input(str(tmp_path / "bucket")).run()
        push = next(b for b in at.button if b.label == "Push")
        assert push.disabled and "a batch is still writing it" in at.info[0].value
    at.run()
    assert not next(b for b in at.button if b.label == "Push").disabled


def _task_dir(root: Path) -> Path:
    from core.lightly.datasource import Datasource
    return Datasource(root).task_dir(fleet.read_tasks(root)[0])


def _frame_file(root: Path, relpath: str, frame: int) -> Path:
    from core.lightly.datasource import frame_name
    n = fleet.open_video(root, relpath).info.frame_count
    return _task_dir(root) / frame_name(relpath, frame, n, ".json")


def _cached_files(cache: Path) -> list[Path]:
    return sorted((cache / fleet.PREDICTIONS_CACHE).glob("*.npz"))


@pytest.fixture
def batch_copy(batch, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A copy of the batch to edit, and an empty cache folder of its own."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(cache))
    root = tmp_path / "out"
    shutil.copytree(batch, root, symlinks=True)
    return root, cache


def test_a_batch_videos_predictions_are_read_from_disk_once_and_again_when_a_file_changes(batch_copy, monkeypatch):
    root, cache = batch_copy
    first = fleet.open_video(root, "walk_c.mp4").detections
    (cached,) = _cached_files(cache)

    def no_import(*args, **kwargs):
        raise AssertionError("the export was read again while its files were unchanged")
    with monkeypatch.context() as patched:
        patched.setattr(fleet, "import_predictions", no_import)
        again = fleet.open_video(root, "walk_c.mp4").detections
    assert np.array_equal(again.xyxy, first.xyxy) and np.array_equal(again.frame, first.frame)
    assert np.array_equal(again.score, first.score) and again.names == first.names

    # an annotator's edit of one frame's file (rewritten whole, as an editor saves): read again, edit included
    path = _frame_file(root, "walk_c.mp4", 5)
    data = json.loads(path.read_text())
    data["predictions"] = [{"category_id": data["predictions"][0]["category_id"] if data["predictions"] else 0,
                            "bbox": [1, 2, 30, 40], "score": 0.5}]
    path.with_suffix(".tmp").write_text(json.dumps(data))
    path.with_suffix(".tmp").replace(path)
    edited = fleet.open_video(root, "walk_c.mp4").detections
    assert edited.xyxy[edited.frame == 5].tolist() == [[1, 2, 31, 42]]
    assert len(_cached_files(cache)) == 2 and cached in _cached_files(cache)


def test_a_video_exported_with_another_frame_count_is_not_reviewed_on_it(batch_copy):
    """Frames are counted as PyAV decodes them since an export made before (a trimmed MP4's hidden
    frames were counted): its boxes would sit on other frames, silently."""
    from core.lightly.datasource import Datasource

    root, _ = batch_copy
    manifest = Datasource(root).manifest
    listed = json.loads(manifest.read_text())
    next(e for e in listed["videos"] if e["relpath"] == "walk_a.mp4")["frames"] += 10
    manifest.write_text(json.dumps(listed))
    with pytest.raises(fleet.UserError, match=r"walk_a.mp4 was exported with \d+ frames and reads as \d+ now"):
        fleet.open_video(root, "walk_a.mp4")


def test_a_damaged_cache_file_is_replaced_and_a_link_in_the_export_is_never_cached(batch_copy, tmp_path):
    from core.lightly.validate import PredictionFormatError
    root, cache = batch_copy
    expected = fleet.open_video(root, "walk_a.mp4").detections
    (cached,) = _cached_files(cache)
    cached.write_bytes(b"PK\x03\x04 not a zip")
    assert np.array_equal(fleet.open_video(root, "walk_a.mp4").detections.xyxy, expected.xyxy)
    assert np.array_equal(fleet.Detections.load(cached).xyxy, expected.xyxy)  # written again, whole

    path = _frame_file(root, "walk_a.mp4", 3)
    outside = tmp_path / "elsewhere.json"
    shutil.copy(path, outside)
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(PredictionFormatError, match="symbolic link"):
        fleet.open_video(root, "walk_a.mp4")
    path.unlink()
    with pytest.raises(PredictionFormatError, match="missing"):
        fleet.open_video(root, "walk_a.mp4")


class StopAfterFirstVideo(BatchProgress):
    def finished(self, row) -> None:
        if row.status == "done":
            raise KeyboardInterrupt


def test_a_batch_stopped_after_a_change_of_settings_is_said_to_hold_two_runs(batch_copy, batch, fleet_app, monkeypatch):
    """A batch rerun at other thresholds and stopped after one video: the other videos still hold the
    run before's flags (rows, export), while Review would open them at the new settings."""
    root, _ = batch_copy
    assert not fleet.read_fleet(root).mixed
    config = BatchConfig((str(batch.parent / "videos"),), RunConfig(
        out=root, detector=DetectorSpec(cache_dir=batch.parent / "cache"), flicker=FlickerSettings.of_mode("reference", 0.3, 0.7)))
    with pytest.raises(KeyboardInterrupt):
        run_batch(config, StopAfterFirstVideo())
    found = fleet.read_fleet(root)
    assert found.unsummarised == 1 and found.mixed
    at = open_fleet(fleet_app, root)
    assert any("ran with other settings than the run before it" in w.value for w in at.warning), [w.value for w in at.warning]
    run_batch(config)  # finished: one run's settings again
    assert not fleet.read_fleet(root).mixed


def test_the_settings_caption_names_the_assertions_the_videos_open_with(batch_copy, fleet_app):
    """A batch run with --assertions flicker,ghost,class-flip opens its videos with those lanes on Review:
    the caption of the batch's settings said only thresholds."""
    root, _ = batch_copy
    recorded = fleet.read_settings(root)
    with_siblings = dataclasses.replace(recorded.flicker, assertions=("flicker", "ghost", "class-flip"))
    fleet.write_settings(root, recorded.detector, with_siblings, recorded.videos)
    at = open_fleet(fleet_app, root)
    (caption,) = [c.value for c in at.caption if c.value.startswith("Videos open at the batch's settings")]
    assert ", ghost and class flip beside flicker (" in caption, caption


def test_the_settings_caption_names_the_detector_in_words(fleet_app, batch):
    """It said "(builtin:hog-people, floor 0.5)": the built-in detector's internal name, and a floor of what."""
    at = open_fleet(fleet_app, batch)
    (caption,) = [c.value for c in at.caption if c.value.startswith("Videos open at the batch's settings")]
    assert caption.endswith("(the built-in people detector, confidence floor 0.1).") and "builtin" not in caption, caption


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_summary_that_is_not_a_plain_file_is_named_not_read_as_a_stopped_batch(kind, tmp_path):
    """A FIFO or a link to /dev/zero at summary.csv read as 'the last batch stopped before it finished'."""
    root = tmp_path / "out"
    (root / fleet.DONE_DIR).mkdir(parents=True)
    summary = root / fleet.SUMMARY_CSV
    if kind == "fifo":
        os.mkfifo(summary)
    else:
        summary.symlink_to("/dev/zero")
    with pytest.raises(fleet.UserError, match=r"summary.csv is not a regular file"):
        fleet.check_folder(str(root))


def test_a_summary_cell_past_the_csv_field_limit_is_one_line(tmp_path):
    """A cell of 200,000 characters (a summary edited by hand or by another tool) stopped the page with
    csv's own error, not one line."""
    root = tmp_path / "out"
    root.mkdir()
    (root / fleet.SUMMARY_CSV).write_text("relpath,source,status,error,frames,boxes,flagged\n"
                                          f"a.mp4,/x,failed,{'x' * 200_000},0,0,0\n")
    with pytest.raises(fleet.UserError, match=r"summary.csv is not a summary a batch wrote \(field larger than"):
        fleet.read_fleet(fleet.check_folder(str(root)))


def test_a_summary_row_with_more_flagged_than_frames_is_one_line(tmp_path):
    """A hand-edited row showed a flagged share of 3,330%."""
    root = tmp_path / "out"
    root.mkdir()
    (root / fleet.SUMMARY_CSV).write_text("relpath,source,status,error,frames,boxes,flagged\na.mp4,/x,done,,30,1,999\n")
    with pytest.raises(fleet.UserError, match=r"says 'a.mp4' has 999 flagged of 30 frames: it is not a summary a batch wrote"):
        fleet.read_fleet(fleet.check_folder(str(root)))


def test_a_batch_writes_no_cell_the_fleet_page_cannot_read(tmp_path):
    """An error that quotes a long text (a file's whole content) went into summary.csv as it was, and the
    page then called the batch's own summary not one a batch wrote."""
    from core.batch import SUMMARY_CSV, summary_csv
    from core.batch.sources import MAX_CELL_CHARS, VideoRow

    root = tmp_path / "out"
    root.mkdir()
    (root / SUMMARY_CSV).write_bytes(summary_csv([VideoRow("a.mp4", "/x", "failed", "y" * 200_000)]))
    [video] = fleet.read_fleet(fleet.check_folder(str(root))).videos
    assert video.relpath == "a.mp4" and video.error == "y" * MAX_CELL_CHARS


def test_a_summary_saved_again_with_a_byte_order_mark_still_lists_its_videos(tmp_path):
    """A spreadsheet's 'CSV UTF-8' starts the file with a BOM: its first column read as '\\ufeffrelpath',
    and the page listed no video at all, without a word."""
    root = tmp_path / "out"
    root.mkdir()
    (root / fleet.SUMMARY_CSV).write_bytes(b"\xef\xbb\xbfrelpath,source,status,error,frames,boxes,flagged\r\n"
                                           b"a.mp4,/x,done,,30,4,2\r\n")
    assert [(v.relpath, v.frames, v.flagged) for v in fleet.read_fleet(fleet.check_folder(str(root))).videos] == [("a.mp4", 30, 2)]


def test_a_video_an_earlier_run_did_reads_done_earlier_not_skipped(fleet_app, batch, tmp_path):
    """summary.csv's "skipped" (the same command run again): the video is in the export all the same."""
    again = Path(shutil.copytree(batch, tmp_path / "again"))
    settings = FlickerSettings.of_mode("reference", *THRESHOLDS)
    report = run_batch(BatchConfig((str(batch.parent / "videos"),), RunConfig(
        out=again, detector=DetectorSpec(cache_dir=batch.parent / "cache"), flicker=settings)))
    assert sorted(r.status for r in report.rows) == ["failed", "skipped", "skipped", "skipped"]
    rows = open_fleet(fleet_app, again).dataframe[0].value
    assert dict(zip(rows["Video"], rows["Status"])) == {"walk_a.mp4": "done earlier", "walk_b.mp4": "done earlier",
                                                        "walk_c.mp4": "done earlier", "broken.mp4": "failed"}


def test_a_summary_of_more_rows_than_a_fleet_holds_is_one_line(batch_copy, monkeypatch):
    """The cap was in bytes only: 20 MB of tiny rows held 3 M videos, 1.1 GB and 22 s to read."""
    monkeypatch.setattr("core.fleet.MAX_SUMMARY_ROWS", 3)
    root, _ = batch_copy
    summary = root / fleet.SUMMARY_CSV
    summary.write_text(summary.read_text() + "".join(f"x{k}.mp4,x{k}.mp4,failed,,0,0,0\n" for k in range(3)))
    with pytest.raises(fleet.UserError, match=r"summary.csv lists more than 3 videos: this page reads at most that many"):
        fleet.read_fleet(fleet.check_folder(str(root)))


def test_the_batch_sample_is_a_flagged_frame_whose_files_are_each_read_once(batch, monkeypatch):
    reads = []
    read = fleet._read
    monkeypatch.setattr(fleet, "_read", lambda path, *args: reads.append(Path(path)) or read(path, *args))
    combined = fleet.combined_datasource(batch)
    reads.clear()
    (prediction_name, prediction), (metadata_name, metadata) = fleet.sample_files(combined)
    lightly = fleet.Datasource(batch).lightly
    # the frames before it read once each to find the flag; the chosen one's metadata not again to be shown
    assert reads.count(lightly / metadata_name) == 1 and reads.count(lightly / prediction_name) == 1
    assert orjson.loads((lightly / prediction_name).read_bytes()) == prediction and prediction["predictions"]
    assert orjson.loads((lightly / metadata_name).read_bytes()) == metadata
    frame = int(Path(metadata_name).stem.rsplit("-", 2)[-2])
    assert fleet._flagged_in_export(lightly / metadata_name, frame, fleet.flagged_cuts(batch).get(combined.worst))


def test_a_resume_of_many_videos_done_earlier_draws_their_lines_at_once(tmp_path, monkeypatch):
    """The page's log shows the last 8 lines: a resume of 20,000 videos done earlier drew a line and moved the bar for each
    (20,000 of each, 9 s before the first video opened), where the command line's bar moves once."""
    from streamlit.delta_generator import DeltaGenerator

    import core.batch
    from core.batch import BatchReport, VideoRow

    (tmp_path / "videos").mkdir()
    skipped = [VideoRow(f"cam_{i:05d}.mp4", f"cam_{i:05d}.mp4", "skipped", frames=8) for i in range(20_000)]
    drawn = {"markdown": 0, "progress": 0}

    def counting(name):
        method = getattr(DeltaGenerator, name)

        def counted(self, *args, **kwargs):
            drawn[name] += 1
            return method(self, *args, **kwargs)
        return counted

    def resumed(config, progress=None, quiet=True):
        drawn.update(markdown=0, progress=0)
        progress.started(len(skipped) + 1, skipped)
        said = dict(drawn)
        progress.finished(VideoRow("new.mp4", "new.mp4", "done", frames=8))
        drawn.update(said)
        return BatchReport((*skipped, VideoRow("new.mp4", "new.mp4", "done", frames=8)), config.out, 1.0, ())

    for name in drawn:
        monkeypatch.setattr(DeltaGenerator, name, counting(name))
    monkeypatch.setattr(core.batch, "run_batch", resumed)
    at = load_page_batch(tmp_path, monkeypatch, tmp_path / "videos")
    at.button(key="run_batch").click().run()
    assert not at.exception, at.exception
    assert drawn["markdown"] <= 2 and drawn["progress"] <= 3, drawn
    overall = [p.proto.text for p in at.get("progress")][0]
    [log] = [m.value for m in at.markdown if "cam\\_19999.mp4" in m.value]
    assert overall == "20001 / 20001 videos" and len(log.splitlines()) == 8, (overall, log)
    assert log.splitlines()[-2] == "- cam\\_19999.mp4: done earlier, 0 of 8 frames flagged" and "new.mp4" in log, log


def test_the_load_pages_batch_bar_counts_from_0_while_its_first_video_runs(tmp_path, monkeypatch):
    """With no video done earlier the bar read "Finding the videos..." until the first video was done (minutes for a long
    one, and for good when it stopped there): it reads "0 / 2 videos" from the start, as before it waited for the count."""
    import core.batch
    from core.errors import UserError

    def stopped_in_the_first(config, progress=None, quiet=True):
        progress.started(2, [])
        progress.probed(8, "a.mp4")
        raise UserError("stopped")

    (tmp_path / "videos").mkdir()
    monkeypatch.setattr(core.batch, "run_batch", stopped_in_the_first)
    at = load_page_batch(tmp_path, monkeypatch, tmp_path / "videos")
    at.button(key="run_batch").click().run()
    assert not at.exception, at.exception
    assert [p.proto.text for p in at.get("progress")] == ["0 / 2 videos", "a.mp4 (video 1 of 2): 0 / 8 frames"]
