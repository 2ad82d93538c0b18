"""Verdicts & thresholds: a review queue chosen so a few dozen verdicts tell how good the flags are,
precision and recall estimated from them, thresholds suggested from evidence, confirmed misses
exported as pre-labels."""
from pathlib import Path

import numpy as np
import streamlit as st

from core.assertion_verdicts import precision_per_assertion
from core.errors import UserError
from core.export_dirs import default_export_dir
from core.paths import check_allowed
from core.prelabels import FORMATS, write_prelabels
from core.qa import DEFAULT_GRID, FEW_VERDICTS, LARGE_FLAGGED_SHARE, ReviewQueue, precision_recall, review_queue, suggest_thresholds
from core.render import render_frame
from core.verdicts import SPOT_CHECK_NAMES, VERDICT_NAMES, VERDICTS
from core.words import counted, markdown_literal
from ui import flags, resources, session
from ui.boundary import error_boundary
from ui.components import annotator_field, literal_caption, recount_warning, video_name_note
from ui.flicker_view import FlickerView, assertion_label, require_view
from ui.plots import f1_map_figure
from ui.url import restore_from_url, restore_page_values, review_link, sync_url, thresholds_param
from ui.verdict_queue.component import verdict_queue

QA_PLAN_SIZE = "qa_plan_size"
QA_SEED = "qa_seed"
QA_PREVIOUS = "qa_previous_thresholds"  # what "Use suggested thresholds" replaced (in the URL too: the Back button outlives a reload)
QA_STALE = "qa_suggestion_stale"  # set when "Use suggested thresholds" was pressed on figures the verdicts had outrun
# the keys of the fallback's note and of the one the queue shows instead once it holds verdicts the figures lack (queue.css)
NO_ESTIMATE, NO_ESTIMATE_BEHIND = "qa_no_estimate", "qa_no_estimate_behind"


def queue_settings_panel(video: str) -> tuple[int, int]:
    with st.sidebar:
        st.header("Review queue")
        video_name_note(video)
        annotator_field()
        # defaults put in the state, not passed to the widgets: a plan or seed from the URL is there already
        # (restore_page_values), and a widget given both warns in the server's log
        st.session_state.setdefault(QA_PLAN_SIZE, 30)
        st.session_state.setdefault(QA_SEED, 0)
        size = st.number_input("Frames in the plan", 5, 500, step=5, key=QA_PLAN_SIZE, persist_state="session",
                               help="A few dozen verdicts on these frames make the estimates reliable. The first "
                                    "half is spread over every kind of frame; the second is chosen from your verdicts "
                                    "on the first, where they still leave the thresholds most in doubt. A larger plan "
                                    "chooses its second half anew: verdicts on an earlier plan's frames outside it "
                                    "still count in the estimates.")
        seed = st.number_input("Plan seed", 0, 10_000, key=QA_SEED, persist_state="session")
    return int(size), int(seed)


def several_boxes_panel(view: FlickerView, queue: ReviewQueue, store) -> None:
    """Queued frames with several dashed boxes: which of them are real misses, box by box."""
    frames = [f for f in queue.frames if len(view.flicker.imputed_for(f)) > 1]
    if not frames:
        return
    several = "1 queued frame has" if len(frames) == 1 else f"{len(frames)} queued frames have"
    with st.expander(f"Judge dashed boxes one by one ({several} several)"):
        frame = st.selectbox("Frame", frames, key="qa_boxes_frame", format_func=lambda f: f"frame {f:,}")
        imputed = view.flicker.imputed_for(frame)
        # the frame itself, its dashed boxes numbered as in the list below: coordinates alone cannot be judged
        try:
            picture = numbered_frame(view.video.info.fingerprint, frame, session.review().detection_id or "",
                                     view.settings.min_score, np.ascontiguousarray(imputed).tobytes(), _view=view)
        except UserError as error:  # a frame that does not decode: the list below still works
            st.caption(f"Frame {frame:,} cannot be shown: {markdown_literal(error)}")
        else:
            st.image(picture, caption=f"Frame {frame:,}: the detector's boxes, and the dashed boxes numbered", width="stretch")
        labels = [f"box {k + 1}: x {int(b[0])}-{int(b[2])}, y {int(b[1])}-{int(b[3])}" for k, b in enumerate(imputed)]
        real = st.multiselect("Which dashed boxes are real misses?", range(len(labels)), format_func=labels.__getitem__,
                              key=f"qa_boxes_{frame}")
        if st.button("Save box verdicts", key="qa_save_boxes"):
            for k in range(len(labels)):
                store.set(view.video.info.fingerprint, frame, "miss" if k in real else "false_alarm", box=k,
                          annotator=session.annotator(), drawn=frame in queue.plan_frames)
            st.toast(f"Saved verdicts for {len(labels)} boxes of frame {frame}")


