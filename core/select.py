"""``python -m core select``: a Lightly selection config run locally (Lightly's open engine,
``lightly_mundig``) on an export folder or on videos detected here; the picks saved as PNG frames
with their Lightly names."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from core.detections import Detections
from core.lightly.datasource import FLICKERING_KEY, Datasource
from core.lightly.export import flags_recorded, flickering_flags, flickering_values
from core.paths import check_no_links, check_outside_export, check_output_folder, write_atomic
from core.settings import DetectorSpec, FlickerSettings
from core.sources import SourceVideo, frame_bar, load_sources
from core.video import FrameReader
from core.words import counted


_PICK_NAME = re.compile(r".+-\d+-[^/]+\.png")  # Lightly's name of a frame: VIDEO-FRAME-EXT.png


@dataclass(frozen=True)
class LocalSelection:
    names: list[str]  # Lightly frame names (.png), in the order picked
    videos: list[str]  # relpath of each pick
    frames: list[int]  # frame index of each pick
    flagged: int  # how many picks are flagged frames
    out: Path
    asked: int | None = None  # the number of picks asked for (None: the config's)
    available: int = 0  # frames the selection could pick from
    uncut: bool = False  # flagged counts only values of 1.0: a score export that does not record its cut

    def text(self) -> str:
        short = (f" (every frame: {self.asked:,} were asked for, and the videos hold {self.available:,})"
                 if self.asked is not None and self.asked > len(self.names) and len(self.names) == self.available else "")
        frames = counted(len(self.names), "frame")
        uncut = (", counting only scores of 1.0: the export does not record which scores are flagged; export it again "
                 "to count them all") if self.uncut else ""
        return (f"selected {frames}{short} ({self.flagged} of them flagged by the flicker assertion{uncut}); "
                f"names in {self.out / 'selected.json'}, frames as PNG in {self.out / 'frames'}")


def run_local_selection(source: Path, config_path: Path, out: Path, spec: DetectorSpec, n: int | None = None,
                        task: str | None = None, progress_bar: bool = True) -> LocalSelection:
    """The config run on an export folder (its predictions and flickering metadata) or on a video
    (detected and asserted here, default settings), picks written as PNG. ``progress_bar``: bars on stderr for
    detection, the embeddings (cached once computed) and the frames written, on a terminal only."""
    from core.lightly.config import load_config, validate_selection_config
    from core.lightly.selection import build_inputs, cached_frame_embeddings, check_runnable, run_selection, selection_listing

    config = load_config(config_path)
    validate_selection_config(config)
    _check_tasks(config, source, task)
    check_output_folder(out, "--out")
    check_outside_export(out, Datasource(source).lightly)
    earlier = _earlier_picks(out)  # a selected.json this tool did not write is refused before any work
    spec.check()
    detector = spec.load()  # once: sources and embeddings
    sources = load_sources(source, spec, task, progress_bar, detector=detector)
    per_video, metadata = _metadata(sources)
    merged = Detections.merge([video.detections for video in sources])
    check_runnable(config, merged, metadata, n)  # a wrong metadata key, before the embeddings' seconds
    embeddings = cached_frame_embeddings([video.info for video in sources], detector, progress_bar)
    picked = run_selection(config, build_inputs(merged, metadata, embeddings), n)
    flags = np.concatenate([flickering_flags(values[FLICKERING_KEY], video.flagged_above, video.flags_flipped)
                            for video, values in zip(sources, per_video)])
    starts = np.cumsum([0] + [video.info.frame_count for video in sources])
    which = np.searchsorted(starts, picked, side="right") - 1
    listing = selection_listing((sources[v].relpath, k - int(starts[v]), sources[v].info.frame_count)
                                for k, v in zip(picked.tolist(), which.tolist()))
    _write_frames(sources, listing, which.tolist(), out, progress_bar)
    flagged = int(flags[picked].sum())
    write_atomic(out / "selected.json", json.dumps(listing, indent=2).encode())
    # only now, with the new picks and their listing in place: the folder holds this selection alone
    kept = {out / "frames" / entry["file_name"] for entry in listing}
    for path in earlier:
        if path not in kept:
            path.unlink(missing_ok=True)
    return LocalSelection([e["file_name"] for e in listing], [e["video"] for e in listing], [e["frame"] for e in listing],
                          flagged, out, n, int(starts[-1]), any(map(_uncut, sources, per_video)))


def _check_tasks(config: dict, source: Path, task: str | None) -> None:
    """On an export: every task the config's strategies read is one the export lists in tasks.json, and the one whose
    boxes are read here (``task``, else the first listed): the same config sent with ``schedule`` would point Lightly at
    a task that is not there, and a run here would weigh another task's boxes than Lightly would."""
    from core.errors import SelectionError
    from core.lightly.export import read_tasks

    named = list(dict.fromkeys(str(entry["input"]["task"]) for entry in config["strategies"] if entry["input"].get("task")))
    if not named or not Datasource(source).exists():  # a video is detected here: its boxes are the config's task's
        return
    tasks = read_tasks(source)
    missing = [name for name in named if name not in tasks]
    if missing:
        raise SelectionError(f"The selection config reads task {', '.join(missing)}, which {source} does not have (its "
                             f"tasks: {', '.join(tasks)}): set the config's task to {tasks[0]}, or export again with "
                             f"run --task {missing[0]}")
    read = task or tasks[0]
    if read not in named:
        raise SelectionError(f"The selection config reads task {', '.join(named)}, and this run would read the boxes of "
                             f"{read}: pass --task {named[0]}")


