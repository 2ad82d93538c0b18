"""Verdicts & thresholds: a review queue chosen so a few dozen verdicts tell how good the flags are,
precision and recall estimated from them, thresholds suggested from evidence, confirmed misses
exported as pre-labels."""
from pathlib import Path

import numpy as np
import streamlit as st

from core.paths import check_allowed
from core.prelabels import FORMATS, write_prelabels
from core.qa import DEFAULT_GRID, LARGE_FLAGGED_SHARE, ReviewQueue, precision_recall, review_queue, suggest_thresholds
from core.render import render_frame
from core.verdicts import VERDICTS
from ui import flags, resources, session
from ui.boundary import error_boundary
from ui.flicker_view import FlickerView, require_view
from ui.plots import f1_map_figure
from ui.url import restore_from_url, restore_page_values, sync_url
from ui.viewer import handshake

VERDICT_BUTTONS = (  # (verdict, label, key): the words and keys of the Review page's viewer, for every frame
    ("miss", "True miss", "M"),
    ("false_alarm", "False alarm", "F"),
    ("unsure", "Unsure", "U"),
)
VERDICT_NAMES = {"miss": "true miss", "false_alarm": "false alarm", "unsure": "unsure"}
QA_PLAN_SIZE = "qa_plan_size"
QA_SEED = "qa_seed"


def queue_settings_panel() -> tuple[int, int]:
    with st.sidebar:
        st.header("Review queue")
        st.text_input("Annotator", key=session.ANNOTATOR, persist_state="session", placeholder="your name",
                      help="Recorded with every verdict; Undo reverts your own latest one.")
        size = st.number_input("Frames in the plan", 5, 500, 30, 5, key=QA_PLAN_SIZE, persist_state="session",
                               help="A few dozen verdicts on these frames make the estimates reliable.")
        seed = st.number_input("Plan seed", 0, 10_000, 0, key=QA_SEED, persist_state="session")
    return int(size), int(seed)


def progress_panel(queue: ReviewQueue, verdicts: dict[int, str]) -> None:
    done = queue.planned_done(verdicts)
    st.progress(done / max(queue.planned, 1), text=f"Reviewed {done} / {queue.planned} · "
                                                   f"{len(queue.frames) - queue.planned} more flagged frames after the plan")
    if queue.planned and done == queue.planned:
        st.success("The plan is done: the estimates below rest on it. Use the suggested thresholds if they look right, "
                   "raise *Frames in the plan* for tighter intervals, or export on the Export page.",
                   icon=":material/task_alt:")


def frame_panel(view: FlickerView, frame: int, planned: bool) -> None:
    flagged = bool(view.flicker.flag_array[frame])
    imputed = view.flicker.imputed_for(frame)
    image = render_frame(resources.frame_reader(view.video.info).get(frame), view.detections.at(frame),
                         view.detections.names, imputed, flagged, f"frame {frame}")
    st.image(image, output_format="JPEG", width="stretch")
    why = "in the review plan" if planned else "flagged, after the plan"
    if flagged:
        boxes = "1 dashed box" if len(imputed) == 1 else f"{len(imputed)} dashed boxes"
        st.markdown(f"**Frame {frame:,} / {view.n_frames - 1:,}** · flagged: {boxes} where the neighbours saw an "
                    f"object · {why}")
    else:
        st.markdown(f"**Frame {frame:,} / {view.n_frames - 1:,}** · not flagged: a spot check. Is an object the "
                    f"detector should have found missing here? · {why}")


def verdict_panel(view: FlickerView, frame: int) -> None:
    store, video = resources.verdict_store(), view.video.info.fingerprint
    note_key = f"qa_note_{frame}"
    st.text_input("Note (optional)", key=note_key, max_chars=500)

    def record(verdict: str) -> None:  # the note as typed now: a value captured at render time would be the old one
        store.set(video, frame, verdict, annotator=session.annotator(), note=st.session_state.get(note_key, ""))

    columns = st.columns(len(VERDICT_BUTTONS))  # a row of their own: the labels fit without truncation
    for column, (verdict, label, key) in zip(columns, VERDICT_BUTTONS):
        column.button(label, key=f"qa_{verdict}", on_click=record, args=(verdict,), shortcut=key, width="stretch",
                      type="primary" if verdict == "miss" else "secondary", help=f"{key}")
    st.button("Undo", key="qa_undo", icon=":material/undo:", shortcut="Z", type="tertiary",
              on_click=lambda: store.undo(video, session.annotator() or None), help="Z: revert your latest verdict")
    imputed = view.flicker.imputed_for(frame)
    if len(imputed) > 1:
        box_verdict_panel(store, video, frame, imputed)


