"""A run that dies loses and duplicates nothing.

Jaffle Shop against the local replica: retries exhausted (the cursor stays put), `kill -9` of a real
`foundation run` during extract, normalize and load (the next run completes or redoes the work exactly once),
and two runs at once (same pipelines dir: the per-source lock; different pipelines dirs: DuckDB's single writer).
Every load is of the late Jaffle Shop source (conftest's `copy_late_jaffle`: orders from LATE_START on) from a replica
serving only those (conftest's `late_api`: `foundation run` reconciles with what the API has): the faults are in how a
load runs, not in how many orders it holds.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import duckdb
import pytest

from conftest import LATE_START, late_counts, query, table_counts
from data_foundation.load.destinations import create_target
from data_foundation.load.running import RunFailed, create_pipeline, run_source

pytestmark = pytest.mark.usefixtures("late_api")
DATASET = "jaffle_shop"
KEYS = {"customers": "id", "orders": "id", "items": "id", "products": "sku", "stores": "id", "supplies": "id, sku"}


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
class Cli:
    """`foundation run jaffle_shop` as a real process in its own process group, output in files (no pipe to fill)."""

    def __init__(self, tmp_path: Path, root: Path, name: str, duckdb_file: Path, env: Dict[str, str]):
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        command = [sys.executable, "-m", "data_foundation.cli", "--root", str(root), "run", "jaffle_shop",
                   "--destination", "duckdb", "--duckdb-file", str(duckdb_file)]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "COLUMNS": "200", **env},
                                            stdout=out, stderr=err, start_new_session=True)
        self.pid = self.process.pid

    @property
    def stderr(self) -> str:
        return self.err.read_text()

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        os.killpg(self.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def wait(self, timeout: float = 90) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.running():
            self.signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def cli(tmp_path: Path, duckdb_file: Path, late_jaffle_root: Path):
    """Start `foundation run jaffle_shop` processes (the late source); whatever is still running at the end is killed
    (group-wide)."""
    started: List[Cli] = []

    def start(name: str, **env: str) -> Cli:
        started.append(Cli(tmp_path, late_jaffle_root, name, duckdb_file, env))
        return started[-1]

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def wait_for(condition: Callable[[], bool], process: Cli, what: str, timeout: float = 90) -> None:
    """Poll `condition` every 20 ms; fail (with the process's stderr) if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not process.running():
            pytest.fail(f"`foundation run` ended (exit {process.process.returncode}) before {what}:\n{process.stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{process.stderr}")
        time.sleep(0.02)


def _children(folder: Path) -> List[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except FileNotFoundError:  # dlt renames package folders while we look
        return []


def _files(folder: Path) -> List[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_file())
    except FileNotFoundError:
        return []


def working_dir(duckdb_file: Path) -> Path:
    """dlt's working folder of the Jaffle Shop pipeline for dataset `jaffle_shop` in `duckdb_file` (one per
    destination and dataset, under $FOUNDATION_PIPELINES_DIR)."""
    return Path(create_target("duckdb", str(duckdb_file)).pipelines_dir(DATASET)) / "foundation_jaffle_shop"


def packages(root: Path) -> Dict[str, List[Path]]:
    """dlt's working folder `root` (dlt 1.31): a package being extracted lives in `normalize/<extract id>/<load id>`,
    is moved to `normalize/extracted/<load id>` when extraction is committed, normalized into `load/new/<load id>`,
    committed to `load/normalized/<load id>`, loaded (jobs move new_jobs -> started_jobs -> completed_jobs) and
    finally moved to `load/loaded/<load id>`."""
    return {
        "extracting": [p for d in _children(root / "normalize") if d.name != "extracted" for p in _children(d)],
        "extracted": _children(root / "normalize" / "extracted"),
        "normalizing": _children(root / "load" / "new"),
        "normalized": _children(root / "load" / "normalized"),
        "loaded": _children(root / "load" / "loaded"),
    }


def order_pages(replica) -> List[Dict[str, str]]:
    return [q for _, path, q in replica.requests if path == "/api/v1/orders"]


def orders_cursor(state: dict) -> Optional[str]:
    resources = state.get("sources", {}).get("jaffle_shop", {}).get("resources", {})
    return resources.get("orders", {}).get("incremental", {}).get("ordered_at", {}).get("last_value")


def destination_cursor(duckdb_file: Path) -> Optional[str]:
    """The orders cursor in the newest pipeline state dlt stored in the destination."""
    from dlt.common.versioned_state import decompress_state

    rows = query(duckdb_file, f"SELECT state FROM {DATASET}._dlt_pipeline_state ORDER BY version DESC LIMIT 1")
    return orders_cursor(decompress_state(rows[0][0])) if rows else None


def data_tables(duckdb_file: Path) -> Dict[str, int]:
    return table_counts(duckdb_file, DATASET) if duckdb_file.exists() else {}


def duckdb_locked(path: Path) -> bool:
    try:
        duckdb.connect(str(path), read_only=True).close()
        return False
    except duckdb.IOException as exc:
        if "Could not set lock" in str(exc):
            return True
        raise


def reader(duckdb_file: Path) -> duckdb.DuckDBPyConnection:
    """One read-only connection for a helper's queries (`query` opens one per query, and opening takes ~0.1 s on a
    busy machine); use it in a `with`."""
    return duckdb.connect(str(duckdb_file), read_only=True)


def fingerprint(duckdb_file: Path) -> Dict[str, tuple]:
    """Per table: row count and an order-independent hash of the keys and of the data columns."""
    result = {}
    with reader(duckdb_file) as con:
        for table, key in KEYS.items():
            columns = [r[0] for r in con.execute("""SELECT column_name FROM information_schema.columns
                WHERE table_schema = ? AND table_name = ? AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\'
                ORDER BY column_name""", [DATASET, table]).fetchall()]
            result[table] = con.sql(f"SELECT COUNT(*), SUM(hash({key})), SUM(hash({', '.join(columns)})) "
                                    f"FROM {DATASET}.{table}").fetchall()[0]
    return result


def assert_exact(duckdb_file: Path, replica) -> None:
    """Every row of the API exactly once, nothing skipped, every row from a completed load."""
    assert data_tables(duckdb_file) == replica.row_counts() == late_counts(replica)
    with reader(duckdb_file) as con:
        for table, key in KEYS.items():
            assert con.sql(f"SELECT COUNT(*) - COUNT(DISTINCT ({key})) FROM {DATASET}.{table}").fetchall() == [(0,)], \
                table
            assert con.sql(f"""SELECT COUNT(*) FROM {DATASET}.{table} WHERE _dlt_load_id NOT IN
                (SELECT load_id FROM {DATASET}._dlt_loads WHERE status = 0)""").fetchall() == [(0,)], table
        last_day = dt.date.fromisoformat(replica.state.order_days[-1])
        assert con.sql(f"SELECT MIN(ordered_at)::DATE, MAX(ordered_at)::DATE FROM {DATASET}.orders").fetchall() == [
            (dt.date.fromisoformat(LATE_START), last_day)]
        assert con.sql(f"""SELECT COUNT(*) FROM {DATASET}.items i
            LEFT JOIN {DATASET}.orders o ON i.order_id = o.id WHERE o.id IS NULL""").fetchall() == [(0,)]


def recover_and_rerun(jaffle, duckdb_file: Path, replica):
    """The next run (in-process, same pipelines dir) ends with exact tables; the one after changes nothing."""
    target = create_target("duckdb", str(duckdb_file))
    recovery = run_source(jaffle, target)
    assert_exact(duckdb_file, replica)
    before = fingerprint(duckdb_file)
    again = run_source(jaffle, target)
    assert again.rows_loaded.get("orders", 0) == again.rows_loaded.get("items", 0) == 0
    assert fingerprint(duckdb_file) == before
    assert_exact(duckdb_file, replica)
    return recovery


def loads(duckdb_file: Path) -> Dict[str, int]:
    return dict(query(duckdb_file, f"SELECT load_id, status FROM {DATASET}._dlt_loads"))


# ---------------------------------------------------------------------------------------------------------------
# 1. retries exhausted
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_retries_exhausted_fail_readably_and_keep_the_cursor(late_jaffle, jaffle_env, duckdb_file, monkeypatch):
    target = create_target("duckdb", str(duckdb_file))
    run_source(late_jaffle, target)
    late = late_counts(jaffle_env)
    assert data_tables(duckdb_file) == late
    cursor = destination_cursor(duckdb_file)
    assert cursor.startswith("2017-08-31")
    loads_before = loads(duckdb_file)

    added = jaffle_env.add_day()
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS", "2")
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__BACKOFF_FACTOR", "0.01")
    jaffle_env.inject_fault(status=503, count=10_000, path_prefix="/api/v1/orders")
    jaffle_env.clear_requests()
    with pytest.raises(RunFailed) as failure:
        run_source(late_jaffle, target)
    message = str(failure.value)
    url = f"{jaffle_env.base_url}/orders?page_size=1000&start_date=2017-08-31"
    for part in ("source `jaffle_shop`", "step `extract`", "`orders`", "503", url):
        assert part in message, (part, message)
    assert len(order_pages(jaffle_env)) == 2  # MAX_ATTEMPTS=2, then it gave up

    # nothing moved: not the cursor in the destination, not the local one, no load, no pending package
    assert destination_cursor(duckdb_file) == cursor
    pipeline = create_pipeline(late_jaffle, target)
    assert orders_cursor(pipeline.state) == cursor
    assert not pipeline.has_pending_data
    assert loads(duckdb_file) == loads_before
    assert data_tables(duckdb_file) == late

    # the next run picks up exactly the new day, from the old cursor's day on
    jaffle_env.clear_faults()
    jaffle_env.clear_requests()
    monkeypatch.delenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS")
    after = run_source(late_jaffle, target)
    assert {p.get("start_date") for p in order_pages(jaffle_env)} == {"2017-08-31"}
    assert (after.rows_loaded["orders"], after.rows_loaded["items"]) == (added["orders"], added["items"])
    assert data_tables(duckdb_file) == {**late, "orders": late["orders"] + added["orders"],
                                        "items": late["items"] + added["items"]} == jaffle_env.row_counts()
    assert_exact(duckdb_file, jaffle_env)
    assert destination_cursor(duckdb_file).startswith(added["date"])


# ---------------------------------------------------------------------------------------------------------------
# 2. kill -9 during extract, normalize, load
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.timeout(150)
def test_kill_during_extract(late_jaffle, jaffle_env, duckdb_file, tmp_path, cli):
    pipelines_dir = working_dir(duckdb_file)
    jaffle_env.latency_ms = 50
    run = cli("killed", SOURCES__JAFFLE_SHOP__PAGE_SIZE="100")
    wait_for(lambda: len(order_pages(jaffle_env)) >= 20, run, "20 pages of orders were served")
    run.kill9()
    jaffle_env.latency_ms = 0

    # it died extracting: a package in the extract folder, nothing committed, nothing in the destination
    served = len(order_pages(jaffle_env))
    assert 20 <= served < -(-late_counts(jaffle_env)["orders"] // 100)  # all the pages of 100
    state = packages(pipelines_dir)
    assert len(state["extracting"]) == 1 and not (state["extracted"] or state["normalizing"] or state["normalized"]
                                                   or state["loaded"])
    killed_load_id = state["extracting"][0].name
    assert data_tables(duckdb_file) == {}
    target = create_target("duckdb", str(duckdb_file))
    assert orders_cursor(create_pipeline(late_jaffle, target).state) is None  # the cursor was never committed

    jaffle_env.clear_requests()
    recovery = recover_and_rerun(late_jaffle, duckdb_file, jaffle_env)
    assert order_pages(jaffle_env)[0].get("start_date") == LATE_START  # extracted again from the start
    assert recovery.rows_loaded["orders"] == late_counts(jaffle_env)["orders"]
    assert killed_load_id not in loads(duckdb_file)  # the half-extracted package was dropped, not loaded


@pytest.mark.timeout(150)
def test_kill_during_normalize(late_jaffle, jaffle_env, duckdb_file, tmp_path, cli):
    pipelines_dir = working_dir(duckdb_file)
    run = cli("killed")

    def normalizing() -> bool:
        state = packages(pipelines_dir)
        return bool(state["extracted"] and state["normalizing"]
                    and _files(state["normalizing"][0] / "new_jobs"))  # at least one table normalized

    wait_for(normalizing, run, "normalize wrote its first file")
    run.kill9()

    # it died normalizing: the extracted package is intact, a partial normalized one next to it, no data loaded
    state = packages(pipelines_dir)
    assert len(state["extracted"]) == len(state["normalizing"]) == 1 and not (state["normalized"] or state["loaded"])
    load_id = state["extracted"][0].name
    assert state["normalizing"][0].name == load_id
    extracted_jobs = _files(state["extracted"][0] / "new_jobs")
    assert {j.split(".")[0] for j in extracted_jobs} >= set(late_counts(jaffle_env))
    assert data_tables(duckdb_file) == {}
    # the local cursor already moved (extract committed it): dropping the package would skip every order
    target = create_target("duckdb", str(duckdb_file))
    assert orders_cursor(create_pipeline(late_jaffle, target).state).startswith("2017-08-31")

    recovery = recover_and_rerun(late_jaffle, duckdb_file, jaffle_env)
    assert recovery.rows_loaded["orders"] == late_counts(jaffle_env)["orders"]  # normalized again from the start, once
    assert loads(duckdb_file)[load_id] == 0  # the killed run's package, completed
    assert not packages(pipelines_dir)["extracted"] and not packages(pipelines_dir)["normalizing"]


@pytest.mark.timeout(150)
def test_kill_during_load(late_jaffle, jaffle_env, duckdb_file, tmp_path, cli):
    pipelines_dir = working_dir(duckdb_file)
    run = cli("killed")

    def merging_orders() -> bool:
        normalized = packages(pipelines_dir)["normalized"]
        return bool(normalized) and any(j.startswith("orders.") and j.endswith(".sql")
                                        for j in _files(normalized[0] / "started_jobs"))

    wait_for(merging_orders, run, "the merge of orders started")
    run.kill9()

    # it died loading: the package is still `normalized`, some jobs done, the orders merge not; no completed load
    state = packages(pipelines_dir)
    assert len(state["normalized"]) == 1 and not (state["extracted"] or state["loaded"])
    package = state["normalized"][0]
    load_id = package.name
    completed = _files(package / "completed_jobs")
    assert completed and not any(j.startswith("orders.") and j.endswith(".sql") for j in completed)
    assert loads(duckdb_file) == {}
    assert data_tables(duckdb_file).get("orders", 0) == 0  # the merge is one transaction: it rolled back

    recovery = recover_and_rerun(late_jaffle, duckdb_file, jaffle_env)
    assert loads(duckdb_file)[load_id] == 0  # the killed run's package, completed by the next run
    assert not packages(pipelines_dir)["normalized"]
    # its rows are reported: normalized by the killed run, their counts come from the row journal
    assert recovery.resumed == late_counts(jaffle_env)
    assert recovery.rows_loaded["orders"] == late_counts(jaffle_env)["orders"]


# ---------------------------------------------------------------------------------------------------------------
# 3. two runs at once
# ---------------------------------------------------------------------------------------------------------------
def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.timeout(150)
def test_second_run_of_the_same_source_fails_or_waits(late_jaffle, jaffle_env, duckdb_file, tmp_path, cli):
    # the first run holds the lock while the others start, however long they take to (a loaded CI machine)
    jaffle_env.latency_ms = 1000
    first = cli("first")
    lock = working_dir(duckdb_file).parent / "foundation_jaffle_shop.lock"
    wait_for(lambda: lock.exists() and lock.read_text() == f"pid {first.pid}" and order_pages(jaffle_env), first,
             "the first run took the lock and started extracting")

    second = cli("second")
    waiting = cli("waiting", FOUNDATION_LOCK_TIMEOUT="120")  # started with the second: their start-ups overlap
    assert second.wait(60) == 1
    assert first.running()
    message = _flat(second.stderr)
    assert (f"Error: source `jaffle_shop` is already being loaded into dataset `jaffle_shop` by pid {first.pid}"
            in message), message
    assert "Traceback" not in second.stderr

    wait_for(lambda: "Loading jaffle_shop" in waiting.stderr, waiting, "the waiting run started")
    time.sleep(1.0)
    assert first.running() and waiting.running()
    jaffle_env.latency_ms = 0
    assert first.wait(90) == 0, first.stderr
    assert waiting.wait(60) == 0, waiting.stderr
    assert "already being loaded" not in waiting.stderr
    assert_exact(duckdb_file, jaffle_env)
    # the waiting run started extracting only once the first one's load was complete (a load id is the time its
    # extraction started), and every order is from the first load
    first_load, waiting_load = sorted(loads(duckdb_file))
    (first_completed,) = query(duckdb_file, f"SELECT inserted_at FROM {DATASET}._dlt_loads WHERE load_id = ?",
                               [first_load])[0]
    assert float(waiting_load) > first_completed.timestamp()
    assert query(duckdb_file, f"SELECT DISTINCT _dlt_load_id FROM {DATASET}.orders") == [(first_load,)]
    assert query(duckdb_file, f"SELECT DISTINCT _dlt_load_id FROM {DATASET}.customers") == [(waiting_load,)]

    # and the lock is free again
    again = run_source(late_jaffle, create_target("duckdb", str(duckdb_file)))
    assert again.rows_loaded.get("orders", 0) == 0
    assert_exact(duckdb_file, jaffle_env)


@pytest.mark.timeout(150)
def test_other_pipelines_dir_same_duckdb_file_fails_clearly(late_jaffle, jaffle_env, duckdb_file, tmp_path, cli,
                                                            monkeypatch):
    first = cli("first")

    # freeze the first run while it holds DuckDB's write lock (it only does while syncing and loading)
    deadline = time.monotonic() + 90
    while True:
        wait_for(lambda: bool(packages(working_dir(duckdb_file))["normalized"]), first, "the first run is loading")
        first.signal(signal.SIGSTOP)
        if duckdb_locked(duckdb_file):
            break
        first.signal(signal.SIGCONT)
        assert time.monotonic() < deadline, "the first run never held the DuckDB lock"
        time.sleep(0.02)

    other = tmp_path / "other_pipelines"
    try:
        second = cli("second", FOUNDATION_PIPELINES_DIR=str(other))
        assert second.wait(60) == 1
    finally:
        first.signal(signal.SIGCONT)
    message = _flat(second.stderr)
    assert "Traceback" not in second.stderr
    assert f"Error: source `jaffle_shop` failed in step `sync`: DuckDB file `{duckdb_file}` is in use by another " \
           f"process (PID {first.pid})" in message, message
    assert "credentials" not in message and "internet" not in message
    state = packages(next(iter(other.glob("*/foundation_jaffle_shop")), other))
    assert not (state["extracting"] or state["extracted"] or state["normalized"])  # it stopped before extracting

    assert first.wait(90) == 0, first.stderr
    assert_exact(duckdb_file, jaffle_env)
    before = fingerprint(duckdb_file)

    # the same run again, once the file is free: it takes the state from the destination and adds nothing
    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(other))
    jaffle_env.clear_requests()
    again = run_source(late_jaffle, create_target("duckdb", str(duckdb_file)))
    assert {p.get("start_date") for p in order_pages(jaffle_env)} == {"2017-08-31"}
    assert again.rows_loaded.get("orders", 0) == 0
    assert fingerprint(duckdb_file) == before
    assert_exact(duckdb_file, jaffle_env)
