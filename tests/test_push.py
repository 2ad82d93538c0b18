"""Push against a real S3-compatible server (moto's server mode on 127.0.0.1), not a mocked client."""
import hashlib
import logging
import os
import socket
import subprocess
import sys
import time

import boto3
import numpy as np
import pytest

from conftest import free_port
from core.paths import ROOT
from core.lightly.push import CloudError, plan_push, push
from core.detections import Detections
from core.lightly.export import VideoPredictions, export_datasource
from core.flicker import FlickerIndex
from core.video import probe
from core.words import markdown_literal

logging.getLogger("werkzeug").setLevel(logging.ERROR)


def wait_for_port(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    import fsspec

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fsspec.filesystem("s3").clear_instance_cache()
    client = boto3.client("s3", endpoint_url=s3_server)
    bucket = f"bucket-{time.time_ns()}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    fsspec.filesystem("s3").clear_instance_cache()


@pytest.fixture
def export(tmp_path, sample_slice):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, 40)
    xy = rng.uniform(0, 600, (counts.sum(), 2))
    det = Detections(np.repeat(np.arange(40), counts), np.concatenate([xy, xy + 50], 1), rng.uniform(0.2, 1, counts.sum()),
                     np.zeros(counts.sum()), {0: "person"}, 40, (768, 576))
    flicker = FlickerIndex.from_detections(det).evaluate(0.5, 0.6)
    video = VideoPredictions.of_video(probe(sample_slice), "day1/walk.mp4", det, flicker)
    export_datasource(tmp_path / "export", [video], task="det")
    return tmp_path / "export"


def remote_objects(client, bucket):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"]: obj for page in pages for obj in page.get("Contents", [])}


def test_push_uploads_the_tree_and_the_videos_then_skips_them(s3, export, sample_slice):
    client, bucket = s3
    report = push(export, f"s3://{bucket}/lightly", f"s3://{bucket}/input")
    objects = remote_objects(client, bucket)
    local = sorted(p.relative_to(export).as_posix() for p in (export / ".lightly").rglob("*") if p.is_file())
    assert sorted(k[len("lightly/"):] for k in objects if k.startswith("lightly/")) == local
    assert "input/day1/walk.mp4" in objects
    assert len(report.uploaded) == len(local) + 1 and not report.skipped
    # checksums: what the server stored is byte for byte what we have
    body = client.get_object(Bucket=bucket, Key="lightly/.lightly/predictions/det/day1/walk-07-mp4.json")["Body"].read()
    assert body == (export / ".lightly/predictions/det/day1/walk-07-mp4.json").read_bytes()
    assert objects["input/day1/walk.mp4"]["ETag"].strip('"') == hashlib.md5(sample_slice.read_bytes()).hexdigest()

    again = push(export, f"s3://{bucket}/lightly", f"s3://{bucket}/input")
    assert not again.uploaded and len(again.skipped) == len(report.uploaded)


def test_changed_files_are_sent_again(s3, export):
    client, bucket = s3
    push(export, f"s3://{bucket}/lightly")
    changed = export / ".lightly/metadata/day1/walk-03-mp4.json"
    changed.write_bytes(changed.read_bytes().replace(b'"flickering":0.5', b'"flickering":0.75'))
    report = push(export, f"s3://{bucket}/lightly")
    assert [item.local for item in report.uploaded] == [changed]
    body = client.get_object(Bucket=bucket, Key="lightly/.lightly/metadata/day1/walk-03-mp4.json")["Body"].read()
    assert b"0.75" in body


def test_dry_run_sends_nothing(s3, export):
    client, bucket = s3
    report = push(export, f"s3://{bucket}/lightly", f"s3://{bucket}/input", dry_run=True)
    assert len(report.uploaded) == len(plan_push(export, f"s3://{bucket}/lightly", f"s3://{bucket}/input"))
    assert "would upload" in report.text() and remote_objects(client, bucket) == {}


def test_missing_bucket_is_one_clear_error(s3, export):
    with pytest.raises(CloudError, match="Bucket not found"):
        push(export, "s3://no-such-bucket-here/lightly")


