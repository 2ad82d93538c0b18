"""What the tool refuses: hostile and careless input, one test per rule (issue 13).

Read top to bottom, this file is the list: secrets never in clear, nothing written outside its
target, no symlink followed out of an export, every bad input one line (exit 2), no torn export
after a crash (a real SIGKILL at the dangerous moment), bounded memory on huge files.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from conftest import write_video
from core.cli import main
from core.detections import Detections
from core.errors import CloudError, ExportError, PredictionFormatError, UserError
from core.flicker import FlickerIndex
from core.lightly.datasource import Datasource
from core.lightly.export import VideoPredictions, export_datasource, read_manifest
from core.lightly.push import plan_push, push
from core.lightly.schedule import AzureCredentials, S3Keys, ScheduleRequest, dry_run, planned_calls
from core.lightly.validate import import_predictions, validate_datasource
from core.lightly.config import build_selection_config
from core.paths import ROOT, check_allowed, exclusive_lock
from core.secrets import mask
from core.video import fingerprint_file, iter_frames, probe


def cli(capsys, *args) -> tuple[int, str]:
    """Run the CLI in this process; returns the exit code and stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, fragment: str = "") -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], err


def boxes(n_frames: int, seed: int = 0, size=(768, 576)) -> Detections:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, n_frames)
    xy = rng.uniform(0, 500, (counts.sum(), 2))
    return Detections(np.repeat(np.arange(n_frames), counts), np.concatenate([xy, xy + 60], 1),
                      rng.uniform(0.2, 1, counts.sum()), np.zeros(counts.sum()), {0: "person"}, n_frames, size)


@pytest.fixture
def export(tmp_path, sample_slice):
    info = probe(sample_slice)
    det = boxes(info.frame_count)
    out = tmp_path / "export"
    export_datasource(out, [VideoPredictions.of_video(info, "walk.mp4", det, FlickerIndex.from_detections(det).evaluate())],
                      task="det")
    return out


# --- secrets -------------------------------------------------------------------------------------

def test_an_azure_sas_token_never_appears_in_a_dry_run():
    sas = "sv=2024-01-01&ss=b&srt=co&sp=rl&sig=Zm9vYmFyYmF6c2VjcmV0JTJGJTNE"
    request = ScheduleRequest("flicker-d", "az://container/in/", "az://container/lightly/", AzureCredentials("acct", sas),
                              build_selection_config(5, "t"))
    printed = json.dumps(dry_run(request)) + json.dumps(planned_calls(request))
    assert "Zm9vYmFyYmF6c2VjcmV0" not in printed and sas not in printed
    assert "acct" in printed  # the account name is not a secret


def test_a_secret_echoed_anywhere_is_masked_by_value(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
    text = "SignatureDoesNotMatch: expected wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCY for key; url ?token=abc&X-Amz-Signature=ff00"
    masked = mask(text, ["very-secret-value"])
    assert "wJalrXUtnFEMI" not in masked and "abc" not in masked and "ff00" not in masked
    request = ScheduleRequest("flicker-d", "s3://b/i/", "s3://b/l/", S3Keys("eu-central-1", "AKIAEXAMPLE", "very-secret-value"),
                              build_selection_config(5, "t"))
    assert "very-secret-value" not in json.dumps(dry_run(request))


def test_a_secret_too_short_to_be_one_does_not_mangle_every_message():
    """LIGHTLY_TOKEN=t masked every t: "Canno*** reach ***he Ligh***ly API"."""
    assert mask("Cannot reach the Lightly API (check the network)", ["t", "k"]) == "Cannot reach the Lightly API (check the network)"
    assert mask('token "t" refused, key k3y', ["t", "k3y"]) == 'token "***" refused, key ***'  # as words: masked


def test_a_storage_endpoint_that_never_answers_is_one_line_not_a_hang(monkeypatch, tmp_path):
    """A server that takes the connection and never answers held a push for 7 min 45 s (s3fs tries
    each call five times over botocore's attempts); now one try of READ_TIMEOUT_S, then one line."""
    import socket
    import time

    monkeypatch.setattr("core.lightly.push.READ_TIMEOUT_S", 2)
    (tmp_path / "export" / ".lightly").mkdir(parents=True)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # connections wait in the backlog: taken by the kernel, never answered
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
        started = time.monotonic()
        with pytest.raises(CloudError, match="took the connection but did not answer in 2 s") as refused:
            push(tmp_path / "export", "s3://bucket/p/")
    assert time.monotonic() - started < 30 and "wJalrXUtnFEMI" not in str(refused.value)


def test_cli_errors_never_print_a_secret(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTLY_TOKEN", "tok-1234567890")
    code, err = cli(capsys, "push", tmp_path / "nothing-here-tok-1234567890", "s3://b/")
    assert code == 2 and "tok-1234567890" not in err and "***" in err


# --- nothing written or read outside the target ----------------------------------------------------

def rewrite_manifest(export, **changes):
    manifest = Datasource(export).manifest
    data = orjson.loads(manifest.read_bytes())
    data["videos"][0].update(changes)
    manifest.write_bytes(orjson.dumps(data))


@pytest.mark.parametrize("relpath", ["../escape.mp4", "/abs/walk.mp4", "a/../../b.mp4", "..\\win.mp4", ""])
def test_push_refuses_a_manifest_relpath_that_climbs_out(export, tmp_path, relpath):
    rewrite_manifest(export, relpath=relpath)
    with pytest.raises(ExportError, match="unsafe relpath"):
        plan_push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))
    assert not (tmp_path / "escape.mp4").exists()


def test_a_manifest_frame_count_no_video_has_is_refused_before_any_frame_is_named(export, tmp_path):
    """Push, select and a batch's rerun name every frame of a video: 10^12 of them never ended."""
    rewrite_manifest(export, frames=10**12)
    with pytest.raises(ExportError, match="frame count of 1,000,000,000,000"):
        plan_push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))


def test_a_video_name_s3_reads_as_a_version_query_is_refused_before_any_upload(export, tmp_path):
    """s3fs cut ``q?versionId=1.mp4`` to the key ``q``: reported sent, and sent again at every push."""
    rewrite_manifest(export, relpath="q?versionId=1.mp4")
    with pytest.raises(CloudError, match="version query"):
        plan_push(export, "s3://bucket/p/", "s3://bucket/input/")
    assert [item.remote.rsplit("/", 1)[1] for item in plan_push(export, "s3://bucket/p/", str(tmp_path / "input"))
            if item.target == str(tmp_path / "input")] == ["q?versionId=1.mp4"]  # a folder takes the name as it is


def test_push_refuses_a_manifest_source_that_is_not_the_exported_video(export, tmp_path):
    secret = tmp_path / "passwords.mp4"
    secret.write_text("root:x:0:0")
    rewrite_manifest(export, source=str(secret))
    with pytest.raises(UserError, match="not the exported video|changed since"):
        plan_push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))
    rewrite_manifest(export, source=None)
    with pytest.raises(UserError, match="no longer at"):
        plan_push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))


def test_readers_refuse_an_export_whose_video_changed_since(tmp_path, sample_slice):
    """select, evaluate and prelabels read an export's boxes with the video its manifest names: another
    video of the same length there (re-encoded, re-cut) got the old boxes on its frames, and prelabels
    wrote them as labels of frames they were never drawn on."""
    from core.sources import export_sources

    video = tmp_path / "walk.mp4"
    shutil.copyfile(sample_slice, video)
    info = probe(video)
    det = boxes(info.frame_count)
    out = tmp_path / "export"
    export_datasource(out, [VideoPredictions.of_video(info, "walk.mp4", det, FlickerIndex.from_detections(det).evaluate())],
                      task="det")
    assert len(export_sources(out)) == 1
    write_video(video, [frame for _, frame in iter_frames(sample_slice)][::-1])  # the same frames, backwards
    with pytest.raises(UserError, match="walk.mp4 changed since it was exported"):
        export_sources(out)


