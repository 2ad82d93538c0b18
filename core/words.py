"""How the tool words numbers for people: one helper, so every message counts the same way."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun that agrees with it, with thousands separators: "1 video", "1,234 videos"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
