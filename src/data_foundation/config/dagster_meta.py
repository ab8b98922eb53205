"""`meta.dagster` of sources and resources: automation, freshness, partitions, retries. Plain models: the Dagster
layer (`data_foundation.dagster`) turns them into Dagster objects; nothing here imports Dagster."""

import zoneinfo
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Dict, Literal, Optional

from croniter import croniter
from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from data_foundation.config.base import SpecError, StrictModel as _Model
from data_foundation.errors import closest, did_you_mean

__all__ = ["AUTOMATION_CONDITIONS", "PARTITION_FORMATS", "AutomationConditionConfig", "DagsterMeta", "Meta",
           "PartitionSpec", "ResourceDagsterMeta", "ResourceMeta", "RetrySpec", "register_automation_condition_name"]

# Open set: the Dagster layer registers a builder for each name (data_foundation.dagster.automation).
AUTOMATION_CONDITIONS: set = {"on_schedule", "on_cron", "eager", "on_missing", "missing_or_changed", "manual"}
CRON_CONDITIONS = {"on_schedule", "on_cron"}
CRON_ALIASES = "@hourly, @daily, @weekly, @monthly, @yearly"
_DATE = ("%Y-%m-%d", "YYYY-MM-DD", "2024-01-01")
# Per partition type: the `fmt` the Dagster layer builds its time partitions with (dagster/assets.py), that format as
# a user writes it, and an example.
PARTITION_FORMATS = {"hourly": ("%Y-%m-%d-%H:%M", "YYYY-MM-DD-HH:MM", "2024-01-01-00:00"),
                     "daily": _DATE, "weekly": _DATE, "monthly": _DATE}


def register_automation_condition_name(name: str) -> None:
    """Make `name` a valid `meta.dagster.automation_condition` value."""
    AUTOMATION_CONDITIONS.add(name)


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
