"""Runs of one partitioned source side by side (a backfill, each run in its own process), without sharing dlt state and
without two writers where the destination allows one.

* Each run of a partitioned source has a dlt pipeline of its own, `foundation_<source>__<partition>` (a run of a
  range: `__<first>__<last>`): its working folder, its per-source lock (`load.session.source_lock`) and its state in
  the destination (`_dlt_pipeline_state`, where incremental cursors live) are the partition's, so a cursor never
  leaks from one partition into another and two runs never share a folder. Dataset, schema and tables stay the
  source's: every partition loads into the same tables with the source's write disposition.
* The steps that open the destination hold its write lock (`destination_lock`): making the local state agree with it
  and completing an interrupted load (`load_session`), dlt's state sync at the start of `pipeline.run`, the load
  step, and the asset checks. Extract and normalize, the bulk of a run, go on unlocked, side by side. DuckDB: one lock
  per database file (`<file>.lock` next to it): DuckDB lets one process at a time open a file, for writing or reading.
  Other destinations: one lock per dataset on this host, because merge loads of a dataset share its staging tables
  (dlt truncates them at the start of a load). Across hosts (Kubernetes pods) the Dagster pool serializes the runs.
"""

import contextlib
import dataclasses
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import dlt
from filelock import FileLock, Timeout

from data_foundation.config.project import SourceDef
from data_foundation.load.destinations import Target
from data_foundation.load.session import RunFailed

__all__ = ["LOCK_TIMEOUT_ENV", "destination_lock", "lock_destination_steps", "partition_pipeline_source",
           "write_lock_path"]

LOCK_TIMEOUT_ENV = "FOUNDATION_WRITE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 3600.0  # seconds a run waits for the destination's write lock before it fails
_DESTINATION_STEPS = ("_sync_destination", "load")  # the methods of a dlt pipeline that open the destination


@dataclasses.dataclass
class _PartitionPipelineSource(SourceDef):
    """A source as `load_session` sees it for one partition run: the name (so the pipeline, its folder, lock and
    state) is the partition's, the dataset the source's."""

    source_dataset: str = ""

    @property
    def dataset_name(self) -> str:
        return self.source_dataset


def partition_pipeline_source(source: SourceDef, first: str, last: str) -> SourceDef:
    """`source` for `load_session` in a run of the partitions `first` to `last`: pipeline
    `foundation_<source>__<first>[__<last>]`, the partition keys written as identifiers, dataset unchanged.

    Example:
        >>> partition_pipeline_source(source, "2024-01-02", "2024-01-02").name
        'events__2024_01_02'
    """
    keys = [first] if first == last else [first, last]
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(SourceDef)}
    fields["name"] = "__".join([source.name, *(re.sub(r"[^0-9A-Za-z]+", "_", key).strip("_") for key in keys)])
    return _PartitionPipelineSource(**fields, source_dataset=source.dataset_name)


def write_lock_path(target: Target, dataset: str) -> Optional[Path]:
    """The file the destination's write lock is held on, or None (an in-memory DuckDB: nothing to share)."""
    if target.duckdb_file is not None:
        if str(target.duckdb_file) == ":memory:":
            return None
        database = target.duckdb_file.resolve()
        return database.with_name(database.name + ".lock")
    return Path(target.pipelines_dir(dataset)) / "foundation_write.lock"


_locks: Dict[Path, FileLock] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def destination_lock(target: Target, dataset: str) -> Iterator[None]:
    """Hold the write lock of `dataset` in `target` (see the module's doc); waits up to `$FOUNDATION_WRITE_LOCK_TIMEOUT`
    seconds (default an hour), then fails. Re-entrant within a thread: one `FileLock` per file and process."""
    path = write_lock_path(target, dataset)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locks_guard:
        lock = _locks.setdefault(path, FileLock(path))
    timeout = max(0.0, float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT)))
    try:
        lock.acquire(timeout=timeout, poll_interval=0.05)
    except Timeout:
        raise RunFailed(f"waited {timeout:.0f} s for the write lock of dataset `{dataset}` ({path}), held by another "
                        f"run the whole time; set {LOCK_TIMEOUT_ENV} to wait longer") from None
    try:
        yield
    finally:
        lock.release()


def lock_destination_steps(pipeline: dlt.Pipeline, target: Target) -> None:
    """Make `pipeline.run` hold the destination's write lock while it opens the destination: the state sync before
    extracting and the load step (instance attributes, which `pipeline.drop()` keeps: it re-runs `__init__` only)."""
    for step in _DESTINATION_STEPS:
        method = getattr(pipeline, step)
        if getattr(method, "_foundation_locked", False):
            continue
        setattr(pipeline, step, _locked(method, target, pipeline.dataset_name))


def _locked(method: Callable[..., Any], target: Target, dataset: str) -> Callable[..., Any]:
    def locked(*args: Any, **kwargs: Any) -> Any:
        with destination_lock(target, dataset):
            return method(*args, **kwargs)

    locked._foundation_locked = True  # type: ignore[attr-defined]
    return locked
