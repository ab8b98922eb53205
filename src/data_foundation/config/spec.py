"""Pydantic models of `sources.yaml`. Every model forbids unknown keys; nothing here touches the network or user code.

`meta.dagster` is modelled in `dagster_meta`, column hints are checked in `columns`.
"""

import re
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import AfterValidator, Field, field_validator, model_validator

from data_foundation.config.base import (ENTRY, ColumnList, Entry, MappingOrNull, NameList, SpecError,
                                         StrictModel as _Model, one_or_many)
from data_foundation.config.columns import ColumnHintsSchema, column_hints
from data_foundation.config.dagster_meta import Meta, ResourceMeta
from data_foundation.config.gates import ChecksSpec

__all__ = ["ENTRY", "RESOURCE_NAME", "SOURCE_NAME", "IncrementalSpec", "PiiSpec", "ResourceSpec", "SourceSpec",
           "SourcesFile", "SpecError", "WriteDispositionSpec"]

RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ColumnNames = Union[str, List[str]]  # as written: dlt takes a column name or a list of them
ColumnHints = Annotated[Dict[str, Any], AfterValidator(column_hints), ColumnHintsSchema()]
SchemaContractMode = Literal["evolve", "freeze", "discard_row", "discard_value"]
_Scalar = Union[str, int, float, bool]  # what one YAML scalar is, as an editor reads it


class IncrementalSpec(_Model):
    """dlt's `incremental`: load only rows whose cursor is past the last value loaded."""

    cursor_path: str = Field(description="The cursor: a column name such as `updated_at`, or a JSONPath such as "
                                         "`$.meta.updated_at`.")
    initial_value: Any = Field(default=None, description="The cursor value to start from when nothing is loaded yet.")
    end_value: Any = Field(default=None, description="Stop at this cursor value (a backfill of a fixed range).")
    lag: Optional[float] = Field(
        default=None, description="Re-read this much before the last cursor value on each run: days for a date cursor, "
                                  "seconds for a timestamp.")
    on_cursor_value_missing: Literal["raise", "include", "exclude"] = Field(
        default="raise", description="A row without the cursor column: fail the run, load it, or drop it.")
    row_order: Optional[Literal["asc", "desc"]] = Field(
        default=None, description="The order the entry yields cursor values in: dlt stops reading at the first row "
                                  "out of range.")
    primary_key: Optional[ColumnNames] = Field(
        default=None, description="Column(s) dlt deduplicates rows on at the cursor boundary (default: the "
                                  "resource's `primary_key`).")

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

    disposition: Literal["append", "replace", "merge", "skip"] = Field(
        description="How dlt writes each load to the table.")
    strategy: Optional[
        Literal["delete-insert", "upsert", "scd2", "insert-only", "truncate-and-insert", "insert-from-staging",
                "staging-optimized"]
    ] = Field(default=None, description="The merge strategy (`delete-insert`, `upsert`, `scd2`, `insert-only`) or the "
                                        "replace strategy (`truncate-and-insert`, `insert-from-staging`, "
                                        "`staging-optimized`).")
    validity_column_names: Optional[List[str]] = Field(
        default=None, description="scd2: the names of the valid-from and valid-to columns.")
    active_record_timestamp: Any = Field(default=None,
                                         description="scd2: the valid-to value of current records (default null).")
    boundary_timestamp: Any = Field(default=None, description="scd2: when the load's changes take effect (default: "
                                                              "the load's start).")
    row_version_column_name: Optional[str] = Field(
        default=None, description="scd2: the column that changes when a record changes (default: dlt's row hash).")
    retire_absent_rows: Optional[bool] = Field(
        default=None, description="scd2: retire the records a load does not contain (default true).")
    natural_key: Optional[str] = Field(default=None,
                                       description="scd2: the column identifying a record across its versions.")
    dedup_sort: Any = Field(default=None, description="delete-insert: which duplicate of a key to keep, e.g. "
                                                      "`{updated_at: desc}`.")
    deduplicated: Optional[bool] = Field(default=None,
                                         description="delete-insert: deduplicate the loaded rows on the primary key.")

    def to_dlt(self) -> Dict[str, Any]:
        return self.model_dump(exclude_none=True)


