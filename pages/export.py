"""Export & schedule: write the Lightly datasource for the current review, validate it, download it,
push it to a bucket and schedule a Lightly selection. With ``?dir=`` (from the Fleet page): push and
schedule a batch's combined datasource instead."""
import dataclasses
import functools
import json
from pathlib import Path

import streamlit as st

from core import fleet
from core.assertions import FLICKER, METADATA_KEYS
from core.errors import CloudError, ExportError, SelectionError, UserError
from core.export_dirs import export_dir_for, remember_export_dir
from core.lightly.config import DEFAULT_N_SAMPLES, build_selection_config, validate_selection_config
from core.lightly.datasource import Datasource
from core.lightly.export import (DEFAULT_TASK, VideoPredictions, earlier_export, export_datasource, exported_flags,
                                 sample_files, zip_datasource)
from core.lightly.metadata_keys import declared_metadata_keys
from core.lightly.push import push
from core.lightly.schedule import (LABELS, TOKEN_LABEL, S3DelegatedAccess, ScheduleRequest, check_fields, dry_run,
                                   missing_fields, schedule, shown_config)
from core.lightly.validate import validate_datasource
from core.paths import typed_folder
from core.run import batch_files
from core.words import counted, markdown_code, markdown_literal
from ui import flags, resources, session
from ui.boundary import error_boundary
from ui.components import SIBLING_STRENGTHS, selection_strengths, sibling_strengths
from ui.flicker_view import FlickerView, assertion_label, require_view
from ui.url import restore_from_url, sync_url

DIR = "dir"  # a batch output folder (pages/fleet.py's parameter)
EXPORT_DIR = "export_dir"
EXPORT_TASK = "export_task"
_EXPORT_DIR_VIDEO = "export_dir_video"  # content key of the video whose folder the field holds
DRY_RUN_LISTED = 200  # files a push dry run lists on the page
SCHEDULE_INPUT_URL, SCHEDULE_LIGHTLY_URL = "schedule_input_url", "schedule_lightly_url"


def output_folder(view: FlickerView, stem: str) -> str:
    """The output folder field: for each video, the folder last exported to (kept in the data
    folder, so it survives reloads and restarts), else one under the data folder."""
    video_key = view.video.info.fingerprint
    if st.session_state.get(_EXPORT_DIR_VIDEO) != video_key:
        st.session_state[EXPORT_DIR] = str(export_dir_for(video_key, stem))
        st.session_state[_EXPORT_DIR_VIDEO] = video_key
    return st.text_input("Output folder (the Lightly datasource root)", key=EXPORT_DIR, persist_state="session",
                         help="Remembered per video. The default lies in the app's data folder (FLICKER_DATA_DIR).")


def export_panel(view: FlickerView, stem: str) -> str:
    """The export form; returns the task name (the schedule's config names it)."""
    out_dir = output_folder(view, stem)
    # The CLI's default (core's DEFAULT_TASK): the app and `python -m core run` export the same task.
    task = st.text_input("Prediction task name", DEFAULT_TASK, key=EXPORT_TASK, persist_state="session",
                         help="The selection config below names it too.").strip()
    metadata_style = st.radio("Flickering metadata", ("binary", "score"), key="export_flickering",
                              persist_state="session", horizontal=True,
                              format_func={"binary": "1.0 flagged / 0.5 (tutorial)",
                                           "score": "continuous: 0.5 + 0.5 x score"}.get)
    imputed = st.checkbox("Also export the imputed boxes (pre-labels)", key="export_imputed", persist_state="session",
                          help="As a prediction task of their own, named after the one above with _imputed")
    if st.button("Export", type="primary", icon=":material/save:"):
        with error_boundary("Export failed"):
            folder = typed_folder(out_dir, "Output folder", ExportError)
            refuse_a_batch_folder(folder)
            session.set_export_result(export_datasource(folder, [review_part(view)], task=task, metadata_style=metadata_style,
                                                        imputed_task=f"{task}_imputed" if imputed else None))
            try:
                remember_export_dir(view.video.info.fingerprint, folder)
            except OSError as failure:  # the data folder is read-only or full: the export itself is written
                st.caption(f"The folder was not remembered for the next visit ({markdown_literal(failure.strerror or failure)}).")
    return task


