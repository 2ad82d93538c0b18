"""Batch mode: inputs, the live export (valid after every video), resume, failure isolation, bucket
input (moto S3 server), and the Ray engine against the local one (a real local Ray, 2 CPUs)."""
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from conftest import ROOT, free_port, sample_frames, write_video
from core.batch import SUMMARY_CSV, BatchConfig, BatchProgress, find_sources, run_batch
from core.batch.live import DoneMarkers
from core.batch.sources import TIMING_COLUMNS, VideoRow
from core.cli import main
from core.errors import UserError
from core.lightly.datasource import Datasource
from core.lightly.export import read_manifest
from core.lightly.validate import validate_datasource
from core.run import RunConfig
from core.settings import DetectorSpec, FlickerSettings


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two short real clips (one in a sub-folder) and a corrupt file."""
    folder = tmp_path_factory.mktemp("videos")
    frames = sample_frames(16)
    write_video(folder / "a.mp4", frames[:8])
    (folder / "sub").mkdir()
    write_video(folder / "sub" / "b.mp4", frames[8:])
    (folder / "bad.mp4").write_bytes(os.urandom(20_000))
    return folder


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One detection cache for the local runs of this module: each clip is detected once."""
    return tmp_path_factory.mktemp("cache")


def config(inputs, out, cache_dir, engine="local", weights=None, iou_track=FlickerSettings().iou_track) -> BatchConfig:
    options = RunConfig(out=out, detector=DetectorSpec.of(weights, cache_dir=cache_dir),
                        flicker=FlickerSettings(iou_track=iou_track))
    return BatchConfig(tuple(map(str, inputs)), options, engine)


class ValidAfterEveryVideo(BatchProgress):
    """Checks the export under --out each time a video finishes; can stop the run like a kill would."""

    def __init__(self, out, stop_after_done=None):
        self.out, self.stop_after_done, self.finished_rows, self.opened = out, stop_after_done, [], []
        self.skipped = None

    def started(self, videos, skipped):
        self.skipped = (videos, [row.relpath for row in skipped])

    def probed(self, frames, relpath=""):
        self.opened.append((relpath, frames))

    def finished(self, row):
        self.finished_rows.append(row)
        listed = {entry["relpath"]: entry["frames"] for entry in read_manifest(self.out)}
        if listed:
            assert validate_datasource(self.out, listed) == []
        if sum(r.status == "done" for r in self.finished_rows) == self.stop_after_done:
            raise KeyboardInterrupt


def summary_rows(out, drop_timings=True):
    rows = list(csv.DictReader(io.StringIO((out / SUMMARY_CSV).read_text())))
    return [{k: v for k, v in row.items() if not (drop_timings and k in TIMING_COLUMNS)} for row in rows]


def test_inputs_are_found_in_folders_and_globs_with_relpaths_below_them(videos):
    assert [s.relpath for s in find_sources([videos])] == ["a.mp4", "bad.mp4", "sub/b.mp4"]
    assert [s.relpath for s in find_sources([f"{videos}/*/*.mp4", videos / "a.mp4"])] == ["sub/b.mp4", "a.mp4"]
    assert [s.relpath for s in find_sources([f"{videos}/s*/**"])] == ["sub/b.mp4"]
    with pytest.raises(UserError, match="both export as 'a.mp4'"):
        find_sources([videos, videos / "a.mp4"])
    with pytest.raises(UserError, match="No such file or folder"):
        find_sources([videos / "nope"])
    with pytest.raises(UserError, match="No video files"):
        find_sources([f"{videos}/*.txt"])


