"""What every model of `sources.yaml` shares: unknown keys are errors, `SpecError` carries a hint, and the field types
that read YAML's shorthands (`key:` for an empty mapping, `id` for `[id]`, `{api}` for `[api]`), defined once."""

import re
from typing import Annotated, Any, Dict, List, Optional, TypeVar, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, GetJsonSchemaHandler, WithJsonSchema
from pydantic_core import CoreSchema

from data_foundation.errors import FoundationError

__all__ = ["ENTRY", "ColumnList", "Entry", "MappingOrNull", "NameList", "SpecError", "StrictModel", "one_or_many"]

ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
K = TypeVar("K")
V = TypeVar("V")


class SpecError(FoundationError, ValueError):
    """A validator's problem plus the hint to show; `key` names the field a model validator complains about.
    A `ValueError` too: pydantic collects it as the field's error (see `messages.pydantic_errors`)."""

    def __init__(self, message: str, hint: str = "", key: Optional[str] = None):
        super().__init__(message)
        self.hint, self.key = hint, key


class StrictModel(BaseModel):
    """A model read from YAML: an unknown key is an error (a typo never silently does nothing)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def one_or_many(value: Any) -> Any:
    """`id` is `[id]` and null is `[]`; anything else as it is (a list, or a value the type then refuses)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _names(value: Any) -> Any:
    """`{api}` is YAML for `{'api': None}`: a mapping's keys, a set or tuple as a list, else as `one_or_many`."""
    if isinstance(value, dict):
        return list(value.keys())
    return list(value) if isinstance(value, (set, tuple)) else one_or_many(value)


def _empty_if_null(value: Any) -> Any:
    return {} if value is None else value


def _entry_shape(value: str) -> str:
    if not ENTRY.fullmatch(value):
        raise SpecError(f"`{value}` is not an entry",
                        "Use `data.<function>` (in this source folder) or `<folder>.data.<function>`.")
    return value


class _OrNull:
    """The JSON Schema (`config/json_schema.py`) of a `MappingOrNull`: the mapping's, or null. Not the validator's
    `json_schema_input_type`: that would be `Dict[K, V]` with the type variables unfilled, so any mapping."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Dict[str, Any]:
        return {"anyOf": [handler(schema), {"type": "null"}]}


# `key:` with nothing after it is null in YAML: read as an empty mapping.
MappingOrNull = Annotated[Dict[K, V], BeforeValidator(_empty_if_null), _OrNull()]
# Column names: one name or a list of them.
ColumnList = Annotated[List[str], BeforeValidator(one_or_many, json_schema_input_type=Union[str, List[str], None])]
# Names such as kinds and owners: one, a list, or the set form `{api, db}` (a mapping: its keys).
NameList = Annotated[List[str], BeforeValidator(_names,
                                                json_schema_input_type=Union[str, List[str], Dict[str, Any], None])]
# `data.fetch_users` or `<folder>.data.fetch_users`: dotted identifiers, checked as a path before anything is imported.
Entry = Annotated[str, AfterValidator(_entry_shape), WithJsonSchema({"type": "string", "pattern": ENTRY.pattern})]
