"""Which per-frame metadata keys an export declares (its ``.lightly/metadata/schema.json``): the
fields a Lightly selection can weight frames by (flickering, and ghost / class_flip when the export
was made with those assertions). The schema is a file this tool may not have written: read capped,
never through a link, and only plain short keys are reported."""
from __future__ import annotations

import math
import re
from pathlib import Path

import orjson

from core.bounded import read_capped
from core.errors import UserError
from core.lightly.datasource import Datasource

MAX_SCHEMA_BYTES = 1 << 20  # this tool writes a few hundred bytes
MAX_KEYS = 64
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # flickering, ghost, class_flip, weather.rain: nothing to escape


def declared_metadata_keys(root: str | Path) -> tuple[str, ...]:
    """The numeric metadata keys (``path``) the export at ``root`` declares, in the schema's order;
    a UserError (one line) when its schema is missing, a link, too large or not a schema."""
    return tuple(declared_metadata_fields(root))


def declared_metadata_fields(root: str | Path) -> dict[str, float]:
    """The numeric metadata keys the export at ``root`` declares, in the schema's order, each with
    its default (``defaultValue``, 0 when absent or not a finite number); errors as above."""
    schema_path = Datasource(root).metadata_schema
    try:
        schema = orjson.loads(read_capped(schema_path, MAX_SCHEMA_BYTES, "Metadata schema", follow_symlinks=False))
    except orjson.JSONDecodeError:
        raise UserError(f"Metadata schema {schema_path} is not valid JSON: export again") from None
    if not isinstance(schema, list):
        raise UserError(f"Metadata schema {schema_path} is not a list of fields: export again")
    fields: dict[str, float] = {}
    for entry in schema[:MAX_KEYS]:
        key = entry.get("path") if isinstance(entry, dict) and entry.get("valueDataType") == "NUMERIC_FLOAT" else None
        if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) and key not in fields:
            default = entry.get("defaultValue")
            fields[key] = float(default) if isinstance(default, (int, float)) and math.isfinite(default) else 0.0
    return fields