def box_verdict_panel(store, video: str, frame: int, imputed: np.ndarray) -> None:
    """Several dashed boxes on one frame: which of them are real misses."""
    labels = [f"box {k + 1}: x {int(b[0])}-{int(b[2])}, y {int(b[1])}-{int(b[3])}" for k, b in enumerate(imputed)]
    real = st.multiselect("Which dashed boxes are real misses?", range(len(labels)), format_func=labels.__getitem__,
                          key=f"qa_boxes_{frame}")
    if st.button("Save box verdicts", key="qa_save_boxes"):
        for k in range(len(labels)):
            store.set(video, frame, "miss" if k in real else "false_alarm", box=k, annotator=session.annotator())
        st.toast(f"Saved verdicts for {len(labels)} boxes of frame {frame}")


def estimate_panel(view: FlickerView, truth: dict[int, bool]) -> None:
    index = view.index
    current = (view.settings.iou_track, view.settings.iou_assert)
    suggestion = suggest_thresholds(index, truth, current=current)
    st.subheader("How good are the flags?")
    if suggestion.fallback:
        st.info(_sentence(suggestion.note) or "No estimate yet: review frames of the queue first.")
    else:
        # one pass for the map's grid and the thresholds in use (each call re-stratifies the verdicts)
        *grid, now = precision_recall(index, truth, (*DEFAULT_GRID, current))
        estimate_row("Now", current, now)
        estimate_row("Suggested", (suggestion.iou_track, suggestion.iou_assert), suggestion, compared_to=now)
        st.caption(f"Estimated from {suggestion.n_verdicts} verdicts; hover a figure for its 90% interval. "
                   f"{_sentence(suggestion.note)}")
        suggestion_preview(view, suggestion)
        st.button("Use suggested thresholds", icon=":material/tune:", type="primary",
                  on_click=flags.use_thresholds, args=(suggestion.iou_track, suggestion.iou_assert),
                  disabled=(round(suggestion.iou_track, 2), round(suggestion.iou_assert, 2))
                  == tuple(round(threshold, 2) for threshold in current))
        # no map before there is an estimate: it would be all zeros
        st.plotly_chart(f1_map_figure(grid, current,
                                      (suggestion.iou_track, suggestion.iou_assert)), key="qa_f1_map",
                        config={"displaylogo": False})


def suggestion_preview(view: FlickerView, suggestion) -> None:
    """What "Use suggested thresholds" would do, in plain words, before it is pressed."""
    share = suggestion.n_flagged / max(view.n_frames, 1)
    (p_low, p_high), (r_low, r_high) = suggestion.precision_ci, suggestion.recall_ci
    st.markdown(f"The suggested thresholds flag **{suggestion.n_flagged} of {view.n_frames} frames** ({share:.0%}; "
                f"{view.flicker.n_flagged} now). Between {p_low:.0%} and {p_high:.0%} of those frames really miss an "
                f"object, and they hold between {r_low:.0%} and {r_high:.0%} of the frames that do (90% intervals).")
    if share > LARGE_FLAGGED_SHARE:
        st.warning(f"These thresholds flag {share:.0%} of the video: flags on most frames say little. Review more "
                   "frames of the queue before using them.", icon=":material/warning:")


def estimate_row(label: str, thresholds: tuple[float, float], estimate, compared_to=None) -> None:
    """One labelled row of estimates (precision, recall, F1), with the change from ``compared_to``."""
    cells = st.columns([1.1, 1, 1, 1], vertical_alignment="center")
    cells[0].markdown(f"**{label}**  \n{thresholds[0]:.2f} / {thresholds[1]:.2f}")
    for cell, name, value, interval in (
        (cells[1], "Precision", estimate.precision, estimate.precision_ci),
        (cells[2], "Recall", estimate.recall, estimate.recall_ci),
        (cells[3], "F1", estimate.f1, None),
    ):
        before = getattr(compared_to, name.lower(), None)
        delta = None if before is None or np.isnan(before) or np.isnan(value) else f"{value - before:+.2f}"
        cell.metric(name, "-" if np.isnan(value) else f"{value:.2f}", delta=delta if delta != "+0.00" else None,
                    help=None if interval is None else f"90% interval {interval[0]:.2f}-{interval[1]:.2f}")