def test_push_refuses_symlinks_inside_the_export(export, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("private")
    os.symlink(outside, Datasource(export).metadata / "zz-link.json")
    with pytest.raises(ExportError, match="symbolic link"):
        push(export, str(tmp_path / "bucket"))
    assert not (tmp_path / "bucket").exists()


@pytest.mark.parametrize("url, message", [("", "Give the Lightly datasource URL"), ("   ", "Give the"),
                                          ("memory://x", "does not support"), ("ftp://host/x", "does not support"),
                                          ("http://host/x", "does not support"), ("s3://", "names no bucket")])
def test_push_refuses_empty_and_unsupported_targets(export, capsys, url, message):
    code, err = cli(capsys, "push", export, url)
    assert_one_line(code, err, message)


def test_empty_out_is_an_error_not_the_current_folder(capsys):
    code, err = cli(capsys, "run", "--demo", "--out", "")
    assert_one_line(code, err, "empty folder name")


def test_local_paths_are_limited_to_the_configured_roots(tmp_path, monkeypatch):
    inside = tmp_path / "videos" / "a.mp4"
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "videos"))
    assert check_allowed(inside) == inside.resolve()
    for outside in ("/etc/passwd", tmp_path / "videos" / ".." / "x.mp4", "/nonexistent/dir"):
        with pytest.raises(UserError, match="outside the folders") as info:
            check_allowed(outside)
        assert "No such" not in str(info.value) and "directory" not in str(info.value)
    os.symlink("/etc", tmp_path / "videos-link")
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "videos") + os.pathsep + str(tmp_path / "other"))
    with pytest.raises(UserError):
        check_allowed(tmp_path / "videos-link" / "passwd")


# --- no torn export after a crash -----------------------------------------------------------------

def export_in_subprocess(out, slice_path, seed, fault=None, exchange=True):
    script = (
        "import sys, numpy as np\n"
        + ("" if exchange else "import core.paths; core.paths.exchange_paths = lambda a, b: False\n")
        +
        "from core.detections import Detections\nfrom core.flicker import FlickerIndex\n"
        "from core.lightly.export import VideoPredictions, export_datasource\nfrom core.video import probe\n"
        "sys.path.insert(0, sys.argv[3])\nfrom test_hostile import boxes\n"
        "info = probe(sys.argv[1]); det = boxes(info.frame_count, int(sys.argv[2]))\n"
        "export_datasource(sys.argv[4], [VideoPredictions.of_video(info, f'walk{sys.argv[2]}.mp4', det, "
        "FlickerIndex.from_detections(det).evaluate())], task='det')\n")
    env = dict(os.environ, **({"FLICKER_FAULT_POINT": fault} if fault else {}))
    return subprocess.run([sys.executable, "-c", script, str(slice_path), str(seed), str(ROOT / "tests"), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


def export_state(out):
    """Which video the manifest names and which video the prediction files are for (must agree)."""
    manifest = read_manifest(out)[0]["relpath"]
    names = {p.name.split("-")[0] for p in Datasource(out).task_dir("det").glob("walk*.json")}
    return manifest, names


@pytest.mark.slow
@pytest.mark.parametrize("fault, exchange", [("swap-marked", True), ("swap-one-entry-done", True),
                                             ("swap-old-moved-aside", False), ("swap-one-entry-done", False)])
def test_kill_9_during_the_swap_never_leaves_a_torn_export(tmp_path, sample_slice, fault, exchange):
    out = tmp_path / "out"
    assert export_in_subprocess(out, sample_slice, 1).returncode == 0
    killed = export_in_subprocess(out, sample_slice, 2, fault=fault, exchange=exchange)
    assert killed.returncode == -9, killed.stderr  # really killed at that point
    assert export_in_subprocess(out, sample_slice, 3).returncode == 0  # the next run repairs, then writes
    assert export_state(out) == ("walk3.mp4", {"walk3"})
    assert sorted(p.name for p in out.iterdir()) == [".lightly", "flicker_export.json"]
    assert not validate_datasource(out, {"walk3.mp4": probe(sample_slice).frame_count})


@pytest.mark.slow
def test_a_kill_before_the_next_run_is_repaired_by_push_too(tmp_path, sample_slice):
    out = tmp_path / "out"
    export_in_subprocess(out, sample_slice, 1)
    assert export_in_subprocess(out, sample_slice, 2, fault="swap-one-entry-done").returncode == -9
    push(out, str(tmp_path / "bucket"))  # rolls the complete export forward before reading it
    assert export_state(out) == ("walk2.mp4", {"walk2"})
    assert {p.name.split("-")[0] for p in (tmp_path / "bucket/.lightly/predictions/det").glob("walk*")} == {"walk2"}


def test_a_second_writer_gets_one_line_not_a_traceback(export, capsys):
    with exclusive_lock(export, "an export"):
        code, err = cli(capsys, "push", export, str(export.parent / "bucket"))
    assert_one_line(code, err, "Another process is writing")


# --- every bad input is one line ------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--task", "tasks.json"], "Invalid task name"),
    (["--task", "t", "--imputed-task", "t"], "its own name"),
    (["--task", "x" * 300], "at most 128"),
    (["--iou-assert", "nan"], "--iou-assert must be in [0, 1]"),
    (["--device", "cuda"], "no CUDA GPU"),
    (["--device", "tpu"], "Unknown device"),
])
def test_bad_run_options_are_one_line(capsys, tmp_path, args, message):
    code, err = cli(capsys, "run", "--demo", "--out", tmp_path / "out", "--quiet", *args)
    assert_one_line(code, err, message)
    assert not (tmp_path / "out").exists()


