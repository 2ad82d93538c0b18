"""A real batch output folder for the Fleet tests: three clips of the sample and a broken file run
through ``core.batch.run_batch`` with the offline HOG detector at non-default thresholds."""
from __future__ import annotations

from pathlib import Path

from conftest import sample_frames, write_video
from core.batch import BatchConfig, run_batch
from core.run import RunConfig
from core.settings import DetectorSpec, FlickerSettings

THRESHOLDS = (0.5, 0.5)  # not the tutorial's 0.8 / 0.6: the review must open at the batch's own
VIDEOS = ("walk_a", "walk_b", "walk_c")  # 20 frames each: 3, 0 and 4 flagged at THRESHOLDS


def make_batch(base: Path) -> Path:
    """``base/out``: walk_c (4 of 20 frames flagged), walk_a (3), walk_b (0), broken (failed)."""
    videos = base / "videos"
    videos.mkdir(parents=True)
    frames = sample_frames(60, start=10)
    for k, name in enumerate(VIDEOS):
        write_video(videos / f"{name}.mp4", frames[20 * k: 20 * (k + 1)])
    (videos / "broken.mp4").write_bytes(b"not a video" * 200)
    out = base / "out"
    settings = FlickerSettings.of_mode("reference", *THRESHOLDS)
    run_batch(BatchConfig((str(videos),), RunConfig(out=out, detector=DetectorSpec(cache_dir=base / "cache"),
                                                    flicker=settings)))  # records its settings
    return out
