"""Incremental cursors as dlt keeps them, shown and reset: `foundation state show|reset` (and read by `plan`).

The authoritative copy of a pipeline's state is the newest row of the dataset's `_dlt_pipeline_state` table; the local
working folder is a cache of it (`load.session`). Showing reads the destination through a throwaway pipeline in a
temporary folder, so it leaves nothing behind (no working folder, no DuckDB file that did not exist). Resetting goes
through dlt: under the source's lock, with the local state made to agree with the destination, the new state is
extracted as a load package and loaded the way dlt's `drop` command does it; dlt's tables are never edited with SQL.

Partitioned sources: each partition run keeps its own pipeline `foundation_<source>__<partition>` (see
`dagster.partition_runs`). `show` lists those pipelines; `reset` changes only the source's pipeline
`foundation_<source>`, which `foundation run` uses.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.errors import FoundationError
from data_foundation.load.cursors import incremental_entry, reading_client
from data_foundation.load.destinations import Target, normalize_identifier

__all__ = ["CursorChange", "CursorState", "DestinationView", "LocalFolder", "ResetError", "SourceState",
           "StoredState", "apply_reset", "describe_value", "jsonable", "parse_cursor_value", "plan_reset",
           "read_destination", "show_state"]

STATE_TABLE = "_dlt_pipeline_state"
DOWNLOADS_KEY = "downloads"  # unchanged.STATE_KEY: conditional-GET validators in the source state


class ResetError(FoundationError):
    """A reset that cannot be done as asked; the message says what to do instead."""


# --- reading the destination without leaving anything behind ---------------------------------------------------

@dataclass(frozen=True)
class StoredState:
    """The newest `_dlt_pipeline_state` row of a pipeline: where it is and what it holds."""

    pipeline_name: str
    version: int
    version_hash: Optional[str]
    saved_at: Optional[dt.datetime]
    load_id: Optional[str]
    state: Dict[str, Any]

    def source_state(self, source: str) -> Dict[str, Any]:
        return self.state.get("sources", {}).get(source, {})


@dataclass
class DestinationView:
    """What the destination holds for one source: its pipeline's state, the dataset's tables per resource (from dlt's
    schema stored there) and which of them exist, and the partition pipelines that saved state in the dataset."""

    dataset: str
    readable: bool = False  # False: a DuckDB file that does not exist yet (nothing loaded), nothing was opened
    stored: Optional[StoredState] = None
    resource_tables: Dict[str, List[str]] = field(default_factory=dict)  # resource -> its table and child tables
    existing: Dict[str, bool] = field(default_factory=dict)  # table -> exists in the dataset
    partition_pipelines: List[str] = field(default_factory=list)


def read_destination(source: SourceDef, target: Target, tables: Sequence[str] = (),
                     command: str = "state") -> DestinationView:
    """Read the source's state, schema and the existence of `tables` (and their child tables) in one connection
    (`cursors.reading_client`): nothing is written locally and a missing DuckDB file is not created. `command` names
    the `foundation` command in the message of a destination that cannot be read."""
    dataset = target.dataset_name(source.dataset_name)
    view = DestinationView(dataset)
    clash = target.duckdb_clash(dataset)
    if clash:
        raise ResetError(clash)
    if target.duckdb_file is not None and str(target.duckdb_file) != ":memory:" and not target.duckdb_file.exists():
        view.existing = {table: False for table in tables}
        return view
    view.readable = True
    pipeline_name = f"foundation_{source.name}"
    with reading_client(source, target, dataset, command) as client:
        view.stored = _stored_state(client, pipeline_name)
        view.resource_tables = _resource_tables(client, source.name)
        names = [t for table in tables for t in view.resource_tables.get(table, [normalize_identifier(table)])]
        view.existing = _existing_tables(client, names)
        view.partition_pipelines = _partition_pipelines(client, pipeline_name)
    return view


def _stored_state(client: Any, pipeline_name: str) -> Optional[StoredState]:
    from dlt.common.destination.client import WithStateSync
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.common.versioned_state import decompress_state
    from dlt.pipeline.state_sync import migrate_state_to_current

    if not isinstance(client, WithStateSync):
        return None
    try:
        info = client.get_stored_state(pipeline_name)
    except DestinationUndefinedEntity:  # no dataset or no state table yet
        return None
    if info is None:
        return None
    state = migrate_state_to_current(pipeline_name, decompress_state(info.state))
    return StoredState(pipeline_name, info.version, state.get("_version_hash"), info.created_at,
                       info._dlt_load_id, state)


def _resource_tables(client: Any, schema_name: str) -> Dict[str, List[str]]:
    """Per resource, its table and child tables as dlt's schema stored in the destination knows them."""
    import json

    from dlt.common.destination.client import WithStateSync
    from dlt.common.schema import Schema
    from dlt.common.schema.utils import group_tables_by_resource

    if not isinstance(client, WithStateSync):
        return {}
    info = client.get_stored_schema(schema_name)
    if info is None:
        return {}
    schema = Schema.from_dict(json.loads(info.schema))
    data_tables = {t["name"]: t for t in schema.data_tables(include_incomplete=True)}
    return {name: [t["name"] for t in group] for name, group in group_tables_by_resource(data_tables).items()}


