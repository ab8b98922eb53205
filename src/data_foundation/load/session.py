"""What surrounds every load, from the CLI or from Dagster: one run per source and dataset at a time, local state that
agrees with the destination, an interrupted load completed (only where it belongs), dlt defaults, and secrets kept
out of what dlt persists.

dlt keeps the authoritative pipeline state (incremental cursors) in the destination's dataset; the local working folder
is a cache of it plus the load packages not yet loaded. Two rules keep that cache honest:

* the folder is keyed by destination and dataset (`Target.pipelines_dir`), so a cursor never crosses datasets;
* it is used only while the destination still holds the state it was built on. A pending package carries a snapshot
  of the state it was extracted from (dlt's restore snapshot); it is completed only when that is the destination's
  state (or the package's own state already reached it). Otherwise - the DuckDB file was deleted, a backup restored,
  another machine loaded in between - the local folder is dropped with a warning and dlt restores state and schemas
  from the destination on the run that follows, which then extracts again from the destination's cursor.
"""

import contextlib
import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import dlt
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.common.schema.exceptions import DataValidationError
from dlt.pipeline.exceptions import PipelineStepFailed
from filelock import FileLock, Timeout

from data_foundation.load.destinations import Target
from data_foundation.errors import FoundationError, cause_of
from data_foundation.masking import capture_resolved_secrets, scrub
from data_foundation.config.project import SourceDef

__all__ = ["DLT_DEFAULTS", "LoadSession", "RunFailed", "agree_with_destination", "create_pipeline",
           "destination_state", "dlt_defaults", "finish_pending_load", "load_session", "source_lock"]

logger = logging.getLogger(__name__)


class RunFailed(FoundationError):
    """A load failed or could not start; the message names the source and the cause, with secrets masked."""


@dataclass
class LoadSession:
    pipeline: dlt.Pipeline
    resumed: Dict[str, int] = field(default_factory=dict)  # rows per table of an interrupted load completed first
    warnings: List[str] = field(default_factory=list)


def create_pipeline(source: SourceDef, target: Target, progress: Optional[Collector] = None) -> dlt.Pipeline:
    """The dlt pipeline of `source` in `target`: pipeline `foundation_<source>`, the source's dataset, and a working
    folder of its own for that destination and dataset."""
    dataset = target.dataset_name(source.dataset_name)
    clash = target.duckdb_clash(dataset)
    if clash:
        raise RunFailed(clash)
    return dlt.pipeline(
        pipeline_name=f"foundation_{source.name}",
        destination=target.destination,
        dataset_name=dataset,
        pipelines_dir=target.pipelines_dir(dataset),
        progress=RowJournal(progress or NullCollector()),
    )


@contextlib.contextmanager
def load_session(source: SourceDef, target: Target, progress: Optional[Collector] = None) -> Iterator[LoadSession]:
    """Hold the source's lock, open its pipeline, make the local state agree with the destination, complete an
    interrupted load that belongs here, then yield for `pipeline.run` (with foundation's dlt defaults; a package a
    schema contract rejected is aborted). Secrets dlt resolves meanwhile are masked, also in its saved trace."""
    with source_lock(source, target), capture_resolved_secrets():
        pipeline = create_pipeline(source, target, progress)
        try:
            warnings, remote = _agree_with_destination(pipeline)
            pending = pipeline.has_pending_data
            resumed = finish_pending_load(pipeline)
            # nothing was loaded since `remote` was read (and the lock keeps other runs of this source out): dlt's
            # sync at the start of `pipeline.run` is given it instead of reading it again
            known = remote if remote is not None and not pending else None
            with dlt_defaults(), _abort_rejected_load(pipeline), _known_destination_state(pipeline, known):
                yield LoadSession(pipeline, resumed, warnings)
        finally:
            _scrub_trace(pipeline)


