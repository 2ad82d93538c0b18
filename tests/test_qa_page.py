"""The Verdicts & thresholds page under AppTest: the queue it sends the browser, verdicts through the
queue's route, undo, estimates, the reviewed list with notes, pre-labels, the page in the URL."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from conftest import ROOT
from core.flicker import FlickerIndex
from core.qa import ReviewPlan, review_plan, suggest_thresholds
from core.verdicts import VerdictStore
from test_app import click, load_and_detect, load_sample_with_boxes
from ui.verdict_queue import routes


@pytest.fixture
def qa_page(app, tiny_slice):
    """The page on the tiny slice's detections, a plan of 5 frames, annotator "ana"."""
    load_and_detect(app, tiny_slice)
    app.switch_page("pages/qa.py")
    app.run()
    assert not app.exception
    app.number_input(key="qa_plan_size").set_value(5)
    app.text_input(key="annotator").input("ana")
    app.run()
    return app


def queue_data(at) -> dict:
    """What the page sent the queue component."""
    return json.loads(at.get("bidi_component")[0].proto.json)


class Browser:
    """What the queue's JS does, over the queue's real route: the verdict on the first queued frame
    without one, posted to the address the page sent (the page reruns only when asked)."""

    def __init__(self, at):
        self.at, self.http = at, TestClient(Starlette(routes=routes.routes()))

    def give(self, verdict: str, note: str = "") -> int:
        data = queue_data(self.at)
        frame = next(e["frame"] for e in data["queue"] if str(e["frame"]) not in data["verdicts"])
        answer = self.http.post(f"{data['post_url']}/verdict",
                                json={"frame": frame, "verdict": verdict, "note": note, "video": data["video"]["key"]})
        assert answer.status_code == 200, answer.text
        self.at.run()
        return frame

    def undo(self) -> dict:
        data = queue_data(self.at)
        answer = self.http.post(f"{data['post_url']}/undo", json={"video": data["video"]["key"]}).json()
        self.at.run()
        return answer


def reviewed(at) -> tuple[int, int]:
    """Reviewed N / M as the queue shows it: plan frames with a verdict, frames the whole plan holds
    (its second phase comes once the first has its verdicts)."""
    data = queue_data(at)
    planned = [e["frame"] for e in data["queue"] if e["planned"]]
    return sum(str(f) in data["verdicts"] for f in planned), data["planned_total"]


def test_the_queue_gets_the_plan_the_viewers_frame_and_box_urls_and_a_route_for_verdicts(qa_page):
    from ui.viewer import frames

    data = queue_data(qa_page)
    review = qa_page.session_state["review"]
    info = review.video.info
    assert data["video"] == {"key": info.fingerprint, "name": info.path.name, "n": info.frame_count, "width": info.width,
                             "height": info.height}
    assert data["post_url"].startswith(routes.PREFIX) and data["annotator"] == "ana" and data["verdicts"] == {}
    assert 0 < data["planned"] == sum(e["planned"] for e in data["queue"]) <= 5
    for entry in data["queue"]:
        assert 0 <= entry["frame"] < info.frame_count and entry["flagged"] == bool(entry["imputed"])
        assert all(len(box) == 4 for box in entry["imputed"])
    # the frames and boxes come from Review's routes, served for this video now
    served = TestClient(Starlette(routes=frames.routes()))
    frame = data["queue"][0]["frame"]
    jpeg = served.get(f"{data['frames_url']}{frame}.jpg")
    assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
    boxes = served.get(data["boxes_url"]).json()
    rows = np.reshape(boxes["boxes"], (-1, 6))[boxes["offsets"][frame]:boxes["offsets"][frame + 1]]
    kept = rows[rows[:, 4] >= data["min_score"]]
    assert np.allclose(kept[:, :4], review.detections.at(frame).xyxy, atol=0.05) and len(kept)
    assert not [b.label for b in qa_page.button if b.label in ("True miss", "False alarm", "Unsure")], \
        "verdicts go through the queue, not buttons that rerun the page"


