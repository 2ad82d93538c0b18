"""The fake Lightly API for tests: the dry-run recorder plus what tests need beyond scheduling: a
token check, datasets that already exist, worker run states and a finished run's selected frames.
Request shapes were recorded from the real ``lightly`` 1.5.26 client."""
from __future__ import annotations

import re

from core.lightly.recorder import CONFIG_ID, DATASET_ID, RUN_ID, LightlyRecorder

GOOD_TOKEN = "0123456789abcdef-good-token"
TAG_ID = "64a0f0e0c0b0a09080706054"
__all__ = ["CONFIG_ID", "DATASET_ID", "RUN_ID", "GOOD_TOKEN", "TAG_ID", "FakeLightly"]


class FakeLightly(LightlyRecorder):
    def __init__(self, existing_datasets: list[str] | None = None, worker_state: str | None = None,
                 selected: list[str] | None = None, failing: int | None = None):
        super().__init__()
        self.failing = failing  # an HTTP status every call with a good token gets
        self.existing = set(existing_datasets or [])
        self.worker_state = worker_state  # None: no worker picked the run up yet
        self.selected = selected or []

    def route(self, method: str, path: str, query: dict):
        if path == "/v1/versions/pip/minimum":
            return 200, "1.0.0"
        if (query.get("token") or [None])[0] != GOOD_TOKEN:
            return 401, {"code": "UNAUTHORIZED", "error": "invalid token"}
        if self.failing:
            return self.failing, {"code": "INTERNAL_SERVER_ERROR", "error": "the database is down for maintenance"}
        match = re.fullmatch(r"/v1/datasets/query/name/([^/]+)", path)
        if method == "GET" and match and match.group(1) in self.existing:
            return 200, [self.dataset(match.group(1))]
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
        return super().route(method, path, query)

    @staticmethod
    def dataset(name: str) -> dict:
        return {"id": DATASET_ID, "name": name, "userId": "user", "type": "Videos", "nSamples": 0, "sizeInBytes": 0,
                "createdAt": 0, "lastModifiedAt": 0}
