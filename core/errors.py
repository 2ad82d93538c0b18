"""Every error whose message is written for the user: one line, no traceback needed.

The CLI prints ``error: <message>`` and exits 2; the app shows the message in its error boundary
(``ui.state.error_boundary``). Anything else that escapes is a bug.
"""


class UserError(Exception):
    """Base class: the CLI prints the message and exits non-zero; the app shows it."""


class VideoError(UserError):
    """The video cannot be opened or decoded."""


class DetectorError(UserError):
    """The model cannot be loaded or run."""


class DetectionCancelled(UserError):
    """The user stopped a detection run; nothing was cached."""


class ExportError(UserError):
    """The export cannot be written."""


class PredictionFormatError(UserError):
    """A prediction or metadata file does not follow the Lightly format."""


class SelectionError(UserError):
    """The selection config cannot be run locally (or is not a valid config)."""


class ScheduleError(UserError):
    """The selection cannot be scheduled."""


class CloudError(UserError):
    """The bucket cannot be reached or written."""


class VerdictError(UserError):
    """The verdict store cannot be read or written."""
