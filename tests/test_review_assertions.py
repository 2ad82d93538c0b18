"""Ghost and class flip in the app: the choice on the Review page, their counts, lanes and verdicts,
and precision per assertion from the verdicts given on each."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CHROMEDRIVER, CHROMIUM
from core.assertion_verdicts import precision_of, precision_per_assertion
from core.assertions import NeighbourIndex
from core.verdicts import VerdictStore
from test_app import load_sample_with_boxes, metric, viewer_data


def test_precision_per_assertion_counts_only_the_verdicts_on_that_assertions_flags(walk_hog, tmp_path):
    """Real HOG boxes on 20 frames of the sample: ghost's flags at IoU 0.8 from its index; verdicts
    on ghost, on flicker and on an unflagged frame each count only where they belong."""
    info, detections = walk_hog
    ghost = NeighbourIndex.from_detections(detections).ghost_flags(0.8)
    flagged, clean = np.flatnonzero(ghost).tolist(), np.flatnonzero(~ghost).tolist()
    assert len(flagged) >= 5, "HOG boxes on a crowd: several one-frame boxes"
    store, key = VerdictStore(tmp_path / "v.sqlite"), info.fingerprint
    for frame in flagged[:3]:
        store.set(key, frame, "miss", assertion="ghost")
    store.set(key, flagged[3], "false_alarm", assertion="ghost")
    store.set(key, flagged[4], "unsure", assertion="ghost")
    store.set(key, clean[0], "false_alarm", assertion="ghost")  # a frame ghost does not flag: no part of its precision
    store.set(key, flagged[0], "false_alarm")  # flicker's verdict on the same frame: not ghost's
    flicker = np.zeros(detections.n_frames, bool)
    flicker[flagged[0]] = True
    by_name = {p.assertion: p for p in precision_per_assertion(store, key, {"flicker": flicker, "ghost": ghost})}
    assert list(by_name) == ["flicker", "ghost"]
    shown = by_name["ghost"]
    assert (shown.flagged, shown.right, shown.wrong, shown.unsure, shown.judged) == (len(flagged), 3, 1, 1, 4)
    assert shown.precision == 0.75 and 0.3 < shown.low < 0.75 < shown.high < 1.0
    assert (by_name["flicker"].right, by_name["flicker"].wrong, by_name["flicker"].precision) == (0, 1, 0.0)


def test_precision_without_verdicts_is_unknown_and_box_verdicts_count_for_flicker():
    flags = np.array([False, True, True, False])
    nothing = precision_of("class-flip", flags, {})
    assert nothing.precision is None and (nothing.low, nothing.high) == (0.0, 1.0) and nothing.flagged == 2
    from_boxes = precision_of("flicker", flags, {1: True, 2: True})
    assert from_boxes.precision == 1.0 and from_boxes.high == 1.0 and from_boxes.low > 0.4


FIRST = 10  # walk_hog's frames are the sample's 10..29
TRACK_IOU = 0.5  # the tracking IoU the planted flip is matched at


BOTH = 15  # on the sample's frame 25 a planted walker is missed (flicker) and a planted box stands alone (ghost)


def planted_rows() -> list[tuple[int, list[float]]]:
    """(frame of walk_hog, xyxy): a walker on the grass, 2 px a frame, missed on frame BOTH, and a
    box on frame BOTH that no other frame has, away from everyone."""
    walker = [(f, [20.0 + 2 * f, 380.0, 80.0 + 2 * f, 540.0]) for f in range(20) if f != BOTH]
    return walker + [(BOTH, [330.0, 480.0, 380.0, 560.0])]


def sample_predictions(walk_hog, folder) -> tuple[Path, int]:
    """The HOG boxes of the sample's frames 10..29 as a COCO predictions file for the sample, every
    box a person but one bicycle: the box of frame 20 that its neighbours overlap best (its class
    flips there); and :func:`planted_rows`. Returns the file and the flipped frame."""
    from core.lightly.datasource import frame_name

    _, detections = walk_hog
    index = NeighbourIndex.from_detections(detections)
    prev_next = [(min(_best(detections, row, -1), _best(detections, row, 1)), row)
                 for row in np.flatnonzero(detections.frame == 10)]
    overlap, flipped_row = max(prev_next)
    assert overlap >= TRACK_IOU and index.box_ghost[flipped_row] >= TRACK_IOU, "a steady walker to flip"
    frames = range(detections.n_frames)
    images = [{"id": f + 1, "file_name": frame_name("vtest.avi", FIRST + f, 795, ".png"), "width": 768, "height": 576}
              for f in frames]
    annotations = [{"id": row + 1, "image_id": int(f) + 1, "category_id": 2 if row == flipped_row else 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)}
                   for row, (f, (x0, y0, x1, y1), score) in enumerate(zip(detections.frame.tolist(),
                                                                          detections.xyxy.tolist(),
                                                                          detections.score.tolist()))]
    annotations += [{"id": len(annotations) + k + 1, "image_id": f + 1, "category_id": 1,
                     "bbox": [x0, y0, x1 - x0, y1 - y0], "score": 0.9} for k, (f, (x0, y0, x1, y1)) in enumerate(planted_rows())]
    path = folder / "predictions.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}]}))
    return path, FIRST + int(detections.frame[flipped_row])


def _best(detections, row: int, step: int) -> float:
    """The highest IoU of box ``row`` with a box of the frame ``step`` away."""
    from core.detections import box_iou

    other = detections.at(int(detections.frame[row]) + step)
    return float(box_iou(detections.xyxy[row:row + 1], other.xyxy).max()) if len(other.xyxy) else 0.0


def review_sample_boxes(app, walk_hog, folder, one_class: bool = False) -> int:
    """The sample on the Load page with those predictions (``one_class``: the bicycle a person too),
    then the Review page; the flipped frame."""
    path, flipped = sample_predictions(walk_hog, folder)
    if one_class:
        coco = json.loads(path.read_text())
        coco["annotations"] = [{**annotation, "category_id": 1} for annotation in coco["annotations"]]
        path.write_text(json.dumps(coco))
    load_sample_with_boxes(app, path)
    assert not app.error, [e.value for e in app.error]
    app.switch_page("pages/review.py")
    app.run()
    assert not app.exception
    return flipped


def counts(app) -> dict[str, tuple[str, str]]:
    """The Review page's table of assertions: ``{assertion: (flagged, reviewed)}``; {} without one."""
    tables = [t.value for t in app.table if "Assertion" in t.value.columns]
    if not tables:
        return {}
    return {row["Assertion"]: (row["Flagged"], row["Reviewed"]) for _, row in tables[0].iterrows()}