def test_out_and_cache_under_a_file_are_one_line(capsys, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_one_line(*cli(capsys, "run", "--demo", "--out", a_file / "sub", "--quiet"), "which is a file")
    assert_one_line(*cli(capsys, "run", "--demo", "--out", tmp_path / "o", "--cache-dir", a_file, "--quiet"),
                    "not a folder")


@pytest.mark.parametrize("config, message", [
    ({"n_samples": 5, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS", "strength": float("nan")}}]},
     "strength must be a number"),
    ({"n_samples": 5, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS", "strength": "3"}}]},
     "strength must be a number"),
    ({"proportion_samples": "0.5", "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}}]},
     "proportion_samples"),
    ({"proportion_samples": 2, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}}]},
     "proportion_samples"),
    ({"n_samples": True, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}}]}, "n_samples"),
    ({"n_samples": 5, "strategies": [{"input": 5, "strategy": {"type": "WEIGHTS"}}]}, "input must be a mapping"),
    ({"n_samples": 5, "strategies": [{"input": {"type": "RANDOM"}, "strategy": "WEIGHTS"}]}, "strategy must be a mapping"),
    ({"n_samples": 5, "strategies": [{"input": {"type": "RANDOM", "random_seed": "x"}, "strategy": {"type": "WEIGHTS"}}]},
     "random_seed"),
])
def test_bad_selection_configs_are_one_line(capsys, tmp_path, export, config, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code, err = cli(capsys, "select", export, "--config", path, "--out", tmp_path / "picked")
    assert_one_line(code, err, message)


@pytest.mark.parametrize("args, message", [
    (["--extra-strategy", '{"input": 5}'], "input must be a mapping"),
    (["--extra-strategy", "5"], "must be a mapping"),
    (["--poll-seconds", "-1", "--wait"], "--poll-seconds"),
    (["--poll-seconds", "nan", "--wait"], "--poll-seconds"),
    (["--poll-seconds", "0", "--wait"], "--poll-seconds"),
])
def test_bad_schedule_options_fail_before_anything_is_sent(capsys, monkeypatch, args, message):
    monkeypatch.setenv("LIGHTLY_TOKEN", "tok-1234567890")
    monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", "http://127.0.0.1:9")  # nothing listens: nothing can be sent
    code, err = cli(capsys, "schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/", "--lightly-url", "s3://b/l/",
                    "--region", "eu-central-1", "--s3-role-arn", "arn:aws:iam::123456789012:role/x",
                    "--s3-external-id", "external-id-1", *args)
    assert_one_line(code, err, message)


def test_an_unreachable_lightly_api_is_exactly_one_line(capsys, monkeypatch):
    monkeypatch.setenv("LIGHTLY_TOKEN", "tok-1234567890")
    monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", "http://127.0.0.1:9")
    code, err = cli(capsys, "schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/", "--lightly-url", "s3://b/l/",
                    "--region", "eu-central-1", "--s3-role-arn", "arn:aws:iam::123456789012:role/x",
                    "--s3-external-id", "external-id-1")
    assert_one_line(code, err, "Cannot reach the Lightly API")


def write_task(tmp_path, predictions, n_frames=3, categories=({"id": 0, "name": "person"},)):
    task = tmp_path / ".lightly/predictions/det"
    task.mkdir(parents=True)
    (task / "schema.json").write_text(json.dumps({"task_type": "object-detection", "categories": list(categories)}))
    for frame in range(n_frames):
        (task / f"v-{frame}-mp4.json").write_text(json.dumps({"file_name": f"v-{frame}-mp4.png",
                                                              "predictions": predictions if frame == 1 else []}))
    return task


@pytest.mark.parametrize("prediction, message", [
    ({"category_id": 0, "bbox": [900, 10, 20, 20], "score": 0.5}, "entirely outside the 640x480 frame"),
    ({"category_id": 0, "bbox": [-50, -50, 20, 20], "score": 0.5}, "x, y must be >= 0"),
    ({"category_id": -1, "bbox": [1, 1, 20, 20], "score": 0.5}, "category_id must be an integer in 0.."),
    ({"category_id": 2**31, "bbox": [1, 1, 20, 20], "score": 0.5}, "category_id must be an integer in 0.."),
    # a width of 10**15 was clipped into a whole-frame box, where every other format refuses it
    ({"category_id": 0, "bbox": [1, 1, 10**15, 20], "score": 0.5}, "reaches more than the 640x480 frame's own size"),
])
def test_imported_predictions_that_cannot_be_real_are_refused_with_the_file_named(tmp_path, prediction, message):
    task = write_task(tmp_path, [prediction])
    with pytest.raises(PredictionFormatError, match="v-1-mp4.json") as info:
        import_predictions(task, "v.mp4", 3, (640, 480))
    assert message in str(info.value)


@pytest.mark.parametrize("file_name", ["../../v-1-mp4.png", "v-2-mp4.png", "", None, 7])
def test_a_prediction_file_made_for_another_frame_is_refused(tmp_path, file_name):
    """The frame comes from the file's own name; a file_name naming another image (or climbing out
    of the folder) says the file was made for something else."""
    task = write_task(tmp_path, [])
    (task / "v-1-mp4.json").write_text(json.dumps({"file_name": file_name, "predictions": []}))
    with pytest.raises(PredictionFormatError, match=r"v-1-mp4.json: file_name .* names another image"):
        import_predictions(task, "v.mp4", 3, (640, 480))
    (task / "v-1-mp4.json").write_text(json.dumps({"file_name": "v-1-mp4.jpg", "predictions": []}))
    assert len(import_predictions(task, "v.mp4", 3, (640, 480))) == 0  # its own frame, any image extension


def test_a_category_id_too_large_in_the_schema_is_refused(tmp_path):
    task = write_task(tmp_path, [], categories=({"id": 2**40, "name": "x"},))
    with pytest.raises(PredictionFormatError, match="schema.json"):
        import_predictions(task, "v.mp4", 3)


def test_a_huge_prediction_file_is_refused_before_it_is_read(tmp_path):
    task = write_task(tmp_path, [])
    with open(task / "v-1-mp4.json", "wb") as f:
        f.truncate(3 << 30)  # 3 GB, sparse: refusing it must not read it
    with pytest.raises(PredictionFormatError, match="too large"):
        import_predictions(task, "v.mp4", 3)


def test_a_symlinked_prediction_file_is_refused(tmp_path):
    task = write_task(tmp_path, [])
    (task / "v-1-mp4.json").unlink()
    os.symlink("/etc/hostname", task / "v-1-mp4.json")
    with pytest.raises(PredictionFormatError, match="symbolic link"):
        import_predictions(task, "v.mp4", 3)


def test_a_fifo_in_place_of_a_prediction_file_is_refused_without_blocking(tmp_path):
    task = write_task(tmp_path, [])
    (task / "v-1-mp4.json").unlink()
    os.mkfifo(task / "v-1-mp4.json")  # nobody writes to it: a plain open for reading would wait forever
    with pytest.raises(PredictionFormatError, match="v-1-mp4.json: is not a regular file"):
        import_predictions(task, "v.mp4", 3)


def test_predictions_outside_the_common_shape_go_through_every_rule(tmp_path):
    """Probabilities, an integer score, a second class: valid, read by the full rules, not the fast check."""
    categories = ({"id": 0, "name": "person"}, {"id": 3, "name": "car"})
    task = write_task(tmp_path, [{"category_id": 3, "bbox": [1, 2, 30, 40], "score": 1, "probabilities": [0.25, 0.75]},
                                 {"category_id": 0, "bbox": [5, 5, 10, 10], "score": 0.5}], categories=categories)
    back = import_predictions(task, "v.mp4", 3, (640, 480))
    assert back.frame.tolist() == [1, 1] and back.cls.tolist() == [3, 0] and back.score.tolist() == [1.0, 0.5]
    assert back.xyxy.tolist() == [[1, 2, 31, 42], [5, 5, 15, 15]] and back.names == {0: "person", 3: "car"}
    bad = write_task(tmp_path / "bad", [{"category_id": 0, "bbox": [1, 2, 30, 40], "score": 0.5, "probabilities": [0.5, 0.6]}],
                     categories=categories)
    with pytest.raises(PredictionFormatError, match=r"v-1-mp4.json: predictions\[0\]: probabilities must sum to 1"):
        import_predictions(bad, "v.mp4", 3)


def test_detections_that_disagree_with_the_decoded_frame_count_are_not_exported(tmp_path, sample_slice):
    info = probe(sample_slice)
    short = boxes(10)  # a cache entry claiming 10 frames for a 40-frame video
    with pytest.raises(ExportError, match="cover 10 frames but the video decodes to 40"):
        export_datasource(tmp_path / "out", [VideoPredictions.of_video(info, "walk.mp4", short,
                                                                       FlickerIndex.from_detections(short).evaluate())],
                          task="det")
    assert not (tmp_path / "out" / ".lightly").exists()


def test_same_size_files_differing_in_the_middle_get_different_keys(tmp_path):
    data = bytearray(np.random.default_rng(0).integers(0, 256, 5 << 20, dtype=np.uint8).tobytes())
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    first.write_bytes(data)
    data[(5 << 20) // 2 + 1234567] ^= 1  # one bit, far from the ends and from the middle MiB
    second.write_bytes(data)
    assert fingerprint_file(first) != fingerprint_file(second)
    assert fingerprint_file(first) == fingerprint_file(first)


def test_a_cache_entry_for_fewer_frames_than_the_video_decodes_is_recomputed(tmp_path, sample_slice):
    from core.detect import _cache_file, cached_detections, load_detector

    info, detector = probe(sample_slice), load_detector(None)
    boxes(10).save(_cache_file(info, detector, 0.1, None, tmp_path))  # claims 10 frames of a 40-frame video
    assert cached_detections(info, detector, 0.1, None, tmp_path) is None
    assert not _cache_file(info, detector, 0.1, None, tmp_path).exists()


def test_uploads_are_copied_to_disk_in_chunks_and_named_by_content(tmp_path, monkeypatch):
    import io

    from core.uploads import save_upload

    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path))

    class ChunksOnly(io.BytesIO):
        def getvalue(self):  # the whole upload as one bytes object is never asked for
            raise AssertionError("read in chunks, please")

    data = np.random.default_rng(0).integers(0, 256, 9 << 20, dtype=np.uint8).tobytes()
    first = save_upload("../../evil name.mp4", ChunksOnly(data))
    again = save_upload("../../evil name.mp4", ChunksOnly(data))
    assert first == again and first.read_bytes() == data
    assert first.parent.parent == tmp_path / "uploads" and first.name == "evil name.mp4"
    assert [p.name for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == ["evil name.mp4"]  # no temp file left


# --- closed to the network (issue 24) -------------------------------------------------------------

RAY_LISTENERS = """
import json, psutil, ray
from core.batch.ray_engine import _connect
assert _connect()
ray.get(ray.remote(lambda: 1).remote())  # a worker process is listening too
me = psutil.Process()
found = set()
for proc in [me, *me.children(recursive=True)]:
    try:
        found |= {(c.laddr.ip, proc.name()) for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN}
    except psutil.NoSuchProcess:
        pass
print(json.dumps({"listening": sorted(found), "gcs": ray.get_runtime_context().gcs_address}))
ray.shutdown()
"""


@pytest.mark.slow
def test_a_local_ray_listens_on_loopback_only_with_no_dashboard(tmp_path):
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", RAY_LISTENERS], capture_output=True, text=True, timeout=300,
                            env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["gcs"].startswith("127.0.0.1:")
    names = {name for _, name in seen["listening"]}
    assert {"gcs_server", "raylet"} <= names  # the servers were really seen
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip, _ in seen["listening"]), seen
    assert not any("dashboard" in name for name in names)


