"""`columns:` hints of a resource, checked as dlt checks them when it builds a table (at load time otherwise)."""

from typing import Any, Dict, Optional

from data_foundation.config.base import SpecError
from data_foundation.errors import closest, did_you_mean, join_hints

__all__ = ["column_hints"]


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


def _dlt_data_type(data_type: Any) -> Optional[str]:
    """dlt still accepts `complex`, its former name of `json` (`migrate_complex_types`)."""
    return None if data_type is None else "json" if data_type == "complex" else str(data_type)


# Other databases' names of dlt's types, for "did you mean" only: dlt's own list decides what is valid.
_DATA_TYPE_NAMES = {"integer": "bigint", "int": "bigint", "string": "text", "varchar": "text", "float": "double",
                    "boolean": "bool", "datetime": "timestamp", "object": "json"}