def _existing_tables(client: Any, names: List[str]) -> Dict[str, bool]:
    """dlt's reflection of the destination (information schema on SQL destinations): a table without columns there
    does not exist."""
    if not names or not hasattr(client, "get_storage_tables"):
        return {name: False for name in names}
    from dlt.common.destination.exceptions import DestinationUndefinedEntity

    try:
        return {name: bool(columns) for name, columns in client.get_storage_tables(names)}
    except DestinationUndefinedEntity:
        return {name: False for name in names}


def _partition_pipelines(client: Any, pipeline_name: str) -> List[str]:
    """The pipelines `foundation_<source>__<partition>` that saved state in the dataset (a read of dlt's state table;
    destinations without SQL: none listed)."""
    from dlt.common.destination.exceptions import DestinationUndefinedEntity

    sql = getattr(client, "sql_client", None)
    if sql is None:
        return []
    table = sql.make_qualified_table_name(STATE_TABLE)
    try:
        rows = sql.execute_sql(f"SELECT DISTINCT pipeline_name FROM {table}") or []
    except DestinationUndefinedEntity:
        return []
    return sorted(r[0] for r in rows if str(r[0]).startswith(pipeline_name + "__"))


# --- show --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CursorState:
    """One incremental resource's cursor as the destination's state holds it."""

    table: str
    cursor_path: str
    initial_value: Any
    last_value: Any
    rows_at_last_value: int  # dlt's `unique_hashes`: rows with the last value already loaded (not loaded again)
    disposition: str
    validators: bool  # conditional-GET validators (`downloads`) kept for the resource

    @property
    def loaded(self) -> bool:
        return self.last_value is not None


@dataclass(frozen=True)
class LocalFolder:
    """The local working folder of the pipeline: a cache of the destination's state."""

    path: str
    exists: bool
    version: Optional[int] = None
    version_hash: Optional[str] = None

    def agreement(self, stored: Optional[StoredState]) -> str:
        if not self.exists:
            return "absent: the next run restores it from the destination"
        if stored is None:
            return (f"state version {self.version}; the destination holds none: the next run drops it"
                    if self.version else "empty")
        if self.version_hash == stored.version_hash:
            return f"agrees with the destination (state version {self.version})"
        return (f"state version {self.version} differs from the destination's {stored.version}: the next run makes "
                "it agree with the destination")


