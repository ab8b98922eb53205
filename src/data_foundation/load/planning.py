"""`foundation plan`: what `foundation run` would do per table, read from the spec and the destination, without
fetching any data (no entry is called: the dlt source is never built).

The start value is the one dlt gives the entry's `incremental`: the destination state's `last_value` with
`incremental.lag` applied by dlt's own function (`apply_lag_with_suppression`, as `Incremental.bind` does), the
`initial_value` when the table was never loaded or with `--full-refresh`. The automation is read from the resource's
merged `meta.dagster`, labelled as the Dagster layer labels its conditions, with the next cron tick in its time zone.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from data_foundation.config.dagster_meta import AssetDagsterMeta, PartitionSpec
from data_foundation.config.project import Project, ResourceDef, SourceDef
from data_foundation.errors import Problem
from data_foundation.load.cursors import incremental_entry
from data_foundation.load.destinations import Target, normalize_identifier
from data_foundation.load.state_edit import DestinationView, describe_value, jsonable, read_destination

__all__ = ["TablePlan", "automation", "describe_start", "plan_selection", "plan_source", "start_value"]

CRON_CONDITIONS = ("on_schedule", "on_cron")  # their Dagster label: `on cron <schedule> <zone>` (automation.py)


@dataclass
class TablePlan:
    source: str
    table: str
    write_disposition: str
    merge_strategy: Optional[str]
    primary_key: List[str]
    merge_key: List[str]
    cursor_path: Optional[str]
    start_value: Any  # what the entry's `incremental.start_value` will be (None: no cursor, or no initial value)
    start_from: str  # where the start value comes from: `initial_value`, `last_value`, `last_value - lag`, ``
    destination: str
    dataset: str
    exists: bool
    full_refresh_drops: List[str]  # the existing tables (the resource's and its child tables) --full-refresh drops
    automation: str  # the condition's label, `manual only` without one
    next_run: Optional[str]  # the next cron tick in its time zone, or when a condition without a cron fires
    partitions: Optional[str]
    warnings: List[Problem] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return jsonable({
            "source": self.source, "table": self.table, "write_disposition": self.write_disposition,
            "merge_strategy": self.merge_strategy, "primary_key": self.primary_key, "merge_key": self.merge_key,
            "cursor_path": self.cursor_path, "start_value": self.start_value, "start_from": self.start_from,
            "destination": self.destination, "dataset": self.dataset, "exists": self.exists,
            "full_refresh_drops": self.full_refresh_drops, "automation": self.automation, "next_run": self.next_run,
            "partitions": self.partitions,
            "warnings": [{"location": w.location, "key": w.key_path, "message": w.message, "hint": w.hint}
                         for w in self.warnings],
        })


def plan_selection(project: Project, target: Target, selectors: Sequence[str] = (), full_refresh: bool = False,
                   now: Optional[dt.datetime] = None) -> List[TablePlan]:
    """`plan_source` for every source the selectors pick (all when none), in order."""
    return [plan for source, tables in project.select(selectors)
            for plan in plan_source(source, tables, target, full_refresh, project.warnings, now)]


def plan_source(source: SourceDef, tables: Sequence[str], target: Target, full_refresh: bool = False,
                warnings: Sequence[Problem] = (), now: Optional[dt.datetime] = None) -> List[TablePlan]:
    """One `TablePlan` per selected table of `source`: the destination read once (state, dlt's stored schema, which
    tables exist), nothing written, no entry called."""
    view = read_destination(source, target, tables, "plan")
    source_state = view.stored.source_state(source.name) if view.stored else {}
    now = now or dt.datetime.now(dt.timezone.utc)
    return [_table_plan(source, source.resource(table), target, view, source_state, full_refresh, warnings, now)
            for table in tables]


def _table_plan(source: SourceDef, resource: ResourceDef, target: Target, view: DestinationView,
                source_state: Dict[str, Any], full_refresh: bool, warnings: Sequence[Problem],
                now: dt.datetime) -> TablePlan:
    spec = resource.spec
    wd = spec.write_disposition
    start, start_from = _start(resource, source_state, full_refresh)
    label, next_run = automation(resource.dagster, now)
    name = normalize_identifier(resource.table)  # the table dlt writes (`Notes` -> `notes`)
    tables = view.resource_tables.get(resource.table, [name])
    return TablePlan(
        source=source.name, table=resource.table, write_disposition=spec.disposition,
        merge_strategy=None if isinstance(wd, str) else wd.strategy,
        primary_key=spec.primary_key_columns, merge_key=_columns(spec.merge_key),
        cursor_path=spec.incremental.cursor_path if spec.incremental else None,
        start_value=start, start_from=start_from, destination=target.destination_name, dataset=view.dataset,
        exists=view.existing.get(name, False),
        full_refresh_drops=[t for t in tables if view.existing.get(t, False)],
        automation=label, next_run=next_run, partitions=_partitions(source.dagster.partition),
        warnings=_warnings_for(resource, warnings))


def _columns(value: Any) -> List[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _start(resource: ResourceDef, source_state: Dict[str, Any], full_refresh: bool) -> Tuple[Any, str]:
    spec = resource.spec.incremental
    if spec is None:
        return None, ""
    entry = incremental_entry(source_state, resource.table, spec.cursor_path)
    last = None if full_refresh or not entry else entry.get("last_value")
    value = start_value(spec, last, resource.table)
    if last is None:
        return value, "initial_value"
    return value, "last_value" if value == last else "last_value - lag"


def start_value(spec: Any, last_value: Any, resource_name: str = "") -> Any:
    """The `start_value` dlt binds for an incremental with `spec` (an `IncrementalSpec`) and the state's `last_value`
    (None: never loaded, dlt starts from `initial_value`): dlt's own lag rule, with dlt's default `max`."""
    from dlt.extract.incremental.lag import apply_lag_with_suppression

    last = spec.initial_value if last_value is None else last_value
    return apply_lag_with_suppression(spec.lag, max, spec.initial_value, spec.end_value, last, resource_name)


# --- automation --------------------------------------------------------------------------------------------------

def automation(meta: AssetDagsterMeta, now: Optional[dt.datetime] = None) -> Tuple[str, Optional[str]]:
    """(the label the Dagster layer gives the resource's automation condition, when it fires next). The labels are
    those of `dagster.automation` (a test compares them), made here without importing Dagster; a condition a package
    registers is shown by its name."""
    name = meta.automation_condition
    config = meta.automation_condition_config
    cron = config.cron_schedule if config else None
    zone = config.cron_timezone if config else "UTC"
    if not name or name == "manual":
        return "manual only", None
    tick = _next_tick(cron, zone, now) if cron else None
    if name in CRON_CONDITIONS:
        lookback = config.lookback_days
        return f"on cron {cron} {zone}" + (f", last {lookback} days" if lookback else ""), tick
    if name == "missing_or_changed":
        label = "missing or changed" + (f", on cron {cron} {zone}" if cron else "")
        return label, tick or "when missing or its code changes"
    if name == "on_missing":
        return "on_missing", "when missing"
    if name == "eager":
        return "eager", "when missing or an upstream asset updates"
    return name + (f" ({cron} {zone})" if cron else ""), tick


def _next_tick(cron: str, zone: str, now: Optional[dt.datetime]) -> str:
    """The next tick of `cron` after `now`, in the cron's time zone (as Dagster evaluates `cron_tick_passed`)."""
    import zoneinfo

    from croniter import croniter

    tz = zoneinfo.ZoneInfo(zone)
    start = (now or dt.datetime.now(dt.timezone.utc)).astimezone(tz)
    tick = croniter(cron, start).get_next(dt.datetime)
    return f"{tick.strftime('%Y-%m-%d %H:%M')} {zone}"


def _partitions(partition: Optional[PartitionSpec]) -> Optional[str]:
    if partition is None:
        return None
    return f"{partition.type} from {partition.start}" + (f" to {partition.end}" if partition.end else "")


def _warnings_for(resource: ResourceDef, warnings: Sequence[Problem]) -> List[Problem]:
    """The validation warnings about this resource (its key path) or its whole source."""
    own = (f"resources.{resource.name}", f"sources.{resource.source}")
    return [w for w in warnings if w.key_path == own[0] or w.key_path.startswith(own[0] + ".")
            or w.key_path == own[1] or w.key_path.startswith(own[1] + ".")]


def describe_start(plan: TablePlan) -> str:
    """The start value as the CLI prints it, with where it comes from."""
    if plan.cursor_path is None:
        return ""
    return f"{describe_value(plan.start_value)} ({plan.start_from})"