def test_files_named_like_videos_that_are_no_files_are_listed_as_failed(cache, tmp_path):
    """A FIFO, a link to /dev/zero and a link to nothing were left out without a word: the summary
    and Fleet showed a batch of one video where the folder held four."""
    folder = tmp_path / "cams"
    folder.mkdir()
    write_video(folder / "a.mp4", sample_frames(4))
    os.mkfifo(folder / "pipe.mp4")
    (folder / "zero.mp4").symlink_to("/dev/zero")
    (folder / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")
    (folder / "clips.mp4").mkdir()  # a folder named so is searched, not listed
    assert [s.relpath for s in find_sources([f"{folder}/*.mp4"])] == ["a.mp4", "gone.mp4", "pipe.mp4", "zero.mp4"]  # a glob too
    report = run_batch(config([folder], tmp_path / "out", cache), quiet=True)
    assert {r.relpath: r.status for r in report.rows} == {"a.mp4": "done", "gone.mp4": "failed", "pipe.mp4": "failed",
                                                          "zero.mp4": "failed"}
    errors = {r.relpath: r.error for r in report.rows}
    assert "is a symbolic link that leads to no file" in errors["gone.mp4"]
    assert "is not a regular file" in errors["pipe.mp4"] and "is not a regular file" in errors["zero.mp4"]



def test_a_glob_goes_down_folders_never_through_a_link_to_one(tmp_path):
    """``**`` followed links to folders, which a folder input never does: one link back to its parent
    listed a video 41 times (cams/a.mp4, cams/up/cams/a.mp4, ...), each to be detected and exported;
    with two such links the listing never ended. A link the glob names by a wildcard part is still read."""
    cams = tmp_path / "cams"
    cams.mkdir()
    write_video(cams / "a.mp4", sample_frames(2))
    (cams / "up").symlink_to("..")
    (tmp_path / "elsewhere").mkdir()
    write_video(tmp_path / "elsewhere" / "b.mp4", sample_frames(2))
    (cams / "linked").symlink_to(tmp_path / "elsewhere")
    assert [s.relpath for s in find_sources([f"{tmp_path}/**/*.mp4"])] == ["cams/a.mp4", "elsewhere/b.mp4"]
    assert [s.relpath for s in find_sources([f"{cams}/**"])] == ["a.mp4"]
    assert [s.relpath for s in find_sources([f"{cams}/*/*.mp4"])] == ["linked/b.mp4"]
    assert [s.relpath for s in find_sources([f"{cams}/*.mp4"])] == ["a.mp4"]

def test_a_link_out_of_the_roots_planted_in_an_allowed_folder_is_left_out_and_said(tmp_path, monkeypatch):
    """FLICKER_ROOTS allowed the folder, and a link in it opened a file outside the roots (the app's
    batch over a folder, or a glob). Links within the roots are read as before."""
    from core.sources import SkippedVideoWarning

    cams, outside = tmp_path / "cams", tmp_path / "outside"
    cams.mkdir()
    outside.mkdir()
    write_video(cams / "a.mp4", sample_frames(2))
    write_video(outside / "secret.mp4", sample_frames(2))
    (cams / "out.mp4").symlink_to(outside / "secret.mp4")
    (cams / "in.mp4").symlink_to(cams / "a.mp4")
    assert [s.relpath for s in find_sources([cams])] == ["a.mp4", "in.mp4", "out.mp4"]  # no roots: no limit
    monkeypatch.setenv("FLICKER_ROOTS", str(cams))
    for given in (cams, f"{cams}/*.mp4"):
        with pytest.warns(SkippedVideoWarning, match="skipped out.mp4: it links outside the folders"):
            assert [s.relpath for s in find_sources([given])] == ["a.mp4", "in.mp4"]


def test_a_killed_batch_resumes_where_it_stopped_and_the_export_is_valid_after_every_video(videos, cache, tmp_path):
    out = tmp_path / "out"
    killed = ValidAfterEveryVideo(out, stop_after_done=1)
    with pytest.raises(KeyboardInterrupt):
        run_batch(config([videos], out, cache), killed)
    assert [e["relpath"] for e in read_manifest(out)] == ["a.mp4"]

    resumed = ValidAfterEveryVideo(out)
    report = run_batch(config([videos], out, cache), resumed)
    assert [r.relpath for r in resumed.finished_rows] == ["bad.mp4", "sub/b.mp4"]  # a.mp4 was not redone
    assert resumed.opened == [("sub/b.mp4", 8)]  # the progress names the video being detected (bad.mp4 never opens)
    assert killed.skipped == (3, []) and resumed.skipped == (3, ["a.mp4"])  # told before the first video: counted as done
    assert [(r.relpath, r.status) for r in report.rows] == [("a.mp4", "skipped"), ("bad.mp4", "failed"),
                                                             ("sub/b.mp4", "done")]
    assert report.exit_code == 3 and "bad.mp4 is not a video FFmpeg can read" in report.rows[1].error
    assert "1 video done by an earlier run and in the export already: skipped" in report.text()
    assert [e["relpath"] for e in read_manifest(out)] == ["a.mp4", "sub/b.mp4"]
    assert validate_datasource(out, {"a.mp4": 8, "sub/b.mp4": 8}) == []
    rows = summary_rows(out, drop_timings=False)
    assert [(r["relpath"], r["status"], r["frames"]) for r in rows] == [("a.mp4", "skipped", "8"), ("bad.mp4", "failed", "0"),
                                                                      ("sub/b.mp4", "done", "8")]
    assert int(rows[0]["boxes"]) > 0 and float(rows[2]["detect_s"]) > 0

    # New thresholds redo every video, with detections from the cache.
    report = run_batch(config([videos], out, cache, iou_track=0.5))
    assert [r.status for r in report.rows] == ["done", "failed", "done"]
    assert all(r.detect_s == 0.0 for r in report.rows)


def test_a_video_replaced_by_a_shorter_one_leaves_no_stale_frame_files(videos, tiny_slice, cache, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "x.mp4").write_bytes((videos / "a.mp4").read_bytes())
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    (folder / "x.mp4").write_bytes(tiny_slice.read_bytes())  # 6 frames instead of 8
    report = run_batch(config([folder], out, cache))
    assert report.rows[0].status == "done" and report.rows[0].frames == 6
    names = {p.name for p in Datasource(out).files()}
    assert "x-5-mp4.json" in names and "x-6-mp4.json" not in names and "x-7-mp4.json" not in names
    assert validate_datasource(out, {"x.mp4": 6}) == []



@pytest.mark.parametrize("planted", [".batch", ".batch/done", ".lightly/predictions/yolov8_detection", ".lightly/metadata"])
def test_a_link_planted_in_the_batch_folder_is_refused_and_never_written_through(videos, cache, tmp_path, planted):
    """Someone who can write to --out replaces a folder of it with a link to another: the next run
    wrote its markers, settings or frame files wherever the link pointed (as root, into /etc)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "x.mp4").write_bytes((videos / "a.mp4").read_bytes())
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    run_batch(config([folder], out, cache))
    (folder / "x.mp4").write_bytes((videos / "sub" / "b.mp4").read_bytes())  # a changed video: written again
    victim = out / planted
    shutil.copytree(victim, elsewhere, ignore=lambda _, names: [n for n in names if n != "schema.json"])
    before = sorted(p.name for p in elsewhere.iterdir())  # an export's schema, so the run gets as far as writing
    shutil.rmtree(victim)
    victim.symlink_to(elsewhere)
    try:
        report = run_batch(config([folder], out, cache))
    except UserError as exc:  # the batch's own state: the whole run stops
        assert "is a symbolic link, which is never followed" in str(exc) and planted.startswith(".batch")
    else:  # a folder of the export: that video fails alone, with the reason
        assert report.rows[0].status == "failed" and "is a symbolic link" in report.rows[0].error
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_done_markers_of_earlier_versions_still_match(videos, cache, tmp_path):
    """Markers now keep their settings, to say what changed; the digest they are matched by is the
    one markers always had, so an upgrade does not do every video of a batch again."""
    import orjson

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "x.mp4").write_bytes((videos / "a.mp4").read_bytes())
    out, options = tmp_path / "out", config([folder], tmp_path / "out", cache).options
    run_batch(config([folder], out, cache))
    marker_path = out / ".batch" / "done" / "x.mp4.json"
    marker = json.loads(marker_path.read_bytes())
    fingerprint = marker["settings"]["the detector (--weights, --backend)"]
    earlier = [fingerprint, options.detector.conf, None, repr(options.flicker), options.export.task,
               options.export.metadata_style, options.export.imputed_task]  # the values, in the order markers had them
    assert marker["params"] == hashlib.blake2b(orjson.dumps(earlier), digest_size=16).hexdigest()
    del marker["settings"]  # as an earlier version wrote it
    marker_path.write_text(json.dumps(marker))
    assert run_batch(config([folder], out, cache)).rows[0].status == "skipped"


def one_of_two_same_size_videos(videos: Path, tmp_path: Path) -> tuple[Path, bytes]:
    """A folder holding x.mp4 (a.mp4's bytes) and the bytes of another video (b.mp4) of the same size: zeros padded
    after the last box, which FFmpeg reads both as they were; a copy of one over the other keeps size and mtime."""
    folder = tmp_path / "videos"
    folder.mkdir()
    first, other = (videos / "a.mp4").read_bytes(), (videos / "sub" / "b.mp4").read_bytes()
    size = max(len(first), len(other))
    (folder / "x.mp4").write_bytes(first.ljust(size, b"\0"))
    return folder, other.ljust(size, b"\0")


def test_another_video_copied_over_one_done_with_its_size_and_mtime_is_done_again(videos, cache, tmp_path):
    """`cp -p` of another video of the same size kept what the done markers knew a video by (size and
    mtime): the rerun skipped it and its export went on holding the first video's boxes."""
    folder, other = one_of_two_same_size_videos(videos, tmp_path)
    out = tmp_path / "out"
    assert run_batch(config([folder], out, cache)).rows[0].status == "done"
    status = (folder / "x.mp4").stat()
    (folder / "x.mp4").write_bytes(other)
    os.utime(folder / "x.mp4", ns=(status.st_atime_ns, status.st_mtime_ns))
    again = run_batch(config([folder], out, cache))
    assert again.rows[0].status == "done" and again.notes == ("1 video done again: the video changed since",)
    [entry] = read_manifest(out)
    assert entry["fingerprint"] == hashlib.sha256((folder / "x.mp4").read_bytes()).hexdigest()
    assert run_batch(config([folder], out, cache)).rows[0].status == "skipped"  # unchanged since: not read again



def test_a_fifo_in_place_of_a_done_video_is_never_read_for_its_content_key(videos, cache, tmp_path):
    """A FIFO where a done video was, with a marker made to match it (size 0 and its mtime): the resume read it for
    its content key, and an open of a FIFO waits for a writer forever. Every other read of a video refuses one."""
    import threading

    import orjson

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos / "a.mp4", folder / "x.mp4")
    out = tmp_path / "out"
    assert run_batch(config([folder], out, cache)).rows[0].status == "done"
    (folder / "x.mp4").unlink()
    os.mkfifo(folder / "x.mp4")
    marker_path = out / ".batch" / "done" / "x.mp4.json"
    marker = orjson.loads(marker_path.read_bytes())
    status = (folder / "x.mp4").stat()
    marker["version"] = f"{status.st_size}:{status.st_mtime_ns}"
    marker_path.write_bytes(orjson.dumps(marker))
    rows = []
    resumed = threading.Thread(target=lambda: rows.extend(run_batch(config([folder], out, cache), quiet=True).rows), daemon=True)
    resumed.start()
    resumed.join(timeout=60)
    if resumed.is_alive():  # a writer's open and close end the wait
        os.close(os.open(folder / "x.mp4", os.O_WRONLY))
        resumed.join()
        pytest.fail("the resume waited on the FIFO")
    assert rows[0].status == "failed" and "not a regular file" in rows[0].error

class ReadsRecorded(BatchProgress):
    """What a resume reads again to check done videos: the hashes it makes and what it reports of them."""

    def __init__(self, monkeypatch):
        from core import paths

        self.hashed, self.checks = [], []
        hash_file = paths.hash_file

        def recorded(path):
            self.hashed.append(os.path.basename(path))
            return hash_file(path)

        monkeypatch.setattr(paths, "hash_file", recorded)

    def checking(self, relpath, done, total):
        self.checks.append((relpath, done, total))


def empty_content_key_cache(monkeypatch, tmp_path):
    """A cache with no content key remembered (cleared, or a new machine): only the done markers know the videos."""
    monkeypatch.setenv("FLICKER_CACHE_DIR", str(tmp_path / f"empty-cache-{time.monotonic_ns()}"))


def done_marker(out, relpath="x.mp4"):
    return json.loads((out / ".batch" / "done" / f"{relpath}.json").read_bytes())


def test_a_resume_with_an_empty_cache_reads_no_unchanged_video(videos, cache, tmp_path, monkeypatch):
    """The content key of each done video was remembered only in the cache: the first resume after the cache was
    cleared (or on Ray workers with caches of their own) read every done video again, minutes for a fleet, without a
    word. The done marker names the file it was written for (device, inode, size, mtime, ctime): unchanged, it is
    trusted without a read."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, video in (("x.mp4", videos / "a.mp4"), ("y.mp4", videos / "sub" / "b.mp4")):
        shutil.copy(video, folder / name)
    out = tmp_path / "out"
    assert [r.status for r in run_batch(config([folder], out, cache)).rows] == ["done", "done"]
    status = (folder / "x.mp4").stat()
    assert done_marker(out)["identity"] == [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns,
                                            status.st_ctime_ns]
    empty_content_key_cache(monkeypatch, tmp_path)
    reads = ReadsRecorded(monkeypatch)
    report = run_batch(config([folder], out, cache), reads)
    assert [r.status for r in report.rows] == ["skipped", "skipped"] and report.notes == ()
    assert reads.hashed == [] and reads.checks == []


def test_a_video_done_by_an_older_version_is_read_once_with_progress_then_trusted(videos, cache, tmp_path, monkeypatch):
    """A marker from before markers named their file (or a `cp -p` of the same bytes: another inode) is checked by
    reading the video whole, which is reported as it goes (bytes, the video being read); the marker then names the
    file, so the next resume, even with an empty cache, reads nothing."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("x.mp4", "y.mp4"):
        shutil.copy(videos / "a.mp4", folder / name)
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    older = {key: value for key, value in done_marker(out).items() if key not in ("identity", "fingerprint")}
    (out / ".batch" / "done" / "x.mp4.json").write_text(json.dumps(older))  # as an earlier version wrote it
    copied = folder / "y.mp4.copy"
    shutil.copy2(folder / "y.mp4", copied)  # cp -p: the same bytes, size and mtime in another file
    os.replace(copied, folder / "y.mp4")
    empty_content_key_cache(monkeypatch, tmp_path)
    reads = ReadsRecorded(monkeypatch)
    report = run_batch(config([folder], out, cache), reads)
    assert [r.status for r in report.rows] == ["skipped", "skipped"] and report.notes == ()
    size = (folder / "x.mp4").stat().st_size
    assert reads.hashed == ["x.mp4", "y.mp4"]
    assert reads.checks == [("x.mp4", 0, 2 * size), ("y.mp4", size, 2 * size), ("", 2 * size, 2 * size)]
    assert done_marker(out, "y.mp4")["identity"][1] == (folder / "y.mp4").stat().st_ino  # names the copy now

    empty_content_key_cache(monkeypatch, tmp_path)
    again = ReadsRecorded(monkeypatch)
    assert [r.status for r in run_batch(config([folder], out, cache), again).rows] == ["skipped", "skipped"]
    assert again.hashed == [] and again.checks == []


def test_a_marker_upgraded_by_a_stopped_resume_is_not_a_video_done_since_to_the_fleet(videos, cache, tmp_path, monkeypatch):
    """Fleet counts a done marker newer than summary.csv as a video done since (a batch that stopped before its
    summary): a resume that only read an older version's marker again and named its file there (then was stopped)
    had the Fleet page say it had done that video. The upgraded marker keeps its time."""
    from core import fleet

    class StoppedAfterChecking(BatchProgress):
        def checking(self, relpath, done, total):
            if not relpath:
                raise KeyboardInterrupt

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos / "a.mp4", folder / "x.mp4")
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    marker = out / ".batch" / "done" / "x.mp4.json"
    written = marker.stat()
    marker.write_text(json.dumps({key: value for key, value in done_marker(out).items() if key not in ("identity", "fingerprint")}))
    os.utime(marker, ns=(written.st_atime_ns, written.st_mtime_ns))  # as an earlier version wrote it, before the summary
    assert fleet.read_fleet(out).unsummarised == 0
    empty_content_key_cache(monkeypatch, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_batch(config([folder], out, cache), StoppedAfterChecking())
    assert done_marker(out)["identity"] is not None  # upgraded: it names the file now
    assert fleet.read_fleet(out).unsummarised == 0


@pytest.mark.parametrize("forged", ["ctime", "inode"])
def test_a_marker_edited_to_name_another_file_is_read_not_trusted(videos, cache, tmp_path, monkeypatch, forged):
    """Another video `cp -p`'d over a done one keeps size and mtime; a marker edited to name the new file in all but
    the fields a copy cannot keep (ctime, inode) must still have it read, and done again."""
    folder, other = one_of_two_same_size_videos(videos, tmp_path)
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    marker = done_marker(out)
    (folder / "other.tmp").write_bytes(other)
    os.utime(folder / "other.tmp", ns=(marker["identity"][3], marker["identity"][3]))
    os.replace(folder / "other.tmp", folder / "x.mp4")
    status = (folder / "x.mp4").stat()
    identity = [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]
    kept = {"ctime": 4, "inode": 1}[forged]
    identity[kept] = marker["identity"][kept]  # the one field that still tells the files apart
    (out / ".batch" / "done" / "x.mp4.json").write_text(json.dumps({**marker, "identity": identity}))
    reads = ReadsRecorded(monkeypatch)
    again = run_batch(config([folder], out, cache), reads)
    assert reads.hashed == ["x.mp4"] and reads.checks[0] == ("x.mp4", 0, len(other))
    assert again.rows[0].status == "done" and again.notes == ("1 video done again: the video changed since",)
    assert read_manifest(out)[0]["fingerprint"] == hashlib.sha256((folder / "x.mp4").read_bytes()).hexdigest()


def test_a_video_written_while_it_was_detected_is_read_on_resume(videos, cache, tmp_path, monkeypatch):
    """The marker names the file as it was when hashed for the export: one written over between that and the marker
    (a camera still writing; here other bytes of the same size, mtime put back) is not vouched for, so the resume reads
    it and does it again, not trusting a marker that names the new file beside the old content key."""
    folder, other = one_of_two_same_size_videos(videos, tmp_path)

    class WrittenOverOnceOpened(BatchProgress):
        def probed(self, frames, relpath=""):
            status = (folder / "x.mp4").stat()
            (folder / "x.mp4").write_bytes(other)
            os.utime(folder / "x.mp4", ns=(status.st_atime_ns, status.st_mtime_ns))

    out = tmp_path / "out"
    assert run_batch(config([folder], out, cache), WrittenOverOnceOpened()).rows[0].status == "done"
    assert done_marker(out)["identity"] is None
    again = run_batch(config([folder], out, cache))
    assert again.rows[0].status == "done" and again.notes == ("1 video done again: the video changed since",)


def test_a_video_another_run_redid_before_it_was_stopped_is_done_again(videos, cache, tmp_path, monkeypatch):
    """A run with other settings redid a video `cp -p`'d over with other bytes, and was killed after the export took
    it in but before its marker was written: the first run's marker still matched size, mtime and settings, the file
    matched the manifest, and the resume skipped a video whose export was made with the other settings."""
    folder, other = one_of_two_same_size_videos(videos, tmp_path)
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    status = (folder / "x.mp4").stat()
    (folder / "x.mp4").write_bytes(other)
    os.utime(folder / "x.mp4", ns=(status.st_atime_ns, status.st_mtime_ns))

    def killed(markers, detected, row):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(DoneMarkers, "mark", killed)
        with pytest.raises(KeyboardInterrupt):
            run_batch(config([folder], out, cache, iou_track=0.5))
    assert read_manifest(out)[0]["fingerprint"] == hashlib.sha256((folder / "x.mp4").read_bytes()).hexdigest()
    again = run_batch(config([folder], out, cache))
    assert again.rows[0].status == "done" and again.notes == ("1 video done again: the video changed since",)


def test_the_checking_bar_shows_bytes_and_the_video_being_read(capsys):
    from core.batch import TqdmProgress

    bars = TqdmProgress(disable=False)
    bars.checking("cams/x.mp4", 0, 3 << 20)
    bars.checking("", 3 << 20, 3 << 20)
    err = capsys.readouterr().err
    assert "checking done videos" in err and "cams/x.mp4" in err and "3.00M" in err, err
    assert bars.checked.n == 3 << 20


def test_the_videos_bar_counts_the_videos_done_earlier_as_done(capsys):
    """The command line's bar and the Load page's count alike (``BatchProgress.started``): a resumed batch of 3 whose
    first video an earlier run did starts at 1/3 and ends at 3/3."""
    from core.batch import TqdmProgress

    bars = TqdmProgress(disable=False)
    bars.started(3, [VideoRow("a.mp4", "a.mp4", "skipped", frames=8)])
    assert bars.videos.n == 1 and "videos:  33%" in capsys.readouterr().err
    for relpath in ("b.mp4", "c.mp4"):
        bars.finished(VideoRow(relpath, relpath, "done", frames=8))
    assert bars.videos.n == bars.videos.total == 3
    bars.close()


def test_a_damaged_done_marker_only_costs_a_rerun_of_its_video(videos, cache, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "x.mp4").write_bytes((videos / "a.mp4").read_bytes())
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    marker = out / ".batch" / "done" / "x.mp4.json"
    damaged = json.loads(marker.read_bytes())
    damaged["row"].update(flagged=None, frames="abc")
    marker.write_text(json.dumps(damaged))
    report = run_batch(config([folder], out, cache))
    assert report.rows[0].status == "done" and report.rows[0].frames == 8
    assert run_batch(config([folder], out, cache)).rows[0].status == "skipped"  # rewritten whole

@pytest.mark.parametrize("planted", ["fifo", "link to /dev/null"])
def test_a_done_marker_that_is_a_pipe_or_a_device_is_replaced_not_a_stopped_batch(videos, cache, tmp_path, planted):
    """A done marker made a FIFO or a link to /dev/null stopped every later run of the batch at its video, after
    exporting it again: 'x.mp4.json is not a regular file (a device, a pipe or a socket): give a file name; nothing was
    written'; the videos after it were never run. It is now read as a damaged marker is, and written over."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("x.mp4", "y.mp4"):
        (folder / name).write_bytes((videos / "a.mp4").read_bytes())
    out = tmp_path / "out"
    run_batch(config([folder], out, cache))
    marker = out / ".batch" / "done" / "x.mp4.json"
    marker.unlink()
    os.mkfifo(marker) if planted == "fifo" else marker.symlink_to("/dev/null")
    (out / ".batch" / "done" / "y.mp4.json").unlink()  # a video after it still to do
    report = run_batch(config([folder], out, cache))
    assert [row.status for row in report.rows] == ["done", "done"]
    assert marker.is_file() and not marker.is_symlink()
    assert [row.status for row in run_batch(config([folder], out, cache)).rows] == ["skipped", "skipped"]


def test_a_rerun_that_does_videos_again_says_why(videos, cache, tmp_path):
    """A batch started in the app (one threshold) and run again from the command line (another) did
    every video again without a word; it now says what changed, and a video that changed says so."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("x.mp4", "y.mp4"):
        (folder / name).write_bytes((videos / "a.mp4").read_bytes())
    out = tmp_path / "out"
    assert run_batch(config([folder], out, cache)).notes == ()
    again = run_batch(config([folder], out, cache, iou_track=0.5))
    assert [r.status for r in again.rows] == ["done", "done"]
    assert again.notes == ("2 videos done again: the earlier run had --iou-track 0.8 (now 0.5)",)
    assert again.notes[0] in again.text()
    os.utime(folder / "y.mp4", ns=(1, 1))  # the same bytes, another version (size and mtime)
    third = run_batch(config([folder], out, cache, iou_track=0.5))
    assert [r.status for r in third.rows] == ["skipped", "done"]
    assert third.notes == ("1 video done again: the video changed since",)
    loose = BatchConfig((str(folder),), RunConfig(out=out, detector=DetectorSpec.of(None, cache_dir=cache, conf=0.2),
                                                  flicker=FlickerSettings(iou_track=0.5)))
    assert run_batch(loose).notes == ("2 videos done again: the earlier run had --conf 0.1 (now 0.2)",)
    improved = BatchConfig((str(folder),), RunConfig(out=out, detector=DetectorSpec.of(None, cache_dir=cache, conf=0.2),
                                                     flicker=FlickerSettings.of_mode("improved", 0.5, 0.5)))
    assert run_batch(improved).notes == ("2 videos done again: the earlier run had --iou-assert 0.6 (now 0.5), "
                                         "--mode reference (now improved)",)  # not the toggles that come with the mode


def test_classes_named_one_by_one_are_all_classes_and_a_subset_is_said_by_name(videos, cache, tmp_path):
    """--classes person with the people detector keeps every box: it was done again (21 s of detection, its cache entry
    missed) as "--classes none (now 0)". Naming every class is now no class filter, and another filter is said in names."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos / "a.mp4", folder / "x.mp4")
    out = tmp_path / "out"

    def batch(classes):
        return BatchConfig((str(folder),), RunConfig(out=out, detector=DetectorSpec.of(None, cache_dir=cache, classes=classes)))

    assert [r.status for r in run_batch(batch(None)).rows] == ["done"]
    every = run_batch(batch(["person"]))
    assert [r.status for r in every.rows] == ["skipped"] and every.notes == ()
    assert DetectorSpec(classes=("person",)).class_ids({0: "person", 1: "car"}) == [0]
    markers = DoneMarkers(out, {"--classes": [1]}, names={0: "person", 1: "car"})
    assert markers._changed({"--classes": None}) == "the earlier run had --classes all (now car)"


def test_the_load_page_resumes_a_cli_batch_at_their_defaults(videos, cache, tmp_path):
    """The Load page's minimum score starts at the detection floor, the CLI's at 0: the same boxes and flags, but a
    folder the CLI had done was done again by the page ("other flicker settings"). A minimum above the floor is not
    the same, and is still done again."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos / "a.mp4", folder / "x.mp4")
    out = tmp_path / "out"
    assert [r.status for r in run_batch(config([folder], out, cache)).rows] == ["done"]  # the CLI's defaults

    def page(min_score):
        detector = DetectorSpec.of(None, cache_dir=cache)
        return BatchConfig((str(folder),), RunConfig(out=out, detector=detector,
                                                     flicker=FlickerSettings(min_score=min_score)))

    assert DetectorSpec.of(None).conf == 0.1
    resumed = run_batch(page(0.1))
    assert [r.status for r in resumed.rows] == ["skipped"] and resumed.notes == ()
    assert "Nothing to run: every video was done by an earlier run; summary in " in resumed.text()
    assert "processed" not in resumed.text() and "videos/s" not in resumed.text()  # was "0 videos processed in 0.0 s (0.00 ..."
    stricter = run_batch(page(0.3))
    assert [r.status for r in stricter.rows] == ["done"]
    assert stricter.notes == ("1 video done again: the earlier run had minimum score 0.0 (now 0.3)",)


def test_the_cli_exits_3_when_a_video_failed_and_the_local_engine_never_imports_ray(videos, cache, tmp_path):
    script = ("import sys; from core.cli import main; code = main(sys.argv[1:]); "
              "print('exit', code, 'ray imported' if 'ray' in sys.modules else 'no ray')")
    result = subprocess.run([sys.executable, "-c", script, "batch", str(videos), "--out", str(tmp_path / "out"), "--quiet",
                             "--cache-dir", str(cache)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "exit 3 no ray" in result.stdout, result.stderr
    assert "failed: bad.mp4 is not a video" in result.stdout
    assert "next: mend or move the failed videos, then run the same command again: the videos done are skipped" in result.stdout
    assert f"Lightly datasource in {tmp_path / 'out' / '.lightly'}" in result.stdout
    only_bad = subprocess.run([sys.executable, "-m", "core", "batch", str(videos / "bad.mp4"), "--out", str(tmp_path / "bad"),
                               "--quiet", "--cache-dir", str(cache)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert only_bad.returncode == 3 and "no Lightly datasource (no video was processed)" in only_bad.stdout, only_bad.stdout
    assert "0 videos processed and 1 failed in " in only_bad.stdout
    assert not (tmp_path / "bad" / ".lightly").exists()


@pytest.mark.parametrize("args, message", [
    (["{videos}", "{videos}/a.mp4"], "both export as 'a.mp4'"),
    (["{videos}", "--workers", "2"], "--workers is the number of Ray detector workers"),
    (["{videos}", "--iou-track", "2"], "--iou-track must be in [0, 1]"),
    (["{videos}/nothing-here"], "No such file or folder"),
    (["{videos}", "--task", "a/b"], "Invalid task name"),
])
def test_user_errors_are_one_line_and_exit_2(videos, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main(["batch", *(a.format(videos=videos) for a in args), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.fixture(scope="module")
def s3(cache):
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    S3FileSystem.clear_instance_cache()  # an instance cached by another test module points at another server
    client = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"cams-{time.time_ns()}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    S3FileSystem.clear_instance_cache()
    server.stop()


def test_bucket_prefix_input_is_staged_one_video_at_a_time_and_resumes(s3, videos, cache, tmp_path):
    client, bucket = s3
    client.upload_file(str(videos / "a.mp4"), bucket, "cams/day1/a.mp4")
    client.upload_file(str(videos / "sub" / "b.mp4"), bucket, "cams/day2/b.mp4")
    out = tmp_path / "out"
    report = run_batch(config([f"s3://{bucket}/cams"], out, cache), ValidAfterEveryVideo(out))
    assert [(r.relpath, r.status) for r in report.rows] == [("day1/a.mp4", "done"), ("day2/b.mp4", "done")]
    assert [e["source"] for e in read_manifest(out)] == [f"s3://{bucket}/cams/day1/a.mp4", f"s3://{bucket}/cams/day2/b.mp4"]
    assert not any((cache / "batch-staging").iterdir())  # every download deleted once its video was done
    report = run_batch(config([f"s3://{bucket}/cams/"], out, cache))
    assert [r.status for r in report.rows] == ["skipped", "skipped"]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    from core.batch.ray_engine import _start_loopback_ray

    _start_loopback_ray(dict(num_cpus=2, log_to_driver=False))  # as batch starts it: on 127.0.0.1 only
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_writes_the_same_export_as_the_local_engine(local_ray, videos, cache, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_batch(config([videos], local, cache))
    report = run_batch(config([videos], remote, tmp_path / "ray-cache", engine="ray"), ValidAfterEveryVideo(remote))
    assert [r.status for r in report.rows] == ["done", "failed", "done"] and report.rows[2].detect_s > 0
    files = [p.relative_to(local) for p in Datasource(local).files()]
    assert files == [p.relative_to(remote) for p in Datasource(remote).files()] and len(files) > 30
    for relative in files:
        assert (local / relative).read_bytes() == (remote / relative).read_bytes(), relative
    assert Datasource(local).manifest.read_bytes() == Datasource(remote).manifest.read_bytes()
    assert summary_rows(local) == summary_rows(remote)
    for relpath in ("a.mp4", "sub/b.mp4"):  # named as the local engine names them: a resume trusts them unread
        assert done_marker(remote, relpath)["identity"] == done_marker(local, relpath)["identity"] is not None


@pytest.mark.slow
def test_ray_engine_reports_a_bad_model_in_one_line(local_ray, videos, tmp_path):
    with pytest.raises(UserError, match="Weights file not found"):
        run_batch(config([videos], tmp_path / "out", tmp_path / "cache", engine="ray", weights=str(tmp_path / "no.pt")))


@pytest.mark.slow
def test_ray_engine_reports_frames_that_do_not_decode(local_ray, tmp_path):
    """The Ray engine decodes in its own processes: what decoding warned of comes back with the last
    shipment, into summary.csv, as with the local engine."""
    from test_video import _damaged_h264

    folder = tmp_path / "cams"
    folder.mkdir()
    shutil.move(_damaged_h264(tmp_path, step=2)[1], folder / "damaged.mp4")
    (row,) = run_batch(config([folder], tmp_path / "out", tmp_path / "cache", engine="ray"), quiet=True).rows
    assert row.status == "done" and row.error.startswith("damaged.mp4: 3 of 60 frames could not be decoded"), row


def test_a_truncated_video_is_done_with_its_warning_in_the_summary(cache, tmp_path):
    """What the probe warns of (a file cut short) reaches summary.csv's error column of a done row,
    the report and so the Fleet page, which showed such a video as a plain 'done'."""
    import warnings

    from core.paths import SAMPLE_VIDEO

    folder = tmp_path / "cams"
    folder.mkdir()
    (folder / "cut.avi").write_bytes(SAMPLE_VIDEO.read_bytes()[:200_000])  # a few frames, then nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = run_batch(config([folder], tmp_path / "out", cache), quiet=True)
    (row,) = report.rows
    assert row.status == "done" and row.frames > 0 and row.error.startswith("cut.avi looks truncated: ")
    assert f"warning: {row.error}" in report.text()  # the name said once ("cut.avi: cut.avi looks truncated" before)
    with (tmp_path / "out" / "summary.csv").open() as f:
        (summary,) = list(csv.DictReader(f))
    assert summary["status"] == "done" and summary["error"] == row.error


def test_the_cli_says_a_videos_warning_once(cache, tmp_path, capsys):
    """The report's "warning: cut.avi looks truncated ..." line came again as a warning of its own,
    and once more for frames that did not decode: each truncated camera of a fleet said twice."""
    from core.paths import SAMPLE_VIDEO

    folder = tmp_path / "cams"
    folder.mkdir()
    (folder / "cut.avi").write_bytes(SAMPLE_VIDEO.read_bytes()[:200_000])
    code = main(["batch", str(folder), "--out", str(tmp_path / "out"), "--cache-dir", str(cache), "--quiet"])
    said = capsys.readouterr()
    assert code == 0 and (said.out + said.err).count("looks truncated") == 1, said


def test_frames_that_do_not_decode_reach_the_summary_also_from_the_cache(cache, tmp_path):
    """What decoding warned of ("3 of 60 frames could not be decoded") never reached summary.csv, so
    Fleet showed the video as clean; and a rerun served from the detection cache said nothing at all."""
    import warnings

    from core.video import TruncatedVideoWarning
    from test_video import _damaged_h264

    folder = tmp_path / "cams"
    folder.mkdir()
    _, damaged = _damaged_h264(tmp_path, step=2)
    shutil.move(damaged, folder / "damaged.mp4")
    for out in ("first", "from_the_cache"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", TruncatedVideoWarning)  # said in the row (the report), not twice
            report = run_batch(config([folder], tmp_path / out, cache), quiet=True)
        (row,) = report.rows
        assert row.status == "done" and row.error.startswith("damaged.mp4: 3 of 60 frames could not be decoded"), row
        assert summary_rows(tmp_path / out)[0]["error"] == row.error
        assert f"warning: {row.error}" in report.text()  # "damaged.mp4: damaged.mp4: 3 of 60..." before
    assert report.rows[0].detect_s == 0.0, "the second batch read its boxes from the cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the clean copy warns of nothing
        clean_row = run_batch(config([tmp_path / "clean.mp4"], tmp_path / "clean", cache), quiet=True).rows[0]
    assert clean_row.status == "done" and clean_row.error == ""


def test_a_video_whose_boxes_the_assertion_refuses_fails_alone(videos, cache, tmp_path, monkeypatch):
    """Boxes the flickering assertion refuses (a frame crowded past its limit, boxes stacked on one spot) stopped the
    whole batch with that one line: the videos after it were never run and no summary.csv was written."""
    import numpy as np

    from core.detections import Detections

    detect = DetectorSpec.detect

    def crowded_b(spec, video, detector, progress=None, cancel=None):
        found = detect(spec, video, detector, progress, cancel)
        if video.path.name != "b.mp4":
            return found
        n = 1001  # one more than the assertion takes in a frame
        return Detections(np.zeros(n), np.tile([1, 1, 20, 20], (n, 1)), np.ones(n), np.zeros(n), found.names,
                          found.n_frames, found.image_size)

    monkeypatch.setattr(DetectorSpec, "detect", crowded_b)
    report = run_batch(config([videos / "sub", videos / "a.mp4"], tmp_path / "out", cache), quiet=True)
    assert {r.relpath: r.status for r in report.rows} == {"b.mp4": "failed", "a.mp4": "done"}
    assert "holds 1,001 boxes" in report.rows[0].error
    assert [row["status"] for row in summary_rows(tmp_path / "out")] == ["failed", "done"]


def test_a_batch_with_other_assertions_into_an_existing_export_is_refused(videos, cache, tmp_path):
    """The metadata schema is written by the first video: rerun with --assertions flicker,ghost into the same --out, every
    video's files held 'ghost' but the schema never declared it, so a Lightly selection could not weight by it."""
    from core.lightly.metadata_keys import declared_metadata_keys

    out = tmp_path / "out"
    run_batch(config([videos / "a.mp4"], out, cache), quiet=True)
    ghost = BatchConfig((str(videos / "a.mp4"),), RunConfig(out=out, detector=DetectorSpec.of(None, cache_dir=cache),
                        flicker=FlickerSettings(assertions=("flicker", "ghost"))))
    with pytest.raises(UserError, match="holds an export of other assertions .* use the same --assertions, or another --out"):
        run_batch(ghost, quiet=True)
    assert declared_metadata_keys(out) == ("flickering",)
    assert run_batch(config([videos / "a.mp4"], out, cache), quiet=True).rows[0].status == "skipped"  # the same: resumed
