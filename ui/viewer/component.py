"""The frame viewer: a small ``st.components.v2`` component in plain JS (viewer.js).

Why a component: Streamlit reruns the script and re-sends the page on every interaction, which made
a frame step take about a second and a held arrow key queue reruns. Here the browser holds frames
(JPEG, fetched over HTTP: see :mod:`ui.viewer.frames`) and the boxes, flags, imputed boxes and
verdicts of the whole video, so steps, playback, seeks, the timeline and the i-k..i+k strip never
wait for a rerun. Python hears where the viewer settled and verdicts, each with the frame it was
given on and the assertion it answers, and moves it (:func:`ui.viewer.handshake.go_to`).

Each enabled assertion is a lane: flicker's flags, imputed boxes and verdicts go where they always
went (``flags``, ``imputed``, ``verdicts``); ghost and class flip add theirs under ``siblings``, with
the boxes that fired them as rows of the boxes the viewer fetched (``ghosts``: the one-frame boxes;
``flips``: each flipped box and the class its neighbours agree on). Rows, not boxes: a jittery
detector at a high tracking IoU makes most boxes ghosts, and a slider step must not rebuild them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.assertions import CLASS_FLIP, FLICKER
from core.detections import Detections
from core.errors import UserError
from core.render import IMPUTED_COLOR, PALETTE
from core.verdicts import VERDICT_NAMES, VERDICTS
from core.words import markdown_literal
from ui import resources, session
from ui.flicker_view import ASSERTION_COLORS, ASSERTION_HELP, FlickerView, assertion_label
from ui.js import component_js
from ui.viewer import frames, handshake

_HERE = Path(__file__).parent
_mount = st.components.v2.component(
    "flicker_review.viewer", html=(_HERE / "viewer.html").read_text(), css=(_HERE / "viewer.css").read_text(),
    js=component_js(_HERE / "viewer.js"), isolate_styles=False)
VIEWER = "viewer"  # the component's key
UNSAVED = "viewer_unsaved"  # (["assertion:frame", ...], why) of the verdicts the store refused in the last run
MAX_UNSENT = 500  # verdicts one trigger may carry (a burst of keys while runs lag gives a few); the latest kept
PRELOAD_KEY = "viewer-preload"
REVIEW_TITLE_KEY = "review-title"  # the Review page's title, hidden in short windows (app.py)
_preload = st.components.v2.component("flicker_review.preload", html="", js=component_js(_HERE / "preload.js"))


def preload_viewer() -> None:
    """On a page that links to Review: Streamlit's code for components, fetched when a page draws its
    first one, is fetched here, not after the link is pressed (preload.js; the Fleet page's link on a
    1080p video: p50 218-278 -> 173-189 ms). Draws nothing: app.py hides its element (PRELOAD_KEY), so
    it adds no gap wherever it is called."""
    _preload(key=PRELOAD_KEY)


def view_payload(view: FlickerView, verdicts: dict[str, dict[int, str]], selected: np.ndarray | None,
                 served: Detections) -> dict:
    """Everything the thresholds decide, for the whole video (small next to the frames);
    ``verdicts``: per assertion, ``{frame: verdict}``; ``served``: the boxes the viewer fetches (every
    box above the detection floor), which the rows of ``ghosts`` and ``flips`` index."""
    flicker, settings = view.flicker, view.settings
    every = view.assertion_flags
    served_row = np.flatnonzero(served.score >= settings.min_score)  # kept row -> served row, as Detections.above keeps
    return {
        "id": f"{settings.iou_track:g} {settings.iou_assert:g} {settings.min_score:g} {settings.options} "
              f"{','.join(settings.assertions)}",
        "flags": _flag_text(flicker.flag_array),
        "counts": view.detections.counts_per_frame().tolist(),
        "imputed": _by_frame(flicker.imputed_frame, flicker.imputed_xyxy),
        "verdicts": _verdict_map(verdicts.get(FLICKER, {})),
        "siblings": [{"name": name, "flags": _flag_text(flags_of), "verdicts": _verdict_map(verdicts.get(name, {}))}
                     for name, flags_of in every.items() if name != FLICKER],
        "ghosts": served_row[view.ghost_rows()].tolist(),
        "flips": np.c_[served_row[view.flip_rows()], view.neighbours.neighbour_class[view.flip_rows()]].tolist()
                 if CLASS_FLIP in every else [],
        "assertions": {name: {"label": assertion_label(name), "color": list(ASSERTION_COLORS[name]),
                              "help": ASSERTION_HELP[name]} for name in every},
        "selected": [] if selected is None else sorted(selected.tolist()),
        "min_score": float(np.float32(settings.min_score)),  # the float32 the detections are filtered with
        "k": settings.options.window,
        "names": {str(cls): name for cls, name in view.detections.names.items()},
        "palette": [list(color) for color in PALETTE],
        "imputed_color": list(IMPUTED_COLOR),
    }


def _flag_text(flags: np.ndarray) -> str:
    """Flags per frame as "0101...": a byte each, small next to a JSON list."""
    return (flags.astype(np.uint8) + ord("0")).tobytes().decode()


def _verdict_map(verdicts: dict[int, str]) -> dict[str, str]:
    return {str(frame): verdict for frame, verdict in verdicts.items()}


def _by_frame(frame: np.ndarray, xyxy: np.ndarray) -> dict[str, list]:
    """``{frame: [[x0, y0, x1, y1], ...]}`` (boxes rounded to 0.1 px)."""
    boxes: dict[str, list] = {}
    for f, box in zip(np.asarray(frame).tolist(), np.round(np.asarray(xyxy, float).reshape(-1, 4), 1).tolist()):
        boxes.setdefault(str(f), []).append(box)
    return boxes


_UNSEEN = object()  # a verdict sent without what the store may hold (an older viewer's, a test's)


def record_given(store_of, video: str, n_frames: int, assertions, given: list, annotator: str) -> tuple[list[str], str]:
    """Store the verdicts the viewer gave and has not yet seen back, oldest first: a burst of keys
    between two runs sends several triggers and Streamlit keeps the last (3 of 6 were lost), so each
    trigger carries them all. Each carries what the store may hold for it to be written (``allowed``:
    what the page showed, and what this page sent for that frame since): a resend of one stored
    already finds its own verdict there and writes nothing, and one over a frame judged since by
    another tab or annotator is refused, not written over theirs. Z is an ``undo`` of this
    annotator's latest change on the frame, restoring what it replaced with its own author and
    note. Returns the refused ("assertion:frame") and why; after a store failure (locked, damaged,
    a full disk) the rest wait for the next verdict."""
    refused: list[str] = []
    why, failed, now = "", False, {}
    latest = {f"{entry.get('assertion')}:{entry.get('frame')}": entry for entry in given if isinstance(entry, dict)}
    for entry in latest.values():  # the trigger's own verdict is among those unsent too: once each
        assertion, frame, verdict = entry.get("assertion", FLICKER), entry.get("frame"), entry.get("verdict")
        if (verdict not in (*VERDICTS, None) or assertion not in assertions or not isinstance(frame, int)
                or isinstance(frame, bool) or not 0 <= frame < n_frames):
            continue
        if failed:
            refused.append(f"{assertion}:{frame}")
            continue
        try:
            store = store_of()  # now, not when the viewer was drawn: the file may be another
            if assertion not in now:  # one read per assertion, not per verdict
                now[assertion] = store.all(video, assertion)
            stored = now[assertion]
            current, allowed = stored.get(frame), entry.get("allowed", _UNSEEN)
            if current == verdict:
                continue
            if allowed is not _UNSEEN and (not isinstance(allowed, list) or current not in allowed):
                refused.append(f"{assertion}:{frame}")
                why = why or (f"Frame {frame:,} was judged again since this page showed it (now "
                              f"{VERDICT_NAMES.get(current, 'no verdict')}): your verdict was not written over it")
                continue
            if entry.get("undo"):
                now.pop(assertion)  # what comes back is the store's to say
                if store.undo(video, annotator, assertion, frame) is None:
                    refused.append(f"{assertion}:{frame}")
                    why = why or f"Nothing of yours to undo on frame {frame:,}"
            else:
                store.set(video, frame, verdict, annotator=annotator, assertion=assertion)
                stored[frame] = verdict
        except UserError as failure:
            refused.append(f"{assertion}:{frame}")
            why, failed = f"The verdict on frame {frame:,} was not saved: {failure}", True
    return refused, why


def frame_viewer(view: FlickerView, verdicts: dict[str, dict[int, str]], selected: np.ndarray | None,
                 announce: bool = False) -> None:
    """The viewer, moved when Python made a move since it last drew; ``announce``: it says when its
    first frame is on screen, naming the frame it is sent to (see :func:`ui.viewer.frames.wait_until_shown`)."""
    info, n = view.video.info, view.n_frames

    def sent(name: str):
        """What the viewer sent (None when a run lost the component's state: nothing to do then)."""
        return st.session_state[VIEWER].get(name)

    def on_frame() -> None:
        if (frame := sent("frame")) is not None:
            handshake.frame_shown(int(np.clip(frame, 0, n - 1)))

    def on_verdict() -> None:
        latest = sent("verdict") or {}
        given = [*(latest.get("unsent") or []), latest][-MAX_UNSENT:]
        refused, why = record_given(resources.verdict_store, info.fingerprint, n, view.assertions, given,
                                    session.annotator())
        if refused:
            st.session_state[UNSAVED] = (refused, why)

    unsaved, why = st.session_state.pop(UNSAVED, ([], ""))  # said once, on the run the verdict started
    if why:
        st.error(markdown_literal(why) + (f" ({len(unsaved) - 1:,} more not saved with it.)" if len(unsaved) > 1 else ""),
                 icon=":material/error:")
    count, reveal = handshake.seek()
    review = session.review()
    _mount(key=VIEWER, on_frame_change=on_frame, on_verdict_change=on_verdict, data={
        "video": {"key": info.fingerprint, "name": view.video.relpath, "n": n, "fps": info.fps, "width": info.width,
                  "height": info.height,
                  "frames": frames.frames_url(info), "boxes": frames.boxes_url(review.detection_id, review.detections)},
        "view": view_payload(view, verdicts, selected, review.detections),
        "seek": [count, handshake.current_frame(n), reveal],
        "unsaved": unsaved,  # "assertion:frame" of the verdicts the store refused: shown as not given
        "announce": announce,
    })
