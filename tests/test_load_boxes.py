"""The Load page takes boxes made elsewhere beside the video (issue 22): a COCO file uploaded as
predictions and a MOT file given by path as labels, on the bundled sample, are reviewed without
any detector run; the labels' suspicious frames are listed and offered as CSV; a hostile file is
one red line and nothing of it is kept."""
import json

import numpy as np

from core.lightly.datasource import frame_name
from core.words import markdown_literal
from test_app import click, export_from_app, metric

TRACK = 60  # frames 0..59 of the sample: one walker-sized box moving 2 px a frame
DROPPED, GHOST = 20, 40  # the box is missing on frame 20; a one-frame box stands elsewhere on frame 40


def planted_boxes() -> list[tuple[int, list[float]]]:
    """(frame, xyxy) rows: a track with one frame missing, and a one-frame ghost."""
    rows = [(f, [100.0 + 2 * f, 100.0, 160.0 + 2 * f, 260.0]) for f in range(TRACK) if f != DROPPED]
    return rows + [(GHOST, [600.0, 400.0, 650.0, 500.0])]


def coco_bytes() -> bytes:
    rows = planted_boxes()
    frames = sorted({f for f, _ in rows})
    images = [{"id": k + 1, "file_name": frame_name("vtest.avi", f, 795, ".png"), "width": 768, "height": 576}
              for k, f in enumerate(frames)]
    image_of = {f: k + 1 for k, f in enumerate(frames)}
    annotations = [{"id": k + 1, "image_id": image_of[f], "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0), "iscrowd": 0} for k, (f, (x0, y0, x1, y1)) in enumerate(rows)]
    return json.dumps({"images": images, "categories": [{"id": 1, "name": "person"}], "annotations": annotations}).encode()


def mot_text() -> str:
    rows = planted_boxes()
    return "".join(f"{f + 1},{1 if f != GHOST or x0 < 500 else 2},{x0},{y0},{x1 - x0},{y1 - y0},1,-1,-1,-1\n"
                   for f, (x0, y0, x1, y1) in rows)


def load_sample(app):
    click(app, "Load the sample")
    assert metric(app, "Frames") == "795"


def use_boxes_path(app, path, as_labels: bool = False, fmt: str | None = None) -> None:
    """Boxes made elsewhere, from a path on this machine: as predictions to review, or as labels to check."""
    app.segmented_control(key="boxes_origin").set_value("Local path")
    if as_labels:
        app.radio(key="boxes_purpose").set_value("Labels: check them")
    if fmt is not None:
        app.selectbox(key="boxes_format").set_value(fmt)
    app.run()
    app.text_input(key="boxes_path").input(str(path))
    click(app, "Use these boxes")


def test_a_coco_upload_and_a_mot_path_are_reviewed_without_a_detector(app, tmp_path):
    load_sample(app)
    app.file_uploader(key="boxes_upload").upload("predictions.json", coco_bytes(), "application/json")
    app.run()
    click(app, "Use these boxes")
    assert not app.error, [e.value for e in app.error]
    assert any(f"Reviewing {len(planted_boxes())} boxes of predictions.json (coco)" in s.value for s in app.success)
    assert not list((tmp_path / "data").rglob("predictions.json"))  # read from a temporary copy, nothing kept
    app.switch_page("pages/review.py")
    app.run()
    assert not app.exception
    assert metric(app, "Boxes kept") == str(len(planted_boxes()))
    assert metric(app, "Flagged frames") == "1" and metric(app, "Imputed boxes") == "1"  # the dropped frame, only

    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    app.switch_page("pages/load.py")
    app.run()
    assert any("boxes of predictions.json" in s.value for s in app.success)  # still what the review shows
    use_boxes_path(app, labels, as_labels=True)
    assert not app.error, [e.value for e in app.error]
    (table,) = [d.value for d in app.dataframe]
    listed = set(zip(table["frame"].tolist(), table["assertion"].tolist()))
    assert listed == {(DROPPED, "flicker"), (GHOST, "ghost")}
    assert any("1 flicker frame, 1 ghost frame" in m.value for m in app.markdown)
    assert [b for b in app.get("download_button") if b.proto.label == "Download as CSV"]
    app.switch_page("pages/review.py")
    app.run()
    assert metric(app, "Boxes kept") == str(len(planted_boxes())) and metric(app, "Flicker flags") == "1"
    # Review opens on what the check listed: the ghost too, not flicker alone
    assert app.session_state["assertions"] == ["ghost", "class-flip"]
    (counts,) = [t.value for t in app.table if "Assertion" in t.value]
    assert counts["Assertion"].tolist()[:2] == ["Flicker", "Ghost"] and counts["Flagged"].tolist()[1] == "1"


def test_a_hostile_boxes_file_is_one_line_and_the_review_keeps_its_boxes(app, tmp_path):
    load_sample(app)
    named = "good [a](https://e.invalid) ![i](https://e.invalid/i.png).json"  # the name is shown, as typed
    hostile_class = coco_bytes().replace(b'"name": "person"', b'"name": "[free](https://e.invalid)"')
    app.file_uploader(key="boxes_upload").upload(named, hostile_class, "application/json")
    app.run()
    click(app, "Use these boxes")
    (said,) = [s.value for s in app.success if "Reviewing" in s.value]
    assert said == markdown_literal(f"Reviewing {len(planted_boxes())} boxes of {named} (coco) on {TRACK - 1} of 795 frames; "
                                    "classes: [free](https://e.invalid)")
    assert "](" not in said.replace("\\](", "")  # no link or image syntax survives
    app.file_uploader(key="boxes_upload").upload("good.json", coco_bytes(), "application/json")
    app.run()
    click(app, "Use these boxes")
    hostile = json.loads(coco_bytes())
    hostile["images"][0]["file_name"] = "../../" + hostile["images"][0]["file_name"]
    app.file_uploader(key="boxes_upload").upload("../evil.json", json.dumps(hostile).encode(), "application/json")
    app.run()
    click(app, "Use these boxes")
    (error,) = app.error
    assert "climbs out" in error.value and "\n" not in error.value
    (kept,) = [s.value for s in app.success if "Reviewing" in s.value]  # what the review still shows, said so
    assert kept.startswith("The review keeps the boxes it had. Reviewing") and "good.json" in kept
    app.file_uploader(key="boxes_upload").upload("data.yaml", b"names: [person]\n", "application/yaml")
    app.run()
    click(app, "Use these boxes")
    (error,) = app.error
    assert "a yolo dataset is a folder" in error.value  # not read as a dataset without labels
    app.file_uploader(key="boxes_upload").upload("bad.json", b'{"images": "x"}', "application/json")
    app.run()
    click(app, "Use these boxes")
    (error,) = app.error
    assert "bad.json" in error.value and "flicker-upload" not in error.value  # the server's temporary folder is its own
    crowded = "".join(f"1,{k},{k % 700},{k % 500},20,20,1,-1,-1,-1\n" for k in range(1001)).encode()
    app.file_uploader(key="boxes_upload").upload("crowded.txt", crowded, "text/plain")
    app.run()
    click(app, "Use these boxes")  # refused as it is read: Review (and a link to it) never indexes it
    (error,) = app.error
    assert "crowded.txt" in error.value and "holds 1,001 boxes" in error.value and "\n" not in error.value
    assert not list((tmp_path / "data").rglob("*.json"))
    app.switch_page("pages/review.py")
    app.run()
    assert metric(app, "Boxes kept") == str(len(planted_boxes()))
    np.testing.assert_equal(len(app.error), 0)


def test_a_boxes_path_outside_the_roots_is_refused_unread(app, tmp_path, monkeypatch):
    """Served beyond localhost (FLICKER_ROOTS), a labels path elsewhere is one line that does not
    say whether the file exists, and the review holds no boxes."""
    load_sample(app)
    outside = tmp_path / "elsewhere" / "gt.txt"
    outside.parent.mkdir()
    outside.write_text(mot_text())
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "allowed"))
    app.segmented_control(key="boxes_origin").set_value("Local path")
    app.run()
    for path in (outside, tmp_path / "elsewhere" / "missing.txt"):
        app.text_input(key="boxes_path").input(str(path))
        click(app, "Use these boxes")
        (error,) = app.error
        assert "outside the folders this app may use" in error.value
    assert not any("Reviewing" in s.value for s in app.success)


