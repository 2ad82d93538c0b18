"""The layout of a Lightly datasource (seed 004) and Lightly's names for video frames.

Every path of an export is named here and nowhere else::

    ROOT/flicker_export.json                          which videos the export was made from (ours)
    ROOT/.lightly/predictions/tasks.json
    ROOT/.lightly/predictions/TASK/schema.json
    ROOT/.lightly/predictions/TASK/VIDEO-FRAME-EXT.json   one per frame, also when empty
    ROOT/.lightly/metadata/schema.json
    ROOT/.lightly/metadata/VIDEO-FRAME-EXT.json
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

LIGHTLY_DIR = ".lightly"
MANIFEST = "flicker_export.json"  # beside .lightly, never inside it: the datasource stays pure
CORRECTIONS = "flicker_corrections.json"  # beside it too: every box the corrected task changed
SCHEMA = "schema.json"
TASKS = "tasks.json"
FLICKERING_KEY = "flickering"  # the per-frame metadata key of the flicker assertion


def frame_namer(video_relpath: str | PurePosixPath, n_frames: int) -> Callable[[int], str]:
    """Lightly's name for frame i of a video, without suffix, as a fast function for loops:
    ``{VIDEO}-{FRAME:0{len(str(n_frames))}d}-{EXT}``. ``video_relpath`` is the video's path
    relative to the input datasource root (POSIX separators)."""
    path = PurePosixPath(video_relpath)
    stem, ext, width = str(path.with_suffix("")), path.suffix[1:], len(str(n_frames))
    return lambda frame: f"{stem}-{frame:0{width}d}-{ext}"


def frame_name(video_relpath: str | PurePosixPath, frame: int, n_frames: int, suffix: str = "") -> str:
    """One frame's name, e.g. ``("sub/cars.mp4", 99, 200, ".png") -> "sub/cars-099-mp4.png"``."""
    if not 0 <= frame < n_frames:
        raise ValueError(f"frame {frame} is outside a video of {n_frames} frames")
    return frame_namer(video_relpath, n_frames)(frame) + suffix


def image_name(stem: str) -> str:
    """The ``file_name`` inside a prediction or metadata file: the frame as an image."""
    return f"{stem}.png"


@dataclass(frozen=True)
class Datasource:
    """The paths of one export, rooted at the Lightly datasource root (the folder holding .lightly)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def lightly(self) -> Path:
        return self.root / LIGHTLY_DIR

    @property
    def predictions(self) -> Path:
        return self.lightly / "predictions"

    @property
    def tasks_file(self) -> Path:
        return self.predictions / TASKS

    def task_dir(self, task: str) -> Path:
        return self.predictions / task

    def task_schema(self, task: str) -> Path:
        return self.task_dir(task) / SCHEMA

    def prediction_file(self, task: str, stem: str) -> Path:
        return self.task_dir(task) / f"{stem}.json"

    @property
    def metadata(self) -> Path:
        return self.lightly / "metadata"

    @property
    def metadata_schema(self) -> Path:
        return self.metadata / SCHEMA

    def metadata_file(self, stem: str) -> Path:
        return self.metadata / f"{stem}.json"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def corrections(self) -> Path:
        return self.root / CORRECTIONS

    def exists(self) -> bool:
        return self.lightly.is_dir()

    def files(self) -> list[Path]:
        """Every file under .lightly, sorted. An export holds only regular files it wrote: a symbolic
        link anywhere in it (which could point at any file on the machine) is refused."""
        from core.errors import ExportError

        if self.lightly.is_symlink():
            raise ExportError(f"{self.lightly} is a symbolic link; refusing to read through it")
        found = []
        for folder, dirs, files in os.walk(self.lightly):
            for name in dirs + files:
                path = Path(folder) / name
                if path.is_symlink():
                    raise ExportError(f"{path} is a symbolic link; an export holds only regular files: refusing it")
            found.extend(Path(folder) / name for name in files)
        return sorted(found)
