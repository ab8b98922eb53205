"""`meta.dagster` of sources and resources: automation, freshness, partitions, retries, the concurrency pool. Plain
models: the Dagster layer (`data_foundation.dagster`) turns them into Dagster objects; nothing here imports Dagster.

A source is one Dagster multi-asset: `partition`, `retry` and `pool` apply to all of it and are set on the source
only (`SourceDagsterMeta`). The other keys apply to each asset: the source sets them for all its resources and a
resource may override them (`ResourceDagsterMeta`); `SourceDagsterMeta.for_resource` merges the two into the meta a
resource's asset gets (`AssetDagsterMeta`).
"""

import re
import zoneinfo
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Dict, Literal, Optional

from croniter import croniter
from pydantic import (Field, PositiveInt, ValidationError, ValidationInfo, ValidatorFunctionWrapHandler,
                      field_validator, model_validator)

from data_foundation.config.automation_conditions import (BUILT_IN_CONDITIONS, ENTRY_POINT_GROUP, condition_names,
                                                          find_condition)
from data_foundation.config.base import SpecError, StrictModel as _Model
from data_foundation.errors import closest, did_you_mean, join_hints

__all__ = ["ASSET_KEYS", "PARTITION_FORMATS", "SOURCE_KEYS", "AssetDagsterMeta", "AutomationConditionConfig",
           "Meta", "PartitionSpec", "ResourceDagsterMeta", "ResourceMeta", "RetrySpec",
           "SourceDagsterMeta"]

CRON_ALIASES = "@hourly, @daily, @weekly, @monthly, @yearly"
_DATE = ("%Y-%m-%d", "YYYY-MM-DD", "2024-01-01")
# Per partition type: the `fmt` the Dagster layer builds its time partitions with (dagster/assets.py), that format as
# a user writes it, and an example.
PARTITION_FORMATS = {"hourly": ("%Y-%m-%d-%H:%M", "YYYY-MM-DD-HH:MM", "2024-01-01-00:00"),
                     "daily": _DATE, "weekly": _DATE, "monthly": _DATE}
_POOL_NAME = re.compile(r"\S+")  # Dagster refuses whitespace in a pool name (`op_definition._validate_pool`)


@lru_cache(maxsize=1)
def _zones_by_lower_name() -> Dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


class AutomationConditionConfig(_Model):
    """The settings of `automation_condition`."""

    cron_schedule: Optional[str] = Field(
        default=None, description="When the condition ticks: five cron fields such as `0 6 * * *`, or an alias such "
                                  "as `@daily`.", examples=["@daily", "0 6 * * *"])
    cron_timezone: str = Field(default="UTC", description="The IANA time zone of `cron_schedule` (case-insensitive).",
                               examples=["UTC", "Europe/Berlin"])
    # a partitioned source's cron conditions request the partitions of the last N days on each tick, not only the
    # newest one: for data the API restates after the fact (ad platforms' attribution windows)
    lookback_days: Optional[PositiveInt] = Field(
        default=None, description="Partitioned sources: each tick requests the partitions of the last N days, not "
                                  "only the newest.")

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
    """Dagster time partitions of the source: each run loads one window, passed to the entries as arguments."""

    type: Literal["hourly", "daily", "weekly", "monthly"] = Field(description="The length of one partition.")
    start: str = Field(description="The first partition: a date `YYYY-MM-DD` (hourly: `YYYY-MM-DD-HH:MM`).")
    end: Optional[str] = Field(default=None, description="Where the partitions end (default: they go on up to now).")
    start_argument: str = Field(default="start_date",
                                description="The entries' keyword parameter that gets the partition's start.")
    end_argument: str = Field(default="end_date",
                              description="The entries' keyword parameter that gets the partition's end.")
    # a backfill's runs: None = the whole range in one run (Dagster's single-run backfill policy); N = one run per N
    # partitions, run side by side up to the source's pool limit, each with dlt state of its own (docs/backfills.md)
    max_partitions_per_run: Optional[PositiveInt] = Field(
        default=None, description="A backfill runs as runs of N partitions each (default: one run for the whole "
                                  "range).")

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
    """Dagster's retry policy of the source's runs."""

    max_retries: int = Field(default=3, ge=0, description="How many times a failed run is retried.")
    delay_seconds: float = Field(default=30, ge=0, description="Seconds to wait before each retry.")


