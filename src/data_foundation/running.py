"""Run validated sources with dlt into a target and report rows per table."""

import contextlib
import fcntl
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional

import dlt
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.common.schema.exceptions import DataValidationError
from dlt.common.schema.utils import is_complete_column
from dlt.pipeline.exceptions import PipelineStepFailed

from data_foundation.building import build_source
from data_foundation.destinations import Target
from data_foundation.errors import FoundationException, mask_secrets
from data_foundation.project import Project, SourceDef

__all__ = ["RunFailed", "SourceRun", "create_pipeline", "finish_pending_load", "load_session", "run_selection",
           "run_source", "schema_changes", "source_lock"]

logger = logging.getLogger(__name__)


class RunFailed(FoundationException):
    """A load failed; the message names the source, the step and the cause, with secrets masked."""


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


def create_pipeline(source: SourceDef, target: Target, progress: Optional[Collector] = None) -> dlt.Pipeline:
    dataset = target.dataset_name(source.dataset_name)
    if target.duckdb_file is not None and target.duckdb_file.stem == dataset:
        # DuckDB names the catalog after the file: `x.duckdb` and schema `x` make every query ambiguous
        raise RunFailed(f"DuckDB file `{target.duckdb_file}` has the same name as dataset `{dataset}`; "
                        "DuckDB cannot tell the two apart. Choose another file name or a --dataset-prefix.")
    return dlt.pipeline(
        pipeline_name=f"foundation_{source.name}",
        destination=target.destination,
        dataset_name=target.dataset_name(source.dataset_name),
        pipelines_dir=target.pipelines_dir,
        progress=progress or NullCollector(),
    )


def run_source(source: SourceDef, target: Target, tables: Optional[Iterable[str]] = None, full_refresh: bool = False,
               progress: Optional[Collector] = None) -> SourceRun:
    """Extract, normalize and load one source; raise `RunFailed` with a readable message on failure.

    One run per source at a time (a lock next to dlt's working folder); a load that a previous run left unfinished
    (killed, crashed) is completed first, so nothing it extracted is lost and merge/append see it exactly once.
    """
    started = time.monotonic()
    with source_lock(source, target):
        pipeline = create_pipeline(source, target, progress)
        load_ids: List[str] = []
        with _step_errors(source), load_session(pipeline) as rows_loaded:
            pipeline.run(build_source(source, tables=tables), loader_file_format=target.loader_file_format,
                         refresh="drop_resources" if full_refresh else None)
        _collect(pipeline, rows_loaded, load_ids)
        return SourceRun(
            source=source.name,
            dataset=pipeline.dataset_name,
            rows_loaded=rows_loaded,
            rows_total=count_rows(pipeline, sorted(_data_tables(pipeline))),
            load_ids=load_ids,
            seconds=time.monotonic() - started,
            schema_changes=schema_changes(pipeline),
        )


# dlt settings foundation changes where the user has not set them (env vars and .dlt/*.toml still win)
DLT_DEFAULTS: Dict[str, Any] = {
    # extract's intermediate files (read once by normalize, then deleted) are gzipped at level 9 by default: ~2 s CPU
    # of the 150k-row Jaffle Shop load (half of extract) for nothing. Loader files keep dlt's default.
    "sources.data_writer.disable_compression": True,
    # arrow items (`arrow: true`, or a generator yielding tables) get `_dlt_load_id` like rows do, so every table
    # can be traced to its load in `_dlt_loads`
    "normalize.parquet_normalizer.add_dlt_load_id": True,
}


@contextlib.contextmanager
def dlt_defaults() -> Iterator[None]:
    """`DLT_DEFAULTS` in dlt's config for the duration of the block, each unless set (also without its section)."""
    unset = {key: value for key, value in DLT_DEFAULTS.items()
             if key not in dlt.config and key.split(".", 1)[-1] not in dlt.config}
    with contextlib.ExitStack() as stack:
        if unset:
            try:
                stack.enter_context(dlt.config.values(unset))
            except RuntimeError:  # no writable config provider: dlt's own defaults then
                logger.debug("dlt defaults not applied", exc_info=True)
        yield