def test_verdicts_undo_notes_estimates_and_prelabels(qa_page, tmp_path):
    browser = Browser(qa_page)
    _, planned = reviewed(qa_page)
    first = browser.give("false_alarm")
    assert reviewed(qa_page) == (1, planned)
    assert browser.undo() == {"frame": first, "verdict": None, "judged_since_by": None}
    assert reviewed(qa_page) == (0, planned)
    browser.give("miss", note="a cyclist behind the bus")
    for verdict in ("false_alarm", "miss"):
        browser.give(verdict)
    assert reviewed(qa_page) == (min(3, planned), planned)
    fingerprint = qa_page.session_state["review"].video.info.fingerprint
    store = VerdictStore(tmp_path / "data" / "verdicts.sqlite")
    assert sorted(store.truth(fingerprint).values()) == [False, True, True]
    assert {annotator for _, _, annotator, _, _ in store.records(fingerprint)} == {"ana"}
    assert any("a cyclist behind the bus" in h.proto.body for h in qa_page.get("html"))  # shown in the reviewed list
    assert "Reviewed frames" in [h.value for h in qa_page.subheader]
    # two confirmed misses: estimates at the thresholds in use and at the suggested ones, in one table whose
    # rows are labelled and whose figures carry their 90% intervals (no hover needed, nothing cut to "0.…")
    [table] = [md.value for md in qa_page.markdown if md.value.startswith("| Thresholds | Precision | Recall | F1 |")]
    rows = table.splitlines()[2:]
    assert [row.split("**")[1] for row in rows] == ["Now", "Suggested"] and rows[0].startswith("| **Now** 0.80\u00a0/\u00a00.60 |")
    assert all(re.search(r"\*\*\d\.\d\d\*\* \(\d\.\d\d\u2011\d\.\d\d\)", cell) or cell.strip() == "-"
               for row in rows for cell in row.strip("|").split("|")[1:3])
    preview = [md.value for md in qa_page.markdown if md.value.startswith("The suggested thresholds flag")]
    assert len(preview) == 1 and "90% intervals" in preview[0]  # what the button would do, before it is pressed
    assert any(w.value.startswith("This suggestion rests on 3 verdicts") for w in qa_page.warning)
    assert next(b for b in qa_page.button if b.label == "Use suggested thresholds").proto.type == "secondary"
    suggested = rows[1].split("**")[2].strip(" |").split("\u00a0/\u00a0")
    click(qa_page, "Use suggested thresholds")  # applied despite the warning: one click takes it back
    assert suggested != ["0.80", "0.60"]  # this sample's three verdicts suggest another pair
    assert (qa_page.session_state["iou_track"], qa_page.session_state["iou_assert"]) == tuple(map(float, suggested))
    # once in use, the words say what the thresholds do, not what to do before using them
    assert any(md.value.startswith("The suggested thresholds, in use now, flag") for md in qa_page.markdown)
    assert [w.value for w in qa_page.warning if "verdicts: a rough guide" in w.value] == [
        "This suggestion rests on 3 verdicts: a rough guide. Finish the plan to firm it up."]
    click(qa_page, "Back to 0.80 / 0.60")
    assert (qa_page.session_state["iou_track"], qa_page.session_state["iou_assert"]) == (0.8, 0.6)
    assert not [b for b in qa_page.button if b.label.startswith("Back to")]
    # by default beside the exports in the data folder, never in the folder the app was started from (its checkout)
    assert qa_page.text_input(key="qa_prelabel_out").value == str(tmp_path / "data" / "prelabels" / "tiny")
    qa_page.text_input(key="qa_prelabel_out").input(str(tmp_path / "prelabels"))
    qa_page.run()
    click(qa_page, "Write pre-labels")
    assert any("2 frames" in s.value for s in qa_page.success), [s.value for s in qa_page.success]
    assert json.loads((tmp_path / "prelabels" / "prelabels.json").read_text())