# --- bounded reads, one line (issue 24) -----------------------------------------------------------

def cli_process(*args, memory_bytes: int = 3 << 30, timeout: int = 120) -> tuple[int, str]:
    """The CLI in a subprocess with an address-space limit: an unbounded read dies there, not here."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    result = subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT, preexec_fn=limit)
    return result.returncode, result.stderr


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")) + "n_samples: *i\n"


@pytest.mark.parametrize("name, content, message", [
    ("zero", None, "not a regular file"),  # /dev/zero: endless
    ("folder.json", "folder", "not a regular file"),
    ("bomb.yaml", BILLION_LAUGHS, "expands to more than 100,000 values (YAML aliases"),
    ("many.yaml", "n_samples: [" + ", ".join(["lol"] * 100_001) + "]\n", "holds more than 100,000 values"),  # no alias
    ("deep.json", "[" * 50_000 + "]" * 50_000, "nests deeper than"),
    ("deep.yaml", "[" * 50_000 + "]" * 50_000, "nests deeper than"),
    ("self.yaml", "a: &a [1, *a]\nn_samples: 1\n", "refers to itself"),
    ("latin1.json", '{"n_samples": 5, "name": "caf\xe9"}', "not UTF-8"),
    ("big.json", " " * (2 << 20) + "{}", "at most"),
])
def test_selection_configs_are_read_with_bounds(tmp_path, export, name, content, message):
    path = Path("/dev/zero") if content is None else tmp_path / name
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content.encode("latin-1") if "latin1" in name else content.encode())
    code, err = cli_process("select", export, "--config", path, "--out", tmp_path / "picked")
    assert_one_line(code, err, message)
    assert len(err) < 400 and "lol" not in err  # the structure is never echoed


def test_a_bad_value_in_a_config_is_described_not_printed(capsys, tmp_path, export):
    path = tmp_path / "config.json"
    path.write_text('{"n_samples": ' + json.dumps(list(range(100_000))) + ', "strategies": []}')
    code, err = cli(capsys, "select", export, "--config", path, "--out", tmp_path / "picked")
    assert_one_line(code, err, "a list of 100000 items")
    path.write_text('{"n_samples": -' + "9" * 4000 + ', "strategies": []}')
    code, err = cli(capsys, "select", export, "--config", path, "--out", tmp_path / "picked")
    assert_one_line(code, err, "an integer of")
    assert len(err) < 300


def test_an_extra_strategy_nested_50000_deep_is_one_line(monkeypatch):
    monkeypatch.setenv("LIGHTLY_TOKEN", "tok-1234567890")
    code, err = cli_process("schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/", "--lightly-url", "s3://b/l/",
                            "--region", "eu-central-1", "--s3-role-arn", "arn:aws:iam::123456789012:role/x",
                            "--s3-external-id", "external-id-1", "--dry-run",
                            "--extra-strategy", "[" * 50_000 + "]" * 50_000)
    assert_one_line(code, err, "--extra-strategy nests deeper than")


def test_a_10000_character_out_and_a_5000_digit_class_are_one_line(capsys, tmp_path):
    code, err = cli(capsys, "run", "--demo", "--quiet", "--out", tmp_path / ("x" * 10_000))
    assert_one_line(code, err, "File name too long")
    assert len(err) < 300
    code, err = cli(capsys, "run", "--demo", "--quiet", "--out", tmp_path / "o", "--classes", "9" * 5000)
    assert_one_line(code, err, "Unknown class")
    assert len(err) < 300 and not (tmp_path / "o").exists()
    code, err = cli(capsys, "run", "--demo", "--quiet", "--out", tmp_path / "o", "--classes", "²")
    assert_one_line(code, err, "Unknown class")


def test_batch_out_under_a_file_and_an_ftp_input_are_one_line(capsys, tmp_path, sample_slice):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_one_line(*cli(capsys, "batch", sample_slice, "--quiet", "--out", a_file / "sub"), "which is a file")
    assert_one_line(*cli(capsys, "batch", "ftp://127.0.0.1:9/x.mp4", "--quiet", "--out", tmp_path / "o"),
                    "ftp:// is not a bucket")
    assert not (tmp_path / "o").exists()


def test_evaluate_out_under_a_file_is_refused_before_the_work(capsys, tmp_path, sample_slice, monkeypatch):
    import core.evaluate

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,10,50,80,1,1,1\n")
    monkeypatch.setattr(core.evaluate, "evaluate_source", lambda *a, **k: pytest.fail("the evaluation ran"))
    code, err = cli(capsys, "evaluate", sample_slice, "--gt", gt, "--out", a_file / "scores.csv")
    assert_one_line(code, err, "is not a folder")
    os.mkfifo(tmp_path / "pipe.csv")  # refused once the evaluation had run (never replaced): before it now
    code, err = cli(capsys, "evaluate", sample_slice, "--gt", gt, "--out", tmp_path / "pipe.csv")
    assert_one_line(code, err, "is not a regular file")


# --- no code from a model YAML, whatever the environment says (issue 24) ----------------------------

def model_yaml(tmp_path, name: str, **changes) -> Path:
    """Ultralytics' own yolov8.yaml with some keys (or one head layer) changed."""
    import yaml
    from ultralytics.utils.checks import check_yaml

    config = yaml.safe_load(Path(check_yaml("yolov8.yaml")).read_text())
    layer = changes.pop("head_layer", None)
    if layer is not None:
        config["head"].insert(0, layer)
    config.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"activation": "__import__('pathlib').Path('{marker}').write_text('x') or nn.SiLU()"}, "activation is not a plain"),
    ({"activation": "nn.LeakyReLU(__import__('pathlib').Path('{marker}').write_text('x'))"}, "activation is not a plain"),
    ({"head_layer": [-1, 1, "attempt_load_one_weight", ["{marker}.pt"]]}, "not a model layer"),
    ({"head_layer": [-1, 1, "nn.__class__", []]}, "not a model layer"),
    ({"nc": 10**9}, "nc must be"),
    ({"width_multiple": 1e6}, "gains"),
])
def test_a_model_yaml_never_runs_code_even_with_ultralytics_safe_load_off(tmp_path, capsys, changes, message):
    marker = tmp_path / "PWNED"
    changes = json.loads(json.dumps(changes).replace("{marker}", str(marker)))
    weights = model_yaml(tmp_path, "yolov8n.yaml", **changes)
    env = dict(os.environ, ULTRALYTICS_SAFE_LOAD="0")
    result = subprocess.run([sys.executable, "-m", "core", "run", "--demo", "--weights", str(weights), "--device", "cpu",
                             "--backend", "torch", "--quiet", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert_one_line(result.returncode, result.stderr, message)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_plain_model_yamls_still_build(tmp_path):
    from core.detect import YoloDetector

    weights = model_yaml(tmp_path, "yolov8n.yaml", activation="torch.nn.ReLU()")
    assert len(YoloDetector(weights, device="cpu", imgsz=64, backend="torch").names) == 80



@pytest.mark.parametrize("kind, name", [("fifo", "m.yaml"), ("zero", "z.yaml"), ("zero", "z.pt"), ("folder", "d.yaml")])
def test_a_model_path_that_is_not_a_regular_file_is_one_line_never_read(tmp_path, kind, name):
    """A FIFO named .yaml blocked forever and /dev/zero named .yaml filled the memory: anything at
    the path was taken for a bare Ultralytics model name, whose loader reads without a bound."""
    from core.detect import YoloDetector
    from core.errors import DetectorError

    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()
    with pytest.raises(DetectorError, match="is not a regular file"):
        YoloDetector(str(path), device="cpu", imgsz=64, backend="torch")

# --- push never writes through a link planted in its target (issue 24) ----------------------------

def test_push_refuses_a_target_whose_lightly_folder_is_a_link(export, tmp_path):
    elsewhere, target = tmp_path / "elsewhere", tmp_path / "bucket"
    elsewhere.mkdir()
    target.mkdir()
    os.symlink(elsewhere, target / ".lightly")
    with pytest.raises(UserError, match="symbolic link"):
        push(export, str(target))
    assert not any(elsewhere.iterdir())
    (target / ".lightly").unlink()
    (target / ".lightly").mkdir()
    os.symlink(elsewhere, target / ".lightly" / "metadata")  # deeper down
    with pytest.raises(UserError, match="metadata is a symbolic link"):
        push(export, str(target))
    assert not any(elsewhere.iterdir())


def test_push_replaces_a_file_link_in_the_target_and_never_writes_through_it(export, tmp_path):
    target = tmp_path / "bucket"
    push(export, str(target))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = sorted((target / ".lightly" / "metadata").glob("*.json"))[-1]
    planted.unlink()
    os.symlink(victim, planted)
    report = push(export, str(target))
    assert victim.read_text() == "precious"
    assert not planted.is_symlink() and planted.read_bytes() == (Datasource(export).metadata / planted.name).read_bytes()
    assert len(report.uploaded) == 1  # only the planted link was replaced; the rest had the same content
    assert not [p for p in target.rglob("*.partial")]


def test_push_dry_run_and_pushing_into_the_export_itself_write_nothing(export, tmp_path):
    report = push(export, str(tmp_path / "bucket"), dry_run=True)
    assert report.uploaded and not (tmp_path / "bucket").exists()
    with pytest.raises(UserError, match="own .lightly"):
        push(export, str(Datasource(export).lightly))
    assert not (Datasource(export).lightly / ".lightly").exists()


# --- pre-labels never delete a file of the user's (issue 24) ---------------------------------------

@pytest.fixture
def flickering_export(tmp_path, sample_slice):
    """An export of the sample slice whose one box goes missing in frames 5 and 20: two flags."""
    info = probe(sample_slice)
    frames = np.array([f for f in range(info.frame_count) if f not in (5, 20)])
    det = Detections(frames, np.tile([100.0, 100.0, 200.0, 300.0], (len(frames), 1)), np.full(len(frames), 0.9),
                     np.zeros(len(frames)), {0: "person"}, info.frame_count, (info.width, info.height))
    out = tmp_path / "flickering"
    export_datasource(out, [VideoPredictions.of_video(info, "walk.mp4", det, FlickerIndex.from_detections(det).evaluate())],
                      task="det")
    return out


def test_prelabels_onto_an_earlier_folder_holding_the_users_files_is_refused(flickering_export, tmp_path, capsys):
    out = tmp_path / "labels"
    args = ["prelabels", flickering_export, "--out", out, "--format", "coco", "--only", "flagged", "--quiet"]
    assert cli(capsys, *args)[0] == 0
    (out / "notes.txt").write_text("my notes")
    (out / "images" / "mine.png").write_bytes(b"my image")
    result = subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert_one_line(result.returncode, result.stderr, "which pre-labels did not write")
    assert (out / "notes.txt").read_text() == "my notes" and (out / "images" / "mine.png").read_bytes() == b"my image"
    (out / "notes.txt").unlink()
    (out / "images" / "mine.png").unlink()
    assert cli(capsys, *args)[0] == 0  # only what it wrote: replaced


def test_prelabels_refuse_a_planted_link_or_a_manifest_that_lists_nothing(flickering_export, tmp_path, capsys):
    out = tmp_path / "labels"
    args = ["prelabels", flickering_export, "--out", out, "--format", "yolo", "--only", "flagged", "--quiet"]
    assert cli(capsys, *args)[0] == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    image = sorted((out / "images").iterdir())[0]
    image.unlink()
    os.symlink(victim, image)  # a name the manifest lists, now a link
    assert_one_line(*cli(capsys, *args), "which pre-labels did not write")
    image.unlink()
    manifest = json.loads((out / "prelabels.json").read_text())
    (out / "prelabels.json").write_text(json.dumps({"format": "yolo", "frames": manifest["frames"]}))
    assert_one_line(*cli(capsys, *args), "already holds other files")
    assert victim.read_text() == "precious" and (out / "data.yaml").exists()


# --- readers of an export follow nothing out of it (issue 24) --------------------------------------

def prelabels_of(export, tmp_path, capsys):
    return cli(capsys, "prelabels", export, "--out", tmp_path / "labels", "--format", "coco", "--only", "flagged", "--quiet")


def test_a_metadata_file_that_is_a_link_is_one_line(flickering_export, tmp_path, capsys):
    planted = sorted(Datasource(flickering_export).metadata.glob("walk-*.json"))[3]
    planted.unlink()
    os.symlink("/dev/zero", planted)
    assert_one_line(*prelabels_of(flickering_export, tmp_path, capsys), "symbolic link")
    planted.unlink()
    planted.write_bytes(b"\xff not json")
    assert_one_line(*prelabels_of(flickering_export, tmp_path, capsys), "not valid JSON")


@pytest.mark.parametrize("tasks", [["/etc"], ["../../elsewhere"], ["det/../../x"], [".."]])
def test_a_tasks_json_naming_a_path_out_of_the_export_is_one_line(flickering_export, tmp_path, capsys, tasks):
    Datasource(flickering_export).tasks_file.write_text(json.dumps(tasks))
    assert_one_line(*prelabels_of(flickering_export, tmp_path, capsys), "not a plain folder name")


def test_a_task_folder_that_is_a_link_is_refused(flickering_export, tmp_path, capsys):
    import shutil

    task = Datasource(flickering_export).task_dir("det")
    shutil.move(task, tmp_path / "det-elsewhere")
    os.symlink(tmp_path / "det-elsewhere", task)
    assert_one_line(*prelabels_of(flickering_export, tmp_path, capsys), "symbolic link")


@pytest.mark.slow
def test_readers_finish_a_torn_export_before_reading_it(tmp_path, sample_slice):
    from core.sources import export_sources

    out = tmp_path / "out"
    export_in_subprocess(out, sample_slice, 1)
    assert export_in_subprocess(out, sample_slice, 2, fault="swap-one-entry-done").returncode == -9
    assert [video.relpath for video in export_sources(out)] == ["walk2.mp4"]
    assert export_state(out) == ("walk2.mp4", {"walk2"})


# --- an ONNX model that is not a YOLO detector (issue 24) -----------------------------------------

def onnx_model(path: Path, kind: str) -> Path:
    """A real ONNX graph over (B, 3, H, W) images: a classifier's (B, 3) output, or a (B, 3, H*W)
    output whose shape is only known when it runs."""
    import onnx
    from onnx import TensorProto, helper

    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["b", 3, "h", "w"])
    if kind == "classifier":
        nodes = [helper.make_node("ReduceMean", ["images"], ["out"], axes=[2, 3], keepdims=0)]
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 3])
        initializers = []
    else:
        nodes = [helper.make_node("Reshape", ["images", "shape"], ["out"])]
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "c", "n"])
        initializers = [helper.make_tensor("shape", TensorProto.INT64, [3], [0, 3, -1])]
    graph = helper.make_graph(nodes, "not-yolo", [images], [out], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("kind", ["classifier", "three-channels-out"])
def test_an_onnx_model_that_is_not_a_yolo_detector_is_one_line(capsys, tmp_path, sample_slice, kind):
    pytest.importorskip("onnxruntime")
    weights = onnx_model(tmp_path / f"{kind}.onnx", kind)
    code, err = cli(capsys, "run", sample_slice, "--weights", weights, "--quiet", "--out", tmp_path / "out",
                    "--cache-dir", tmp_path / "cache")
    assert_one_line(code, err, "is not a YOLO detection model")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("limit, cached", [(4096, False), (256, True)])
def test_a_disk_that_refuses_writes_is_one_line(tmp_path, sample_slice, limit, cached):
    """A full disk, simulated by a file-size limit (EFBIG instead of ENOSPC: the same OSError path). One that refuses
    the detection cache's entry (4 KiB) keeps the run, said in one warning (tests/test_cli.py); one that refuses the
    export's files (256 B), the detections cached by an earlier run, is one error line and no export."""
    import resource
    import signal

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-m", "core", "run", str(sample_slice), "--quiet", "--cache-dir", str(tmp_path / "cache")]
    if cached:
        subprocess.run([*command, "--out", str(tmp_path / "earlier")], capture_output=True, timeout=600, cwd=ROOT, check=True)
    result = subprocess.run([*command, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600,
                            cwd=ROOT, preexec_fn=small_files)
    if cached:
        assert_one_line(result.returncode, result.stderr, "File too large")
        assert not (tmp_path / "out" / ".lightly").exists()
    else:
        assert result.returncode == 0 and result.stderr.strip().splitlines() == [
            f"warning: Detections not cached in {tmp_path / 'cache'} (File too large): an identical run detects again"]
        assert (tmp_path / "out" / ".lightly").is_dir()


# --- medium and low (issue 24) --------------------------------------------------------------------

@pytest.mark.parametrize("secret", ["k3y", "abcde", "x"])
def test_a_short_secret_is_masked_too(secret):
    request = ScheduleRequest("flicker-d", "s3://b/i/", "s3://b/l/", S3Keys("eu-central-1", "AKIAEXAMPLE", secret),
                              build_selection_config(5, "t"))
    printed = json.dumps(dry_run(request))
    assert f'"{secret}"' not in printed and "***" in printed


def test_batch_refuses_a_device_it_cannot_use_as_run_does(capsys, tmp_path, sample_slice):
    assert_one_line(*cli(capsys, "batch", sample_slice, "--quiet", "--out", tmp_path / "o", "--device", "cuda:7",
                         "--weights", "yolov8n.yaml"), "CUDA")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("task", ["a\nb", "tab\there", "nul\0", "bell\x07"])
def test_control_characters_in_a_task_name_are_refused(capsys, tmp_path, task):
    assert_one_line(*cli(capsys, "run", "--demo", "--quiet", "--out", tmp_path / "o", "--task", task), "Invalid task name")


def test_a_nul_or_newline_in_a_manifest_relpath_is_refused_before_any_upload(export, tmp_path):
    for relpath in ("walk\0.mp4", "walk\n.mp4"):
        rewrite_manifest(export, relpath=relpath)
        with pytest.raises(ExportError, match="unsafe relpath"):
            push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))
        assert not (tmp_path / "bucket").exists() and not (tmp_path / "input").exists()