def _scrub_trace(pipeline: dlt.Pipeline) -> None:
    """dlt pickles the run's trace into the working folder (`trace.pickle`): step exceptions with their messages and
    stack traces, user code's included. Mask the secrets in it and save it again, as dlt does."""
    from dlt.pipeline.trace import save_trace

    trace = pipeline._last_trace  # this process's trace: an unpickled one cannot be pickled again (dlt's Schema)
    if trace is None:
        return
    scrubbed = scrub(trace)
    if scrubbed is not trace:
        pipeline._last_trace = scrubbed
        save_trace(pipeline.working_dir, scrubbed)


# --- one run per source and dataset ----------------------------------------------------------------------------

@contextlib.contextmanager
def source_lock(source: SourceDef, target: Target) -> Iterator[None]:
    """Hold the per-source lock for a run. A second run of the same source into the same dataset waits up to
    `$FOUNDATION_LOCK_TIMEOUT` seconds (default 0) and then fails with a clear message naming the holder.

    Example:
        >>> with source_lock(project.sources["jaffle_shop"], target):
        ...     pipeline.run(...)
    """
    dataset = target.dataset_name(source.dataset_name)
    folder = Path(target.pipelines_dir(dataset))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"foundation_{source.name}.lock"
    lock = FileLock(path, timeout=max(0.0, float(os.environ.get("FOUNDATION_LOCK_TIMEOUT", "0"))))
    holder = _holder(path)  # older filelock releases empty the file on every attempt: read it before trying
    try:
        lock.acquire(poll_interval=0.2)
    except Timeout:
        holder = _holder(path) or holder or "another process"
        raise RunFailed(f"source `{source.name}` is already being loaded into dataset `{dataset}` by {holder}; "
                        "wait for it to finish (or set FOUNDATION_LOCK_TIMEOUT to wait that many seconds)") from None
    try:
        path.write_text(f"pid {os.getpid()}")  # the same file (and inode) the lock is held on
        yield
    finally:
        lock.release()


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


# --- local state and the destination ---------------------------------------------------------------------------

def agree_with_destination(pipeline: dlt.Pipeline) -> List[str]:
    """Keep the local working folder only if the destination's dataset still holds the state it was built on;
    otherwise drop it (pending packages included) so dlt restores from the destination. Returns warnings."""
    return _agree_with_destination(pipeline)[0]


def _agree_with_destination(pipeline: dlt.Pipeline) -> Tuple[List[str], Optional[Dict[str, Any]]]:
    """`agree_with_destination`, and the destination's state it read (None when it holds none or keeps none)."""
    supported, remote = destination_state(pipeline)
    if not supported:
        return [], None  # the destination keeps no state (dlt cannot check): dlt's own rules apply
    local = pipeline.state
    pending = _pending_packages(pipeline)
    if pending:
        base = _snapshot_state(pipeline, pending[0])
        if base is not None and _built_on(base, remote, pipeline.dataset_name, local):
            return [], remote
        reason = (f"the unfinished load {', '.join(pending)} was extracted for "
                  f"{_describe_base(base, pipeline.dataset_name)}, but dataset `{pipeline.dataset_name}` "
                  f"{_describe_remote(remote)}; it is discarded and the state restored from the destination, so "
                  "this run extracts again from there")
    elif _local_is_ahead(local, remote):
        reason = (f"the local state of `{pipeline.pipeline_name}` (version {local.get('_state_version')}) is ahead of "
                  f"dataset `{pipeline.dataset_name}`, which {_describe_remote(remote)}; it is dropped and the state "
                  "restored from the destination")
    else:
        return [], remote
    logger.warning("pipeline %s: %s", pipeline.pipeline_name, reason)
    pipeline.drop()  # the same object, re-initialized on an empty working folder
    return [reason], remote


