"""Run validated sources with dlt into a target and report rows per table."""

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.runtime.collector import Collector
from dlt.common.schema.utils import is_complete_column
from dlt.pipeline.exceptions import PipelineStepFailed

from data_foundation.load.building import GateAudit, PiiAudit, build_source
from data_foundation.load.gates import GateFailed
from data_foundation.load.credentials import describe_missing_credentials, env_name, missing_keys
from data_foundation.load.destinations import Target
from data_foundation.errors import FoundationError, cause_of, mask_secrets
from data_foundation.config.project import Project, SourceDef
from data_foundation.load.session import RunFailed, create_pipeline, load_session

__all__ = ["RunFailed", "SourceRun", "count_rows", "create_pipeline", "run_selection", "run_source",
           "schema_changes"]

logger = logging.getLogger(__name__)


@dataclass
class SourceRun:
    source: str
    dataset: str
    rows_loaded: Dict[str, int] = field(default_factory=dict)  # this run, per table (child tables included)
    rows_total: Dict[str, int] = field(default_factory=dict)  # in the destination after the run
    load_ids: List[str] = field(default_factory=list)
    seconds: float = 0.0
    # drift this run loaded into existing tables: `+ col (type)`, `col: bigint -> text (variant column col__v_text)`,
    # `new child table of <parent> (N columns)` (see `schema_changes`)
    schema_changes: Dict[str, List[str]] = field(default_factory=dict)
    tables: List[str] = field(default_factory=list)  # the tables selected for the run
    # rows of a load an interrupted run left, completed first (also counted in rows_loaded)
    resumed: Dict[str, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)  # local state discarded, PII columns never seen, ...


def run_source(source: SourceDef, target: Target, tables: Optional[Iterable[str]] = None, full_refresh: bool = False,
               progress: Optional[Collector] = None) -> SourceRun:
    """Extract, normalize and load one source; raise `RunFailed` with a readable message on failure.

    One run per source and dataset at a time; a load a previous run left unfinished (killed, crashed) is completed
    first when it belongs to this dataset's current state, so nothing it extracted is lost or loaded twice (see
    `data_foundation.load.session`).

    Example:
        >>> run = run_source(project.sources["jaffle_shop"], create_target("duckdb", "warehouse.duckdb"))
        >>> run.rows_loaded["orders"]
        61948
    """
    started = time.monotonic()
    selected = list(tables) if tables is not None else [r.table for r in source.resources]
    audit, gates = PiiAudit(), GateAudit()
    with step_errors(source, target, selected), load_session(source, target, progress) as session:
        pipeline = session.pipeline
        pipeline.run(build_source(source, tables=tables, pii_audit=audit, gate_audit=gates),
                     loader_file_format=target.loader_file_format, refresh="drop_resources" if full_refresh else None)
    rows_loaded = dict(session.resumed)
    load_ids: List[str] = []
    _collect(pipeline, rows_loaded, load_ids)
    return SourceRun(
        source=source.name,
        dataset=pipeline.dataset_name,
        rows_loaded=rows_loaded,
        rows_total=count_rows(pipeline, sorted(_data_tables(pipeline))),
        load_ids=load_ids,
        seconds=time.monotonic() - started,
        schema_changes=schema_changes(pipeline),
        tables=selected,
        resumed=session.resumed,
        warnings=session.warnings + audit.warnings() + gates.warnings(),
    )


@contextlib.contextmanager
def step_errors(source: SourceDef, target: Target, tables: Optional[Iterable[str]] = None) -> Iterator[None]:
    """dlt's failures as one readable `RunFailed` line: the source, the step and the cause, secrets masked.

    The failure is also recorded in the destination (`history.record_failure`: one row loaded with dlt, bounded in
    time, never raising), so `foundation status` shows it from any machine; the CLI and Dagster both pass here.
    `RunFailed` raised on purpose before a load starts (the source's lock is held, a DuckDB file named like the
    dataset) is not a failed load: it passes unrecorded."""
    started = datetime.now(timezone.utc)
    try:
        yield
    except FoundationError:
        raise
    except PipelineStepFailed as exc:
        cause = _describe_cause(exc.step, exc.__cause__ or exc.exception, source, target)
        failure = RunFailed(mask_secrets(f"source `{source.name}` failed in step `{exc.step}`: {cause}"))
        _record_failure(source, target, tables, exc.step, cause, started, exc)
        raise failure from exc
    except Exception as exc:  # opening the pipeline or checking the destination's state: dlt's `sync` step
        cause = _describe_cause("sync", exc, source, target)
        failure = RunFailed(mask_secrets(f"source `{source.name}` failed in step `sync`: {cause}"))
        _record_failure(source, target, tables, "sync", cause, started, None)
        raise failure from exc


