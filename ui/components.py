"""Widgets more than one page shows."""
from __future__ import annotations

# The three strategies of the tutorial's selection config. One set of keys: the local selection
# (Review) and the scheduled one (Export & schedule) use the same strengths.
STRENGTHS = (("Diversity strength", "diversity"), ("Least-confidence strength", "least_confidence"),
             ("Flickering strength", "flicker_strength"))


def selection_strengths(containers) -> tuple[float, float, float]:
    """Diversity, least-confidence and flickering strengths, one slider per container."""
    return tuple(container.slider(label, 0.0, 5.0, 1.0, 0.1, key=key, persist_state="session")
                 for container, (label, key) in zip(containers, STRENGTHS))
