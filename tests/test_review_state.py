"""The whole review travels through URLs and exports (follow-ups of issues 21, 22, 23): the
assertions beside flicker ride in the link and come from a batch's recorded settings; boxes read
from a file are read again by a reload (an upload says it must be loaded again); the Export page
offers a strength for each assertion field the export declares; Review links back to its batch."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SAMPLE_VIDEO, sample_frames, write_video
from core.batch import BatchConfig, run_batch
from core.run import RunConfig
from core.settings import DetectorSpec, FlickerSettings
from test_app import click, export_from_app, fill_schedule_form, load_sample_with_boxes, metric
from test_load_boxes import DROPPED, coco_bytes, mot_text, planted_boxes



@pytest.fixture(scope="module")
def ghost_batch(tmp_path_factory):
    """A batch run with ``--assertions flicker,ghost`` over two 20-frame clips of the sample."""
    base = tmp_path_factory.mktemp("ghost-batch")
    videos = base / "videos"
    videos.mkdir()
    frames = sample_frames(40, start=10)
    for k, name in enumerate(("walk_a", "walk_b")):
        write_video(videos / f"{name}.mp4", frames[20 * k: 20 * (k + 1)])
    settings = FlickerSettings.of_mode("reference", 0.5, 0.5, assertions=("flicker", "ghost"))
    out = base / "out"
    run_batch(BatchConfig((str(videos),), RunConfig(out=out, detector=DetectorSpec(cache_dir=base / "cache"),
                                                    flicker=settings)))
    return out


@pytest.fixture
def fresh(tmp_path, monkeypatch, shared_cache):
    """A new browser session's app (as after F5), with its own data folder."""
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))

    def open_page(page: str, query_params: dict) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.switch_page(page)
        at.query_params = dict(query_params)
        at.run()
        assert not at.exception, at.exception
        return at
    return open_page


def review_link(fresh, query_params: dict) -> AppTest:
    return fresh("pages/review.py", query_params)


def url(at: AppTest) -> dict:
    return {key: value[0] if isinstance(value, list) else value for key, value in at.query_params.items()}


def assertion_rows(at: AppTest) -> list[str]:
    """The rows of Review's per-assertion counts (none with flicker alone)."""
    return [row for table in at.table if "Assertion" in table.value.columns for row in table.value["Assertion"]]


# 1. Assertions in the URL, and a batch's recorded ones in Review ------------------------------------------


def test_a_batch_run_with_ghost_opens_with_ghost_on_and_the_link_keeps_the_choice(fresh, ghost_batch):
    at = review_link(fresh, {"batch": str(ghost_batch), "relpath": "walk_a.mp4"})
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["assertions"] == ["ghost"]  # the batch's --assertions flicker,ghost
    assert url(at)["assertions"] == "ghost"
    assert assertion_rows(at) == ["Flicker", "Ghost", "Any"]

    at.pills(key="assertions").set_value(["ghost", "class-flip"]).run()
    assert url(at)["assertions"] == "ghost,class-flip"
    again = review_link(fresh, url(at))
    assert again.session_state["assertions"] == ["ghost", "class-flip"] and not again.error

    again.pills(key="assertions").set_value([]).run()
    assert url(again)["assertions"] == "flicker"  # said, or a reload would bring back the batch's ghost
    flicker_only = review_link(fresh, url(again))
    assert flicker_only.session_state["assertions"] == [] and assertion_rows(flicker_only) == []


def test_a_link_with_unknown_assertions_is_one_line_that_does_not_echo_it(fresh, ghost_batch):
    at = review_link(fresh, {"batch": str(ghost_batch), "relpath": "walk_a.mp4", "assertions": "ghost,**<b>x</b>**"})
    assert not at.error and len(at.warning) == 1, [w.value for w in at.warning]
    warning = at.warning[0].value
    assert "does not know (it knows flicker, ghost, class-flip)" in warning and "<b>" not in warning and "\n" not in warning
    assert at.session_state["assertions"] == ["ghost"]  # the batch's own, untouched by the bad value


