"""One tab's review, typed, in one session key, changed only through the functions here.

Per-tab state lives in ``st.session_state`` (two browser tabs never interfere). The review is one
:class:`Review` under :data:`REVIEW`: the open video and, once detection ran, its detections, the
:class:`~core.settings.DetectorSpec` they came from and their id (core's detection cache key), the
last export and the last local selection. Widgets keep their values under their own keys.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import streamlit as st

from core import paths
from core.detections import Detections
from core.settings import DetectorSpec, FlickerSettings
from core.uploads import discard_upload, save_upload, uploads_dir
from core.video import VideoInfo
from core.words import markdown_literal
from ui import flags, resources
from ui.boundary import error_boundary
from ui.viewer import handshake

if TYPE_CHECKING:  # the export and selection modules load on the pages that use them
    from core.label_formats import ImportedBoxes
    from core.lightly.export import ExportSummary
    from core.lightly.selection import VideoSelection

REVIEW = "review"  # the Review
# Beside the review, not part of it: they outlive a change of video or detections.
DETECTION_PROGRESS = "detection_progress"  # (done, total) of the run in progress: Cancel reports it
ANNOTATOR = "annotator"  # widget: who gives the verdicts
_PAGE, _PREVIOUS_PAGE = "_page", "_previous_page"  # the page of this full run, and the last one's (note_page)
_SAMPLE_OFFERED = "_sample_offered"  # --sample opens the sample once per tab
FILE_BOXES = DetectorSpec(conf=0.0)  # the "detector" of boxes read from a file: no model ran, every box is shown


@dataclass(frozen=True)
class LoadedVideo:
    info: VideoInfo
    relpath: str  # name used in Lightly file names (relative to the input datasource root)


@dataclass(frozen=True)
class BoxesFile:
    """Where the review's boxes were read from, instead of a detector: a path on this machine (a link
    reads it again) or an upload (``path`` None: gone once read, a link cannot bring it back)."""

    path: Path | None
    format: str  # as read (never "auto")
    name: str  # as shown: the file's name
    labels: bool = False  # human labels to check (the Load page lists their suspicious frames), not predictions


@dataclass(frozen=True, eq=False)
class Review:
    """What this tab reviews. ``detections``, ``detector`` and ``detection_id`` are set together."""

    video: LoadedVideo
    detections: Detections | None = None  # every box above the detection floor
    detector: DetectorSpec | None = None  # the run that made them
    detection_id: str | None = None  # ``DetectorSpec.cache_key``: names the video + model + floor + classes
    export: ExportSummary | None = None  # the last export of these detections
    batch: Path | None = None  # the batch output folder these detections were read from (None: detected here)
    boxes_file: BoxesFile | None = None  # the file these detections were read from (None: a detector's)
    selection: tuple[VideoSelection, FlickerSettings] | None = None  # the last local selection, with its flags' settings


def refuse_sharing_without_roots() -> None:
    """Stop the page, saying what to set, when the server listens beyond this machine and no
    FLICKER_ROOTS limits the paths it reads and writes: anyone on the network could open any file of
    the server as a video, or export into any folder it may write."""
    address = st.get_option("server.address")  # None: not configured (the app's own config says 127.0.0.1)
    if address is None or _loopback(address) or paths.allowed_roots() is not None:
        return
    st.error(markdown_literal(f"This app listens on {address or 'every address'}, beyond this machine, without "
                              "FLICKER_ROOTS: set FLICKER_ROOTS to the folders it may read and write (such as "
                              "/data/videos:/data/exports) and restart it, or serve it on 127.0.0.1."))
    st.stop()


def _loopback(address: str | None) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:  # "" (every address) or a host name
        return False


def review() -> Review | None:
    return st.session_state.get(REVIEW)


def _update(**changes) -> None:
    st.session_state[REVIEW] = replace(st.session_state[REVIEW], **changes)


def set_video(path: Path, relpath: str | None = None) -> bool:
    """Probe and open a video for review (warnings shown), replacing the previous review. Returns
    False (with the error shown) when the file cannot be used: the previous video then stays open,
    and the page says so."""
    probed = None
    with error_boundary():
        probed = resources.video_info(path)  # probed once while the file is unchanged
    if probed is None:
        _say_still_open()
        return False
    info, said = probed
    for warning in said:
        st.warning(markdown_literal(warning))  # it quotes the file's name
    st.session_state[REVIEW] = Review(LoadedVideo(info, relpath or info.path.name))
    handshake.reset()
    return True


def _say_still_open() -> None:
    if (previous := loaded_video()) is not None:
        st.info(f"{markdown_literal(previous.relpath)} is still open.", icon=":material/info:")


def open_video(path_text: str) -> bool:
    """A video named by the user (the path box, or a link's URL): outside ``FLICKER_ROOTS`` it is
    refused before anything touches the file."""
    with error_boundary():
        path = paths.expand_home(path_text.strip())
        if not _app_owned(path):  # the sample and the uploads the app kept: a reload of their review opens them
            paths.check_allowed(path)
        return set_video(path)
    _say_still_open()
    return False


def _app_owned(path: Path) -> bool:
    """The bundled sample, or a video the app kept from an upload (its content-keyed folder)."""
    try:
        resolved = path.resolve()
        return resolved == Path(paths.SAMPLE_VIDEO).resolve() or uploads_dir().resolve() in resolved.parents
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a loop of links: check_allowed says what is wrong
        return False


def open_upload(name: str, data: BinaryIO) -> bool:
    """Keep an uploaded video and open it, named as kept (the name's last part, control characters made "_", as a reload
    of its review names it); a file that is not a usable video is deleted again."""
    target = save_upload(name, data)
    if set_video(target, target.name):
        return True
    discard_upload(target)
    return False


def open_sample_once(linked: bool) -> bool:
    """``streamlit run app.py -- --sample``: the tab opens on the bundled sample, whichever page it starts
    on (app.py), with the default detector's boxes when they are cached, as the Load page shows them
    (nothing runs). Once per tab, so loading another video sticks; never in a tab that starts on a link
    naming a review (``linked``: ui.url.names_a_review), whose review wins. Whether it opened the sample
    with its boxes (the link's frame and settings then apply to it: ui.url.restore_onto_sample)."""
    if st.session_state.get(_SAMPLE_OFFERED):
        return False
    st.session_state[_SAMPLE_OFFERED] = True
    if not linked and review() is None and set_video(paths.SAMPLE_VIDEO):
        with error_boundary("Cannot read the sample's cached detections"):
            return use_cached_detections(DetectorSpec())  # the Load page's default model
    return False


def loaded_video() -> LoadedVideo | None:
    return current.video if (current := review()) is not None else None


def use_detections(detections: Detections, detector: DetectorSpec, detection_id: str) -> None:
    """Review these detections of the open video, made by ``detector``; ``detection_id`` is
    ``detector.cache_key(video, model)``. The minimum score starts at the detection floor."""
    st.session_state[REVIEW] = Review(review().video, detections, detector, detection_id)
    flags.start_at_floor(detector.conf)
    handshake.reset()


def use_cached_detections(spec: DetectorSpec) -> bool:
    """Review the open video's detections by ``spec`` when an earlier run cached them (nothing runs);
    False when none are cached."""
    model = resources.detector(spec)
    info = loaded_video().info
    if (cached := spec.cached(info, model)) is None:
        return False
    use_detections(cached, spec, spec.cache_key(info, model))
    return True


def use_file_boxes(imported: ImportedBoxes, path: Path | None, labels: bool = False) -> None:
    """Review boxes read from a file (the Load page, or a link naming the file): ``path`` where a
    link may read them again, None for an upload; ``labels``: they are labels to check."""
    use_detections(imported.detections, FILE_BOXES, imported.detection_id)
    _update(boxes_file=BoxesFile(path, imported.format, imported.source, labels))


def boxes_from_file() -> bool:
    """Whether the tab reviews boxes read from a file (a path or an upload) rather than a detector's."""
    from core.label_formats import FILE_ID_PREFIX

    return (current := review()) is not None and (current.detection_id or "").startswith(FILE_ID_PREFIX)


def boxes_file() -> BoxesFile | None:
    """The file the tab's boxes were read from (None: a detector's, or a batch's)."""
    return current.boxes_file if (current := review()) is not None else None


def open_from_batch(root: Path, relpath: str) -> bool:
    """A video of a batch output folder, reviewed with the detections the batch exported (nothing is
    detected again) at the settings the batch recorded; False (the error shown) when it cannot be."""
    from core import fleet

    with error_boundary(f"Cannot open {relpath}"):
        video = resources.batch_video(root, relpath)  # read once while the batch and the video are unchanged
        recorded = fleet.read_settings(root)
        st.session_state[REVIEW] = Review(LoadedVideo(video.info, relpath))
        use_detections(video.detections, recorded.detector if recorded else DetectorSpec(), video.detection_id)
        _update(batch=root)
        if recorded is not None:
            _show_settings(recorded.flicker)
        return True
    return False


def batch_root() -> Path | None:
    """The batch output folder the tab's detections were read from (None when detected here)."""
    return current.batch if (current := review()) is not None else None


def _show_settings(settings: FlickerSettings) -> None:
    """Put ``settings`` on the review's widgets (before they are drawn on this run)."""
    st.session_state.update({flags.MODE: settings.mode, flags.MIN_SCORE: settings.min_score})
    flags.use_thresholds(settings.iou_track, settings.iou_assert)
    flags.use_assertions(settings.assertions)  # a batch run with --assertions flicker,ghost opens with ghost on
    if settings.mode == "improved":
        options = settings.options
        st.session_state.update({flags.CLASS_AWARE: options.class_aware, flags.ONE_TO_ONE: options.one_to_one,
                                 flags.WINDOW: options.window, flags.EMPTY_MEDIAN: options.empty_window_median})


def detections() -> Detections | None:
    """The tab's detections, every box above the detection floor."""
    return current.detections if (current := review()) is not None else None


def detections_for(detection_id: str) -> Detections | None:
    """The tab's detections when they came from this video + model + floor + classes."""
    current = review()
    return current.detections if current is not None and current.detection_id == detection_id else None


def detector_spec() -> DetectorSpec | None:
    """The detector behind the tab's detections."""
    return current.detector if (current := review()) is not None else None


def set_detection_progress(done: int, total: int) -> None:
    st.session_state[DETECTION_PROGRESS] = (done, total)


def detection_progress() -> tuple[int, int] | None:
    return st.session_state.get(DETECTION_PROGRESS)


def pop_detection_progress() -> tuple[int, int] | None:
    return st.session_state.pop(DETECTION_PROGRESS, None)


def set_export_result(summary: ExportSummary) -> None:
    _update(export=summary)


def export_result() -> ExportSummary | None:
    return current.export if (current := review()) is not None else None


def set_selection(selection: VideoSelection, settings: FlickerSettings) -> None:
    _update(selection=(selection, settings))


def selection() -> tuple[VideoSelection, FlickerSettings] | tuple[None, None]:
    """The last local selection and the settings (thresholds, mode, floor) its flags came from."""
    current = review()
    return current.selection if current is not None and current.selection is not None else (None, None)


def annotator() -> str:
    return str(st.session_state.get(ANNOTATOR, "")).strip()


UNNAMED = "No name yet: verdicts are saved unnamed (a reload forgets the name)."  # under the field while it is empty


def note_page(name: str) -> None:
    """Called at the top of every page (a full run, not a fragment's): the page this run shows."""
    st.session_state[_PREVIOUS_PAGE] = st.session_state.get(_PAGE)
    st.session_state[_PAGE] = name


def arrived() -> bool:
    """Whether this full run brings its page up: the session's first run (a link opened, a reload)
    or a switch from another page, not a rerun of the page on screen."""
    return st.session_state.get(_PREVIOUS_PAGE) != st.session_state.get(_PAGE)