class PiiSpec(_Model):
    """Top-level columns to hash (salted SHA-256) or drop before anything is written."""  # load/building.py, pii.py

    hash: ColumnList = Field(default_factory=list, description="Top-level columns replaced by their salted SHA-256 "
                                                               "before anything is written.")
    drop: ColumnList = Field(default_factory=list, description="Top-level columns removed before anything is written.")

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
    """One table: `resources.<source>.<table>`, loaded by dlt from what its entry function yields."""

    entry: Entry = Field(description="The function yielding the table's data: `data.<function>` in this folder, or "
                                     "`<folder>.data.<function>`.")
    arguments: List[Any] = Field(default_factory=list,
                                 description="Positional arguments for the entry: a list, or one value.")
    keyword_arguments: MappingOrNull[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the entry, by parameter name.")
    write_disposition: WriteDisposition = Field(
        default="append", description="How dlt writes each load: `append`, `replace`, `merge`, `skip`, or "
                                      "`{disposition: merge, strategy: scd2}`.")
    primary_key: Optional[ColumnNames] = Field(
        default=None, description="Column(s) identifying a row: `merge` updates rows by it.")
    merge_key: Optional[ColumnNames] = Field(
        default=None, description="Column(s) whose values `merge` replaces as a whole, e.g. a date.")
    kinds: NameList = Field(default_factory=list, description="Extra Dagster kinds of the asset, e.g. `{api}`.")
    incremental: Optional[IncrementalSpec] = Field(
        default=None, description="Load only new rows: dlt's incremental cursor, passed to the entry's "
                                  "`incremental` parameter.")
    data_from: Optional[str] = Field(
        default=None, description="Another resource of the source: this one becomes a dlt transformer of its pages.",
        json_schema_extra={"pattern": RESOURCE_NAME.pattern})
    columns: MappingOrNull[str, ColumnHints] = Field(
        default_factory=dict, description="dlt column hints by column, e.g. `{amount: {data_type: bigint}}`.")
    schema_contract: Optional[Union[SchemaContractMode, Dict[str, str]]] = Field(
        default=None, description="What happens when the data's shape drifts: `evolve` (default), `freeze`, "
                                  "`discard_row`, `discard_value`, or dlt's dict form.")
    max_table_nesting: Optional[int] = Field(
        default=None, ge=0, description="How many levels of nested data dlt unpacks into child tables.")
    parallelized: bool = Field(
        default=False, description="Run the entry in a dlt worker thread, so fetching overlaps processing.")
    arrow: bool = Field(
        default=False, description="Turn each page of flat dicts into a pyarrow table before dlt sees it.")
    columnar: bool = Field(
        default=True, description="Load pages of dicts as Arrow tables wherever that loads exactly what dlt's "
                                  "normalizer would.")
    pii: Optional[PiiSpec] = Field(default=None, description="Columns hashed or dropped before anything is written.")
    checks: Optional[ChecksSpec] = Field(  # config/gates.py, load/gates.py
        default=None, description="Data gates on each run's rows, after extract and before load (dbt-style tests).")
    allow_empty: bool = Field(
        default=False, description="`replace` only: let a run that yields no rows empty the table (else it fails).")
    description: Optional[str] = Field(
        default=None, description="The table's description in Dagster and dbt (default: the first paragraph of the "
                                  "entry's docstring).")
    owners: NameList = Field(default_factory=list,
                             description="Owners of the asset in Dagster: teams (`team:name`) or e-mail addresses.")
    tags: MappingOrNull[str, str] = Field(default_factory=dict, description="Dagster tags of the asset.")
    meta: Optional[ResourceMeta] = Field(default=None, description="Settings for the orchestrator: `dagster`.")

    @field_validator("arguments", mode="before", json_schema_input_type=Union[List[Any], _Scalar, Dict[str, Any], None])
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
    """One source: `sources.<name>`, its resources loaded together into one dataset (one Dagster multi-asset)."""

    resources: List[str] = Field(default_factory=list,
                                 description="The source's resources, by name (`<source>.<table>`).",
                                 json_schema_extra={"items": {"type": "string", "pattern": RESOURCE_NAME.pattern}})
    reconcile: Optional[Entry] = Field(
        default=None, description="An entry returning `{table: expected row count}`, compared with the destination "
                                  "after each load.")
    description: Optional[str] = Field(default=None, description="The source's description (dbt's sources.yml).")
    owners: NameList = Field(default_factory=list, description="Owners of every asset of the source in Dagster.")
    tags: MappingOrNull[str, str] = Field(default_factory=dict,
                                          description="Dagster tags of every asset of the source.")
    meta: Optional[Meta] = Field(default=None, description="Settings for the orchestrator: `dagster`.")


class SourcesFile(_Model):
    """The whole of one `sources.yaml`."""

    resources: MappingOrNull[str, ResourceSpec] = Field(
        default_factory=dict, description="The tables to load, by name: `<source>.<table>`.",
        json_schema_extra={"propertyNames": {"pattern": RESOURCE_NAME.pattern}})
    # `shop:` with nothing after it is a source with no settings (the loader reads each entry, null as `{}`)
    sources: MappingOrNull[str, Optional[SourceSpec]] = Field(
        default_factory=dict, description="Sources by name: which resources load together, automation, owners.",
        json_schema_extra={"propertyNames": {"pattern": SOURCE_NAME.pattern}})
