"""A backfill's partitions side by side: one Dagster run per partition (`max_partitions_per_run: 1`), each step in a
process of its own (the multiprocess executor), as many at a time as the source's pool allows; each partition with
dlt state of its own, all into the same DuckDB tables, nothing lost and nothing loaded twice (docs/backfills.md)."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from conftest import query, write_source
from data_foundation.dagster.home import prepare_dagster_home
from data_foundation.dagster.partition_runs import partition_pipeline_source, write_lock_path
from data_foundation.load.destinations import create_target

POOL, LIMIT, PER_DAY = "ev_backfill", 2, 3
DATA = '''
import datetime as dt
import json
import os
import time
from pathlib import Path


def events(start_date=None, end_date=None, incremental=None, per_day=3):
    """The window's events; each call records its process, when it ran and the cursor dlt gave it."""
    spans = Path(os.environ["BACKFILL_SPANS"])
    started = time.time()
    (spans / f"{start_date}.started").write_text("")
    while len(list(spans.glob("*.started"))) < 2 and time.time() - started < 20:
        time.sleep(0.05)  # wait (a while) for another partition to extract at the same time: proves they do
    day, last, rows = dt.date.fromisoformat(start_date), dt.date.fromisoformat(end_date), []
    while day <= last:
        rows += [{"id": f"{day}-{i}", "day": day.isoformat(), "ts": f"{day}T{i:02d}:00:00"} for i in range(per_day)]
        day += dt.timedelta(days=1)
    yield rows
    span = {"pid": os.getpid(), "start": started, "end": time.time(),
            "cursor": incremental.start_value if incremental is not None else "no incremental"}
    with open(spans / "spans.jsonl", "a") as log:
        log.write(json.dumps({"window": start_date, **span}) + "\\n")
'''
SOURCES = f"""
resources:
  ev.events:
    entry: data.events
    write_disposition: merge
    primary_key: id
    incremental: {{cursor_path: ts}}
sources:
  ev:
    resources: [ev.events]
    meta:
      dagster:
        partition: {{type: daily, start: "2024-01-01", end: "2024-02-01", max_partitions_per_run: 1}}
        pool: {POOL}
"""
# the code location of the runs: importable in the step processes (the multiprocess executor spawns them)
DEFS = '''
import os
from pathlib import Path

import dagster as dg

from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target


def backfill_job():
    defs = build_definitions(Path(os.environ["BACKFILL_ROOT"]), create_target("duckdb", os.environ["BACKFILL_DUCKDB"]))
    # the tables only: the checks would be one more step process per run, and are tested elsewhere
    tables = dg.AssetSelection.all() - dg.AssetSelection.all_asset_checks()
    job = dg.define_asset_job("ev_backfill", selection=tables)
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("ev_backfill")
'''


@pytest.fixture
def backfill(tmp_path, monkeypatch):
    root = write_source(tmp_path / "root", "ev", DATA, SOURCES)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "backfill_defs.py").write_text(DEFS)
    (tmp_path / "code" / "run_partition.py").write_text(RUN)
    (tmp_path / "spans").mkdir()
    monkeypatch.setenv("BACKFILL_CODE", str(tmp_path / "code"))
    monkeypatch.setenv("BACKFILL_ROOT", str(root))
    monkeypatch.setenv("BACKFILL_DUCKDB", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("BACKFILL_SPANS", str(tmp_path / "spans"))
    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(tmp_path / "pipelines"))
    home = prepare_dagster_home(tmp_path / "dagster_home")  # foundation's dagster.yaml: pools, default limit 1
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, LIMIT)  # `dagster instance concurrency set`
    return tmp_path


RUN = '''
import sys

import dagster as dg

if __name__ == "__main__":  # the step processes are spawned: they import this module again
    job = dg.build_reconstructable_job("backfill_defs", "backfill_job", reconstructor_working_directory=sys.argv[1])
    # steps forked from a server that imported foundation once per run, not once per step (Dagster's forkserver)
    forkserver = {"forkserver": {"preload_modules": ["data_foundation.dagster", "backfill_defs"]}}
    with dg.DagsterInstance.get() as instance:  # $DAGSTER_HOME
        result = dg.execute_job(job, instance=instance, tags={"dagster/partition": sys.argv[2]}, raise_on_error=False,
                                run_config={"execution": {"config": {"multiprocess": {"start_method": forkserver}}}})
    print("run status:", result.dagster_run.status.value)
