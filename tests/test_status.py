"""`foundation status`: the last load, the last failure, the cursor, freshness and unfinished loads per source and
table, read from the destination, so a fresh pipelines folder (another machine, an ephemeral runner) sees the same.

A small synthetic source `shop` (`things`: incremental on `id`, a freshness policy of one hour; `notes`: no policy)
into real DuckDB files and the suite's PostgreSQL server. A run is killed while loading by holding dlt's loader just
before it writes the `_dlt_loads` row (a `sitecustomize` hook in the `foundation run` subprocess), then `kill -9`.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from conftest import query, write_source
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target, resolve_target
from data_foundation.load.history import (Failure, StatusError, humanize_seconds, read_status, record_failure,
                                          source_status)
from data_foundation.load.running import RunFailed, run_source
from test_cli import flat, foundation, table_rows

SECRET = "shop-key-7f3a9c2e51"

DATA = '''
import os

import dlt


def things(api_key=dlt.secrets.value, incremental=None):
    if os.environ.get("STATUS_FAIL"):
        raise RuntimeError(f"the API refused key {api_key}")
    yield [{"id": i, "name": f"thing {i}"} for i in range(1, int(os.environ.get("STATUS_ROWS", "5")) + 1)]


def notes():
    yield [{"note": "a"}, {"note": "b"}]
'''

YAML = '''
resources:
    shop.things:
        entry: data.things
        primary_key: id
        incremental: {cursor_path: id, initial_value: 0}
        meta: {dagster: {freshness_lower_bound_delta_seconds: 3600}}
    shop.notes:
        entry: data.notes
'''

# the loader of a `foundation run` subprocess stops just before it records the load in `_dlt_loads` (every job done,
# the DuckDB connection open): says so in a file, then waits to be killed
HOLD_HOOK = '''
import os

if os.environ.get("STATUS_HOLD_LOAD"):
    from dlt.load.load import Load

    def _hold(self, load_id, schema, aborted=False):
        import time

        with self.get_destination_client(schema):
            with open(os.environ["STATUS_HOLD_LOAD"], "w") as flag:
                flag.write(load_id)
            time.sleep(600)

    Load.complete_package = _hold
'''


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The sources root, written and validated once (validation imports data.py in a child process: ~1 s)."""
    return write_source(tmp_path_factory.mktemp("status_root"), "shop", DATA, YAML)


@pytest.fixture(scope="module")
def project(root):
    return load_project(root)


@pytest.fixture
def shop(project, monkeypatch):
    monkeypatch.setenv("SOURCES__SHOP__API_KEY", SECRET)
    monkeypatch.setenv("FOUNDATION_FAILURE_RECORD_TIMEOUT", "30")  # recorded, however loaded the machine
    return project.sources["shop"]


@pytest.fixture
def target(duckdb_file):
    return create_target("duckdb", str(duckdb_file))


def _fail(shop, target, monkeypatch, **kwargs):
    monkeypatch.setenv("STATUS_FAIL", "1")
    with pytest.raises(RunFailed) as failure:
        run_source(shop, target, **kwargs)
    monkeypatch.delenv("STATUS_FAIL")
    return str(failure.value)


def _table(status, name):
    return next(t for t in status.tables if t.table == name)


def test_status_after_a_success_in_python_and_in_the_cli_table(shop, target, root, duckdb_file):
    before = time.time()
    run = run_source(shop, target)
    status = source_status(shop, target)

    (load_id,) = run.load_ids
    assert status.last_load.load_id == load_id
    assert before <= status.last_load.started_at.timestamp() < status.last_load.finished_at.timestamp() <= time.time()
    assert status.last_load.seconds > 0
    things, notes = _table(status, "things"), _table(status, "notes")
    assert (things.rows, notes.rows) == (5, 2)
    assert things.last_load == notes.last_load == things.last_rows == status.last_load
    assert (things.cursor.cursor_path, things.cursor.last_value) == ("id", 5) and notes.cursor is None
    assert (things.freshness.state, things.freshness.limit_seconds) == ("fresh", 3600)
    assert notes.freshness.describe() == "no policy"
    assert status.last_failure is None and status.pending == [] and not status.attention

    # the command (in-process: its output, not its start-up, is under test here): exit 0, nothing needs attention
    shown = _cli("--root", str(root), "status", "--destination", "duckdb", "--duckdb-file", str(duckdb_file))
    assert shown.exit_code == 0, shown.output
    rows = table_rows(shown.stdout)
    assert [row[:2] + row[3:4] + row[5:] for row in rows] == [["shop", "things", "5", "id = 5", "fresh"],
                                                              ["shop", "notes", "2", "", "no policy"]]
    assert rows[0][2].endswith("s ago)") and rows[0][4].endswith(" s")
    assert "OK: 2 table(s): 1 fresh, 0 late, 0 never loaded, 1 without a freshness policy; 0 source(s) failing; " \
           "0 pending load(s)." in flat(shown.stdout)


