"""The Ray engine of ``python -m core batch``: decoding on CPU workers, detection in an actor pool,
results gathered by the driver (which then asserts and exports, as with the local engine)::

    driver ─ decode_video(source)    CPU task, a streaming generator: stage, probe, decode with PyAV;
       │                             yields the VideoInfo and file identity, then detector batches
       ├─ DetectorActor.detect(...)  one detector per GPU (num_gpus=1), CPU actors without GPUs;
       │                             any actor takes any shipment, so one long video uses them all
       └─ boxes in frame order ─> Detections (cached like detect_video's) ─> core.batch

Backpressure: a decode task pauses once ``SHIPMENTS_AHEAD`` of its shipments wait unclaimed, and the
driver claims one only for an idle actor, so the object store holds a few batches per video in
flight, whatever the length of the videos. Without ``RAY_ADDRESS`` a local Ray is started on
127.0.0.1 only, without a dashboard or job API (and stopped at the end); with it, the existing cluster
is joined (see docs/batch.md for runtime_env and what such a cluster must be).
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import ray

from core.backends import FrameBoxes
from core.batch.sources import BatchProgress, Detected, VideoSource, failure_message, identity_of, local_copy
from core.detect import StageClock, _batch_size, _cache_file, batches, cached_detections, keep_cached
from core.detections import Detections
from core.errors import UserError
from core.settings import DetectorSpec
from core.video import VideoInfo, iter_frames, probe

SHIPMENT_FRAMES = 32  # frames per actor call: amortises Ray's per-call cost when a CPU model runs batches of 1
SHIPMENTS_AHEAD = 2  # decoded shipments per video waiting for a detector
VIDEOS_PER_WORKER = 4  # videos decoding at once per detector: a GPU outruns one PyAV decoder
LOOPBACK = "127.0.0.1"  # the only address a local Ray listens on


@dataclass(frozen=True)
class WorkerDetector:
    """The workers' detector as the driver needs it: for the cache key and the batch size."""

    names: dict[int, str]
    fingerprint: str
    batch_size: int


@dataclass(frozen=True)
class Shipment:
    batches: list[np.ndarray]  # detector batches as decode_video cut them, each (B, H, W, 3) BGR
    decode_s: float
    damage: str = ""  # the last shipment's: frames that did not decode (iter_frames' on_damage), for the summary


class DetectorActor:
    """One detector, loaded on first use so that a bad model comes back as the DetectorError it is."""

    def __init__(self, spec: DetectorSpec):
        self._spec = spec

    @cached_property
    def detector(self):
        return self._spec.load()

    def describe(self) -> WorkerDetector:
        return WorkerDetector(self.detector.names, self.detector.fingerprint, self.detector.batch_size)

    def detect(self, shipment: Shipment, conf: float, classes: list[int] | None) -> tuple[list[FrameBoxes], float, float, str]:
        start = time.perf_counter()
        boxes = [frame for batch in shipment.batches for frame in self.detector.detect(batch, conf, classes)]
        return boxes, shipment.decode_s, time.perf_counter() - start, shipment.damage


def decode_video(source: VideoSource, worker: WorkerDetector, cache_dir: Path | None
                 ) -> Iterator[tuple[VideoInfo, list[int] | None] | Shipment]:
    """Stage and probe the video, yield its VideoInfo and the file's identity_of() before the probe hashed it, then its
    frames cut into the same detector batches :func:`detect_video` would use (so both engines give identical boxes)."""
    with local_copy(source, cache_dir) as path:
        identity = identity_of(source)  # this node's view: the driver's differs on another node, and then it is not kept
        info = probe(path)
        yield info, identity
        clock = StageClock()
        damage: list[str] = []
        frames = clock.timed("decode", (frame for _, frame in iter_frames(info, pixel_format="bgr24", on_damage=damage.append)))
        group: list[np.ndarray] = []
        for batch in batches(frames, _batch_size(worker, info)):
            group.append(np.stack(batch))
            if sum(map(len, group)) >= SHIPMENT_FRAMES:
                yield Shipment(group, clock.seconds.pop("decode", 0.0))
                group = []
        if group or damage:  # decoding is over: what it warned of goes with the last shipment (empty, if need be)
            yield Shipment(group, clock.seconds.pop("decode", 0.0), "; ".join(damage))