def _record_failure(source: SourceDef, target: Target, tables: Optional[Iterable[str]], step: str, cause: str,
                    started: datetime, exc: Optional[PipelineStepFailed]) -> None:
    """The failed run as a `history.Failure`: times from dlt's trace of the run when there is one. Never raises."""
    try:
        from data_foundation.load.history import Failure, record_failure

        pipeline = getattr(exc, "pipeline", None)
        trace = getattr(pipeline, "_last_trace", None) if pipeline is not None else None
        selected = list(tables) if tables is not None else [r.table for r in source.resources]
        failure = Failure(
            finished_at=(trace.finished_at if trace and trace.finished_at else datetime.now(timezone.utc)),
            step=step,
            cause=mask_secrets(cause),
            pipeline=getattr(pipeline, "pipeline_name", None) or f"foundation_{source.name}",
            started_at=trace.started_at if trace and trace.started_at else started,
            load_id=getattr(exc, "load_id", None),
            tables=tuple(selected),
        )
        record_failure(target, failure, source.name, target.dataset_name(source.dataset_name))
    except Exception as error:  # the run's own error is what the caller gets, whatever happens here
        logger.debug("could not record the failure of source %s: %s", source.name, mask_secrets(str(error)))


# DuckDB's own words when another process has the file open for writing (wrapped by dlt in a "check your
# credentials ... internet connection" DestinationConnectionError that buries the actual reason)
_DUCKDB_LOCKED = re.compile(r'Could not set lock on file "(?P<file>[^"]+)": Conflicting lock is held in .*?'
                            r'\(PID (?P<pid>\d+)\)')


def _describe_cause(step: str, cause: BaseException, source: SourceDef, target: Target) -> str:
    gate = cause_of(cause, GateFailed)  # a data gate's own message, not dlt's wrapping of it
    if gate is not None:
        return str(gate)
    locked = _DUCKDB_LOCKED.search(str(cause))
    if locked:
        kept = " What this run extracted is kept: the next run loads it." if step == "load" else ""
        return (f"DuckDB file `{locked['file']}` is in use by another process (PID {locked['pid']}); DuckDB allows "
                "one writer at a time. Wait for it (another run, Dagster, a DuckDB shell) to finish, then run again."
                + kept)
    missing = cause_of(cause, ConfigFieldMissingException)
    if missing is not None and _is_source_setting(missing):
        return _describe_missing_settings(missing, source.name)
    if missing is not None and "credentials" in str(missing):
        return describe_missing_credentials(missing, target.destination)
    return f"{type(cause).__name__}: {_first_lines(cause)}"


def _describe_missing_settings(missing: ConfigFieldMissingException, source: str) -> str:
    """`resource `things` of source `shop` is missing `api_key`: set SOURCES__SHOP__API_KEY (or SOURCES__SHOP__THINGS__
    API_KEY for this resource only), or put it under [sources.shop] in .dlt/secrets.toml ...` for an entry parameter
    (`dlt.secrets.value` / `dlt.config.value`) that no config provider had."""
    keys, _ = missing_keys(missing)
    settings = [env_name("sources", source, *key) for key in keys]
    names = ", ".join(f"`{'__'.join(key).lower()}`" for key in keys)
    where = next((s for s in _trace_sections(missing) if len(s) > 2 and s[:2] == ["sources", source]), None)
    text = (f"{f'resource `{where[2]}` of ' if where else ''}source `{source}` is missing {names}: set "
            f"{', '.join(settings)}")
    if where:
        only_here = [env_name("sources", source, where[2], *key) for key in keys]
        text += f" (or {', '.join(only_here)} for this resource only)"
    return text + (f", or put {'them' if len(settings) > 1 else 'it'} under [sources.{source}] in .dlt/secrets.toml "
                   "(.dlt/config.toml for a setting that is not secret)")


def _is_source_setting(missing: ConfigFieldMissingException) -> bool:
    """dlt looked the missing field up under `sources.` (an entry's parameter), not `destination.`."""
    return any(sections[:1] == ["sources"] for sections in _trace_sections(missing))


def _trace_sections(missing: Any) -> Iterator[List[str]]:
    for traces in getattr(missing, "traces", {}).values():
        for trace in traces:
            if hasattr(trace, "traces"):  # a nested configuration (a credentials parameter)
                yield from _trace_sections(trace)
            else:
                yield list(getattr(trace, "sections", []) or [])