@dataclass
class SourceState:
    source: str
    pipeline_name: str
    dataset: str
    destination: str
    where: str  # the DuckDB file, or the server's non-secret location
    stored: Optional[StoredState]
    cursors: List[CursorState]
    without_cursor: List[str]
    local: LocalFolder
    partition_pipelines: List[str]
    partitioned: bool

    @property
    def state_table(self) -> str:
        return f"{self.dataset}.{STATE_TABLE}"

    def to_json(self) -> Dict[str, Any]:
        stored = self.stored
        return jsonable({
            "source": self.source, "pipeline": self.pipeline_name, "destination": self.destination,
            "location": self.where, "dataset": self.dataset, "state_table": self.state_table,
            "state": None if stored is None else {"version": stored.version, "version_hash": stored.version_hash,
                                                  "saved_at": stored.saved_at, "load_id": stored.load_id},
            "local": {"path": self.local.path, "exists": self.local.exists, "version": self.local.version,
                      "agrees": self.local.exists and stored is not None
                      and self.local.version_hash == stored.version_hash},
            "cursors": [{"table": c.table, "cursor_path": c.cursor_path, "last_value": c.last_value,
                         "initial_value": c.initial_value, "rows_at_last_value": c.rows_at_last_value,
                         "write_disposition": c.disposition, "validators": c.validators} for c in self.cursors],
            "without_cursor": self.without_cursor,
            "partitioned": self.partitioned,
            "partition_pipelines": self.partition_pipelines,
        })


def show_state(source: SourceDef, target: Target) -> SourceState:
    """The cursors of `source` in `target` and where they live (nothing is written, nothing is fetched)."""
    view = read_destination(source, target)
    pipeline_name = f"foundation_{source.name}"
    source_state = view.stored.source_state(source.name) if view.stored else {}
    cursors = [_cursor_state(r, source_state) for r in source.resources if r.spec.incremental is not None]
    return SourceState(
        source=source.name, pipeline_name=pipeline_name, dataset=view.dataset,
        destination=target.destination_name, where=_where(target), stored=view.stored, cursors=cursors,
        without_cursor=[r.table for r in source.resources if r.spec.incremental is None],
        local=_local_folder(Path(target.pipelines_dir(view.dataset)) / pipeline_name),
        partition_pipelines=view.partition_pipelines, partitioned=source.dagster.partition is not None)


def _cursor_state(resource: ResourceDef, source_state: Dict[str, Any]) -> CursorState:
    spec = resource.spec.incremental
    entry = incremental_entry(source_state, resource.table, spec.cursor_path) or {}
    return CursorState(resource.table, spec.cursor_path, spec.initial_value, entry.get("last_value"),
                       len(entry.get("unique_hashes") or []), resource.spec.disposition,
                       resource.table in source_state.get(DOWNLOADS_KEY, {}))


def _local_folder(path: Path) -> LocalFolder:
    """The working folder's own state file, read as dlt reads it, without opening a pipeline (which would create the
    folder)."""
    state_file = path / "state.json"
    if not state_file.exists():
        return LocalFolder(str(path), path.exists())
    from dlt.common.versioned_state import json_decode_state

    try:
        state = json_decode_state(state_file.read_text())
    except (OSError, ValueError):
        return LocalFolder(str(path), True)
    return LocalFolder(str(path), True, state.get("_state_version"), state.get("_version_hash"))


def _where(target: Target) -> str:
    return str(target.duckdb_file.resolve()) if target.duckdb_file is not None else (target.location or "")


# --- reset -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CursorChange:
    """One cursor a reset moves: from `before` (None: never loaded) to `after` (the initial value, or `--to`)."""

    table: str
    cursor_path: str
    before: Any
    after: Any
    to_initial: bool
    disposition: str
    validators: bool  # its conditional-GET validators are reset too

    @property
    def changes(self) -> bool:
        return self.before is not None or not self.to_initial

    def warning(self, source: str) -> Optional[str]:
        """Why re-loading from an earlier value of an `append` table duplicates rows, and what to do instead."""
        if self.disposition != "append" or not self.changes:
            return None
        return (f"`{source}.{self.table}` is `append`: re-loading from {describe_value(self.after)} loads rows already "
                f"in the table again (duplicates). Use `write_disposition: merge` with a `primary_key`, or re-load the "
                f"whole table with `foundation run {source}.{self.table} --full-refresh`.")