def test_failed_run_is_recorded_in_the_destination_and_json_shows_it_anywhere(shop, target, root, duckdb_file,
                                                                              tmp_path, monkeypatch):
    first = run_source(shop, target)
    message = _fail(shop, target, monkeypatch, tables=["things"])
    assert SECRET not in message and "the API refused key ***" in message  # the run's error, unchanged

    status = source_status(shop, target)
    failure = status.last_failure
    assert status.failing and status.attention
    assert (failure.step, failure.recorded, failure.tables) == ("extract", "destination", ("things",))
    assert "\n" not in failure.cause and "the API refused key ***" in failure.cause and SECRET not in failure.cause
    assert failure.finished_at > status.last_load.finished_at and failure.pid == os.getpid()
    assert status.last_load.load_id == first.load_ids[0]  # the failed run completed no load
    # the record went to a dataset of its own: the source's dataset holds only what dlt loaded
    assert query(duckdb_file, "SELECT COUNT(*) FROM shop._dlt_loads") == [(1,)]
    assert query(duckdb_file, "SELECT source, step FROM foundation_runs.failures") == [("shop", "extract")]
    assert SECRET not in repr(query(duckdb_file, "SELECT * FROM foundation_runs.failures"))

    # `--json` from another machine's working folder (an empty one): the same failure, exit 1; only `things`
    elsewhere = tmp_path / "elsewhere"
    result = foundation("--root", str(root), "status", "shop.things", "--json", "--destination", "duckdb",
                        "--duckdb-file", str(duckdb_file), cwd=tmp_path, FOUNDATION_PIPELINES_DIR=str(elsewhere))
    assert result.returncode == 1, result.stderr
    assert not elsewhere.exists()  # status wrote nothing
    document = json.loads(result.stdout)  # nothing else on stdout
    assert set(document) == {"generated_at", "target", "destination", "ok", "sources"}
    assert (document["ok"], document["target"], document["destination"]) == (False, "duckdb", "duckdb")
    assert document["generated_at"].endswith("Z")
    (source,) = document["sources"]
    assert set(source) == {"source", "dataset", "pipeline", "last_load", "failing", "last_failure", "pending",
                           "tables"}
    last_load = {"load_id": status.last_load.load_id, "started_at": _iso(status.last_load.started_at),
                 "finished_at": _iso(status.last_load.finished_at), "seconds": round(status.last_load.seconds, 3)}
    assert source["last_load"] == last_load and source["pending"] == [] and source["failing"] is True
    assert source["last_failure"] == {
        "finished_at": _iso(failure.finished_at), "started_at": _iso(failure.started_at), "step": "extract",
        "cause": failure.cause, "pipeline": "foundation_shop", "load_id": failure.load_id, "tables": ["things"],
        "host": failure.host, "pid": os.getpid(), "recorded": "destination", "current": True}
    (things,) = source["tables"]
    age = things["freshness"]["age_seconds"]
    assert isinstance(age, float) and age > 0
    assert things == {"table": "things", "last_load": last_load, "rows": 5, "last_rows_load": last_load,
                      "cursor": {"path": "id", "initial_value": 0, "last_value": 5},
                      "freshness": {"state": "fresh", "limit_seconds": 3600, "age_seconds": age, "late_seconds": None}}
    assert SECRET not in result.stdout + result.stderr

    run_source(shop, target)  # a success after it: the failure is history
    again = source_status(shop, target)
    assert again.last_failure == failure and not again.failing and not again.attention


def test_a_failure_the_destination_cannot_record_comes_from_the_local_trace(shop, target, monkeypatch):
    monkeypatch.setenv("FOUNDATION_FAILURE_RECORD_TIMEOUT", "0")  # recording switched off
    _fail(shop, target, monkeypatch)
    status = source_status(shop, target)
    assert status.failing and status.last_load is None
    assert (status.last_failure.step, status.last_failure.recorded) == ("extract", "local")
    assert "the API refused key ***" in status.last_failure.cause and SECRET not in status.last_failure.cause