@st.cache_data(show_spinner=False, max_entries=16)
def numbered_frame(fingerprint: str, frame: int, detection_id: str, min_score: float, imputed_key: bytes,
                   _view: FlickerView) -> np.ndarray:
    """``frame`` with its boxes and its dashed boxes numbered, drawn once per frame, boxes and dashed
    boxes (``imputed_key``: their bytes; the panel runs on every rerun of the page, open or not)."""
    boxes = _view.flicker.imputed_for(frame)
    # the numbers large: the frame is shown at about half its size beside the queue, where "box 1" was unreadable
    return render_frame(resources.seek_reader(_view.video.info).get(frame), _view.detections.at(frame),
                        _view.detections.names, boxes, imputed_labels=[str(k + 1) for k in range(len(boxes))],
                        imputed_label_scale=0.9)


def plan_done_panel(queue: ReviewQueue, verdicts: dict[int, str], estimated: bool) -> None:
    """What to do next once the plan is done (the queue asks for this rerun as its last verdict lands);
    ``estimated``: the figures below suggest thresholds (not when no verdict of the plan confirmed a miss)."""
    if queue.plan_complete(verdicts):
        check = ("the estimates below rest on it. Check the suggested thresholds below, raise *Frames in the plan* for "
                 "tighter intervals" if estimated else "raise *Frames in the plan* for more verdicts to estimate from")
        st.success(f"The plan is done: {check} (the frames after the plan are not counted), or export on the Export page.",
                   icon=":material/task_alt:")


def estimate_panel(view: FlickerView, truth: dict[int, bool], unsure: list[int], focus: tuple[float, float] | None,
                   planned: set[int], plan_complete: bool) -> bool:
    """The estimates from the verdicts on frames a plan drew, post-stratified on the cells of the pair
    a plan's second phase aimed at (``focus``: VerdictStore.estimate_focus); whether there are any."""
    index = view.index
    current = (view.settings.iou_track, view.settings.iou_assert)
    suggestion = suggest_thresholds(index, truth, current=current, focus=focus, planned=planned)
    # an unsure verdict outside the plan is one of those not counted, not one the plan's figures left out
    unsure_in_plan = len(planned.intersection(unsure))
    off_plan = len(truth) - suggestion.n_verdicts + len(unsure) - unsure_in_plan
    unsure_left_out = f" {counted(unsure_in_plan, 'unsure verdict')} left out." if unsure_in_plan else ""
    unplanned = (f" {counted(off_plan, 'verdict')} given outside the plan (on Review, or after the plan) "
                 f"{'is' if off_plan == 1 else 'are'} kept but not counted: frames picked so are no random sample and "
                 "would bias the figures." if off_plan else "")
    st.subheader("How good are the flags?")
    if st.session_state.pop(QA_STALE, False):  # whatever the redrawn figures hold, now: never on a later run
        st.info("Verdicts were given or undone since those figures were drawn, so the thresholds were left as they "
                "were. The figures are up to date now: check them before using a suggestion.", icon=":material/sync:")
    if suggestion.fallback:  # with the plan done, the line above says what to do next (not "review more frames of the plan")
        # the queue gives verdicts without a rerun: "No verdict on the plan's frames yet" stood beside "Reviewed 3 / 30" until
        # the figures were updated, so the queue's CSS swaps it for the second note while it holds verdicts they lack
        st.container(key=NO_ESTIMATE).info(_sentence(suggestion.note + ("" if plan_complete else "; review more frames of the plan")))
        st.container(key=NO_ESTIMATE_BEHIND).info("Verdicts were given since these figures were drawn: *Update the estimates* "
                                                  "(beside the queue) counts them.", icon=":material/sync:")
        if unplanned:
            st.caption(unplanned.strip())
        return False
    # one pass for the map's grid and the thresholds in use (each call re-stratifies the verdicts)
    *grid, now = precision_recall(index, truth, (*DEFAULT_GRID, current), focus, planned)
    st.markdown(estimates_table([("Now", current, now, None),
                                 ("Suggested", (suggestion.iou_track, suggestion.iou_assert), suggestion, now)]))
    # the note's other caveats (few verdicts, a large share flagged) are the warnings under the preview
    covers = "raising *Frames in the plan*" if plan_complete else "finishing the plan"
    unlike = (f" {suggestion.n_unrepresented:,} of {view.n_frames:,} frames are unlike any judged so far and are "
              f"assumed to miss nothing, so recall may be overstated: {covers} covers them."
              if suggestion.n_unrepresented else "")
    st.caption(f"Estimated from {counted(suggestion.n_verdicts, 'verdict')} given where a review plan (this one "
               f"or an earlier size or seed) asked; 90% intervals in brackets.{unlike}{unplanned}{unsure_left_out}")
    suggested = (round(suggestion.iou_track, 2), round(suggestion.iou_assert, 2))
    in_use = suggested == tuple(round(threshold, 2) for threshold in current)
    cautioned = suggestion_preview(view, suggestion, in_use)
    st.button("Use suggested thresholds", icon=":material/tune:", type="secondary" if cautioned else "primary",
              on_click=use_suggested, args=(suggested, current, view.video.info.fingerprint, truth), disabled=in_use)
    previous = st.session_state.get(QA_PREVIOUS)
    if in_use and previous is not None and tuple(previous) != suggested:  # one click undoes it
        st.button(f"Back to {previous[0]:.2f} / {previous[1]:.2f}", icon=":material/undo:",
                  on_click=flags.use_thresholds, args=tuple(previous), help="The thresholds in use before the suggestion")
    # no map before there is an estimate: it would be all zeros
    st.plotly_chart(f1_map_figure(grid, current,
                                  (suggestion.iou_track, suggestion.iou_assert)), key="qa_f1_map",
                    config={"displaylogo": False})
    return True