def test_a_suggestion_the_verdicts_have_outrun_is_not_applied(qa_page):
    """Verdicts and undos reach the store without a rerun, so the figures on screen can lag. "Use
    suggested thresholds" pressed on figures from verdicts since undone leaves the thresholds alone
    and says why; pressed again on the redrawn figures, it applies them."""
    browser = Browser(qa_page)
    for verdict in ("miss", "false_alarm", "miss"):
        browser.give(verdict)
    assert [b for b in qa_page.button if b.label == "Use suggested thresholds"]
    data = queue_data(qa_page)  # the queue's Z, posted without a rerun: the figures still show three verdicts
    assert browser.http.post(f"{data['post_url']}/undo", json={"video": data["video"]["key"]}).status_code == 200
    click(qa_page, "Use suggested thresholds")
    assert (qa_page.session_state["iou_track"], qa_page.session_state["iou_assert"]) == (0.8, 0.6)
    assert any(i.value.startswith("Verdicts were given or undone since those figures were drawn") for i in qa_page.info)
    [table] = [md.value for md in qa_page.markdown if md.value.startswith("| Thresholds |")]
    suggested = table.splitlines()[3].split("**")[2].strip(" |").split("\u00a0/\u00a0")
    assert suggested != ["0.80", "0.60"]
    click(qa_page, "Use suggested thresholds")  # the figures now rest on the two verdicts left
    assert (qa_page.session_state["iou_track"], qa_page.session_state["iou_assert"]) == tuple(map(float, suggested))
    assert not any(i.value.startswith("Verdicts were given or undone") for i in qa_page.info)
    # outrun again, by an undo that leaves no confirmed miss: the redrawn figures are no estimate, and the
    # notice shows on them, once, not on some later run
    click(qa_page, "Back to 0.80 / 0.60")
    data = queue_data(qa_page)
    for _ in range(2):  # the two verdicts left
        assert browser.http.post(f"{data['post_url']}/undo", json={"video": data["video"]["key"]}).status_code == 200
    click(qa_page, "Use suggested thresholds")
    assert (qa_page.session_state["iou_track"], qa_page.session_state["iou_assert"]) == (0.8, 0.6)
    assert any(i.value.startswith("Verdicts were given or undone") for i in qa_page.info)
    assert not [b for b in qa_page.button if b.label == "Use suggested thresholds"], "no verdicts: no estimate"
    browser.give("false_alarm")
    assert not any(i.value.startswith("Verdicts were given or undone") for i in qa_page.info)


def test_when_the_plan_is_done_the_page_says_so_and_what_to_do_next(qa_page):
    browser, (_, planned) = Browser(qa_page), reviewed(qa_page)
    in_queue = lambda: sum(e["planned"] for e in queue_data(qa_page)["queue"])  # noqa: E731
    assert in_queue() == 3 < planned == 5, "the first phase; the second waits for its verdicts"
    for _ in range(planned - 1):
        browser.give("false_alarm" if in_queue() == 5 else "miss")
    assert in_queue() == 5 and queue_data(qa_page)["planned_total"] == 5, "the first phase's verdicts drew the second"
    assert not [s for s in qa_page.success if s.value.startswith("The plan is done")]
    browser.give("miss")
    assert reviewed(qa_page) == (planned, planned)
    [done] = [s.value for s in qa_page.success if s.value.startswith("The plan is done")]
    assert "Check the suggested thresholds" in done and "Frames in the plan" in done and "not counted" in done


def test_a_done_plan_without_a_confirmed_miss_asks_for_a_larger_plan_not_for_more_of_it(qa_page):
    """Every frame of the plan judged nothing missing: no estimate, so no suggestion to check. The
    page said "check the suggested thresholds below" over none, and "review more frames of the plan"
    with none left; it now says to raise the plan's size."""
    browser, (_, planned) = Browser(qa_page), reviewed(qa_page)
    for _ in range(planned):
        browser.give("false_alarm")
    assert reviewed(qa_page) == (planned, planned)
    [done] = [s.value for s in qa_page.success if s.value.startswith("The plan is done")]
    assert "Check the suggested thresholds" not in done and "raise *Frames in the plan*" in done
    [estimate] = [i.value for i in qa_page.info if "keeping the current thresholds" in i.value]
    assert estimate == "No verdict on the plan's frames confirms a miss yet: keeping the current thresholds."


def test_a_new_annotator_is_the_one_the_route_records(qa_page, tmp_path):
    qa_page.text_input(key="annotator").input("ben")
    qa_page.run()
    Browser(qa_page).give("unsure")
    fingerprint = qa_page.session_state["review"].video.info.fingerprint
    records = VerdictStore(tmp_path / "data" / "verdicts.sqlite").records(fingerprint)
    assert [(verdict, annotator) for _, verdict, annotator, _, _ in records] == [("unsure", "ben")]


def test_a_damaged_verdict_database_is_one_line_on_the_page(app, tiny_slice, tmp_path):
    load_and_detect(app, tiny_slice)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "verdicts.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    app.switch_page("pages/qa.py")
    app.run()
    assert not app.exception
    assert any("not a readable verdicts database" in e.value for e in app.error)


def url_of(at) -> dict[str, str]:
    return {key: value[0] if isinstance(value, list) else value for key, value in at.query_params.items()}


