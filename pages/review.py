"""Review: scrub the video with predictions and dashed imputed boxes, retune thresholds live, look
at the flicker timeline, mark flagged frames as true misses or false alarms."""
import numpy as np
import streamlit as st

from core.lightly.selection import select_in_video
from core.proxy import proxy_building
from core.render import render_frame
from ui import state
from ui.components import selection_strengths
from ui.plots import embedding_map_figure, flicker_timeline

VERDICT_LABELS = {"miss": "true miss", "false_alarm": "false alarm"}


def threshold_sidebar() -> None:
    with st.sidebar:
        st.header("Flicker assertion")
        st.radio("Mode", ("reference", "improved"), key=state.MODE, persist_state="session", horizontal=True,
                 help="reference: the tutorial's code, value for value. improved: class-aware, one-to-one matching, "
                      "wider window (see docs/flicker.md).")
        st.slider("IoU tracking", 0.0, 1.0, step=0.01, key=state.IOU_TRACK, persist_state="session",
                  help="Boxes in frames i-k and i+k overlapping more than this are one object.")
        st.slider("IoU assertion", 0.0, 1.0, step=0.01, key=state.IOU_ASSERT, persist_state="session",
                  help="Frame i misses the object when none of its boxes overlaps the interpolated box this much.")
        if st.session_state.get(state.MODE) == "improved":
            st.toggle("Class-aware matching", key=state.CLASS_AWARE, persist_state="session")
            st.toggle("One-to-one matching", key=state.ONE_TO_ONE, persist_state="session")
            st.slider("Half window k", 1, 5, key=state.WINDOW, persist_state="session",
                      help="Also look for objects seen in i-j and i+j for j up to k (catches gaps of several frames).")
            st.toggle("Median score for empty windows", key=state.EMPTY_MEDIAN, persist_state="session")
        detections = st.session_state.get(state.DETECTIONS)
        if detections is not None:
            floor = float(detections.score.min()) if len(detections) else 0.0
            st.slider("Minimum score", 0.0, 1.0, step=0.01, key=state.MIN_SCORE, persist_state="session",
                      help="Filters detections above the floor used when detecting, without running the model again.")
            if st.session_state[state.MIN_SCORE] < floor - 1e-6:
                st.caption(f"Detections start at score {floor:.2f}.")


def counts_panel(view: state.FlickerView, verdicts: dict[int, str]) -> None:
    flicker, n, flagged = view.flicker, view.n_frames, view.flagged_frames
    top = st.columns(5)
    top[0].metric("Flagged frames", f"{len(flagged):,}")
    top[1].metric("Share of frames", f"{len(flagged) / max(n, 1):.1%}")
    top[2].metric("Imputed boxes", f"{len(flicker.imputed_frame):,}")
    top[3].metric("Boxes kept", f"{len(view.detections):,}")
    top[4].metric("Reviewed", f"{sum(1 for f in verdicts if f < n and flicker.flag_array[f])} / {len(flagged)}")


def navigation_panel(view: state.FlickerView, frame: int) -> None:
    n, flagged = view.n_frames, view.flagged_frames

    def step(delta: int) -> None:
        state.go_to(state.current_frame(n) + delta, n)

    def flagged_neighbour(direction: int) -> None:
        current = state.current_frame(n)
        candidates = flagged[flagged > current] if direction > 0 else flagged[flagged < current][::-1]
        if len(candidates):
            state.go_to(candidates[0], n)

    nav = st.columns(2)
    nav[0].button("Previous", icon=":material/chevron_left:", on_click=step, args=(-1,), shortcut="Left",
                  width="stretch", help="Left arrow")
    nav[1].button("Next", icon=":material/chevron_right:", icon_position="right", on_click=step, args=(1,),
                  shortcut="Right", width="stretch", help="Right arrow")
    nav = st.columns(2)
    nav[0].button("Flagged", key="prev_flagged", icon=":material/skip_previous:", on_click=flagged_neighbour,
                  args=(-1,), shortcut="J", width="stretch", help="Previous flagged frame (J)")
    nav[1].button("Flagged", key="next_flagged", icon=":material/skip_next:", icon_position="right",
                  on_click=flagged_neighbour, args=(1,), shortcut="K", width="stretch", help="Next flagged frame (K)")
    st.session_state.setdefault(state.JUMP_TO, frame)
    st.number_input("Jump to frame", 0, n - 1, step=1, key=state.JUMP_TO,
                    on_change=lambda: state.go_to(st.session_state[state.JUMP_TO], n))


def verdict_panel(view: state.FlickerView, frame: int, verdicts: dict[int, str]) -> None:
    store, fingerprint = state.verdict_store(), view.video.info.fingerprint

    def set_verdict(verdict) -> None:
        store.set(fingerprint, frame, verdict)

    st.markdown("**Verdict**")
    current = verdicts.get(frame)
    st.caption(f"Now: {VERDICT_LABELS.get(current, 'not reviewed')}")
    columns = st.columns(2)
    columns[0].button("True miss", key="verdict_miss", on_click=set_verdict, args=("miss",),
                      type="primary" if current == "miss" else "secondary", shortcut="M",
                      width="stretch", help="M: the detector really missed an object")
    columns[1].button("False alarm", key="verdict_false", on_click=set_verdict, args=("false_alarm",),
                      type="primary" if current == "false_alarm" else "secondary", shortcut="F",
                      width="stretch", help="F: nothing is missing here")
    if current:
        st.button("Clear verdict", key="verdict_clear", on_click=set_verdict, args=(None,), type="tertiary")


