"""Pydantic models of `sources.yaml`. Every model forbids unknown keys; nothing here touches the network or user code.

`meta.dagster` is modelled in `dagster_meta`, column hints are checked in `columns`.
"""

import re
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import AfterValidator, Field, field_validator, model_validator

from data_foundation.config.base import (ENTRY, ColumnList, Entry, MappingOrNull, NameList, SpecError,
                                         StrictModel as _Model, one_or_many)
from data_foundation.config.columns import column_hints
from data_foundation.config.dagster_meta import Meta, ResourceMeta
from data_foundation.config.gates import ChecksSpec

__all__ = ["ENTRY", "RESOURCE_NAME", "SOURCE_NAME", "IncrementalSpec", "PiiSpec", "ResourceSpec", "SourceSpec",
           "SourcesFile", "SpecError", "WriteDispositionSpec"]

RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ColumnNames = Union[str, List[str]]  # as written: dlt takes a column name or a list of them
ColumnHints = Annotated[Dict[str, Any], AfterValidator(column_hints)]


class IncrementalSpec(_Model):
    cursor_path: str
    initial_value: Any = None
    end_value: Any = None
    lag: Optional[float] = None
    on_cursor_value_missing: Literal["raise", "include", "exclude"] = "raise"
    row_order: Optional[Literal["asc", "desc"]] = None
    primary_key: Optional[ColumnNames] = None

    @field_validator("cursor_path")
    @classmethod
    def _json_path(cls, value: str) -> str:
        # the parser of dlt's `compile_path`, without importing dlt: validation then runs while it would still load
        from jsonpath_ng.ext import parse

        try:
            parse(value)
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

    hash: ColumnList = Field(default_factory=list)
    drop: ColumnList = Field(default_factory=list)

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


class ResourceSpec(_Model):
    entry: Entry
    arguments: List[Any] = Field(default_factory=list)
    keyword_arguments: MappingOrNull[str, Any] = Field(default_factory=dict)
    write_disposition: WriteDisposition = "append"
    primary_key: Optional[ColumnNames] = None
    merge_key: Optional[ColumnNames] = None
    kinds: NameList = Field(default_factory=list)
    incremental: Optional[IncrementalSpec] = None
    data_from: Optional[str] = None
    columns: MappingOrNull[str, ColumnHints] = Field(default_factory=dict)
    schema_contract: Optional[Union[Literal["evolve", "freeze", "discard_row", "discard_value"], Dict[str, str]]] = None
    max_table_nesting: Optional[int] = Field(default=None, ge=0)
    parallelized: bool = False  # dlt runs the generator in a worker thread: fetching overlaps processing
    arrow: bool = False  # pages of flat dicts become pyarrow tables: dlt's fast path (see README)
    columnar: bool = True  # pages of dicts load as Arrow tables when that loads exactly what dlt's normalizer would
    pii: Optional[PiiSpec] = None
    checks: Optional[ChecksSpec] = None  # data gates after extract, before load (config/gates.py, load/gates.py)
    allow_empty: bool = False  # `replace`: a run that yields no rows may empty the table (else it fails)
    description: Optional[str] = None
    owners: NameList = Field(default_factory=list)
    tags: MappingOrNull[str, str] = Field(default_factory=dict)
    meta: Optional[ResourceMeta] = None

    @field_validator("arguments", mode="before")
    @classmethod
    def _scalar_argument(cls, value: Any) -> Any:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @model_validator(mode="after")
    def _pii_keeps_keys(self) -> "ResourceSpec":
        if self.pii is None:
            return self
        keys = one_or_many(self.primary_key) + one_or_many(self.merge_key)
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

    @property
    def primary_key_columns(self) -> List[str]:
        """`primary_key` as a list of column names, written as one name or a list (dlt takes both)."""
        return list(one_or_many(self.primary_key))

    def dlt_write_disposition(self) -> Any:
        wd = self.write_disposition
        return wd if isinstance(wd, str) else wd.to_dlt()


class SourceSpec(_Model):
    resources: List[str] = Field(default_factory=list)
    reconcile: Optional[Entry] = None  # entry returning {table: expected row count}
    description: Optional[str] = None
    owners: NameList = Field(default_factory=list)
    tags: MappingOrNull[str, str] = Field(default_factory=dict)
    meta: Optional[Meta] = None


class SourcesFile(_Model):
    """The whole of one `sources.yaml`."""

    resources: MappingOrNull[str, ResourceSpec] = Field(default_factory=dict)
    sources: MappingOrNull[str, SourceSpec] = Field(default_factory=dict)
