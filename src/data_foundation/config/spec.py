"""Pydantic models of `sources.yaml`. Every model forbids unknown keys; nothing here touches the network or user code.

`meta.dagster` is modelled in `dagster_meta`, column hints are checked in `columns`.
"""

import re
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import AfterValidator, Field, field_validator, model_validator

from data_foundation.config.base import SpecError, StrictModel as _Model
from data_foundation.config.columns import column_hints
from data_foundation.config.dagster_meta import Meta, ResourceMeta

__all__ = ["ENTRY", "RESOURCE_NAME", "SOURCE_NAME", "IncrementalSpec", "PiiSpec", "ResourceSpec", "SourceSpec",
           "SourcesFile", "SpecError", "WriteDispositionSpec"]

RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class IncrementalSpec(_Model):
    cursor_path: str
    initial_value: Any = None
    end_value: Any = None
    lag: Optional[float] = None
    on_cursor_value_missing: Literal["raise", "include", "exclude"] = "raise"
    row_order: Optional[Literal["asc", "desc"]] = None
    primary_key: Optional[Union[str, List[str]]] = None

    @field_validator("cursor_path")
    @classmethod
    def _json_path(cls, value: str) -> str:
        from dlt.common.jsonpath import compile_path  # imports dlt: only when a resource is incremental

        try:
            compile_path(value)
        except Exception as exc:  # jsonpath_ng's lexer and parser errors share no base class with ValueError
            raise SpecError(f"`{value}` is not a JSONPath dlt can parse: {exc}",
                            "Use a column name such as `updated_at`, or a JSONPath such as `$.meta.updated_at`.")
        return value

class WriteDispositionSpec(_Model):
    """dlt's dict form of a write disposition, e.g. `{disposition: merge, strategy: scd2}`."""

    disposition: Literal["append", "replace", "merge", "skip"]
    strategy: Optional[
        Literal["delete-insert", "upsert", "scd2", "insert-only", "truncate-and-insert", "insert-from-staging",
                "staging-optimized"]
    ] = None
    validity_column_names: Optional[List[str]] = None
    active_record_timestamp: Any = None
    boundary_timestamp: Any = None
    row_version_column_name: Optional[str] = None
    retire_absent_rows: Optional[bool] = None
    natural_key: Optional[str] = None
    dedup_sort: Any = None
    deduplicated: Optional[bool] = None

    def to_dlt(self) -> Dict[str, Any]:
        return self.model_dump(exclude_none=True)


class PiiSpec(_Model):
    """Top-level columns to hash (salted SHA-256) or drop before anything is written (building.py)."""

    hash: List[str] = Field(default_factory=list)
    drop: List[str] = Field(default_factory=list)

    @field_validator("hash", "drop", mode="before")
    @classmethod
    def _column_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else [] if value is None else value

    @field_validator("hash", "drop")
    @classmethod
    def _column_names(cls, value: List[str]) -> List[str]:
        for name in value:
            if not name.strip():
                raise SpecError("an empty column name", "List column names, e.g. `hash: [email, phone]`.")
        return value

    @model_validator(mode="after")
    def _hash_or_drop(self) -> "PiiSpec":
        both = [c for c in self.hash if c in self.drop]
        if both:
            raise SpecError(f"{_columns(both)} both hashed and dropped",
                            "List each column under either `hash` or `drop`, not both.", key="drop")
        return self


def _columns(names: List[str]) -> str:
    quoted = ", ".join(f"`{n}`" for n in names)
    return f"column {quoted} is" if len(names) == 1 else f"columns {quoted} are"


WriteDisposition = Union[Literal["append", "replace", "merge", "skip"], WriteDispositionSpec]
ColumnNames = Union[str, List[str]]