def _collect(pipeline: dlt.Pipeline, rows_loaded: Dict[str, int], load_ids: List[str]) -> None:
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    for table, count in (info.row_counts if info else {}).items():
        if not table.startswith("_dlt"):
            rows_loaded[table] = rows_loaded.get(table, 0) + count
    load_info = trace.last_load_info if trace else None
    load_ids.extend(i for i in (load_info.loads_ids if load_info else []) if i not in load_ids)


def run_selection(project: Project, target: Target, selectors: Iterable[str] = (), full_refresh: bool = False,
                  progress: Optional[Collector] = None) -> List[SourceRun]:
    """`run_source` for every source the `source` / `source.table` selectors pick (all when none), in order.

    Example:
        >>> [run.source for run in run_selection(project, target, ["jaffle_shop.orders", "my_api"])]
        ['jaffle_shop', 'my_api']
    """
    return [run_source(source, target, tables, full_refresh, progress)
            for source, tables in project.select(selectors)]


def count_rows(pipeline: dlt.Pipeline, tables: List[str]) -> Dict[str, int]:
    """Rows per table in the pipeline's dataset, in one query (`SELECT COUNT(*)` per table, `UNION ALL`).

    Written with dlt's SQL client and its quoting rather than dlt's `dataset().row_counts()`, which builds the same
    query with sqlglot and derives its result schema first: ~0.1 s more per run, for six numbers. Destinations without
    a SQL client get dlt's.

    Example:
        >>> count_rows(pipeline, ["orders", "items"])
        {'orders': 61948, 'items': 90900}
    """
    if not tables:
        return {}
    from dlt.common.destination.exceptions import SqlClientNotAvailable

    try:
        client = pipeline.sql_client()
    except SqlClientNotAvailable:
        return {name: int(count) for name, count in pipeline.dataset().row_counts(table_names=tables).fetchall()}
    with client:
        query = " UNION ALL ".join(f"SELECT {index} AS n, COUNT(*) AS c FROM {client.make_qualified_table_name(name)}"
                                   for index, name in enumerate(tables))
        rows = client.execute_sql(query) or []
    return {tables[int(index)]: int(count) for index, count in rows}


def _data_tables(pipeline: dlt.Pipeline) -> List[str]:
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    if schema is None:
        return []
    return [table["name"] for table in schema.data_tables(include_incomplete=False)]


def _first_lines(error: Any, limit: int = 6) -> str:
    return "\n".join(str(error).strip().splitlines()[:limit])


_VARIANT = re.compile(r"^(?P<base>.+)__v_[a-z0-9_]+$")


def schema_changes(pipeline: dlt.Pipeline) -> Dict[str, List[str]]:
    """Per table, how the pipeline's last run changed the shape of tables that existed before (dlt's applied schema
    updates): `+ col (type)` for a new column, `col: bigint -> text (variant column col__v_text)` when values no longer
    fit a column's type and dlt put them into a variant column, `new child table of <parent> (N columns)` for a new
    nested list. Tables created with their parent (a first load, a full refresh) are not drift: not listed."""
    trace = pipeline.last_trace
    load_info = trace.last_load_info if trace else None
    if load_info is None or not pipeline.default_schema_name:
        return {}
    tables = pipeline.default_schema.tables
    changes: Dict[str, List[str]] = {}
    for package in load_info.load_packages:
        updates = {t: {n: c for n, c in (u.get("columns") or {}).items() if not n.startswith("_dlt")}
                   for t, u in (package.schema_update or {}).items() if not t.startswith("_dlt")}
        columns = {t: {n: c for n, c in tables.get(t, {}).get("columns", {}).items()
                       if is_complete_column(c) and not n.startswith("_dlt")} for t in updates}
        created = {t for t, new in updates.items() if new and set(new) >= set(columns[t])}
        for table, new in updates.items():
            if not new:
                continue
            if table in created:
                parent = tables.get(table, {}).get("parent")
                if parent and parent not in created:
                    count = len(new)
                    changes.setdefault(table, []).append(
                        f"new child table of {parent} ({count} column{'s' if count != 1 else ''})")
                continue
            lines = changes.setdefault(table, [])
            for name, column in new.items():
                variant = _VARIANT.match(name)
                base = variant.group("base") if variant else None
                if base in columns[table] and base not in new:
                    lines.append(f"{base}: {columns[table][base].get('data_type')} -> {column.get('data_type')} "
                                 f"(variant column {name})")
                else:
                    lines.append(f"+ {name} ({column.get('data_type')})")
    return changes