@dataclass(eq=False)
class _VideoRun:
    """The driver's view of one video in flight."""

    source: VideoSource
    generator: object  # ray.ObjectRefGenerator
    info: VideoInfo | None = None
    identity: list[int] | None = None
    boxes: dict[int, list[FrameBoxes]] = field(default_factory=dict)  # by shipment index
    sent: int = 0
    exhausted: bool = False  # no more shipments will come
    cached: Detections | None = None
    error: str = ""
    damage: str = ""
    decode_s: float = 0.0
    detect_s: float = 0.0

    @property
    def finished(self) -> bool:
        return self.exhausted and len(self.boxes) == self.sent

    def fail(self, exc: BaseException) -> None:
        self.error = self.error or failure_message(exc)
        self.stop()

    def stop(self) -> None:
        if not self.exhausted:
            ray.cancel(self.generator)  # its finally clause deletes a staged download
            self.exhausted = True


class RayEngine:
    def __init__(self, spec: DetectorSpec, workers: int | None = None):
        self.spec = spec
        self._started_ray = _connect()
        try:
            self.actors = _start_actors(spec, workers)
            self.worker = _describe(self.actors)
        except BaseException:
            self.close()
            raise
        self.names = self.worker.names
        self.fingerprint = self.worker.fingerprint
        self._decode = ray.remote(num_cpus=1)(decode_video).options(_generator_backpressure_num_objects=SHIPMENTS_AHEAD)

    def close(self) -> None:
        if self._started_ray:
            ray.shutdown()

    def detect(self, sources: Sequence[VideoSource], classes: list[int] | None, progress: BatchProgress) -> Iterator[Detected]:
        waiting = deque(sources)
        runs: list[_VideoRun] = []
        in_flight: dict[object, tuple[_VideoRun, int, object]] = {}  # result ref -> (run, shipment index, actor)
        idle = list(self.actors)
        cache_dir = _absolute(self.spec.cache_dir)
        while waiting or runs:
            while waiting and len(runs) < VIDEOS_PER_WORKER * len(self.actors):
                source = waiting.popleft()
                runs.append(_VideoRun(source, self._decode.remote(source, self.worker, cache_dir)))
            # Claim a shipment only for an idle actor (backpressure); a header is always welcome.
            by_generator = {id(run.generator): run for run in runs if not run.exhausted and (idle or run.info is None)}
            # fetch_local=False: a ready shipment stays where it was decoded until an actor reads it
            ready, _ = ray.wait([*in_flight, *(run.generator for run in by_generator.values())], num_returns=1,
                                fetch_local=False)
            if ready[0] in in_flight:
                run, index, actor = in_flight.pop(ready[0])
                idle.append(actor)
                self._collect(run, index, ready[0], progress)
            else:
                run = by_generator[id(ready[0])]
                shipment = self._advance(run, classes, progress)
                if shipment is not None:
                    actor = idle.pop()
                    in_flight[actor.detect.remote(shipment, self.spec.conf, classes)] = (run, run.sent, actor)
                    run.sent += 1
            for run in [run for run in runs if run.finished]:
                runs.remove(run)
                yield self._result(run, classes)

    def _advance(self, run: _VideoRun, classes: list[int] | None, progress: BatchProgress):
        """Take the next item of a video's generator: its header (probe result) or a shipment ref."""
        try:
            ref = next(run.generator)
        except StopIteration:
            run.exhausted = True
            return None
        if run.info is not None:
            return ref
        try:
            run.info, run.identity = ray.get(ref)
        except Exception as exc:  # the video cannot be staged or probed
            run.fail(exc)
            return None
        progress.probed(run.info.frame_count, run.source.relpath)
        run.cached = cached_detections(run.info, self.worker, self.spec.conf, classes, self.spec.cache_dir)
        if run.cached is not None:
            progress.detected(run.info.frame_count)
            run.stop()
        return None

    def _collect(self, run: _VideoRun, index: int, result, progress: BatchProgress) -> None:
        try:
            boxes, decode_s, detect_s, damage = ray.get(result)
        except Exception as exc:  # a decode or detector error on this video only
            run.boxes[index] = []
            run.fail(exc)
            return
        run.boxes[index] = boxes
        run.damage = run.damage or damage
        run.decode_s += decode_s
        run.detect_s += detect_s
        progress.detected(len(boxes))

    def _result(self, run: _VideoRun, classes: list[int] | None) -> Detected:
        if run.error:
            return Detected(run.source, error=run.error)
        if run.cached is not None:
            return Detected(run.source, run.info, run.cached, identity=run.identity)
        per_frame = [frame for index in range(run.sent) for frame in run.boxes[index]]
        detections = _detections(per_frame, run.info, self.names)
        detections = replace(detections, decode_warning=run.damage) if run.damage else detections
        keep_cached(detections, _cache_file(run.info, self.worker, self.spec.conf, classes, self.spec.cache_dir))
        return Detected(run.source, run.info, detections, decode_s=run.decode_s, detect_s=run.detect_s, identity=run.identity)


