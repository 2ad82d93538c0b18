"""Secrets never appear in clear: every message, log record or printed request passes through
:func:`mask`, which replaces each known secret *by its value* (raw, URL-encoded and JSON-escaped),
wherever it appears, plus the URL parameters that carry credentials (``token=``, SAS ``sig=``,
S3 pre-signed signatures). Field names alone are not enough: a server may echo a secret anywhere.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# Environment variables whose values are credentials (ours and the cloud SDKs' usual ones).
SECRET_ENVIRONMENT = ("LIGHTLY_TOKEN", "LIGHTLY_S3_SECRET_ACCESS_KEY", "LIGHTLY_AZURE_SAS_TOKEN", "AWS_SECRET_ACCESS_KEY",
                      "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
                      "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET")
_CREDENTIAL_PARAMETERS = re.compile(r"(?i)\b(token|sig|x-amz-signature|x-amz-credential|x-amz-security-token|"
                                    r"accountkey|sharedaccesssignature)=[^&\s'\"]+")


def environment_secrets() -> list[str]:
    return [os.environ[name] for name in SECRET_ENVIRONMENT if os.environ.get(name)]


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in text: as is, URL-encoded, JSON-escaped, and (for a JSON
    credentials file) each of its string values."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    try:
        parsed = json.loads(secret)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):  # a credentials file: its long values are keys; short ones are names like "type"
        forms |= {v for v in parsed.values() if isinstance(v, str) and len(v) >= 20}
    return {form for form in forms if form}  # however short: an over-masked line is fine, a leaked key is not


MIN_MASKED = 4  # shorter secrets are masked as whole words: LIGHTLY_TOKEN=t masked every t of a message


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret (given ones and the environment's) replaced by ``***``."""
    text = _CREDENTIAL_PARAMETERS.sub(lambda m: f"{m.group(1)}={MASK}", str(text))
    forms = set()
    for secret in [*secrets, *environment_secrets()]:
        if secret:
            forms |= _forms(str(secret))
    for form in sorted(forms, key=len, reverse=True):  # longest first: a form may contain another
        if len(form) >= MIN_MASKED:
            text = text.replace(form, MASK)
        else:  # as a whole word only: inside words it is no leak, and masking there garbles the message
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", MASK, text)
    return text


def mask_structure(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:func:`mask` applied to every string inside dicts and lists (keys included)."""
    secrets = list(secrets)
    if isinstance(value, dict):
        return {mask_structure(k, secrets): mask_structure(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_structure(v, secrets) for v in value]
    if isinstance(value, str):
        return mask(value, secrets)
    return value
