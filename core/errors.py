"""Errors whose message is written for the user: one line, no traceback needed."""


class UserError(Exception):
    """Base class: the CLI prints the message and exits non-zero; the app shows it."""


class VideoError(UserError):
    """The video cannot be opened or decoded."""


class DetectorError(UserError):
    """The model cannot be loaded or run."""
