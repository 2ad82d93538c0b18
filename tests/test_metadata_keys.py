"""One reading of an export's metadata schema (core.lightly.metadata_keys), used by the Export page's
schedule and by reading an export back (core.sources): plain numeric keys, their defaults, one line
for a damaged schema."""
import json

import pytest

from core.errors import UserError
from core.lightly.datasource import Datasource
from core.lightly.metadata_keys import declared_metadata_fields, declared_metadata_keys
from core.sources import _metadata_defaults


def write_schema(root, schema) -> None:
    path = Datasource(root).metadata_schema
    path.parent.mkdir(parents=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))


def field(path, default=None, kind="NUMERIC_FLOAT"):
    entry = {"name": path, "path": path, "valueDataType": kind}
    return entry if default is None else entry | {"defaultValue": default}


def test_plain_numeric_keys_with_their_defaults_in_the_schemas_order(tmp_path):
    write_schema(tmp_path, [field("flickering", 0.75), field("ghost", 0.25), field("../../etc", 1), field("note", kind="CATEGORICAL_STRING"),
                            field("class_flip"), field("ghost", 0.9), {"path": 3}])
    assert declared_metadata_fields(tmp_path) == {"flickering": 0.75, "ghost": 0.25, "class_flip": 0.0}
    assert declared_metadata_keys(tmp_path) == ("flickering", "ghost", "class_flip")
    # reading the export back: flickering first and unflagged (0.5) by default, the others as declared
    assert _metadata_defaults(Datasource(tmp_path)) == {"flickering": 0.5, "ghost": 0.25, "class_flip": 0.0}


def test_a_damaged_schema_is_one_line_for_the_page_and_only_flickering_for_reading_back(tmp_path):
    write_schema(tmp_path, "[{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        declared_metadata_keys(tmp_path)
    assert _metadata_defaults(Datasource(tmp_path)) == {"flickering": 0.5}
    assert _metadata_defaults(Datasource(tmp_path / "nowhere")) == {"flickering": 0.5}