def test_a_dry_run_that_cannot_list_the_bucket_still_says_what_it_would_send(s3, export):
    """No credentials, no bucket yet, no network: a dry run lists every file it would send and says
    why it could not compare them with what is there; the push itself still stops with the reason."""
    planned = plan_push(export, "s3://no-such-bucket-here/lightly")
    report = push(export, "s3://no-such-bucket-here/lightly", dry_run=True)
    assert len(report.uploaded) == len(planned) and not report.skipped
    size = sum(item.size for item in planned) / 1000
    assert report.text().splitlines()[-1] == (f"dry run: {len(planned):,} files to upload ({size:.1f} KB), 0 already there; "
                                              "not compared with "
                                              "what is there (could not list it: Bucket not found for "
                                              "s3://no-such-bucket-here/lightly: check its name (and region))")
    with pytest.raises(CloudError, match="Bucket not found"):
        push(export, "s3://no-such-bucket-here/lightly")


def test_a_dry_run_to_a_store_whose_client_cannot_be_made_lists_every_file_too(export, monkeypatch):
    """az:// without an Azure account (adlfs cannot even build its client) behaves as a missing bucket."""
    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY"):
        monkeypatch.delenv(name, raising=False)
    report = push(export, "az://container/lightly", dry_run=True)
    assert len(report.uploaded) == len(plan_push(export, "az://container/lightly")) and not report.skipped
    assert "(could not list it: Cannot use 'az://container/lightly': unable to connect" in report.text()
    with pytest.raises(CloudError, match="unable to connect"):
        push(export, "az://container/lightly")


def test_unreachable_endpoint_fails_fast(s3, export, monkeypatch):
    import fsspec

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    fsspec.filesystem("s3").clear_instance_cache()
    started = time.time()
    with pytest.raises(CloudError, match="Cannot reach the storage endpoint"):
        push(export, "s3://bucket/lightly")
    assert time.time() - started < 30


def test_bad_credentials_are_access_denied(export, tmp_path, monkeypatch):
    """A second moto server that enforces authentication: unknown keys are refused."""
    import fsspec

    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "definitely-not-the-secret")
        fsspec.filesystem("s3").clear_instance_cache()
        with pytest.raises(CloudError, match="Access denied") as info:
            push(export, "s3://bucket/lightly")
        assert "definitely-not-the-secret" not in str(info.value)
    finally:
        server.terminate()
        server.wait(timeout=10)
        fsspec.filesystem("s3").clear_instance_cache()


def test_push_to_a_local_folder(export, tmp_path):
    report = push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))
    assert (tmp_path / "bucket/.lightly/predictions/tasks.json").is_file()
    assert (tmp_path / "input/day1/walk.mp4").is_file()
    assert len(push(export, str(tmp_path / "bucket"), str(tmp_path / "input")).skipped) == len(report.uploaded)


@pytest.mark.parametrize("inside", ["{export}/.lightly/sub", "file://{export}/.lightly/sub", "FILE://{export}/.lightly"])
def test_a_target_inside_the_exports_own_lightly_folder_is_refused_however_it_is_written(export, inside):
    """As a file:// URL the folder passed the check: the export was written into itself (243 files in .lightly/sub,
    then sent along by the next push, one level deeper each time); as the input URL, so were the videos."""
    with pytest.raises(CloudError, match="inside the export's own .lightly folder"):
        push(export, inside.format(export=export))
    with pytest.raises(CloudError, match="inside the export's own .lightly folder"):  # the videos' target too
        push(export, str(export.parent / "bucket"), inside.format(export=export))
    assert not (export / ".lightly" / "sub").exists() and not (export.parent / "bucket").exists()


@pytest.mark.parametrize("lightly, given_input", [("bucket/lightly", "bucket"), ("bucket", "bucket/")])
def test_an_input_url_that_holds_the_lightly_one_sends_each_file_once(export, tmp_path, lightly, given_input):
    """Files were matched to a target by URL prefix: an input datasource holding the Lightly one (or the same folder
    with a trailing slash) took every .lightly file a second time, and the progress ran past its total (31 of 16:
    the Export page's progress bar refuses a value above 1)."""
    seen = []
    report = push(export, str(tmp_path / lightly), str(tmp_path / given_input), progress=lambda done, total: seen.append(done / total))
    assert len(report.uploaded) == len(report.planned) and not report.skipped
    assert max(seen) == 1.0


