"""Widgets more than one page shows."""
from __future__ import annotations

from html import escape

import streamlit as st

from core.assertions import CLASS_FLIP, GHOST, METADATA_KEYS
from core.bounded import printable
from core.errors import UserError
from core.verdicts import recounted_note
from core.words import markdown_literal
from ui import resources, session

# The three strategies of the tutorial's selection config. One set of keys: the local selection
# (Review) and the scheduled one (Export & schedule) use the same strengths.
STRENGTHS = (("Diversity strength", "diversity"), ("Least-confidence strength", "least_confidence"),
             ("Flickering strength", "flicker_strength"))
# One WEIGHTS strategy per sibling assertion's metadata key (what `schedule --ghost / --class-flip` set).
SIBLING_STRENGTHS = {METADATA_KEYS[GHOST]: ("Ghost strength", "ghost_strength"),
                     METADATA_KEYS[CLASS_FLIP]: ("Class-flip strength", "class_flip_strength")}


def selection_strengths(containers) -> tuple[float, float, float]:
    """Diversity, least-confidence and flickering strengths, one slider per container."""
    return tuple(container.slider(label, 0.0, 5.0, 1.0, 0.1, key=key, persist_state="session")
                 for container, (label, key) in zip(containers, STRENGTHS))


def sibling_strengths(containers, keys) -> dict[str, float]:
    """Per sibling assertion's metadata key in ``keys`` (ghost, class_flip), the strength of its
    WEIGHTS strategy, one slider per container (0 leaves it out)."""
    wanted = [key for key in SIBLING_STRENGTHS if key in keys]
    return {key: container.slider(SIBLING_STRENGTHS[key][0], 0.0, 5.0, 1.0, 0.1, key=SIBLING_STRENGTHS[key][1],
                                  persist_state="session",
                                  help=f"Weights frames by the '{key}' metadata (1 where the assertion fires).")
            for container, key in zip(containers, wanted)}


def literal_caption(container, text: str) -> None:
    """``text`` someone else typed (a verdict's note) in ``container`` as a caption, shown exactly as
    typed: as escaped HTML rather than Markdown, where a link, an image fetched from another host,
    :color[...] or $math$ would come alive and a bare URL becomes a link; characters that are not
    printable are shown as escapes."""
    container.html(f'<p style="margin: 0; font-size: 0.875rem; white-space: pre-wrap; '
                   f'color: var(--st-gray-text-color, #6b6f7b)">{escape(printable(text, lines=True))}</p>')


def annotator_field() -> None:
    """Who gives the verdicts: one field on Review and on Verdicts & thresholds (the same session key),
    saying so while it is empty (a reload forgets the name, and a team's audit trail lost names silently)."""
    st.text_input("Annotator", key=session.ANNOTATOR, persist_state="session", placeholder="your name",
                  help="Recorded with every verdict, on Review and on Verdicts & thresholds; Z (Undo) takes back your "
                       "own latest one.")
    if not session.annotator():
        st.caption(session.UNNAMED)


def video_name_note(relpath: str) -> None:
    """The video's whole name in the sidebar, which has the room: beside the frame a camera's dated
    name is cut ("north_entrance_camera..." at 1280 px), where the cameras of a batch differ."""
    with st.sidebar:
        st.caption(f"Video: {markdown_literal(relpath)}")


def recount_warning(info) -> None:
    """Said where a video's older verdicts may sit on other frames since frames are counted as PyAV
    decodes them (:func:`core.verdicts.recounted_note`)."""
    try:
        note = recounted_note(resources.verdict_store(), info.fingerprint, info.hidden_frames, info.reordered)
    except UserError:  # a store that cannot be read: the pages say so where they use it
        return
    if note:
        st.warning(note, icon=":material/warning:")