def review_part(view: FlickerView) -> VideoPredictions:
    """This review as a video of an export: its boxes and flags as on screen; each assertion enabled
    on Review is its own metadata field, as `run --assertions` writes it."""
    siblings = {METADATA_KEYS[name]: flags_of for name, flags_of in view.assertion_flags.items() if name != FLICKER}
    return VideoPredictions.of_video(view.video.info, view.video.relpath, view.detections, view.flicker, siblings)


def holds_flags_on_screen(view: FlickerView, root: Path | None) -> bool | None:
    """Whether the export in ``root`` was written with this review's boxes and flags as on screen
    (None: its manifest does not say, e.g. an export from before it recorded them)."""
    recorded = None if root is None else exported_flags(root, view.video.info.fingerprint)
    return None if recorded is None else recorded == review_part(view).flags_digest()


def refuse_a_batch_folder(folder: Path) -> None:
    """An export replaces the one in ``folder`` whole: in a batch's folder, its summary.csv and done markers would go
    on claiming videos the export no longer held (as run refuses it)."""
    if found := batch_files(folder):
        raise ExportError(f"{folder} is a batch's output folder (it holds {' and '.join(found)}): an export there would "
                          "replace the batch's export with this video's alone; choose another folder, or add the video "
                          "to the batch with the Load page's batch")


def export_result_panel(summary, stem: str) -> None:
    if summary is None:
        st.info("The export writes `.lightly/predictions` and `.lightly/metadata` under the output folder, "
                "replacing an earlier export there only once the new one is complete.")
        return
    datasource = Datasource(summary.root)
    st.success(f"Exported to {markdown_code(summary.root)}: a valid Lightly datasource of {summary.files:,} files, "
               f"{counted(summary.frames, 'frame')}, {counted(summary.boxes, 'box', 'boxes')}, "
               f"{counted(summary.flagged, 'flagged frame')} (every rule of "
               "the format checked)")
    if not _same_folder(st.session_state.get(EXPORT_DIR, ""), summary.root):
        st.caption("That is the last export that worked. The Output folder on the left names another folder, and "
                   "nothing was written there: press Export to write it.")
    st.code(str(datasource.lightly), language=None)
    # each file read once, bounded and never through a link: shown as sample_files read and checked it
    if (sample := sample_files(summary.root, summary.tasks[0])) is not None:
        for label, (path, document) in zip(("Sample prediction", "Its metadata"), sample):
            st.markdown(f"{label} {markdown_code(path.relative_to(datasource.lightly))}")
            st.json(document, expanded=3)  # each box open, its numbers folded (one a line, they ran on)
    # zipped when pressed, not on every rerun of the page (hundreds of files for a long video)
    st.download_button("Download .lightly as zip", functools.partial(zip_datasource, summary.root), file_name=f"{stem}-lightly.zip",
                       mime="application/zip", icon=":material/download:")


def earlier_export_in_output_folder(view: FlickerView) -> Path | None:
    """The Output folder, when it holds an export of this video from an earlier session (a restart
    forgets this session's export, not the files): Push and Schedule can use it as it is."""
    try:
        folder = typed_folder(st.session_state.get(EXPORT_DIR, ""), "Output folder", ExportError)
    except (UserError, OSError, ValueError, RuntimeError):  # "~nobody/out", a link loop: Export says why when pressed
        return None
    return earlier_export(folder, view.video.info.fingerprint)


def _same_folder(text: str, root: Path) -> bool:
    try:
        return Path(text.strip()).expanduser().resolve() == Path(root).resolve()
    except (OSError, ValueError, RuntimeError):
        return False