def reload(at):
    """The page opened anew on its URL in a new session, as a browser's reload does."""
    from streamlit.testing.v1 import AppTest

    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    reloaded.switch_page("pages/qa.py")
    reloaded.query_params.update(url_of(at))
    reloaded.run()
    assert not reloaded.exception
    return reloaded


def test_a_reload_reopens_the_same_video_queue_and_annotator(qa_page):
    Browser(qa_page).give("false_alarm")
    link = url_of(qa_page)
    assert link["annotator"] == "ana" and link["plan"] == "5"
    reloaded = reload(qa_page)
    assert reloaded.text_input(key="annotator").value == "ana"
    assert reviewed(reloaded)[0] == 1 and queue_data(reloaded)["annotator"] == "ana"


def test_the_way_back_from_suggested_thresholds_survives_a_reload(qa_page):
    """After "Use suggested thresholds", "Back to 0.80 / 0.60" was gone on a reload (the suggested thresholds
    stayed, from the URL): the pair it returns to is in the URL too now, and the button there takes the page back."""
    browser = Browser(qa_page)
    for verdict in ("miss", "false_alarm", "miss"):
        browser.give(verdict)
    click(qa_page, "Use suggested thresholds")
    suggested = (qa_page.session_state["iou_track"], qa_page.session_state["iou_assert"])
    assert suggested != (0.8, 0.6) and [b for b in qa_page.button if b.label == "Back to 0.80 / 0.60"]
    reloaded = reload(qa_page)
    assert (reloaded.session_state["iou_track"], reloaded.session_state["iou_assert"]) == suggested
    click(reloaded, "Back to 0.80 / 0.60")
    assert (reloaded.session_state["iou_track"], reloaded.session_state["iou_assert"]) == (0.8, 0.6)
    assert not [b for b in reloaded.button if b.label.startswith("Back to")]


def test_each_checks_precision_comes_from_the_verdicts_on_its_own_flags(app, walk_hog, tmp_path):
    """HOG boxes on frames 10..29 of the sample (test_review_assertions' file): with ghost turned on
    on Review, the page lists flicker's and ghost's precision, each from the verdicts on its flags."""
    from core.assertions import GHOST, NeighbourIndex
    from test_review_assertions import review_sample_boxes

    review_sample_boxes(app, walk_hog, tmp_path)
    app.switch_page("pages/qa.py")
    app.run()
    assert any(c.value.startswith("Only flicker is checked") for c in app.caption)
    app.switch_page("pages/review.py")
    app.run()
    app.pills(key="assertions").set_value([GHOST])
    app.run()
    app.switch_page("pages/qa.py")
    app.run()
    review = app.session_state["review"]
    ghost = np.flatnonzero(NeighbourIndex.from_detections(review.detections).flags(GHOST, app.session_state["iou_track"]))
    assert len(ghost) >= 2, "HOG boxes on a crowd: one-frame boxes"
    store, key = VerdictStore(tmp_path / "data" / "verdicts.sqlite"), review.video.info.fingerprint
    store.set(key, int(ghost[0]), "miss", assertion=GHOST)
    store.set(key, int(ghost[1]), "false_alarm", assertion=GHOST)
    store.set(key, int(ghost[0]), "false_alarm")  # flicker's verdict on the same frame: not ghost's
    app.run()
    assert not app.exception
    [table] = [md.value for md in app.markdown if md.value.startswith("| Assertion | Flags now | Judged | Precision |")]
    rows = {row.split("|")[1].strip(): [cell.strip() for cell in row.split("|")[2:5]] for row in table.splitlines()[2:]}
    assert list(rows) == ["Flicker", "Ghost"]
    assert rows["Ghost"][:2] == [f"{len(ghost):,}", "2"] and rows["Ghost"][2].startswith("**0.50** (")