def test_enabling_ghost_and_class_flip_on_the_review_page_counts_them_and_retunes_them(app, walk_hog, tmp_path):
    """HOG boxes of the sample (one class flip planted): both siblings flag frames; their counts
    follow the tracking IoU the way their index says, and flicker's do not move."""
    flipped = review_sample_boxes(app, walk_hog, tmp_path)
    assert counts(app) == {}, "flicker alone by default, as --assertions"
    flicker_flagged = metric(app, "Flagged frames")
    app.pills(key="assertions").set_value(["ghost", "class-flip"])
    app.run()
    assert not app.exception, app.exception
    assert not [c for c in app.caption if c.value.startswith("Class flip cannot fire")], "two classes: it can"
    # flicker's flags do not change when others are added, and say they are flicker's beside the table's Any
    assert metric(app, "Flicker flags") == flicker_flagged and "Flagged frames" not in [m.label for m in app.metric]
    index = NeighbourIndex.from_detections(app.session_state["review"].detections)
    for iou in (0.8, TRACK_IOU):
        app.slider(key="iou_track").set_value(iou)
        app.run()
        ghost, flip = index.ghost_flags(iou), index.class_flip_flags(iou)
        flicker = np.array([c == "1" for c in viewer_data(app)["view"]["flags"]])
        shown = counts(app)
        assert shown["Ghost"] == (f"{int(ghost.sum()):,}", f"0 / {int(ghost.sum())}") and ghost.sum() > 3
        assert shown["Class flip"] == (f"{int(flip.sum()):,}", f"0 / {int(flip.sum())}")
        assert shown["Flicker"] == (metric(app, "Flicker flags"), f"0 / {int(flicker.sum())}")
        assert shown["Any"][0] == f"{int((ghost | flip | flicker).sum()):,}"
        flooding = [c.value for c in app.caption if c.value.startswith("Ghost flags ")]
        # a looser tracking IoU matches more boxes to a neighbour: fewer ghosts (raising it, as for flicker, adds some)
        assert flooding == ([f"Ghost flags {ghost.mean():.0%} of the frames: lower IoU tracking or raise the minimum score "
                             "until it singles frames out."] if ghost.mean() > 0.25 else []), (iou, ghost.mean())
        assert index.ghost_flags(iou - 0.1).sum() <= ghost.sum() <= index.ghost_flags(min(iou + 0.1, 1.0)).sum()
    assert np.flatnonzero(flip).tolist() == [flipped]
    app.switch_page("pages/export.py")  # exported in the metadata beside flicker: the page says their counts too
    app.run()
    assert not app.exception, app.exception
    assert any(c.value.endswith(f"frames flagged by the other assertions: ghost {int(ghost.sum()):,}, class flip 1.")
               for c in app.caption), [c.value for c in app.caption]


