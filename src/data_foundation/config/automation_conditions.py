"""The automation conditions `meta.dagster.automation_condition` may name: one registry, name -> builder.

Validation reads only the names, so `foundation validate` imports no builder and no Dagster; the Dagster layer
imports a builder the first time it builds that condition. A builder is a `module:function` reference: the built-in
ones are functions of `data_foundation.dagster.automation`.

A package adds conditions of its own with entry points in the group `data_foundation.automation_conditions`. The
CLI and the Dagster code location are separate processes; both read the same installed package metadata, so both
know the same names (a `register_*()` call would reach only the process that ran it):

    # pyproject.toml of the package, installed in the environment of the CLI and of the code location
    [project.entry-points."data_foundation.automation_conditions"]
    business_hours = "my_conditions:business_hours"

`business_hours(config)` gets the `automation_condition_config` as written (an `AutomationConditionConfig`, or None)
and returns a `dg.AutomationCondition` (or None for no automation). A built-in name cannot be replaced: an entry
point with one is ignored, and of two entry points with one name the first on `sys.path` wins.
"""

import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional

from data_foundation.errors import FoundationError

__all__ = ["BUILT_IN_CONDITIONS", "ENTRY_POINT_GROUP", "ConditionEntry", "condition_names", "find_condition",
           "load_condition_builder", "refresh_conditions"]

ENTRY_POINT_GROUP = "data_foundation.automation_conditions"


@dataclass(frozen=True)
class ConditionEntry:
    """A registered name: its builder (`module:function`), whether it needs `cron_schedule`, where it comes from."""

    name: str
    builder: str
    needs_cron_schedule: bool = False
    origin: str = "data-foundation"


_BUILDERS = "data_foundation.dagster.automation:"
BUILT_IN_CONDITIONS: Dict[str, ConditionEntry] = {entry.name: entry for entry in (
    ConditionEntry("on_schedule", _BUILDERS + "on_cron", needs_cron_schedule=True),
    ConditionEntry("on_cron", _BUILDERS + "on_cron", needs_cron_schedule=True),
    ConditionEntry("eager", _BUILDERS + "eager"),
    ConditionEntry("on_missing", _BUILDERS + "on_missing"),
    ConditionEntry("missing_or_changed", _BUILDERS + "missing_or_changed"),
    ConditionEntry("manual", _BUILDERS + "manual"),
)}


def find_condition(name: str) -> Optional[ConditionEntry]:
    """The entry registered as `name`, or None. Installed entry points are read only for a name not built in."""
    return BUILT_IN_CONDITIONS.get(name) or _installed().get(name)


def condition_names() -> List[str]:
    """Every valid `automation_condition` value, sorted."""
    return sorted({**_installed(), **BUILT_IN_CONDITIONS})


@lru_cache(maxsize=None)
def load_condition_builder(name: str) -> Callable[[Any], Any]:
    """Import the builder of `name` (a validated name: `FoundationError` when it is not registered or not importable).

    Example:
        >>> build = load_condition_builder("on_schedule")  # imports data_foundation.dagster.automation
        >>> build(AutomationConditionConfig(cron_schedule="@daily")).get_label()
        'on cron @daily UTC'
    """
    entry = find_condition(name)
    if entry is None:
        raise FoundationError(f"`{name}` is not a known automation condition. "
                              f"Valid values: {', '.join(condition_names())}.")
    try:
        return importlib.metadata.EntryPoint(name, entry.builder, ENTRY_POINT_GROUP).load()
    except Exception as exc:  # the user's module: whatever it raises while importing
        raise FoundationError(f"automation condition `{name}`: cannot import its builder `{entry.builder}` "
                              f"({entry.origin}): {type(exc).__name__}: {exc}") from exc


def refresh_conditions() -> None:
    """Read the installed entry points again (after installing a package into a running process, as tests do)."""
    _installed.cache_clear()
    load_condition_builder.cache_clear()


@lru_cache(maxsize=1)
def _installed() -> Dict[str, ConditionEntry]:
    found: Dict[str, ConditionEntry] = {}
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in BUILT_IN_CONDITIONS and point.name not in found:
            origin = f"entry point of {point.dist.name}" if point.dist else "entry point"
            found[point.name] = ConditionEntry(point.name, point.value, origin=origin)
    return found