def test_verdicts_after_the_plan_are_kept_but_not_estimated_from(qa_page, tmp_path):
    """Frames judged outside the plan (the queue's after it, flagged now and worst first, or any frame on
    Review) are no random sample: their verdicts are stored, but the estimates rest on the plan's, and
    the caption says how many are left out."""
    browser, (_, planned) = Browser(qa_page), reviewed(qa_page)
    while reviewed(qa_page)[0] < planned:
        browser.give("miss")
    table = lambda: next(md.value for md in qa_page.markdown if md.value.startswith("| Thresholds"))  # noqa: E731
    caption = lambda: next(c.value for c in qa_page.caption if c.value.startswith("Estimated from"))  # noqa: E731
    before = table()
    assert caption().startswith(f"Estimated from {planned} verdicts given where a review plan") and "not counted" not in caption()
    data = queue_data(qa_page)
    in_plan = {e["frame"] for e in data["queue"] if e["planned"]}
    index = FlickerIndex.from_detections(qa_page.session_state["review"].detections)
    # a seed whose plan's first phase (drawn without verdicts) holds a frame this plan does not
    other_seed, beyond = next((seed, min(extra)) for seed in range(1, 100)
                              if (extra := set(review_plan(index, planned, seed, {})) - in_plan))  # judged now, by hand
    answer = browser.http.post(f"{data['post_url']}/verdict",
                               json={"frame": beyond, "verdict": "false_alarm", "note": "", "video": data["video"]["key"]})
    assert answer.status_code == 200
    qa_page.run()
    fingerprint = qa_page.session_state["review"].video.info.fingerprint
    assert VerdictStore(tmp_path / "data" / "verdicts.sqlite").truth(fingerprint)[beyond] is False  # stored
    assert table() == before
    assert "1 verdict given outside the plan (on Review, or after the plan) is kept but not counted" in caption()
    [line] = [md.value for md in qa_page.markdown if md.value.startswith(f"frame **{beyond}** ")]
    flagged = index.evaluate(0.8, 0.6).flag_array[beyond]
    assert line.endswith("false alarm · flagged now" if flagged else "nothing missing · not flagged now"), line
    # another plan (seed): the verdicts given under the first still count (the store remembers every plan's frames
    # and since when), and the one given by hand does not, though the new plan draws its frame
    first_plan = {e["frame"] for e in queue_data(qa_page)["queue"] if e["planned"]}
    qa_page.number_input(key="qa_seed").set_value(other_seed)
    qa_page.run()
    assert {e["frame"] for e in queue_data(qa_page)["queue"] if e["planned"]} != first_plan
    assert caption().startswith(f"Estimated from {planned} verdicts given where a review plan"), caption()
    assert "1 verdict given outside the plan" in caption()
    # ...so the queue asks for it again, saying what it was judged before, and once answered where the plan asks, it counts
    data = queue_data(qa_page)
    assert beyond in {e["frame"] for e in data["queue"] if e["planned"]} and str(beyond) not in data["verdicts"]
    assert data["earlier"] == {str(beyond): "false_alarm"}
    # the first plan's verdicts outside this one still count, and the progress says how many
    assert data["counted_outside"] == len(first_plan - {e["frame"] for e in data["queue"] if e["planned"]}) > 0
    # a verdict on the first plan's frames changes the figures wherever they are queued (the badge counts it)
    assert all(e["counts"] == (e["planned"] or e["frame"] in first_plan) for e in data["queue"])
    answer = browser.http.post(f"{data['post_url']}/verdict",
                               json={"frame": beyond, "verdict": "false_alarm", "note": "", "video": data["video"]["key"]})
    assert answer.status_code == 200
    qa_page.run()
    assert caption().startswith(f"Estimated from {planned + 1} verdicts given where") and "not counted" not in caption()


def test_an_unsure_verdict_outside_the_plan_is_not_counted_as_one_the_plan_left_out(qa_page):
    """An unsure given on a frame the plan never drew (on Review, say) is one of the verdicts kept but not
    counted; the caption said "1 unsure verdict left out" beside figures resting on the plan's sure ones."""
    browser, (_, planned) = Browser(qa_page), reviewed(qa_page)
    while reviewed(qa_page)[0] < planned:
        browser.give("miss")
    data = queue_data(qa_page)
    outside = next(frame for frame in range(qa_page.session_state["review"].detections.n_frames)
                   if frame not in {e["frame"] for e in data["queue"]})
    answer = browser.http.post(f"{data['post_url']}/verdict",
                               json={"frame": outside, "verdict": "unsure", "note": "", "video": data["video"]["key"]})
    assert answer.status_code == 200
    qa_page.run()
    caption = next(c.value for c in qa_page.caption if c.value.startswith("Estimated from"))
    assert "unsure verdict left out" not in caption, caption
    assert "1 verdict given outside the plan (on Review, or after the plan) is kept but not counted" in caption, caption


