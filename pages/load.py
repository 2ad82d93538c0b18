"""Load & detect: pick a video and a model, run detection with progress, cached on disk."""
import sys
from pathlib import Path

import streamlit as st

from core import fleet
from core.batch import BatchConfig, BatchProgress, VideoRow, find_sources, run_batch
from core.detect import Detector
from core.errors import UserError
from core.paths import SAMPLE_VIDEO, check_allowed
from core.run import RunConfig
from core.settings import BUILTIN_HOG, DEFAULT_CONF, DetectorSpec
from core.uploads import save_upload
from core.video import VIDEO_EXTENSIONS
from ui import flags, resources, session
from ui.boundary import error_boundary

SOURCES = ("Bundled sample", "Upload", "Local path")
MODELS = ("Offline people detector (HOG, built in)", "YOLO weights path", "Upload weights")


def video_panel() -> None:
    st.subheader("Video")
    source = st.segmented_control("Source", SOURCES, default=SOURCES[0], key="source", persist_state="session")
    if source == "Bundled sample":
        st.caption("`vtest.avi` from OpenCV's sample data: pedestrians on a path, 795 frames at 10 fps.")
        loaded = session.loaded_video()  # (a click opens it in a callback, so this run already sees it)
        is_open = loaded is not None and Path(loaded.info.path) == Path(SAMPLE_VIDEO)
        st.button("Load the sample", icon=":material/play_circle:", disabled=is_open, on_click=session.set_video,
                  args=(SAMPLE_VIDEO,), help="The sample is open." if is_open else None)
    elif source == "Upload":
        upload = st.file_uploader("Video file", type=[ext[1:] for ext in VIDEO_EXTENSIONS])
        if upload is not None and st.button("Load upload"):
            session.open_upload(upload.name, upload)
    elif source == "Local path":
        with st.form("local_path", border=False):  # a form, so Enter in the box loads the file
            path = st.text_input("Path to a video on this machine", placeholder="/data/drive/cam0.mp4")
            if st.form_submit_button("Load file") and path.strip():
                session.open_video(path)
    video_facts(session.loaded_video())


def video_facts(loaded) -> None:
    if loaded is None:
        return
    info = loaded.info
    st.markdown(f"**{loaded.relpath}**")
    first, second = st.columns(2), st.columns(2)
    first[0].metric("Resolution", f"{info.width} x {info.height}")
    first[1].metric("Frames (as PyAV decodes them)", f"{info.frame_count:,}")
    second[0].metric("Frame rate", f"{info.fps:.2f} fps")
    second[1].metric("Duration", f"{info.duration_s:.1f} s")
    st.caption(f"codec {info.codec}, {len(info.keyframes)} keyframes")


def model_panel() -> tuple[Detector | None, DetectorSpec | None]:
    """The chosen detector and its spec (None until one loads)."""
    st.subheader("Model")
    model_choice = st.radio("Detector", MODELS, key="model_choice", persist_state="session")
    weights = BUILTIN_HOG
    if model_choice == "YOLO weights path":
        weights = st.text_input("Weights (.pt, .onnx, or a model .yaml for random weights)", key="weights_path",
                                placeholder="/models/yolov8x.pt", persist_state="session").strip()
    elif model_choice == "Upload weights":
        upload = st.file_uploader("Weights file", type=["pt", "onnx"])
        weights = str(save_upload(upload.name, upload)) if upload is not None else ""
    device = st.selectbox("Device", ("auto", "cpu", "cuda"), key="device", persist_state="session")
    conf = st.number_input("Confidence floor", 0.0, 1.0, DEFAULT_CONF, 0.01, key="conf", persist_state="session",
                           help="Boxes below this are never kept. Keep it low (the tutorial uses 0.1): the review "
                                "page filters above it without running the model again.")
    detector = None
    if weights:
        with error_boundary():
            detector = resources.detector(DetectorSpec(weights, device))
    if detector is None:
        return None, None
    st.caption(f"running on **{detector.device}** · {len(detector.names)} "
               f"class{'es' if len(detector.names) != 1 else ''}")
    names = detector.names
    chosen = st.multiselect("Classes to keep (empty: all)", list(names.values()), key="classes")
    # kept as ids (the URL writes classes=0,2), in the strings DetectorSpec holds
    classes = tuple(str(i) for i, name in sorted(names.items()) if name in chosen) or None
    return detector, DetectorSpec(weights, device, conf, classes)