def test_killed_while_loading_then_another_machine_then_completed(shop, target, duckdb_file, tmp_path, root,
                                                                  monkeypatch):
    run_source(shop, target)  # ids 1..5
    hook, flag = tmp_path / "hook", tmp_path / "held"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_HOOK)
    env = {**os.environ, "STATUS_ROWS": "8", "STATUS_HOLD_LOAD": str(flag),
           "PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-m", "data_foundation.cli", "--root", str(root), "run", "shop.things",
               "--destination", "duckdb", "--duckdb-file", str(duckdb_file)]
    with open(tmp_path / "run.err", "w") as err:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() or not flag.read_text():
            assert process.poll() is None, (tmp_path / "run.err").read_text()
            assert time.monotonic() < deadline, "the run never reached the end of its load"
            time.sleep(0.05)
        killed_load = flag.read_text()

        # while it holds the DuckDB file: a clear error naming the holder; a failure record gives up at once
        with pytest.raises(StatusError, match=rf"in use by another process \(PID {process.pid}\).*again when"):
            source_status(shop, target)
        started = time.monotonic()
        failure = Failure(finished_at=_now(), step="extract", cause="boom", pipeline="foundation_shop")
        assert record_failure(target, failure, "shop", "shop") is False
        assert time.monotonic() - started < 5
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    now = _now()
    status = source_status(shop, target, now=now)
    (pending,) = status.pending
    assert (pending.load_id, pending.stage, pending.local) == (killed_load, "partially loaded", True)
    assert pending.rows == pending.rows_in_destination == {"things": 3}  # 6..8
    assert _table(status, "things").cursor.last_value == 5  # the killed load's state was never committed
    assert status.last_failure is None and not status.failing

    # another machine (an empty pipelines folder) sees the same, and status creates nothing there
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(elsewhere))
    remote = source_status(shop, target, now=now)
    assert not elsewhere.exists()
    (seen,) = remote.pending
    assert (seen.load_id, seen.stage, seen.local, seen.rows_in_destination) == (killed_load, "partially loaded",
                                                                                False, {"things": 3})
    assert remote.last_load == status.last_load and remote.tables == status.tables

    # the next run here completes the killed load: nothing pending any more
    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.setenv("STATUS_ROWS", "8")
    run_source(shop, target, tables=["things"])
    done = source_status(shop, target)
    things = _table(done, "things")
    assert done.pending == [] and things.last_rows.load_id == killed_load and things.cursor.last_value == 8


def here_now(status):
    return status.last_load.finished_at + timedelta(minutes=5)


def test_freshness_fresh_late_and_never_loaded(shop, target, duckdb_file, project):
    never = read_status(project, target)
    assert not duckdb_file.exists()  # status creates no DuckDB file
    assert [t.freshness.state for s in never for t in s.tables] == ["never_loaded", "never_loaded"]
    assert never[0].attention and never[0].last_load is None

    run_source(shop, target, tables=["things"])
    loaded = source_status(shop, target).last_load.finished_at
    late = source_status(shop, target, now=loaded + timedelta(hours=4, minutes=12, seconds=20))
    things, notes = _table(late, "things"), _table(late, "notes")
    assert things.freshness.state == "late" and things.freshness.describe() == "late by 3 h 12 min"
    assert things.freshness.late_seconds == pytest.approx(3 * 3600 + 12 * 60 + 20, abs=1)
    assert notes.freshness.state == "never_loaded" and notes.rows is None  # its table was never created
    assert late.attention
    fresh = source_status(shop, target, tables=["things"], now=loaded + timedelta(minutes=59))
    assert [t.freshness.state for t in fresh.tables] == ["fresh"] and not fresh.attention


def test_humanized_durations():
    assert [humanize_seconds(s) for s in (0, 45, 185, 3600, 11_520, 93_600, 90_061)] == [
        "0 s", "45 s", "3 min 5 s", "1 h", "3 h 12 min", "1 d 2 h", "1 d 1 h"]


def test_dagster_failures_are_recorded_too(root, shop, target):
    from data_foundation.dagster import build_definitions

    os.environ["STATUS_FAIL"] = "1"
    try:
        defs = build_definitions(root, target)
        result = dg.materialize([*defs.assets], resources=defs.resources, selection=[dg.AssetKey(["shop", "things"])],
                                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    finally:
        del os.environ["STATUS_FAIL"]
    assert not result.success
    status = source_status(shop, target)
    assert status.failing and status.last_failure.step == "extract" and status.last_failure.recorded == "destination"
    assert "the API refused key ***" in status.last_failure.cause and SECRET not in status.last_failure.cause


def test_postgres(postgres, shop, tmp_path, monkeypatch):
    prefix = f"st{uuid.uuid4().hex[:8]}_"
    (tmp_path / "foundation.toml").write_text(
        f"[targets.warehouse]\ndestination = \"postgres\"\ndataset_prefix = \"{prefix}\"\n"
        f"credentials = {{ host = \"{postgres.host}\", port = {postgres.port}, username = \"{postgres.username}\", "
        f"database = \"{postgres.database}\" }}\n")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", postgres.password)
    target = resolve_target("warehouse", config_dir=tmp_path)
    assert source_status(shop, target).tables[0].freshness.state == "never_loaded"  # no dataset yet

    run_source(shop, target)
    _fail(shop, target, monkeypatch)
    status = source_status(shop, target)
    assert status.dataset == f"{prefix}shop" and status.last_load.seconds > 0
    assert [(t.table, t.rows) for t in status.tables] == [("things", 5), ("notes", 2)]
    assert _table(status, "things").cursor.last_value == 5
    assert status.failing and status.last_failure.recorded == "destination"
    assert SECRET not in status.last_failure.cause

    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(tmp_path / "ephemeral"))
    now = here_now(status)
    assert source_status(shop, target, now=now) == source_status(shop, target, now=now)
    elsewhere = source_status(shop, target, now=now)
    assert (elsewhere.last_load, elsewhere.last_failure) == (status.last_load, status.last_failure)


def _now():
    return datetime.now(timezone.utc)


def _iso(value):
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _cli(*args):
    from typer.testing import CliRunner

    from data_foundation.cli.app import app

    return CliRunner().invoke(app, list(args))
