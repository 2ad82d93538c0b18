"""The layout object and Lightly's frame-naming rule (seed 004)."""
import pytest

from core.lightly.datasource import Datasource, frame_name, frame_namer


@pytest.mark.parametrize(
    "n_frames, frame, expected",
    [
        (9, 0, "data/cars-0-mp4"),
        (9, 8, "data/cars-8-mp4"),
        (10, 3, "data/cars-03-mp4"),
        (99, 98, "data/cars-98-mp4"),
        (100, 7, "data/cars-007-mp4"),
        (200, 99, "data/cars-099-mp4"),
        (1000, 99, "data/cars-0099-mp4"),
        (1000, 999, "data/cars-0999-mp4"),
    ],
)
def test_lightly_frame_names(n_frames, frame, expected):
    assert frame_name("data/cars.mp4", frame, n_frames) == expected
    assert frame_name("data/cars.mp4", frame, n_frames, ".png") == expected + ".png"


def test_lightly_frame_name_rejects_frames_outside_the_video():
    with pytest.raises(ValueError):
        frame_name("a.mp4", 10, 10)


def test_namer_and_name_agree_and_keep_subfolders():
    namer = frame_namer("sub/dir/cam.0.mp4", 250)
    assert namer(7) == frame_name("sub/dir/cam.0.mp4", 7, 250) == "sub/dir/cam.0-007-mp4"


def test_datasource_names_every_path_under_its_root(tmp_path):
    ds = Datasource(tmp_path)
    assert ds.lightly == tmp_path / ".lightly"
    assert ds.tasks_file == tmp_path / ".lightly/predictions/tasks.json"
    assert ds.task_schema("det") == tmp_path / ".lightly/predictions/det/schema.json"
    assert ds.prediction_file("det", "v-01-mp4") == tmp_path / ".lightly/predictions/det/v-01-mp4.json"
    assert ds.metadata_schema == tmp_path / ".lightly/metadata/schema.json"
    assert ds.metadata_file("v-01-mp4") == tmp_path / ".lightly/metadata/v-01-mp4.json"
    assert ds.manifest == tmp_path / "flicker_export.json"
    assert not ds.exists()
    ds.task_dir("det").mkdir(parents=True)
    ds.tasks_file.write_text('["det"]')
    assert ds.exists() and ds.files() == [ds.tasks_file]
