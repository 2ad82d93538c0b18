"""Push throughput: python bench/push.py [--frames 2000]

Exports a synthetic video (2 small JSON files per frame) and pushes it to a local S3-compatible
server (moto's server mode on 127.0.0.1, in this process) and to a local folder; prints files/s,
then the time of a second push that finds everything already there.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np


from core.lightly.push import push
from core.detections import Detections
from core.lightly.export import VideoPredictions, export_datasource
from core.flicker import FlickerIndex


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    import boto3

    boto3.client("s3").create_bucket(Bucket="bench")
    rng = np.random.default_rng(0)
    counts = rng.poisson(6, args.frames)
    xy = rng.uniform(0, 1800, (counts.sum(), 2))
    det = Detections(np.repeat(np.arange(args.frames), counts), np.concatenate([xy, xy + 60], 1), rng.uniform(0.1, 1, counts.sum()),
                     np.zeros(counts.sum()), {0: "car"}, args.frames, (1920, 1080))
    with tempfile.TemporaryDirectory() as tmp:
        export_datasource(tmp, [VideoPredictions("drive.mp4", det, FlickerIndex.from_detections(det).evaluate(0.8, 0.6))], task="t")
        for label, url in (("moto S3 server", "s3://bench/lightly"), ("local folder", str(Path(tmp) / "bucket"))):
            first = push(tmp, url, workers=args.workers)
            start = time.perf_counter()
            second = push(tmp, url, workers=args.workers)
            print(f"{label:15s}: {len(first.uploaded)} files in {first.seconds:.2f} s = "
                  f"{len(first.uploaded) / first.seconds:,.0f} files/s; re-push skipped {len(second.skipped)} in "
                  f"{time.perf_counter() - start:.2f} s")
    server.stop()


if __name__ == "__main__":
    main()
