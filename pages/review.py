"""Review: scrub the video with predictions and dashed imputed boxes, retune thresholds live, look
at the timeline (a lane per enabled assertion: flicker, ghost, class flip), mark flagged frames as
true or false alarms of the assertion that flagged them, try a local selection."""
import json

import numpy as np
import streamlit as st

from core.assertions import ASSERTIONS, CLASS_FLIP, FLICKER, GHOST, METADATA_KEYS
from core.errors import UserError
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, MODES
from core.lightly.config import DEFAULT_N_SAMPLES
from core.lightly.selection import select_in_video, selection_csv, selection_listing
from core.proxy import proxy_building
from core.settings import FlickerSettings
from core.words import markdown_code, markdown_literal
from ui import flags, resources, session
from ui.boundary import error_boundary
from ui.components import annotator_field, recount_warning, selection_strengths, sibling_strengths, video_name_note
from ui.flicker_view import ASSERTION_HELP, FlickerView, assertion_label, current_view, flags_with, require_view
from ui.url import restore_from_url, sync_url
from ui.viewer import frames, handshake
from ui.viewer.component import REVIEW_TITLE_KEY, frame_viewer
from ui.viewer.embedding_map import embedding_map

GALLERY_SIZE = 24  # thumbnails shown before "Show all"
VIEWER_MOUNTS = "_viewer_mounts"  # this full run brings Review up: the browser mounts the viewer anew
SHOWN_WAIT_S = 0.6  # at most this long the page waits for a just-sent viewer to draw its frame (workspace)
FLOODING_SHARE = 0.25  # an assertion flagging more of the video than this is said to (its lane is mostly solid)
# what thins each assertion's flags: a stricter tracking IoU tracks fewer objects (fewer misses and flips) but
# leaves more boxes unmatched, so ghost needs it looser
FEWER_FLAGS = {FLICKER: "raise IoU tracking or the minimum score", GHOST: "lower IoU tracking or raise the minimum score",
               CLASS_FLIP: "raise IoU tracking or the minimum score"}


def counts_panel(view: FlickerView, verdicts: dict[str, dict[int, str]]) -> None:
    """Flicker's counts; with other assertions enabled, a row each (flagged and reviewed frames)
    and the frames any of them flags, where J / K go by default."""
    flicker, n, flagged = view.flicker, view.n_frames, view.flagged_frames
    every = view.assertion_flags
    rows = st.columns(2), st.columns(2), st.columns(2)
    # beside other assertions, "flagged" alone would read as the frames any of them flags (Fleet's count, the table's Any)
    rows[0][0].metric("Flagged frames" if len(every) == 1 else "Flicker flags", f"{len(flagged):,}")
    rows[0][1].metric("Share of frames", f"{len(flagged) / max(n, 1):.1%}")
    rows[1][0].metric("Imputed boxes", f"{len(flicker.imputed_frame):,}")
    rows[1][1].metric("Boxes kept", f"{len(view.detections):,}")
    rows[2][0].metric("Reviewed", reviewed(every[FLICKER], verdicts[FLICKER]),
                      help="Frames flicker flags at these thresholds that have a verdict, of all it flags (the table "
                           "below counts each assertion when others are on; Fleet counts at the batch's thresholds, the "
                           "Verdicts page the frames of its review plan)")
    if len(every) > 1:
        any_flags = np.logical_or.reduce(list(every.values()))
        st.table({"Assertion": [*map(assertion_label, every), "Any"],
                  "Flagged": [f"{int(flags_of.sum()):,}" for flags_of in [*every.values(), any_flags]],
                  "Reviewed": [reviewed(flags_of, verdicts[name]) for name, flags_of in every.items()] + [""]},
                 hide_index=True)
        for name, flags_of in every.items():  # a lane solid with flags: J / K land everywhere, and the flags say little
            if (share := flags_of.mean()) > FLOODING_SHARE:
                st.caption(f"{assertion_label(name)} flags {share:.0%} of the frames: {FEWER_FLAGS[name]} until it "
                           "singles frames out.")


def reviewed(flags_of: np.ndarray, verdicts: dict[int, str]) -> str:
    """"judged / flagged" of one assertion: its verdicts on the frames it flags now."""
    judged = sum(1 for frame in verdicts if frame < len(flags_of) and flags_of[frame])
    return f"{judged} / {int(flags_of.sum())}"


