"""Fleet: a whole batch output folder (``?dir=``), worst videos first; open any of them in Review with
the detections the batch exported, at the batch's settings. A batch still running updates in place."""
import hashlib
import math
from datetime import timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from core import fleet
from core.assertions import FLICKER
from core.batch import named_once
from core.errors import UserError
from core.settings import DetectorSpec
from core.verdicts import default_store_path
from core.words import counted, markdown_code, markdown_literal
from ui import flags, plots, resources, session
from ui.boundary import error_boundary
from ui.flicker_view import assertion_label
from ui.url import batch_link, restore_page_values
from ui.viewer.component import preload_viewer

DIR = "dir"  # the URL parameter naming the batch output folder
FILTER = "fleet_filter"
NAME_FILTER = "filter"  # the name filter's URL parameter
CHOSEN = "fleet_video"
TABLE = "fleet_table"  # the key of the table last drawn (see ticked_video)
TICKED = "fleet_ticked"  # the video ticked in it, by name
SYNCED = "fleet_synced"  # the tick the Video chooser was last moved to
LAST_CHOSEN = "fleet_last_chosen"  # the chooser's last video, back once a filter that emptied it is cleared
TICK_FILTER = "fleet_tick_filter"  # the filter a tick was made under: a new filter's table starts unticked, and so does the page
FILTERINGS = "fleet_filterings"  # how many times the filter changed: in the table's key, so each filter's table is a new one
LAST_DIR = "fleet_dir"  # the folder this tab last opened here: the sidebar's link comes back to it
LIVE_EVERY = timedelta(seconds=2)  # how often a running batch's rows are read again
WATCH_EVERY = timedelta(seconds=10)  # how often an idle folder is checked for a batch starting on it
CHART_VIDEOS = 30
FAILED_LISTED = 5  # failed videos whose error is spelled out under the table
NAME_PX, NAME_PADDING_PX = 6.6, 16  # the grid's 14 px font: a file name (digits, "_", "-") runs ~6.5 px a character
NAME_WIDTHS_PX = (200, 440)  # the Video column's narrowest and widest
SHARE_PX = 104  # the flagged-share bars and their "12.5%": room left for a long name at 1280 px
FIGURES = ["Frames", "Flagged", "Flagged share", "Reviewed"]  # what a video done has, and a failed one has not
COLUMNS = {
    "Status": st.column_config.TextColumn("Status", width=96),  # "done earlier" whole ("small" cut it)
    "Frames": st.column_config.NumberColumn("Frames", format="%d"),
    "Flagged": st.column_config.NumberColumn("Flagged", format="%d", help="Frames any of the batch's assertions flagged "
                                                                          "(flicker; ghost and class flip where on)"),
    "Reviewed": st.column_config.NumberColumn("Reviewed", format="%d",
                                              help="Frames flagged at this batch's thresholds that have a verdict "
                                                   "(verdicts on frames no longer flagged are kept, not counted here)"),
    "Error": st.column_config.TextColumn("Error", width="large"),
}


def fitted(columns: dict, rows: pd.DataFrame) -> dict:
    """The columns fitted to the rows shown: the names whole, the bars readable, no empty Error column (a
    done video's cell holds what its decoding warned of: frames that did not decode, a truncated file)."""
    errors = {} if rows["Error"].astype(bool).any() else {"Error": None}  # None: the column is left out
    return {**columns, **share_scaled(rows), **names_whole(rows), **errors}


def share_scaled(rows: pd.DataFrame) -> dict:
    """The flagged-share bars scaled to the largest share shown (a bar of 0-100% left shares of a few
    percent looking empty), rounded up to a tenth, with one decimal."""
    largest = float(rows["Flagged share"].max()) if len(rows) else 0.0
    top = min(1.0, max(0.1, math.ceil(largest * 10) / 10))
    bar = st.column_config.ProgressColumn("Flagged share", format="%.1f%%", min_value=0.0, max_value=top * 100, width=SHARE_PX,
                                          help=f"Share of the video's frames flagged; the bars run from 0 to {top:.0%}")
    return {"Flagged share": bar}


def names_whole(rows: pd.DataFrame) -> dict:
    """The Video column as wide as the longest name shown (a camera's dated file name was cut to
    ``north_entrance_camera_07_202`` at 1280 px, where the other cameras' names differ), within
    NAME_WIDTHS_PX (the other columns still on screen at 1280 px for a name of ~55 characters)."""
    longest = int(rows["Video"].str.len().max()) if len(rows) else 0
    low, high = NAME_WIDTHS_PX
    width = int(min(high, max(low, longest * NAME_PX + NAME_PADDING_PX)))
    return {"Video": st.column_config.TextColumn("Video", width=width)}