def test_dashed_boxes_are_judged_one_by_one_on_the_frame_with_their_numbers(app, tmp_path):
    """A queued frame with several dashed boxes shows its picture with the boxes numbered as the list
    names them (coordinates alone cannot be judged), and each box gets its own verdict. Two walkers,
    both dropped on frame 20 of the sample."""
    from core.lightly.datasource import frame_name
    from test_load_boxes import load_sample

    rows = [(f, [x0 + 2 * f, 100.0, x0 + 60 + 2 * f, 260.0]) for x0 in (100.0, 400.0) for f in range(40) if f != 20]
    frames = sorted({f for f, _ in rows})
    coco = {"images": [{"id": f + 1, "file_name": frame_name("vtest.avi", f, 795, ".png"), "width": 768, "height": 576}
                       for f in frames],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"id": k + 1, "image_id": f + 1, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                             "area": 1.0, "iscrowd": 0} for k, (f, b) in enumerate(rows)]}
    load_sample(app)
    app.file_uploader(key="boxes_upload").upload("two.json", json.dumps(coco).encode(), "application/json")
    app.run()
    click(app, "Use these boxes")
    app.switch_page("pages/qa.py")
    app.run()
    assert not app.exception
    [expander] = [e for e in app.expander if e.label.startswith("Judge dashed boxes one by one")]
    assert expander.selectbox(key="qa_boxes_frame").value == 20
    [image] = expander.get("image")
    assert image.captions[0].startswith("Frame 20: ")
    box = expander.multiselect(key="qa_boxes_20")
    assert [option.split(":")[0] for option in box.options] == ["box 1", "box 2"]
    box.set_value([box.options[1]])
    app.run()
    click(app, "Save box verdicts")
    fingerprint = app.session_state["review"].video.info.fingerprint
    assert VerdictStore(tmp_path / "data" / "verdicts.sqlite").boxes(fingerprint) == {(20, 0): "false_alarm", (20, 1): "miss"}





def simulated_boxes_on_the_sample(folder) -> tuple[Path, np.ndarray]:
    """A simulated detector's boxes over real pedestrian tracks (testkit.qa_sim: hard footage, misses
    clustered on hard objects, misplaced boxes, ghosts) as COCO predictions for the sample's 795 frames,
    and which frames truly miss a person."""
    from core.ground_truth import true_misses
    from core.lightly.datasource import frame_name
    from testkit.qa_sim import footage_of_length

    video = footage_of_length("hard", "TUD-Campus", 0, 795)
    boxes = video.detections
    images = [{"id": f + 1, "file_name": frame_name("vtest.avi", f, 795, ".png"), "width": 768, "height": 576}
              for f in range(boxes.n_frames)]
    annotations = [{"id": row + 1, "image_id": int(f) + 1, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score)}
                   for row, (f, (x0, y0, x1, y1), score) in enumerate(zip(boxes.frame.tolist(), boxes.xyxy.tolist(),
                                                                          boxes.score.tolist()))]
    path = folder / "hard.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}))
    return path, true_misses(boxes, video.ground_truth, max_gap=1)


def test_the_figures_keep_their_cells_when_the_plan_grows(app, tmp_path):
    """A larger plan has no aim until its own first phase is answered; the figures keep the cells the
    finished plan aimed at, instead of changing with no new verdict."""
    path, misses = simulated_boxes_on_the_sample(tmp_path)
    load_sample_with_boxes(app, path)
    app.switch_page("pages/qa.py")
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    browser, (_, planned) = Browser(app), reviewed(app)
    assert planned == 30
    while reviewed(app)[0] < planned:  # an honest reviewer
        data = queue_data(app)
        frame = next(e["frame"] for e in data["queue"] if str(e["frame"]) not in data["verdicts"])
        browser.give("miss" if frame < len(misses) and misses[frame] else "false_alarm")
    table = lambda: next(md.value for md in app.markdown if md.value.startswith("| Thresholds"))  # noqa: E731
    before = table()
    index = FlickerIndex.from_detections(app.session_state["review"].detections)
    truth = VerdictStore(tmp_path / "data" / "verdicts.sqlite").truth(app.session_state["review"].video.info.fingerprint)
    focus = ReviewPlan.draw(index, planned, 0, truth).focus
    assert focus is not None and ReviewPlan.draw(index, planned * 2, 0, truth).focus is None  # the larger plan: no aim yet
    # the video is one where the cut matters: the suggestion differs without it
    assert suggest_thresholds(index, truth, focus=focus) != suggest_thresholds(index, truth, focus=None)
    app.number_input(key="qa_plan_size").set_value(planned * 2)
    app.run()
    assert reviewed(app)[1] == planned * 2 and not app.exception
    assert table() == before