def test_a_detector_review_writes_assertions_only_when_a_sibling_is_on(fresh, tmp_path):
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    at = review_link(fresh, {"video": str(SAMPLE_VIDEO), "boxes": str(labels), "boxes_format": "mot"})
    assert "assertions" not in url(at)
    at.pills(key="assertions").set_value(["class-flip"]).run()
    assert url(at)["assertions"] == "class-flip"


# 4. Review says the boxes come from a batch and links back to its Fleet page ------------------------------


def test_review_of_a_batch_video_links_back_to_the_batchs_fleet_page(fresh, ghost_batch):
    at = review_link(fresh, {"batch": str(ghost_batch), "relpath": "walk_b.mp4"})
    assert any(f"batch output folder `{ghost_batch}`" in c.value for c in at.caption)
    (link,) = [p.proto for p in at.get("page_link") if p.proto.label == "Back to the batch"]
    assert link.page == "fleet" and link.query_string == f"dir={ghost_batch}".replace("/", "%2F")


# 2. Boxes from a file survive a reload ------------------------------------------------------------------------


def test_a_link_names_the_boxes_file_and_a_reload_reads_it_again(fresh, tmp_path, monkeypatch):
    import core.detect

    monkeypatch.setattr(core.detect, "detect_video", lambda *a, **k: pytest.fail("detection ran"))
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    at = review_link(fresh, {"video": str(SAMPLE_VIDEO), "boxes": str(labels), "boxes_format": "mot",
                             "frame": str(DROPPED), "assertions": "ghost"})
    assert not at.error and not at.info, ([e.value for e in at.error], [i.value for i in at.info])
    assert metric(at, "Boxes kept") == str(len(planted_boxes())) and metric(at, "Flicker flags") == "1"
    assert at.session_state["frame"] == DROPPED and at.session_state["assertions"] == ["ghost"]
    link = url(at)
    assert (link["boxes"], link["boxes_format"], link["assertions"]) == (str(labels), "mot", "ghost")
    assert not {"weights", "conf", "device", "boxes_uploaded"} & set(link)  # no detector pretends to have made them
    assert any(f"Boxes read from `{labels}` (mot)" in c.value for c in at.caption)

    labels.write_text(mot_text() + "51,3,300,300,40,80,1,-1,-1,-1\n")  # the file changed: its boxes now
    reloaded = review_link(fresh, link)
    assert not reloaded.error and metric(reloaded, "Boxes kept") == str(len(planted_boxes()) + 1)
    assert reloaded.session_state["review"].detection_id != at.session_state["review"].detection_id


def test_a_hostile_or_forbidden_boxes_file_in_a_link_is_one_line(fresh, tmp_path, monkeypatch):
    hostile = json.loads(coco_bytes())
    hostile["images"][0]["file_name"] = "../../" + hostile["images"][0]["file_name"]
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps(hostile))
    cases = [({"boxes": str(evil)}, "climbs out"),
             ({"boxes": str(evil), "boxes_format": "pickle"}, "the boxes format in this link is not one of"),
             ({"boxes": "/dev/zero", "boxes_format": "mot"}, "not a regular file")]
    for params, message in cases:
        at = review_link(fresh, {"video": str(SAMPLE_VIDEO), **params})
        (error,) = at.error
        assert error.value.startswith("Cannot reopen the review in this link: ") and message in error.value, error.value
        assert "\n" not in error.value and at.session_state["review"].detections is None
    monkeypatch.setenv("FLICKER_ROOTS", str(SAMPLE_VIDEO.parent))
    at = review_link(fresh, {"video": str(SAMPLE_VIDEO), "boxes": str(tmp_path / "gt.txt"), "boxes_format": "mot"})
    (error,) = at.error
    assert "outside the folders this app may use" in error.value and at.session_state["review"].detections is None


def test_uploaded_boxes_are_not_pretended_in_the_url_and_a_reload_says_to_load_them_again(app, fresh):
    click(app, "Load the sample")
    app.file_uploader(key="boxes_upload").upload("predictions.json", coco_bytes(), "application/json")
    app.run()
    click(app, "Use these boxes")
    app.switch_page("pages/review.py")
    app.run()
    assert metric(app, "Boxes kept") == str(len(planted_boxes()))
    link = url(app)
    assert link["boxes_uploaded"] == "1" and not {"weights", "conf", "boxes"} & set(link), link
    reloaded = review_link(fresh, link)
    assert not reloaded.error
    assert [i.value for i in reloaded.info][0] == (
        "The boxes of this review were uploaded, and uploads are not kept: upload them again under *Boxes made "
        "elsewhere* on Load & detect.")
    assert reloaded.session_state["review"].detections is None  # the sample is open, no boxes pretended