'''


def _start_run(key: str) -> subprocess.Popen:
    """One run of the partition in a run worker process of its own, as Dagster's run launcher starts it; the
    multiprocess executor runs its steps in processes of their own."""
    code = os.environ["BACKFILL_CODE"]
    return subprocess.Popen([sys.executable, str(Path(code, "run_partition.py")), code, key],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _status(run: subprocess.Popen) -> str:
    output, _ = run.communicate(timeout=180)
    with open(Path(os.environ["BACKFILL_SPANS"], "runs.log"), "a") as log:
        log.write(output)
    found = re.search(r"run status: (\w+)$", output, re.M)
    return "SUCCESS" if found and found[1] == "SUCCESS" else output[-4000:]  # else what went wrong


def _materialize_here(key: str) -> bool:
    """A run in this process (in-process executor): quicker, for the runs that are not side by side."""
    from data_foundation.dagster import build_definitions

    defs = build_definitions(Path(os.environ["BACKFILL_ROOT"]), create_target("duckdb", os.environ["BACKFILL_DUCKDB"]))
    return dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources, partition_key=key,
                          instance=dg.DagsterInstance.ephemeral()).success


def _spans(folder: Path) -> list:
    return [json.loads(line) for line in (folder / "spans.jsonl").read_text().splitlines()]


def _most_at_once(spans: list) -> int:
    return max(sum(1 for o in spans if o["start"] <= s["start"] < o["end"]) for s in spans)


def test_partitions_run_side_by_side_with_their_own_state(backfill):
    database = backfill / "w.duckdb"
    started = time.monotonic()
    # the last day first, alone: with one dlt state for all partitions its cursor (2024-01-06T02:00) would filter
    # out every row of the days before
    spans_folder = backfill / "spans"
    (spans_folder / "alone.started").write_text("")  # no other partition to wait for
    assert _materialize_here("2024-01-06")
    for marker in spans_folder.glob("*.started"):
        marker.unlink()
    days = [f"2024-01-0{d}" for d in range(1, 4)]  # one more than the pool allows at once
    statuses = [_status(run) for run in [_start_run(key) for key in days]]
    elapsed = time.monotonic() - started
    assert statuses == ["SUCCESS"] * len(days)

    # nothing lost, nothing twice: every day's events once, in the one table all partitions load into
    rows = query(database, "SELECT day, COUNT(*), COUNT(DISTINCT id) FROM ev.events GROUP BY day ORDER BY day")
    assert rows == [(day, PER_DAY, PER_DAY) for day in [*days, "2024-01-06"]]

    # side by side, in processes of their own, never more than the pool's limit at once
    spans = _spans(backfill / "spans")
    concurrent = [s for s in spans if s["window"] in days]
    assert _most_at_once(concurrent) == LIMIT, concurrent  # at least 2 (they wait for each other), at most the limit
    assert len({s["pid"] for s in concurrent}) == len(days) and os.getpid() not in {s["pid"] for s in concurrent}

    # each partition's own dlt state: a fresh cursor in each run (none leaked from 2024-01-06), kept per pipeline
    assert {s["window"]: s["cursor"] for s in spans} == {day: None for day in [*days, "2024-01-06"]}
    state = query(database, "SELECT pipeline_name, COUNT(*) FROM ev._dlt_pipeline_state GROUP BY 1 ORDER BY 1")
    assert state == [(f"foundation_ev__{day.replace('-', '_')}", 1) for day in [*days, "2024-01-06"]]
    folders = {p.name for p in (backfill / "pipelines").glob("*/foundation_ev__*") if p.is_dir()}
    assert folders == {f"foundation_ev__{day.replace('-', '_')}" for day in [*days, "2024-01-06"]}
    print(f"\n{len(days)} partition runs side by side (pool limit {LIMIT}), and one before: {elapsed:.1f} s")

    # a partition run again continues from its own cursor, and merges: still every row once
    assert _materialize_here("2024-01-03")
    assert _spans(backfill / "spans")[-1]["cursor"] == "2024-01-03T02:00:00"
    assert query(database, "SELECT COUNT(*), COUNT(DISTINCT id) FROM ev.events") == [(4 * PER_DAY, 4 * PER_DAY)]


def test_the_pipeline_of_a_partition_run_and_the_write_lock(tmp_path):
    from data_foundation.config.loading import load_project

    root = write_source(tmp_path / "root", "ev", DATA, SOURCES)
    source = load_project(root).sources["ev"]
    day, hours = (partition_pipeline_source(source, "2024-01-02", "2024-01-02"),
                  partition_pipeline_source(source, "2024-01-01-00:00", "2024-01-01-05:00"))
    assert (day.name, day.dataset_name) == ("ev__2024_01_02", "ev")
    assert (hours.name, hours.dataset_name) == ("ev__2024_01_01_00_00__2024_01_01_05_00", "ev")
    assert day.resources == source.resources and day.dagster == source.dagster
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    assert write_lock_path(target, "ev") == tmp_path / "w.duckdb.lock"  # one per file: DuckDB has one writer
    assert write_lock_path(create_target("duckdb", ":memory:"), "ev") is None


def test_a_run_waits_for_the_write_lock(tmp_path, monkeypatch):
    """A run that needs the destination while another run holds its write lock waits, then fails clearly."""
    from data_foundation.dagster.partition_runs import LOCK_TIMEOUT_ENV, destination_lock
    from data_foundation.load.session import RunFailed

    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.3")
    held, release = threading.Event(), threading.Event()

    def holder():
        with destination_lock(target, "ev"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(RunFailed, match="waited 0 s for the write lock of dataset `ev`"):
            with destination_lock(target, "ev"):
                pass
    finally:
        release.set()
        thread.join()
    with destination_lock(target, "ev"), destination_lock(target, "ev"):  # re-entrant within a thread
        pass
