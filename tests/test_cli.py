import os
import subprocess
import sys
from types import SimpleNamespace

import orjson
import pytest

from core.cli import main
from core.paths import ROOT
from core.flicker import compute_flickering_assertion
from core.lightly.validate import validate_datasource


def run_cli(*args, cache_dir=None):
    env = dict(os.environ, FLICKER_CACHE_DIR=str(cache_dir)) if cache_dir else None
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("kind", ["empty", "random", "text", "header_only", "missing", "directory"])
def test_bad_video_exits_with_one_clear_line_and_writes_nothing(bad_files, kind, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bad_files[kind], "--out", out, "--quiet", cache_dir=tmp_path / "cache")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_cache_dir_holds_every_cache_the_run_writes(sample_slice, tmp_path):
    chosen, environment = tmp_path / "chosen", tmp_path / "from-environment"
    result = run_cli("run", sample_slice, "--out", tmp_path / "out", "--quiet", "--cache-dir", chosen, cache_dir=environment)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in chosen.iterdir()} >= {"detections", "content-keys"}
    assert not environment.exists()  # the file's hash was remembered under $FLICKER_CACHE_DIR before


def test_cache_dir_given_in_process_is_set_back_afterwards(sample_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "before"))
    assert main(["run", str(sample_slice), "--out", str(tmp_path / "out"), "--quiet", "--cache-dir", str(tmp_path / "c")]) == 0
    assert os.environ["FLICKER_CACHE_DIR"] == str(tmp_path / "before")
    assert (tmp_path / "c" / "content-keys").is_dir() and not (tmp_path / "before").exists()


@pytest.mark.parametrize("verb", ["run", "batch"])
@pytest.mark.parametrize("option, below", [("--cache-dir", ""), ("--cache-dir", "sub"), ("--out", "")])
def test_a_link_to_nothing_given_as_a_folder_is_refused_before_any_detection(sample_slice, tmp_path, monkeypatch, capsys,
                                                                              verb, option, below):
    """--cache-dir (or --out) a link to a folder since removed passed the check: every video was detected, then mkdir
    said "File exists" (run) or "NotADirectoryError: [Errno 20]" on each video's row (batch), its detection lost."""
    import core.detect

    def detected(*args, **kwargs):
        raise AssertionError("detected before the folder was checked")

    monkeypatch.setattr(core.detect, "detect_video", detected)
    monkeypatch.setattr(core.detect, "_run", detected)
    link = tmp_path / "gone-cache"
    link.symlink_to(tmp_path / "removed")
    given = link / below if below else link
    folders = {"--cache-dir": str(tmp_path / "cache"), "--out": str(tmp_path / "out"), option: str(given)}
    argv = [verb, str(sample_slice), "--quiet", *(x for name, value in folders.items() for x in (name, value))]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"error: {option} {given}: {link} is a link to {tmp_path / 'removed'}, which leads to no folder; " \
                    "make that folder or give another", error
    assert not (tmp_path / "removed").exists()