def plan_reset(source: SourceDef, target: Target, table: Optional[str] = None, to: Optional[str] = None
               ) -> List[CursorChange]:
    """The cursors `foundation state reset SOURCE[.TABLE] [--to VALUE]` would move, read from the destination
    (nothing changed). `ResetError` for a table without `incremental`, an unknown table, a value of the wrong type."""
    view = read_destination(source, target)
    return _changes(source, _reset_resources(source, table),
                    view.stored.source_state(source.name) if view.stored else None, to)


def apply_reset(source: SourceDef, target: Target, confirmed: List[CursorChange], to: Optional[str] = None) -> int:
    """Move the confirmed cursors, with dlt: under the source's lock, the local state made to agree with the
    destination, then dlt's drop of the resources' state (`state_only`) for a reset to the initial value, or the
    incremental entries changed in dlt's managed state for `--to`; the new state is loaded as dlt loads it. Fails
    without changing anything when the cursors moved since they were confirmed. Returns the new state version."""
    from data_foundation.load.running import step_errors
    from data_foundation.load.session import load_session

    tables = [c.table for c in confirmed]
    with step_errors(source, target), load_session(source, target) as session:
        pipeline = session.pipeline
        pipeline.sync_destination()  # the destination's state and schemas in the working folder
        current = _changes(source, [source.resource(t) for t in tables],
                           pipeline.state.get("sources", {}).get(source.name), to)
        if [(c.before, c.after) for c in current] != [(c.before, c.after) for c in confirmed]:
            raise ResetError(f"the state of source `{source.name}` changed since the reset was shown (a load ran in "
                             "between); nothing was reset. Run the command again to see the new values.")
        try:
            if to is None:
                _drop_resource_state(pipeline, current)
            else:
                _set_last_values(pipeline, source.name, current)
        except Exception:
            pipeline.drop()  # local state back to nothing: the next run restores it from the destination
            raise
        return pipeline.state.get("_state_version")


def _drop_resource_state(pipeline: Any, changes: List[CursorChange]) -> None:
    """dlt's `drop` with `state_only`: the resources' state and validators removed, tables kept, the new state
    loaded (dlt restores its local state itself when the load fails)."""
    from dlt.pipeline.helpers import pipeline_drop

    paths = [f"{DOWNLOADS_KEY}.{c.table}" for c in changes if c.validators]
    pipeline_drop(pipeline, resources=[c.table for c in changes], state_paths=paths, state_only=True)()


def _set_last_values(pipeline: Any, source: str, changes: List[CursorChange]) -> None:
    """Each incremental entry's `last_value` set and its `unique_hashes` cleared (the rows at the old value say
    nothing about the new one), in dlt's managed state, which extracts the new state into a load package; then
    normalized and loaded as the state of a run is."""
    with pipeline.managed_state(extract_state=True) as state:
        source_state = state.setdefault("sources", {}).setdefault(source, {})
        for change in changes:
            resource = source_state.setdefault("resources", {}).setdefault(change.table, {})
            entry = resource.setdefault("incremental", {}).setdefault(change.cursor_path, {})
            entry.setdefault("initial_value", None)
            entry["last_value"] = change.after
            entry["unique_hashes"] = []
            if change.validators:
                source_state.get(DOWNLOADS_KEY, {}).pop(change.table, None)
    pipeline.normalize()
    pipeline.load()


