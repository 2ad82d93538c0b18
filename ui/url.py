"""The review mirrored in the URL, so a reload, a bookmark or a link opens the same frame with the
same detector and settings.

Every value read back is untrusted: paths go through the load page's checks, numbers are parsed and
clipped, anything unreadable falls back to its default.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core import fleet, paths
from core.assertions import ASSERTIONS as ASSERTION_NAMES, FLICKER, parse_assertions
from core.errors import UserError
from core.flicker import MODES
from core.label_formats import FORMATS as BOX_FORMATS, ImportedBoxes, import_boxes
from core.settings import BUILTIN_HOG, DEFAULT_CONF, DetectorSpec
from core.words import markdown_literal
from ui import flags, session
from ui.boundary import error_boundary
from ui.flicker_view import FlickerView
from ui.viewer import handshake

BATCH, RELPATH = "batch", "relpath"  # a video of a batch output folder (see pages/fleet.py)
BOXES, BOXES_FORMAT = "boxes", "boxes_format"  # boxes read from a file on this machine (the Load page)
BOXES_UPLOADED = "boxes_uploaded"  # boxes from an upload: not kept, a link cannot read them again
BOXES_PURPOSE, LABELS = "boxes_purpose", "labels"  # the boxes are labels to check (absent: predictions to review)
ASSERTIONS = "assertions"  # the siblings beside flicker that are on (ghost,class-flip); absent: none (a batch's: "flicker")
LINK = "link"  # set by links from the app's other pages (review_link): they move this tab's review too
# The parameters naming what is reviewed (not how, nor where): a link with these of this tab's review moves its frame.
_SOURCE = ("video", BATCH, RELPATH, BOXES, BOXES_FORMAT, BOXES_UPLOADED, BOXES_PURPOSE, "weights", "device", "conf",
           "classes")
_TOGGLES = {flags.CLASS_AWARE: "class_aware", flags.ONE_TO_ONE: "one_to_one", flags.EMPTY_MEDIAN: "empty_median"}


def sync_url(view: FlickerView, **page: str) -> None:
    """Mirror the review in the URL (written only when something changed); ``page``: a page's own
    parameters beside it (the Verdicts page's annotator and plan)."""
    write_url({**review_params(view, handshake.current_frame(view.n_frames)), **page})


def write_url(params: dict[str, str]) -> None:
    """Make ``params`` the page's URL parameters, only when they differ: every write is a message to
    the browser (and in Streamlit a history entry, which ui/mount.js turns into a replacement)."""
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def review_params(view: FlickerView, frame: int) -> dict[str, str]:
    """The review at ``frame`` as URL parameters. A video opened from a batch is named by its batch
    output folder and relpath: a reload reads the batch's detections again; boxes read from a file by
    its path and format (a reload reads the file again), or as uploaded."""
    settings = view.settings
    params = {"frame": str(frame), "mode": settings.mode, "iou_track": str(settings.iou_track),
              "iou_assert": str(settings.iou_assert), "min_score": str(settings.min_score)}
    params = {**_source_params(view.video), **params}
    siblings = [name for name in settings.assertions if name != FLICKER]
    if siblings or session.batch_root() is not None:  # a batch's link: "flicker" alone, or a reload brings back the batch's own
        params[ASSERTIONS] = ",".join(siblings) or FLICKER
    if settings.mode == "improved":
        options = settings.options
        params.update(window=str(options.window), class_aware=str(int(options.class_aware)),
                      one_to_one=str(int(options.one_to_one)), empty_median=str(int(options.empty_window_median)))
    return params


def review_link(view: FlickerView, frame: int) -> dict[str, str]:
    """The query parameters of a link from another page (``st.page_link("pages/review.py", ...,
    query_params=review_link(view, frame))``) to ``frame`` of this review. In this tab it opens Review
    at that frame at once: no run of the page the link is on comes first, as a button's would (the
    Verdicts page's run is ~0.3 s on a 10-minute video). In a new tab it is a deep link like any."""
    return {**review_params(view, frame), LINK: "1"}


def batch_link(root, relpath: str) -> dict[str, str]:
    """The query parameters of a link from the Fleet page to a video of the batch output folder
    ``root``: Review opens it at its first frame with the batch's detections and settings, without a
    run of the Fleet page first (a button's callback made one, ~0.4 s before Review drew anything).
    A link to the video this tab reviews already moves it to frame 0 and keeps its thresholds."""
    return {BATCH: str(root), RELPATH: relpath, LINK: "1"}


def _source_params(video: session.LoadedVideo) -> dict[str, str]:
    """What the tab reviews (of ``_SOURCE``): the batch and relpath, the boxes file, or the video and
    detector."""
    if (batch := session.batch_root()) is not None:
        return {BATCH: str(batch), RELPATH: video.relpath}
    if session.boxes_from_file():
        return {"video": str(video.info.path), **boxes_params(session.boxes_file())}
    return {"video": str(video.info.path), **detector_params(session.detector_spec())}


def detector_params(spec: DetectorSpec) -> dict[str, str]:
    """A detector as URL parameters (what :func:`detector_spec_of` reads back)."""
    params = {"weights": spec.weights, "device": spec.device, "conf": str(spec.conf)}
    if spec.classes:
        params["classes"] = ",".join(spec.classes)
    return params


def restore_from_url() -> None:
    """A reload, bookmark or link reopens the review it names, when this tab has none yet, and a link
    from another page of the app (``review_link``) moves this tab's review to its frame, or opens the
    other review it names. Nothing runs: the detections come from the batch output folder the link
    names, or from the disk cache, or the page says to run detection."""
    params = st.query_params
    if "video" not in params and BATCH not in params:
        return
    if session.detections() is not None:
        if LINK not in params:
            return
        if _names_this_review(params):
            n_frames = session.detections().n_frames
            handshake.go_to(int(_number(params.get("frame"), 0, 0, n_frames - 1)), n_frames, reveal=True)
            return
    with error_boundary("Cannot reopen the review in this link"):
        if BATCH in params:
            if not session.open_from_batch(fleet.check_folder(params[BATCH]), params.get(RELPATH, "")):
                return
            _restore_settings(params, session.detections().n_frames)  # the batch's, unless changed since
            return
        if not session.open_video(params["video"]):
            return
        if BOXES in params or BOXES_UPLOADED in params:
            if _restore_boxes(params):
                _restore_settings(params, session.detections().n_frames)
            return
        if not session.use_cached_detections(detector_spec_of(params)):
            st.info(f"{markdown_literal(session.loaded_video().info.path.name)} is loaded, but its detections for this "
                    "link are not cached here: run detection on Load & detect.")
            return
        _restore_settings(params, session.detections().n_frames)


def restore_onto_sample() -> None:
    """--sample opened the sample in a tab whose link names no video (``/review?frame=122``, a review URL
    kept without it): the frame and settings the link does carry are the sample's, not frame 0."""
    _restore_settings(st.query_params, session.detections().n_frames)


def names_a_review() -> bool:
    """Whether the page's URL names a review to open (a reload, a bookmark, a link: restore_from_url)."""
    return "video" in st.query_params or BATCH in st.query_params


def _names_this_review(params) -> bool:
    """Whether the URL names what this tab reviews (the same video with the same boxes)."""
    review = session.review()
    return {name: params.get(name) for name in _SOURCE} == \
        {name: _source_params(review.video).get(name) for name in _SOURCE}


def boxes_params(boxes: session.BoxesFile | None) -> dict[str, str]:
    """A file on this machine is named with its format; an upload only says it was one (None: the
    page that read them did not say where from, so they count as an upload: nothing pretends).
    Labels say so (the Load page checks them again on a reload)."""
    params = {BOXES_UPLOADED: "1"} if boxes is None or boxes.path is None else {BOXES: str(boxes.path), BOXES_FORMAT: boxes.format}
    return {**params, BOXES_PURPOSE: LABELS} if boxes is not None and boxes.labels else params


def linked_boxes(params) -> tuple[ImportedBoxes, Path, bool] | None:
    """The boxes file a URL names, read again with the Load page's checks (FLICKER_ROOTS, every file
    hostile), and whether they are labels; None for an upload (said on the page). Raises
    :class:`UserError` for a file that cannot be used."""
    if BOXES not in params:
        st.info("The boxes of this review were uploaded, and uploads are not kept: upload them again under "
                "*Boxes made elsewhere* on Load & detect.", icon=":material/upload_file:")
        return None
    fmt = params.get(BOXES_FORMAT, "auto")
    if fmt not in BOX_FORMATS:
        raise UserError(f"the boxes format in this link is not one of {', '.join(BOX_FORMATS)}")
    path = paths.check_allowed(params[BOXES])
    loaded = session.loaded_video()
    return import_boxes(path, loaded.info, loaded.relpath, fmt), path, params.get(BOXES_PURPOSE) == LABELS


def _restore_boxes(params) -> bool:
    """The link's boxes file read again; False when it cannot be (an upload, or the error shown)."""
    if (linked := linked_boxes(params)) is None:
        return False
    session.use_file_boxes(*linked)
    return True


def restore_page_values(**defaults: tuple[str, type]) -> None:
    """A page's own URL parameters back into their session keys (once per tab, when the keys are
    still unset): ``name=(session key, type)``, the type int, str or tuple (a pair of thresholds, as
    :func:`thresholds_param` writes it); a value that does not parse is left out."""
    for name, (key, kind) in defaults.items():
        text = st.query_params.get(name)
        if text is None or key in st.session_state:
            continue
        if kind is int and text.isascii() and text.isdigit() and len(text) <= 6:
            st.session_state[key] = int(text)
        elif kind is str:
            st.session_state[key] = text[:200]
        elif kind is tuple and (pair := _thresholds(text)) is not None:
            st.session_state[key] = pair


def thresholds_param(pair: tuple[float, float]) -> str:
    """A pair of IoU thresholds as one URL parameter ("0.8,0.6")."""
    return ",".join(str(round(float(value), 2)) for value in pair)


def _thresholds(text: str) -> tuple[float, float] | None:
    """The pair :func:`thresholds_param` wrote, each in 0..1; None for anything else."""
    parts = text.split(",") if len(text) <= 40 else []
    values = [_number(part, np.nan, 0.0, 1.0) for part in parts]
    return (values[0], values[1]) if len(values) == 2 and np.isfinite(values).all() else None


def detector_spec_of(params) -> DetectorSpec:
    """The detector a link's parameters name (weights, device, conf, classes), each value checked:
    an unreadable one falls back to its default."""
    classes = sorted({int(c) for c in params.get("classes", "").split(",")
                      if c.strip().isascii() and c.strip().isdigit() and len(c.strip()) <= 9})  # a class id, not 5,000 digits
    return DetectorSpec.of(params.get("weights", BUILTIN_HOG), device=params.get("device", "auto"),
                           conf=_number(params.get("conf"), DEFAULT_CONF, 0.0, 1.0), classes=classes)


def _number(text: str | None, default: float, low: float, high: float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    return float(np.clip(value, low, high)) if np.isfinite(value) else default


def _restore_settings(params, n_frames: int) -> None:
    if params.get("mode") in MODES:
        st.session_state[flags.MODE] = params["mode"]
    for key in (flags.IOU_TRACK, flags.IOU_ASSERT, flags.MIN_SCORE):
        st.session_state[key] = _number(params.get(key), st.session_state.get(key, flags.DEFAULTS.get(key, 0.0)), 0.0, 1.0)
    window = st.session_state.get(flags.WINDOW, flags.DEFAULTS[flags.WINDOW])  # a batch's own, where it set one
    st.session_state[flags.WINDOW] = int(_number(params.get("window"), window, *flags.WINDOW_RANGE))
    for key, name in _TOGGLES.items():
        if params.get(name) in ("0", "1"):
            st.session_state[key] = params[name] == "1"
    if ASSERTIONS in params:  # absent: flicker alone, or the batch's own
        try:
            flags.use_assertions(parse_assertions(params[ASSERTIONS][:200]))
        except UserError:  # its message repeats the unknown names: a link's text is not echoed
            st.warning(f"This link names an assertion the app does not know (it knows {', '.join(ASSERTION_NAMES)}): the "
                       "review shows the ones set on this page.")
    handshake.go_to(int(_number(params.get("frame"), 0, 0, n_frames - 1)), n_frames)

