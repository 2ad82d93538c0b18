"""Export speed: python bench/export.py [--frames 18000] [--boxes 8]

Writes a Lightly datasource (predictions + metadata, one file each per frame) for a synthetic
video, and times the export, the validator and the importer.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


from core.detections import Detections
from core.lightly.export import VideoPredictions, export_datasource
from core.flicker import FlickerIndex
from core.lightly.validate import import_predictions, validate_datasource


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=18000)
    parser.add_argument("--boxes", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    counts = rng.poisson(args.boxes, args.frames)
    xy = rng.uniform(0, 1800, (counts.sum(), 2))
    det = Detections(np.repeat(np.arange(args.frames), counts), np.concatenate([xy, xy + rng.uniform(10, 100, xy.shape)], 1),
                     rng.uniform(0.1, 1, counts.sum()), np.zeros(counts.sum()), {0: "car"}, args.frames, (1920, 1080))
    flicker = FlickerIndex.from_detections(det).evaluate(0.8, 0.6)
    video = VideoPredictions("videos/drive.mp4", det, flicker)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = export_datasource(tmp, [video], task="yolov8_detection")
        t_export = time.perf_counter() - start
        start = time.perf_counter()
        assert validate_datasource(tmp, {"videos/drive.mp4": args.frames}) == []
        t_validate = time.perf_counter() - start
        start = time.perf_counter()
        import_predictions(Path(tmp) / ".lightly/predictions/yolov8_detection", "videos/drive.mp4", args.frames)
        t_import = time.perf_counter() - start
    print(f"{args.frames} frames, {len(det)} boxes, {summary.files} files")
    print(f"export   {t_export:6.2f} s  ({summary.files / t_export:,.0f} files/s)")
    print(f"validate {t_validate:6.2f} s")
    print(f"import   {t_import:6.2f} s")


if __name__ == "__main__":
    main()
