"""Local selection: run a Lightly selection config offline with Lightly's open selection engine
(``lightly_mundig``), on the per-frame inputs the tutorial's config names.

Inputs per frame:

* ``EMBEDDINGS``: the detector's own features pooled per frame (Ultralytics' ``embed``) or, for the
  offline HOG detector, the HOG descriptor of the frame shrunk to 128x96; either way projected on
  the top 32 principal components over the video and L2-normalised.
* ``SCORES`` ``objectness_least_confidence``: Lightly's object-detection scorer, ``1 - mean(score)``
  over the frame's boxes, 0 for a frame without boxes.
* ``METADATA`` ``flickering``: the exported flickering value (1.0 / 0.5, or 0.5 + 0.5 x score).
* ``PREDICTIONS``: the frame's class distribution (share of its boxes per class), for BALANCE.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from core.bounded import inert_cell, read_capped
from core.detect import batches
from core.detections import Detections
from core.errors import SelectionError, UserError
from core.flicker import FlickerResult
from core.lightly.config import LEAST_CONFIDENCE, build_selection_config
from core.lightly.datasource import FLICKERING_KEY, frame_name
from core.lightly.export import flickering_values
from core.sources import frame_bar
from core.video import VideoInfo, iter_frames
from core.words import counted

EMBEDDING_SIZE = (128, 96)  # width, height of the frame the descriptor is computed on
EMBEDDING_DIMS = 32


@dataclass(frozen=True)
class FrameInputs:
    embeddings: np.ndarray  # (n, d) float32
    scores: dict[str, np.ndarray]  # name -> (n,)
    metadata: dict[str, np.ndarray]  # key -> (n,)
    class_distributions: np.ndarray  # (n, n_classes), rows sum to 1 (or 0 for empty frames)
    class_names: list[str]

    @property
    def n(self) -> int:
        return len(self.embeddings)


def objectness_least_confidence(detections: Detections) -> np.ndarray:
    """Lightly's ``objectness_least_confidence`` for object detection: ``1 - mean(score)`` of the
    frame's boxes, 0 for a frame without boxes."""
    counts = detections.counts_per_frame()
    sums = np.bincount(detections.frame, weights=detections.score, minlength=detections.n_frames)
    return np.where(counts > 0, 1.0 - sums / np.maximum(counts, 1), 0.0)


def class_distributions(detections: Detections) -> tuple[np.ndarray, list[int]]:
    classes = sorted(detections.names)
    column = {c: k for k, c in enumerate(classes)}
    table = np.zeros((detections.n_frames, len(classes)))
    if len(detections):
        np.add.at(table, (detections.frame, [column[int(c)] for c in detections.cls]), 1.0)
    totals = table.sum(axis=1, keepdims=True)
    return np.divide(table, totals, out=np.zeros_like(table), where=totals > 0), classes


def frame_embeddings(*videos: str | Path | VideoInfo, detector=None, dims: int = EMBEDDING_DIMS,
                     progress_bar: bool = False) -> np.ndarray:
    """Per-frame embeddings of one or more videos (frames in order, videos one after the other),
    projected on their top principal components over all frames and L2-normalised.

    Features: the detector's own, pooled per frame, when it has them (``embed``: Ultralytics
    models); otherwise the HOG descriptor of the frame shrunk to 128x96 (the offline detector's
    feature space). ``progress_bar``: a bar of the frames read, on stderr (on a terminal only)."""
    own = detector is not None and hasattr(detector, "embed")
    frames = _frames_of(videos, "bgr24" if own else "rgb24")
    if progress_bar:
        frames = frame_bar("embed frames", frames, sum(v.frame_count for v in videos if isinstance(v, VideoInfo)) or None)
    if own:
        features = np.concatenate([detector.embed(batch) for batch in batches(frames, 16)])
    else:
        width, height = EMBEDDING_SIZE
        hog = cv2.HOGDescriptor((width, height), (16, 16), (8, 8), (8, 8), 9)
        features = np.stack([
            hog.compute(cv2.cvtColor(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA),
                                     cv2.COLOR_RGB2GRAY)).ravel()
            for frame in frames])
    projected = _principal_projection(features - features.mean(axis=0), dims)
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    return (projected / np.maximum(norms, 1e-12)).astype(np.float32)


EMBEDDINGS_CACHE_VERSION = "1"