def push_panel(root: Path | None, batch: fleet.CombinedDatasource | None = None, earlier: bool = False,
               current: bool | None = None) -> None:
    """Push ``root`` (an export of this review, or a batch's combined datasource: ``batch``;
    ``earlier``: one found in the output folder, written before this session; ``current``: whether
    it holds the flags on screen, None when it does not say)."""
    st.subheader("Push to a bucket")
    if root is None:
        st.caption("Export first; the push sends that export.")
        return
    if current is False:
        st.warning(f"The export in {markdown_code(root)} was written with other flags than those on screen (the "
                   "thresholds, the minimum score or the assertions changed since): press Export to bring it up to date, "
                   "or the push sends the old flags.", icon=":material/sync_problem:")
    said = {(True, True): ", exported before this session with the flags on screen.",
            (True, None): ", exported before this session: press Export first if the thresholds changed since."}
    st.caption(f"Sends {markdown_code(Datasource(root).lightly)}" + said.get((earlier, current), "."))
    left, right = st.columns(2, gap="large")
    lightly_url = left.text_input("Lightly datasource URL", key="push_url", persist_state="session",
                                  placeholder="s3://my-bucket/flicker_lightly/",
                                  help="The .lightly folder goes under this URL. s3://, gs://, az:// or a local path; "
                                       "credentials come from the usual environment (AWS_PROFILE, AWS_ENDPOINT_URL, ...).")
    input_url = right.text_input("Input datasource URL (optional: the videos go there)", key="push_input_url",
                                 persist_state="session", placeholder="s3://my-bucket/flicker_input/")
    dry_run = st.checkbox("Dry run: list what would be sent", key="push_dry_run")
    running = batch is not None and batch.running  # the push takes the folder's lock the batch holds
    if st.button("Push", icon=":material/cloud_upload:", disabled=not lightly_url.strip() or running,
                 help="A batch is writing this folder: push once it ends." if running else None):
        bar = st.progress(0.0, text="Checking the bucket...")
        report = None
        with error_boundary("Push failed"):
            target, input_target = (push_target(url, what) for url, what in
                                    ((lightly_url, "Lightly datasource URL"), (input_url, "Input datasource URL")))
            if batch is not None and input_target:
                fleet.check_input_push(batch)
            report = push(root, target, input_target or None, dry_run=dry_run,
                          progress=lambda done, total: bar.progress(done / max(total, 1), text=f"{done:,} / {total:,} files"))
        bar.empty()
        if report is not None:
            # a dry run that could not list the bucket says why beside its count (the URL as typed)
            (st.warning if report.unchecked else st.success)(markdown_literal(report.text().splitlines()[-1]))
            if not dry_run:  # the schedule below reads from the bucket the files went to, unless told otherwise
                for key, url in ((SCHEDULE_LIGHTLY_URL, target), (SCHEDULE_INPUT_URL, input_target)):
                    if url and is_bucket_url(url) and not st.session_state.get(key, "").strip():
                        st.session_state[key] = url
            if dry_run and report.uploaded:
                listed = [f"{item.local} -> {item.remote}" for item in report.uploaded[:DRY_RUN_LISTED]]
                if len(report.uploaded) > DRY_RUN_LISTED:
                    listed.append(f"... and {len(report.uploaded) - DRY_RUN_LISTED:,} more (python -m core push --dry-run lists all)")
                with st.container(height=300):  # a long list would push the schedule far down the page
                    st.code("\n".join(listed), language=None, wrap_lines=True)  # whole paths, not clipped at the right