def reloaded(app, query_params: dict | None = None):
    """The Load page opened in a new session on this page's URL (``query_params``: another), as after F5."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app.py", default_timeout=180)
    at.query_params = dict(app.query_params if query_params is None else query_params)
    at.run()
    assert not at.exception
    return at


def test_a_reload_of_the_load_page_reads_its_boxes_file_again_as_labels(app, tmp_path, monkeypatch):
    """The boxes file and what its boxes are travel in the Load page's URL: a reload (a bookmark, a
    link) reads the file again, checks the labels again and sets the panel as it was; it dropped
    the file and showed the model's boxes. The path in the URL is checked as a typed one is."""
    load_sample(app)
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    use_boxes_path(app, labels, as_labels=True, fmt="mot")
    assert app.query_params["boxes"] == str(labels) and app.query_params["boxes_purpose"] == "labels"

    again = reloaded(app)
    assert not again.error, [e.value for e in again.error]
    assert metric(again, "Frames") == "795"
    assert any(f"Reviewing {len(planted_boxes())} boxes of gt.txt (mot)" in s.value for s in again.success)
    (table,) = [d.value for d in again.dataframe]  # the labels checked again
    assert set(zip(table["frame"].tolist(), table["assertion"].tolist())) == {(DROPPED, "flicker"), (GHOST, "ghost")}
    assert again.segmented_control(key="boxes_origin").value == "Local path"
    assert again.radio(key="boxes_purpose").value == "Labels: check them"
    assert again.text_input(key="boxes_path").value == str(labels) and again.selectbox(key="boxes_format").value == "mot"
    assert dict(again.query_params) == dict(app.query_params)
    assert again.button(key="run_detection").proto.type == "secondary"  # the next step is Review, not a run owed
    again.switch_page("pages/review.py")
    again.run()
    assert metric(again, "Boxes kept") == str(len(planted_boxes())) and metric(again, "Flicker flags") == "1"
    assert again.session_state["assertions"] == ["ghost", "class-flip"]  # what the check lists, as on the first read

    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "allowed"))  # served beyond localhost: the URL's path is refused
    refused = reloaded(app)
    (error,) = refused.error
    assert "outside the folders this app may use" in error.value
    assert not any("Reviewing" in s.value for s in refused.success) and "boxes" not in refused.query_params


