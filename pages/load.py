"""Load & detect: pick a video and a model, run detection with progress, cached on disk."""
from collections import deque
from pathlib import Path
from typing import Sequence

import streamlit as st

from core import fleet
from core.assertions import ASSERTIONS
from core.batch import BatchConfig, BatchProgress, VideoRow, run_batch
from core.detect import Detector
from core.errors import RefusedWeights, UserError
from core.label_formats import FILE_ID_PREFIX, FORMATS as BOX_FORMATS, MAX_LABEL_BYTES, ImportedBoxes, import_boxes, size_limits
from core.label_qa import LABEL_IOU, LabelAudit, audit_detections
from core.paths import SAMPLE_VIDEO, check_allowed, expand_home, outside_roots, typed_folder
from core.run import RunConfig
from core.settings import BUILTIN_HOG, DEFAULT_CONF, DetectorSpec, resolve_classes
from core.uploads import discard_upload, save_upload, upload_as_file
from core.video import VIDEO_EXTENSIONS
from core.words import counted, markdown_literal
from ui import flags, resources, session
from ui.boundary import error_boundary
from ui.url import (BOXES, BOXES_PURPOSE, BOXES_UPLOADED, LABELS, boxes_params, detector_params, detector_spec_of, linked_boxes,
                    write_url)
from ui.viewer.component import preload_viewer

SOURCES = ("Bundled sample", "Upload", "Local path")
BOX_ORIGINS = ("Upload", "Local path")
BOX_PURPOSES = ("Predictions: review their flags", "Labels: check them")
LABEL_AUDIT = "label_audit"  # (detection_id, LabelAudit) of the labels last checked
MODELS = ("Offline people detector (HOG, built in)", "YOLO weights path", "Upload weights")
DEVICES = ("auto", "cpu", "cuda")
CLASSES_FROM_URL = "load_classes_from_url"  # a reload's class ids, or a batch review's names or ids, until the model names them
WEIGHTS_UPLOAD = "load_weights_upload"  # (upload's file id, path kept) of the weights uploaded last
VIDEO_UPLOAD = "load_video_upload"  # (upload's file id, whether it opened) of the video chosen in the uploader last
LOGGED_VIDEOS = 8  # the batch's log: its latest videos' lines
DETECTION_FPS = "load_detection_fps"  # the speed of the run just done, for the summary drawn after it


def video_panel() -> None:
    st.subheader("Video")
    st.session_state.setdefault("source", SOURCES[0])  # (a default given here as well would clash with a link's)
    source = st.segmented_control("Source", SOURCES, key="source", persist_state="session")
    if source == "Bundled sample":
        st.caption("`vtest.avi` from OpenCV's sample data: pedestrians on a path, 795 frames at 10 fps.")
        loaded = session.loaded_video()  # (a click opens it in a callback, so this run already sees it)
        is_open = loaded is not None and Path(loaded.info.path) == Path(SAMPLE_VIDEO)
        st.button("Load the sample", icon=":material/play_circle:", disabled=is_open, on_click=session.set_video,
                  args=(SAMPLE_VIDEO,), help="The sample is open." if is_open else None)
    elif source == "Upload":
        upload = st.file_uploader("Video file", type=[ext[1:] for ext in VIDEO_EXTENSIONS], key="video_upload",
                                  help="The file chosen opens here at once.")
        if upload is not None:
            open_chosen(upload)
    elif source == "Local path":
        with st.form("local_path", border=False):  # a form, so Enter in the box loads the file
            path = st.text_input("Path to a video on this machine", placeholder="/data/drive/cam0.mp4")
            if st.form_submit_button("Load file") and path.strip() and not session.open_video(path):
                folder_hint(path)
    video_facts(session.loaded_video())


def open_chosen(upload) -> None:
    """The video chosen in the uploader opens at once, kept and probed once per file chosen (a copy read through: seconds
    for GBs, under a spinner). A file waiting for a second click (*Load upload*) let *Run detection* run on the video
    open before it. A file refused (one red line) is said to be not open on every later run while it stays chosen."""
    tried = st.session_state.get(VIDEO_UPLOAD)
    if tried is None or tried[0] != upload.file_id:
        opened = False
        with error_boundary("Cannot keep the upload"), st.spinner(f"Opening {markdown_literal(upload.name)}...", show_time=True):
            opened = session.open_upload(upload.name, upload)
        st.session_state[VIDEO_UPLOAD] = (upload.file_id, opened)
    elif not tried[1]:
        still = "" if (loaded := session.loaded_video()) is None else f" {markdown_literal(loaded.relpath)} is still open."
        st.warning(f"{markdown_literal(upload.name)} did not open: choose another file.{still}", icon=":material/error:")


