"""What `foundation status` reports per source and table, read from the records dlt keeps anyway, never from a
bookkeeping of our own: the last successful load, the last failure, the incremental cursor, freshness and loads that
were started but not finished.

* Loads: the dataset's `_dlt_loads` (`status = 0`, `schema_name` = the source: partition runs load through pipelines of
  their own but the source's schema). A load id is the time dlt created the package (a unix timestamp), so a load
  took `inserted_at - load_id`. Rows per table: `_dlt_load_id` in each resource's table (root tables; child tables
  have no `_dlt_load_id`).
* Cursors: the newest pipeline state the dataset holds (`_dlt_pipeline_state`, see `load.cursors`).
* Pending: load packages in this machine's working folder (extracted or normalized, not loaded), and rows in the
  destination whose `_dlt_load_id` has no `_dlt_loads` row: a run killed while loading. The next run on the machine
  that holds the package completes it (`load.session.finish_pending_load`).
* Failures: nothing in dlt's tables records a failed run, so `record_failure` (called by `load.running.step_errors`,
  which the CLI and Dagster both pass through) loads one row with dlt - its documented way of keeping a run's trace
  in the destination - into table `failures` of the target's dataset `foundation_runs`, through a throwaway pipeline.
  The row goes to a dataset of its own, not the source's, so a source's dataset stays what dlt and dbt made of it: a
  failed run adds no `_dlt_loads` row and no table there. The local trace (`trace.pickle`) covers a failure the
  destination could not record.

Everything here only reads, except `record_failure`; a DuckDB file is opened read-only and never created.
"""

import logging
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import dlt

from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.config.tables import RUNS_DATASET
from data_foundation.errors import mask_secrets
from data_foundation.load.cursors import (Cursor, DestinationUnreadable, incremental_cursor,
                                         reading_client)
from data_foundation.load.destinations import Target, normalize_identifier

__all__ = ["FAILURES_DATASET", "FAILURES_TABLE", "Failure", "Freshness", "Load", "PendingLoad", "SourceStatus",
           "StatusError", "TableStatus", "humanize_seconds", "read_status", "record_failure", "source_status"]

logger = logging.getLogger(__name__)

FAILURES_DATASET = RUNS_DATASET  # before the target's prefix and suffix, like a source's name
FAILURES_TABLE = "failures"
RECORD_TIMEOUT_ENV = "FOUNDATION_FAILURE_RECORD_TIMEOUT"
DEFAULT_RECORD_TIMEOUT = 10.0  # seconds a failed run waits at most for its failure to be recorded
_CAUSE_LIMIT = 1000  # characters of the one-line cause kept in the record

# dlt's column hints of the failure record: typed, so a column that is null in the first row exists all the same
_FAILURE_COLUMNS = {
    "source": {"data_type": "text", "nullable": False},
    "dataset": {"data_type": "text", "nullable": False},
    "pipeline_name": {"data_type": "text", "nullable": False},
    "step": {"data_type": "text", "nullable": False},
    "cause": {"data_type": "text", "nullable": False},
    "load_id": {"data_type": "text", "nullable": True},
    "started_at": {"data_type": "timestamp", "nullable": True},
    "finished_at": {"data_type": "timestamp", "nullable": False},
    "tables": {"data_type": "text", "nullable": True},
    "host": {"data_type": "text", "nullable": True},
    "pid": {"data_type": "bigint", "nullable": True},
}


StatusError = DestinationUnreadable  # the destination could not be read; the message says why and what to do