def test_a_ghost_lane_that_floods_says_to_lower_the_tracking_iou_and_that_empties_it(app, tmp_path):
    """One box a frame on the whole sample, 12 px a frame along 60 px: neighbours overlap at IoU 2/3, so
    at 0.8 every box is a ghost. A stricter tracking IoU matches fewer boxes: the hint says to lower it
    (it said "raise", as for flicker), and following it empties the lane."""
    from core.lightly.datasource import frame_name

    n = 795
    images = [{"id": f + 1, "file_name": frame_name("vtest.avi", f, n, ".png"), "width": 768, "height": 576} for f in range(n)]
    boxes = [{"id": f + 1, "image_id": f + 1, "category_id": 1, "bbox": [20 + (12 * f) % 600, 300, 60, 120], "score": 0.9}
             for f in range(n)]
    path = tmp_path / "steady.json"
    path.write_text(json.dumps({"images": images, "annotations": boxes, "categories": [{"id": 1, "name": "person"}]}))
    load_sample_with_boxes(app, path)
    app.switch_page("pages/review.py")
    app.run()
    app.pills(key="assertions").set_value(["ghost"])
    app.run()
    assert not app.exception, app.exception
    hints = [c.value for c in app.caption if c.value.startswith("Ghost flags ")]
    assert hints == ["Ghost flags 100% of the frames: lower IoU tracking or raise the minimum score until it singles "
                     "frames out."], hints
    app.slider(key="iou_track").set_value(0.6)
    app.run()
    assert counts(app)["Ghost"][0] == "0" and not [c for c in app.caption if c.value.startswith("Ghost flags ")]