def folder_hint(path_text: str) -> None:
    """A folder typed where a video goes ("... is a directory, not a video file", and nothing said
    of what opens a folder): the batch section below takes it, filled in there."""
    try:
        folder = expand_home(path_text.strip())
        if outside_roots(folder) or not folder.is_dir():  # outside FLICKER_ROOTS: nothing said of what is there
            return
    except (UserError, OSError, ValueError):  # ~nosuchuser, a NUL byte, a loop of links: open_video said why
        return
    if (folder / fleet.SUMMARY_CSV).is_file():
        st.session_state["batch_open_dir"] = str(folder)
        st.info("This is a batch output folder: open it on the Fleet page from *Many videos: a batch* below "
                "(filled in there).", icon=":material/view_list:")
    else:
        st.session_state["batch_inputs"] = str(folder)
        st.info("For a folder of videos, run a batch on it under *Many videos: a batch* below (filled in there), "
                "or name one video in it here.", icon=":material/view_list:")


def video_facts(loaded) -> None:
    if loaded is None:
        return
    info = loaded.info
    st.markdown(f"**{markdown_literal(loaded.relpath)}**")
    first, second = st.columns(2), st.columns(2)
    first[0].metric("Resolution", f"{info.width} x {info.height}")
    first[1].metric("Frames", f"{info.frame_count:,}", help="As PyAV decodes them: a header's own count can differ")
    second[0].metric("Frame rate", f"{info.fps:.2f} fps")
    second[1].metric("Duration", f"{info.duration_s:.1f} s")
    st.caption(f"codec {info.codec}, {counted(len(info.keyframes), 'keyframe')}")


def model_panel() -> tuple[Detector | None, DetectorSpec | None]:
    """The chosen detector and its spec (None until one loads)."""
    st.subheader("Model")
    model_choice = st.radio("Detector", MODELS, key="model_choice", persist_state="session")
    weights = BUILTIN_HOG
    if model_choice == "YOLO weights path":
        weights = st.text_input("Weights (.pt, .onnx, or a model .yaml for random weights)", key="weights_path",
                                placeholder="/models/yolov8x.pt", persist_state="session").strip()
    elif model_choice == "Upload weights":
        weights = kept_weights(st.file_uploader("Weights file", type=["pt", "onnx"]))
    device = st.selectbox("Device", DEVICES, key="device", persist_state="session")
    st.session_state.setdefault("conf", DEFAULT_CONF)  # (a value given here as well would clash with a link's)
    conf = st.number_input("Confidence floor", 0.0, 1.0, step=0.01, key="conf", persist_state="session",
                           help="Boxes below this are never kept. Keep it low (the tutorial uses 0.1): the review "
                                "page filters above it without running the model again.")
    detector, refused = None, False
    if weights:
        with error_boundary():
            try:
                detector = resources.detector(DetectorSpec(weights, device))
            except RefusedWeights:
                refused = True
                raise
    if detector is None:
        if refused and model_choice == "Upload weights":  # code in its pickle, no model: not kept (not for a device)
            discard_upload(Path(weights))
            st.session_state.pop(WEIGHTS_UPLOAD, None)
        return None, None
    st.caption(f"running on **{detector.device}** · {len(detector.names)} "
               f"class{'es' if len(detector.names) != 1 else ''}")
    names = detector.names
    if (given := st.session_state.pop(CLASSES_FROM_URL, None)) is not None:  # a reload's ids; a batch's names or ids
        st.session_state["classes"] = [names[i] for i in known_classes(given, names)]
    chosen = st.multiselect("Classes to keep (empty: all)", list(names.values()), key="classes")
    # kept as ids (the URL writes classes=0,2), in the strings DetectorSpec holds
    classes = tuple(str(i) for i, name in sorted(names.items()) if name in chosen) or None
    return detector, DetectorSpec(weights, device, conf, classes)