def use_suggested(suggested: tuple[float, float], current: tuple[float, float], fingerprint: str,
                  shown_truth: dict[int, bool]) -> None:
    """Move the sliders to the suggestion, remembering the thresholds it replaces (the Back button),
    unless the verdicts it rests on changed since it was shown: the queue records verdicts and undoes
    them without a rerun, so the suggestion on screen can be one the verdicts no longer make."""
    if resources.verdict_store().truth(fingerprint) != shown_truth:
        st.session_state[QA_STALE] = True
        return
    st.session_state[QA_PREVIOUS] = (round(float(current[0]), 2), round(float(current[1]), 2))
    flags.use_thresholds(*suggested)


def previous_param() -> dict[str, str]:
    """The pair the Back button returns to, as a URL parameter (none before "Use suggested thresholds")."""
    pair = st.session_state.get(QA_PREVIOUS)
    return {} if pair is None else {"previous": thresholds_param(pair)}


def suggestion_preview(view: FlickerView, suggestion, in_use: bool) -> bool:
    """What "Use suggested thresholds" would do, in plain words, before it is pressed (``in_use``:
    what it does, once pressed); whether it warned against it."""
    share = suggestion.n_flagged / max(view.n_frames, 1)
    (p_low, p_high), (r_low, r_high) = suggestion.precision_ci, suggestion.recall_ci
    flagging = (f"The suggested thresholds, in use now, flag **{suggestion.n_flagged} of {view.n_frames} frames** ({share:.0%})"
                if in_use else
                f"The suggested thresholds flag **{suggestion.n_flagged} of {view.n_frames} frames** ({share:.0%}; "
                f"{view.flicker.n_flagged} now)")
    st.markdown(f"{flagging}. Between {p_low:.0%} and {p_high:.0%} of those frames really miss an object, and they "
                f"hold between {r_low:.0%} and {r_high:.0%} of the frames that do (90% intervals).")
    if share > LARGE_FLAGGED_SHARE:
        st.warning(f"These thresholds flag {share:.0%} of the video: flags on most frames say little. Raise *Frames "
                   f"in the plan* and judge the frames it adds{'' if in_use else ' before using them'}.",
                   icon=":material/warning:")
    if suggestion.n_verdicts < FEW_VERDICTS:
        st.warning(f"This suggestion rests on {counted(suggestion.n_verdicts, 'verdict')}: a rough guide. "
                   + ("Finish the plan to firm it up." if in_use else "Finish the plan before using it."),
                   icon=":material/warning:")
    return share > LARGE_FLAGGED_SHARE or suggestion.n_verdicts < FEW_VERDICTS


