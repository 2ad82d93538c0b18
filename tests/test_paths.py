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