def known_classes(given, names: dict[int, str]) -> list[int]:
    """The ids of the classes ``given`` (names or ids, as --classes takes them) that this model has: one from
    another model's link is left out, not an error."""
    ids: set[int] = set()
    for item in given:
        try:
            ids.update(resolve_classes([item], names) or ())
        except UserError:
            pass
    return sorted(ids)


def kept_weights(upload) -> str:
    """The uploaded weights' path under the data folder, kept once per upload (not hashed and copied
    again on every run of the page); "" with none, or with one line when it cannot be kept."""
    if upload is None:
        return ""
    kept = st.session_state.get(WEIGHTS_UPLOAD)
    if kept is not None and kept[0] == upload.file_id and Path(kept[1]).is_file():
        return kept[1]
    with error_boundary("Cannot keep the uploaded weights"):
        path = str(save_upload(upload.name, upload))
        st.session_state[WEIGHTS_UPLOAD] = (upload.file_id, path)
        return path
    return ""


def detection_panel(loaded: session.LoadedVideo, detector: Detector, spec: DetectorSpec) -> None:
    detection_id = spec.cache_key(loaded.info, detector)
    # boxes from a file or a batch output folder stay until a run (the batch's were swapped for the cache's, and its review
    # with them: its settings, Back to the batch, the batch's export)
    if session.detections_for(detection_id) is None and not showing_file_boxes() and session.batch_root() is None:
        cached = spec.cached(loaded.info, detector)
        if cached is not None:
            session.use_detections(cached, spec, detection_id)
    buttons = st.container(horizontal=True)  # each button as wide as its label: columns cut "Run detection" at 1280 px
    # then the next step, Review, is the one to take (boxes from a file or a batch too: red, Run detection read as owed)
    done = session.detections_for(detection_id) is not None or showing_file_boxes() or session.batch_root() is not None
    run = buttons.button("Run detection", type="secondary" if done else "primary", icon=":material/play_arrow:",
                         key="run_detection")
    # Any click reruns the page, which interrupts a detection in progress; nothing half-done is cached.
    if buttons.button("Cancel", icon=":material/stop:", key="cancel_detection",
                      disabled=not run and session.detection_progress() is None):
        cancelled(session.pop_detection_progress())
    if run:
        session.set_detection_progress(0, loaded.info.frame_count)  # Cancel stays offered from the first frame
        bar = st.progress(0.0, text="Starting...")
        speed = {}

        def show(progress) -> None:
            session.set_detection_progress(progress.done, progress.total)
            speed["fps"] = progress.fps
            bar.progress(progress.done / max(progress.total, 1),
                         text=f"{progress.done:,} / {progress.total:,} frames · {progress.fps:.1f} fps · "
                              f"ETA {progress.eta_s:.0f} s")

        with error_boundary("Detection failed"):
            session.use_detections(spec.detect(loaded.info, detector, progress=show), spec, detection_id)
            # drawn again: as drawn while it ran, Run detection stayed red and Cancel offered after the last frame
            session.pop_detection_progress()
            st.session_state[DETECTION_FPS] = speed.get("fps")
            st.rerun()
        session.pop_detection_progress()
    detection_summary(session.detections_for(detection_id), st.session_state.pop(DETECTION_FPS, None))
    batch_boxes_note(loaded)


def batch_boxes_note(loaded: session.LoadedVideo) -> None:
    """The review holds a batch's boxes of this video, not this model's: said, with the way to them."""
    if (root := session.batch_root()) is None:
        return
    st.page_link("pages/review.py", label="**Review the batch's boxes**", icon=":material/arrow_forward:")
    st.caption(f"The review holds the boxes the batch in {markdown_literal(root)} made of "
               f"{markdown_literal(loaded.relpath)}; *Run detection* replaces them with this model's.")


def cancelled(progress) -> None:
    if progress is None:
        st.info("No detection is running.")
    else:
        st.warning(f"Detection cancelled after {progress[0]:,} of {progress[1]:,} frames. Nothing was kept: "
                   "*Run detection* starts again from the first frame.", icon=":material/stop_circle:")


