"""The Verdicts page's review queue: a small ``st.components.v2`` component in plain JS (queue.js).

Why a component: a verdict given through Streamlit buttons reran the whole page (0.75-1.8 s) before
the next frame appeared. Here the browser holds the queue (its frames, their dashed boxes, the
verdicts given so far), fetches the video's boxes once and the JPEGs of the next frames ahead from the
viewer's routes (:mod:`ui.viewer.frames`, the same URLs as Review: the browser's cache serves both); a key or click
draws the next queued frame at once and posts the verdict to this package's route (``routes``).
The page's figures catch up on the next rerun, which the queue asks for when the plan is done or
when the reviewer presses "Update the estimates".
"""
from __future__ import annotations

from pathlib import Path
from typing import Collection

import numpy as np
import streamlit as st

from core.qa import ReviewQueue
from core.render import FLAGGED_COLOR, IMPUTED_COLOR, PALETTE
from core.verdicts import VerdictStore
from ui import session
from ui.flicker_view import FlickerView
from ui.verdict_queue.routes import NOTE_CHARS, QueueTarget, new_token, queue_url
from ui.js import component_js
from ui.viewer import frames

_HERE = Path(__file__).parent
_mount = st.components.v2.component(
    "flicker_review.verdict_queue", html=(_HERE / "queue.html").read_text(), css=(_HERE / "queue.css").read_text(),
    js=component_js(_HERE / "queue.js"), isolate_styles=False)
QUEUE = "verdict_queue"  # the component's key
TOKEN = "verdict_queue_token"  # session key: this tab's queue token, the same on every rerun
AFTER_PLAN = 200  # flagged frames after the plan sent with a run; the rest come with the next rerun


def _rounded(boxes: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(boxes, dtype=float).reshape(-1, 4), 1).tolist()


def queue_frames(queue: ReviewQueue, verdicts: dict[int, str]) -> list[int]:
    """The frames of the queue the browser gets with this run, in order: the whole plan (judged ones
    too: Undo brings them back without a rerun), then the flagged frames after it up to the
    AFTER_PLAN-th without a verdict (the rest come with a later rerun)."""
    after, unjudged = queue.frames[queue.planned:], 0
    for end, frame in enumerate(after):
        unjudged += frame not in verdicts
        if unjudged > AFTER_PLAN:
            after = after[:end]
            break
    return [*queue.plan_frames, *after]


def unjudged_after_plan(queue: ReviewQueue, verdicts: dict[int, str], sent: int) -> int:
    return sum(frame not in verdicts for frame in queue.frames[sent:])


def frame_entry(view: FlickerView, frame: int, planned: bool, counts: bool) -> dict:
    """What the reviewer needs to judge ``frame`` beside its image and boxes: the dashed boxes,
    whether it is flagged, whether it is one of the plan's, and whether a verdict on it changes the
    figures (``counts``: the plan's, or one an earlier plan drew whose verdict counts now: a new one
    given after the plan takes it out)."""
    return {"frame": int(frame), "planned": planned, "counts": planned or counts, "flagged": bool(view.flicker.flag_array[frame]),
            "imputed": _rounded(view.flicker.imputed_for(frame))}


def verdict_queue(view: FlickerView, queue: ReviewQueue, verdicts: dict[int, str], store: VerdictStore,
                  annotator: str, earlier: dict[int, str] | None = None, counted_outside: int = 0,
                  counted: Collection[int] = ()) -> None:
    """The queue, from its first frame without a verdict; verdicts go to ``store`` as ``annotator``'s.
    ``earlier``: the verdicts on plan frames judged before any plan drew them, asked again (shown, not
    counted); ``counted_outside``: verdicts the estimates count on frames of other plans (a smaller one);
    ``counted``: the frames whose verdicts the estimates count now."""
    info, review = view.video.info, session.review()
    token = st.session_state.setdefault(TOKEN, new_token())
    queued = queue_frames(queue, verdicts)
    post_url = queue_url(token, QueueTarget(store, info.fingerprint, view.n_frames, annotator,
                                            frozenset(queue.plan_frames)))
    _mount(key=QUEUE, on_refresh_change=lambda: None, data={
        "video": {"key": info.fingerprint, "name": view.video.relpath, "n": view.n_frames, "width": info.width,
                  "height": info.height},
        "frames_url": frames.frames_url(info),
        # every box of the video, fetched once (the minimum score is applied in the browser, as on Review)
        "boxes_url": frames.boxes_url(review.detection_id, review.detections),
        "min_score": float(np.float32(view.settings.min_score)),  # the float32 the detections are filtered with
        "post_url": post_url,
        "annotator": annotator,
        "planned": queue.planned,
        "planned_total": queue.plan_size,  # more than planned while the plan's second phase waits for the first's verdicts
        # flagged frames after the plan without a verdict that this run does not send (the browser counts the sent ones)
        "after_plan_unsent": unjudged_after_plan(queue, verdicts, len(queued)),
        "more": len(queued) < len(queue.frames),  # the rest come with a rerun, which the queue asks for when it runs dry
        "queue": [frame_entry(view, frame, position < queue.planned, frame in counted) for position, frame in enumerate(queued)],
        "verdicts": {str(frame): verdicts[frame] for frame in queued if frame in verdicts},
        "earlier": {str(frame): verdict for frame, verdict in (earlier or {}).items()},
        "counted_outside": counted_outside,
        "note_chars": NOTE_CHARS,
        "names": {str(cls): name for cls, name in view.detections.names.items()},
        "palette": [list(color) for color in PALETTE],
        "imputed_color": list(IMPUTED_COLOR),
        "flagged_color": list(FLAGGED_COLOR),
    })
