"""The crash-safe write primitives every writer shares: atomic_path / write_atomic for one file,
swap_in / recover_swaps for a staged tree, exercised with real kill -9 at each point."""
import os
import subprocess
import sys

import pytest

from core.paths import atomic_path, exchange_paths, recover_swaps, staged_dir, swap_in, write_atomic


def test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "clip.mp4"
    with atomic_path(target, suffix=".mp4") as partial:
        assert partial.parent == target.parent and partial.suffix == ".mp4" and partial != target
        partial.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"new" and sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4"]
    write_atomic(target, lambda f: f.write(b"by function"), durable=True)
    assert target.read_bytes() == b"by function"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="/proc refuses new files on Linux")
def test_a_refused_write_names_the_file_asked_for_not_the_temporary_one():
    """(Even root cannot create a file in /proc.) The error said '.v.csv.v2losm4h.partial'."""
    with pytest.raises(OSError) as info:
        write_atomic("/proc/v.csv", b"x")
    assert info.value.filename == "/proc/v.csv"


def test_a_file_written_atomically_gets_the_mode_a_plain_open_gives(tmp_path):
    """mkstemp's 0600 made every export, CSV and listing unreadable to the user's group."""
    script = ("import os, stat, sys; os.umask(0o027); from core.paths import write_atomic; "
              "p = write_atomic(sys.argv[1], b'x'); print(oct(stat.S_IMODE(os.stat(p).st_mode)))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out.csv")], capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.stdout.strip() == "0o640", done.stderr  # 0666 less the umask, as open() would


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_exchange_swaps_folders_and_files_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    (a / "sub" / "x").write_text("new")
    b.mkdir()
    (b / "y").write_text("old")
    assert exchange_paths(a, b)
    assert (b / "sub" / "x").read_text() == "new" and (a / "y").read_text() == "old"
    (tmp_path / "f").write_text("1")
    (tmp_path / "g").write_text("2")
    assert exchange_paths(tmp_path / "f", tmp_path / "g") and (tmp_path / "g").read_text() == "1"
    with pytest.raises(FileNotFoundError):
        exchange_paths(a, tmp_path / "missing")


def _build(staging, version: str) -> None:
    (staging / "tree").mkdir()
    (staging / "tree" / "data.json").write_text(version)
    (staging / "manifest.json").write_text(version)


def _state(target) -> tuple[str, str]:
    return (target / "tree" / "data.json").read_text(), (target / "manifest.json").read_text()


def test_swap_in_replaces_every_entry_together(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    for version in ("v1", "v2"):
        with staged_dir(target, ".partial-") as staging:
            _build(staging, version)
            swap_in(staging, target, ["tree", "manifest.json"])
        assert _state(target) == (version, version)
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "tree"]


SWAP_SCRIPT = """
import sys
from pathlib import Path
import core.paths
from core.paths import staged_dir, swap_in
if sys.argv[2] == "no-exchange":
    core.paths.exchange_paths = lambda a, b: False
target = Path(sys.argv[1])
with staged_dir(target, ".partial-") as staging:
    (staging / "tree").mkdir()
    (staging / "tree" / "data.json").write_text("v2")
    (staging / "manifest.json").write_text("v2")
    swap_in(staging, target, ["tree", "manifest.json"])
"""


@pytest.mark.parametrize("fault, exchange", [("swap-marked", "exchange"), ("swap-one-entry-done", "exchange"),
                                             ("swap-old-moved-aside", "no-exchange"),
                                             ("swap-one-entry-done", "no-exchange")])
def test_a_swap_killed_at_any_point_is_finished_by_recovery(tmp_path, fault, exchange):
    target = tmp_path / "out"
    target.mkdir()
    with staged_dir(target, ".partial-") as staging:
        _build(staging, "v1")
        swap_in(staging, target, ["tree", "manifest.json"])
    killed = subprocess.run([sys.executable, "-c", SWAP_SCRIPT, str(target), exchange], capture_output=True, text=True,
                            env=dict(os.environ, FLICKER_FAULT_POINT=fault), timeout=120)
    assert killed.returncode == -9, killed.stderr  # really killed there
    recover_swaps(target, ".partial-")
    assert _state(target) == ("v2", "v2")  # marked before the kill: rolled forward, never half
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "tree"]


