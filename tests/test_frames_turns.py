"""Seeks stay cheap on the server (ui/viewer/frames.py): the frame under the hand never waits for a
fetch ahead of that same frame stuck behind others, and a request the viewer dropped before its turn
to decode is never decoded. A reader made busy by holding its lock, as a long decode would."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
from starlette.applications import Starlette

from conftest import free_port, sample_frames, write_video
from core.video import iter_frames, probe
from test_frames_http import SERVER, decoded, nearest_frame
from ui import resources
from ui.viewer import frames


@pytest.fixture
def video(tmp_path):
    path = write_video(tmp_path / "walk.mp4", sample_frames(12, start=200))
    return probe(path), [image for _, image in iter_frames(path)]


def poll(condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_the_frame_under_the_hand_does_not_wait_for_a_fetch_ahead_of_it_stuck_on_a_busy_reader(video):
    info, originals = video
    url = frames.frames_url(info)
    busy = resources.frame_reader(info)._lock  # the frames fetched ahead: their reader in the middle of a decode

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=SERVER, base_url="http://127.0.0.1") as client:
            ahead = asyncio.create_task(client.get(f"{url}7.jpg"))
            while not frames._jpegs.has(info, 7):  # the fetch ahead is waiting for its reader
                await asyncio.sleep(0.01)
            try:
                now = await asyncio.wait_for(client.get(f"{url}7.jpg?now"), 30)
                assert nearest_frame(decoded(now), originals) == 7
                assert not ahead.done(), "the fetch ahead still waits for its reader"
            finally:
                busy.release()
            assert (await ahead).content == now.content, "the same JPEG once it is served"

    busy.acquire()
    asyncio.run(scenario())


class _Server:
    """The routes under uvicorn (as in the app), in a thread: a client that closes its connection is
    seen as gone, as a viewer's aborted fetch is."""

    def __init__(self) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(Starlette(routes=frames.routes()), host="127.0.0.1",
                                                    port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        poll(lambda: self.server.started, "the server")
        return self

    def __exit__(self, *_):
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def send(self, path: str) -> socket.socket:
        """A GET whose answer is read later (or never: closing the socket drops it)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        return sock

    def connections(self) -> int:
        return len(self.server.server_state.connections)

    def requests(self) -> int:
        """Connections whose request the server has read (and is answering)."""
        return sum(getattr(connection, "cycle", None) is not None for connection in self.server.server_state.connections)


def answer(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_fetches_ahead_dropped_while_waiting_for_their_turn_are_never_decoded(video):
    info, originals = video
    url = frames.frames_url(info)
    busy = resources.frame_reader(info)._lock
    with _Server() as server:
        busy.acquire()
        try:
            decoding = [server.send(f"{url}{index}.jpg") for index in (3, 4)]  # their turn: on the reader
            poll(lambda: frames._jpegs.has(info, 3) and frames._jpegs.has(info, 4), "the first two to reach the reader")
            dropped = [server.send(f"{url}{index}.jpg") for index in (5, 6)]  # waiting for a turn...
            poll(lambda: server.requests() == 4, "the server to read all four")
            for sock in dropped:  # ...when the viewer drops them (the hand moved on)
                sock.close()
            poll(lambda: server.connections() == 2, "the server to see them go")
        finally:
            busy.release()
        for sock, index in zip(decoding, (3, 4)):
            status, body = answer(sock)
            assert status == 200 and nearest_frame(decoded(httpx.Response(200, content=body, headers={
                "content-type": "image/jpeg"})), originals) == index
        status, _ = answer(server.send(f"{url}7.jpg"))  # after those two in the same lane
        assert status == 200
        assert not frames._jpegs.has(info, 5) and not frames._jpegs.has(info, 6), "the dropped ones were not decoded"