def folder_panel() -> Path | None:
    """The folder the URL names (or the one typed here), checked; None with one line when unusable.
    Without one in the URL (the sidebar's link), the batch this tab last opened, or reviews a video of."""
    given = st.query_params.get(DIR) or st.session_state.get(LAST_DIR) or str(session.batch_root() or "")
    if given and DIR not in st.query_params:
        st.query_params[DIR] = given
    with st.form("fleet_folder", border=False):
        field, go = st.columns([5, 1], vertical_alignment="bottom")
        typed = field.text_input("Batch output folder", value=given, placeholder="/data/out/fleet")
        if go.form_submit_button("Open") and typed.strip() != given:
            st.query_params[DIR] = given = typed.strip()
    if not given:
        st.info("Name a batch output folder (the --out of `python -m core batch`), or start a batch on Load & detect.")
        return None
    with error_boundary():
        root = fleet.check_folder(given)
        st.session_state[LAST_DIR] = str(root)
        return root
    return None


def table(found: fleet.Fleet, reviewed: dict[str, int]) -> pd.DataFrame:
    videos = found.videos
    frame = pd.DataFrame({
        "Video": [v.relpath for v in videos], "Status": [fleet.STATUS_WORDS.get(v.status, v.status) for v in videos],
        "Frames": [v.frames for v in videos], "Flagged": [v.flagged for v in videos],
        "Flagged share": [v.flagged_share for v in videos],
        "Reviewed": [reviewed.get(v.relpath, 0) for v in videos], "Error": [v.error for v in videos]})
    return frame.sort_values(["Flagged share", "Video"], ascending=[False, True], kind="stable", ignore_index=True)


def error_cell(video: str, error: str) -> str:
    """A failed video's error beside its name, the name it starts with left out: said again, it
    filled the column ("west_loading_dock_camera_11_2026-11-30_night_shi..."), the cause cut off."""
    if not error:
        return ""
    cause = named_once(video, error)[len(video):].lstrip(":").strip().removeprefix("is ")
    return cause[:1].upper() + cause[1:]


def figures_panel(found: fleet.Fleet, rows: pd.DataFrame) -> None:
    frames, flagged, reviewed = int(rows["Frames"].sum()), int(rows["Flagged"].sum()), int(rows["Reviewed"].sum())
    columns = st.columns(4)
    columns[0].metric("Videos", f"{len(rows):,}", f"{found.failed:,} failed" if found.failed else None,
                      delta_color="red", delta_arrow="off")
    columns[1].metric("Flagged frames", f"{flagged:,}")
    columns[2].metric("Share of frames", f"{flagged / frames:.1%}" if frames else "-")
    columns[3].metric("Flagged frames reviewed", f"{reviewed:,} / {flagged:,}")
    # reviewed can pass flagged: a batch from before summary.csv counted every assertion's flags lists flicker's alone
    share = min(reviewed / flagged, 1.0) if flagged else 0.0
    st.progress(share, text=f"Verdict progress across the fleet: {share:.0%}" if flagged else "No flagged frames")


def chart_panel(rows: pd.DataFrame) -> None:
    """Flagged frames of the worst videos, one bar each (a few dozen at most: the table has them all)."""
    worst = rows[rows["Flagged"] > 0].head(CHART_VIDEOS)
    if not len(worst):
        return
    which = f"the {CHART_VIDEOS} worst" if len(worst) == CHART_VIDEOS else "every video shown with flags"
    st.caption(f"Flagged frames per video ({which})")
    st.altair_chart(plots.flagged_per_video_chart(worst),
                    height=90 + 26 * len(worst))  # room for the axis and its title: a readable bar per video


def failed_panel(shown: pd.DataFrame) -> None:
    """Each failed video's one-line error in full (the table's Error column is cut at the page's width)."""
    failed = shown[shown["Status"] == "failed"]
    if not len(failed):
        return
    lines = [failure_line(row.Video, row.Error) for row in failed.head(FAILED_LISTED).itertuples()]
    if len(failed) > FAILED_LISTED:
        lines.append(f"- ... and {len(failed) - FAILED_LISTED:,} more (filter by name to see them here)")
    many = len(failed) != 1
    st.warning(f"**{counted(len(failed), 'video')} failed** and {'are' if many else 'is'} not in the export; "
               f"fix the {'files' if many else 'file'} and run the batch again (the videos done are skipped):\n"
               + "\n".join(lines), icon=":material/error:")