def verdicts_caption(view: FlickerView) -> None:
    """Verdicts do not edit the export (the assertion's flags, for Lightly to weigh): said where some
    flagged frame was judged a false alarm, which a user took to be left out."""
    try:
        verdicts = resources.verdict_store().all(view.video.info.fingerprint)
    except UserError:  # a store that cannot be read: the export does not need it
        return
    false_alarms = sum(1 for frame, verdict in verdicts.items()
                       if verdict == "false_alarm" and frame < view.n_frames and view.flicker.flag_array[frame])
    if false_alarms:
        st.caption(f"Verdicts do not change the export: its flags are the assertion's at these thresholds, "
                   f"{counted(false_alarms, 'frame')} judged a false alarm included. To flag fewer false alarms, use "
                   "the thresholds Verdicts & thresholds suggests from the verdicts.")


def is_bucket_url(url: str) -> bool:
    return "://" in url and not url.lower().startswith("file://")


def push_target(url: str, what: str) -> str:
    """A bucket URL as typed, or a local folder checked by :func:`core.paths.typed_folder` ("" stays "")."""
    url = url.strip()
    if not url or is_bucket_url(url):
        return url
    return str(typed_folder(url, what, CloudError, " or a bucket URL (s3://, gs://, az://)"))


def selection_inputs(keys: tuple[str, ...]) -> tuple[int, tuple[float, float, float], str, dict[str, float]]:
    """Frames to select, the three strengths, the extra strategies (JSON) as typed, and a strength
    per sibling assertion field among the export's metadata ``keys`` (ghost, class_flip)."""
    n_samples = st.number_input("Frames to select", 1, 1_000_000, DEFAULT_N_SAMPLES, key="n_samples", persist_state="session")
    strengths = selection_strengths([st] * 3)
    siblings = sibling_strengths([st] * len(keys), keys)
    extra = st.text_area("Extra strategies (JSON list, optional)", key="extra_strategies", persist_state="session",
                         placeholder='[{"input": {"type": "RANDOM", "random_seed": 42}, "strategy": {"type": "WEIGHTS"}}]')
    return int(n_samples), strengths, extra, siblings


def selection_config(task: str, n_samples: int, strengths: tuple[float, float, float], extra: str,
                     siblings: dict[str, float]) -> dict:
    """The tutorial's config from the strengths, a WEIGHTS strategy per sibling field with a
    strength (plus extra strategies), validated offline."""
    try:
        config = build_selection_config(n_samples, task, *strengths, parse_extra_strategies(extra), siblings)
        validate_selection_config(config)
    except SelectionError as exc:
        raise SelectionError(f"Selection config: {exc}") from None
    return config


def parse_extra_strategies(text: str) -> list:
    if not text.strip():
        return []
    try:
        strategies = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SelectionError(f"extra strategies are not valid JSON ({exc})") from None
    if not isinstance(strategies, list):
        raise SelectionError("extra strategies must be a JSON list of strategy objects")
    return strategies


def access_inputs(stem: str) -> tuple[ScheduleRequest, str]:
    """Where the datasources are and how Lightly reaches them, as a request (its selection config
    still empty), and the token typed (empty: LIGHTLY_TOKEN is used)."""
    dataset_name = st.text_input(LABELS["dataset_name"], value=f"flicker-{stem}", key="dataset_name",
                                 persist_state="session")
    input_url = st.text_input(LABELS["input_url"], key=SCHEDULE_INPUT_URL, persist_state="session",
                              placeholder="s3://my-bucket/flicker_input/")
    lightly_url = st.text_input(LABELS["lightly_url"], key=SCHEDULE_LIGHTLY_URL, persist_state="session",
                                placeholder="s3://my-bucket/flicker_lightly/")
    region = st.text_input(LABELS["region"], "eu-central-1", key="s3_region", persist_state="session")
    role_arn = st.text_input(f"{LABELS['role_arn']} (S3 delegated access)", key="s3_role_arn", persist_state="session",
                             placeholder="arn:aws:iam::123456789012:role/lightly-access")
    external_id = st.text_input(LABELS["external_id"], key="s3_external_id", persist_state="session",
                                help="The external id of the role's trust policy: at least 10 characters.")
    token = st.text_input(TOKEN_LABEL, type="password", key="lightly_token",
                          help="Or set LIGHTLY_TOKEN before starting the app. Kept in this tab's memory only; "
                               "the dry run needs none.")
    request = ScheduleRequest(dataset_name.strip(), input_url.strip(), lightly_url.strip(),
                              S3DelegatedAccess(region.strip(), role_arn.strip(), external_id.strip()), {})
    return request, token