def test_recovery_deletes_a_staging_folder_that_was_never_marked(tmp_path):
    target = tmp_path / "out"
    (target / ".partial-x" / "tree").mkdir(parents=True)
    (target / "manifest.json").parent.mkdir(exist_ok=True)
    (target / "manifest.json").write_text("v1")
    recover_swaps(target, ".partial-")
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json"]


def test_a_cache_folder_sheds_its_least_recently_used_entries_first(tmp_path):
    import re

    from core.paths import mark_used, prune_least_used

    name = re.compile(r"[0-9a-f]{32}\.npz")
    rank = lambda entry, status: (True, status.st_mtime_ns) if name.fullmatch(entry) else None  # noqa: E731
    entries = [tmp_path / f"{k:032x}.npz" for k in range(4)]
    for age, entry in enumerate(entries):  # entries[0] oldest
        entry.write_bytes(b"x" * 100)
        os.utime(entry, ns=(10**18 + age * 10**9,) * 2)
    mark_used(entries[0])  # read again: now the most recent
    others = [tmp_path / ".0123.npz.tmp.partial", tmp_path / "notes.txt"]  # a write in progress, something else
    for other in others:
        other.write_bytes(b"y" * 1000)
    (tmp_path / f"{9:032x}.npz").symlink_to(others[1])  # a link is never followed nor deleted
    deleted = prune_least_used(tmp_path, rank, limit_bytes=300, keep=entries[1])
    assert deleted == [entries[2]] and all(p.exists() for p in [entries[0], entries[1], entries[3], *others])
    assert prune_least_used(tmp_path, rank, limit_bytes=0, keep=entries[1]) == [entries[3], entries[0]]
    assert entries[1].exists() and (tmp_path / f"{9:032x}.npz").is_symlink()


def test_a_size_setting_is_read_as_gigabytes_with_a_default(monkeypatch):
    from core.paths import gigabytes_setting

    for text, expected in (("", 2 * 1024 ** 3), ("0.5", 512 * 1024 ** 2), ("-3", 0), ("nan", 2 * 1024 ** 3), ("lots", 2 * 1024 ** 3)):
        monkeypatch.setenv("SOME_CACHE_GB", text)
        assert gigabytes_setting("SOME_CACHE_GB", 2.0) == expected, text


def test_the_results_cache_deletes_what_a_killed_writer_left_once_it_is_old(tmp_path):
    """A detection run killed while its cache file was written leaves atomic_path's temporary
    file; the next cached run's pruning deletes it once nothing has touched it for an hour (a
    write in progress is touched), whatever the room, and leaves every entry."""
    import time

    from core.paths import ABANDONED_WRITE_S, prune_results

    entry = tmp_path / f"{1:032x}.npz"
    killed = ("import os, signal; from core.paths import atomic_path\n"
              "with atomic_path(os.environ['TARGET']) as tmp:\n"
              "    tmp.write_bytes(b'half a run')\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    for k in (2, 3):
        run = subprocess.run([sys.executable, "-c", killed], env={**os.environ, "TARGET": str(tmp_path / f"{k:032x}.npz")})
        assert run.returncode == -9
    left = sorted(tmp_path.glob(".*.partial"))
    assert len(left) == 2, "a killed writer leaves its temporary file"
    old = time.time() - ABANDONED_WRITE_S - 60
    os.utime(left[0], (old, old))
    entry.write_bytes(b"x" * 10)
    assert prune_results(entry) == [left[0]]
    assert entry.exists() and left[1].exists(), "a fresh write may still be going on"