def _sentence(note: str) -> str:
    return f"{note[0].upper()}{note[1:]}." if note else ""


def reviewed_panel(view: FlickerView, verdicts: dict[int, str]) -> None:
    st.subheader("Reviewed frames")
    shown = st.segmented_control("Show", ("all", *VERDICTS), default="all", key="qa_filter",
                                 format_func=lambda v: VERDICT_NAMES.get(v, v))
    frames = sorted(f for f, v in verdicts.items() if shown in (None, "all", v) and f < view.n_frames)
    if not frames:
        st.caption("Nothing here yet.")
        return
    notes = {frame: note for frame, _, _, note, _ in resources.verdict_store().records(view.video.info.fingerprint) if note}
    for frame in frames[:50]:
        left, right = st.columns([3, 1])
        flagged = "flagged" if view.flicker.flag_array[frame] else "not flagged"
        left.markdown(f"frame **{frame}** · {VERDICT_NAMES[verdicts[frame]]} · {flagged}")
        if frame in notes:
            left.caption(notes[frame])  # Streamlit escapes HTML in it: a note is whatever an annotator typed
        if right.button("Open in Review", key=f"qa_open_{frame}", type="tertiary"):
            handshake.go_to(frame, view.n_frames, reveal=True)
            st.switch_page("pages/review.py")
    if len(frames) > 50:
        st.caption(f"The first 50 of {len(frames)} shown.")


def prelabels_panel(view: FlickerView, truth: dict[int, bool]) -> None:
    confirmed = sorted(f for f, real in truth.items() if real and f < view.n_frames)
    with st.expander(f"Pre-labels from the {len(confirmed)} confirmed misses"):
        st.caption("The frames as PNG with the detector's boxes and the dashed boxes, ready to import into a "
                   "labelling tool (COCO, YOLO, CVAT, YouTube-VIS through Lightly's labelformat; Label Studio video).")
        fmt = st.selectbox("Format", FORMATS, key="qa_prelabel_format", persist_state="session")
        out = st.text_input("Output folder", value=str(Path.cwd() / "prelabels" / Path(view.video.relpath).stem),
                            key="qa_prelabel_out", persist_state="session")
        if st.button("Write pre-labels", icon=":material/label:", disabled=not confirmed):
            with error_boundary("Pre-labels failed"):
                summary = write_prelabels(view.video.info, view.video.relpath, view.detections, view.flicker, confirmed,
                                          check_allowed(out), fmt)
                st.success(f"{summary.frames} frames, {summary.boxes} boxes ({summary.imputed} imputed) as {fmt} "
                           f"in {summary.out}")


flags.init_defaults()
restore_from_url()
restore_page_values(annotator=(session.ANNOTATOR, str), plan=(QA_PLAN_SIZE, int), seed=(QA_SEED, int))
st.title("Verdicts & thresholds")
view = require_view()
size, seed = queue_settings_panel()
sync_url(view, annotator=session.annotator(), plan=str(size), seed=str(seed))  # a reload reopens this queue
with error_boundary("Verdicts"):
    store = resources.verdict_store()
    verdicts = store.all(view.video.info.fingerprint)
    truth = store.truth(view.video.info.fingerprint)
    queue = review_queue(view.index, view.flicker, size, seed)
    progress_panel(queue, verdicts)
    left, right = st.columns([1.4, 1], gap="large")
    with left:
        frame = queue.next_unreviewed(verdicts)
        if frame is None:
            st.success("Every frame of the queue has a verdict. The estimates on the right use them all.")
        else:
            frame_panel(view, frame, planned=frame in queue.frames[:queue.planned])
            verdict_panel(view, frame)
        st.caption("Keys: M true miss · F false alarm · U unsure · Z undo")
    with right:
        estimate_panel(view, truth)
    reviewed_panel(view, verdicts)
    prelabels_panel(view, truth)