def metadata_fields(root: Path | None, batch: bool = False) -> tuple[str, ...]:
    """The per-frame metadata keys the export at ``root`` declares, said on the page: the fields a
    selection can weight by (none read: the tutorial's three strengths only)."""
    if root is None:
        st.caption("Export first: the schedule then offers a strength for each assertion field the export holds.")
        return ()
    keys = ()
    with error_boundary("Cannot read the export's metadata fields"):
        keys = declared_metadata_keys(root)
    if keys:
        weighted = [key for key in SIBLING_STRENGTHS if key in keys]
        how = "run the batch with --assertions ghost,class-flip" if batch else "export with ghost or class flip on Review"
        st.caption(f"Per-frame metadata in this export: {', '.join(markdown_code(key) for key in keys)}"
                   + (f"; below, a strength for {' and '.join(weighted)}." if weighted else
                      f" ({how} to weight frames by them too)."))
    return keys


def schedule_panel(stem: str, task: str, root: Path | None, batch: bool = False) -> None:
    st.subheader("Schedule a Lightly selection")
    st.caption("The tutorial's selection: diverse frames (embeddings of the task), uncertain frames "
               "(objectness least confidence) and flickering frames (the export's per-frame metadata).")
    keys = metadata_fields(root, batch)
    # A form: pressing a button commits every field as it is on screen (a field left with Tab, e.g. to
    # the token's eye button, is not committed otherwise). No Enter-to-submit: Enter must not schedule.
    with st.form("schedule", border=False, enter_to_submit=False):
        config_column, access_column = st.columns(2, gap="large")
        with config_column:
            selection = selection_inputs(keys)
        with access_column:
            request, token = access_inputs(stem)
        buttons = st.container(horizontal=True)  # as wide as their labels (columns cut them at 1280 px)
        scheduled = buttons.form_submit_button("Schedule Lightly selection", icon=":material/rocket_launch:")
        rehearsed = buttons.form_submit_button(
            "Dry run", icon=":material/preview:",
            help="The exact requests a run would send, from the real client talking to a local recorder: "
                 "nothing leaves this machine and no token is needed (secrets are masked).")
    if not (scheduled or rehearsed):
        return
    missing = missing_fields(request, token, token_needed=scheduled)
    if missing:
        st.error(f"Fill in {', '.join(missing)} first.")
        return
    with error_boundary("Scheduling failed" if scheduled else "Dry run failed"):
        check_fields(request)
        request = dataclasses.replace(request, selection_config=selection_config(task, *selection))
        with st.expander("Selection config (validated offline)"):
            st.code(shown_config(request, token), language="json")
        if scheduled:
            # lightly's client retries a request the API does not answer, for about 30 s in all: the clock shows it works on
            with st.spinner("Talking to Lightly (an API that does not answer is retried for about 30 s)...", show_time=True):
                dataset_id, run_id = schedule(request, token or None)
            st.success(f"Scheduled run {markdown_literal(run_id)} on dataset {markdown_literal(request.dataset_name)} "
                       f"({markdown_literal(dataset_id)}). Start a Lightly Worker to process it.")
        else:
            with st.spinner("Recording the requests..."):
                requests = dry_run(request)
            st.success(f"Dry run: scheduling sends these {len(requests)} requests (nothing was sent).")
            st.json(requests, expanded=2)  # method and path of each; query and body a click away


