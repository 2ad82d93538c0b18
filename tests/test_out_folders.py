"""What run and batch do with an --out that already holds an export: a batch's folder is grown by batch alone, a run's
export is not mixed into a batch, and a run that replaces another run's export says which videos went."""
import pytest

from conftest import sample_frames, write_video
from core.batch import SUMMARY_CSV
from core.cli import main
from core.lightly.export import read_manifest


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two eight-frame clips of the sample in one folder."""
    folder = tmp_path_factory.mktemp("clips")
    frames = sample_frames(16)
    write_video(folder / "a.mp4", frames[:8])
    write_video(folder / "b.mp4", frames[8:])
    return folder


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def cli(capsys, cache, verb, *args):
    """The exit code, stdout and stderr of one verb, bars off and the module's detection cache."""
    code = main([verb, *map(str, args), "--quiet", "--cache-dir", str(cache)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(out):
    return [entry["relpath"] for entry in read_manifest(out)]


def test_run_into_a_batchs_folder_is_refused_and_the_batch_resumes_as_it_was(clips, cache, tmp_path, capsys):
    """run a.mp4 --out OUT, OUT a batch's: the export was rewritten to hold a.mp4 alone, exit 0, while summary.csv and the
    done markers still claimed both videos done, and the next batch did them again."""
    out = tmp_path / "out"
    assert cli(capsys, cache, "batch", clips, "--out", out)[0] == 0
    summary = (out / SUMMARY_CSV).read_bytes()
    code, printed, err = cli(capsys, cache, "run", clips / "a.mp4", "--out", out)
    assert code == 2 and not printed and len(err.strip().splitlines()) == 1, err
    assert f"--out {out} is a batch's output folder" in err and f"python -m core batch VIDEO --out {out}" in err
    assert "of 2 videos" in err
    assert listed(out) == ["a.mp4", "b.mp4"] and (out / SUMMARY_CSV).read_bytes() == summary
    code, printed, _ = cli(capsys, cache, "batch", clips, "--out", out)
    assert code == 0 and "skipped        2" in printed and "done again" not in printed, printed


def test_a_batch_into_a_runs_export_is_refused_and_leaves_it_as_it_was(clips, cache, tmp_path, capsys):
    """batch FOLDER --out OUT, OUT a run's export of another video: merged, the manifest listing one video more than
    summary.csv counted."""
    out = tmp_path / "out"
    other = tmp_path / "other"
    other.mkdir()
    write_video(other / "c.mp4", sample_frames(6, start=40))
    assert cli(capsys, cache, "run", other / "c.mp4", "--out", out)[0] == 0
    before = sorted(path.relative_to(out) for path in out.rglob("*"))
    code, printed, err = cli(capsys, cache, "batch", clips, "--out", out)
    assert code == 2 and not printed and len(err.strip().splitlines()) == 1, err
    assert f"--out {out} holds an export of 'c.mp4' that no batch wrote" in err and "give batch a folder of its own" in err
    assert sorted(path.relative_to(out) for path in out.rglob("*")) == before and listed(out) == ["c.mp4"]


def test_a_run_that_replaces_another_runs_export_says_which_videos_went(clips, cache, tmp_path, capsys):
    """run b.mp4 --out OUT, OUT a run's export of a.mp4: replaced without a word. The same video again (other thresholds)
    updates its own export, and says nothing of it."""
    out = tmp_path / "out"
    assert cli(capsys, cache, "run", clips / "a.mp4", "--out", out)[0] == 0
    code, printed, err = cli(capsys, cache, "run", clips / "b.mp4", "--out", out)
    assert code == 0 and not err, err
    *_, replaced, next_step = printed.strip().splitlines()
    assert replaced == f"replaced the earlier export in {out}; not in this one: 'a.mp4'" and next_step.startswith("next: ")
    assert listed(out) == ["b.mp4"]
    code, printed, err = cli(capsys, cache, "run", clips / "b.mp4", "--out", out, "--iou-track", "0.5")
    assert code == 0 and "replaced" not in printed + err, printed


@pytest.mark.parametrize("verb", ["run", "batch"])
@pytest.mark.parametrize("inside", [".lightly", ".lightly/predictions"])
def test_an_out_inside_a_lightly_folder_is_refused_naming_the_root_meant(clips, cache, tmp_path, capsys, verb, inside):
    """run --demo --out OUT/.lightly wrote OUT/.lightly/.lightly, which neither push nor a Lightly worker reads."""
    out = tmp_path / "out" / inside
    code, printed, err = cli(capsys, cache, verb, clips / "a.mp4" if verb == "run" else clips, "--out", out)
    assert code == 2 and not printed and len(err.strip().splitlines()) == 1, err
    assert "Lightly datasource's own .lightly folder: give the folder that holds it" in err
    assert err.strip().endswith(f"({tmp_path / 'out'})") and not (tmp_path / "out").exists()


def test_an_out_that_links_into_a_lightly_folder_is_refused(clips, cache, tmp_path, capsys):
    (tmp_path / "export" / ".lightly").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "export" / ".lightly")
    code, _, err = cli(capsys, cache, "run", clips / "a.mp4", "--out", tmp_path / "link")
    assert code == 2 and f"lies in {tmp_path / 'export' / '.lightly'}" in err, err
    assert list((tmp_path / "export" / ".lightly").iterdir()) == []


def test_a_summary_csv_of_anyones_is_no_batch_folder(clips, cache, tmp_path, capsys):
    """A project folder holding an evaluate --out summary.csv was refused as "a batch's output folder": a batch writes
    .batch before any export, and that is what marks its folder."""
    out = tmp_path / "project"
    out.mkdir()
    (out / SUMMARY_CSV).write_text("iou_track,iou_assert,precision\n")
    code, printed, err = cli(capsys, cache, "run", clips / "a.mp4", "--out", out)
    assert code == 0 and listed(out) == ["a.mp4"], err
    (out / ".batch").mkdir()
    code, printed, err = cli(capsys, cache, "run", clips / "b.mp4", "--out", out)
    assert code == 2 and "is a batch's output folder (it holds .batch and summary.csv)" in err