@contextlib.contextmanager
def _known_destination_state(pipeline: dlt.Pipeline, remote: Optional[Dict[str, Any]]) -> Iterator[None]:
    """The next time dlt reads the pipeline's state from the destination (its sync at the start of `run`), hand it
    `remote`, read moments ago by `agree_with_destination` on the same dataset, instead of a second round-trip (a
    client configured, a connection opened, a query: ~0.1 s on DuckDB). Once only, and a copy (dlt changes it)."""
    if remote is None or not pipeline.config.use_single_dataset:  # dlt reads the state from the main dataset
        yield
        return

    def known_state() -> Dict[str, Any]:
        pipeline.__dict__.pop("_restore_state_from_destination", None)  # dlt's own method from now on
        return copy.deepcopy(remote)

    pipeline._restore_state_from_destination = known_state
    try:
        yield
    finally:
        pipeline.__dict__.pop("_restore_state_from_destination", None)


def destination_state(pipeline: dlt.Pipeline) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """(the destination keeps dlt state, the newest state it holds for the pipeline or None)."""
    from dlt.common.destination.client import WithStateSync
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.pipeline.state_sync import load_pipeline_state_from_destination

    with pipeline.destination_client() as client:
        if not isinstance(client, WithStateSync):
            return False, None
        try:
            return True, load_pipeline_state_from_destination(pipeline.pipeline_name, client)
        except DestinationUndefinedEntity:  # no dataset or no state table yet
            return True, None


def _pending_packages(pipeline: dlt.Pipeline) -> List[str]:
    if not pipeline.has_pending_data:
        return []
    return sorted(set(pipeline.list_normalized_load_packages()) | set(pipeline.list_extracted_load_packages()))


def _snapshot_state(pipeline: dlt.Pipeline, load_id: str) -> Optional[Dict[str, Any]]:
    """The local state the package was extracted from (dlt saves it in the package as its restore snapshot)."""
    from dlt.common.versioned_state import json_decode_state

    for packages in (pipeline._get_load_storage().normalized_packages,
                     pipeline._get_normalize_storage().extracted_packages):
        if packages.can_restore_pipeline_state(load_id):
            blob, _ = packages.load_pipeline_state(load_id)
            return json_decode_state(blob) if blob else None
    return None


def _built_on(base: Dict[str, Any], remote: Optional[Dict[str, Any]], dataset: str, local: Dict[str, Any]) -> bool:
    if base.get("dataset_name") not in (None, dataset):
        return False
    if remote is None:
        return not base.get("_state_version")  # only a first load may start from nothing
    return remote.get("_version_hash") in (base.get("_version_hash"), local.get("_version_hash"))


def _local_is_ahead(local: Dict[str, Any], remote: Optional[Dict[str, Any]]) -> bool:
    """The destination lost state the local folder has: loaded into before (version > 0) but now without any, or
    with an older or different version (a newer remote state is dlt's to restore)."""
    if remote is None:
        return bool(local.get("_state_version"))
    if remote.get("_version_hash") == local.get("_version_hash"):
        return False
    return remote.get("_state_version", 0) <= local.get("_state_version", 0)


def _describe_base(base: Optional[Dict[str, Any]], dataset: str) -> str:
    if base is None:
        return "a state that cannot be checked"
    if base.get("dataset_name") not in (None, dataset):
        return f"dataset `{base['dataset_name']}`"
    version = base.get("_state_version")
    return f"state version {version}" if version else "an empty dataset"


def _describe_remote(remote: Optional[Dict[str, Any]]) -> str:
    return "holds no state" if remote is None else f"holds state version {remote.get('_state_version')}"


# --- completing an interrupted load ----------------------------------------------------------------------------

def finish_pending_load(pipeline: dlt.Pipeline) -> Dict[str, int]:
    """Normalize and load what an interrupted run left; its rows per table (from the normalize step, or, for a
    package that was normalized before the interruption, from the row journal)."""
    if not pipeline.has_pending_data:
        return {}
    logger.warning("pipeline %s: completing the load that an earlier run left unfinished", pipeline.pipeline_name)
    rows: Dict[str, int] = {}
    for load_id in pipeline.list_normalized_load_packages():
        _add(rows, RowJournal.read(pipeline.working_dir, load_id))
    info = pipeline.normalize()
    _add(rows, info.row_counts if info else {})
    pipeline.load()
    return rows


