"""An app served beyond localhost (FLICKER_ROOTS set) reads and writes only under those folders."""
import shutil

from test_app import click, export_from_app, load_and_detect


def test_paths_outside_the_roots_are_refused_without_saying_whether_they_exist(app, tiny_slice, tmp_path,
                                                                               monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    inside = shutil.copy(tiny_slice, videos / "tiny.mp4")
    monkeypatch.setenv("FLICKER_ROOTS", f"{videos}:{tmp_path / 'exports'}")
    for outside in ("/etc/passwd", "/etc", str(tmp_path / "nothing.mp4")):
        app.segmented_control(key="source").set_value("Local path")
        app.run()
        app.text_input[0].input(outside)
        click(app, "Load file")
        assert app.error and "outside the folders" in app.error[0].value
        assert "directory" not in app.error[0].value and "No such" not in app.error[0].value
    load_and_detect(app, inside)
    export_from_app(app, tmp_path / "elsewhere")
    assert any("outside the folders" in e.value for e in app.error)
    assert not (tmp_path / "elsewhere").exists()
    export_from_app(app, tmp_path / "exports" / "ok")
    assert (tmp_path / "exports" / "ok" / ".lightly").is_dir()
    export_from_app(app, "/etc/passwd")  # a file outside the roots is refused as outside, never as "a file"
    assert [e.value for e in app.error] == ["Export failed: /etc/passwd is outside the folders this app may use (FLICKER\\_ROOTS)"]


def test_a_reload_reopens_the_sample_the_app_ships_outside_the_roots(app, tmp_path, monkeypatch):
    """The bundled sample (and a kept upload) is the app's own: a reload of its review opens it,
    though FLICKER_ROOTS keeps every path a user types inside the roots."""
    from streamlit.testing.v1 import AppTest

    from test_app import metric

    monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path / "videos"))
    click(app, "Load the sample")
    assert metric(app, "Frames") == "795"
    reloaded = AppTest.from_file("../app.py", default_timeout=180)
    reloaded.query_params = dict(app.query_params)
    reloaded.run()
    assert not reloaded.error, [e.value for e in reloaded.error]
    assert metric(reloaded, "Frames") == "795"


def test_an_app_served_beyond_localhost_without_roots_reads_no_path(app, tmp_path, monkeypatch):
    """``--server.address 0.0.0.0`` without FLICKER_ROOTS let anyone on the network open any file of
    the server as a video and export into any folder it may write: the app now says what to set and
    does nothing else. With the roots set (or on 127.0.0.1) it runs as always."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    def opened() -> AppTest:  # a browser session opened on the server as it is configured now
        at = AppTest.from_file("../app.py", default_timeout=180)
        at.run()
        assert not at.exception
        return at

    monkeypatch.delenv("FLICKER_ROOTS", raising=False)
    saved = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        shared = opened()
        assert "without FLICKER\\_ROOTS" in shared.error[0].value and not shared.button
        monkeypatch.setenv("FLICKER_ROOTS", str(tmp_path))
        assert any(b.label == "Load the sample" for b in opened().button)
    finally:
        config.set_option("server.address", saved)
    assert any(b.label == "Load the sample" for b in opened().button)  # 127.0.0.1: no roots needed
