"""The viewer's frames and boxes over HTTP (ui/viewer/frames.py): only what a review page
registered, by content key, the right frame, 404 for anything else, one line when a video broke."""
import asyncio
import gc
import time
import urllib.error
import urllib.request
from dataclasses import replace
from urllib.parse import quote

import cv2
import httpx
import numpy as np
import pytest
import streamlit as st
from starlette.applications import Starlette

from conftest import ROOT, sample_frames, streamlit_server, write_video
from core.detections import Detections
from core.proxy import psnr
from core.video import iter_frames, probe
from ui.viewer import frames, handshake

SERVER = httpx.ASGITransport(app=Starlette(routes=frames.routes()))


async def _get_all(urls: list[str], headers: dict | None = None) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=SERVER, base_url="http://127.0.0.1") as client:
        return await asyncio.gather(*(client.get(url, headers=headers) for url in urls))


def get(url: str, headers: dict | None = None) -> httpx.Response:
    return asyncio.run(_get_all([url], headers))[0]


def decoded(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", response.text
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def nearest_frame(image: np.ndarray, originals: list[np.ndarray]) -> int:
    return int(np.argmax([psnr(image, original) for original in originals]))


@pytest.fixture(scope="module")
def slice_frames(sample_slice) -> list[np.ndarray]:
    return [image for _, image in iter_frames(sample_slice)]


def test_a_registered_video_serves_each_frame_as_a_jpeg_of_that_frame(sample_slice, slice_frames):
    info = probe(sample_slice)
    assert get(f"/api/viewer/frames/{info.fingerprint}/3.jpg").status_code == 404, "not registered yet"
    url = frames.frames_url(info)
    for index in (3, 0, 39, 17):
        shown = decoded(get(f"{url}{index}.jpg"))
        assert shown.shape == (info.height, info.width, 3)
        assert psnr(shown, slice_frames[index]) >= 35 and nearest_frame(shown, slice_frames) == index, index
    response = get(f"{url}5.jpg?now")
    assert response.content == get(f"{url}5.jpg").content, "the frame under the hand: the same frame"
    assert "immutable" in response.headers["cache-control"], "the URL names the content"


def test_frames_asked_for_at_once_from_many_threads_are_each_the_frame_asked_for(sample_slice, slice_frames):
    url = frames.frames_url(probe(sample_slice))
    wanted = [31, 8, 30, 9, 22, 2, 38, 15, 8, 27, 1, 36]  # out of order, back and forth, one twice
    responses = asyncio.run(_get_all([f"{url}{index}.jpg{'?now' if i % 3 == 0 else ''}"
                                      for i, index in enumerate(wanted)]))
    assert [nearest_frame(decoded(r), slice_frames) for r in responses] == wanted


@pytest.mark.parametrize("tail", ["40.jpg", "1000000000000.jpg", "-1.jpg", "x.jpg", "3.png", "3.jpg/x", "3",
                                  "..%2F3.jpg", "%2E%2E/3.jpg", "../../app.py",
                                  "1" * 4301 + ".jpg"])  # more digits than Python converts: it was a 500
def test_a_frame_out_of_range_or_a_path_like_name_is_404(sample_slice, tail):
    url = frames.frames_url(probe(sample_slice))
    assert get(f"{url}{tail}").status_code == 404


@pytest.mark.parametrize("key", ["0123abcd", "..", "%2E%2E", quote("/etc/passwd", safe=""), "samples%2Fvtest.avi"])
def test_an_unregistered_or_path_like_key_is_404(sample_slice, key):
    frames.frames_url(probe(sample_slice))
    assert get(f"/api/viewer/frames/{key}/0.jpg").status_code == 404
    assert get(f"/api/viewer/boxes/{key}.json").status_code == 404


def test_the_path_of_a_registered_video_is_not_a_key(sample_slice):
    frames.frames_url(probe(sample_slice))
    assert get(f"/api/viewer/frames/{quote(str(sample_slice), safe='')}/0.jpg").status_code == 404


def test_boxes_json_holds_every_box_of_the_detections(walk_hog):
    info, detections = walk_hog
    assert len(detections) > 20, "HOG finds people in these frames"
    detection_id = f"batch:{ROOT}/out:videos/walk.mp4:{info.fingerprint}:1"  # a batch's id holds paths
    url = frames.boxes_url(detection_id, detections)
    assert "/out" not in url and url.count("/") == 4, "one URL segment, no path"
    response = get(url)  # as a browser asks: gzip accepted
    assert response.headers["content-type"] == "application/json" and response.headers["content-encoding"] == "gzip"
    served = response.json()
    plain = get(url, {"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == served
    offsets, rows = served["offsets"], np.array(served["boxes"]).reshape(-1, 6)
    assert len(offsets) == info.frame_count + 1
    for index in range(info.frame_count):
        boxes, mine = detections.at(index), rows[offsets[index]:offsets[index + 1]]
        np.testing.assert_allclose(mine[:, :4], boxes.xyxy, atol=0.05)
        assert mine[:, 4].tolist() == boxes.score.astype(float).tolist(), "exact: the viewer's minimum score agrees"
        assert mine[:, 5].tolist() == boxes.cls.tolist()


def test_what_no_session_holds_is_served_only_while_among_the_last_registered(tmp_path):
    def boxes(n_frames: int) -> Detections:
        return Detections(np.array([0]), np.array([[1, 2, 3, 4]], np.float32), np.array([0.5], np.float32),
                          np.array([0]), {0: "a"}, n_frames, (64, 48))

    first = frames.boxes_url("first", boxes(3))  # held by nothing but the registry
    assert get(first).status_code == 200
    held = boxes(4)
    kept = frames.boxes_url("held", held)  # as a tab's session holds its detections
    for name in ("a", "b", "c", "d"):
        frames.boxes_url(name, boxes(5))
    gc.collect()
    assert get(first).status_code == 404, "dropped: a closed tab's detections are not kept alive"
    assert get(kept).json()["offsets"] == [0, 1, 1, 1, 1], "still held by a session: still served"


def test_a_video_that_went_away_after_it_was_registered_answers_one_line(tmp_path):
    video = write_video(tmp_path / "gone.mp4", sample_frames(3, start=300))
    info = replace(probe(video), path=tmp_path / "moved.mp4")  # as if moved before any reader opened it
    url = frames.frames_url(info)  # starts preparing frame 0 in the background: that fails too
    for index in (1, 0):
        response = get(f"{url}{index}.jpg")
        assert response.status_code == 500 and response.text == f"frame {index} could not be decoded"


def test_the_frame_a_move_from_python_shows_is_prepared_before_the_viewer_asks(tmp_path, monkeypatch):
    video = write_video(tmp_path / "moved.mp4", sample_frames(12, start=500))
    originals = [image for _, image in iter_frames(video)]
    monkeypatch.setitem(st.session_state, handshake.FRAME, 7)  # where the page's last move put the viewer
    url = frames.frames_url(info := probe(video))
    deadline = time.monotonic() + 30
    while not frames.prepared(info, 7):
        assert time.monotonic() < deadline, "frame 7 was never prepared"
        time.sleep(0.02)
    assert nearest_frame(decoded(get(f"{url}7.jpg?now")), originals) == 7


def test_a_page_waiting_for_its_viewers_frame_hears_when_that_frame_is_shown(sample_slice):
    """A viewer sent with ``announce`` POSTs ``<frame>/shown`` once it drew that frame: the wait for that
    frame ends then (another frame's or video's POST does not end it), and without one it ends at its timeout."""
    import concurrent.futures

    info = probe(sample_slice)
    url = frames.frames_url(info)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        start = time.monotonic()
        # two tabs open the same link: one gives up first (its viewer never answers), the other still hears
        gives_up = pool.submit(frames.wait_until_shown, info, 9, 0.3)
        waiting = pool.submit(frames.wait_until_shown, info, 9, 20.0)
        assert gives_up.result(timeout=5) is False
        assert asyncio.run(_post(f"{url}8/shown")).status_code == 204 and not waiting.done(), "another frame"
        assert asyncio.run(_post("/api/viewer/frames/nosuchvideo/9/shown")).status_code == 404
        assert asyncio.run(_post(f"{url}{info.frame_count}/shown")).status_code == 404, "a frame past the end"
        assert asyncio.run(_post(f"{url}{'9' * 4301}/shown")).status_code == 404, "more digits than Python converts"
        assert asyncio.run(_post(f"{url}9/shown")).status_code == 204
        assert waiting.result(timeout=5) is True and time.monotonic() - start < 5
    start = time.monotonic()
    assert frames.wait_until_shown(info, 9, 0.3) is False and 0.3 <= time.monotonic() - start < 2, "nobody answered"
    assert get(f"{url}9/shown").status_code in (404, 405), "a GET does not say it"


async def _post(url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=SERVER, base_url="http://127.0.0.1") as client:
        return await client.post(url)


def test_the_app_server_answers_404_under_the_prefix_not_its_page(tmp_path, shared_cache):
    """Streamlit answers its page, with 200, for a path no route takes: the catch-all route stops that
    (a path that climbs, encoded or not, is refused by Streamlit itself, 400, before any route)."""
    with streamlit_server(tmp_path, shared_cache) as base:
        def status(path: str) -> int:
            deadline = time.monotonic() + 30
            while True:
                try:
                    return urllib.request.urlopen(base + path, timeout=10).status
                except urllib.error.HTTPError as error:
                    return error.code
                except urllib.error.URLError:  # the port is open before the app answers
                    if time.monotonic() > deadline:
                        raise

        assert status("/some/page") == 200, "the app's own fallback, for comparison"
        for path in ("/api/viewer/frames/0123/0.jpg", "/api/viewer/boxes/x.json", "/api/viewer/x",
                     "/api/viewer/frames/0123/-1.jpg"):
            assert status(path) == 404, path
        for path in ("/api/viewer/frames/0123/..%2F..%2Fapp.py", "/api/viewer/frames/%2E%2E/%2E%2E/app.py",
                     "/api/viewer/frames/../../app.py"):
            assert status(path) == 400, path
