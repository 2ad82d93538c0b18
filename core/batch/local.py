"""The local batch engine: one detector in this process, videos one after the other (decode
overlaps inference inside :func:`core.detect.detect_video`)."""
from __future__ import annotations

import warnings
from typing import Iterator, Sequence

from core.batch.sources import BatchProgress, Detected, VideoSource, failure_message, identity_of, local_copy
from core.detect import Progress
from core.settings import DetectorSpec
from core.video import TruncatedVideoWarning, probe


class LocalEngine:
    """One detector in this process; videos one after the other (decode overlaps inference inside
    :meth:`DetectorSpec.detect`)."""

    def __init__(self, spec: DetectorSpec):
        self.spec = spec
        self.detector = spec.load()
        self.names = self.detector.names
        self.fingerprint = self.detector.fingerprint

    def detect(self, sources: Sequence[VideoSource], classes: list[int] | None, progress: BatchProgress) -> Iterator[Detected]:
        for source in sources:
            yield self._detect_one(source, classes, progress)

    def _detect_one(self, source: VideoSource, classes: list[int] | None, progress: BatchProgress) -> Detected:
        last = Progress(0, 0, 0.0, 0.0)

        def update(current: Progress) -> None:
            nonlocal last
            progress.detected(current.done - last.done)
            last = current

        try:
            with local_copy(source, self.spec.cache_dir) as path, warnings.catch_warnings():
                # what the probe and decoding warn of goes in the video's row (the report, summary.csv): said once
                warnings.simplefilter("ignore", TruncatedVideoWarning)
                identity = identity_of(source)  # before the probe hashes it: the driver checks it is the same after
                info = probe(path)
                progress.probed(info.frame_count, source.relpath)
                detections = self.spec.detect(info, self.detector, update)
        except Exception as exc:  # one bad video must not stop the batch
            return Detected(source, error=failure_message(exc))
        stage_seconds = {name: last.done / fps for name, fps in last.stage_fps.items()}
        return Detected(source, info, detections, decode_s=stage_seconds.get("decode", 0.0),
                        detect_s=stage_seconds.get("prepare", 0.0) + stage_seconds.get("infer", 0.0), identity=identity)

    def close(self) -> None:
        pass