def failure_line(video: str, error: str) -> str:
    """A failed video and its error, its name said once (:func:`core.batch.named_once`, as the batch's
    report says it), the name as code."""
    return f"- {markdown_code(video)}{markdown_literal(named_once(video, error)[len(video):])}"


def settings_caption(root: Path) -> None:
    recorded = fleet.read_settings(root)
    if recorded is None:
        st.caption("This batch did not record its settings: videos open at the thresholds set on Review.")
        return
    settings = recorded.flicker
    # a batch run with --assertions opens with their lanes on: said here as Review's pills say it
    siblings = " and ".join(assertion_label(name).lower() for name in settings.assertions if name != FLICKER)
    st.caption(f"Videos open at the batch's settings: {settings.mode} mode, IoU tracking {settings.iou_track:g}, "
               f"IoU assertion {settings.iou_assert:g}, minimum score {settings.min_score:g}"
               + (f", {siblings} beside flicker" if siblings else "")
               + f" ({detector_words(recorded.detector)}, confidence floor {recorded.detector.conf:g}).")


def detector_words(detector: DetectorSpec) -> str:
    """The batch's detector as Load & detect names it: the built-in one in words (its spec,
    ``builtin:hog-people``, read as a file name), a model by its file name."""
    return "the built-in people detector" if detector.builtin else markdown_literal(Path(detector.weights).name)


def open_panel(root: Path, rows: pd.DataFrame, picked: str | None, warm: bool) -> None:
    """Open a video in Review: the row picked in the table, or any video chosen by name; or the whole
    batch on the Export page. The openers are links (``ui.url.batch_link``): Review runs at once,
    reading what ``warm`` read in the background while they were on screen (not while a batch
    writes the folder: each video done changes the manifest they are read from)."""
    openable = rows.loc[rows["Status"] != "failed", "Video"].tolist()
    if picked is not None and picked in openable and st.session_state.get(SYNCED) != picked:
        st.session_state[CHOSEN] = picked  # a new tick moves the chooser too: both openers name one video
    st.session_state[SYNCED] = picked
    if st.session_state.get(CHOSEN) is None and openable:
        # emptied by a filter that matched nothing (its last video comes back), or opened before a batch had done
        # any video (the first, worst, done since: the chooser stayed empty and Open in Review greyed out)
        last = st.session_state.get(LAST_CHOSEN)
        st.session_state[CHOSEN] = last if last in openable else openable[0]
    if picked is not None and picked in openable:
        if warm:
            resources.warm_batch_video(root, picked)
        st.page_link("pages/review.py", label=f"Open {markdown_literal(picked)} in Review", icon=":material/flag:",
                     query_params=batch_link(root, picked))
    elif picked is not None:  # a failed row: the openers below name another video, which a tick seemed to choose
        st.caption(f"{markdown_literal(picked)} failed, so it is not in the export and cannot be opened (its error is "
                   "below).")
    name, go, export = st.columns([3.2, 1.3, 1.4], vertical_alignment="bottom")
    chosen = name.selectbox("Video", openable, key=CHOSEN, placeholder="Choose a video",
                            help="Worst first, as the table opens (a sort made by clicking a column stays in the table); "
                                 "the filter narrows it.")
    if chosen is not None:
        st.session_state[LAST_CHOSEN] = chosen
    if chosen is not None and warm:
        resources.warm_batch_video(root, chosen)
    go.page_link("pages/review.py", label="Open in Review", icon=":material/flag:", disabled=chosen is None,
                 query_params=batch_link(root, chosen) if chosen is not None else None)
    # a link, as the openers: a switch_page from inside this fragment's rerun once left the next page blank
    export.page_link("pages/export.py", label="Export & schedule", icon=":material/cloud_upload:",
                     query_params={DIR: str(root)},
                     help="The Export page on this batch's combined Lightly datasource: every video done, in one push.")


