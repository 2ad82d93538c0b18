"""What the tutorial's selection picks on the bundled sample, against uniform and random sampling.

    python bench/selection.py [--n 50]

Offline HOG detections (cached), the reference flicker assertion at IoU 0.8 / 0.6, the tutorial's
config (DIVERSITY on embeddings, WEIGHTS on objectness_least_confidence, WEIGHTS on flickering) run
locally with lightly_mundig. Prints flagged frames selected and the mean nearest-neighbour
distance in embedding space (diversity) for each way of picking the same number of frames.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


from core.detect import detect_video, load_detector
from core.lightly.export import flickering_values
from core.flicker import FlickerIndex
from core.paths import SAMPLE_VIDEO
from core.lightly.config import build_selection_config
from core.lightly.selection import build_inputs, frame_embeddings, mean_nearest_neighbour_distance, run_selection
from core.video import probe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    info = probe(SAMPLE_VIDEO)
    detections = detect_video(info, load_detector(None))
    flicker = FlickerIndex.from_detections(detections).evaluate(0.8, 0.6)
    start = time.perf_counter()
    embeddings = frame_embeddings(SAMPLE_VIDEO)
    t_embed = time.perf_counter() - start
    inputs = build_inputs(detections, {"flickering": flickering_values(flicker, "binary")}, embeddings)
    config = build_selection_config(args.n, "yolov8_detection")
    start = time.perf_counter()
    tutorial = run_selection(config, inputs)
    t_select = time.perf_counter() - start
    n = info.frame_count
    picks = {
        "tutorial config (local)": tutorial,
        "flickering weights only": run_selection(build_selection_config(args.n, "t", 0, 0, 1.0), inputs),
        "diversity only": run_selection(build_selection_config(args.n, "t", 1.0, 0, 0), inputs),
        "uniform (every k-th frame)": np.linspace(0, n - 1, args.n).round().astype(int),
        "random (mean of 20 seeds)": None,
    }
    print(f"{n} frames, {flicker.n_flagged} flagged ({flicker.n_flagged / n:.1%}); selecting {args.n}; "
          f"embeddings {t_embed:.1f} s, selection {t_select * 1e3:.1f} ms")
    print("| how | flagged frames selected | mean nearest-neighbour distance |")
    print("| --- | --- | --- |")
    for name, chosen in picks.items():
        if chosen is None:
            rng = np.random.default_rng(0)
            runs = [rng.choice(n, args.n, replace=False) for _ in range(20)]
            flagged = np.mean([flicker.flag_array[r].sum() for r in runs])
            diversity = np.mean([mean_nearest_neighbour_distance(embeddings[r]) for r in runs])
        else:
            flagged = flicker.flag_array[chosen].sum()
            diversity = mean_nearest_neighbour_distance(embeddings[chosen])
        print(f"| {name} | {flagged:.1f} | {diversity:.3f} |")


if __name__ == "__main__":
    main()