def test_a_cache_that_cannot_be_written_keeps_the_run_and_says_so(sample_slice, tmp_path, capsys):
    """A detection cache that takes no new entry (a file where its detections folder goes; a full disk) failed the run
    once every frame was detected: 'error: Not a directory: ...', no export, the boxes lost. A cache only saves time."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "detections").write_text("not a folder")
    out = tmp_path / "out"
    assert main(["run", str(sample_slice), "--out", str(out), "--quiet", "--conf", "0.0123", "--cache-dir", str(cache)]) == 0
    said = capsys.readouterr()
    assert (out / ".lightly").is_dir() and "1 video, 40 frames" in said.out, said
    assert said.err.strip() == f"warning: Detections not cached in {cache} (Not a directory): an identical run detects again"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--iou-track", "1.5"], "--iou-track must be in [0, 1]"),
        (["--conf", "-1"], "--conf must be in [0, 1]"),
        (["--weights", "/no/such/yolov8x.pt"], "Weights file not found"),
        (["--classes", "unicorn"], "Unknown class 'unicorn'"),
    ],
)
def test_bad_options_exit_cleanly(sample_slice, tmp_path, args, message):
    out = tmp_path / "out"
    result = run_cli("run", sample_slice, "--out", out, "--quiet", *args, cache_dir=tmp_path / "cache")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_run_on_a_folder_then_review_imported_predictions(sample_slice, tmp_path):
    videos = tmp_path / "videos"
    (videos / "day1").mkdir(parents=True)
    (videos / "day1" / "walk.mp4").write_bytes(sample_slice.read_bytes())
    out = tmp_path / "out"
    result = run_cli("run", videos, "--out", out, "--quiet", "--task", "hog", cache_dir=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "day1/walk.mp4: 40 frames" in result.stdout and "validation passed" in result.stdout
    assert (out / ".lightly/predictions/hog/day1/walk-00-mp4.json").is_file()

    again = tmp_path / "again"
    result = run_cli("run", videos, "--out", again, "--quiet", "--task", "hog",
                     "--predictions", out / ".lightly/predictions/hog")
    assert result.returncode == 0, result.stderr
    first = (out / ".lightly/predictions/hog/day1/walk-07-mp4.json").read_bytes()
    second = (again / ".lightly/predictions/hog/day1/walk-07-mp4.json").read_bytes()
    assert orjson.loads(first)["predictions"] == orjson.loads(second)["predictions"]


@pytest.mark.slow
def test_demo_produces_a_valid_datasource_with_flagged_frames(tmp_path, shared_cache):
    out = tmp_path / "demo"
    result = run_cli("run", "--demo", "--out", out, "--mode", "reference", "--iou-track", "0.8", "--iou-assert", "0.6",
                     "--quiet", cache_dir=shared_cache)
    assert result.returncode == 0, result.stderr
    assert "795 frames" in result.stdout
    assert validate_datasource(out, {"vtest.avi": 795}) == []
    task = out / ".lightly/predictions/yolov8_detection"
    predictions_list = [orjson.loads((task / f"vtest-{i:03d}-avi.json").read_bytes()) for i in range(795)]
    assert sum(len(p["predictions"]) for p in predictions_list) / 795 > 2  # real pedestrians, several per frame
    flags, _ = compute_flickering_assertion(predictions_list, 0.8, 0.6)
    metadata = [orjson.loads((out / f".lightly/metadata/vtest-{i:03d}-avi.json").read_bytes())["metadata"]["flickering"]
                for i in range(795)]
    assert metadata == [1.0 if f else 0.5 for f in flags]
    assert 5 <= sum(flags) <= 80


def test_a_bad_video_in_a_folder_is_skipped_with_a_warning(sample_slice, bad_files, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "good.mp4").write_bytes(sample_slice.read_bytes())
    (videos / "broken.mp4").write_bytes(bad_files["text"].read_bytes())
    result = run_cli("run", videos, "--out", tmp_path / "out", "--quiet", cache_dir=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "warning: skipped broken.mp4" in result.stderr and "good.mp4: 40 frames" in result.stdout
    assert (tmp_path / "out/.lightly/predictions/yolov8_detection/good-00-mp4.json").is_file()


def test_control_characters_in_a_file_name_never_reach_the_terminal(tmp_path, capsys):
    """A name with an escape sequence and a newline (a video someone else named) is shown escaped,
    and the error stays one line."""
    from core.cli import main

    video = tmp_path / "ev\x1b[2J\nbad.mp4"
    video.write_text("not a video")
    assert main(["run", str(video), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and len(err.strip().splitlines()) == 1 and "ev\\x1b[2J\\nbad.mp4" in err, err


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path, capsys, sample_slice, monkeypatch):
    """``python -m core ... | head``: the pipe closes early; that is no error to report."""
    import sys

    from core.cli import EXIT_BROKEN_PIPE, main
    from core.verdicts import VerdictStore
    from core.video import probe

    store = VerdictStore(tmp_path / "v.sqlite")
    store.set(probe(sample_slice).fingerprint, 3, "miss")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    monkeypatch.setattr(sys, "stdout", os.fdopen(write, "w"))
    code = main(["verdicts", str(sample_slice), "--verdicts", str(tmp_path / "v.sqlite")])
    assert code == EXIT_BROKEN_PIPE and capsys.readouterr().err == ""


def test_ctrl_c_during_a_batch_exits_130_with_the_resume_line(tmp_path, sample_slice):
    """A batch interrupted while it works says how to resume and exits as a shell reports Ctrl-C
    (it aborted with SIGABRT now and then: native threads torn down at exit)."""
    import signal
    import time

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b", "c"):
        (videos / f"{name}.mp4").write_bytes(sample_slice.read_bytes())
    env = dict(os.environ, FLICKER_CACHE_DIR=str(tmp_path / "cache"))
    process = subprocess.Popen([sys.executable, "-m", "core", "batch", str(videos), "--out", str(tmp_path / "out"), "--quiet"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / ".batch").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # polls for the batch's first act: no fixed sleep
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the batch finished before the signal arrived")
    assert process.returncode == 130 and "run the same command again" in err and "terminate called" not in err, err


def test_an_option_a_verb_does_not_take_points_at_that_verbs_help(tmp_path, capsys):
    """It pointed at the top-level help, which lists verbs, not their options."""
    with pytest.raises(SystemExit) as stopped:
        main(["batch", str(tmp_path), "--out", str(tmp_path / "out"), "--corrected-task", "fixed"])
    assert stopped.value.code == 2
    said = "error: unrecognized option --corrected-task (an option of run) (see python -m core batch --help)\n"
    assert capsys.readouterr().err == said
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, said",
    [
        (["run", "--demo", "--out", "OUT", "--iou-trak", "0.7"],
         "unrecognized option --iou-trak: did you mean --iou-track? (see python -m core run --help)"),
        (["run", "--demo", "--out=OUT", "--iou-trak=0.7"],
         "unrecognized option --iou-trak: did you mean --iou-track? (see python -m core run --help)"),
        (["rn", "--demo", "--out", "OUT"], "unknown command 'rn': did you mean run? (see python -m core --help)"),
        (["batch", "VIDEOS", "--out", "OUT", "--corrected-task", "fixed"],
         "unrecognized option --corrected-task (an option of run) (see python -m core batch --help)"),
        (["--quiet", "run", "--demo", "--out", "OUT"],
         "unrecognized option --quiet (an option of run, batch, push, select, evaluate, prelabels: give it after the verb) "
         "(see python -m core --help)"),
    ],
)
def test_a_mistyped_option_or_verb_is_named_first_with_the_nearest_known_one(tmp_path, capsys, args, said):
    """``--iou-trak 0.7`` was reported as 'argument video: not allowed with argument --demo' (its value
    taken for the video), and ``rn`` as an invalid choice with no hint."""
    with pytest.raises(SystemExit) as stopped:
        main([arg.replace("OUT", str(tmp_path / "out")) for arg in args])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"error: {said}\n"
    assert not (tmp_path / "out").exists()


def test_an_abbreviated_option_and_a_negative_number_are_still_taken(tmp_path, capsys):
    """argparse expands a unique prefix (--iou-tr) and takes -1 as a value: neither is a mistyped option."""
    assert main(["run", "--demo", "--out", str(tmp_path / "out"), "--iou-tr", "0.7", "--conf", "-1"]) == 2
    assert capsys.readouterr().err == "error: --conf must be in [0, 1], got -1.0\n"


def test_no_verb_prints_the_verbs_and_exits_0(capsys):
    """A bare ``python -m core`` said 'the following arguments are required: command'."""
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m core") and all(verb in out for verb in ("run", "evaluate", "verdicts"))


def test_version_is_the_one_pyproject_gives(capsys):
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out == f"flicker-review {version}\n"


@pytest.mark.parametrize("given, named", [(["--iou-track", "1.5"], "--iou-track applies"),
                                          (["--iou-track", "0.5", "--iou-assert", "0.4"], "--iou-track and --iou-assert apply")])
def test_evaluate_refuses_thresholds_without_labels(tmp_path, capsys, given, named):
    """Without --labels evaluate scores every threshold pair: --iou-track 1.5 was silently ignored (exit 0)."""
    assert main(["evaluate", str(tmp_path / "no.mp4"), "--gt", str(tmp_path / "gt.txt"), *given]) == 2
    assert capsys.readouterr().err == (f"error: {named} only with --labels "
                                       "(without it, evaluate scores every threshold pair)\n")


@pytest.mark.parametrize(
    "options, warned",
    [
        (["--conf", "0.99"], "warning: no box kept, so nothing can be flagged: --conf 0.99 or --classes too strict?"),
        (["--iou-track", "0.3", "--iou-assert", "0.99"],
         "warning: these options flag 95.0% of the frames, and flags on most frames say little: a higher --iou-track or "
         "a lower --iou-assert flags fewer"),
        ([], None),
    ],
)
def test_a_run_that_kept_no_box_or_flags_most_frames_warns(sample_slice, shared_cache, tmp_path, capsys, options, warned):
    """'0 boxes kept, 0 flagged frames (0.0%)' and '38 flagged frames (95.0%)' came with no word of doubt."""
    assert main(["run", str(sample_slice), "--out", str(tmp_path / "out"), "--quiet", "--cache-dir", str(shared_cache),
                 *options]) == 0
    warnings_said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warnings_said == ([warned] if warned else [])


def test_no_box_from_a_model_yaml_says_its_weights_are_random(capsys):
    """``--weights yolov8n.yaml`` builds an untrained model: its empty run says so, not '--conf too strict?'."""
    from argparse import Namespace

    from core.cli import _warn_of_the_numbers

    _warn_of_the_numbers(Namespace(weights="yolov8n.yaml", predictions=None, conf=0.1), SimpleNamespace(boxes=0, frames=30, flagged=0))
    assert capsys.readouterr().err == ("warning: no box kept, so nothing can be flagged: --weights yolov8n.yaml is a model .yaml, "
                                       "random weights that find nothing; give trained weights (.pt, .onnx)\n")


def test_the_detect_bar_shows_its_rate_and_time_left_once(monkeypatch):
    """It read '30/30 [00:07<00:00, 4.05frame/s, 4.0 fps, ETA 0s]': tqdm's rate and time, then the same again."""
    import io
    import sys

    from core.detect import Progress
    from core.sources import progress_printer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    update, bar = progress_printer("detect clip0.mp4")
    update(Progress(10, 30, 4.0, 5.0))
    update(Progress(30, 30, 4.0, 0.0))
    shown = sys.stderr.getvalue()
    bar.close()
    assert "30/30" in shown and "frame/s" in shown and "fps" not in shown and "ETA" not in shown


