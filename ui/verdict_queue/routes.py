"""Verdicts over HTTP: the Verdicts page's queue records each verdict with one small POST to a route
of the app's own server (app.py mounts :func:`routes`) instead of a rerun of the whole page, so the
next queued frame is on screen at once and the page's figures catch up on the next rerun.

Only a queue a page registered is served, named by an unguessable token (never by a path or a
video key alone: another site's page cannot guess it, so it cannot post verdicts through the
reviewer's browser). The token stands for the video's content key, its frame count and the
annotator the page shows; the body carries the frame, the verdict, a note and the video's key, each checked.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.assertions import FLICKER
from core.errors import UserError
from core.verdicts import VERDICTS, VerdictStore

PREFIX = "/api/verdict-queue"
MAX_BODY = 8 * 1024  # a verdict with the longest note is well under 4 KB
BODY_SECONDS = 10.0  # a verdict's body arrives in milliseconds; one still coming after this is refused
NOTE_CHARS = 500  # what the queue's note field takes
QUEUES = 256  # queues served at once (a tab's queue per video); the least recently registered go first
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class QueueTarget:
    """Where a queue's verdicts go: ``store`` under the video's content key ``video`` (frames
    0..n_frames-1), given by ``annotator``; a verdict on one of ``plan_frames`` (the plan the tab shows)
    is stored as drawn by it, which the estimates count."""
    store: VerdictStore
    video: str
    n_frames: int
    annotator: str
    plan_frames: frozenset[int] = frozenset()


class _Registry:
    """The last ``size`` queues registered, by token, shared by every tab and the routes' threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._targets: OrderedDict[str, QueueTarget] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, token: str, target: QueueTarget) -> None:
        with self._lock:
            self._targets[token] = target
            self._targets.move_to_end(token)
            while len(self._targets) > self.size:
                self._targets.popitem(last=False)

    def get(self, token: str) -> QueueTarget | None:
        with self._lock:
            return self._targets.get(token)


_queues = _Registry(QUEUES)


def new_token() -> str:
    return secrets.token_urlsafe(18)


def queue_url(token: str, target: QueueTarget) -> str:
    """Where the queue posts its verdicts (``/verdict``) and undos (``/undo``), serving ``target``
    under ``token`` from now on (registering again replaces it: a new annotator, other frames)."""
    _queues.put(token, target)
    return f"{PREFIX}/{token}"


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


async def _request_json(request: Request) -> dict:
    """The body as a JSON object: sent as application/json (which another site's page cannot send
    without the server's consent), at most MAX_BODY bytes however it is framed."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise _Refused(415, "send the verdict as application/json")
    try:  # a body that never ends would hold the request (and its connection) for as long as it likes
        body = await asyncio.wait_for(_bounded_body(request), BODY_SECONDS)
    except asyncio.TimeoutError:
        raise _Refused(408, f"the verdict did not arrive within {BODY_SECONDS} s") from None
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested a thousand deep in 8 KB
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise _Refused(400, "the body is not a JSON object")
    return value


async def _bounded_body(request: Request) -> bytearray:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _Refused(413, f"a verdict takes at most {MAX_BODY} bytes")
    return body


def checked_verdict(body: dict, target: QueueTarget) -> tuple[int, str, str]:
    """``(frame, verdict, note)`` of a posted verdict, or _Refused naming what is wrong."""
    _check_video(body, target)
    frame, verdict, note = body.get("frame"), body.get("verdict"), body.get("note", "")
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < target.n_frames:
        raise _Refused(422, f"frame must be a whole number from 0 to {target.n_frames - 1}")
    if verdict not in VERDICTS:
        raise _Refused(422, f"verdict must be one of {', '.join(VERDICTS)}")
    if not isinstance(note, str) or len(note) > NOTE_CHARS or not _encodable(note):
        raise _Refused(422, f"a note is text of at most {NOTE_CHARS} characters")
    return frame, verdict, note.strip()


def _check_video(body: dict, target: QueueTarget) -> None:
    """The video the page gave the verdict on (its content key) must be the one its token serves
    now: a tab that moved on to another video registers its token anew, and a request sent just
    before would otherwise land on the new video's frame of that number."""
    if body.get("video") != target.video:
        raise _Refused(409, "this page shows another video than its queue now serves: reload the page")


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (JSON can carry a lone surrogate, which UTF-8 cannot store)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _target(request: Request) -> QueueTarget:
    target = _queues.get(request.path_params["token"])
    if target is None:  # never registered, or forgotten (a server restart, many tabs since)
        raise _Refused(404, "this review queue is no longer open here: reload the page")
    return target


async def _verdict(request: Request) -> Response:
    try:
        target = _target(request)
        frame, verdict, note = checked_verdict(await _request_json(request), target)
        await run_in_threadpool(target.store.set, target.video, frame, verdict, annotator=target.annotator, note=note,
                                drawn=frame in target.plan_frames)
    except _Refused as refused:
        return _error(refused.status, str(refused))
    except UserError as failure:  # the store is damaged or locked: one line for the page to show
        return _error(503, str(failure))
    return JSONResponse({"frame": frame, "verdict": verdict}, headers=NO_STORE)


async def _undo(request: Request) -> Response:
    """Revert the annotator's latest change on this video (with no name: the changes given with
    none), as the page's Undo does; answers the frame reverted, its flicker verdict now (null: none)
    and who judged it over since (null: nobody; their verdict stays)."""
    try:
        target = _target(request)
        _check_video(await _request_json(request), target)
        answer = await run_in_threadpool(_undo_latest, target)  # SQLite blocks: never in the event loop
    except _Refused as refused:
        return _error(refused.status, str(refused))
    except UserError as failure:
        return _error(503, str(failure))
    return JSONResponse(answer, headers=NO_STORE)


def _undo_latest(target: QueueTarget) -> dict:
    undone = target.store.undo(target.video, target.annotator)
    if undone is None:
        return {"frame": None, "verdict": None, "judged_since_by": None}
    # the queue shows flicker's verdicts: a change on another assertion (given on Review) reads as its frame's
    verdict = undone.verdict if undone.assertion == FLICKER else target.store.all(target.video).get(undone.frame)
    return {"frame": undone.frame, "verdict": verdict, "judged_since_by": undone.judged_since_by}


async def _not_found(_request: Request) -> Response:
    return _error(404, "no such route")


def routes() -> list[Route]:
    """The routes for ``st.App(routes=...)``. The last one answers 404 for anything else under the
    prefix (Streamlit would answer its page, with 200, for a path no route takes)."""
    return [Route(PREFIX + "/{token}/verdict", _verdict, methods=["POST"]),
            Route(PREFIX + "/{token}/undo", _undo, methods=["POST"]),
            Route(PREFIX + "/{rest:path}", _not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
