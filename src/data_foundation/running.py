"""Run validated sources with dlt into a target and report rows per table."""

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional

import dlt
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.pipeline.exceptions import PipelineStepFailed

from data_foundation.building import build_source
from data_foundation.destinations import Target
from data_foundation.errors import FoundationException, mask_secrets
from data_foundation.project import Project, SourceDef

__all__ = ["RunFailed", "SourceRun", "create_pipeline", "finish_pending_load", "run_selection", "run_source",
           "source_lock"]

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
        rows_loaded: Dict[str, int] = {}
        load_ids: List[str] = []
        with _step_errors(source):
            rows_loaded.update(finish_pending_load(pipeline))
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
        )


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
def _step_errors(source: SourceDef) -> Iterator[None]:
    try:
        yield
    except PipelineStepFailed as exc:
        cause = exc.__cause__ or exc.exception
        raise RunFailed(mask_secrets(f"source `{source.name}` failed in step `{exc.step}`: "
                                     f"{type(cause).__name__}: {_first_lines(cause)}")) from exc


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
