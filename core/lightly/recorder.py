"""A local stand-in for the Lightly API behind ``schedule --dry-run``: it answers the calls the
``lightly`` 1.5.26 client makes to schedule a run, with placeholder ids, and records every request,
so the printed requests are exactly what a real run would send. Nothing leaves the machine."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

DATASET_ID = "64a0f0e0c0b0a09080706050"
CONFIG_ID = "64a0f0e0c0b0a09080706051"
RUN_ID = "64a0f0e0c0b0a09080706052"


class LightlyRecorder:
    """``with LightlyRecorder() as recorder:`` point the client at ``recorder.url``; then read
    ``recorder.requests`` (method, path, query without the token, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # the dry run prints its own summary
                pass

            def _answer(self, method: str) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                owner.requests.append({"method": method, "path": url.path, "body": body,
                                       "query": {k: v for k, v in query.items() if k != "token"},
                                       "token": (query.get("token") or [None])[0]})
                status, payload = owner.route(method, url.path, query)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def do_PUT(self):
                self._answer("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LightlyRecorder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, path: str, query: dict) -> tuple[int, object]:
        """The answers scheduling needs: a new dataset, datasources set, a worker config, a run."""
        if path == "/v1/versions/pip/minimum":
            return 200, "1.0.0"
        if method == "GET" and re.fullmatch(r"/v1/datasets/query/name/([^/]+)", path):
            return 200, []
        if method == "POST" and path == "/v1/datasets":
            return 201, {"id": DATASET_ID}
        if method == "PUT" and path == f"/v1/datasets/{DATASET_ID}/datasource":
            return 200, {}
        if method == "POST" and path == "/v1/docker/worker/config/vX":
            return 201, {"id": CONFIG_ID}
        if method == "POST" and path == f"/v1/datasets/{DATASET_ID}/docker/worker/schedule":
            return 201, {"id": RUN_ID}
        return 404, {"code": "NOT_FOUND", "error": f"{method} {path} is not faked"}
