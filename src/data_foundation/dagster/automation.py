"""Automation conditions: the built-in builders, which the registry (`config.automation_conditions`) names, and
`build_automation_condition` for any registered name, built-in or installed by a package."""

import datetime as dt
from functools import lru_cache
from typing import Optional

import dagster as dg

from data_foundation.config.automation_conditions import load_condition_builder
from data_foundation.config.dagster_meta import AssetDagsterMeta, AutomationConditionConfig
from data_foundation.errors import FoundationError

__all__ = ["build_automation_condition", "eager", "manual", "missing_or_changed", "on_cron", "on_missing"]


def on_cron(config: Optional[AutomationConditionConfig]) -> dg.AutomationCondition:
    """`on_schedule` and `on_cron`: once per tick of `cron_schedule` in `cron_timezone` (validation requires them);
    a partitioned asset's newest partition, or with `lookback_days` the partitions of that many days."""
    return _cron_condition(config.cron_schedule, config.cron_timezone, config.lookback_days)


@lru_cache(maxsize=None)
def _cron_condition(cron_schedule: str, cron_timezone: str, lookback_days: Optional[int] = None
                    ) -> dg.AutomationCondition:
    # Cached (conditions are immutable): building one parses the cron, ~0.7 ms per table otherwise.
    # Not AutomationCondition.on_cron: it waits for every dep to update after the tick, and our deps are
    # external API assets that are never materialized, so it would never fire (dagster issue 30140).
    # in_latest_time_window: a partitioned asset requests its latest partition, not its whole history; with a
    # lookback the partitions of the last N days, which the automation sensor launches as one backfill (its
    # `emit_backfills`), so one run over the range when the backfill policy is single_run.
    lookback = dt.timedelta(days=lookback_days) if lookback_days else None
    tick = dg.AutomationCondition.cron_tick_passed(cron_schedule, cron_timezone)
    condition = dg.AutomationCondition.in_latest_time_window(lookback) & tick.since_last_handled()
    label = f"on cron {cron_schedule} {cron_timezone}" + (f", last {lookback_days} days" if lookback_days else "")
    return (condition & ~dg.AutomationCondition.in_progress()).with_label(label)


def eager(config: Optional[AutomationConditionConfig]) -> dg.AutomationCondition:
    return dg.AutomationCondition.eager()


def on_missing(config: Optional[AutomationConditionConfig]) -> dg.AutomationCondition:
    return (_missing() & ~dg.AutomationCondition.in_progress()).with_label("on_missing")


def _missing() -> dg.AutomationCondition:
    """The asset (a time-partitioned one: its latest partition) is missing and its last run did not fail: requested
    when the asset appears, not again after a failure until someone materializes it. Not Dagster's
    `AutomationCondition.on_missing()`: it ignores assets missing before its first evaluation (a new source), and its
    `~any_deps_missing()` is always true for a raw table, whose dep is the external API asset, never materialized."""
    missing = dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()
    return dg.AutomationCondition.in_latest_time_window() & missing


def missing_or_changed(config: Optional[AutomationConditionConfig]) -> dg.AutomationCondition:
    """When the asset is missing (`on_missing`: not again after a failed run), when its code version
    changed (the translator's: its sources.yaml entry and data.py), and, with a `cron_schedule`, on each tick: a poll
    of a source whose changes Dagster cannot see, such as a file that a conditional GET finds unchanged."""
    condition = _missing() | dg.AutomationCondition.code_version_changed()
    label = "missing or changed"
    if config is not None and config.cron_schedule:
        tick = dg.AutomationCondition.cron_tick_passed(config.cron_schedule, config.cron_timezone)
        condition = condition | tick.since_last_handled()
        label += f", on cron {config.cron_schedule} {config.cron_timezone}"
    return (condition & ~dg.AutomationCondition.in_progress()).with_label(label)


def manual(config: Optional[AutomationConditionConfig]) -> None:
    """No automation: the asset is materialized only when someone asks."""
    return None


def build_automation_condition(meta: AssetDagsterMeta) -> Optional[dg.AutomationCondition]:
    """The Dagster condition `meta.automation_condition` names (None without one), from its registered builder.

    Example:
        >>> build_automation_condition(AssetDagsterMeta(automation_condition="eager")).get_label()
        'eager'
    """
    if not meta.automation_condition:
        return None
    condition = load_condition_builder(meta.automation_condition)(meta.automation_condition_config)
    if condition is not None and not isinstance(condition, dg.AutomationCondition):
        raise FoundationError(f"automation condition `{meta.automation_condition}`: its builder returned "
                              f"{type(condition).__name__}, not a dagster AutomationCondition or None")
    return condition