def frame_side_panel(view: state.FlickerView, frame: int, verdicts: dict[int, str]) -> None:
    flicker = view.flicker
    st.markdown(f"### Frame {frame:,} / {view.n_frames - 1:,}")
    is_flagged = bool(flicker.flag_array[frame])
    if is_flagged:
        st.error(f"Flagged: {len(flicker.imputed_for(frame))} object(s) seen in the neighbours are missing here",
                 icon=":material/flag:")
    else:
        st.success("No flicker on this frame", icon=":material/check_circle:")
    navigation_panel(view, frame)
    if is_flagged:
        verdict_panel(view, frame, verdicts)
    st.caption("Keys: ← → frames · J K flagged frames · M F verdicts")
    if proxy_building(view.video.info):
        st.caption(":material/hourglass_top: Preparing fast seeking for this video...")


def draw(view: state.FlickerView, index: int, caption: str | None = None) -> np.ndarray:
    image = state.frame_reader(view.video.info).get(index)
    return render_frame(image, view.detections.at(index), view.detections.names, view.flicker.imputed_for(index),
                        bool(view.flicker.flag_array[index]), caption)


def viewer_panel(view: state.FlickerView, frame: int) -> None:
    n = view.n_frames
    caption = f"frame {frame}" + (" - FLAGGED" if view.flicker.flag_array[frame] else "")
    st.image(draw(view, frame, caption), output_format="JPEG", width="stretch")
    st.session_state.setdefault(state.FRAME_SLIDER, frame)
    st.slider("Frame", 0, n - 1, key=state.FRAME_SLIDER, label_visibility="collapsed",
              on_change=lambda: state.go_to(st.session_state[state.FRAME_SLIDER], n))


def strip_panel(view: state.FlickerView, frame: int) -> None:
    strip = st.columns(3)
    for column, index, label in zip(strip, (frame - 1, frame, frame + 1), ("i-1", "i", "i+1")):
        if 0 <= index < view.n_frames:
            column.image(draw(view, index, f"{label}: frame {index}"), output_format="JPEG", width="stretch")


def timeline_panel(view: state.FlickerView, frame: int, verdicts: dict[int, str]) -> None:
    def from_timeline() -> None:
        points = st.session_state[state.TIMELINE].selection.points
        if points:
            state.go_to(points[0]["x"], view.n_frames)

    selection = state.selection()
    imputed_counts = np.bincount(view.flicker.imputed_frame, minlength=view.n_frames)
    figure = flicker_timeline(view.detections.counts_per_frame(), view.flicker.flag_array, imputed_counts, frame,
                              verdicts, selection.frames if selection else None)
    st.plotly_chart(figure, key=state.TIMELINE, on_select=from_timeline, selection_mode="points",
                    config={"displaylogo": False})


def local_selection_panel(view: state.FlickerView, frame: int) -> None:
    st.subheader("Local selection")
    st.caption("The tutorial's selection config, run here with Lightly's open selection engine (lightly_mundig): see "
               "what a Lightly Worker run would pick before paying for one.")
    n = view.n_frames
    knobs = st.columns(4)
    n_pick = knobs[0].number_input("Frames to select", 1, n, min(50, n), key="local_n", persist_state="session")
    diversity, least_confidence, flicker_strength = selection_strengths(knobs[1:])
    if st.button("Run local selection", icon=":material/auto_awesome:"):
        vectors, _ = state.video_embeddings(view.video)
        with state.error_boundary("Local selection failed"):
            state.set_selection(select_in_video(view.detections, view.flicker, vectors, int(n_pick), diversity,
                                                least_confidence, flicker_strength))
            st.rerun()
    selection = state.selection()
    if selection is not None:
        selection_results(view, frame, selection)


def selection_results(view: state.FlickerView, frame: int, selection) -> None:
    def from_embedding_plot() -> None:
        points = st.session_state[state.EMBEDDING_PLOT].selection.points
        if points:
            state.go_to(points[0]["customdata"], view.n_frames)

    _, xy = state.video_embeddings(view.video)
    st.markdown(f"**{selection.text()}.**")
    map_column, gallery_column = st.columns([1, 1], gap="medium")
    with map_column:
        st.plotly_chart(embedding_map_figure(xy, view.flicker.score, selection.frames, frame), key=state.EMBEDDING_PLOT,
                        on_select=from_embedding_plot, selection_mode="points", config={"displaylogo": False})
    with gallery_column:
        grid = st.columns(4)
        for position, index in enumerate(sorted(selection.frames.tolist())[:24]):
            with grid[position % 4]:
                caption = f"{index}{' flagged' if view.flicker.flag_array[index] else ''}"
                st.image(state.thumbnail(view.video.info.fingerprint, index, view.video.info), caption=caption,
                         width="stretch")
                st.button("Show", key=f"show_{index}", on_click=state.go_to, args=(index, view.n_frames),
                          type="tertiary")


def per_class_panel(view: state.FlickerView) -> None:
    with st.expander("Flagged frames per class"):
        flicker = view.flicker
        if len(flicker.imputed_frame):
            classes, counts = np.unique(flicker.imputed_cls, return_counts=True)
            st.table({"class": [view.detections.names.get(int(c), str(c)) for c in classes],
                      "imputed boxes": counts.tolist()})
        else:
            st.write("No imputed boxes at these thresholds.")


state.init_defaults()
threshold_sidebar()
view = state.require_view()
frame = state.current_frame(view.n_frames)
verdicts = state.verdict_store().all(view.video.info.fingerprint)
counts_panel(view, verdicts)
viewer, side = st.columns([2.2, 1], gap="medium")
with side:
    frame_side_panel(view, frame, verdicts)
with viewer:
    viewer_panel(view, frame)
strip_panel(view, frame)
timeline_panel(view, frame, verdicts)
local_selection_panel(view, frame)
per_class_panel(view)