def detection_summary(detections, fps: float | None = None) -> None:
    """What the boxes are (``fps``: the speed of the run just done, said once)."""
    if detections is None:
        return
    if detections.decode_warning:  # frames that did not decode were detected on as the frame before them
        st.warning(markdown_literal(detections.decode_warning), icon=":material/broken_image:")
    if not len(detections):
        where = "the one frame" if detections.n_frames == 1 else f"any of the {detections.n_frames:,} frames"
        st.warning(f"No boxes on {where}, so nothing can be flagged. Check the model (weights built from a .yaml are "
                   "random) and the classes kept, or lower the confidence floor.", icon=":material/search_off:")
        return
    # the next step first: under the result it fell below the fold at 1280x720
    st.page_link("pages/review.py", label="**Review flickering frames**", icon=":material/arrow_forward:")
    st.success(f"{len(detections):,} boxes on {detections.frames_with_boxes:,} of {detections.n_frames:,} frames "
               f"({len(detections) / max(detections.n_frames, 1):.1f} per frame"
               + (f", detected at {fps:.1f} frames per second" if fps else "")
               + "). Results are cached: reopening this video with this model is instant.")


def boxes_file_panel(loaded: session.LoadedVideo) -> None:
    """Boxes made elsewhere beside the video, instead of a detector: predictions to review, or
    human labels to check (their suspicious frames listed here, as on ``evaluate --labels``)."""
    with st.expander("Boxes made elsewhere: a predictions or labels file", icon=":material/upload_file:",
                     expanded=showing_file_boxes()):
        st.caption("COCO or YouTube-VIS JSON, CVAT XML, MOT txt (upload or path); a YOLO dataset's data.yaml or a "
                   "Lightly task folder (path). Frames are matched by Lightly's frame names (vtest-012-avi.png) or "
                   "the file name's trailing number (frame_000012.jpg, from 0); MOT by its frame column (from 1).")
        boxes_panel_on_the_review()
        st.session_state.setdefault("boxes_origin", BOX_ORIGINS[0])  # (a default given here as well would clash with a link's)
        origin = st.segmented_control("From", BOX_ORIGINS, key="boxes_origin", persist_state="session")
        purpose = st.radio("They are", BOX_PURPOSES, key="boxes_purpose", horizontal=True, persist_state="session")
        fmt = st.selectbox("Format", BOX_FORMATS, key="boxes_format", persist_state="session")
        imported, where, asked = None, None, False
        if origin == "Upload":
            # its own limit: the server's (2 GB, for videos) told users of files the readers refuse
            upload = st.file_uploader("Predictions or labels file", type=["json", "xml", "txt", "csv", "yaml"],
                                      key="boxes_upload", max_upload_size=MAX_LABEL_BYTES >> 20, help=size_limits())
            if asked := st.button("Use these boxes", disabled=upload is None, key="use_uploaded_boxes"):
                with error_boundary("Cannot use these boxes"), upload_as_file(upload.name, upload, MAX_LABEL_BYTES) as path:
                    imported = import_boxes(path, loaded.info, loaded.relpath, fmt, upload.name, single_file=True)
        elif origin == "Local path":
            with st.form("boxes_path_form", border=False):
                path = st.text_input("Path on this machine", key="boxes_path", placeholder="/data/drive/gt/gt.txt")
                submitted = st.form_submit_button("Use these boxes")
            if asked := submitted and bool(path.strip()):
                with error_boundary("Cannot use these boxes"):
                    where = check_allowed(path.strip())
                    imported = import_boxes(where, loaded.info, loaded.relpath, fmt)
        if imported is not None:
            use_file_boxes(imported, where, labels=purpose == BOX_PURPOSES[1])
        file_boxes_summary(kept_after_a_refusal=asked and imported is None)


def boxes_panel_on_the_review() -> None:
    """The panel opens on the file the tab reviews, when its choices are not set yet in this tab (a
    reload of this page, or Review's link opened first): where the file is and what its boxes are."""
    boxes = session.boxes_file()
    if boxes is None or "boxes_origin" in st.session_state:
        return
    st.session_state["boxes_origin"] = BOX_ORIGINS[0 if boxes.path is None else 1]
    st.session_state["boxes_purpose"] = BOX_PURPOSES[boxes.labels]
    if boxes.path is not None:
        st.session_state["boxes_path"], st.session_state["boxes_format"] = str(boxes.path), boxes.format