def _reset_resources(source: SourceDef, table: Optional[str]) -> List[ResourceDef]:
    if table is None:
        resources = [r for r in source.resources if r.spec.incremental is not None]
        if not resources:
            raise ResetError(f"source `{source.name}` has no resource with `incremental`: there is no cursor to reset. "
                             f"To re-load its tables, run `foundation run {source.name} --full-refresh`.")
        return resources
    try:
        resource = source.resource(table)
    except KeyError:
        known = ", ".join(f"{source.name}.{r.table}" for r in source.resources)
        raise ResetError(f"`{source.name}.{table}` is no table of source `{source.name}` (tables: {known}).") from None
    if resource.spec.incremental is None:
        raise ResetError(f"`{resource.name}` has no `incremental` cursor: every run loads all its rows, so there is "
                         "nothing to reset. To re-load its table, run "
                         f"`foundation run {resource.name} --full-refresh`.")
    return [resource]


def _changes(source: SourceDef, resources: List[ResourceDef], source_state: Optional[Dict[str, Any]],
             to: Optional[str]) -> List[CursorChange]:
    if to is not None and source_state is None:
        raise ResetError(f"source `{source.name}` was never loaded into this dataset: its first run starts from each "
                         "cursor's `initial_value`. To start elsewhere, change `incremental.initial_value` in "
                         "sources.yaml.")
    source_state = source_state or {}
    changes = []
    for resource in resources:
        spec = resource.spec.incremental
        entry = incremental_entry(source_state, resource.table, spec.cursor_path) or {}
        before = entry.get("last_value")
        after = spec.initial_value if to is None else parse_cursor_value(
            to, before if before is not None else spec.initial_value, f"{resource.name} ({spec.cursor_path})")
        changes.append(CursorChange(resource.table, spec.cursor_path, before, after, to is None,
                                    resource.spec.disposition, resource.table in source_state.get(DOWNLOADS_KEY, {})))
    return changes


# --- cursor values -----------------------------------------------------------------------------------------------

def parse_cursor_value(text: str, like: Any, what: str = "the cursor") -> Any:
    """`text` as a value of the type of `like` (the cursor's last or initial value): an integer, a number, an ISO date,
    an ISO datetime (without a zone: that of `like`, else UTC), or a string; a date-like string cursor takes only a
    date-like string. `ResetError` saying what was expected when it does not parse."""
    kind, parse = _parser(like)
    try:
        return parse(text.strip())
    except (ValueError, TypeError):
        example = f" such as `{describe_value(like)}`" if like is not None else ""
        raise ResetError(f"`{text}` is not a value of cursor {what}: expected {kind}{example}. Pass "
                         f"--to with {kind}.") from None


def _parser(like: Any) -> Any:
    if isinstance(like, bool):
        return "true or false", _parse_bool
    if isinstance(like, int):
        return "an integer", int
    if isinstance(like, float):
        return "a number", float
    if isinstance(like, dt.datetime):
        return "an ISO datetime (e.g. 2024-01-31T00:00:00+00:00)", lambda text: _parse_datetime(text, like)
    if isinstance(like, dt.date):
        return "an ISO date (e.g. 2024-01-31)", dt.date.fromisoformat
    if isinstance(like, str) and _date_like(like):
        return "an ISO date or datetime written like the cursor", _date_like_string
    if isinstance(like, str):
        return "a string", str
    return "a value", _guess


def _parse_bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def _parse_datetime(text: str, like: dt.datetime) -> dt.datetime:
    from dlt.common.pendulum import pendulum

    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None and like.tzinfo is not None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return pendulum.instance(value) if isinstance(like, pendulum.DateTime) else value


def _date_like(text: str) -> bool:
    from dlt.common.time import detect_datetime_format

    return detect_datetime_format(text) is not None


def _date_like_string(text: str) -> str:
    if not _date_like(text):
        raise ValueError(text)
    return text


def _guess(text: str) -> Any:
    """No value to go by (no initial value, never loaded): an integer, a number, else the string."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def describe_value(value: Any) -> str:
    """A cursor value as the CLI prints it: ISO for dates and times, `none` for no value."""
    if value is None:
        return "none"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def jsonable(value: Any) -> Any:
    """`value` with dates and times as ISO strings, for `--json`."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