def test_the_run_summary_names_its_units_as_the_options_spell_them(sample_slice, shared_cache, tmp_path, capsys):
    """It said '21 ghost, 0 class_flip' (no unit; class_flip where --assertions spells class-flip) and
    '(83 files, ...)' without the thousands separators its other counts have."""
    from core.run import RunSummary

    assert main(["run", str(sample_slice), "--out", str(tmp_path / "out"), "--quiet", "--cache-dir", str(shared_cache),
                 "--assertions", "flicker,ghost,class-flip"]) == 0
    video_line = capsys.readouterr().out.splitlines()[1]
    assert video_line.endswith(" ghost flags, 0 class-flip flags") and "class_flip" not in video_line, video_line
    many_files = RunSummary((), SimpleNamespace(frames=1, flagged=0, boxes=0, files=1593, tasks=("t",), root=tmp_path, earlier=None))
    assert "(1,593 files, tasks: t)" in many_files.text()


def test_a_run_ends_with_the_next_step_for_its_out(sample_slice, shared_cache, tmp_path, capsys):
    """It ended at 'validation passed', and a new user had to find out what the export is for."""
    out = tmp_path / "my out"
    assert main(["run", str(sample_slice), "--out", str(out), "--quiet", "--cache-dir", str(shared_cache)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"next: python -m core push '{out}' s3://BUCKET/PREFIX/ (to Lightly), or python -m core select '{out}' "
        "--config samples/selection.yaml --out PICKED (a selection here)")


@pytest.mark.parametrize("verb, said", [("run", "interrupted: nothing was written"),
                                        ("batch", "interrupted: the videos finished so far are in OUT; run the same command "
                                                  "again to do the rest")])
def test_ctrl_c_is_no_error_and_still_exits_130(tmp_path, capsys, monkeypatch, verb, said):
    """Ctrl-C printed 'error: interrupted; ...': the user stopped it, nothing went wrong."""
    import core.batch
    import core.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(core.run, "run_pipeline", interrupted)
    monkeypatch.setattr(core.batch, "run_batch", interrupted)
    out = tmp_path / "out"
    assert main([verb, str(tmp_path), "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err == said.replace("OUT", str(out)) + "\n"


@pytest.mark.parametrize("verb, option, said", [("run", "--mode", "default reference"), ("run", "--task", "default yolov8_detection"),
                                                ("batch", "--mode", "default reference"),
                                                ("schedule", "--task", "default yolov8_detection"),
                                                ("schedule", "--config", "JSON or YAML")])
def test_help_states_each_default_and_what_a_config_may_be(verb, option, said):
    """--mode's and --task's defaults were not in --help, and schedule's --config said 'as JSON' though YAML works."""
    from core.cli import build_parser

    action = build_parser().verbs[verb]._option_string_actions[option]
    assert said in " ".join(action.help.split())


@pytest.mark.parametrize(
    "args, dest, value",
    [
        (["run", "-cam 1.mp4", "--out", "OUT"], "video", "-cam 1.mp4"),
        (["verdicts", "EXPORT", "--video", "-cam 1.mp4"], "video", "-cam 1.mp4"),
        (["push", "EXPORT", "-my folder"], "url", "-my folder"),
        (["schedule", "--dataset", "-my data", "--input-url", "s3://b/i/", "--lightly-url", "s3://b/l/"], "dataset", "-my data"),
        (["run", "--demo", "--out", "OUT", "--task", "-odd task"], "task", "-odd task"),
        (["run", "--demo", "--out", "OUT", "--iou-t", "0.7", "--conf=-1"], "conf", -1.0),
    ],
)
def test_a_value_starting_with_a_dash_and_holding_a_space_is_a_value(tmp_path, args, dest, value):
    """argparse takes a word holding a space for a value or a positional even when it starts with '-' (a video named
    '-cam 1.mp4'): the unknown-option check refused it as 'unrecognized option -cam 1.mp4', a line argparse accepts."""
    from core.cli import build_parser

    args = [arg.replace("OUT", str(tmp_path / "out")) for arg in args]
    namespace, unknown = build_parser().parse_known_args(args)
    assert unknown == [] and getattr(namespace, dest) in (value, type(getattr(namespace, dest))(value))
