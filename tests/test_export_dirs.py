"""The folder the app offers for an export: under the data folder, remembered per video, inside FLICKER_ROOTS."""
from pathlib import Path

from core.export_dirs import STORE_NAME, default_export_dir, export_dir_for, remember_export_dir


def test_default_lies_in_the_data_folder_not_the_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    assert export_dir_for("key-a", "walk") == tmp_path / "data" / "exports" / "walk"


def test_the_last_folder_is_remembered_per_video(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    remember_export_dir("key-a", tmp_path / "mine")
    remember_export_dir("key-b", tmp_path / "other")
    remember_export_dir("key-a", tmp_path / "mine-again")
    assert export_dir_for("key-a", "walk") == tmp_path / "mine-again"
    assert export_dir_for("key-b", "walk") == tmp_path / "other"
    assert export_dir_for("key-c", "walk") == tmp_path / "data" / "exports" / "walk"
    assert not list((tmp_path / "data").glob("*.partial"))  # written through one atomic rename


def test_default_and_remembered_folders_respect_the_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    remember_export_dir("key-a", tmp_path / "elsewhere")
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "allowed"))
    assert default_export_dir("walk") == (tmp_path / "allowed" / "exports" / "walk").resolve()
    assert export_dir_for("key-a", "walk") == default_export_dir("walk"), "a folder now outside the roots is not offered"
    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path))
    assert export_dir_for("key-a", "walk") == tmp_path / "elsewhere"
    assert default_export_dir("walk") == tmp_path / "data" / "exports" / "walk"


def test_a_hostile_store_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    default = tmp_path / "exports" / "walk"
    for text in ("not json", "[1, 2]", '{"key-a": 3}', '{"key-a": "relative/folder"}', '{"key-a": ""}'):
        (tmp_path / STORE_NAME).write_text(text)
        assert export_dir_for("key-a", "walk") == default, text
    remember_export_dir("key-a", Path("/srv/exports/walk"))  # a broken store is replaced, not a crash
    assert export_dir_for("key-a", "walk") == Path("/srv/exports/walk")