# --- what status reports ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    """A completed load: dlt's load id (the time its package was created, i.e. the run's extraction started) and
    `_dlt_loads.inserted_at` (the time the load completed)."""

    load_id: str
    finished_at: datetime

    @property
    def started_at(self) -> datetime:
        return _load_id_time(self.load_id) or self.finished_at

    @property
    def seconds(self) -> float:
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class Failure:
    """The last failed run of a source: where (`recorded`: `destination`, or `local` from dlt's trace in this
    machine's working folder), the failed step and its cause in one line, secrets masked."""

    finished_at: datetime
    step: str
    cause: str
    pipeline: str
    started_at: Optional[datetime] = None
    load_id: Optional[str] = None
    tables: Tuple[str, ...] = ()
    host: str = ""
    pid: Optional[int] = None
    recorded: str = "destination"


@dataclass(frozen=True)
class PendingLoad:
    """A load that was started but not completed. `stage`: `extracted` or `normalized` (a package in this machine's
    working folder), `partially loaded` (some of its rows are in the destination, without a `_dlt_loads` row)."""

    load_id: str
    stage: str
    local: bool
    rows: Optional[Dict[str, int]] = None  # what the package holds, when known (normalized: dlt's row journal)
    rows_in_destination: Dict[str, int] = field(default_factory=dict)

    @property
    def started_at(self) -> Optional[datetime]:
        return _load_id_time(self.load_id)


@dataclass(frozen=True)
class Freshness:
    """`meta.dagster.freshness_lower_bound_delta_seconds` against the last load: `fresh`, `late`, `never_loaded`
    (whatever the policy) or `no_policy`."""

    state: str
    limit_seconds: Optional[int] = None
    age_seconds: Optional[float] = None

    @property
    def late_seconds(self) -> Optional[float]:
        if self.state != "late":
            return None
        return self.age_seconds - self.limit_seconds

    def describe(self) -> str:
        if self.state == "late":
            return f"late by {humanize_seconds(self.late_seconds)}"
        return {"fresh": "fresh", "never_loaded": "never loaded", "no_policy": "no policy"}[self.state]


@dataclass(frozen=True)
class TableStatus:
    """One table. `last_load` is the source's last successful load once the table exists (dlt records loads per
    source, not per table); `rows` what that load brought to the table; `last_rows` the newest load that brought any."""

    table: str
    last_load: Optional[Load]
    rows: Optional[int]
    last_rows: Optional[Load]
    cursor: Optional[Cursor]
    freshness: Freshness

    @property
    def attention(self) -> bool:
        return self.freshness.state in ("late", "never_loaded")


@dataclass(frozen=True)
class SourceStatus:
    source: str
    dataset: str
    pipeline: str
    last_load: Optional[Load]
    last_failure: Optional[Failure]
    pending: List[PendingLoad]
    tables: List[TableStatus]

    @property
    def failing(self) -> bool:
        """Its last failure is newer than its last successful load."""
        failure = self.last_failure
        return failure is not None and (self.last_load is None or failure.finished_at > self.last_load.finished_at)

    @property
    def attention(self) -> bool:
        """Failing, or a table late or never loaded: what `foundation status` exits 1 for."""
        return self.failing or any(t.attention for t in self.tables)


def read_status(project: Any, target: Target, selectors: Iterable[str] = (),
                now: Optional[datetime] = None) -> List[SourceStatus]:
    """`source_status` of every source the `source` / `source.table` selectors pick (all when none), in order."""
    now = now or datetime.now(timezone.utc)
    return [source_status(source, target, tables, now) for source, tables in project.select(selectors)]


def source_status(source: SourceDef, target: Target, tables: Optional[Sequence[str]] = None,
                  now: Optional[datetime] = None) -> SourceStatus:
    """The status of `source` (its `tables`, all when None) in `target`: the destination's records, plus this
    machine's working folder for pending packages and a failure the destination could not record.

    Example:
        >>> status = source_status(project.sources["jaffle_shop"], create_target("duckdb", "warehouse.duckdb"))
        >>> status.tables[0].freshness.describe()
        'late by 3 h 12 min'
    """
    now = now or datetime.now(timezone.utc)
    dataset = target.dataset_name(source.dataset_name)
    clash = target.duckdb_clash(dataset)
    if clash:
        raise StatusError(clash)
    resources = [source.resource(t) for t in (tables or [r.table for r in source.resources])]
    remote = _read_destination(source, target, dataset, [_table_name(r) for r in resources])
    local_pending, local_failure = _read_local(source, target, dataset)
    last_load = remote.last_load(source.name)
    return SourceStatus(
        source=source.name,
        dataset=dataset,
        pipeline=f"foundation_{source.name}",
        last_load=last_load,
        last_failure=_newest_failure(remote.failure, local_failure),
        pending=_pending(local_pending, remote),
        tables=[_table_status(r, remote, last_load, now) for r in resources],
    )


def _table_status(resource: ResourceDef, remote: "_Records", last_load: Optional[Load], now: datetime
                  ) -> TableStatus:
    name = _table_name(resource)
    counts = remote.table_loads.get(name)  # None: the table does not exist (yet)
    loaded = last_load if counts is not None else None
    completed = {load_id: n for load_id, n in (counts or {}).items() if load_id in remote.completed}
    newest = max(completed, key=_load_order, default=None)
    return TableStatus(
        table=resource.table,
        last_load=loaded,
        rows=completed.get(loaded.load_id, 0) if loaded else None,
        last_rows=Load(newest, remote.completed[newest]) if newest else None,
        cursor=incremental_cursor(resource, remote.state),
        freshness=_freshness(resource, loaded, now),
    )


def _freshness(resource: ResourceDef, loaded: Optional[Load], now: datetime) -> Freshness:
    limit = resource.dagster.freshness_lower_bound_delta_seconds
    if loaded is None:
        return Freshness("never_loaded", limit)
    age = max(0.0, (now - loaded.finished_at).total_seconds())
    if limit is None:
        return Freshness("no_policy", None, age)
    return Freshness("late" if age > limit else "fresh", limit, age)


def humanize_seconds(seconds: float) -> str:
    """The two largest units: `45 s`, `3 min 5 s`, `3 h 12 min`, `2 d 4 h`."""
    total = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size} {unit}")
            total %= size
        elif parts:
            break
    return " ".join(parts[:2])


