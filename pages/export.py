"""Export & schedule: write the Lightly datasource for the current review, validate it, download it."""
import io
import json
import zipfile
from pathlib import Path

import streamlit as st

from core.cloud import push
from core.errors import UserError
from core.export import VideoPredictions, export_datasource
from ui import state

state.init_defaults()
st.title("Export & schedule")
review = state.require_review()
video = review.video
stem = Path(video.relpath).stem

st.caption(f"{video.relpath}: {review.flicker.n_flagged} flagged frames at IoU tracking {review.iou_track:.2f}, "
           f"assertion {review.iou_assert:.2f}, mode {review.options.mode}, minimum score {review.min_score:.2f}.")
left, right = st.columns(2, gap="large")
with left:
    out_dir = st.text_input("Output folder (the Lightly datasource root)", value=str(Path.cwd() / "exports" / stem),
                            key="export_dir", persist_state="session")
    task = st.text_input("Prediction task name", value="yolov8_detection", key="export_task", persist_state="session")
    flickering = st.radio("Flickering metadata", ("binary", "score"), key="export_flickering", persist_state="session",
                          horizontal=True, format_func={"binary": "1.0 flagged / 0.5 (tutorial)",
                                                        "score": "continuous: 0.5 + 0.5 x score"}.get)
    imputed = st.checkbox("Also export the imputed boxes as a prediction task (pre-labels)", key="export_imputed",
                          persist_state="session")
    if st.button("Export", type="primary", icon=":material/save:"):
        try:
            summary = export_datasource(
                out_dir, [VideoPredictions(video.relpath, review.detections, review.flicker, video.info.path)], task=task.strip(),
                flickering=flickering, imputed_task=f"{task.strip()}_imputed" if imputed else None)
        except (UserError, OSError) as exc:
            st.error(f"Export failed: {exc}")
        else:
            st.session_state[state.EXPORT_RESULT] = summary

result = st.session_state.get(state.EXPORT_RESULT)
with right:
    if result is None:
        st.info("The export writes `.lightly/predictions` and `.lightly/metadata` under the output folder, "
                "replacing an earlier export there only once the new one is complete.")
    else:
        summary = result
        lightly = Path(summary.root) / ".lightly"
        st.success(f"Valid Lightly datasource: {summary.files:,} files, {summary.frames:,} frames, "
                   f"{summary.boxes:,} boxes, {summary.flagged} flagged frames (every rule of the format checked)")
        st.code(str(lightly), language=None)
        task_dir = lightly / "predictions" / summary.tasks[0]
        sample = next((p for p in sorted(task_dir.rglob("*.json")) if p.name != "schema.json"
                       and json.loads(p.read_bytes())["predictions"]), None)
        if sample is not None:
            st.markdown(f"Sample prediction `{sample.relative_to(lightly)}`")
            st.json(json.loads(sample.read_bytes()), expanded=False)
            metadata = lightly / "metadata" / sample.relative_to(task_dir)
            st.markdown(f"Its metadata `{metadata.relative_to(lightly)}`")
            st.json(json.loads(metadata.read_bytes()), expanded=False)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(lightly.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(lightly.parent).as_posix())
        st.download_button("Download .lightly as zip", buffer.getvalue(), file_name=f"{stem}-lightly.zip",
                           mime="application/zip", icon=":material/download:")

st.divider()
st.subheader("Push to a bucket")
if result is None:
    st.caption("Export first; the push sends that export.")
else:
    push_left, push_right = st.columns(2, gap="large")
    lightly_url = push_left.text_input("Lightly datasource URL", key="push_url", persist_state="session",
                                       placeholder="s3://my-bucket/flicker_lightly/",
                                       help="The .lightly folder goes under this URL. s3://, gs://, az:// or a local path; "
                                            "credentials come from the usual environment (AWS_PROFILE, AWS_ENDPOINT_URL, ...).")
    input_url = push_right.text_input("Input datasource URL (optional: the videos go there)", key="push_input_url",
                                      persist_state="session", placeholder="s3://my-bucket/flicker_input/")
    dry_run = st.checkbox("Dry run: list what would be sent", key="push_dry_run")
    if st.button("Push", icon=":material/cloud_upload:", disabled=not lightly_url.strip()):
        bar = st.progress(0.0, text="Checking the bucket...")
        try:
            report = push(result.root, lightly_url.strip(), input_url.strip() or None, dry_run=dry_run,
                          progress=lambda done, total: bar.progress(done / max(total, 1), text=f"{done:,} / {total:,} files"))
        except UserError as exc:
            bar.empty()
            st.error(str(exc))
        else:
            bar.empty()
            st.success(report.text().splitlines()[-1])
            if dry_run and report.uploaded:
                st.code("\n".join(f"{item.local} -> {item.remote}" for item in report.uploaded[:200]), language=None)

st.subheader("Schedule a Lightly selection")
schedule_left, schedule_right = st.columns(2)
schedule_left.text_input("Lightly token", type="password", disabled=True)
schedule_right.button("Schedule Lightly selection", disabled=True, help="Coming next: schedule a worker run with the "
                      "tutorial's selection config.")
