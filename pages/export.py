"""Export & schedule: write the Lightly datasource for the current review, validate it, download it."""
import io
import json
import zipfile
from pathlib import Path

import streamlit as st

from core.cloud import push
from core.errors import UserError
from core.export import VideoPredictions, export_datasource
from core.schedule import (
    S3DelegatedAccess,
    ScheduleRequest,
    build_selection_config,
    describe,
    schedule,
    validate_selection_config,
)
from ui import state
from ui.components import selection_strengths

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
            st.json(json.loads(sample.read_bytes()), expanded=True)
            metadata = lightly / "metadata" / sample.relative_to(task_dir)
            st.markdown(f"Its metadata `{metadata.relative_to(lightly)}`")
            st.json(json.loads(metadata.read_bytes()), expanded=True)
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
st.caption("The tutorial's selection: diverse frames (embeddings of the task), uncertain frames "
           "(objectness least confidence) and flickering frames (the metadata exported above).")
config_column, access_column = st.columns(2, gap="large")
with config_column:
    n_samples = st.number_input("Frames to select", 1, 1_000_000, 100, key="n_samples", persist_state="session")
    diversity, least_confidence, flickering_strength = selection_strengths([st] * 3)
    extra = st.text_area("Extra strategies (JSON list, optional)", key="extra_strategies", persist_state="session",
                         placeholder='[{"input": {"type": "RANDOM", "random_seed": 42}, "strategy": {"type": "WEIGHTS"}}]')
with access_column:
    dataset_name = st.text_input("Lightly dataset", value=f"flicker-{stem}", key="dataset_name", persist_state="session")
    schedule_input = st.text_input("Input datasource URL", key="schedule_input_url", persist_state="session",
                                   value=st.session_state.get("push_input_url", ""))
    schedule_lightly = st.text_input("Lightly datasource URL", key="schedule_lightly_url", persist_state="session",
                                     value=st.session_state.get("push_url", ""))
    region = st.text_input("Bucket region", "eu-central-1", key="s3_region", persist_state="session")
    role_arn = st.text_input("S3 role ARN (delegated access)", key="s3_role_arn", persist_state="session",
                             placeholder="arn:aws:iam::123456789012:role/lightly-access")
    external_id = st.text_input("S3 external id", key="s3_external_id", persist_state="session")
    token = st.text_input("Lightly token", type="password", key="lightly_token",
                          help="Or set LIGHTLY_TOKEN before starting the app. Kept in this tab's memory only.")

config = None
try:
    extra_strategies = json.loads(extra) if extra.strip() else []
    if not isinstance(extra_strategies, list):
        raise ValueError("a JSON list of strategy objects is expected")
    config = build_selection_config(int(n_samples), task.strip(), diversity, least_confidence, flickering_strength,
                                    extra_strategies)
    validate_selection_config(config)
except (ValueError, UserError) as exc:
    st.error(f"Selection config: {exc}")
    config = None
if config is not None:
    with st.expander("Selection config (validated offline)"):
        st.code(describe(config), language="json")
ready = config is not None and schedule_input.strip() and schedule_lightly.strip() and role_arn.strip() and external_id.strip()
if st.button("Schedule Lightly selection", icon=":material/rocket_launch:", disabled=not ready):
    request = ScheduleRequest(dataset_name.strip(), schedule_input.strip(), schedule_lightly.strip(),
                              S3DelegatedAccess(region.strip(), role_arn.strip(), external_id.strip()), config)
    try:
        with st.spinner("Talking to Lightly..."):
            dataset_id, run_id = schedule(request, token or None)
    except UserError as exc:
        st.error(str(exc))
    else:
        st.success(f"Scheduled run {run_id} on dataset {dataset_name} ({dataset_id}). Start a Lightly Worker to process it.")