def assertions_panel() -> None:
    """The choice ``--assertions`` makes on the command line: flicker always, ghost and class flip
    when chosen; each gets its lane on the timeline and its counts."""
    st.pills("Assertions beside flicker", flags.SIBLING_CHOICES, selection_mode="multi", key=flags.SIBLINGS,
             format_func=assertion_label, persist_state="session",
             help="Flicker always runs. " + " ".join(f"{assertion_label(name)}: {ASSERTION_HELP[name]}."
                                                     for name in flags.SIBLING_CHOICES) +
                  " Both use the tracking IoU (docs/assertions.md).")
    if CLASS_FLIP in st.session_state.get(flags.SIBLINGS, ()) and len(np.unique(session.detections().cls)) < 2:
        # a one-class model: a lane of 0
        st.caption("Class flip cannot fire on these boxes: they all have one class. It needs a model that tells "
                   "several classes apart.")


def thresholds_panel(view: FlickerView) -> None:
    assertions_panel()
    st.slider("IoU tracking", 0.0, 1.0, step=0.01, key=flags.IOU_TRACK, persist_state="session",
              help="Boxes in frames i-k and i+k overlapping more than this are one object.")
    st.slider("IoU assertion", 0.0, 1.0, step=0.01, key=flags.IOU_ASSERT, persist_state="session",
              help="Frame i misses the object when none of its boxes overlaps the interpolated box this much.")
    detections = session.detections()
    floor = float(detections.score.min()) if len(detections) else 0.0
    st.slider("Minimum score", 0.0, 1.0, step=0.01, key=flags.MIN_SCORE, persist_state="session",
              help="Filters detections above the floor used when detecting, without running the model again.")
    settings = view.settings
    if settings.min_score < floor - 1e-6:
        st.caption(f"Detections start at score {floor:.2f}.")
    at_tutorial = (settings.iou_track, settings.iou_assert) == (DEFAULT_IOU_TRACK, DEFAULT_IOU_ASSERT)
    st.button(f"Tutorial thresholds ({DEFAULT_IOU_TRACK} / {DEFAULT_IOU_ASSERT})", icon=":material/restart_alt:",
              on_click=flags.use_thresholds, args=(DEFAULT_IOU_TRACK, DEFAULT_IOU_ASSERT), disabled=at_tutorial,
              type="tertiary")
    st.radio("Mode", MODES, key=flags.MODE, persist_state="session", horizontal=True,
             help="reference: the tutorial's code, value for value. improved: class-aware, one-to-one matching, "
                  "wider window (see docs/flicker.md).")
    if settings.mode == "improved":
        improved_options_panel(view)


def improved_options_panel(view: FlickerView) -> None:
    """The improved mode's toggles, each saying when it cannot change anything here and why."""
    options = view.settings.options
    st.toggle("Class-aware matching", key=flags.CLASS_AWARE, persist_state="session")
    if len(np.unique(view.detections.cls)) <= 1:
        st.caption("One class in these detections: matching within classes cannot change anything.")
    elif no_difference(view, class_aware=not options.class_aware):
        st.caption("Same flags either way at these thresholds.")
    st.toggle("One-to-one matching", key=flags.ONE_TO_ONE, persist_state="session")
    if no_difference(view, one_to_one=not options.one_to_one):
        st.caption("Same flags either way at these thresholds: it only matters where one box in frame i-k "
                   "overlaps several in frame i+k above the tracking IoU.")
    st.slider("Half window k", *flags.WINDOW_RANGE, key=flags.WINDOW, persist_state="session",
              help="Also look for objects seen in i-j and i+j for j up to k (catches gaps of several frames).")
    st.toggle("Median score for empty windows", key=flags.EMPTY_MEDIAN, persist_state="session",
              help="Changes the flicker scores (the map's colours, the score export), never the flags.")


def no_difference(view: FlickerView, **toggle) -> bool:
    """Whether the toggle leaves the flags as they are (False when that is too costly to know)."""
    other = flags_with(view, **toggle)
    return other is not None and bool(np.array_equal(other, view.flicker.flag_array))


def seek_proxy_note(view: FlickerView) -> None:
    if proxy_building(view.video.info):
        st.caption(":material/hourglass_top: Preparing fast seeking for this video...")


