"""Every error whose message is written for the user: one line, no traceback needed.

The CLI prints ``error: <message>`` and exits 2; the app shows the message in its error boundary
(``ui.boundary.error_boundary``). Anything else that escapes is a bug.
"""


class UserError(Exception):
    """Base class: the CLI prints the message and exits non-zero; the app shows it."""


class VideoError(UserError):
    """The video cannot be opened or decoded."""


class DetectorError(UserError):
    """The model cannot be loaded or run."""


class RefusedWeights(DetectorError):
    """The weights file itself is refused (code in its pickle, no model in it, not a model format):
    no other device or retry changes that, so an upload of it need not be kept."""


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


def validation_line(exc: Exception, labels: dict[str, str] | None = None, hints: dict[str, str] | None = None,
                    owner: str = "Lightly") -> str:
    """A pydantic ``ValidationError`` (from ``owner``'s models) as one short line naming each field,
    instead of pydantic's multi-line dump. ``labels`` names fields as the user knows them; ``hints``
    says in words what a field's regular expression wants. Duck-typed: no pydantic import."""
    return rules_line(validation_problems(exc, labels, hints), owner)


def rules_line(problems: list[str], owner: str = "Lightly") -> str:
    """Problems (distinct, the first three of many) as one line that says whose rules they are."""
    problems = list(dict.fromkeys(problems))
    shown = problems if len(problems) <= 4 else problems[:3] + [f"{len(problems) - 3} more"]
    return "; ".join(shown) + f" ({owner}'s {'rules' if len(problems) > 1 else 'rule'})"


def validation_problems(exc: Exception, labels: dict[str, str] | None = None,
                        hints: dict[str, str] | None = None) -> list[str]:
    """One short phrase per field a pydantic ``ValidationError`` names (see :func:`validation_line`)."""
    labels, hints = labels or {}, hints or {}
    try:
        errors = exc.errors()  # type: ignore[attr-defined]
    except Exception:
        return [str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__]
    lines: list[str] = []
    for error in errors:
        field = str((error.get("loc") or ("value",))[-1])
        label = labels.get(field, field)
        kind, message, context = error.get("type", ""), str(error.get("msg", "")), error.get("ctx") or {}
        if kind == "value_error.any_str.min_length":
            line = f"{label} must be at least {context.get('limit_value')} characters"
        elif kind == "value_error.any_str.max_length":
            line = f"{label} must be at most {context.get('limit_value')} characters"
        elif kind == "value_error.missing":
            line = f"{label} is required"
        elif kind == "value_error.extra":
            line = f"{label} is not a known field"
        elif kind == "type_error.enum":
            allowed = [str(getattr(value, "value", value)) for value in context.get("enum_values", [])]
            line = (f"{label} must be one of {', '.join(allowed)}" if len(allowed) <= 6 else
                    f"{label} must be one of {len(allowed)} values such as {', '.join(allowed[:3])}")
        elif field in hints and "regular expression" in message:
            line = f"{label} {hints[field]}"
        else:
            line = f"{label}: {message}"
        if line not in lines:
            lines.append(line)
    return lines or [type(exc).__name__]