def test_a_reload_after_an_upload_says_the_upload_is_gone(app):
    """An uploaded file is not kept: the Load page's URL says boxes were uploaded, and its reload says
    to upload them again (as Review's does) instead of silently showing other boxes."""
    load_sample(app)
    app.file_uploader(key="boxes_upload").upload("predictions.json", coco_bytes(), "application/json")
    app.run()
    click(app, "Use these boxes")
    assert app.query_params["boxes_uploaded"] == "1" and "boxes_purpose" not in app.query_params
    again = reloaded(app)
    assert not again.error and any("uploads are not kept" in i.value for i in again.info)
    assert again.segmented_control(key="boxes_origin").value == "Upload"
    assert again.radio(key="boxes_purpose").value == "Predictions: review their flags"


def test_labels_a_review_link_opened_are_listed_on_the_load_page(app, tmp_path):
    """Review reopened from its URL (a reload, a bookmark) with a labels file: the Load page says which
    boxes are reviewed and lists the labels' suspicious frames; it said nothing, its panel open and empty."""
    from test_app import reopen_review

    load_sample(app)
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    use_boxes_path(app, labels, as_labels=True)
    app.switch_page("pages/review.py")
    app.run()
    review = reopen_review(app.query_params)
    review.switch_page("pages/load.py")
    review.run()
    assert not review.exception and not review.error, [e.value for e in review.error]
    assert any(f"Reviewing {len(planted_boxes())} boxes of gt.txt (mot)" in s.value for s in review.success)
    (table,) = [d.value for d in review.dataframe]
    assert set(zip(table["frame"].tolist(), table["assertion"].tolist())) == {(DROPPED, "flicker"), (GHOST, "ghost")}
    # the panel opens on that file, not on an empty upload of predictions
    assert review.segmented_control(key="boxes_origin").value == "Local path"
    assert review.radio(key="boxes_purpose").value == "Labels: check them"
    assert review.text_input(key="boxes_path").value == str(labels) and review.selectbox(key="boxes_format").value == "mot"


def test_the_export_page_counts_one_flagged_frame_in_the_singular(app, tmp_path):
    """The labels flag one frame: the Export page read "1 flagged frames at IoU tracking ...", and so did its export."""
    load_sample(app)
    labels = tmp_path / "gt.txt"
    labels.write_text(mot_text())
    use_boxes_path(app, labels)
    app.switch_page("pages/export.py")
    app.run()
    assert not app.exception
    assert any(c.value.startswith("vtest.avi: 1 flagged frame at IoU tracking") for c in app.caption), [c.value for c in app.caption]
    export_from_app(app, tmp_path / "export")
    (done,) = [s.value for s in app.success if s.value.startswith("Exported to")]
    assert "795 frames, 60 boxes, 1 flagged frame (every rule" in done, done
