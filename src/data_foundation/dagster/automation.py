"""`meta.dagster.automation_condition` names -> Dagster automation conditions (an open registry)."""

from functools import lru_cache
from typing import Callable, Dict, Optional

import dagster as dg

from data_foundation.config.dagster_meta import AutomationConditionConfig, DagsterMeta, register_automation_condition_name

__all__ = ["build_automation_condition", "register_automation_condition"]

ConditionBuilder = Callable[[Optional[AutomationConditionConfig]], Optional[dg.AutomationCondition]]


def _on_cron(config: Optional[AutomationConditionConfig]) -> dg.AutomationCondition:
    return _cron_condition(config.cron_schedule, config.cron_timezone)


@lru_cache(maxsize=None)
def _cron_condition(cron_schedule: str, cron_timezone: str) -> dg.AutomationCondition:
    # Cached (conditions are immutable): building one parses the cron, ~0.7 ms per table otherwise.
    # Not AutomationCondition.on_cron: it waits for every dep to update after the tick, and our deps are
    # external API assets that are never materialized, so it would never fire (dagster issue 30140).
    # in_latest_time_window: a partitioned asset requests its latest partition, not its whole history.
    tick = dg.AutomationCondition.cron_tick_passed(cron_schedule, cron_timezone)
    condition = dg.AutomationCondition.in_latest_time_window() & tick.since_last_handled()
    return (condition & ~dg.AutomationCondition.in_progress()).with_label(f"on cron {cron_schedule} {cron_timezone}")


_REGISTRY: Dict[str, ConditionBuilder] = {
    "on_schedule": _on_cron,
    "on_cron": _on_cron,
    "eager": lambda _: dg.AutomationCondition.eager(),
    "on_missing": lambda _: dg.AutomationCondition.on_missing(),
    "missing_or_changed": lambda _: (dg.AutomationCondition.missing() | dg.AutomationCondition.code_version_changed())
    & ~dg.AutomationCondition.in_progress(),
    "manual": lambda _: None,
}


def register_automation_condition(name: str, builder: ConditionBuilder) -> None:
    """Add a named condition usable as `meta.dagster.automation_condition: <name>`.

    Example:
        >>> register_automation_condition("hourly", lambda _: dg.AutomationCondition.cron_tick_passed("@hourly"))
    """
    _REGISTRY[name] = builder
    register_automation_condition_name(name)


def build_automation_condition(meta: DagsterMeta) -> Optional[dg.AutomationCondition]:
    if not meta.automation_condition:
        return None
    return _REGISTRY[meta.automation_condition](meta.automation_condition_config)