def _metadata(sources: list[SourceVideo]) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per video, its values per metadata key: the export's recorded ones, or the tutorial's flickering
    values for a video detected here; and per key every video has, its values over all the videos."""
    per_video = [video.metadata if video.metadata is not None else
                 {FLICKERING_KEY: flickering_values(FlickerSettings().evaluate(video.detections), "binary")}
                 for video in sources]
    keys = [key for key in per_video[0] if all(key in values for values in per_video)]
    return per_video, {key: np.concatenate([values[key] for values in per_video]) for key in keys}


def _uncut(video: SourceVideo, metadata: dict[str, np.ndarray]) -> bool:
    """Whether the video's flags are only its values of 1.0 for want of a recorded cut, which in a score export
    leaves most of its flagged frames uncounted."""
    return not flags_recorded(metadata[FLICKERING_KEY], video.flagged_above)


def _earlier_picks(out: Path) -> list[Path]:
    """The frames an earlier selection into ``out`` wrote, by its selected.json: PNGs named as this
    tool names picks, regular files under out/frames only (never a link, nor anything a name leads
    out to). A selected.json that is no selection listing is someone else's file, and is refused
    rather than replaced."""
    from core.bounded import load_json, read_capped
    from core.errors import UserError

    listing_path = out / "selected.json"
    if not listing_path.exists() and not listing_path.is_symlink():
        return []
    try:
        names = [entry["file_name"] for entry in load_json(read_capped(listing_path, 64 << 20, "selected.json"), "selected.json")]
        if not all(isinstance(name, str) for name in names):
            raise TypeError
    except (UserError, OSError, TypeError, KeyError):
        raise UserError(f"--out {out} holds a selected.json that is not a selection's listing: choose another folder, "
                        "or move that file") from None
    picks = []
    for name in names:
        relative = PurePosixPath(name)  # as written here (Lightly's names: POSIX, the video's folders kept)
        if relative.is_absolute() or ".." in relative.parts or "\0" in name or not _PICK_NAME.fullmatch(relative.name):
            continue
        path = out / "frames" / relative
        try:
            check_no_links(out, path, "--out")
        except UserError:
            continue
        if path.is_file() and not path.is_symlink():
            picks.append(path)
    return picks


def _write_frames(sources: list[SourceVideo], listing: list[dict], which: list[int], out: Path, progress_bar: bool) -> None:
    """Each pick as PNG under out/frames, written atomically: renamed onto its name, which replaces
    a link planted there instead of writing through it; a folder on the way that is a link is
    refused (check_no_links); a frame that cannot be encoded or written stops the run."""
    import cv2

    from core.errors import UserError

    readers: dict[int, FrameReader] = {}
    try:
        # in frame order per video: a reader decodes forward, and a jump back (in pick order) may decode from the
        # file's start (an AVI whose frames are counted)
        picks = sorted(zip(listing, which), key=lambda pick: (pick[1], pick[0]["frame"]))
        for entry, video_index in frame_bar("write frames as PNG", picks, len(picks)) if progress_bar else picks:
            if video_index not in readers:
                readers[video_index] = FrameReader(sources[video_index].info)
            target = check_no_links(out, out / "frames" / entry["file_name"], "--out")
            encoded, png = cv2.imencode(".png", cv2.cvtColor(readers[video_index].get(entry["frame"]), cv2.COLOR_RGB2BGR))
            if not encoded:
                raise UserError(f"frame {entry['frame']} of {entry['video']} could not be encoded as PNG")
            write_atomic(target, png.tobytes())
    finally:
        for reader in readers.values():  # each holds an open file and its decoded frames
            reader.close()
