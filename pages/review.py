"""Review: scrub the video with predictions and dashed imputed boxes, retune thresholds live, look
at the flicker timeline, mark flagged frames as true misses or false alarms."""
import numpy as np
import streamlit as st

from core.errors import UserError
from core.plots import embedding_map_figure, flicker_timeline
from core.selection import mean_nearest_neighbour_distance
from core.proxy import proxy_building
from core.render import render_frame
from ui import state
from ui.components import selection_strengths

state.init_defaults()

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

detections_all = st.session_state.get(state.DETECTIONS)
if detections_all is not None:
    floor = float(detections_all.score.min()) if len(detections_all) else 0.0
    with st.sidebar:
        st.slider("Minimum score", 0.0, 1.0, step=0.01, key=state.MIN_SCORE, persist_state="session",
                  help="Filters detections above the floor used when detecting, without running the model again.")
        if st.session_state[state.MIN_SCORE] < floor - 1e-6:
            st.caption(f"Detections start at score {floor:.2f}.")

review = state.require_review()
video = review.video
detections = review.detections
flicker = review.flicker
n = detections.n_frames
flagged = review.flagged_frames
store = state.review_store()
verdicts = store.all(video.info.fingerprint)


def go_to(frame: int) -> None:
    frame = int(np.clip(frame, 0, n - 1))
    st.session_state[state.FRAME] = frame
    st.session_state[state.FRAME_SLIDER] = frame
    st.session_state[state.JUMP_TO] = frame


def step(delta: int) -> None:
    go_to(st.session_state.get(state.FRAME, 0) + delta)


def flagged_neighbour(direction: int) -> None:
    current = st.session_state.get(state.FRAME, 0)
    candidates = flagged[flagged > current] if direction > 0 else flagged[flagged < current][::-1]
    if len(candidates):
        go_to(candidates[0])


def from_slider() -> None:
    go_to(st.session_state[state.FRAME_SLIDER])


def from_jump() -> None:
    go_to(st.session_state[state.JUMP_TO])


def from_timeline() -> None:
    points = st.session_state[state.TIMELINE].selection.points
    if points:
        go_to(points[0]["x"])


def set_verdict(frame: int, verdict) -> None:
    store.set(video.info.fingerprint, frame, verdict)


frame = int(np.clip(st.session_state.get(state.FRAME, 0), 0, n - 1))
st.session_state.setdefault(state.FRAME_SLIDER, frame)
st.session_state.setdefault(state.JUMP_TO, frame)

imputed_counts = np.bincount(flicker.imputed_frame, minlength=n)
top = st.columns(5)
top[0].metric("Flagged frames", f"{len(flagged):,}")
top[1].metric("Share of frames", f"{len(flagged) / max(n, 1):.1%}")
top[2].metric("Imputed boxes", f"{len(flicker.imputed_frame):,}")
top[3].metric("Boxes kept", f"{len(detections):,}")
top[4].metric("Reviewed", f"{sum(1 for f in verdicts if f < n and flicker.flag_array[f])} / {len(flagged)}")

viewer, side = st.columns([2.2, 1], gap="medium")
with side:
    st.markdown(f"### Frame {frame:,} / {n - 1:,}")
    is_flagged = bool(flicker.flag_array[frame])
    if is_flagged:
        st.error(f"Flagged: {len(flicker.imputed_for(frame))} object(s) seen in the neighbours are missing here", icon=":material/flag:")
    else:
        st.success("No flicker on this frame", icon=":material/check_circle:")
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
    st.number_input("Jump to frame", 0, n - 1, step=1, key=state.JUMP_TO, on_change=from_jump)
    if is_flagged:
        st.markdown("**Verdict**")
        current = verdicts.get(frame)
        label = {"miss": "true miss", "false_alarm": "false alarm"}.get(current, "not reviewed")
        st.caption(f"Now: {label}")
        verdict_columns = st.columns(2)
        verdict_columns[0].button("True miss", key="verdict_miss", on_click=set_verdict, args=(frame, "miss"),
                                  type="primary" if current == "miss" else "secondary", shortcut="M",
                                  width="stretch", help="M: the detector really missed an object")
        verdict_columns[1].button("False alarm", key="verdict_false", on_click=set_verdict, args=(frame, "false_alarm"),
                                  type="primary" if current == "false_alarm" else "secondary", shortcut="F",
                                  width="stretch", help="F: nothing is missing here")
        if current:
            st.button("Clear verdict", key="verdict_clear", on_click=set_verdict, args=(frame, None), type="tertiary")
    st.caption("Keys: ← → frames · J K flagged frames · M F verdicts")
    if proxy_building(video.info):
        st.caption(":material/hourglass_top: Preparing fast seeking for this video...")


