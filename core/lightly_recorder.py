"""A local stand-in for the Lightly API: answers the calls the ``lightly`` 1.5.26 client makes to
schedule a run (and to follow it), with placeholder ids, and records every request it gets.

``schedule --dry-run`` runs the real client against it, so the printed requests are exactly what
a real run would send; the tests use it as the fake at the network edge."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

GOOD_TOKEN = "0123456789abcdef-good-token"  # the token a recorder built with check_token=True accepts
DATASET_ID = "64a0f0e0c0b0a09080706050"
CONFIG_ID = "64a0f0e0c0b0a09080706051"
RUN_ID = "64a0f0e0c0b0a09080706052"
TAG_ID = "64a0f0e0c0b0a09080706054"


class LightlyRecorder:
    def __init__(self, existing_datasets: list[str] | None = None, worker_state: str | None = None,
                 selected: list[str] | None = None, check_token: bool = True):
        self.requests: list[dict] = []
        self.check_token = check_token
        self.existing = set(existing_datasets or [])
        self.worker_state = worker_state  # None: no worker picked the run up yet
        self.selected = selected or []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
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

    def route(self, method: str, path: str, query: dict):
        if path == "/v1/versions/pip/minimum":
            return 200, "1.0.0"
        if self.check_token and (query.get("token") or [None])[0] != GOOD_TOKEN:
            return 401, {"code": "UNAUTHORIZED", "error": "invalid token"}
        match = re.fullmatch(r"/v1/datasets/query/name/([^/]+)", path)
        if method == "GET" and match:
            name = match.group(1)
            return 200, [self.dataset(name)] if name in self.existing else []
        if method == "POST" and path == "/v1/datasets":
            return 201, {"id": DATASET_ID}
        if method == "PUT" and path == f"/v1/datasets/{DATASET_ID}/datasource":
            return 200, {}
        if method == "POST" and path == "/v1/docker/worker/config/vX":
            return 201, {"id": CONFIG_ID}
        if method == "POST" and path == f"/v1/datasets/{DATASET_ID}/docker/worker/schedule":
            return 201, {"id": RUN_ID}
        if method == "GET" and path == f"/v1/docker/runs/schedule/{RUN_ID}" and self.worker_state:
            return 200, {"id": "64a0f0e0c0b0a09080706053", "userId": "user", "dockerVersion": "2.12.0",
                         "state": self.worker_state, "createdAt": 0, "lastModifiedAt": 0, "message": "done"}
        if method == "GET" and path == f"/v1/datasets/{DATASET_ID}/docker/worker/schedule":
            return 200, [{"id": RUN_ID, "datasetId": DATASET_ID, "configId": CONFIG_ID, "priority": "MID",
                          "runsOn": [], "state": "OPEN", "createdAt": 0, "lastModifiedAt": 0}]
        tag = {"id": TAG_ID, "datasetId": DATASET_ID, "prevTagId": None, "name": "initial-tag", "bitMaskData": "0x3",
               "totSize": len(self.selected), "createdAt": 0}
        if method == "GET" and path == f"/v1/datasets/{DATASET_ID}/tags":
            return 200, [tag]
        if method == "GET" and path == f"/v1/datasets/{DATASET_ID}/tags/{TAG_ID}":
            return 200, tag
        if method == "GET" and path == f"/v1/datasets/{DATASET_ID}/tags/{TAG_ID}/export/basic/filenames":
            if int((query.get("pageOffset") or ["0"])[0]) > 0:
                return 200, ""
            form = (query.get("fileNameFormat") or ["NAME"])[0]
            prefix = {"NAME": "", "REDIRECTED_READ_URL": "https://signed.example/", "DATASOURCE_FULL": "s3://bucket/input/"}[form]
            return 200, "\n".join(prefix + name for name in self.selected)
        return 404, {"code": "NOT_FOUND", "error": f"{method} {path} is not faked"}

    @staticmethod
    def dataset(name: str) -> dict:
        return {"id": DATASET_ID, "name": name, "userId": "user", "type": "Videos", "nSamples": 0, "sizeInBytes": 0,
                "createdAt": 0, "lastModifiedAt": 0}