def showing_file_boxes() -> bool:
    review = session.review()
    return review is not None and (review.detection_id or "").startswith(FILE_ID_PREFIX)


def use_file_boxes(imported: ImportedBoxes, path: Path | None, labels: bool) -> None:
    """Review these boxes (``path``: where a link may read them again; None for an upload); labels are
    also checked, at the label thresholds on Review too."""
    session.use_file_boxes(imported, path, labels)
    if labels:  # Review opens on what the check below lists: its thresholds, and every assertion it ran
        flags.use_thresholds(LABEL_IOU, LABEL_IOU)
        flags.use_assertions(ASSERTIONS)


def file_boxes_summary(kept_after_a_refusal: bool = False) -> None:
    """What the tab reviews from a file, and the suspicious frames and boxes of labels, however the
    file came (this panel, or a reload or link of Review: the panel said nothing then); gone once
    other boxes or another video are reviewed. ``kept_after_a_refusal``: the file just given was
    refused (the red line above), and this says the review still has the earlier boxes."""
    boxes, detections = session.boxes_file(), session.detections()
    if not session.boxes_from_file() or boxes is None:
        return
    kept = "The review keeps the boxes it had. " if kept_after_a_refusal else ""
    note = (f"Reviewing {len(detections):,} boxes of {boxes.name} ({boxes.format}) on {detections.frames_with_boxes:,} of "
            f"{detections.n_frames:,} frames; classes: {', '.join(detections.names.values())[:200]}")
    st.success(kept + markdown_literal(note), icon=":material/upload_file:")  # the file's name and its class names
    st.page_link("pages/review.py", label="Review these boxes", icon=":material/flag:")
    if boxes.labels:
        label_audit_table(label_audit(detections, boxes.name))


def label_audit(detections, name: str) -> LabelAudit:
    """The check of the labels the tab reviews, made once per set of boxes."""
    detection_id = session.review().detection_id
    checked = st.session_state.get(LABEL_AUDIT)
    if checked is None or checked[0] != detection_id:
        checked = st.session_state[LABEL_AUDIT] = (detection_id, audit_detections(detections, Path(name)))
    return checked[1]


def label_audit_table(audit: LabelAudit) -> None:
    counts = {}
    for suspicion in audit.suspicions:
        counts.setdefault(suspicion.assertion, set()).add(suspicion.frame)
    st.markdown(f"**Suspicious labels** in {markdown_literal(audit.source.name)} (tracking and assertion IoU {LABEL_IOU}): "
                + (", ".join(counted(len(frames), f"{name} frame") for name, frames in counts.items()) or "none"))
    if audit.suspicions:
        st.dataframe({"frame": [s.frame for s in audit.suspicions], "assertion": [s.assertion for s in audit.suspicions],
                      "class": [s.label for s in audit.suspicions],
                      "box": [", ".join(f"{v:.0f}" for v in s.xyxy) for s in audit.suspicions],
                      "why": [s.detail for s in audit.suspicions]}, hide_index=True, key="label_audit_table")
        st.download_button("Download as CSV", audit.csv_bytes(), file_name=f"{audit.source.stem}-suspicious.csv",
                           mime="text/csv", icon=":material/download:", key="label_audit_csv")


