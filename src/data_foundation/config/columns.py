"""`columns:` hints of a resource, checked as dlt checks them when it builds a table (at load time otherwise)."""

import typing
from typing import Any, Dict, Optional

from data_foundation.config.base import SpecError
from data_foundation.errors import closest, did_you_mean, join_hints

__all__ = ["ColumnHintsSchema", "column_hints"]


def column_hints(hints: Dict[str, Any]) -> Dict[str, Any]:
    """A column's hints as dlt checks them when it builds the table (`validate_dict_ignoring_xkeys`), at load time."""
    from dlt.common.data_types.typing import DATA_TYPES  # imports dlt: only for resources with `columns`
    from dlt.common.exceptions import DictValidationException
    from dlt.common.schema.typing import TColumnSchema
    from dlt.common.validation import validate_dict_ignoring_xkeys

    keys = TColumnSchema.__required_keys__ | TColumnSchema.__optional_keys__
    for key in hints:
        if str(key) not in keys and not str(key).startswith("x-"):
            valid = f"Valid hints: {', '.join(sorted(k for k in keys if not k.startswith('x-')))}, or `x-...`."
            suggestion = did_you_mean(str(key), keys)
            raise SpecError(f"unknown column hint `{key}`", join_hints(suggestion, valid), key=key)
    data_type, data_types = _dlt_data_type(hints.get("data_type")), frozenset(DATA_TYPES)
    if data_type is not None and data_type not in data_types:
        match = _DATA_TYPE_NAMES.get(data_type.lower()) or closest(data_type, data_types)
        raise SpecError(f"`{data_type}` is not a dlt data type. Valid values: {', '.join(sorted(data_types))}.",
                        f"did you mean `{match}`?" if match else "Use one of dlt's data types.", key="data_type")
    try:  # the values: `nullable: maybe`, `precision: "10"`
        validate_dict_ignoring_xkeys(spec=TColumnSchema, doc={**hints, "data_type": data_type}, path="columns")
    except DictValidationException as exc:
        raise SpecError(f"dlt refuses this column hint: {exc.msg}",
                        "Give the hint a value of the type dlt expects, e.g. `nullable: false`, `precision: 10`.",
                        key=exc.field) from None
    return hints


class ColumnHintsSchema:
    """The JSON Schema of one column's hints (`config/json_schema.py`), as `column_hints` checks them: dlt's hint names
    with the types dlt expects, `x-...` keys, nothing else. Read from dlt when a schema is generated, not before."""

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Dict[str, Any]:
        from dlt.common.data_types.typing import DATA_TYPES
        from dlt.common.schema.typing import TColumnSchema
        from pydantic import TypeAdapter

        types = typing.get_type_hints(TColumnSchema)
        hints = {name: {**TypeAdapter(types[name]).json_schema(), **_described(name)}
                 for name in sorted(types) if not name.startswith("x-")}
        hints["data_type"] = {"anyOf": [{"enum": sorted(DATA_TYPES) + ["complex"]}, {"type": "null"}],
                              **_described("data_type")}
        return {"type": "object", "properties": hints, "patternProperties": {"^x-": {}}, "additionalProperties": False}


def _described(hint: str) -> Dict[str, str]:
    return {"description": _HINT_DESCRIPTIONS[hint]} if hint in _HINT_DESCRIPTIONS else {}


# What each of dlt's column hints does, for editors (a hint a later dlt adds is valid without one; a test asks for it).
_HINT_DESCRIPTIONS = {
    "cluster": "Cluster the table by this column, where the destination supports it.",
    "data_type": "The column's dlt data type, e.g. `bigint`, `text`, `timestamp`, `decimal`, `json` (`complex`: its "
                 "former name).",
    "dedup_sort": "`merge`: of the rows sharing a primary key, keep the one with the highest (`desc`) or lowest "
                  "(`asc`) value here.",
    "description": "The column's description.",
    "hard_delete": "`merge`: a row with a value here is deleted from the destination.",
    "incremental": "Marks the column as the incremental cursor.",
    "merge_key": "Marks the column as (part of) the merge key.",
    "name": "The column's name.",
    "nullable": "Whether the column may hold null (default true).",
    "parent_key": "Marks the column as the key of the parent row (dlt sets it on child tables).",
    "partition": "Partition the table by this column, where the destination supports it.",
    "precision": "The type's precision: digits of a `decimal`, fractional-second digits of a `timestamp`, bits of a "
                 "`bigint`, length of a `text`.",
    "primary_key": "Marks the column as (part of) the primary key.",
    "root_key": "Marks the column as the key of the root table's row (dlt sets it on child tables).",
    "row_key": "Marks the column as the row's unique key (dlt's `_dlt_id`).",
    "scale": "Digits after the decimal point of a `decimal`.",
    "sort": "Sort the table by this column, where the destination supports it.",
    "timezone": "`timestamp`/`time`: whether the values carry a time zone (default true).",
    "unique": "Marks the column's values as unique.",
    "variant": "Marks a variant column (dlt adds them for values of another type).",
}


def _dlt_data_type(data_type: Any) -> Optional[str]:
    """dlt still accepts `complex`, its former name of `json` (`migrate_complex_types`)."""
    return None if data_type is None else "json" if data_type == "complex" else str(data_type)


# Other databases' names of dlt's types, for "did you mean" only: dlt's own list decides what is valid.
_DATA_TYPE_NAMES = {"integer": "bigint", "int": "bigint", "string": "text", "varchar": "text", "float": "double",
                    "boolean": "bool", "datetime": "timestamp", "object": "json"}