def draw(index: int, caption: str | None = None) -> np.ndarray:
    image = state.frame_reader(video.info).get(index)
    rows = detections.rows(index)
    return render_frame(image, detections.xyxy[rows], detections.score[rows], detections.cls[rows], detections.names,
                        flicker.imputed_for(index), bool(flicker.flag_array[index]), caption)


with viewer:
    caption = f"frame {frame}" + (" - FLAGGED" if flicker.flag_array[frame] else "")
    st.image(draw(frame, caption), output_format="JPEG", width="stretch")
    st.slider("Frame", 0, n - 1, key=state.FRAME_SLIDER, on_change=from_slider, label_visibility="collapsed")

strip = st.columns(3)
for column, index, label in zip(strip, (frame - 1, frame, frame + 1), ("i-1", "i", "i+1")):
    if 0 <= index < n:
        column.image(draw(index, f"{label}: frame {index}"), output_format="JPEG", width="stretch")

selected = st.session_state.get(state.SELECTED)
selected_frames = selected[1] if selected else None
figure = flicker_timeline(detections.counts_per_frame(), flicker.flag_array, imputed_counts, frame, verdicts,
                          selected_frames)
st.plotly_chart(figure, key=state.TIMELINE, on_select=from_timeline, selection_mode="points",
                config={"displaylogo": False})


def from_embedding_plot() -> None:
    points = st.session_state[state.EMBEDDING_PLOT].selection.points
    if points:
        go_to(points[0]["customdata"])


st.subheader("Local selection")
st.caption("The tutorial's selection config, run here with Lightly's open selection engine (lightly_mundig): see "
           "what a Lightly Worker run would pick before paying for one.")
knobs = st.columns(4)
n_pick = knobs[0].number_input("Frames to select", 1, n, min(50, n), key="local_n", persist_state="session")
diversity, least_confidence, flickering_strength = selection_strengths(knobs[1:])
if st.button("Run local selection", icon=":material/auto_awesome:"):
    from core.export import flickering_values
    from core.schedule import build_selection_config
    from core.selection import build_inputs, run_selection

    vectors, _ = state.embeddings(video.info.fingerprint, st.session_state.get(state.DETECTOR_SPEC), video.info)
    config = build_selection_config(int(n_pick), "local", diversity, least_confidence, flickering_strength)
    try:
        inputs = build_inputs(detections, flickering_values(flicker, "binary"), vectors)
        picked = run_selection(config, inputs)
    except UserError as exc:
        st.error(str(exc))
    else:
        st.session_state[state.SELECTED] = (config, picked)
        st.rerun()
if selected_frames is not None:
    vectors, xy = state.embeddings(video.info.fingerprint, st.session_state.get(state.DETECTOR_SPEC), video.info)
    flagged_picks = int(flicker.flag_array[selected_frames].sum())
    st.markdown(f"**{len(selected_frames)} frames selected**, {flagged_picks} of them flagged; mean nearest-neighbour "
                f"distance {mean_nearest_neighbour_distance(vectors[selected_frames]):.3f} (higher: more diverse).")
    map_column, gallery_column = st.columns([1, 1], gap="medium")
    with map_column:
        st.plotly_chart(embedding_map_figure(xy, flicker.score, selected_frames, frame), key=state.EMBEDDING_PLOT,
                        on_select=from_embedding_plot, selection_mode="points", config={"displaylogo": False})
    with gallery_column:
        grid = st.columns(4)
        for position, index in enumerate(sorted(selected_frames.tolist())[:24]):
            with grid[position % 4]:
                caption = f"{index}{' flagged' if flicker.flag_array[index] else ''}"
                st.image(state.thumbnail(video.info.fingerprint, index, video.info), caption=caption, width="stretch")
                st.button("Show", key=f"show_{index}", on_click=go_to, args=(index,), type="tertiary")

with st.expander("Flagged frames per class"):
    if len(flicker.imputed_frame):
        classes, counts = np.unique(flicker.imputed_cls, return_counts=True)
        st.table({"class": [detections.names.get(int(c), str(c)) for c in classes], "imputed boxes": counts.tolist()})
    else:
        st.write("No imputed boxes at these thresholds.")