class _AssetKeys(_Model):
    """The keys that apply to each asset (table) on its own."""

    automation_condition: Optional[str] = Field(
        default=None, description="When Dagster materializes the asset: `on_schedule`, `on_cron`, `eager`, "
                                  "`on_missing`, `missing_or_changed`, `manual`, or a registered name.",
        examples=list(BUILT_IN_CONDITIONS))
    automation_condition_config: Optional[AutomationConditionConfig] = Field(
        default=None, description="The condition's settings: `cron_schedule`, `cron_timezone`, `lookback_days`.")
    freshness_lower_bound_delta_seconds: Optional[PositiveInt] = Field(
        default=None, description="The asset is late when its last materialization is older than this many seconds.")
    group_name: Optional[str] = Field(default=None, description="The asset's Dagster group (default: the source name).")

    @field_validator("automation_condition")
    @classmethod
    def _known_condition(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and find_condition(value) is None:
            names = condition_names()
            raise SpecError(f"`{value}` is not a known automation condition. Valid values: {', '.join(names)}.",
                            join_hints(did_you_mean(value, names), "A package adds conditions with entry points in the "
                                       f"group `{ENTRY_POINT_GROUP}` (see README)."))
        return value

    def _check_cron_schedule(self) -> None:
        entry = find_condition(self.automation_condition) if self.automation_condition else None
        config = self.automation_condition_config
        if entry and entry.needs_cron_schedule and (config is None or not config.cron_schedule):
            raise SpecError(f"`{self.automation_condition}` needs `automation_condition_config.cron_schedule`",
                            "Add `automation_condition_config: {cron_schedule: \"@daily\"}` (or five cron fields "
                            "such as `0 6 * * *`).", key="automation_condition")


ASSET_KEYS = tuple(_AssetKeys.model_fields)


class AssetDagsterMeta(_AssetKeys):
    """What one resource's asset gets: the source's per-asset keys with the resource's overrides
    (`SourceDagsterMeta.for_resource`)."""

    @model_validator(mode="after")
    def _cron_needs_schedule(self) -> "AssetDagsterMeta":
        self._check_cron_schedule()
        return self


class SourceDagsterMeta(AssetDagsterMeta):
    """`sources.<name>.meta.dagster`: the per-asset keys every resource of the source inherits, and the keys of the
    source's one Dagster multi-asset."""

    partition: Optional[PartitionSpec] = Field(
        default=None, description="Time partitions of the source, e.g. `{type: daily, start: \"2024-01-01\"}`.")
    retry: Optional[RetrySpec] = Field(default=None, description="The retry policy of the source's runs.")
    pool: Optional[str] = Field(  # dagster/assets.py
        default=None, description="The Dagster concurrency pool of the source's runs (default: "
                                  "`foundation_<destination>`).")

    @field_validator("pool")
    @classmethod
    def _pool_name(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _POOL_NAME.fullmatch(value):
            raise SpecError(f"`{value}` is not a Dagster pool name: it must be non-empty, without spaces",
                            "Use a name such as `warehouse_writes`; sources sharing a pool run one at a time.")
        return value

    @model_validator(mode="after")
    def _lookback_needs_partitions(self) -> "SourceDagsterMeta":
        config = self.automation_condition_config
        if config is not None and config.lookback_days and self.partition is None:
            raise SpecError("`automation_condition_config.lookback_days` needs a partitioned source: without "
                            "`partition` every run reads what the source's own look-back says",
                            "Add `partition: {type: daily, start: \"2024-01-01\"}`, or remove `lookback_days` (a "
                            "resource's `incremental.lag` re-reads recent days outside Dagster's partitions).",
                            key="automation_condition_config")
        return self

    def for_resource(self, override: Optional["ResourceDagsterMeta"] = None) -> AssetDagsterMeta:
        """The meta of a resource's asset: each key `override` (the resource's `meta.dagster`) sets replaces the
        source's, a nested mapping key by key; the rest is the source's.

        Raises:
            ValidationError: the combination is invalid, e.g. the resource's `on_cron` with no `cron_schedule` from
                either (each part was valid alone).

        Example:
            >>> source = SourceDagsterMeta(automation_condition="on_cron",
            ...                            automation_condition_config={"cron_schedule": "@daily"})
            >>> source.for_resource(ResourceDagsterMeta(
            ...     automation_condition_config={"cron_timezone": "europe/berlin"})).automation_condition_config
            AutomationConditionConfig(cron_schedule='@daily', cron_timezone='Europe/Berlin')
        """
        if override is None:  # the source's values are valid already: no second validation per resource
            inherited = {key: getattr(self, key) for key in ASSET_KEYS if key in self.model_fields_set}
            return AssetDagsterMeta.model_construct(_fields_set=set(inherited), **inherited)
        merged = self.model_dump(include=set(ASSET_KEYS), exclude_unset=True)
        for key, value in override.model_dump(exclude_unset=True).items():
            nested = merged.get(key)
            merged[key] = {**nested, **value} if isinstance(nested, dict) and isinstance(value, dict) else value
        return AssetDagsterMeta.model_validate(merged)


SOURCE_KEYS = tuple(key for key in SourceDagsterMeta.model_fields if key not in ASSET_KEYS)


class ResourceDagsterMeta(_AssetKeys):
    """A resource's `meta.dagster`: per-asset keys only, each overriding the source's. Checked whole once merged with
    the source's (`for_resource`): `on_cron` here may take its `cron_schedule` from the source."""

    @model_validator(mode="wrap")
    @classmethod
    def _source_keys_refused(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> "ResourceDagsterMeta":
        """A source key here is an error saying where it belongs, rather than pydantic's "unknown key"."""
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if not any(_is_source_key(e) for e in errors):
                raise
            errors = [_source_key_error(e) if _is_source_key(e) else e for e in errors]
            raise ValidationError.from_exception_data(exc.title, errors) from None


def _is_source_key(error: Dict[str, Any]) -> bool:
    return error["type"] == "extra_forbidden" and len(error["loc"]) == 1 and error["loc"][0] in SOURCE_KEYS


def _source_key_error(error: Dict[str, Any]) -> Dict[str, Any]:
    key = error["loc"][0]
    problem = SpecError(f"`{key}` applies to the whole source (one Dagster multi-asset), not to one resource",
                        f"Set it under `sources.<source>.meta.dagster` of the source listing this resource; a "
                        f"resource no source lists forms a source named by its prefix: declare that source under "
                        f"`sources:` to set `{key}`.")
    return {"type": "value_error", "loc": error["loc"], "input": error["input"], "ctx": {"error": problem}}




class Meta(_Model):
    """`meta` of a source."""

    dagster: Optional[SourceDagsterMeta] = Field(
        default=None, description="Dagster settings of the source: automation, freshness, partitions, retries, pool.")


class ResourceMeta(_Model):
    """`meta` of a resource."""

    dagster: Optional[ResourceDagsterMeta] = Field(
        default=None, description="Dagster settings of this asset, each overriding the source's.")