def test_summary_csv_cells_a_spreadsheet_would_evaluate_are_inert():
    from core.batch import summary_csv
    from core.batch.sources import VideoRow

    text = summary_csv([VideoRow('=HYPERLINK("http://evil","x").mp4', "+cmd|' /C calc'!A0", "failed", "@SUM(1)")]).decode()
    row = text.splitlines()[1]
    assert "'=HYPERLINK" in row and "'+cmd" in row and "'@SUM" in row
    assert not any(cell.startswith(("=", "+", "@", '"=')) for cell in row.split(","))


@pytest.mark.parametrize("frame, track, box, message", [
    (np.nan, 1, [0, 0, 10, 10], "frame"), (np.inf, 1, [0, 0, 10, 10], "frame"), (2.0**31, 1, [0, 0, 10, 10], "frame"),
    (-1, 1, [0, 0, 10, 10], "frame"), (1.5, 1, [0, 0, 10, 10], "frame"), (3, 1e300, [0, 0, 10, 10], "track id"),
    (3, np.nan, [0, 0, 10, 10], "track id"), (3, 1, [0, np.nan, 10, 10], "box"), (3, 1, [0, 0, np.inf, 10], "box"),
    (3, 1, [0, 0, 1e30, 10], "box"),
])
def test_ground_truth_rows_out_of_range_are_one_line(frame, track, box, message):
    """core.bounded.check_ground_truth_rows, for the ground-truth readers (MOT nan/inf frames, YouTube-VIS 1e400)."""
    from core.bounded import check_ground_truth_rows

    good = np.array([[0, 1, 0, 0, 10, 10], [1, 1, 1, 1, 11, 11]], np.float64)
    check_ground_truth_rows(good[:, 0], good[:, 1], good[:, 2:], "gt.txt")
    rows = np.vstack([good, [frame, track, *box]])
    with pytest.raises(UserError, match=f"gt.txt has a {message}.*row 3; 1 such rows"):
        check_ground_truth_rows(rows[:, 0], rows[:, 1], rows[:, 2:], "gt.txt")