def _add(total: Dict[str, int], counts: Dict[str, int]) -> None:
    for table, count in counts.items():
        if not table.startswith("_dlt"):
            total[table] = total.get(table, 0) + count


class RowJournal(Collector):
    """dlt's progress collector, plus a journal of the rows each normalized package holds (a JSON file in the
    working folder), so a run that completes a package normalized by a killed run reports its rows."""

    FILE = "foundation_normalized_rows.json"

    def __init__(self, inner: Collector) -> None:
        self.inner = inner

    def update(self, name: str, inc: int = 1, total: int = None, inc_total: int = None, message: str = None,
               label: str = None) -> None:
        self.inner.update(name, inc, total, inc_total, message, label)

    def _start(self, step: str) -> None:
        self.inner.step = step
        self.inner._start(step)

    def _stop(self) -> None:
        self.inner._stop()

    def on_start_trace(self, trace: Any, step: Any, pipeline: Any) -> None:
        self.inner.on_start_trace(trace, step, pipeline)

    def on_start_trace_step(self, trace: Any, step: Any, pipeline: Any) -> None:
        self.inner.on_start_trace_step(trace, step, pipeline)

    def on_end_trace(self, trace: Any, pipeline: Any, send_state: bool) -> None:
        self.inner.on_end_trace(trace, pipeline, send_state)

    def on_end_trace_step(self, trace: Any, step: Any, pipeline: Any, step_info: Any, send_state: bool) -> None:
        self.inner.on_end_trace_step(trace, step, pipeline, step_info, send_state)
        if getattr(step, "step", None) == "normalize" and getattr(step_info, "metrics", None):
            journal = self._load(pipeline.working_dir)
            loaded = set(pipeline.list_completed_load_packages()) if journal else set()
            journal = {load_id: rows for load_id, rows in journal.items() if load_id not in loaded}
            for load_id, metrics in step_info.metrics.items():
                journal[load_id] = {t: m.items_count for t, m in metrics[0]["table_metrics"].items()}
            Path(pipeline.working_dir, self.FILE).write_text(json.dumps(journal))

    @classmethod
    def read(cls, working_dir: str, load_id: str) -> Dict[str, int]:
        return cls._load(working_dir).get(load_id, {})

    @classmethod
    def _load(cls, working_dir: str) -> Dict[str, Dict[str, int]]:
        try:
            return json.loads(Path(working_dir, cls.FILE).read_text())
        except (OSError, ValueError):
            return {}

    def __getstate__(self) -> Dict[str, Any]:  # dlt may copy collectors into traces
        return {}


# --- dlt settings and rejected loads ---------------------------------------------------------------------------

# dlt settings foundation changes where the user has not set them (env vars and .dlt/*.toml still win)
DLT_DEFAULTS: Dict[str, Any] = {
    # extract's intermediate files (read once by normalize, then deleted) are gzipped at level 9 by default: ~2 s CPU
    # of the 150k-row Jaffle Shop load (half of extract) for nothing. Loader files keep dlt's default.
    "sources.data_writer.disable_compression": True,
    # arrow items get `_dlt_load_id` like rows do from `load.columnar.ColumnarPages`, a step of every resource: dlt's
    # `normalize.parquet_normalizer.add_dlt_load_id` would stamp the columnar path's child tables too, which rows don't
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
def _abort_rejected_load(pipeline: dlt.Pipeline) -> Iterator[None]:
    """A package that a schema contract rejected fails the same way on every retry and would block all later runs:
    abort it (dlt restores the local state and schema), so the next run starts afresh from the last good load."""
    try:
        yield
    except PipelineStepFailed as exc:
        if cause_of(exc, DataValidationError) is not None and pipeline.has_pending_data:
            pipeline.abort_packages()
        raise
