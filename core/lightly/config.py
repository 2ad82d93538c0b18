"""Lightly selection configs: the tutorial's config built from strengths, configs read from files,
and offline validation. Local selection (``selection``) and scheduling (``schedule``) both use it."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from core.bounded import brief, read_config
from core.errors import SelectionError, UserError, validation_line
from core.lightly.datasource import FLICKERING_KEY

LEAST_CONFIDENCE = "objectness_least_confidence"  # Lightly's object-detection uncertainty score
DEFAULT_N_SAMPLES = 100  # frames a selection picks unless told (Review's local run, Export, `schedule`)


def build_selection_config(
    n_samples: int,
    task: str,
    diversity: float = 1.0,
    least_confidence: float = 1.0,
    flicker_strength: float = 1.0,
    extra_strategies: list[dict] | None = None,
    sibling_strengths: dict[str, float] | None = None,
) -> dict:
    """The tutorial's three strategies with user-set strengths (0 leaves one out), one WEIGHTS
    strategy per sibling assertion's metadata key with a strength (``{"ghost": 1.0}``), plus any
    extra strategy dicts as they are."""
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:  # said as the option, not the key
        raise SelectionError(f"The number of frames to select (--n-samples) must be a positive integer, got {brief(n_samples)}")
    strategies = []
    if diversity:
        strategies.append({"input": {"type": "EMBEDDINGS", "task": task},
                           "strategy": {"type": "DIVERSITY", "strength": float(diversity)}})
    if least_confidence:
        strategies.append({"input": {"type": "SCORES", "task": task, "score": LEAST_CONFIDENCE},
                           "strategy": {"type": "WEIGHTS", "strength": float(least_confidence)}})
    if flicker_strength:
        strategies.append({"input": {"type": "METADATA", "key": FLICKERING_KEY},
                           "strategy": {"type": "WEIGHTS", "strength": float(flicker_strength)}})
    for key, strength in (sibling_strengths or {}).items():
        if strength:
            strategies.append({"input": {"type": "METADATA", "key": key},
                               "strategy": {"type": "WEIGHTS", "strength": float(strength)}})
    strategies.extend(extra_strategies or [])
    return {"n_samples": n_samples, "strategies": strategies}


def load_config(path: str | Path) -> dict:
    """A selection config from JSON or YAML (the same dict the schedule step sends), read with
    bounds (size, depth, alias expansion): it is a file this tool did not write."""
    try:
        config = read_config(path, "the selection config")  # "Cannot read the selection config ...", or the line's start
    except UserError as exc:
        line = str(exc)
        raise SelectionError(line[:1].upper() + line[1:]) from None
    if not isinstance(config, dict):
        raise SelectionError(f"{path} must hold a mapping with n_samples and strategies")
    return config


def validate_selection_config(config: Any) -> None:
    """Offline checks: lightly's own pydantic model (unknown keys, bad types, bad enums) plus what it
    lets through (a non-positive n_samples, a SCORES input without a score, ...)."""
    from lightly.api.api_workflow_compute_worker import selection_config_from_dict

    if not isinstance(config, dict):
        raise SelectionError("The selection config must be a mapping")
    n_samples, proportion = config.get("n_samples"), config.get("proportion_samples")
    if n_samples is None and proportion is None:
        raise SelectionError("The selection config needs n_samples (or proportion_samples)")
    if n_samples is not None and (not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1):
        raise SelectionError(f"n_samples must be a positive integer, got {brief(n_samples)}")
    if proportion is not None and not (_is_finite_number(proportion) and 0 < proportion <= 1):
        raise SelectionError(f"proportion_samples must be in (0, 1], got {brief(proportion)}")
    strategies = config.get("strategies")
    if not isinstance(strategies, list) or not strategies:
        raise SelectionError("The selection config needs at least one strategy")
    for k, entry in enumerate(strategies):
        _check_strategy_shape(k, entry)
        source = entry["input"]
        kind = source.get("type")
        if kind == "SCORES" and not (source.get("task") and source.get("score")):
            raise SelectionError(f"strategies[{k}]: a SCORES input needs a task and a score")
        if kind in ("EMBEDDINGS", "PREDICTIONS") and source.get("task") == "":
            raise SelectionError(f"strategies[{k}]: the task name is empty")
        if kind == "METADATA" and not source.get("key"):
            raise SelectionError(f"strategies[{k}]: a METADATA input needs a key")
        strength = entry["strategy"].get("strength")
        if strength is not None and not _is_finite_number(strength):
            raise SelectionError(f"strategies[{k}]: strength must be a number, got {brief(strength)}")
        seed = source.get("random_seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise SelectionError(f"strategies[{k}]: random_seed must be an integer, got {brief(seed)}")
    try:
        selection_config_from_dict(config)
    except Exception as exc:  # pydantic's ValidationError: one line naming the field
        raise SelectionError(f"Invalid selection config: {validation_line(exc)}") from None


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_strategy_shape(k: int, entry: Any) -> None:
    """Each strategy is ``{"input": {...}, "strategy": {...}}``: anything else is refused here, before
    it reaches a selection engine (the local one panics on a non-mapping input)."""
    if not isinstance(entry, dict):
        raise SelectionError(f"strategies[{k}] must be a mapping with input and strategy, got {brief(entry)}")
    for part in ("input", "strategy"):
        if not isinstance(entry.get(part), dict):
            raise SelectionError(f"strategies[{k}]: {part} must be a mapping, got {brief(entry.get(part))}")


def describe(config: Any) -> str:
    """A selection config as indented JSON, for the app and the dry run."""
    return json.dumps(config, indent=2)
