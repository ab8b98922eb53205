"""One subsettable multi-asset per source: a thin wrapper over `multi_asset` with the translator's specs and
dagster-dlt's resource."""

import contextlib
import datetime as dt
from typing import Any, Dict, Iterator, List, Optional

import dagster as dg
from dagster_dlt import DagsterDltResource

from data_foundation.load.building import GateAudit, PiiAudit, build_source
from data_foundation.dagster.translator import FoundationTranslator
from data_foundation.load.destinations import Target
from data_foundation.errors import FoundationError, mask_secrets
from data_foundation.config.project import SourceDef
from data_foundation.load.running import step_errors
from data_foundation.load.session import load_session
from data_foundation.config.arguments import takes_keyword
from data_foundation.config.dagster_meta import PARTITION_FORMATS, PartitionSpec
from data_foundation.dagster.partition_runs import destination_lock, lock_destination_steps, partition_pipeline_source

__all__ = ["LoadConfig", "build_source_assets", "build_upstream_specs", "pool_name"]


class LoadConfig(dg.Config):
    """Per-run settings, editable in the launchpad."""

    keyword_arguments: Dict[str, Dict[str, Any]] = {}  # table -> keyword arguments replacing sources.yaml's
    full_refresh: bool = False  # drop the selected tables and their state first


def pool_name(target: Target) -> str:
    """The default concurrency pool: one per destination (DuckDB allows one writer at a time); a source may name
    another with `meta.dagster.pool`."""
    return f"foundation_{target.destination_name}"


def build_source_assets(source: SourceDef, target: Target,
                        translator: Optional[FoundationTranslator] = None) -> dg.AssetsDefinition:
    """The source's tables as one multi-asset. No dlt source or pipeline is built here: the specs come from
    sources.yaml, and each run builds a fresh dlt source (dagster issue 34052) and its pipeline. The partitions,
    backfill policy, retry policy and pool of the multi-asset are the source's `meta.dagster`; a resource cannot set
    them. A run of a partitioned source has a dlt pipeline of its own, and every run holds the destination's write
    lock only while it opens the destination (`partition_runs`): a backfill's runs go side by side. `translator`
    (default: sources.yaml's specs as they are) makes the specs at definition time and maps each run's resources."""
    translator = translator or FoundationTranslator(source, target.destination_name)
    specs = [translator.resource_spec(resource) for resource in source.resources]
    partition, retry = source.dagster.partition, source.dagster.retry
    partitions_def = _partitions_def(partition) if partition else None

    @dg.multi_asset(
        name=source.name,
        specs=specs,
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=_backfill_policy(partition) if partition else None,
        retry_policy=dg.RetryPolicy(max_retries=retry.max_retries, delay=retry.delay_seconds) if retry else None,
        pool=source.dagster.pool or pool_name(target),
    )
    def _assets(context: dg.AssetExecutionContext, dlt: DagsterDltResource, config: LoadConfig) -> Iterator[Any]:
        overrides = {table: dict(kwargs) for table, kwargs in config.keyword_arguments.items()}
        if partition:
            window = _window_arguments(partition, context.partition_time_window)
            for resource in source.resources:  # validation made every resource loading data itself take them
                taken = {k: v for k, v in window.items() if takes_keyword(resource, k)}
                overrides[resource.table] = {**taken, **overrides.get(resource.table, {})}
        audit, gates = PiiAudit(), GateAudit()
        # the same guard rails as `foundation run`: one run per source (a partitioned source: per partition) and
        # dataset, local state that agrees with the destination, an interrupted load completed first, secrets masked
        # in whatever fails; the destination's write lock held while a step opens the destination
        pipeline_source = partition_pipeline_source(source, *context.partition_key_range) if partition else source
        with _masked_failure(source, target), contextlib.ExitStack() as stack:
            with destination_lock(target, target.dataset_name(source.dataset_name)):
                session = stack.enter_context(load_session(pipeline_source, target))
            lock_destination_steps(session.pipeline, target)
            for warning in session.warnings:
                context.log.warning(warning)
            if session.resumed:
                context.log.warning(f"completed the load an interrupted run left: {_rows(session.resumed)}")
            events = dlt.run(
                context=context,
                dlt_source=build_source(source, keyword_overrides=overrides, pii_audit=audit, gate_audit=gates),
                dlt_pipeline=session.pipeline,
                dagster_dlt_translator=translator,
                loader_file_format=target.loader_file_format,
                refresh="drop_resources" if config.full_refresh else None,
            )
            for event in events:
                yield _with_zero_rows(event)
        for warning in audit.warnings() + gates.warnings():
            context.log.warning(warning)

    return _assets


@contextlib.contextmanager
def _masked_failure(source: SourceDef, target: Target) -> Iterator[None]:
    """A failed load as a Dagster `Failure` whose description is the CLI's one line, secrets masked, and with no
    chained exception: Dagster stores the whole cause chain in its event log, user code's messages included."""
    try:
        with step_errors(source, target):
            yield
    except FoundationError as exc:
        raise dg.Failure(description=mask_secrets(str(exc))) from None


def _rows(counts: Dict[str, int]) -> str:
    return ", ".join(f"{table} {count:,}" for table, count in sorted(counts.items()))


def build_upstream_specs(source: SourceDef, translator: Optional[FoundationTranslator] = None) -> List[dg.AssetSpec]:
    """External assets for the API endpoints (entries) the raw tables are read from: the graph reads API -> table."""
    translator = translator or FoundationTranslator(source)
    return [translator.upstream_spec(resource) for resource in source.resources if not resource.spec.data_from]


def _with_zero_rows(event: Any) -> Any:
    """dagster-dlt omits `rows_loaded` when a run loads nothing; say 0 so the metadata plot has no gap."""
    if isinstance(event, dg.MaterializeResult) and "rows_loaded" not in (event.metadata or {}):
        return dg.MaterializeResult(asset_key=event.asset_key, metadata={**event.metadata, "rows_loaded": 0},
                                    check_results=event.check_results, data_version=event.data_version,
                                    tags=event.tags)
    return event


def _backfill_policy(partition: PartitionSpec) -> dg.BackfillPolicy:
    """A backfill as one run over the whole range (the default), or as runs of `max_partitions_per_run` partitions
    each, which the run queue and the source's pool run side by side."""
    if partition.max_partitions_per_run is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=partition.max_partitions_per_run)


def _partitions_def(partition: PartitionSpec) -> dg.PartitionsDefinition:
    classes = {"hourly": dg.HourlyPartitionsDefinition, "daily": dg.DailyPartitionsDefinition,
               "weekly": dg.WeeklyPartitionsDefinition, "monthly": dg.MonthlyPartitionsDefinition}
    fmt = PARTITION_FORMATS[partition.type][0]  # the format validation checked `start` and `end` against
    return classes[partition.type](start_date=partition.start, end_date=partition.end, fmt=fmt)


def _window_arguments(partition: PartitionSpec, window: dg.TimeWindow) -> Dict[str, str]:
    """The partition window as the generator's arguments: dates with an inclusive end (daily and longer),
    ISO timestamps with an exclusive end (hourly)."""
    if partition.type == "hourly":
        return {partition.start_argument: window.start.isoformat(), partition.end_argument: window.end.isoformat()}
    last_day = (window.end - dt.timedelta(microseconds=1)).date()
    return {partition.start_argument: window.start.date().isoformat(), partition.end_argument: last_day.isoformat()}