def cached_frame_embeddings(videos: Sequence[VideoInfo], detector=None, progress_bar: bool = False) -> np.ndarray:
    """:func:`frame_embeddings` of these videos, kept in the cache by their content keys and the features' identity:
    on the sample, 6 to 15 s of every ``select`` rerun went to the same embeddings. An entry that is unreadable or
    not of these frames' shape is computed again."""
    from core import paths

    features = detector.fingerprint if detector is not None and hasattr(detector, "embed") else \
        f"hog:cv{cv2.__version__}:{EMBEDDING_SIZE}"
    parts = [EMBEDDINGS_CACHE_VERSION, features, str(EMBEDDING_DIMS),
             *(f"{v.fingerprint}:{v.frame_count}:{v.rotation}:{v.reordered}:{v.stream}" for v in videos)]
    path = paths.cache_dir() / "embeddings" / f"{hashlib.blake2b('|'.join(parts).encode(), digest_size=16).hexdigest()}.npz"
    n = sum(v.frame_count for v in videos)
    try:  # a regular file of at most the size these embeddings take (a FIFO planted there would block np.load)
        entry = read_capped(path, n * EMBEDDING_DIMS * 4 + 65_536, "Embeddings cache entry", follow_symlinks=False)
        with np.load(io.BytesIO(entry), allow_pickle=False) as stored:
            embeddings = stored["embeddings"]
        if embeddings.dtype == np.float32 and embeddings.ndim == 2 and len(embeddings) == n \
                and 0 < embeddings.shape[1] <= EMBEDDING_DIMS:
            paths.mark_used(path)
            return embeddings
    except (UserError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # none yet, or damaged: computed again below
    embeddings = frame_embeddings(*videos, detector=detector, progress_bar=progress_bar)
    try:
        paths.write_atomic(path, lambda f: np.savez(f, embeddings=embeddings))
        paths.prune_results(path)
    except (OSError, UserError):  # a read-only cache, or something not a file at the entry's path, only costs speed
        pass
    return embeddings


def _principal_projection(centred: np.ndarray, dims: int) -> np.ndarray:
    """The rows of ``centred`` on its top ``dims`` principal axes (what the first ``dims`` of an SVD
    give, each axis up to its sign), from the eigenvectors of the smaller of its Gram and covariance
    matrices. A full SVD took 1.1 GB for 3,180 frames of HOG features (5,940 each) to keep 32 axes;
    this holds one 3,180 x 3,180 matrix (or 5,940 x 5,940, past that many frames) beside the features
    (bench/embeddings.py)."""
    from scipy.linalg import eigh

    n, d = centred.shape
    dims = min(dims, n, d)
    gram = n <= d  # the rows' Gram matrix: its eigenvectors scaled by the singular values are the projection
    square = (centred @ centred.T if gram else centred.T @ centred).astype(np.float64)  # else the covariance: the axes
    # only the top eigenpairs, in ascending order (a full eigh of the 3,180 x 3,180 matrix held 4x the memory)
    values, vectors = eigh(square, subset_by_index=[len(square) - dims, len(square) - 1], driver="evr",
                           overwrite_a=True, check_finite=False)
    values, vectors = values[::-1], vectors[:, ::-1]
    return vectors * np.sqrt(np.clip(values, 0.0, None)) if gram else centred @ vectors


def _frames_of(videos, pixel_format: str):
    return (frame for video in videos for _, frame in iter_frames(video, pixel_format=pixel_format))


def build_inputs(detections: Detections, metadata: Mapping[str, np.ndarray], embeddings: np.ndarray) -> FrameInputs:
    """What a config's strategies read, per frame: embeddings, Lightly's least-confidence score, the
    export's metadata (``flickering`` and any sibling assertion's key) and class distributions."""
    lengths = {len(embeddings), detections.n_frames, *(len(values) for values in metadata.values())}
    if len(lengths) != 1:
        raise SelectionError(f"{len(embeddings)} embeddings, metadata of {sorted(len(v) for v in metadata.values())} "
                             f"frames and {detections.n_frames} frames: they must agree")
    distributions, classes = class_distributions(detections)
    return FrameInputs(embeddings, {LEAST_CONFIDENCE: objectness_least_confidence(detections)},
                       {key: np.asarray(values, np.float64) for key, values in metadata.items()}, distributions,
                       [detections.names[c] for c in classes])


def _input_values(entry: dict, k: int, inputs: FrameInputs) -> tuple[str, np.ndarray]:
    source = entry.get("input") or {}
    kind = source.get("type")
    if kind == "EMBEDDINGS":
        return kind, inputs.embeddings
    if kind == "SCORES":
        score = source.get("score")
        if score not in inputs.scores:
            raise SelectionError(f"strategies[{k}]: score {score!r} is not available locally "
                                 f"(available: {', '.join(inputs.scores)})")
        return kind, inputs.scores[score]
    if kind == "METADATA":
        key = source.get("key")
        if key not in inputs.metadata:
            raise SelectionError(f"strategies[{k}]: metadata {key!r} is not available locally "
                                 f"(available: {', '.join(inputs.metadata)})")
        return kind, inputs.metadata[key]
    if kind == "PREDICTIONS":
        return kind, inputs.class_distributions
    if kind == "RANDOM":
        seed = source.get("random_seed", 0)
        if seed is not None and seed < 0:  # numpy's generator takes none (a ValueError's traceback); Lightly's takes any
            raise SelectionError(f"strategies[{k}]: random_seed {seed} is negative, which the local engine cannot seed")
        return kind, np.random.default_rng(seed).random(inputs.n)
    raise SelectionError(f"strategies[{k}]: input type {kind!r} is not supported locally")


def _balance_target(strategy: dict, k: int, inputs: FrameInputs) -> list[float]:
    target = strategy.get("target")
    if not isinstance(target, dict) or not target:
        raise SelectionError(f"strategies[{k}]: BALANCE needs a target mapping class names to shares")
    unknown = sorted(set(target) - set(inputs.class_names))
    if unknown:
        raise SelectionError(f"strategies[{k}]: unknown classes {unknown} in the BALANCE target")
    if not all(isinstance(share, (int, float)) and not isinstance(share, bool) and math.isfinite(share)
               for share in target.values()):  # Lightly's config check lets text through; float() raised here
        raise SelectionError(f"strategies[{k}]: the BALANCE target's shares must be numbers")
    return [float(target.get(name, 0.0)) for name in inputs.class_names]


def make_selection(config: dict, inputs: FrameInputs):
    """Translate a Lightly selection config into a ``lightly_mundig.Selection``. Every part it
    cannot run is reported, never dropped."""
    import lightly_mundig

    strategies = config.get("strategies")
    if not isinstance(strategies, list) or not strategies:
        raise SelectionError("The selection config needs at least one strategy")
    selection = lightly_mundig.Selection()
    for k, entry in enumerate(strategies):
        if not isinstance(entry, dict):
            raise SelectionError(f"strategies[{k}] must be a mapping with input and strategy")
        kind, values = _input_values(entry, k, inputs)
        strategy = entry.get("strategy") or {}
        strength = 1.0 if strategy.get("strength") is None else float(strategy["strength"])  # null: Lightly's default
        extra = sorted(set(strategy) - {"type", "strength", "stopping_condition_minimum_distance", "target"})
        if extra:
            raise SelectionError(f"strategies[{k}]: options {extra} are not supported locally")
        method = strategy.get("type")
        if method == "DIVERSITY" and kind == "EMBEDDINGS":
            selection.add_diversifying_strategy(values, strength, strategy.get("stopping_condition_minimum_distance"))
        elif method == "WEIGHTS" and kind in ("SCORES", "METADATA", "RANDOM"):
            selection.add_weighting_strategy(np.asarray(values, np.float64), strength)
        elif method == "BALANCE" and kind == "PREDICTIONS":
            selection.add_balancing_strategy(values.tolist(), _balance_target(strategy, k, inputs), strength)
        else:
            raise SelectionError(f"strategies[{k}]: {method} on {kind} is not supported locally "
                                 "(supported: DIVERSITY on EMBEDDINGS, WEIGHTS on SCORES/METADATA/RANDOM, "
                                 "BALANCE on PREDICTIONS)")
    return selection


def samples_to_select(config: dict, n_frames: int, override: int | None = None) -> int:
    if override is not None:
        count = override
    elif config.get("n_samples") is not None:
        count = config["n_samples"]
    elif config.get("proportion_samples") is not None:
        count = int(round(float(config["proportion_samples"]) * n_frames))
    else:
        raise SelectionError("The selection config needs n_samples (or proportion_samples)")
    if not isinstance(count, int) or count < 1:
        raise SelectionError(f"The number of frames to select must be a positive integer, got {count!r}")
    return min(count, n_frames)


def check_runnable(config: dict, detections: Detections, metadata: Mapping[str, np.ndarray], n: int | None = None) -> None:
    """Refuse a config that cannot run on these boxes and metadata (an unknown metadata key, an
    option run locally cannot honour) before the embeddings are computed, which takes seconds per
    video: the same checks as :func:`run_selection`, on stand-in embeddings."""
    inputs = build_inputs(detections, metadata, np.zeros((detections.n_frames, 1), np.float32))
    samples_to_select(config, inputs.n, n)
    make_selection(config, inputs)


def run_selection(config: dict, inputs: FrameInputs, n: int | None = None) -> np.ndarray:
    """Frame indices picked by the config, in the order the engine picked them (deterministic)."""
    count = samples_to_select(config, inputs.n, n)
    return np.asarray(make_selection(config, inputs).run_selection([], inputs.n, count), np.int64)


@dataclass(frozen=True)
class VideoSelection:
    """What the tutorial's config picks in one video, and how diverse and how flagged the picks are."""

    config: dict
    frames: np.ndarray  # picked frame indices, in the order the engine picked them
    flagged: int  # how many picks are flagged frames
    diversity: float  # mean nearest-neighbour distance of the picks' embeddings

    def text(self) -> str:
        return (f"{counted(len(self.frames), 'frame')} selected, {self.flagged:,} of them flagged; mean nearest-neighbour "
                f"distance {self.diversity:.3f} (higher: more diverse)")


def select_in_video(detections: Detections, flicker: FlickerResult, embeddings: np.ndarray, n: int,
                    diversity: float = 1.0, least_confidence: float = 1.0, flicker_strength: float = 1.0,
                    siblings: Mapping[str, tuple[np.ndarray, float]] | None = None) -> VideoSelection:
    """The tutorial's selection config with these strengths, run locally on one reviewed video (its
    flags as the binary flickering metadata the export would write). ``siblings``: per sibling
    assertion's metadata key (``ghost``, ``class_flip``), its flags per frame and the strength of its
    WEIGHTS strategy, read as the export writes them (1.0 flagged, 0.0 not)."""
    siblings = siblings or {}
    config = build_selection_config(n, "local", diversity, least_confidence, flicker_strength,
                                    sibling_strengths={key: strength for key, (_, strength) in siblings.items()})
    metadata = {FLICKERING_KEY: flickering_values(flicker, "binary"),
                **{key: np.asarray(flags, bool).astype(np.float64) for key, (flags, _) in siblings.items()}}
    picked = run_selection(config, build_inputs(detections, metadata, embeddings))
    return VideoSelection(config, picked, int(flicker.flag_array[picked].sum()),
                          mean_nearest_neighbour_distance(embeddings[picked]))


def selection_listing(picks: Iterable[tuple[str, int, int]]) -> list[dict]:
    """Picked frames as ``select`` writes them to selected.json (and the app downloads them): for each
    ``(video relpath, frame, the video's frame count)``, Lightly's frame name, the video and the frame."""
    return [{"file_name": frame_name(relpath, frame, n_frames, ".png"), "video": relpath, "frame": frame}
            for relpath, frame, n_frames in picks]


def selection_csv(listing: list[dict]) -> str:
    """:func:`selection_listing` as CSV (the app's download): a video's name comes from whoever named the
    file, so a spreadsheet shows its cells as text, never runs them."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["file_name", "video", "frame"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "file_name": inert_cell(row["file_name"]), "video": inert_cell(row["video"])}
                     for row in listing)
    return buffer.getvalue()


NEIGHBOUR_BLOCK_CELLS = 1 << 23  # squared distances held at once (64 MB)


def mean_nearest_neighbour_distance(embeddings: np.ndarray) -> float:
    """Mean distance from each selected frame to its nearest other selected frame: higher is more diverse.
    Squared distances from dot products, a block of rows at a time: every pair's difference vector at once
    took 9 GB and 24 s for 6,000 picks (the Review page lets a user pick every frame of the video)."""
    n = len(embeddings)
    if n < 2:
        return 0.0
    vectors = np.asarray(embeddings, np.float64)
    lengths = np.einsum("ij,ij->i", vectors, vectors)
    nearest = np.empty(n)
    rows = max(1, NEIGHBOUR_BLOCK_CELLS // n)
    for start in range(0, n, rows):
        block = lengths[start:start + rows, None] + lengths[None] - 2 * vectors[start:start + rows] @ vectors.T
        block[np.arange(len(block)), start + np.arange(len(block))] = np.inf  # not its own neighbour
        nearest[start:start + rows] = block.min(axis=1)
    return float(np.sqrt(np.clip(nearest, 0.0, None)).mean())  # rounding can leave a twin's 0 slightly negative


def embedding_map(embeddings: np.ndarray) -> np.ndarray:
    """2D coordinates for the embedding plot, from lightly_mundig's own 2D embedding."""
    import lightly_mundig

    return np.asarray(lightly_mundig.TwoDimEmbedding(embeddings).calculate_2d_embedding(), np.float32)