def test_a_path_with_a_nul_byte_is_a_user_error(monkeypatch, tmp_path):
    """What ?video= (the app's deep link) hands to check_allowed, with or without FLICKER_ROOTS."""
    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    with pytest.raises(UserError, match="NUL byte"):
        check_allowed("/tmp/walk\0.mp4")
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path))
    with pytest.raises(UserError, match="NUL byte"):
        check_allowed(str(tmp_path / "walk\0.mp4"))


def test_the_app_refuses_a_bare_model_name_read_from_outside_the_roots(tmp_path, monkeypatch):
    """Under FLICKER_ROOTS a model named without a folder would be read from the server's working
    folder: refused like any other path outside the roots (a name Ultralytics ships still works)."""
    from core.settings import DetectorSpec
    from ui.resources import detector

    (tmp_path / "rt_outside.yaml").write_text("nc: 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "videos"))
    with pytest.raises(UserError, match="outside the folders"):
        detector(DetectorSpec("rt_outside.yaml"))


@pytest.mark.parametrize("target", ["fifo", "link-to-fifo"])
def test_an_out_that_is_a_pipe_or_device_is_refused_never_replaced(capsys, tmp_path, export, target):
    """``--out /dev/stdout`` (a link to the terminal or a pipe), ``/dev/full`` or a named pipe: the
    listing was written beside it and renamed over it, replacing the device node with a plain file
    (as root, /dev/full was a JSON file afterwards) and saying "verdicts written"."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = fifo if target == "fifo" else tmp_path / "stdout"
    if target == "link-to-fifo":
        out.symlink_to(fifo)
    assert_one_line(*cli(capsys, "verdicts", export, "--out", out), "is not a regular file")
    assert stat.S_ISFIFO(out.stat().st_mode) and out.is_symlink() == (target == "link-to-fifo")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_file_out_under_a_file_says_that_file_is_no_folder(capsys, tmp_path, export):
    """It said "File exists: .../notes.txt" (mkdir's words), of the one name that must be a folder."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert_one_line(*cli(capsys, "verdicts", export, "--out", a_file / "verdicts.csv"), f"Not a directory: {a_file}")


# --- a batch output folder read back by Fleet ------------------------------------------------------

def test_a_manifest_with_null_flags_flipped_counts_the_fleet_by_its_cut(export):
    """``"flags_flipped": null`` (the manifest check lets a null key through, as for every optional key)
    stopped the Fleet page's verdict counts with a TypeError from frozenset(None)."""
    from core import fleet

    rewrite_manifest(export, flagged_above=0.75, flags_flipped=None)
    assert fleet.flagged_cuts(export) == {"walk.mp4": (0.75, frozenset())}


@pytest.mark.parametrize("linked", [".batch", ".batch/done"])
def test_fleet_follows_no_link_out_of_the_batch_state(tmp_path, linked):
    """A ``.batch`` or ``.batch/done`` planted as a link (to / or any folder) was walked as the done markers:
    every JSON file under it read on each poll of the page, its rows shown as the batch's videos, and the
    settings under it taken for the batch's (the model the videos open with)."""
    from core import fleet
    from core.settings import DetectorSpec, FlickerSettings

    elsewhere = tmp_path / "elsewhere"
    fleet.write_settings(elsewhere, DetectorSpec("planted.pt"), FlickerSettings())
    (elsewhere / fleet.DONE_DIR).mkdir(parents=True)
    (elsewhere / fleet.DONE_DIR / "x.mp4.json").write_text(json.dumps({"row": {"relpath": "x.mp4", "frames": 9}}))
    root = tmp_path / "out"
    root.mkdir()
    (root / fleet.SUMMARY_CSV).write_text("relpath,source,status,error,frames,boxes,flagged\na.mp4,/x,done,,30,1,2\n")
    os.utime(root / fleet.SUMMARY_CSV, (1, 1))  # older than the planted marker
    if linked == ".batch":
        os.symlink(elsewhere / ".batch", root / ".batch")
    else:
        (root / ".batch").mkdir()
        os.symlink(elsewhere / fleet.DONE_DIR, root / fleet.DONE_DIR)
        os.symlink(elsewhere / fleet.SETTINGS_FILE, root / fleet.SETTINGS_FILE)
    found = fleet.read_fleet(fleet.check_folder(str(root)))
    assert [v.relpath for v in found.videos] == ["a.mp4"] and found.unsummarised == 0
    assert fleet.read_settings(root) is None


@pytest.mark.parametrize("content, message", [(b"\xff\xfe{\0}\0", "not UTF-8"), (b"{" * 10 + b" " * (2 << 20), "at most")])
def test_a_gcs_credentials_file_that_is_not_text_or_too_large_is_one_line(capsys, monkeypatch, tmp_path, content, message):
    """LIGHTLY_GCS_CREDENTIALS naming a UTF-16 file (as some Windows tools save JSON) ended in a
    UnicodeDecodeError traceback; a file of any size was read whole."""
    credentials = tmp_path / "key.json"
    credentials.write_bytes(content)
    monkeypatch.setenv("LIGHTLY_GCS_CREDENTIALS", str(credentials))
    monkeypatch.setenv("LIGHTLY_TOKEN", "tok-1234567890")
    code, err = cli(capsys, "schedule", "--dataset", "flicker-d", "--input-url", "gs://b/i/", "--lightly-url", "gs://b/l/",
                    "--gcs-project", "p", "--dry-run")
    assert_one_line(code, err, message)


@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_a_remembered_export_folders_store_that_is_a_pipe_or_nests_deep_is_ignored(tmp_path, monkeypatch, kind):
    """The data folder's export_dirs.json as a FIFO held the Export page forever (a plain open waits for a
    writer); nested 100,000 deep it raised RecursionError, which "anything unreadable counts as empty" missed."""
    from core.export_dirs import STORE_NAME, default_export_dir

    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    if kind == "fifo":
        os.mkfifo(tmp_path / STORE_NAME)
    else:
        (tmp_path / STORE_NAME).write_text("[" * 100_000 + "]" * 100_000)
    result = subprocess.run([sys.executable, "-c", "from core.export_dirs import export_dir_for; print(export_dir_for('k', 'walk'))"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)  # a hang ends here, not in the suite
    assert result.returncode == 0 and result.stdout.strip() == str(default_export_dir("walk")), result.stderr[-300:]


def test_a_default_verdict_store_that_is_a_pipe_is_one_line_not_a_hang(tmp_path, export):
    """``--verdicts`` is checked to be a file; the app's own store (the data folder's verdicts.sqlite,
    used without --verdicts) was opened plainly to read its header: a FIFO there held verdicts,
    prelabels and the app forever."""
    os.mkfifo(tmp_path / "verdicts.sqlite")
    result = subprocess.run([sys.executable, "-m", "core", "verdicts", str(export)], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, env=dict(os.environ, FLICKER_DATA_DIR=str(tmp_path)))
    assert_one_line(result.returncode, result.stderr, "verdicts.sqlite is not a regular file")
    assert stat.S_ISFIFO((tmp_path / "verdicts.sqlite").stat().st_mode)


def test_an_export_of_many_videos_is_named_in_a_short_line_by_verdicts(capsys, export):
    """``verdicts EXPORT`` without --video named every video of the manifest in its one line: 20,000
    names of 1,000 characters made a 20 MB line; a video whose content the manifest does not record
    was said to be missing ("No video 'walk.mp4' in ...; it holds: walk.mp4")."""
    manifest = Datasource(export).manifest
    data = orjson.loads(manifest.read_bytes())
    first = data["videos"][0]
    data["videos"] += [{**first, "relpath": f"{'d' * 1000}/{k}.mp4"} for k in range(20_000)]
    manifest.write_bytes(orjson.dumps(data))
    code, err = cli(capsys, "verdicts", export)
    assert_one_line(code, err, "holds 20,001 videos ('walk.mp4', ")
    assert "and 19,996 more): pick one with --video RELPATH" in err and len(err) < 1000
    data["videos"] = [{key: value for key, value in first.items() if key != "fingerprint"}]
    manifest.write_bytes(orjson.dumps(data))
    assert_one_line(*cli(capsys, "verdicts", export, "--video", "walk.mp4"), "does not record the content of 'walk.mp4'")


def test_done_markers_past_what_a_fleet_holds_are_one_line(tmp_path, monkeypatch):
    """summary.csv's rows were capped, the done markers of a batch still running were not: every one
    was read and kept whole (each up to 1 MiB of JSON, ten times that parsed) on every poll of the page."""
    from core import fleet

    monkeypatch.setattr("core.fleet.MAX_SUMMARY_ROWS", 3)
    done = tmp_path / "out" / fleet.DONE_DIR
    done.mkdir(parents=True)
    for k in range(4):
        (done / f"v{k}.mp4.json").write_text(json.dumps({"row": {"relpath": f"v{k}.mp4", "frames": 9}, "params": "p"}))
    with pytest.raises(UserError, match=r"holds more than 3 done markers: this page reads at most that many"):
        fleet.read_fleet(fleet.check_folder(str(tmp_path / "out")))
    (done / "v3.mp4.json").unlink()
    assert sorted((v.relpath, v.frames) for v in fleet.read_fleet(tmp_path / "out").videos) == [(f"v{k}.mp4", 9) for k in range(3)]


@pytest.mark.parametrize("roots", [None, "videos"])
def test_a_home_folder_of_no_user_is_one_line(tmp_path, monkeypatch, roots):
    """``~nosuchuser/walk.mp4`` in the path box, a ?video= link, the Fleet folder, ``--weights`` or the Export page's
    Output folder raised Path.expanduser's RuntimeError ("Could not determine home directory"); under FLICKER_ROOTS
    it reads as any path outside them (which users the machine has is not told)."""
    from core import fleet
    from core.detect import load_detector
    from core.paths import typed_folder

    if roots is None:
        monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    else:
        monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / roots))
    message = "outside the folders" if roots else "names no user's home folder"
    with pytest.raises(UserError, match=message):
        check_allowed("~no-such-user-h7/walk.mp4")
    with pytest.raises(UserError, match=message):
        fleet.check_folder("~no-such-user-h7/out")
    with pytest.raises(UserError, match=message):
        load_detector("~no-such-user-h7/m.pt")
    with pytest.raises(UserError, match=message):
        typed_folder("~no-such-user-h7/out", "Output folder")


def test_a_mot_file_of_blank_lines_is_read_in_bounded_memory(tmp_path, sample_slice):
    """MOT and YOLO label files were split into a list of lines before a row was read: 300 MB of blank lines
    (within the 512 MiB cap) took 3 GB and died of MemoryError with a traceback; now ~its own size."""
    mot = tmp_path / "det.txt"
    with open(mot, "wb") as f:
        f.write(b"1,-1,10,10,50,80,0.9\n\n")
        f.write(b"\n" * (300 << 20))
        f.write(b"2,-1,10,10,50,80,0.9\n")
    code, err = cli_process("run", sample_slice, "--predictions", mot, "--predictions-format", "mot", "--quiet",
                            "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache", timeout=300)
    assert code == 0, err[-500:]


def test_prelabels_and_a_verdict_listing_are_never_written_into_the_exports_own_lightly(flickering_export, capsys):
    """select refused an --out inside EXPORT/.lightly; prelabels and verdicts --out wrote there: every push sent
    them to the Lightly datasource, and the next export's swap deleted them with the old .lightly."""
    lightly = Datasource(flickering_export).lightly
    assert_one_line(*cli(capsys, "prelabels", flickering_export, "--out", lightly / "labels", "--format", "coco", "--only",
                         "flagged", "--quiet"), "is inside the export's own .lightly folder")
    assert_one_line(*cli(capsys, "verdicts", flickering_export, "--out", lightly / "metadata" / "verdicts.csv"),
                    "is inside the export's own .lightly folder")
    gt = Datasource(flickering_export).task_dir("det")
    assert_one_line(*cli(capsys, "evaluate", flickering_export, "--gt", gt, "--labels", "--out", lightly / "suspicious.csv"),
                    "is inside the export's own .lightly folder")
    assert not (lightly / "labels").exists() and not (lightly / "metadata" / "verdicts.csv").exists()
    assert not (lightly / "suspicious.csv").exists()


def test_a_verdict_store_holding_a_trigger_is_refused_before_it_runs(tmp_path, export):
    """A store handed over with a trigger on its meta table (a recursive query) held ``verdicts`` and
    ``prelabels`` forever: opening a store writes its schema version, and the trigger ran there; another
    trigger could delete or rewrite the verdicts given later."""
    import sqlite3
    from contextlib import closing

    from core.errors import VerdictError
    from core.verdicts import VerdictStore

    store = tmp_path / "shared.sqlite"
    VerdictStore(store).set("k", 3, "miss")
    endless = "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)"
    with closing(sqlite3.connect(store)) as db, db:
        db.execute(f"CREATE TRIGGER endless AFTER INSERT ON meta BEGIN {endless}; END")
    result = subprocess.run([sys.executable, "-m", "core", "verdicts", str(export), "--verdicts", str(store)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert_one_line(result.returncode, result.stderr, "holds a trigger ('endless')")
    with pytest.raises(VerdictError, match="holds a trigger"):
        VerdictStore(store)  # the app's writer too


def test_a_verdicts_view_that_never_ends_is_no_store_to_the_fleet_page(tmp_path):
    """The Fleet page counts verdicts with one read-only query, which took a recursive view named verdicts
    for the table and never returned (the page and its polling held)."""
    import sqlite3
    from contextlib import closing

    from core.verdicts import judged_frames

    store = tmp_path / "verdicts.sqlite"
    with closing(sqlite3.connect(store)) as db, db:
        db.execute("CREATE VIEW verdicts AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                   "SELECT 'k' AS video, x AS frame FROM c")
    script = f"from core.verdicts import judged_frames; from pathlib import Path; print(judged_frames(Path({str(store)!r})))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr[-300:]
    assert judged_frames(tmp_path / "none.sqlite") == []


def test_every_export_reader_takes_a_null_optional_key_as_absent(flickering_export, tmp_path, capsys):
    """``"flags_flipped": null`` passed the manifest check and then stopped prelabels, select and evaluate with a
    TypeError traceback (tuple(None)); a null optional key now reads as an absent one, for every reader."""
    rewrite_manifest(flickering_export, flags_flipped=None, flagged_above=None, flags=None)
    out = tmp_path / "labels"
    code, err = cli(capsys, "prelabels", flickering_export, "--out", out, "--format", "coco", "--only", "flagged", "--quiet")
    assert code == 0, err
    assert len(orjson.loads((out / "annotations.json").read_bytes())["images"]) == 2  # frames 5 and 20


def test_a_manifest_listing_one_video_twice_is_refused(flickering_export, tmp_path, capsys):
    """A manifest listing a video twice was read as two videos: prelabels wrote every label twice (62 images for
    31 files)."""
    manifest = Datasource(flickering_export).manifest
    data = orjson.loads(manifest.read_bytes())
    data["videos"].append(data["videos"][0])
    manifest.write_bytes(orjson.dumps(data))
    assert_one_line(*cli(capsys, "prelabels", flickering_export, "--out", tmp_path / "labels", "--format", "coco"),
                    "videos[1] repeats the relpath of videos[0]")
    assert not (tmp_path / "labels").exists()


def test_evaluate_names_a_few_of_an_exports_many_videos(flickering_export, tmp_path, capsys):
    """``evaluate EXPORT --labels`` without --video joined every name the manifest lists into its one line."""
    manifest = Datasource(flickering_export).manifest
    data = orjson.loads(manifest.read_bytes())
    data["videos"] += [{**data["videos"][0], "relpath": f"camera_{k:05d}_{'x' * 200}.mp4"} for k in range(2000)]
    manifest.write_bytes(orjson.dumps(data))
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,100,100,100,200,1,1,1\n")
    code, err = cli(capsys, "evaluate", flickering_export, "--gt", gt, "--labels", "--out", tmp_path / "labels.csv")
    assert_one_line(code, err, "holds 2,001 videos ('walk.mp4', 'camera_00000_")
    assert "and 1,996 more): pick one with --video RELPATH" in err and len(err) < 1000