class BarsProgress(BatchProgress):
    """A bar for the video being detected and one for the whole batch, and a line per video: those an earlier run
    did counted in from the start, as the command line's bar counts them."""

    def __init__(self):
        self.videos, self.finished_videos, self.frames, self.done, self.relpath, self.checked = 0, 0, 0, 0, "", False
        self.overall = st.progress(0.0, text="Finding the videos...")
        self.current = st.progress(0.0, text="Opening the first video...")
        self.log = st.empty()
        self.lines: deque[str] = deque(maxlen=LOGGED_VIDEOS)

    def checking(self, relpath: str, done: int, total: int) -> None:
        """Done videos whose markers do not know their file (an older batch, a copy) are read again first."""
        self.checked = True
        text = f"Checking done videos are unchanged: {markdown_literal(relpath)}" if relpath else "Done videos checked"
        self.current.progress(min(done / max(total, 1), 1.0), text=f"{text} ({done / 2 ** 20:,.0f} / {total / 2 ** 20:,.0f} MiB)")

    def started(self, videos: int, skipped: Sequence[VideoRow]) -> None:
        self.videos = videos
        self._count(skipped)  # at once: a line and a bar drawn per video took seconds for a resume of 10,000
        if skipped and len(skipped) == videos and not self.checked:  # (a check's bar says what was read: kept)
            self.current.progress(1.0, text=f"Nothing to run: {counted(videos, 'video')}, all done earlier")

    def probed(self, frames: int, relpath: str = "") -> None:
        self.frames, self.done, self.relpath = frames, 0, relpath
        self._show_current()

    def detected(self, frames: int) -> None:
        self.done += frames
        self._show_current()

    def _show_current(self) -> None:
        """"cam07.mp4 (video 2 of 5): 120 / 300 frames": which camera is being detected, not only its number."""
        self.current.progress(min(self.done / max(self.frames, 1), 1.0),
                              text=f"{markdown_literal(self.relpath)} (video {self.finished_videos + 1} of {self.videos}): "
                                   f"{self.done:,} / {self.frames:,} frames")

    def finished(self, row: VideoRow) -> None:
        self._count([row])

    def _count(self, rows: Sequence[VideoRow]) -> None:
        """The bar counts ``rows`` in (none: "0 / 5 videos" while the first is detected), the log their last lines."""
        self.finished_videos += len(rows)
        self.overall.progress(self.finished_videos / max(self.videos, 1), text=f"{self.finished_videos} / {self.videos} videos")
        if not rows:
            return
        for row in rows[-LOGGED_VIDEOS:]:
            said = f" ({markdown_literal(row.error)})" if row.error else f", {row.flagged} of {row.frames} frames flagged"
            self.lines.append(f"- {markdown_literal(row.relpath)}: {fleet.STATUS_WORDS.get(row.status, row.status)}{said}")
        self.log.markdown("\n".join(self.lines))


BATCH_FINISHED = "batch_finished_dir"


def batch_panel(spec: DetectorSpec | None) -> None:
    """Open a batch output folder on the Fleet page, or run a batch over a folder of videos here."""
    finished = st.session_state.pop(BATCH_FINISHED, None)  # after a batch here; set before the widget draws
    if finished and not st.session_state.get("batch_open_dir", "").strip():  # never over what the user typed
        st.session_state["batch_open_dir"] = finished
    with st.expander("Many videos: a batch", icon=":material/view_list:"):
        with st.form("open_batch", border=False):
            folder = st.text_input("Batch output folder", placeholder="/data/out/fleet", key="batch_open_dir")
            if st.form_submit_button("Open on the Fleet page"):
                with error_boundary():
                    st.switch_page("pages/fleet.py", query_params={"dir": str(fleet.check_folder(folder))})
        st.divider()
        inputs = st.text_input("Folder of videos", placeholder="/data/cams", key="batch_inputs")
        out = st.text_input("Output folder", placeholder="/data/out/fleet", key="batch_out")
        st.caption("Runs the model chosen above at the thresholds set on Review; videos already done with the "
                   "same settings are skipped.")
        if st.button("Run batch", icon=":material/play_arrow:", disabled=spec is None, key="run_batch"):
            run_batch_here(inputs, out, spec)


def run_batch_here(inputs: str, out: str, spec: DetectorSpec) -> None:
    with error_boundary("Batch failed"):
        if not inputs.strip() or not out.strip():
            raise UserError("Give the folder of videos and the output folder")
        # absolute, as the Export page's folder: a relative one was read, or written, wherever the server was started
        if not expand_home(inputs.strip()).is_absolute():
            raise UserError(f"Folder of videos {inputs.strip()!r} is a relative path: give an absolute folder (like /data/cams)")
        source, target = check_allowed(inputs.strip()), typed_folder(out, "Output folder")
        settings = flags.on_screen(spec.conf)
        config = BatchConfig((str(source),), RunConfig(out=target, detector=spec, flicker=settings))
        report = run_batch(config, BarsProgress())
        st.success(batch_said(report.rows, report.seconds))
        for note in report.notes:  # why an earlier run's videos were done again (its settings differed)
            st.caption(markdown_literal(note))
        st.page_link("pages/fleet.py", label="Review the batch on the Fleet page", icon=":material/view_list:",
                     query_params={"dir": str(target)})
        st.session_state[BATCH_FINISHED] = str(target)  # the folder to open fills in on the next run