def estimates_table(rows) -> str:
    """Precision, recall and F1 of each ``(label, thresholds, estimate, compared_to)`` row, with
    their 90% intervals and the change from ``compared_to``: a table whose cells wrap in a narrow
    column where metrics were cut to "0.…"."""
    lines = ["| Thresholds | Precision | Recall | F1 |", "| :-- | :-- | :-- | :-- |"]
    for label, (iou_track, iou_assert), estimate, compared_to in rows:
        cells = [f"**{label}** {iou_track:.2f}\u00a0/\u00a0{iou_assert:.2f}"]  # no-break: a pair stays on one line
        for name, interval in (("precision", estimate.precision_ci), ("recall", estimate.recall_ci), ("f1", None)):
            cells.append(_figure(getattr(estimate, name), interval, getattr(compared_to, name, None)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figure(value: float, interval: tuple[float, float] | None, before: float | None) -> str:
    if np.isnan(value):
        return "-"
    # a no-break hyphen: an interval wraps as a whole, never as "(0.05-" over "0.38)"
    text = f"**{value:.2f}**" + ("" if interval is None else f" ({interval[0]:.2f}\u2011{interval[1]:.2f})")
    # the change between the figures as shown (0.83 -> 0.80 reads -0.03, never -0.04)
    change = None if before is None or np.isnan(before) else round(value, 2) - round(before, 2)
    return text if change is None or round(change, 2) == 0 else f"{text} {change:+.2f}"


def _sentence(note: str) -> str:
    return f"{note[0].upper()}{note[1:]}." if note else ""


def assertion_precision_panel(view: FlickerView, store) -> None:
    """Each enabled assertion's precision from the verdicts on its own flags (given on Review), side by
    side: a plain share of judged flagged frames, not the queue's weighted estimates above."""
    st.subheader("How often is each assertion right?")
    if len(view.assertions) == 1:
        st.caption("Only flicker is checked. Turn on ghost and class flip on Review, give verdicts on their "
                   "flags there, and each assertion's precision appears here.")
        return
    lines = ["| Assertion | Flags now | Judged | Precision |", "| :-- | --: | --: | :-- |"]
    for row in precision_per_assertion(store, view.video.info.fingerprint, view.assertion_flags):
        judged = f"{row.judged}" + (f" (+{row.unsure} unsure)" if row.unsure else "")
        figure = "-" if row.precision is None else f"**{row.precision:.2f}** ({row.low:.2f}\u2011{row.high:.2f})"
        lines.append(f"| {assertion_label(row.assertion)} | {row.flagged:,} | {judged} | {figure} |")
    st.markdown("\n".join(lines))
    st.caption("Among the frames each assertion flags at the thresholds in use, the share of those judged that were "
               "judged right (90% interval in brackets). A fair guide when the judged frames are a fair sample of the "
               "flagged ones. Flicker's figure here can differ from its precision above, which weighs each verdict by "
               "how many frames like it the plan's sample stands for.")


def reviewed_panel(view: FlickerView, verdicts: dict[int, str]) -> None:
    st.subheader("Reviewed frames")
    # the words that fit a verdict whether its frame is flagged (a true miss, a false alarm) or a spot check
    shown = st.segmented_control("Show", ("all", *VERDICTS), default="all", key="qa_filter",
                                 format_func=lambda v: SPOT_CHECK_NAMES.get(v, v))
    frames = sorted(f for f, v in verdicts.items() if shown in (None, "all", v) and f < view.n_frames)
    if not frames:
        st.caption("Nothing here yet.")
        return
    notes = {frame: note for frame, _, _, note, _ in resources.verdict_store().records(view.video.info.fingerprint) if note}
    for frame in frames[:50]:
        left, right = st.columns([3, 1])
        # at the thresholds in use: a frame judged as a spot check is flagged after a change of thresholds
        said = (f"{VERDICT_NAMES[verdicts[frame]]} · flagged now" if view.flicker.flag_array[frame]
                else f"{SPOT_CHECK_NAMES[verdicts[frame]]} · not flagged now")
        left.markdown(f"frame **{frame}** · {said}")
        if frame in notes:
            literal_caption(left, notes[frame])  # whatever an annotator typed, shown as typed
        # a link, not a button: Review runs at once, without a run of this page first (ui.url.review_link)
        right.page_link("pages/review.py", label="Open in Review", query_params=review_link(view, frame))
    if len(frames) > 50:
        st.caption(f"The first 50 of {len(frames)} shown.")


def prelabels_panel(view: FlickerView, truth: dict[int, bool]) -> None:
    confirmed = sorted(f for f, real in truth.items() if real and f < view.n_frames)
    with st.expander(f"Pre-labels from the {counted(len(confirmed), 'confirmed miss', 'confirmed misses')}"):
        st.caption("The frames as PNG with the detector's boxes and the dashed boxes, ready to import into a "
                   "labelling tool (COCO, YOLO, CVAT, YouTube-VIS through Lightly's labelformat; Label Studio video).")
        fmt = st.selectbox("Format", FORMATS, key="qa_prelabel_format", persist_state="session")
        out = st.text_input("Output folder", value=str(default_export_dir(Path(view.video.relpath).stem, "prelabels")),
                            key="qa_prelabel_out", persist_state="session")
        if st.button("Write pre-labels", icon=":material/label:", disabled=not confirmed):
            with error_boundary("Pre-labels failed"):
                summary = write_prelabels(view.video.info, view.video.relpath, view.detections, view.flicker, confirmed,
                                          check_allowed(out), fmt)
                st.success(markdown_literal(summary.text()))  # it names the folder, whoever chose its name


flags.init_defaults()
session.note_page("qa")
restore_from_url()
restore_page_values(annotator=(session.ANNOTATOR, str), plan=(QA_PLAN_SIZE, int), seed=(QA_SEED, int),
                    previous=(QA_PREVIOUS, tuple))
st.title("Verdicts & thresholds")
view = require_view()
st.set_page_config(page_title=f"{view.video.relpath} · Verdicts")
size, seed = queue_settings_panel(view.video.relpath)
recount_warning(view.video.info)
sync_url(view, annotator=session.annotator(), plan=str(size), seed=str(seed), **previous_param())  # a reload reopens this queue
with error_boundary("Verdicts"):
    store = resources.verdict_store()
    verdicts = store.all(view.video.info.fingerprint)
    truth = store.truth(view.video.info.fingerprint)
    unsure = [frame for frame, verdict in verdicts.items() if verdict == "unsure"]
    queue = review_queue(view.index, view.flicker, size, seed, truth, unsure)  # its second phase follows the first's verdicts
    # the frames whose verdicts the estimates rest on: given once a plan (this one, or an earlier
    # size or seed) had drawn them; the store remembers each plan's frames and since when
    planned = store.plan_drawn(view.video.info.fingerprint, queue.plan_frames)
    # a plan frame judged before any plan drew it is asked again: only then does its verdict count
    ask_again = set(queue.plan_frames).difference(planned)
    answered = {frame: verdict for frame, verdict in verdicts.items() if frame not in ask_again}
    # a larger plan draws its own second half: verdicts on an earlier plan's frames outside it still count
    counted_outside = len((planned & truth.keys()).difference(queue.plan_frames))
    # the figures keep the last aimed plan's cells while a larger plan (or another seed) has none yet
    focus = store.estimate_focus(view.video.info.fingerprint, queue.focus)
    focus = focus if focus in DEFAULT_GRID else None  # a damaged row: the bands alone
    left, right = st.columns([1.4, 1], gap="large")
    with left:  # verdicts without a rerun: the figures on the right catch up on the next one
        verdict_queue(view, queue, answered, store, session.annotator(),
                      {frame: verdicts[frame] for frame in ask_again if frame in verdicts}, counted_outside, planned)
        several_boxes_panel(view, queue, store)
    with right:
        done = st.container()  # above the figures, in words that hold for what they show
        estimated = estimate_panel(view, truth, unsure, focus, planned, queue.plan_complete(answered))
        with done:
            plan_done_panel(queue, answered, estimated)
        assertion_precision_panel(view, store)
    reviewed_panel(view, verdicts)
    prelabels_panel(view, truth)
