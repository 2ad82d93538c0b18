"""Time and peak memory of the frame embeddings local selection reads (the offline HOG features),
before and after their projection stopped being a full SVD. python bench/embeddings.py [--repeat 4]

The sample's 795 frames of HOG features (5,940 floats each) are stacked ``--repeat`` times (4: 3,180
frames, as a 5-minute video at 10 fps) and projected on 32 principal axes by each method, each in
a fresh process so that its peak resident memory is its own."""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import numpy as np

METHODS = ("full SVD (before)", "Gram or covariance eigenvectors (now)")


def _features(repeat: int) -> np.ndarray:
    import cv2

    from core.lightly.selection import EMBEDDING_SIZE
    from core.paths import SAMPLE_VIDEO
    from core.video import iter_frames, probe

    width, height = EMBEDDING_SIZE
    hog = cv2.HOGDescriptor((width, height), (16, 16), (8, 8), (8, 8), 9)
    one = np.stack([hog.compute(cv2.cvtColor(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA),
                                             cv2.COLOR_RGB2GRAY)).ravel() for _, frame in iter_frames(probe(SAMPLE_VIDEO))])
    return np.concatenate([one] * repeat)


def _measure(method: str, features: np.ndarray, queue) -> None:
    from core.lightly.selection import _principal_projection

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    centred = features - features.mean(axis=0)
    if method == METHODS[0]:
        _, _, axes = np.linalg.svd(centred, full_matrices=False)
        centred @ axes[:32].T
    else:
        _principal_projection(centred, 32)
    queue.put((time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    features = _features(args.repeat)
    print(f"{features.shape[0]:,} frames x {features.shape[1]:,} features")
    context = multiprocessing.get_context("fork")  # the features are in the child without a copy
    for method in METHODS:
        queue = context.Queue()
        child = context.Process(target=_measure, args=(method, features, queue))
        child.start()
        seconds, grown = queue.get()
        child.join()
        print(f"{method:40s} {seconds:6.2f} s   peak memory +{grown:,.0f} MB")


if __name__ == "__main__":
    main()