def batch_said(rows: Sequence[VideoRow], seconds: float) -> str:
    """"2 videos run in 45.0 s, 1 failed; 1 done earlier": the time is the videos run's, not those skipped."""
    failed, earlier = (sum(r.status == status for r in rows) for status in ("failed", "skipped"))
    return (f"{counted(len(rows) - earlier, 'video')} run in {seconds:.1f} s" + (f", {failed} failed" if failed else "")
            + (f"; {earlier} {fleet.STATUS_WORDS['skipped']}" if earlier else ""))


def restore_from_url() -> None:
    """A reload or a bookmark of this page reopens its video and model (once per tab): the video
    checked as a typed path is, the model panel's choices set before it draws (the classes kept
    once the model names them); the detections come back from the disk cache when that model ran
    on the video before. Every value is parsed as a link's (ui.url): junk falls back to the default."""
    params = st.query_params
    if "video" in params and session.loaded_video() is None and session.open_video(params["video"]):
        if BOXES in params or BOXES_UPLOADED in params:
            restore_boxes(params)
    if "weights" in params and "model_choice" not in st.session_state:
        use_model_choices(detector_spec_of(params))


def open_on_the_review() -> None:
    """The panels open on what the tab reviews while this tab has not set them (a reload, or Review's
    or Fleet's link opened first): the Source where the video is ("Bundled sample" and its caption
    sat above another video), the model that made its boxes (the default model sat there, and its
    cached boxes replaced the review's)."""
    if (loaded := session.loaded_video()) is not None:
        st.session_state.setdefault("source", SOURCES[0] if Path(loaded.info.path) == Path(SAMPLE_VIDEO) else SOURCES[2])
    spec = session.detector_spec()
    if spec is not None and not session.boxes_from_file() and "model_choice" not in st.session_state:
        use_model_choices(spec)


def use_model_choices(spec: DetectorSpec) -> None:
    """The model panel's choices set to ``spec``'s before it draws (the classes kept once the model names them)."""
    if spec.weights != BUILTIN_HOG:
        st.session_state["model_choice"], st.session_state["weights_path"] = MODELS[1], spec.weights
    if spec.device in DEVICES:
        st.session_state["device"] = spec.device
    st.session_state["conf"] = spec.conf
    st.session_state[CLASSES_FROM_URL] = spec.classes  # ids: names come with the model


def restore_boxes(params) -> None:
    """The boxes file of a reload read again as a link's to Review is (ui.url: the roots, every file
    hostile), labels checked again (the panel opens on it); an upload is said to be gone, the panel
    open on what it was."""
    with error_boundary("Cannot use the boxes in this link"):
        if (linked := linked_boxes(params)) is not None:
            use_file_boxes(*linked)
        else:
            st.session_state["boxes_purpose"] = BOX_PURPOSES[params.get(BOXES_PURPOSE) == LABELS]


def sync_url(loaded: session.LoadedVideo | None, spec: DetectorSpec | None) -> None:
    """The page's video and model in its URL (written only when they changed), for a reload; and the
    boxes file reviewed instead of the model's, with what they are."""
    params = {} if loaded is None or session.batch_root() is not None else {"video": str(loaded.info.path)}
    if params and spec is not None:
        params.update(detector_params(spec))
    if params and session.boxes_from_file():
        params.update(boxes_params(session.boxes_file()))
    write_url(params)


flags.init_defaults()
session.note_page("load")
preload_viewer()  # this page links to Review
restore_from_url()
open_on_the_review()

st.title("Load & detect")
video_column, model_column = st.columns(2, gap="large")
with video_column:
    video_panel()
with model_column:
    detector, spec = model_panel()
    # Run detection under the model it runs: below both columns it sat under the fold at 1280x720, its
    # progress bar too
    loaded = session.loaded_video()
    if loaded is None or detector is None:
        st.info("Load a video and choose a model to run detection." if loaded is None else
                "Choose a model that loads (see above) to run detection.")
    else:
        detection_panel(loaded, detector, spec)
st.divider()
if loaded is not None:
    boxes_file_panel(loaded)
sync_url(loaded, spec)  # after the boxes file panel: the boxes it just read are in the URL at once
batch_panel(spec)
