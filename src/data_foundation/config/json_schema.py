"""The JSON Schema of `sources.yaml`, generated from the pydantic models of `spec`, so editors (VS Code's YAML
extension, any client of yaml-language-server) complete keys, show what each does and flag a typo as it is typed.

The models are the one description of the file: each field's `description` is its documentation here, and every
model forbids unknown keys, so the schema does too (`additionalProperties: false`). The YAML shorthands the
validators read (`kinds: {api}`, `primary_key: id`, `key:` for an empty mapping) are declared where they are read
(`json_schema_input_type`, in `base`, `gates` and `spec`), so the schema accepts what the loader accepts. It checks
keys and shapes; what needs more than the file (entries that import, a known automation condition, a valid cron or
time zone, dlt's rules) stays the loader's: `foundation validate`. A value pydantic converts is written in its own
type here (`lag: 5`, not `lag: "5"`), as an editor reads YAML 1.2 (`2024-01-01` is a string).

Draft 2020-12, as pydantic writes it, with the keywords of draft 7 only (`$defs` is reached by JSON pointer), which
yaml-language-server validates. `schema/sources.schema.json` is the committed copy (`foundation schema --output`).
"""

import json
from typing import Any, Dict

from data_foundation.config.spec import SourcesFile

__all__ = ["schema_text", "sources_schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "data-foundation sources.yaml"
DESCRIPTION = ("A source folder's sources.yaml: `resources` (tables, each loaded by dlt from an entry function) and "
               "`sources` (which resources load together, and their Dagster automation).")


def sources_schema() -> Dict[str, Any]:
    """The JSON Schema of one `sources.yaml` (imports dlt: the column hints are dlt's)."""
    schema = SourcesFile.model_json_schema(mode="validation")
    # an empty file (or one of comments only) is null: the loader warns that it loads nothing, an editor shows no error
    return {"$schema": DRAFT, **schema, "type": ["object", "null"], "title": TITLE, "description": DESCRIPTION}


def schema_text() -> str:
    """`sources_schema()` as the committed file holds it: sorted keys, two-space indent, a final newline."""
    return json.dumps(sources_schema(), indent=2, sort_keys=True) + "\n"