def fleet_panel(root: Path, polling: bool) -> None:
    """Everything read from the folder: re-read on every run (a cached parse per summary version).
    While ``polling`` (a batch was running) this runs every few seconds on its own."""
    try:
        found = fleet.read_fleet(root)
    except UserError as failure:  # a summary too large to list, one that changed into something else
        st.error(markdown_literal(str(failure)), icon=":material/error:")
        return
    if polling and not found.running:
        st.rerun()  # the batch ended: one full run shows its summary and stops the polling
    reviewed = fleet.reviewed_flagged(found, default_store_path())
    rows = table(found, reviewed)
    if found.running:
        recorded = fleet.read_settings(root)
        total = recorded.videos if recorded is not None else None
        so_far = counted(len(rows), "video") if total is None else f"{len(rows):,} of {counted(total, 'video')}"
        st.info(f"A batch is writing this folder: {so_far} so far, updated every "
                f"{LIVE_EVERY.seconds} s.", icon=":material/autorenew:")
    elif found.unsummarised:
        done = counted(found.unsummarised, "video")
        were = "was" if found.unsummarised == 1 else "were"
        st.info(f"The last batch stopped before it finished; the {done} it did since the last summary {were} added. "
                "Run the same batch again to resume it (videos done are skipped).", icon=":material/pause_circle:")
        if found.mixed:
            st.warning("That batch ran with other settings than the run before it: the videos it has not reached yet "
                       "hold that earlier run's flags in the table and in the export, while Review opens them at the "
                       "last batch's settings. Run the same batch again before pushing this folder.",
                       icon=":material/warning:")
    figures_panel(found, rows)
    restore_page_values(**{NAME_FILTER: (FILTER, str)})  # a reload's or a link's filter, once per tab
    query = st.text_input("Filter by name", key=FILTER, placeholder="cam3/").strip().lower()
    if st.query_params.get(NAME_FILTER, "") != st.session_state[FILTER]:  # in the URL too, for a reload or a link
        if st.session_state[FILTER]:
            st.query_params[NAME_FILTER] = st.session_state[FILTER]
        else:
            del st.query_params[NAME_FILTER]
    shown = rows[rows["Video"].str.lower().str.contains(query, regex=False)] if query else rows
    if query:
        st.caption(f"{len(shown):,} of {len(rows):,} videos match.")
    if st.session_state.get(TICK_FILTER, query) != query:  # the tick named a row the new table no longer shows ticked
        st.session_state.pop(TICKED, None)
        st.session_state[FILTERINGS] = st.session_state.get(FILTERINGS, 0) + 1
    st.session_state[TICK_FILTER] = query
    open_panel(root, shown, ticked_video(shown), warm=not found.running)
    failed_panel(shown)
    chart_panel(shown)


def drawn_rows(shown: pd.DataFrame) -> pd.DataFrame:
    """The rows as the table shows them: shares in percent (one decimal shown), a failed video's error
    without its name, and its figures blank: "0 frames, 0 flagged" and an empty bar read as a clean video."""
    drawn = shown.assign(**{"Flagged share": shown["Flagged share"] * 100,
                            "Error": [error_cell(*row) for row in zip(shown["Video"], shown["Error"])]})
    drawn[FIGURES] = drawn[FIGURES].mask(drawn["Status"] == "failed", axis=0)
    return drawn


def ticked_video(shown: pd.DataFrame) -> str | None:
    """The table, and the video ticked in it. The table's selection is a row's position, and rows
    move while a batch writes (a video done sorts in, worst first), so the tick would land on a
    neighbour: the table is keyed by the videos it lists (a new list starts unticked), and the video
    ticked last stays picked, by name, while it is listed. A new filter's table is a new one too, even
    where it lists the rows of an earlier one (a filter typed and cleared): a run cut short by the next
    keystroke leaves that earlier table's tick in the session (Streamlit drops a widget not drawn
    only when a run ends), and a table under the earlier key would bring the tick back."""
    listed = shown["Video"].tolist()
    digest = hashlib.sha256(chr(0).join(listed).encode()).hexdigest()[:16]
    key = f"{TABLE}-{st.session_state.get(FILTERINGS, 0)}-{digest}"
    event = st.dataframe(drawn_rows(shown), column_config=fitted(COLUMNS, shown), hide_index=True, placeholder="",
                         height=min(38 + 35 * len(shown), 420), on_select="rerun", selection_mode="single-row", key=key)
    rows = [row for row in event.selection.rows if row < len(listed)]
    if rows:
        st.session_state[TICKED] = listed[rows[0]]
    elif st.session_state.get(TABLE) == key:  # the same list with no tick: unticked by hand
        st.session_state.pop(TICKED, None)
    st.session_state[TABLE] = key
    return ticked if (ticked := st.session_state.get(TICKED)) in listed else None


def watch(root: Path, seen: tuple[bool, int]) -> None:
    """While no batch runs: a whole run of the page once one starts (or resumes) on this folder, or
    its summary changes. Looks at two stats and /proc/locks, draws nothing."""
    if fleet.folder_version(root) != seen:
        st.rerun()


flags.init_defaults()
session.note_page("fleet")
preload_viewer()  # this page links to Review
st.title("Fleet")
root = folder_panel()
if root is None:
    st.stop()
settings_caption(root)
version = fleet.folder_version(root)
running = version[0]
st.fragment(fleet_panel, run_every=LIVE_EVERY if running else None)(root, running)
if not running:
    st.fragment(watch, run_every=WATCH_EVERY)(root, version)