def batch_panel(combined: fleet.CombinedDatasource) -> None:
    """What a push of the batch sends, and a full validation on demand (each video was validated
    when the batch added it)."""
    running = " so far (a batch is still writing it: it can be pushed once the batch ends)"
    st.info(f"The batch's combined Lightly datasource: {counted(len(combined.frame_counts), 'video')}, "
            f"{counted(combined.frames, 'frame')}, {counted(combined.flagged, 'flagged frame')}"
            f"{running if combined.running else ''}. Each video was "
            "validated when the batch added it; failed videos are not in it.", icon=":material/dataset:")
    st.code(str(Datasource(combined.root).lightly), language=None)
    if st.button("Validate every file", icon=":material/rule:", help="Every rule of the format, on every file: "
                 "about a second per 10,000 frames."):
        with st.spinner("Validating..."):
            violations = validate_datasource(combined.root, combined.frame_counts)
        if violations:
            st.error(f"{len(violations):,} problems, the first: {markdown_literal(violations[0])}")
        else:
            st.success(f"Valid Lightly datasource: {combined.frames:,} frames of {len(combined.frame_counts):,} "
                       "videos (every rule of the format checked)")


def batch_sample_panel(combined: fleet.CombinedDatasource) -> None:
    """A flagged frame's two files, folded: the push below is what this page is for."""
    sample = fleet.sample_files(combined)
    if sample is None:
        return
    with st.expander(f"Sample files: a flagged frame of {markdown_literal(combined.worst)}", icon=":material/data_object:"):
        for label, (name, content) in zip(("Prediction", "Its metadata"), sample):
            st.markdown(f"{label} {markdown_code(name)}")
            st.json(content, expanded=2)


def batch_page(folder: str) -> None:
    """The Export page on a batch output folder (``?dir=``, from the Fleet page): push and schedule
    the combined datasource the batch wrote, with the same fields and checks as for one video."""
    st.title("Export & schedule")
    combined = None
    with error_boundary():
        combined = fleet.combined_datasource(fleet.check_folder(folder))
    if combined is None:
        st.page_link("pages/fleet.py", label="Back to the Fleet page", icon=":material/view_list:")
        st.stop()
    root = combined.root
    st.caption(f"Batch output folder {markdown_literal(root)}: the datasource `python -m core batch` wrote, pushed as it is "
               "(nothing is exported again; thresholds changed on Review apply to that one video's own export).")
    st.page_link("pages/fleet.py", label="Back to the batch", icon=":material/view_list:",  # Review's words
                 query_params={DIR: str(root)})
    left, right = st.columns(2, gap="large")
    with left:
        batch_panel(combined)
    with right:
        batch_sample_panel(combined)
    st.divider()
    push_panel(root, combined)
    schedule_panel(root.name, combined.tasks[0], root, batch=True)


flags.init_defaults()
session.note_page("export")
if DIR in st.query_params:
    batch_page(st.query_params[DIR])
    st.stop()
restore_from_url()
st.title("Export & schedule")
view = require_view()
sync_url(view)
stem = Path(view.video.relpath).stem
settings = view.settings
others = [f"{assertion_label(name).lower()} {int(flags_of.sum()):,}" for name, flags_of in view.assertion_flags.items()
          if name != FLICKER]  # exported beside flicker, in the metadata: said as well
st.caption(f"{markdown_literal(view.video.relpath)}: {counted(view.flicker.n_flagged, 'flagged frame')} at IoU tracking "
           f"{settings.iou_track:.2f}, assertion {settings.iou_assert:.2f}, mode {settings.mode}, minimum score "
           f"{settings.min_score:.2f}" + (f"; frames flagged by the other assertions: {', '.join(others)}." if others else "."))
verdicts_caption(view)
left, right = st.columns(2, gap="large")
with left:
    task = export_panel(view, stem)
with right:
    export_result_panel(session.export_result(), stem)
st.divider()
summary = session.export_result()
earlier = None if summary is not None else earlier_export_in_output_folder(view)
export_root = summary.root if summary is not None else earlier
push_panel(export_root, earlier=earlier is not None, current=holds_flags_on_screen(view, export_root))
schedule_panel(stem, task, export_root)