def per_class_panel(view: FlickerView) -> None:
    with st.expander("Imputed boxes per class"):
        flicker = view.flicker
        if len(flicker.imputed_frame):
            classes, counts = np.unique(flicker.imputed_cls, return_counts=True)
            # a table's cells are Markdown: the class names come from the model or a labels file
            st.table({"class": [markdown_literal(view.detections.names.get(int(c), str(c))) for c in classes],
                      "imputed boxes": counts.tolist()})
        else:
            st.write("No imputed boxes at these thresholds.")


def boxes_source_caption() -> None:
    """Where the boxes come from when no detector ran here: a batch (and back to its Fleet page) or a file."""
    if (root := session.batch_root()) is not None:
        left, right = st.columns([3, 1], vertical_alignment="center")
        left.caption(f"Boxes and settings from the batch output folder {markdown_code(root)} (nothing was detected here).")
        # short enough for the column at 1280 px (the longer label was cut there)
        right.page_link("pages/fleet.py", label="Back to the batch", icon=":material/view_list:",
                        query_params={"dir": str(root)}, help="This batch's videos on the Fleet page")
    elif (boxes := session.boxes_file()) is not None:
        origin = markdown_code(boxes.path) if boxes.path is not None else f"the upload {markdown_literal(boxes.name)}"
        st.caption(f"Boxes read from {origin} ({boxes.format}), not detected here.")


@st.fragment
def workspace() -> None:
    """The frame with its timeline and strip, beside the thresholds and the counts they change. A
    fragment: a threshold move, a verdict or a settled frame reruns this, not the selection below."""
    view = current_view()
    try:
        verdicts = resources.verdict_store().by_assertion(view.video.info.fingerprint)
    except UserError as failure:  # a damaged, locked or unwritable store: the video can still be reviewed
        st.error(markdown_literal(f"Verdicts cannot be read or saved now: {failure}"), icon=":material/error:")
        verdicts = {name: {} for name in ASSERTIONS}
    selection, _ = session.selection()
    viewer_column, side = st.columns([2.6, 1], gap="medium")
    if st.session_state.pop(VIEWER_MOUNTS, False) and st.context.headers:
        # The browser mounts the viewer anew (a link, a page switch, a reload): the viewer goes first,
        # and the rest of the page once it says its frame is on screen. Drawn in the same go, the side
        # panels and the selection below held the frame up (bench/latency.py, the Fleet page's link on the
        # sample: p50 336 -> 216 ms). No browser, as under AppTest: nothing would answer, nothing waits.
        with viewer_column:
            frame_viewer(view, verdicts, selection.frames if selection else None, announce=True)
        frames.wait_until_shown(view.video.info, handshake.current_frame(view.n_frames), SHOWN_WAIT_S)
        side_panels(side, view, verdicts)
    else:
        # Side first, so the counts are on screen by the time the viewer redraws.
        side_panels(side, view, verdicts)
        with viewer_column:
            frame_viewer(view, verdicts, selection.frames if selection else None)
    sync_url(view)  # not the annotator: Review's links are shared, and would sign the receiver's verdicts


def side_panels(side, view: FlickerView, verdicts: dict[str, dict[int, str]]) -> None:
    with side:
        counts_panel(view, verdicts)
        thresholds_panel(view)
        seek_proxy_note(view)
        per_class_panel(view)


def local_selection_panel(view: FlickerView) -> None:
    st.subheader("Local selection")
    st.caption("The tutorial's selection config, run here with Lightly's open selection engine (lightly_mundig): see "
               "what a Lightly Worker run would pick before paying for one.")
    n = view.n_frames
    sibling_flags = {METADATA_KEYS[name]: flags for name, flags in view.assertion_flags.items() if name != FLICKER}
    knobs = st.columns(4 + len(sibling_flags))
    n_pick = knobs[0].number_input("Frames to select", 1, n, min(DEFAULT_N_SAMPLES, n), key="local_n", persist_state="session")
    diversity, least_confidence, flicker_strength = selection_strengths(knobs[1:4])
    strengths = sibling_strengths(knobs[4:], sibling_flags)
    if st.button("Run local selection", icon=":material/auto_awesome:"):
        vectors, _ = resources.embeddings(view.video.info, session.detector_spec())
        siblings = {key: (sibling_flags[key], strength) for key, strength in strengths.items()}
        with error_boundary("Local selection failed"):
            session.set_selection(select_in_video(view.detections, view.flicker, vectors, int(n_pick), diversity,
                                                  least_confidence, flicker_strength, siblings), view.settings)
            st.rerun()
    selection, settings = session.selection()
    if selection is not None:
        selection_results(view, selection, settings)


