"""Headless command line: ``python -m core run VIDEO|--demo --out DIR [options]``.

Every failure a user can cause ends with one line on stderr and a non-zero exit, and leaves
``--out`` untouched.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Sequence

from core.errors import UserError

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Flicker review engine, headless.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="decode -> detect (cached) -> flicker -> export")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("video", nargs="?", type=Path, help="video file to process")
    source.add_argument("--demo", action="store_true", help="use the bundled sample and the offline HOG detector")
    run.add_argument("--out", type=Path, required=True, help="output folder (the Lightly datasource root)")
    model = run.add_mutually_exclusive_group()
    model.add_argument("--weights", help="model path (.pt, .onnx, or a model .yaml for random weights); "
                       "default: the built-in offline HOG people detector")
    model.add_argument("--predictions", type=Path,
                       help="review existing predictions instead: a DIR/.lightly/predictions/TASK folder")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    run.add_argument("--conf", type=float, default=0.1, help="confidence floor (default 0.1, as in the tutorial)")
    run.add_argument("--classes", nargs="+", help="class names or ids to keep (default: all)")
    run.add_argument("--mode", choices=("reference", "improved"), default="reference", help="flicker engine mode")
    run.add_argument("--iou-track", type=float, default=0.8, help="IoU above which boxes in i-1 and i+1 are one object")
    run.add_argument("--iou-assert", type=float, default=0.6, help="IoU below which frame i misses the object")
    run.add_argument("--task", default="yolov8_detection", help="prediction task name (folder under .lightly/predictions)")
    run.add_argument("--flickering", choices=("binary", "score"), default="binary",
                     help="metadata value: the tutorial's 1.0/0.5, or 0.5 + 0.5 x the continuous flicker score")
    run.add_argument("--imputed-task", help="also export the imputed boxes as this prediction task (pre-labels)")
    run.add_argument("--cache-dir", type=Path, help="detection cache (default ~/.cache/flicker-review or $FLICKER_CACHE_DIR)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    push = commands.add_parser("push", help="upload an export (and its videos) to a bucket in one step")
    push.add_argument("export_dir", type=Path, help="folder holding .lightly (the --out of run)")
    push.add_argument("url", help="Lightly datasource URL: s3://, gs://, az:// or a local path")
    push.add_argument("--input", dest="input_url", help="input datasource URL: the videos go there too")
    push.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
    push.add_argument("--workers", type=int, default=32, help="concurrent uploads (default 32)")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Cloud SDKs log their retries and tracebacks; the CLI reports failures itself, in one line.
    logging.basicConfig(level=logging.CRITICAL)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = _run(args)
        for warning in caught:
            if issubclass(warning.category, UserWarning) and warning.category.__module__.startswith("core"):
                print(f"warning: {warning.message}", file=sys.stderr)
        return code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "push":
        return _push(args)
    from core.pipeline import RunConfig, run_pipeline

    config = RunConfig(
        video=None if args.demo else args.video,
        demo=args.demo,
        out=args.out,
        weights=args.weights,
        predictions=args.predictions,
        device=args.device,
        conf=args.conf,
        classes=tuple(args.classes) if args.classes else None,
        mode=args.mode,
        iou_track=args.iou_track,
        iou_assert=args.iou_assert,
        task=args.task,
        flickering=args.flickering,
        imputed_task=args.imputed_task,
        cache_dir=args.cache_dir,
    )
    summary = run_pipeline(config, progress_bar=not args.quiet)
    print(summary.text())
    return 0


def _push(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.cloud import push

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    with tqdm(desc="push", unit="file", file=sys.stderr, disable=True if args.quiet else None, leave=False) as bar:
        def show(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        report = push(args.export_dir, args.url, args.input_url, dry_run=args.dry_run, workers=args.workers, progress=show)
    print(report.text())
    return 0