# --- the destination --------------------------------------------------------------------------------------------

@dataclass
class _Records:
    """What the destination holds about one source: every `_dlt_loads` row of the dataset, rows per load id of each
    table that exists, the source pipeline's state, the newest failure record."""

    loads: List[Tuple[str, str, int, datetime]] = field(default_factory=list)  # load id, schema, status, inserted_at
    table_loads: Dict[str, Dict[str, int]] = field(default_factory=dict)
    state: Optional[Dict[str, Any]] = None
    failure: Optional[Failure] = None

    @property
    def completed(self) -> Dict[str, datetime]:
        return {load_id: inserted for load_id, _, status, inserted in self.loads if status == 0}

    def last_load(self, schema: str) -> Optional[Load]:
        mine = [(load_id, inserted) for load_id, name, status, inserted in self.loads if name == schema and status == 0]
        return Load(*max(mine, key=lambda load: _load_order(load[0]))) if mine else None


def _read_destination(source: SourceDef, target: Target, dataset: str, tables: List[str]) -> _Records:
    if target.duckdb_file is not None and not target.duckdb_file.exists():
        return _Records()  # never loaded: and status creates no file
    with reading_client(source, target, dataset, "status") as client:
        records = _Records(failure=_read_failure(client.sql_client, source, target, dataset))
        if not client.sql_client.has_dataset():
            return records
        records.loads = _read_loads(client.sql_client)
        records.table_loads = _read_table_loads(client, tables)
        records.state = _read_state(client, f"foundation_{source.name}")
        return records


def _read_loads(sql: Any) -> List[Tuple[str, str, int, datetime]]:
    from dlt.common.destination.exceptions import DestinationUndefinedEntity

    columns = ", ".join(sql.escape_column_name(c) for c in ("load_id", "schema_name", "status", "inserted_at"))
    try:
        rows = sql.execute_sql(f"SELECT {columns} FROM {sql.make_qualified_table_name('_dlt_loads')}") or []
    except DestinationUndefinedEntity:
        return []
    return [(str(load_id), name, int(status), _utc(inserted)) for load_id, name, status, inserted in rows]


def _read_table_loads(client: Any, tables: List[str]) -> Dict[str, Dict[str, int]]:
    """Rows per load id of each table that exists (one query). A table without `_dlt_load_id` (never seen here)
    counts as existing, with no rows to attribute."""
    if not tables:
        return {}
    existing = {name: {c.lower() for c in columns} for name, columns in client.get_storage_tables(tables) if columns}
    result: Dict[str, Dict[str, int]] = {name: {} for name in existing}
    queried = [name for name in tables if "_dlt_load_id" in existing.get(name, ())]
    if not queried:
        return result
    sql = client.sql_client
    load_id = sql.escape_column_name("_dlt_load_id")
    query = " UNION ALL ".join(f"SELECT {index} AS t, {load_id} AS l, COUNT(*) AS n FROM "
                               f"{sql.make_qualified_table_name(name)} GROUP BY {load_id}"
                               for index, name in enumerate(queried))
    for index, load, count in sql.execute_sql(query) or []:
        result[queried[int(index)]][str(load)] = int(count)
    return result


def _read_state(client: Any, pipeline_name: str) -> Optional[Dict[str, Any]]:
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.pipeline.state_sync import load_pipeline_state_from_destination

    try:
        return load_pipeline_state_from_destination(pipeline_name, client)
    except DestinationUndefinedEntity:
        return None