def selection_results(view: FlickerView, selection, settings: FlickerSettings) -> None:
    st.markdown(f"**{selection.text()}.**")
    if settings != view.settings:  # it picks by the flags of every enabled assertion
        st.caption(f"Picked with the flags of IoU {settings.iou_track:.2f} / {settings.iou_assert:.2f}, minimum score "
                   f"{settings.min_score:.2f}, {settings.mode} mode; the settings have changed since: run it again "
                   "to pick with the current flags.")
    listing = selection_listing((view.video.relpath, frame, view.n_frames) for frame in sorted(selection.frames.tolist()))
    stem = view.video.info.path.stem
    # short labels: in the 1280 px layout "Selected frames (JSON)" and "(CSV)" were both cut to "Selected frame..."
    text, as_json, as_csv, _ = st.columns([2, 1, 1, 2], vertical_alignment="center")
    text.markdown("Download the selected frames:")
    as_json.download_button("JSON", json.dumps(listing, indent=2), f"{stem}-selected.json", "application/json",
                            icon=":material/download:", help="The selected frames as JSON")
    as_csv.download_button("CSV", selection_csv(listing), f"{stem}-selected.csv", "text/csv", icon=":material/download:",
                           help="The selected frames as CSV")
    map_column, gallery_column = st.columns([1, 1], gap="medium")
    with map_column:
        embedding_map_panel(view, selection)
    with gallery_column:
        gallery_panel(view, selection)


def embedding_map_panel(view: FlickerView, selection) -> None:
    _, xy = resources.embeddings(view.video.info, session.detector_spec())
    embedding_map(view.video.info.fingerprint, xy, view.flicker.score, selection.frames,
                  handshake.current_frame(view.n_frames))


def gallery_panel(view: FlickerView, selection) -> None:
    picks = sorted(selection.frames.tolist())
    shown = picks
    if len(picks) > GALLERY_SIZE:
        show_all = st.toggle(f"Show all {len(picks)} picks", key="gallery_all")
        shown = picks if show_all else picks[:GALLERY_SIZE]
        st.caption(f"{len(shown)} of {len(picks)} picks, in frame order.")
    grid = st.columns(4)
    for position, index in enumerate(shown):
        with grid[position % 4]:
            st.image(resources.thumbnail(view.video.info.fingerprint, index, view.video.info), width="stretch")
            flagged = bool(view.flicker.flag_array[index])  # an icon, not words: four across cut "16 · flagged"
            st.button(f"{index}", key=f"show_{index}", on_click=handshake.go_to, args=(index, view.n_frames, True),
                      type="tertiary", icon=":material/flag:" if flagged else ":material/visibility:",
                      help=f"{'A flagged frame: s' if flagged else 'S'}how it in the viewer above")


def prepare_current_frame() -> None:
    """Start decoding the frame the viewer will show (a link's, Open in Review's, a Fleet video's
    first) before anything is drawn: it is ready, or nearly, by the time the viewer asks for it."""
    if (loaded := session.loaded_video()) is not None and session.detections() is not None:
        frames.prepare(loaded.info, handshake.current_frame(session.detections().n_frames))


flags.init_defaults()
session.note_page("review")
st.session_state[VIEWER_MOUNTS] = session.arrived()  # read once, by this run's workspace (not by its reruns)
restore_from_url()
with st.sidebar:  # Review had none: its verdicts were stored unnamed until Verdicts & thresholds was visited
    annotator_field()
prepare_current_frame()
st.container(key=REVIEW_TITLE_KEY).title("Review")  # hidden in a short window (app.py): the frame needs the height
view = require_view()
st.set_page_config(page_title=f"{view.video.relpath} · Review")  # the tab says which camera, of many
video_name_note(view.video.relpath)
boxes_source_caption()
recount_warning(view.video.info)
workspace()
st.divider()
local_selection_panel(view)