def test_cli_push_errors_are_one_line(export, tmp_path):
    result = subprocess.run([sys.executable, "-m", "core", "push", str(tmp_path / "nope"), str(tmp_path / "b")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "holds no export" in result.stderr
    result = subprocess.run([sys.executable, "-m", "core", "push", str(export), str(tmp_path / "b"), "--dry-run"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "dry run:" in result.stdout and not (tmp_path / "b").exists()



@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from fleet_batch import make_batch

    return make_batch(tmp_path_factory.mktemp("fleet"))


def export_page_on_batch(folder, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/export.py")
    at.query_params = {"dir": str(folder)}
    at.run()
    return at

@pytest.mark.slow
def test_the_export_page_pushes_a_batchs_combined_datasource(s3, batch, tmp_path, monkeypatch):
    """Fleet's "Export & schedule" opens /export?dir=: the batch's own datasource and its
    videos go to the bucket in one push, the same fields and messages as for one video."""
    client, bucket = s3
    at = export_page_on_batch(batch, tmp_path, monkeypatch)
    at.text_input(key="push_url").input(f"s3://{bucket}/lightly")
    at.text_input(key="push_input_url").input(f"s3://{bucket}/input")
    at.run()
    next(b for b in at.button if b.label == "Push").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    objects = remote_objects(client, bucket)
    local = sorted(p.relative_to(batch).as_posix() for p in (batch / ".lightly").rglob("*") if p.is_file())
    assert sorted(k[len("lightly/"):] for k in objects if k.startswith("lightly/")) == local
    videos = {k: v for k, v in objects.items() if k.startswith("input/")}
    assert sorted(videos) == ["input/walk_a.mp4", "input/walk_b.mp4", "input/walk_c.mp4"]  # not the failed one
    for key, obj in videos.items():
        source = batch.parent / "videos" / key[len("input/"):]
        assert obj["ETag"].strip('"') == hashlib.md5(source.read_bytes()).hexdigest()
    assert at.success[-1].value.startswith(f"Uploaded {len(local) + 3} files")
    assert f" to s3://{bucket}/lightly and s3://{bucket}/input in " in at.success[-1].value  # where they went
    # the schedule's datasource fields now name the bucket the files went to
    assert (at.text_input(key="schedule_lightly_url").value, at.text_input(key="schedule_input_url").value) == \
        (f"s3://{bucket}/lightly", f"s3://{bucket}/input")

    next(b for b in at.button if b.label == "Push").click().run()
    assert at.success[-1].value.endswith(f"{len(local) + 3} already there with the same content")


@pytest.mark.slow
def test_a_batch_read_from_a_bucket_pushes_no_videos_and_says_why_in_one_line(s3, batch, tmp_path, monkeypatch):
    import shutil

    import orjson

    client, bucket = s3
    batch = shutil.copytree(batch, tmp_path / "from-a-bucket")
    manifest = batch / "flicker_export.json"
    entries = orjson.loads(manifest.read_bytes())
    for entry in entries["videos"]:
        entry["source"] = f"s3://cams/{entry['relpath']}"  # what a batch over s3://cams/ records
    manifest.write_bytes(orjson.dumps(entries))
    at = export_page_on_batch(batch, tmp_path, monkeypatch)
    at.text_input(key="push_url").input(f"s3://{bucket}/lightly")
    at.text_input(key="push_input_url").input(f"s3://{bucket}/input")
    at.run()
    next(b for b in at.button if b.label == "Push").click().run()
    assert [e.value for e in at.error] == [markdown_literal(
        "Push failed: 3 videos of this batch were read from a bucket (s3://cams/walk_a.mp4, ...): leave the input "
        "datasource URL empty; Lightly's input datasource is the bucket prefix the batch read them from")]
    assert remote_objects(client, bucket) == {}
    at.text_input(key="push_input_url").input("")
    next(b for b in at.button if b.label == "Push").click().run()
    assert not at.error and len(remote_objects(client, bucket)) == len(list((batch / ".lightly").rglob("*.json")))


@pytest.mark.slow
def test_cli_push_of_a_batch_read_from_a_bucket_says_what_the_app_says(batch, tmp_path):
    """`push OUT --input ...` on a batch over s3://cams/: the app's one line (fleet.check_input_push),
    not "Video walk_a.mp4 is no longer at s3:/cams/walk_a.mp4"; nothing is written; without --input
    the .lightly tree alone goes."""
    import shutil

    import orjson

    from core import fleet
    from core.errors import UserError

    batch = shutil.copytree(batch, tmp_path / "from-a-bucket")
    manifest = batch / "flicker_export.json"
    entries = orjson.loads(manifest.read_bytes())
    for entry in entries["videos"]:
        entry["source"] = f"s3://cams/{entry['relpath']}"
    manifest.write_bytes(orjson.dumps(entries))
    with pytest.raises(UserError) as app_says:
        fleet.check_input_push(fleet.combined_datasource(batch))
    target, videos = tmp_path / "lightly", tmp_path / "input"
    result = subprocess.run([sys.executable, "-m", "core", "push", str(batch), str(target), "--input", str(videos)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr == f"error: {app_says.value}\n", result.stderr
    assert "3 videos of this batch were read from a bucket (s3://cams/walk_a.mp4, ...)" in result.stderr
    assert not target.exists() and not videos.exists()
    result = subprocess.run([sys.executable, "-m", "core", "push", str(batch), str(target), "--quiet"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (target / ".lightly" / "metadata").iterdir()) == \
        sorted(p.name for p in (batch / ".lightly" / "metadata").iterdir())


def test_a_dry_run_says_what_it_would_send_per_folder_before_the_files(export, tmp_path):
    """`push EXPORT TARGET --dry-run` printed 1,594 "would upload ..." lines with the summary at their end: the totals and
    each folder's count (and size) come first now, then the files, then the totals again."""
    from core.lightly.push import PushItem

    report = push(export, str(tmp_path / "bucket"), str(tmp_path / "input"), dry_run=True)
    lines = report.text().splitlines()

    def sized(items: list[PushItem]) -> str:
        total = sum(item.size for item in items)
        return f"{total / 1000:.1f} KB" if total < 1_000_000 else f"{total / 1e6:.1f} MB"

    def under(folder: str) -> list[PushItem]:
        return [item for item in report.uploaded if item.remote.rsplit("/", 1)[0].startswith(str(tmp_path / folder))]

    totals = f"dry run: {len(report.uploaded)} files to upload ({sized(report.uploaded)}), 0 already there"
    metadata, [tasks_json] = under("bucket/.lightly/metadata"), [i for i in report.uploaded if i.remote.endswith("/tasks.json")]
    assert lines[:5] == [
        totals,
        f"  41 files ({sized(metadata)}) to {tmp_path}/bucket/.lightly/metadata/",
        f"  1 file ({tasks_json.size} B) to {tmp_path}/bucket/.lightly/predictions/",
        f"  41 files ({sized(under('bucket/.lightly/predictions/det'))}) to {tmp_path}/bucket/.lightly/predictions/det/",
        f"  1 file ({sized(under('input'))}) to {tmp_path}/input/"]
    assert len(metadata) == 41 and lines[-1] == totals
    assert lines[5:-1] == [f"would upload {item.local} -> {item.remote}" for item in report.uploaded]
    push(export, str(tmp_path / "bucket"), str(tmp_path / "input"))
    assert push(export, str(tmp_path / "bucket"), str(tmp_path / "input"), dry_run=True).text() == \
        f"dry run: 0 files to upload, {len(report.uploaded)} already there"


def test_a_push_says_small_sizes_in_kb_rates_with_separators_and_when_nothing_needed_uploading(tmp_path):
    """"Uploaded 180 files (0.0 MB)", "(1128 files/s)" and "Uploaded 0 files (0.0 MB) ... (0 files/s)" before."""
    from core.lightly.push import PushItem, PushReport

    items = [PushItem(tmp_path / f"{k}.json", f"s3://b/l/.lightly/{k}.json", 100, "s3://b/l") for k in range(180)]
    assert PushReport(items, uploaded=items, seconds=0.16).text() == (
        "Uploaded 180 files (18.0 KB) to s3://b/l in 0.2 s (1,125 files/s); 0 already there with the same content")
    assert PushReport(items, uploaded=items[:1], skipped=items[1:], seconds=1.0).text() == (
        "Uploaded 1 file (100 B) to s3://b/l in 1.0 s (1 files/s); 179 already there with the same content")
    assert PushReport(items, skipped=items, seconds=0.3).text() == (
        "Nothing needed uploading to s3://b/l: 180 already there with the same content")
    big = [PushItem(tmp_path / "v.mp4", "s3://b/i/v.mp4", 2_345_678_901, "s3://b/i")]
    assert PushReport(big, uploaded=big, seconds=10.0).text().startswith("Uploaded 1 file (2.3 GB) to s3://b/i in 10.0 s")