def test_the_viewer_gets_a_lane_and_the_firing_boxes_per_assertion_and_verdicts_answer_one(app, walk_hog, tmp_path):
    """What the page sends the viewer: ghost's and class flip's flags beside flicker's, the ghost
    boxes and the flipped box with both its classes; a verdict from the viewer is stored under the
    assertion it answers, one for an assertion that is not enabled is dropped."""
    from test_app import viewer_sends

    flipped = review_sample_boxes(app, walk_hog, tmp_path)
    assert viewer_data(app)["view"]["siblings"] == [], "flicker's lane alone by default"
    app.pills(key="assertions").set_value(["ghost", "class-flip"])
    app.slider(key="iou_track").set_value(TRACK_IOU)
    app.run()
    view = viewer_data(app)["view"]
    kept = app.session_state["review"].detections
    index = NeighbourIndex.from_detections(kept)
    ghost, flip = index.ghost_flags(TRACK_IOU), index.class_flip_flags(TRACK_IOU)
    assert [lane["name"] for lane in view["siblings"]] == ["ghost", "class-flip"]
    assert view["siblings"][0]["flags"] == "".join("1" if f else "0" for f in ghost)
    assert view["siblings"][1]["flags"] == "".join("1" if f else "0" for f in flip)
    assert list(view["assertions"]) == ["flicker", "ghost", "class-flip"]
    assert all(len(entry["color"]) == 3 and entry["label"] for entry in view["assertions"].values())
    served = app.session_state["review"].detections  # the boxes the viewer fetches: ghosts and flips are their rows
    assert np.array_equal(served.xyxy[view["ghosts"]], kept.xyxy[index.ghost_boxes(TRACK_IOU)])
    ((row, neighbours),) = view["flips"]
    names = {int(k): v for k, v in view["names"].items()}
    assert served.frame[row] == flipped and (names[int(served.cls[row])], names[neighbours]) == ("bicycle", "person")
    floor = round(float(np.median(served.score)), 2)  # half the boxes left out: kept rows are no longer served rows
    app.slider(key="min_score").set_value(floor)
    app.run()
    above = served.above(floor)
    assert 0 < len(above) < len(served)
    assert np.array_equal(served.xyxy[viewer_data(app)["view"]["ghosts"]],
                          above.xyxy[NeighbourIndex.from_detections(above).ghost_boxes(TRACK_IOU)])
    app.slider(key="min_score").set_value(0.0)
    app.run()

    frame = int(np.flatnonzero(ghost)[0])
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": frame, "verdict": "miss", "assertion": "ghost"}})
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": flipped, "verdict": "false_alarm",
                                                             "assertion": "class-flip"}})
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    key = app.session_state["review"].video.info.fingerprint
    assert store.by_assertion(key) == {"flicker": {}, "ghost": {frame: "miss"}, "class-flip": {flipped: "false_alarm"}}
    assert counts(app)["Ghost"][1] == f"1 / {int(ghost.sum())}"
    assert viewer_data(app)["view"]["siblings"][0]["verdicts"] == {str(frame): "miss"}
    app.pills(key="assertions").set_value(["ghost"])
    app.run()
    viewer_sends(app, trigger={"event": "verdict", "value": {"frame": flipped, "verdict": "miss", "assertion": "class-flip"}})
    assert store.all(key, "class-flip") == {flipped: "false_alarm"}, "class flip is off: its verdict is not taken"


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_in_chromium_enabling_ghost_on_the_sample_draws_its_lane_and_j_k_go_to_ghost_frames(walk_hog, tmp_path,
                                                                                          shared_cache, browser):
    """The sample with HOG boxes of its frames 10..29 (a predictions file by path on the Load page):
    ghost enabled on Review adds its lane (its key counts its frames, its row is drawn in its colour
    at a ghost frame), K / K / J with J / K following ghost land on the first, second and first
    ghost frames, the frame says ghost fired, and M there is a verdict on ghost."""
    from selenium.webdriver.common.action_chains import ActionChains

    from conftest import SAMPLE_VIDEO, click_when, streamlit_server, wait_for
    from core.label_formats import import_boxes
    from core.video import probe

    from core.settings import FlickerSettings

    path, _ = sample_predictions(walk_hog, tmp_path)
    info = probe(SAMPLE_VIDEO)
    boxes = import_boxes(path, info, "vtest.avi").detections
    ghosts = np.flatnonzero(NeighbourIndex.from_detections(boxes).ghost_flags(0.8)).tolist()
    both = FIRST + BOTH
    assert len(ghosts) >= 3 and both in ghosts and FlickerSettings().evaluate(boxes).flag_array[both]

    def press(keys: str) -> None:
        browser.execute_script("document.activeElement && document.activeElement.blur()")
        ActionChains(browser).send_keys(keys).perform()

    def viewer(name: str) -> str | None:
        return browser.find_element("css selector", ".fv-root").get_attribute(f"data-{name}")

    def visible(selector: str, text: str, within=None):
        return next(e for e in (within or browser).find_elements("css selector", selector)
                    if e.is_displayed() and text in e.text)

    with streamlit_server(tmp_path, shared_cache, "--sample") as url:
        browser.get(url + "/")
        wait_for(browser, lambda: "795" in browser.find_element("tag name", "body").text, 60, "the sample to load")
        # each element found again where it is used: a rerun (a click, a settled frame) may have drawn it anew
        panel = lambda: visible("details", "Boxes made elsewhere")  # noqa: E731
        click_when(browser, lambda: visible("summary", "Boxes made elsewhere"), 30, "the boxes panel's summary")
        click_when(browser, lambda: visible("button", "Local path", panel()), 30, "the boxes panel")
        box = wait_for(browser, lambda: panel().find_element("css selector", 'input[placeholder="/data/drive/gt/gt.txt"]'),
                       30, "the path box")
        box.send_keys(str(path))
        click_when(browser, lambda: visible("button", "Use these boxes", panel()), 30, "Use these boxes")
        wait_for(browser, lambda: visible('[data-testid="stSidebarNav"] a', "Review"), 60, "the boxes to be used")
        wait_for(browser, lambda: "boxes of predictions.json" in browser.find_element("tag name", "body").text, 60,
                 "the boxes to be read")
        click_when(browser, lambda: visible('[data-testid="stSidebarNav"] a', "Review"), 30, "the link to Review")
        wait_for(browser, lambda: viewer("frame") == "0", 60, "the viewer on frame 0")
        assert viewer("lanes") == "flicker", "flicker alone by default"
        # the side panels come once the viewer's first frame is on screen (pages/review.py, workspace)
        click_when(browser, lambda: visible("button", "Ghost"), 60, "the Ghost button")
        wait_for(browser, lambda: viewer("lanes") == "flicker,ghost", 60, "the ghost lane")
        # the lanes' keys are made anew with each of the viewer's data: read and clicked each at once, found again
        key = wait_for(browser, lambda: visible("button.fv-lane-key", "Ghost").text, 10, "the ghost lane's key")
        assert key == f"Ghost {len(ghosts)}"
        click_when(browser, lambda: visible("button.fv-lane-key", "Ghost"), 10, "the ghost lane's key")
        assert viewer("target") == "ghost"
        row_y = 80 + 14 + 7  # the graph, flicker's lane, then the middle of ghost's
        teal = lambda: browser.execute_script(  # noqa: E731
            "const c = document.querySelector('.fv-timeline'), dpr = window.devicePixelRatio || 1;"
            "const x = Math.floor((arguments[0] + 0.5) / 795 * c.width), y = Math.floor(arguments[1] * dpr);"
            "return Array.from(c.getContext('2d').getImageData(x - 1, y, 3, 1).data);", ghosts[1], row_y)
        # the timeline grows by the new lane and is drawn again at its next render: its bar waited for, not read at once
        wait_for(browser, lambda: (pixel := teal()) and any(
            abs(pixel[i] - 0) < 40 and abs(pixel[i + 1] - 160) < 40 and abs(pixel[i + 2] - 190) < 40 for i in (0, 4, 8)), 10,
            f"the ghost lane's bar at frame {ghosts[1]} (teal)")
        for keys, frame in (("k", ghosts[0]), ("k", ghosts[1]), ("j", ghosts[0])):
            press(keys)
            wait_for(browser, lambda: viewer("frame") == str(frame), 30, f"{keys.upper()} to ghost frame {frame}")
        assert "ghost" in viewer("firing").split(",")
        press("m")
        store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
        wait_for(browser, lambda: store.all(info.fingerprint, "ghost") == {ghosts[0]: "miss"}, 30, "the ghost verdict")
        assert store.all(info.fingerprint) == {}, "not a verdict on flicker"

        # A frame both flag: the verdict answers the lane J / K follow, or the chip clicked.
        jump = browser.find_element("css selector", 'input[aria-label="Jump to frame"]')
        jump.send_keys(f"{both}\n")
        wait_for(browser, lambda: viewer("frame") == str(both), 30, f"a jump to frame {both}")
        assert viewer("firing") == "flicker,ghost"
        verdict_box = browser.find_element("css selector", ".fv-verdict")
        assert verdict_box.get_attribute("data-assertion") == "ghost" and "True ghost" in verdict_box.text
        click_when(browser, lambda: browser.find_element("css selector", '.fv-chip[data-lane="flicker"]'), 10, "the flicker chip")
        wait_for(browser, lambda: verdict_box.get_attribute("data-assertion") == "flicker", 10, "the flicker chip")
        assert "True miss" in verdict_box.text
        press("f")
        wait_for(browser, lambda: store.all(info.fingerprint) == {both: "false_alarm"}, 30, "the flicker verdict")
        assert store.all(info.fingerprint, "ghost") == {ghosts[0]: "miss"}


def test_class_flip_on_boxes_of_one_class_says_it_cannot_fire(app, walk_hog, tmp_path):
    """A one-class model (the built-in people detector) gave class flip a lane and a count of 0 that
    could never be anything else, with no word why."""
    cannot = lambda: [c.value for c in app.caption if c.value.startswith("Class flip cannot fire")]  # noqa: E731
    review_sample_boxes(app, walk_hog, tmp_path, one_class=True)
    app.pills(key="assertions").set_value(["ghost", "class-flip"])
    app.run()
    assert not app.exception and cannot() and counts(app)["Class flip"][0] == "0"
    app.pills(key="assertions").set_value(["ghost"])
    app.run()
    assert not cannot()


def test_local_selection_offers_a_strength_per_enabled_sibling(app, walk_hog, tmp_path):
    review_sample_boxes(app, walk_hog, tmp_path)
    labels = lambda: [s.label for s in app.slider]  # noqa: E731
    assert "Ghost strength" not in labels()
    app.pills(key="assertions").set_value(["class-flip"])
    app.run()
    assert "Class-flip strength" in labels() and "Ghost strength" not in labels()
