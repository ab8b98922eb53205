"""Run validated sources with dlt into a target and report rows per table."""

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

import dlt
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.pipeline.exceptions import PipelineStepFailed

from data_foundation.building import build_source
from data_foundation.destinations import Target
from data_foundation.errors import FoundationException, mask_secrets
from data_foundation.project import Project, SourceDef

__all__ = ["RunFailed", "SourceRun", "create_pipeline", "run_selection", "run_source"]


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
    """Extract, normalize and load one source; raise `RunFailed` with a readable message on failure."""
    pipeline = create_pipeline(source, target, progress)
    dlt_source = build_source(source, tables=tables)
    try:
        info = pipeline.run(dlt_source, loader_file_format=target.loader_file_format,
                            refresh="drop_resources" if full_refresh else None)
    except PipelineStepFailed as exc:
        cause = exc.__cause__ or exc.exception
        raise RunFailed(mask_secrets(f"source `{source.name}` failed in step `{exc.step}`: "
                                     f"{type(cause).__name__}: {_first_lines(cause)}")) from exc
    trace = pipeline.last_trace
    counts = dict(trace.last_normalize_info.row_counts) if trace and trace.last_normalize_info else {}
    rows_loaded = {t: n for t, n in counts.items() if not t.startswith("_dlt")}
    return SourceRun(
        source=source.name,
        dataset=pipeline.dataset_name,
        rows_loaded=rows_loaded,
        rows_total=count_rows(pipeline, sorted(_data_tables(pipeline))),
        load_ids=list(info.loads_ids),
        seconds=sum(((s.finished_at - s.started_at).total_seconds() for s in trace.steps), 0.0) if trace else 0.0,
    )


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