def test_boxes_given_by_path_on_the_load_page_are_named_in_the_url(app, tmp_path):
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    load_sample_with_boxes(app, labels)
    app.switch_page("pages/review.py")
    app.run()
    assert url(app).get("boxes") == str(labels)


# 3. The schedule weights each assertion field the export declares ---------------------------------------


def schedule_with_fake(at: AppTest, monkeypatch) -> list[dict]:
    """Schedule against the recorded Lightly fake; the strategies of the config it received."""
    from fake_lightly import GOOD_TOKEN, RUN_ID, FakeLightly

    monkeypatch.delenv("LIGHTLY_TOKEN", raising=False)
    fill_schedule_form(at)
    at.text_input(key="lightly_token").set_value(GOOD_TOKEN)
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        click(at, "Schedule Lightly selection")
    assert not at.error and RUN_ID in at.success[-1].value, [e.value for e in at.error]
    return fake.requests[-2]["body"]["config"]["selection"]["strategies"]


def weighted_keys(strategies: list[dict]) -> dict[str, float]:
    return {s["input"]["key"]: s["strategy"]["strength"] for s in strategies
            if s["input"]["type"] == "METADATA" and s["strategy"]["type"] == "WEIGHTS"}


def test_a_batch_exported_with_ghost_is_scheduled_with_a_ghost_strategy(fresh, ghost_batch, monkeypatch):
    at = fresh("pages/export.py", {"dir": str(ghost_batch)})
    assert any("Per-frame metadata in this export: `flickering`, `ghost`; below, a strength for ghost." in c.value
               for c in at.caption), [c.value for c in at.caption]
    assert {s.key for s in at.slider} >= {"ghost_strength"} and "class_flip_strength" not in {s.key for s in at.slider}
    at.slider(key="ghost_strength").set_value(2.5)
    assert weighted_keys(schedule_with_fake(at, monkeypatch)) == {"flickering": 1.0, "ghost": 2.5}


def test_one_videos_export_is_scheduled_with_ghost_exactly_when_it_holds_ghost(fresh, tmp_path, monkeypatch):
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    at = review_link(fresh, {"video": str(SAMPLE_VIDEO), "boxes": str(labels), "boxes_format": "mot"})
    export_from_app(at, tmp_path / "export")
    assert any("Per-frame metadata in this export: `flickering` (export with ghost" in c.value for c in at.caption)
    assert "ghost_strength" not in {s.key for s in at.slider}
    assert weighted_keys(schedule_with_fake(at, monkeypatch)) == {"flickering": 1.0}

    at.switch_page("pages/review.py")
    at.run()
    at.pills(key="assertions").set_value(["ghost"]).run()
    export_from_app(at, tmp_path / "export")  # the assertions on Review are the export's fields
    metadata = json.loads((tmp_path / "export" / ".lightly" / "metadata" / "vtest-040-avi.json").read_text())
    assert metadata["metadata"]["ghost"] == 1.0  # the planted one-frame box
    assert "ghost_strength" in {s.key for s in at.slider}
    assert weighted_keys(schedule_with_fake(at, monkeypatch)) == {"flickering": 1.0, "ghost": 1.0}


def test_load_opened_after_a_batch_review_whose_classes_are_names_keeps_them(fresh, tmp_path):
    """The Load page's model panel opens on the review's detector; a batch's recorded classes are as its
    --classes gave them (names or ids), and a name went through int(): a ValueError traceback on Load."""
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "walk.mp4", sample_frames(20, start=10))
    out = tmp_path / "out"
    run_batch(BatchConfig((str(videos),), RunConfig(out=out, detector=DetectorSpec(classes=("person",),
                                                                                   cache_dir=tmp_path / "cache"))))
    at = review_link(fresh, {"batch": str(out), "relpath": "walk.mp4"})
    at.switch_page("pages/load.py")
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key="classes").value == ["person"]
