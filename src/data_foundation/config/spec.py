"""Pydantic models of `sources.yaml`. Every model forbids unknown keys; nothing here touches the network or user code."""

import re
import zoneinfo
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from croniter import croniter
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator,
                      model_validator)

from data_foundation.errors import closest, did_you_mean

__all__ = [
    "AUTOMATION_CONDITIONS",
    "PARTITION_FORMATS",
    "AutomationConditionConfig",
    "DagsterMeta",
    "IncrementalSpec",
    "Meta",
    "ResourceDagsterMeta",
    "ResourceMeta",
    "PartitionSpec",
    "PiiSpec",
    "ResourceSpec",
    "RetrySpec",
    "SourceSpec",
    "SourcesFile",
    "SpecError",
    "WriteDispositionSpec",
    "register_automation_condition_name",
]

# Open set: the Dagster layer registers a builder for each name (data_foundation.dagster.automation).
AUTOMATION_CONDITIONS: set = {"on_schedule", "on_cron", "eager", "on_missing", "missing_or_changed", "manual"}
CRON_CONDITIONS = {"on_schedule", "on_cron"}

RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
CRON_ALIASES = "@hourly, @daily, @weekly, @monthly, @yearly"
_DATE = ("%Y-%m-%d", "YYYY-MM-DD", "2024-01-01")
# Per partition type: the `fmt` the Dagster layer builds its time partitions with (dagster/assets.py), that format as
# a user writes it, and an example.
PARTITION_FORMATS = {"hourly": ("%Y-%m-%d-%H:%M", "YYYY-MM-DD-HH:MM", "2024-01-01-00:00"),
                     "daily": _DATE, "weekly": _DATE, "monthly": _DATE}


class SpecError(ValueError):
    """A validator's problem plus the hint to show; `key` names the field a model validator complains about."""

    def __init__(self, message: str, hint: str = "", key: Optional[str] = None):
        super().__init__(message)
        self.hint, self.key = hint, key


def register_automation_condition_name(name: str) -> None:
    """Make `name` a valid `meta.dagster.automation_condition` value."""
    AUTOMATION_CONDITIONS.add(name)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@lru_cache(maxsize=1)
def _zones_by_lower_name() -> Dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


class AutomationConditionConfig(_Model):
    cron_schedule: Optional[str] = None
    cron_timezone: str = "UTC"

    @field_validator("cron_schedule")
    @classmethod
    def _valid_cron(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not croniter.is_valid(value):
            raise SpecError(f"`{value}` is not a valid cron schedule",
                            f"Use five fields (minute hour day month weekday) such as `0 6 * * *`, "
                            f"or an alias: {CRON_ALIASES}.")
        return value

    @field_validator("cron_timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        zones = _zones_by_lower_name()
        zone = zones.get(str(value).lower())
        if zone is None:
            match = closest(str(value).lower(), zones)
            suggestion = f"did you mean `{zones[match]}`? " if match else ""
            raise SpecError(f"`{value}` is not an IANA time zone",
                            f"{suggestion}Use a name such as `UTC` or `Europe/Berlin`.")
        return zone


class PartitionSpec(_Model):
    type: Literal["hourly", "daily", "weekly", "monthly"]
    start: str
    end: Optional[str] = None
    start_argument: str = "start_date"
    end_argument: str = "end_date"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dagster_time(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")  # missing when `type` itself is wrong: that error is reported on its own
        return value if value is None or kind is None else _partition_time(value, kind, info.field_name)

    @model_validator(mode="after")
    def _end_after_start(self) -> "PartitionSpec":
        fmt = PARTITION_FORMATS[self.type][0]
        start, end = (_utc(_parse_partition_time(t, fmt)) if t else None for t in (self.start, self.end))
        if end is not None and end <= start:
            raise SpecError(f"`end: {self.end}` is not after `start: {self.start}`",
                            "Move `end` after `start`, or leave `end` out to add partitions up to now.", key="end")
        return self


def _partition_time(value: Any, kind: str, key: str) -> str:
    """`value` as the string Dagster parses with the partition's `fmt`: a YAML date or timestamp is written out in it,
    and so is a date for hourly partitions (`start: 2024-01-01` means midnight, as for the other types)."""
    fmt, pattern, example = PARTITION_FORMATS[kind]
    if isinstance(value, str):
        if _parse_partition_time(value, fmt):
            return value
        value = _parse_partition_time(value, _DATE[0]) or value
    if isinstance(value, date):
        moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
        text = moment.strftime(fmt + ("%z" if moment.tzinfo else ""))
        if _parse_partition_time(text, fmt) == moment:  # else the format drops part of it, e.g. the hour
            return text
    what = "a time" if kind == "hourly" else "a date"
    raise SpecError(f"`{value}` is not a valid `{kind}` partition {key}: expected {what} written {pattern}, "
                    f"e.g. `{example}`", f"Write `{key}: {example}`.")


def _parse_partition_time(text: str, fmt: str) -> Optional[datetime]:
    """As Dagster parses a partition bound (`dagster._time.dst_safe_strptime`): `fmt`, else `fmt` with a UTC offset."""
    for with_offset in (fmt, fmt + "%z"):
        try:
            return datetime.strptime(text, with_offset)
        except ValueError:
            pass
    return None


def _utc(moment: datetime) -> datetime:
    """Naive partition bounds are UTC: the Dagster layer gives partitions no other time zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class RetrySpec(_Model):
    max_retries: int = Field(default=3, ge=0)
    delay_seconds: float = Field(default=30, ge=0)


class DagsterMeta(_Model):
    automation_condition: Optional[str] = None
    automation_condition_config: Optional[AutomationConditionConfig] = None
    freshness_lower_bound_delta_seconds: Optional[PositiveInt] = None
    partition: Optional[PartitionSpec] = None
    retry: Optional[RetrySpec] = None
    group_name: Optional[str] = None

    @field_validator("automation_condition")
    @classmethod
    def _known_condition(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in AUTOMATION_CONDITIONS:
            valid = f"Valid values: {', '.join(sorted(AUTOMATION_CONDITIONS))}."
            raise SpecError(f"`{value}` is not a known automation condition",
                            " ".join(filter(None, [did_you_mean(value, AUTOMATION_CONDITIONS), valid])))
        return value

    @model_validator(mode="after")
    def _cron_needs_schedule(self) -> "DagsterMeta":
        config = self.automation_condition_config
        if self.automation_condition in CRON_CONDITIONS and (config is None or not config.cron_schedule):
            raise SpecError(f"`{self.automation_condition}` needs `automation_condition_config.cron_schedule`",
                            "Add `automation_condition_config: {cron_schedule: \"@daily\"}` (or five cron fields "
                            "such as `0 6 * * *`).", key="automation_condition")
        return self


class Meta(_Model):
    dagster: Optional[DagsterMeta] = None


class ResourceDagsterMeta(DagsterMeta):
    """A resource's `meta.dagster`: overrides the source's key by key, so it is checked once merged (loading.py)."""

    @model_validator(mode="after")
    def _cron_needs_schedule(self) -> "ResourceDagsterMeta":
        return self


class ResourceMeta(_Model):
    dagster: Optional[ResourceDagsterMeta] = None


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


def _column_hints(hints: Dict[str, Any]) -> Dict[str, Any]:
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
            raise SpecError(f"unknown column hint `{key}`", " ".join(filter(None, [suggestion, valid])), key=key)
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
    columns: Dict[str, Annotated[Dict[str, Any], AfterValidator(_column_hints)]] = Field(default_factory=dict)
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