def _read_failure(sql: Any, source: SourceDef, target: Target, dataset: str) -> Optional[Failure]:
    from dlt.common.destination.exceptions import DestinationUndefinedEntity

    names = ("finished_at", "started_at", "step", "cause", "pipeline_name", "load_id", "tables", "host", "pid")
    columns = ", ".join(sql.escape_column_name(c) for c in names)
    with sql.with_alternative_dataset_name(target.dataset_name(FAILURES_DATASET)):
        table = sql.make_qualified_table_name(FAILURES_TABLE)
    first, last = sql._limit_clause_sql(1)
    query = (f"SELECT {first} {columns} FROM {table} WHERE {sql.escape_column_name('source')} = %s AND "
             f"{sql.escape_column_name('dataset')} = %s ORDER BY {sql.escape_column_name('finished_at')} DESC {last}")
    try:
        rows = sql.execute_sql(query, source.name, dataset)
    except DestinationUndefinedEntity:  # no failure recorded in this target yet
        return None
    if not rows:
        return None
    finished, started, step, cause, pipeline, load_id, tables, host, pid = rows[0]
    return Failure(_utc(finished), step, mask_secrets(cause), pipeline, _utc(started) if started else None,
                   load_id, tuple(t for t in (tables or "").split(",") if t), host or "",
                   int(pid) if pid is not None else None)


# --- this machine's working folder --------------------------------------------------------------------------------

def _read_local(source: SourceDef, target: Target, dataset: str) -> Tuple[List[PendingLoad], Optional[Failure]]:
    """Pending packages and the newest failed run in the source's working folders here: the source's pipeline and
    its partition runs' (`foundation_<source>__<partition>`). Folders that do not exist are not created."""
    folder = Path(target.pipelines_dir(dataset))
    names = [f"foundation_{source.name}"]
    if folder.is_dir():
        names += sorted(p.name for p in folder.glob(f"foundation_{source.name}__*") if p.is_dir())
    pending: List[PendingLoad] = []
    failures: List[Failure] = []
    for name in names:
        if not (folder / name).is_dir():
            continue
        try:
            pipeline = _local_pipeline(source, target, dataset, name)
            pending += _local_pending(pipeline)
            failure = _trace_failure(pipeline)
        except FileNotFoundError:  # a run here moved a package while we looked: it is running, not pending
            logger.debug("working folder %s changed while it was read", folder / name)
            continue
        if failure is not None:
            failures.append(failure)
    return pending, max(failures, key=lambda f: f.finished_at, default=None)


def _local_pipeline(source: SourceDef, target: Target, dataset: str, name: str) -> dlt.Pipeline:
    from data_foundation.load.session import create_pipeline

    if name == f"foundation_{source.name}":
        return create_pipeline(source, target)
    return dlt.pipeline(pipeline_name=name, destination=target.destination, dataset_name=dataset,
                        pipelines_dir=target.pipelines_dir(dataset))


def _local_pending(pipeline: dlt.Pipeline) -> List[PendingLoad]:
    from data_foundation.load.session import RowJournal

    if not pipeline.has_pending_data:
        return []
    normalized = [PendingLoad(load_id, "normalized", True, _data_rows(RowJournal.read(pipeline.working_dir, load_id)))
                  for load_id in pipeline.list_normalized_load_packages()]
    extracted = [PendingLoad(load_id, "extracted", True) for load_id in pipeline.list_extracted_load_packages()]
    return normalized + extracted


def _data_rows(counts: Dict[str, int]) -> Optional[Dict[str, int]]:
    """Rows per table of a package's journal, without dlt's own tables (the pipeline state); None when unknown."""
    return {table: n for table, n in counts.items() if not table.startswith("_dlt")} or None


def _trace_failure(pipeline: dlt.Pipeline) -> Optional[Failure]:
    """The failure of the last run in this folder, from dlt's trace (scrubbed of secrets after each run)."""
    from dlt.pipeline.trace import load_trace

    trace = load_trace(pipeline.working_dir)
    failed = [s for s in (trace.steps if trace else []) if s.step_exception]
    if not failed:
        return None
    step = next((s for s in failed if s.step != "run"), failed[0])
    last = (step.exception_traces or [{}])[-1]
    cause = f"{last.get('exception_type', 'Error')}: {last.get('message', '')}" if last else step.step_exception
    return Failure(_utc(trace.finished_at or step.finished_at), step.step, _one_line(mask_secrets(cause)),
                   pipeline.pipeline_name, _utc(trace.started_at), recorded="local")