def _detections(per_frame: list[FrameBoxes], info: VideoInfo, names: dict[int, str]) -> Detections:
    """Boxes clipped to the frame and in canonical order, as :func:`core.detect.detect_video` stores them."""
    size = (info.width, info.height)
    bounds = np.asarray([*size, *size], np.float32)
    return Detections.from_frames([(np.clip(xyxy, 0, bounds), score, cls) for xyxy, score, cls in per_frame], names,
                                  image_size=size).in_canonical_order()


def _connect() -> bool:
    """Join the cluster the user named in ``RAY_ADDRESS``, or start a local Ray closed to the network;
    True when this call started one. Ray has no authentication: whoever reaches its ports runs code."""
    if ray.is_initialized():
        return False
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    if os.environ.get("RAY_ADDRESS", "").strip() not in ("", "local"):
        ray.init(**quiet)  # the user's explicit choice (docs/batch.md: what such a cluster must be)
        return False
    _start_loopback_ray(quiet)
    return True


def _start_loopback_ray(options: dict) -> None:
    """A new local Ray whose every server listens on 127.0.0.1 only, with no dashboard or job API.

    Ray's C++ servers bind 127.0.0.1 (not 0.0.0.0) when the node's address is the loopback one, but
    ``ray.init`` on Linux swaps a loopback ``_node_ip_address`` for the LAN address; with clusters
    off (Ray's own setting on macOS and Windows) it keeps 127.0.0.1. The result is checked, not
    trusted: a Ray that still names another address is stopped before any task runs.
    """
    from ray._private import ray_constants

    clusters = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, **options)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = clusters
    addresses = {ray.get_runtime_context().gcs_address.rsplit(":", 1)[0],
                 *(node["NodeManagerAddress"] for node in ray.nodes())}
    if addresses != {LOOPBACK}:
        ray.shutdown()
        raise UserError(f"The local Ray would listen on {', '.join(sorted(addresses - {LOOPBACK}))}, not only on "
                        f"{LOOPBACK}: refusing to run it (set RAY_ADDRESS to use a cluster you secured)")


def _start_actors(spec: DetectorSpec, workers: int | None) -> list:
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    on_gpu = gpus > 0 and spec.device != "cpu"
    count = workers or (gpus if on_gpu else max(1, cpus - 1))
    if on_gpu and count > gpus:
        raise UserError(f"--workers {count}: the Ray cluster has {gpus} GPUs, one detector each")
    if count >= cpus:
        raise UserError(f"--workers {count}: the Ray cluster has {cpus} CPUs; each detector takes one and at least "
                        "one must be left to decode")
    actor = ray.remote(DetectorActor).options(num_cpus=1, num_gpus=1 if on_gpu else 0, max_restarts=2)
    weights = str(_absolute(spec.weights)) if Path(spec.weights).is_file() else spec.weights
    spec = replace(spec, weights=weights, cache_dir=_absolute(spec.cache_dir))
    return [actor.remote(spec) for _ in range(count)]


def _describe(actors: list) -> WorkerDetector:
    """Load every detector now (a bad model fails here, once, as a UserError) and check they agree."""
    try:
        specs = ray.get([actor.describe.remote() for actor in actors])
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, UserError):
            raise exc.cause from None
        raise
    if len({spec.fingerprint for spec in specs}) > 1:
        raise UserError("The Ray workers load different detectors (mixed GPU and CPU nodes?): pin --device")
    return specs[0]


def _absolute(path: str | Path | None) -> Path | None:
    """Workers do not share the driver's working directory."""
    return None if path is None else Path(path).absolute()
