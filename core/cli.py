"""Headless command line: ``python -m core run VIDEO|--demo --out DIR [options]``.

Every failure a user can cause ends with one line on stderr and a non-zero exit, and leaves
``--out`` untouched.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Sequence

from core.assertions import ASSERTIONS, FLICKER, parse_assertions
from core.bounded import printable
from core.errors import UserError
from core.paths import caching_in
from core.label_formats import FORMATS as LABEL_FORMATS
from core.flicker import DEFAULT_IOU_ASSERT, DEFAULT_IOU_TRACK, DEFAULT_MODE, MODES
from core.lightly.config import DEFAULT_N_SAMPLES
from core.lightly.export import DEFAULT_TASK
from core.secrets import mask
from core.settings import BACKENDS, DEFAULT_CONF, DetectorSpec, FlickerSettings
from core.words import counted

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr like every other user error, and a
    mistyped option or verb is named (with the nearest known one) before anything else is said of
    the line: argparse took ``--iou-trak 0.7``'s value for the video and said that instead."""

    verbs: dict[str, argparse.ArgumentParser]  # verb -> its parser, the top level's; every parser of the line has it

    def error(self, message: str):
        print(f"error: {printable(message)} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        self._check_words(args)
        return super().parse_known_args(args, namespace)

    def _check_words(self, args: list[str]) -> None:
        """Every option this parser is given is one it knows (or a prefix argparse expands), and the
        top level's verb is a verb."""
        top_level = self._subparsers is not None
        known = self._option_string_actions
        for word in args:
            if word == "--":
                return
            name = word.split("=", 1)[0]
            if word.startswith("-") and word != "-" and (
                    name in known or (name.startswith("--") and any(option.startswith(name) for option in known))):
                continue
            # a word argparse takes for a value or a positional, as it does: a negative number, or one holding a space
            # even when it starts with "-" (a video named '-cam 1.mp4', --dataset '-my data')
            if not word.startswith("-") or word == "-" or self._negative_number_matcher.match(word) or " " in word:
                if top_level:  # the verb: what follows it is the verb's parser's to check
                    if word not in self.verbs:
                        self.error(f"unknown command {word!r}" + _nearest(word, self.verbs, f": choose from {', '.join(self.verbs)}"))
                    return
                continue
            takers = [verb for verb, parser in self.verbs.items() if name in parser._option_string_actions]
            where = f" (an option of {', '.join(takers)}{': give it after the verb' if top_level else ''})"
            self.error(f"unrecognized option {name}" + (where if takers else _nearest(name, known)))


def _nearest(word: str, known, otherwise: str = "") -> str:
    """": did you mean X?" for the known word nearest a mistyped one, if one is near."""
    near = difflib.get_close_matches(word, list(known), n=1)
    return f": did you mean {near[0]}?" if near else otherwise


def folder(text: str) -> Path:
    """A folder argument: an empty string would silently mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name is not allowed")
    return Path(text)


def _add_model_options(parser: argparse.ArgumentParser, model=None) -> None:
    """Which detector, where it runs and which boxes it keeps (run, batch, select, evaluate, prelabels)."""
    (model or parser).add_argument("--weights", help="model path (.pt, .onnx, or a model .yaml for random weights); "
                                   "default: the built-in offline HOG people detector")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: ONNX Runtime on the CPU (the weights exported once, cached), PyTorch on a GPU")
    parser.add_argument("--conf", type=float, default=DEFAULT_CONF,
                        help=f"confidence floor (default {DEFAULT_CONF}, as in the tutorial)")
    parser.add_argument("--cache-dir", type=folder, help="where detections, seek proxies and file hashes are cached "
                        "(default $FLICKER_CACHE_DIR, else ~/.cache/flicker-review)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_flicker_options(parser: argparse.ArgumentParser, thresholds: bool = True) -> None:
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                        help=f"flicker engine mode (docs/flicker.md; default {DEFAULT_MODE})")
    if thresholds:
        parser.add_argument("--iou-track", type=float, default=DEFAULT_IOU_TRACK,
                            help=f"IoU above which boxes in i-1 and i+1 are one object (default {DEFAULT_IOU_TRACK})")
        parser.add_argument("--iou-assert", type=float, default=DEFAULT_IOU_ASSERT,
                            help=f"IoU below which frame i misses the object (default {DEFAULT_IOU_ASSERT})")


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", nargs="+", help="class names or ids to keep (default: all)")
    parser.add_argument("--task", default=DEFAULT_TASK,
                        help=f"prediction task name (folder under .lightly/predictions; default {DEFAULT_TASK})")
    parser.add_argument("--flickering", choices=("binary", "score"), default="binary",
                        help="metadata value: the tutorial's 1.0/0.5, or 0.5 + 0.5 x the continuous flicker score")
    parser.add_argument("--imputed-task", help="also export the imputed boxes as this prediction task (pre-labels)")
    parser.add_argument("--assertions", default=FLICKER, metavar="LIST",
                        help="comma list of flicker, ghost, class-flip: each its own per-frame metadata key "
                             "(flickering, ghost, class_flip); default flicker")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Flicker review engine, headless.")
    parser.add_argument("--version", action="version", version=f"flicker-review {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    parser.verbs = commands.choices
    run = commands.add_parser("run", help="decode -> detect (cached) -> flicker -> export")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("video", nargs="?", type=Path, help="video file (or folder of videos) to process")
    source.add_argument("--demo", action="store_true", help="use the bundled sample and the offline HOG detector")
    run.add_argument("--out", type=folder, required=True, help="output folder (the Lightly datasource root)")
    model = run.add_mutually_exclusive_group()
    model.add_argument("--predictions", type=Path,
                       help="review boxes made elsewhere instead: a Lightly task folder (DIR/.lightly/predictions/TASK), "
                            "a COCO .json, a YOLO data.yaml, a CVAT .xml, a MOT .txt or a YouTube-VIS .json")
    run.add_argument("--predictions-format", choices=LABEL_FORMATS, default="auto",
                     help="format of --predictions (default auto: from the content)")
    _add_model_options(run, model)
    _add_flicker_options(run)
    _add_export_options(run)
    run.add_argument("--corrected-task", help="also export the corrected boxes as this prediction task: imputed boxes "
                     "added, ghost boxes removed, flipped classes set to their neighbours' (every change listed in "
                     "flicker_corrections.json)")

    batch = commands.add_parser("batch", help="run over many videos (folders, globs, bucket URLs), locally or on Ray")
    batch.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="a video, a folder (recursive), a glob, or a bucket URL (s3://, gs://, az://)")
    batch.add_argument("--out", type=folder, required=True, help="output folder: the combined Lightly datasource and summary.csv")
    batch.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this process; ray: a local Ray, or the cluster at RAY_ADDRESS")
    batch.add_argument("--workers", type=int, help="Ray detector workers (default: one per GPU, else CPUs - 1)")
    _add_model_options(batch)
    _add_flicker_options(batch)
    _add_export_options(batch)

    push = commands.add_parser("push", help="upload an export (and its videos) to a bucket in one step")
    push.add_argument("export_dir", type=folder, help="folder holding .lightly (the --out of run)")
    push.add_argument("url", help="Lightly datasource URL: s3://, gs://, az:// or a local path")
    push.add_argument("--input", dest="input_url", help="input datasource URL: the videos go there too")
    push.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
    push.add_argument("--workers", type=int, default=32, help="concurrent uploads (default 32)")
    push.add_argument("--quiet", action="store_true", help="no progress bar")

    select = commands.add_parser("select", help="run a Lightly selection config locally (lightly_mundig) and save the picks")
    select.add_argument("source", type=Path, help="an export folder (from run) or a video / folder of videos")
    select.add_argument("--config", type=Path, required=True, help="selection config, JSON or YAML (as sent to Lightly)")
    select.add_argument("--n", type=int, help="frames to select (overrides the config's n_samples)")
    select.add_argument("--out", type=folder, required=True, help="folder for selected.json and the frames as PNG")
    _add_source_options(select)

    sched = commands.add_parser("schedule", help="schedule a Lightly selection run (token from LIGHTLY_TOKEN)")
    sched.add_argument("--dataset", required=True, help="Lightly dataset name (created as a VIDEOS dataset if new)")
    sched.add_argument("--input-url", required=True, help="input datasource: where the videos are")
    sched.add_argument("--lightly-url", required=True, help="Lightly datasource: where .lightly is")
    sched.add_argument("--task", default=DEFAULT_TASK, help=f"prediction task for embeddings and scores (default {DEFAULT_TASK})")
    sched.add_argument("--n-samples", type=int, default=DEFAULT_N_SAMPLES, help=f"frames to select (default {DEFAULT_N_SAMPLES})")
    sched.add_argument("--diversity", type=float, default=1.0, help="strength of DIVERSITY on the task's embeddings (0: off)")
    sched.add_argument("--least-confidence", type=float, default=1.0,
                       help="strength of WEIGHTS on objectness_least_confidence (0: off)")
    sched.add_argument("--flickering", type=float, default=1.0, help="strength of WEIGHTS on the flickering metadata (0: off)")
    sched.add_argument("--ghost", type=float, default=0.0,
                       help="strength of WEIGHTS on the ghost metadata (an export made with --assertions ...ghost; 0: off)")
    sched.add_argument("--class-flip", type=float, default=0.0,
                       help="strength of WEIGHTS on the class_flip metadata (--assertions ...class-flip; 0: off)")
    sched.add_argument("--extra-strategy", action="append", default=[], metavar="JSON",
                       help="another strategy as a JSON object, added as it is (repeatable)")
    sched.add_argument("--config", type=Path, help="a whole selection config, JSON or YAML (replaces the options above)")
    sched.add_argument("--region", help="bucket region (S3)")
    sched.add_argument("--s3-role-arn", help="S3 delegated access: the role Lightly assumes")
    sched.add_argument("--s3-external-id", help="S3 delegated access: the external id")
    sched.add_argument("--s3-access-key", help="S3 access key id (the secret comes from LIGHTLY_S3_SECRET_ACCESS_KEY)")
    sched.add_argument("--gcs-project", help="GCS project id (credentials JSON file from LIGHTLY_GCS_CREDENTIALS)")
    sched.add_argument("--azure-account", help="Azure account name (SAS token from LIGHTLY_AZURE_SAS_TOKEN)")
    sched.add_argument("--dry-run", action="store_true", help="print the config and the calls that would be made")
    sched.add_argument("--wait", action="store_true", help="poll the run until it ends, then fetch the selected frames")
    sched.add_argument("--poll-seconds", type=float, default=30.0, help="how often --wait asks (default 30 s)")
    sched.add_argument("--selected-out", type=Path, help="with --wait: write the selected frames' file names and "
                       "signed read URLs to this JSON file")
    _add_evaluate_parser(commands)
    _add_prelabels_parser(commands)
    _add_verdicts_parser(commands)
    for verb in parser.verbs.values():  # an option of another verb is named as such
        verb.verbs = parser.verbs
    return parser


def package_version() -> str:
    """The version pyproject.toml gives: read from it in a source checkout (the installed metadata
    may be another checkout's), else from the installed package's metadata."""
    from core.paths import ROOT

    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        return tomllib.loads(pyproject.read_text())["project"]["version"]
    from importlib.metadata import version

    return version("flicker-review")


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    """Where the boxes come from: an export's prediction task, or a detector run on a video."""
    parser.add_argument("--task", help="prediction task of an export (default: the first in tasks.json)")
    _add_model_options(parser)


def _add_evaluate_parser(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="precision, recall and F1 of the flags against ground truth, per threshold pair")
    evaluate.add_argument("source", type=Path, help="an export folder (from run) or a video")
    evaluate.add_argument("--gt", type=Path, required=True, help="ground truth: a MOTChallenge gt.txt or a YouTube-VIS .json "
                          "(tracks as annotated; of several videos, the one named like the video), or COCO, YOLO, CVAT "
                          "or a Lightly task (boxes linked into tracks)")
    evaluate.add_argument("--gt-format", choices=LABEL_FORMATS, default="auto", help="format of --gt (default: from the content)")
    evaluate.add_argument("--labels", action="store_true",
                          help="check the labels in --gt themselves: list the frames and boxes flicker, ghost and class "
                               "flip find suspicious (no detector runs; --out writes them as CSV)")
    evaluate.add_argument("--iou-track", type=float, help="--labels: tracking IoU (default 0.5)")
    evaluate.add_argument("--iou-assert", type=float, help="--labels: assertion IoU (default 0.5)")
    _add_flicker_options(evaluate, thresholds=False)
    evaluate.add_argument("--video", help="which video of a multi-video export (its relative path)")
    evaluate.add_argument("--out", type=Path, help="also write every threshold pair's scores to this CSV file")
    _add_source_options(evaluate)


def _add_verdicts_parser(commands) -> None:
    verdicts = commands.add_parser("verdicts", help="every verdict given on a video, as JSON or CSV (an audit trail)")
    verdicts.add_argument("source", type=Path, help="a video file, or an export folder (from run)")
    verdicts.add_argument("--format", choices=("json", "csv"),
                          help="output format (default: csv for an --out ending in .csv, else json)")
    verdicts.add_argument("--video", help="which video of a multi-video export (its relative path)")
    verdicts.add_argument("--verdicts", type=Path, help="verdict store (default: the app's)")
    verdicts.add_argument("--assertion", choices=ASSERTIONS, default=FLICKER,
                          help="whose flags the verdicts answer (default flicker)")
    verdicts.add_argument("--out", type=Path, help="write to this file instead of printing")


def _add_prelabels_parser(commands) -> None:
    from core.prelabels import FORMATS, SELECTIONS

    prelabels = commands.add_parser("prelabels", help="frames with detected and imputed boxes, ready for a labelling tool")
    prelabels.add_argument("source", type=Path, help="an export folder (from run) or a video / folder of videos")
    prelabels.add_argument("--out", type=folder, required=True, help="new folder for the frames and labels")
    prelabels.add_argument("--format", choices=FORMATS, required=True, help="labelling tool format")
    prelabels.add_argument("--only", choices=SELECTIONS, default="confirmed",
                           help="confirmed: frames reviewed as true misses (default); flagged: every flagged frame")
    prelabels.add_argument("--verdicts", type=Path, help="verdict store (default: the app's)")
    _add_flicker_options(prelabels)
    prelabels.add_argument("--video-url-prefix", default="",
                           help="labelstudio: prefixed to each video's relative path to make the task's video URL")
    _add_source_options(prelabels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # asked nothing: the verbs, and no error (pip and cargo answer so; an option alone is still checked)
        parser.print_help()
        return 0
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the verb's own parser, so the line points at its --help, which lists its options
        parser.verbs[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    # Cloud SDKs and the Lightly client log retries and tracebacks (some install their own handlers);
    # the CLI reports every failure itself, in one line.
    logging.disable(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with caching_in(getattr(args, "cache_dir", None)):
                code = _run(args)
            sys.stdout.flush()  # a reader gone away (BrokenPipeError) is heard here, not at the exit's flush
        for warning in caught:
            if issubclass(warning.category, UserWarning) and warning.category.__module__.startswith("core"):
                print(f"warning: {printable(mask(str(warning.message)))}", file=sys.stderr)
        return code
    except UserError as exc:
        print(f"error: {printable(mask(str(exc)))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader went away (``| head``): nothing more to say to it, nor an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # the machine's refusal (disk full, name too long, ...), not a bug: one line too
        print(f"error: {printable(mask(_os_error_line(exc)))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)  # no error: the user asked it to stop
        return EXIT_INTERRUPTED


def _report(text: str) -> None:
    """A verb's report on stdout, names in it escaped (a file or note someone else named)."""
    print(printable(text, lines=True))


def _os_error_line(exc: OSError) -> str:
    """``strerror: filename`` with a long name cut, so the line stays one short line."""
    name = str(exc.filename or "")
    shown = name if len(name) <= 120 else f"{name[:60]}...{name[-40:]} ({len(name):,} characters)"
    return f"{exc.strerror or type(exc).__name__}" + (f": {shown}" if shown else "")


def _run(args: argparse.Namespace) -> int:
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "verdicts":
        return _verdicts(args)
    if args.command == "prelabels":
        return _prelabels(args)
    if args.command == "batch":
        return _batch(args)
    if args.command == "push":
        return _push(args)
    if args.command == "schedule":
        return _schedule(args)
    if args.command == "select":
        from core.select import run_local_selection

        if args.n is not None and args.n < 1:
            raise UserError("--n must be at least 1")
        selection = run_local_selection(args.source, args.config, args.out, _detector_spec(args), args.n, args.task,
                                        progress_bar=not args.quiet)
        _report(selection.text())
        return 0
    from core.run import run_pipeline

    summary = run_pipeline(_run_config(args), progress_bar=not args.quiet)
    _report(summary.text())
    out = shlex.quote(str(args.out))
    _report(f"next: python -m core push {out} s3://BUCKET/PREFIX/ (to Lightly), or python -m core select {out} "
            "--config samples/selection.yaml --out PICKED (a selection here)")
    _warn_of_the_numbers(args, summary.export)
    return 0


def _warn_of_the_numbers(args: argparse.Namespace, export) -> None:
    """What a run's counts say of its options: no box at all, or flags on most of the video, read
    like a success in the summary alone (the app warns of the second at the same share)."""
    from core.qa import LARGE_FLAGGED_SHARE

    if export.boxes == 0:
        why = (f"--weights {args.weights} is a model .yaml, random weights that find nothing; give trained weights (.pt, .onnx)"
               if args.predictions is None and str(args.weights or "").lower().endswith((".yaml", ".yml"))
               else f"--conf {args.conf:g} or --classes too strict?")
        print(f"warning: no box kept, so nothing can be flagged: {printable(why)}", file=sys.stderr)
    elif export.flagged > LARGE_FLAGGED_SHARE * export.frames:
        print(f"warning: these options flag {export.flagged / export.frames:.1%} of the frames, and flags on most frames say "
              "little: a higher --iou-track or a lower --iou-assert flags fewer", file=sys.stderr)


def _detector_spec(args: argparse.Namespace) -> DetectorSpec:
    """Which detector, from the model options every verb that detects shares."""
    return DetectorSpec.of(args.weights, device=args.device, conf=args.conf, backend=args.backend,
                           cache_dir=args.cache_dir, classes=getattr(args, "classes", None))


def _flicker_settings(args: argparse.Namespace) -> FlickerSettings:
    assertions = parse_assertions(getattr(args, "assertions", FLICKER))
    return FlickerSettings.of_mode(args.mode, args.iou_track, args.iou_assert, assertions=assertions)


def _run_config(args: argparse.Namespace):
    """run's and batch's options: the detector, the flags and how they are exported."""
    from core.run import ExportOptions, RunConfig

    return RunConfig(out=args.out, video=None if getattr(args, "demo", False) else getattr(args, "video", None),
                     demo=getattr(args, "demo", False), detector=_detector_spec(args), flicker=_flicker_settings(args),
                     export=ExportOptions(args.task, args.flickering, args.imputed_task,
                                          getattr(args, "corrected_task", None)),
                     predictions=getattr(args, "predictions", None),
                     predictions_format=getattr(args, "predictions_format", "auto"))


def _batch(args: argparse.Namespace) -> int:
    from core.batch import BatchConfig, run_batch

    try:
        report = run_batch(BatchConfig(tuple(args.inputs), _run_config(args), args.engine, args.workers), quiet=args.quiet)
    except KeyboardInterrupt:
        print(f"interrupted: the videos finished so far are in {printable(str(args.out))}; run the same command again "
              "to do the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    _report(report.text())
    return report.exit_code


def _evaluate(args: argparse.Namespace) -> int:
    from core.evaluate import check_csv_path, evaluate_source, write_csv
    from core.lightly.datasource import Datasource
    from core.paths import check_output_folder, check_outside_export

    given = [name for name, value in (("--iou-track", args.iou_track), ("--iou-assert", args.iou_assert)) if value is not None]
    if given and not args.labels:  # the flags are scored at every threshold pair: one pair would silently mean nothing
        raise UserError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} only with --labels "
                        "(without it, evaluate scores every threshold pair)")
    if args.out is not None:  # before the evaluation: a typo costs a second, not a detection run
        check_csv_path(args.out)
        check_output_folder(args.out.absolute().parent, "--out's folder")
        check_outside_export(args.out, Datasource(args.source).lightly)
    if args.labels:
        return _audit_labels(args)
    evaluation = evaluate_source(args.source, args.gt, args.mode, args.video, args.task, _detector_spec(args),
                                 progress_bar=not args.quiet, gt_format=args.gt_format)
    _report(evaluation.text())
    if args.out is not None:
        write_csv(evaluation, args.out)
        print(f"every threshold pair written to {printable(str(args.out))}")
    return 0


def _audit_labels(args: argparse.Namespace) -> int:
    from core.label_qa import LABEL_IOU, audit_labels
    from core.paths import write_atomic
    from core.sources import labelled_video

    settings = FlickerSettings.of_mode(args.mode, args.iou_track if args.iou_track is not None else LABEL_IOU,
                                       args.iou_assert if args.iou_assert is not None else LABEL_IOU,
                                       assertions=ASSERTIONS).check()
    info, relpath = labelled_video(args.source, args.video)
    audit = audit_labels(args.gt, info, relpath, args.gt_format, settings)
    _report(audit.text())
    if args.out is not None:
        write_atomic(args.out, audit.csv_bytes())
        print(f"every suspicious frame and box written to {printable(str(args.out))}")
    return 0


def _prelabels(args: argparse.Namespace) -> int:
    from core.prelabels import PrelabelConfig, prelabels_from_source

    config = PrelabelConfig(args.source, args.out, args.format, args.only, args.verdicts, args.task,
                            _detector_spec(args), _flicker_settings(args), args.video_url_prefix)
    _report(prelabels_from_source(config, progress_bar=not args.quiet).text())
    return 0


def _verdicts(args: argparse.Namespace) -> int:
    from core.lightly.datasource import Datasource
    from core.paths import check_outside_export, write_atomic
    from core.prelabels import open_verdicts
    from core.verdict_listing import formatted, verdict_rows, video_key

    if args.out is not None:
        check_outside_export(args.out, Datasource(args.source).lightly)
    key, name = video_key(args.source, args.video)
    fmt = args.format or ("csv" if args.out is not None and args.out.suffix.lower() == ".csv" else "json")
    rows = verdict_rows(open_verdicts(args.verdicts), key, args.assertion)
    text = formatted(rows, fmt)
    if args.out is None:  # on a terminal, what annotators typed is shown escaped; piped, it goes out as given
        sys.stdout.write(printable(text, lines=True) if sys.stdout.isatty() else text)
    else:
        if args.out.is_dir():
            raise UserError(f"--out {args.out} is a folder; give a file name")
        write_atomic(args.out, text.encode())
        print(f"{counted(len(rows), 'verdict')} written to {printable(str(args.out))}", file=sys.stderr)
    if not rows:  # an empty list alone reads like a failure; stdout stays the list a tool reads
        whose = "" if args.assertion == FLICKER else f"{args.assertion} "
        print(f"no {whose}verdicts for {printable(name)} (give them in the app, on Review or Verdicts & thresholds)",
              file=sys.stderr)
    return 0


def _push(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.lightly.push import push

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    with tqdm(desc="push", unit="file", file=sys.stderr, disable=True if args.quiet else None, leave=False) as bar:
        def show(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        report = push(args.export_dir, args.url, args.input_url, dry_run=args.dry_run, workers=args.workers, progress=show)
    _report(report.text())
    return 0


def _secret(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise UserError(f"Set {name} in the environment (secrets are never taken as arguments)")
    return value


def _credentials(args: argparse.Namespace):
    from core.lightly.schedule import AzureCredentials, GcsCredentials, S3DelegatedAccess, S3Keys

    if args.s3_role_arn or args.s3_external_id:
        if not (args.s3_role_arn and args.s3_external_id and args.region):
            raise UserError("S3 delegated access needs --s3-role-arn, --s3-external-id and --region")
        return S3DelegatedAccess(args.region, args.s3_role_arn, args.s3_external_id)
    if args.s3_access_key:
        if not args.region:
            raise UserError("S3 keys need --region")
        return S3Keys(args.region, args.s3_access_key, _secret("LIGHTLY_S3_SECRET_ACCESS_KEY"))
    if args.gcs_project:
        from core.bounded import MAX_CONFIG_BYTES, decode_utf8, read_capped

        credentials_file = Path(_secret("LIGHTLY_GCS_CREDENTIALS"))
        if not credentials_file.is_file():
            raise UserError("LIGHTLY_GCS_CREDENTIALS must name a service account JSON file")
        what = "LIGHTLY_GCS_CREDENTIALS file"  # a key file is a few KiB of JSON: read with a bound, as UTF-8 text
        return GcsCredentials(args.gcs_project, decode_utf8(read_capped(credentials_file, MAX_CONFIG_BYTES, what), what))
    if args.azure_account:
        return AzureCredentials(args.azure_account, _secret("LIGHTLY_AZURE_SAS_TOKEN"))
    raise UserError("Say how Lightly reads the bucket: --s3-role-arn/--s3-external-id, --s3-access-key, "
                    "--gcs-project or --azure-account")


def _schedule(args: argparse.Namespace) -> int:
    import json
    import math

    from core.bounded import load_json
    from core.lightly.config import build_selection_config, load_config, validate_selection_config
    from core.lightly.schedule import ScheduleRequest, check_fields, dry_run, planned_calls, schedule, shown_config

    if args.selected_out and not args.wait:
        raise UserError("--selected-out needs --wait: the selected frames are known only once the run ends")
    if not (math.isfinite(args.poll_seconds) and 0.05 <= args.poll_seconds <= 3600):
        raise UserError(f"--poll-seconds must be between 0.05 and 3600, got {args.poll_seconds}")
    if args.config is not None:
        config = load_config(args.config)
    else:
        extra = [load_json(text, "--extra-strategy") for text in args.extra_strategy]
        config = build_selection_config(args.n_samples, args.task, args.diversity, args.least_confidence,
                                        args.flickering, extra, {"ghost": args.ghost, "class_flip": args.class_flip})
    validate_selection_config(config)
    request = ScheduleRequest(args.dataset, args.input_url, args.lightly_url, _credentials(args), config)
    if args.dry_run:
        check_fields(request)  # a bad field is one line before any of the plan is printed
        print("selection config (validated offline):")
        print(shown_config(request))
        for name, arguments in planned_calls(request):
            shown = {k: ("<the selection config above>" if k == "selection_config" else repr(v)) for k, v in arguments.items()}
            print(f"would call {name}({', '.join(f'{k}={v}' for k, v in shown.items())})"
                  + ("  (or set_dataset_id_by_name, when a dataset of that name exists)" if name == "create_dataset" else ""))
        print("requests the lightly client would send (recorded locally, nothing sent):")
        for sent in dry_run(request):
            query = "&".join(f"{k}={v[0]}" for k, v in sent["query"].items())
            print(f"{sent['method']} {sent['path']}{'?' + query if query else ''}")
            if sent["body"] is not None:
                print("  " + json.dumps(sent["body"]))
        return 0
    check_fields(request)
    if not os.environ.get("LIGHTLY_TOKEN"):  # the CLI has no token field, and never takes it as an argument
        raise UserError("No Lightly token: set LIGHTLY_TOKEN in the environment")
    dataset_id, run_id = schedule(request)
    print(f"scheduled run {run_id} on dataset {printable(args.dataset)} ({dataset_id}); start a Lightly Worker to process it")
    return _wait_for_selection(dataset_id, run_id, args) if args.wait else 0


def _wait_for_selection(dataset_id: str, run_id: str, args: argparse.Namespace) -> int:
    import json
    import time

    from core.lightly.schedule import TERMINAL_STATES, run_state, selected_frames
    from core.paths import write_atomic

    previous = None
    while True:
        state, message = run_state(dataset_id, run_id)
        if state != previous:
            print(f"run {run_id}: {state}" + (f" ({message})" if message else ""), flush=True)
            previous = state
        if state in TERMINAL_STATES:
            break
        time.sleep(args.poll_seconds)
    if state != "COMPLETED":
        raise UserError(f"The run ended as {state}: {message}")
    frames = selected_frames(dataset_id)
    print(f"{counted(len(frames), 'frame')} selected")
    if args.selected_out:
        write_atomic(args.selected_out, json.dumps(frames, indent=2).encode())
        print(f"file names and read URLs written to {printable(str(args.selected_out))}")
    else:
        for frame in frames:
            print(frame["fileName"])
    return 0