def _newest_failure(remote: Optional[Failure], local: Optional[Failure]) -> Optional[Failure]:
    """The destination's record, unless this machine's trace holds a newer failure (one it could not record)."""
    if local is not None and (remote is None or local.finished_at > remote.finished_at):
        return local
    return remote


def _pending(local: List[PendingLoad], remote: _Records) -> List[PendingLoad]:
    """Local packages and loads the destination holds rows of without a `_dlt_loads` row, merged by load id."""
    loaded: Dict[str, Dict[str, int]] = {}
    completed = {load_id for load_id, *_ in remote.loads}
    for table, counts in remote.table_loads.items():
        for load_id, count in counts.items():
            if load_id not in completed:
                loaded.setdefault(load_id, {})[table] = count
    merged = {p.load_id: p for p in local}
    for load_id, rows in loaded.items():
        package = merged.get(load_id)
        merged[load_id] = PendingLoad(load_id, "partially loaded", package is not None,
                                      package.rows if package else None, rows)
    return [merged[load_id] for load_id in sorted(merged)]


# --- recording a failure ----------------------------------------------------------------------------------------

def record_failure(target: Target, failure: Failure, source: str, dataset: str,
                   timeout: Optional[float] = None) -> bool:
    """Load `failure` as one row into table `failures` of the target's dataset `foundation_runs`, with dlt, through
    a throwaway pipeline (its own temporary folder and schema, `foundation_failures`): the source's pipeline, its
    pending packages and its state are not touched. Never raises: a record that cannot be written (destination down,
    DuckDB file locked) is logged at debug level; it waits at most `timeout` seconds (default
    `$FOUNDATION_FAILURE_RECORD_TIMEOUT`, 10), the write going on in a daemon thread. True when it was written."""
    if timeout is None:
        timeout = _record_timeout()
    if timeout <= 0 or target.duckdb_clash(target.dataset_name(FAILURES_DATASET)):
        return False
    row = _failure_row(failure, source, dataset)
    outcome: List[bool] = []

    def write() -> None:
        try:
            _write_failure(target, row)
            outcome.append(True)
        except Exception as exc:  # the run's own error is what matters: this must never replace it
            logger.debug("could not record the failure of source %s: %s", source, _one_line(mask_secrets(str(exc))))

    thread = threading.Thread(target=write, name=f"foundation-failure-{source}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        logger.debug("gave up recording the failure of source %s after %s s", source, timeout)
    return bool(outcome)


def _record_timeout() -> float:
    try:
        return float(os.environ.get(RECORD_TIMEOUT_ENV, DEFAULT_RECORD_TIMEOUT))
    except ValueError:
        return DEFAULT_RECORD_TIMEOUT


def _failure_row(failure: Failure, source: str, dataset: str) -> Dict[str, Any]:
    return {
        "source": source,
        "dataset": dataset,
        "pipeline_name": failure.pipeline,
        "step": failure.step,
        "cause": _one_line(mask_secrets(failure.cause))[:_CAUSE_LIMIT],
        "load_id": failure.load_id,
        "started_at": failure.started_at,
        "finished_at": failure.finished_at,
        "tables": ",".join(failure.tables),
        "host": failure.host or socket.gethostname(),
        "pid": failure.pid if failure.pid is not None else os.getpid(),
    }


def _write_failure(target: Target, row: Dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="foundation_failures_") as folder:
        pipeline = dlt.pipeline(pipeline_name="foundation_failures", destination=target.destination,
                                dataset_name=target.dataset_name(FAILURES_DATASET), pipelines_dir=folder)
        pipeline.config.restore_from_destination = False  # nothing to restore: one append, no cursor
        pipeline.run([row], table_name=FAILURES_TABLE, write_disposition="append", columns=_FAILURE_COLUMNS)


# --- helpers ----------------------------------------------------------------------------------------------------

def _table_name(resource: ResourceDef) -> str:
    return normalize_identifier(resource.table)


def _load_order(load_id: str) -> Tuple[float, str]:
    """Load ids in the order dlt created them (numbers: `9.5` before `10.1`), any other id last."""
    try:
        return float(load_id), load_id
    except ValueError:
        return float("inf"), load_id


def _load_id_time(load_id: str) -> Optional[datetime]:
    try:
        return datetime.fromtimestamp(float(load_id), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