@contextlib.contextmanager
def load_session(pipeline: dlt.Pipeline) -> Iterator[Dict[str, int]]:
    """What surrounds every load, from the CLI or Dagster: complete a load an earlier run left unfinished (its rows
    per table are yielded), apply foundation's dlt defaults, and abort a load the schema contract rejected."""
    resumed = finish_pending_load(pipeline)
    with dlt_defaults(), _abort_rejected_load(pipeline):
        yield resumed


def finish_pending_load(pipeline: dlt.Pipeline) -> Dict[str, int]:
    """Normalize and load what an interrupted run extracted; the rows it normalized per table."""
    if not pipeline.has_pending_data:
        return {}
    logger.warning("pipeline %s: completing the load that an earlier run left unfinished", pipeline.pipeline_name)
    info = pipeline.normalize()
    pipeline.load()
    return {t: n for t, n in (info.row_counts if info else {}).items() if not t.startswith("_dlt")}


@contextlib.contextmanager
def source_lock(source: SourceDef, target: Target) -> Iterator[None]:
    """Hold the per-source lock for a run. A second run of the same source into the same target waits up to
    `$FOUNDATION_LOCK_TIMEOUT` seconds (default 0) and then fails with a clear message."""
    folder = Path(target.pipelines_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"foundation_{source.name}.lock"
    deadline = time.monotonic() + float(os.environ.get("FOUNDATION_LOCK_TIMEOUT", "0"))
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise RunFailed(f"source `{source.name}` is already being loaded into dataset "
                                    f"`{target.dataset_name(source.dataset_name)}` by {holder}; wait for it to "
                                    "finish (or set FOUNDATION_LOCK_TIMEOUT to wait that many seconds)") from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _abort_rejected_load(pipeline: dlt.Pipeline) -> Iterator[None]:
    """A package that a schema contract rejected fails the same way on every retry and would block all later runs:
    abort it (dlt restores the local state and schema), so the next run starts afresh from the last good load."""
    try:
        yield
    except PipelineStepFailed as exc:
        if _caused_by(exc, DataValidationError) and pipeline.has_pending_data:
            pipeline.abort_packages()
        raise


def _caused_by(error: BaseException, kind: type) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def _step_errors(source: SourceDef) -> Iterator[None]:
    try:
        yield
    except PipelineStepFailed as exc:
        cause = exc.__cause__ or exc.exception
        raise RunFailed(mask_secrets(f"source `{source.name}` failed in step `{exc.step}`: "
                                     f"{_describe_cause(exc.step, cause)}")) from exc


# DuckDB's own words when another process has the file open for writing (wrapped by dlt in a "check your
# credentials ... internet connection" DestinationConnectionError that buries the actual reason)
_DUCKDB_LOCKED = re.compile(r'Could not set lock on file "(?P<file>[^"]+)": Conflicting lock is held in .*?'
                            r'\(PID (?P<pid>\d+)\)')


def _describe_cause(step: str, cause: BaseException) -> str:
    locked = _DUCKDB_LOCKED.search(str(cause))
    if locked:
        kept = " What this run extracted is kept: the next run loads it." if step == "load" else ""
        return (f"DuckDB file `{locked['file']}` is in use by another process (PID {locked['pid']}); DuckDB allows "
                "one writer at a time. Wait for it (another run, Dagster, a DuckDB shell) to finish, then run again."
                + kept)
    return f"{type(cause).__name__}: {_first_lines(cause)}"


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
    return [run_source(source, target, tables, full_refresh, progress)
            for source, tables in project.select(selectors)]


def count_rows(pipeline: dlt.Pipeline, tables: List[str]) -> Dict[str, int]:
    if not tables:
        return {}
    with pipeline.sql_client() as client:
        query = " UNION ALL ".join(
            f"SELECT '{t}', COUNT(*) FROM {client.make_qualified_table_name(t)}" for t in tables)
        return {name: int(count) for name, count in client.execute_sql(query)}


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
