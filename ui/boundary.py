"""The app's one error boundary: a user error is one red line on the page, not a traceback."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.errors import UserError
from core.words import markdown_literal


@contextmanager
def error_boundary(action: str = "") -> Iterator[None]:
    """Show a user error as one red line (prefixed with what was being done) instead of a
    traceback; the rest of the page keeps working."""
    try:
        yield
    except UserError as exc:
        st.error(markdown_literal(f"{action}: {exc}" if action else exc))  # it may quote a name someone else chose
    except OSError as exc:
        st.error(markdown_literal(f"{action + ': ' if action else ''}{exc.strerror or exc}"))
    except MemoryError:
        st.error("Out of memory: try a smaller model, a smaller image size or a shorter video")