def _as_string_list(value: Any) -> Any:
    """`{api}` is YAML for `{'api': None}`: accept mappings, lists, sets and a single string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return list(value.keys())
    return list(value) if isinstance(value, (list, set, tuple)) else value


class ResourceSpec(_Model):
    entry: str
    arguments: List[Any] = Field(default_factory=list)
    keyword_arguments: Dict[str, Any] = Field(default_factory=dict)
    write_disposition: WriteDisposition = "append"
    primary_key: Optional[ColumnNames] = None
    merge_key: Optional[ColumnNames] = None
    kinds: List[str] = Field(default_factory=list)
    incremental: Optional[IncrementalSpec] = None
    data_from: Optional[str] = None
    columns: Dict[str, Annotated[Dict[str, Any], AfterValidator(column_hints)]] = Field(default_factory=dict)
    schema_contract: Optional[Union[Literal["evolve", "freeze", "discard_row", "discard_value"], Dict[str, str]]] = None
    max_table_nesting: Optional[int] = Field(default=None, ge=0)
    parallelized: bool = False  # dlt runs the generator in a worker thread: fetching overlaps processing
    arrow: bool = False  # pages of flat dicts become pyarrow tables: dlt's fast path (see README)
    pii: Optional[PiiSpec] = None
    description: Optional[str] = None
    owners: List[str] = Field(default_factory=list)
    tags: Dict[str, str] = Field(default_factory=dict)
    meta: Optional[ResourceMeta] = None

    @field_validator("entry")
    @classmethod
    def _entry_shape(cls, value: str) -> str:
        if not ENTRY.match(value):
            raise SpecError(f"`{value}` is not an entry",
                            "Use `data.<function>` (in this source folder) or `<folder>.data.<function>`.")
        return value

    @field_validator("arguments", mode="before")
    @classmethod
    def _scalar_argument(cls, value: Any) -> Any:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @field_validator("keyword_arguments", "columns", "tags", mode="before")
    @classmethod
    def _null_mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("kinds", "owners", mode="before")
    @classmethod
    def _string_set(cls, value: Any) -> Any:
        return _as_string_list(value)

    @model_validator(mode="after")
    def _pii_keeps_keys(self) -> "ResourceSpec":
        if self.pii is None:
            return self
        keys = [c for keys in (self.primary_key, self.merge_key) for c in ([keys] if isinstance(keys, str) else keys or [])]
        dropped = [c for c in self.pii.drop if c in keys]
        if dropped:
            raise SpecError(f"{_columns(dropped)} a primary/merge key and cannot be dropped",
                            "Hash a key column instead (the hash is stable, so merge still works).", key="pii")
        cursor = self.incremental.cursor_path if self.incremental else None
        if cursor in self.pii.hash or cursor in self.pii.drop:
            raise SpecError(f"column `{cursor}` is the incremental cursor and cannot be hashed or dropped",
                            "Use another column as `incremental.cursor_path`, or load this one unchanged.", key="pii")
        return self

    @property
    def disposition(self) -> str:
        wd = self.write_disposition
        return wd if isinstance(wd, str) else wd.disposition

    def dlt_write_disposition(self) -> Any:
        wd = self.write_disposition
        return wd if isinstance(wd, str) else wd.to_dlt()


class SourceSpec(_Model):
    resources: List[str] = Field(default_factory=list)
    reconcile: Optional[str] = None  # entry returning {table: expected row count}
    description: Optional[str] = None
    owners: List[str] = Field(default_factory=list)
    tags: Dict[str, str] = Field(default_factory=dict)
    meta: Optional[Meta] = None

    @field_validator("owners", mode="before")
    @classmethod
    def _string_set(cls, value: Any) -> Any:
        return _as_string_list(value)

    @field_validator("reconcile")
    @classmethod
    def _entry_shape(cls, value: Optional[str]) -> Optional[str]:
        return ResourceSpec._entry_shape(value) if value is not None else None

    @field_validator("tags", mode="before")
    @classmethod
    def _null_mapping(cls, value: Any) -> Any:
        return {} if value is None else value


class SourcesFile(_Model):
    """The whole of one `sources.yaml`."""

    resources: Dict[str, ResourceSpec] = Field(default_factory=dict)
    sources: Dict[str, SourceSpec] = Field(default_factory=dict)

    @field_validator("resources", "sources", mode="before")
    @classmethod
    def _null_mapping(cls, value: Any) -> Any:
        return {} if value is None else value