def detection_panel(loaded: session.LoadedVideo, detector: Detector, spec: DetectorSpec) -> None:
    detection_id = spec.cache_key(loaded.info, detector)
    if session.detections_for(detection_id) is None:
        cached = spec.cached(loaded.info, detector)
        if cached is not None:
            session.use_detections(cached, spec, detection_id)
    run_column, cancel_column, _ = st.columns([1, 1, 4])
    run = run_column.button("Run detection", type="primary", icon=":material/play_arrow:", key="run_detection")
    # Any click reruns the page, which interrupts a detection in progress; nothing half-done is cached.
    if cancel_column.button("Cancel", icon=":material/stop:", key="cancel_detection"):
        cancelled(session.pop_detection_progress())
    if run:
        bar = st.progress(0.0, text="Starting...")

        def show(progress) -> None:
            session.set_detection_progress(progress.done, progress.total)
            bar.progress(progress.done / max(progress.total, 1),
                         text=f"{progress.done:,} / {progress.total:,} frames · {progress.fps:.1f} fps · "
                              f"ETA {progress.eta_s:.0f} s")

        with error_boundary("Detection failed"):
            session.use_detections(spec.detect(loaded.info, detector, progress=show), spec, detection_id)
        session.pop_detection_progress()
    detection_summary(session.detections_for(detection_id))


def cancelled(progress) -> None:
    if progress is None:
        st.info("No detection is running.")
    else:
        st.warning(f"Detection cancelled after {progress[0]:,} of {progress[1]:,} frames. Nothing was kept: "
                   "*Run detection* starts again from the first frame.", icon=":material/stop_circle:")


def detection_summary(detections) -> None:
    if detections is None:
        return
    per_frame = detections.counts_per_frame()
    st.success(f"{len(detections):,} boxes on {int((per_frame > 0).sum()):,} of {detections.n_frames:,} frames "
               f"({len(detections) / max(detections.n_frames, 1):.1f} per frame). Results are cached: reopening this "
               "video with this model is instant.")
    st.page_link("pages/review.py", label="Review flickering frames", icon=":material/flag:")


class BarsProgress(BatchProgress):
    """A bar for the video being detected and one for the whole batch, and a line per finished video."""

    def __init__(self, videos: int):
        self.videos, self.finished_videos, self.frames, self.done = videos, 0, 0, 0
        self.overall = st.progress(0.0, text=f"0 / {videos} videos")
        self.current = st.progress(0.0, text="Opening the first video...")
        self.log = st.empty()
        self.lines: list[str] = []

    def probed(self, frames: int) -> None:
        self.frames, self.done = frames, 0
        self.current.progress(0.0, text=f"video {self.finished_videos + 1}: 0 / {frames:,} frames")

    def detected(self, frames: int) -> None:
        self.done += frames
        self.current.progress(min(self.done / max(self.frames, 1), 1.0),
                              text=f"video {self.finished_videos + 1}: {self.done:,} / {self.frames:,} frames")

    def finished(self, row: VideoRow) -> None:
        self.finished_videos += 1
        self.overall.progress(self.finished_videos / max(self.videos, 1), text=f"{self.finished_videos} / {self.videos} videos")
        self.lines.append(f"- {row.relpath}: {row.status}" + (f" ({row.error})" if row.error else
                                                               f", {row.flagged} of {row.frames} frames flagged"))
        self.log.markdown("\n".join(self.lines[-8:]))


def batch_panel(spec: DetectorSpec | None) -> None:
    """Open a batch output folder on the Fleet page, or run a batch over a folder of videos here."""
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
        source, target = check_allowed(inputs.strip()), check_allowed(out.strip())
        settings = flags.on_screen(spec.conf)
        config = BatchConfig((str(source),), RunConfig(out=target, detector=spec, flicker=settings))
        report = run_batch(config, BarsProgress(len(find_sources(config.inputs))))
        failed = sum(r.status == "failed" for r in report.rows)
        st.success(f"{len(report.rows)} videos in {report.seconds:.1f} s" + (f", {failed} failed" if failed else ""))
        st.page_link("pages/fleet.py", label="Review the batch on the Fleet page", icon=":material/view_list:",
                     query_params={"dir": str(target)})


flags.init_defaults()
if "--sample" in sys.argv:
    session.open_sample_once()

st.title("Load & detect")
video_column, model_column = st.columns(2, gap="large")
with video_column:
    video_panel()
with model_column:
    detector, spec = model_panel()
batch_panel(spec)

st.divider()
loaded = session.loaded_video()
if loaded is None or detector is None:
    st.info("Load a video and choose a model to run detection.")
    st.stop()
detection_panel(loaded, detector, spec)
