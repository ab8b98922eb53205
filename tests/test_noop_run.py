"""A `foundation run` with nothing new stays cheap: the CLI starts without dlt, Dagster or dbt, a run never imports
Dagster or dbt, the destination's state is read once per run, and the row counts come from one plain query."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dlt.pipeline.state_sync  # noqa: F401 - imported for sys.modules below
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target
from data_foundation.load.running import count_rows, run_source

from conftest import EXAMPLES_ROOT, table_counts

HEAVY = ("dlt", "dagster", "dbt", "pandas", "duckdb", "pyarrow")


def _modules_after(code: str, cwd: Path) -> dict:
    """Run `code` in a fresh interpreter; which of HEAVY it had imported when it exited (also through sys.exit)."""
    out = cwd / "modules.json"
    prologue = ("import atexit, json, sys\n"
                f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(m for m in {HEAVY!r} "
                "if m in sys.modules))))\n")
    result = subprocess.run([sys.executable, "-c", prologue + code], cwd=cwd, env={**os.environ, "COLUMNS": "200"},
                            capture_output=True, text=True, timeout=120)
    return {"result": result, "modules": json.loads(out.read_text())}


def test_the_cli_starts_without_dlt_dagster_or_dbt(tmp_path):
    found = _modules_after("import data_foundation.cli", tmp_path)
    assert found["result"].returncode == 0, found["result"].stderr
    assert found["modules"] == []


def test_run_imports_neither_dagster_nor_dbt(tmp_path):
    code = ("sys.argv = ['foundation', '--root', %r, 'run', '--duckdb-file', 'w.duckdb']\n"
            "from data_foundation.cli import main\nmain()\n" % str(EXAMPLES_ROOT))
    found = _modules_after(code, tmp_path)
    assert found["result"].returncode == 0, found["result"].stderr
    assert "dlt" in found["modules"] and "duckdb" in found["modules"]  # it did load
    assert "dagster" not in found["modules"] and "dbt" not in found["modules"]
    assert table_counts(tmp_path / "w.duckdb", "my_api_tester") == {"users": 250, "transactions": 1000}


@pytest.fixture
def state_reads(monkeypatch):
    """Count dlt's reads of a pipeline's state from the destination (foundation's check and dlt's sync)."""
    # the modules: `dlt.pipeline.pipeline` is also dlt's function of that name
    dlt_pipeline, state_sync = sys.modules["dlt.pipeline.pipeline"], sys.modules["dlt.pipeline.state_sync"]
    original = state_sync.load_pipeline_state_from_destination
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(state_sync, "load_pipeline_state_from_destination", counted)
    monkeypatch.setattr(dlt_pipeline, "load_pipeline_state_from_destination", counted)
    return calls


def test_a_rerun_reads_the_destinations_state_once(tmp_path, state_reads):
    source = load_project(EXAMPLES_ROOT).sources["my_api"]
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    first = run_source(source, target)
    assert first.rows_total == {"users": 250, "transactions": 1000}
    state_reads.clear()

    again = run_source(source, target)
    assert state_reads == ["foundation_my_api"]  # foundation's check; dlt's sync was handed what it read
    assert again.rows_total == {"users": 500, "transactions": 1000}  # users append, transactions merge
    assert table_counts(tmp_path / "w.duckdb", "my_api") == again.rows_total


def test_the_state_is_read_again_after_completing_an_interrupted_load(tmp_path, state_reads, monkeypatch):
    """A pending package is loaded before the run: the state read before it is stale, so dlt reads its own."""
    source = load_project(EXAMPLES_ROOT).sources["my_api"]
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    run_source(source, target)
    from data_foundation.load.session import create_pipeline

    pipeline = create_pipeline(source, target)
    from data_foundation.load.building import build_source

    pipeline.extract(build_source(source, tables=["users"]))  # an interrupted run: extracted, never loaded
    state_reads.clear()

    again = run_source(source, target)
    assert state_reads == ["foundation_my_api", "foundation_my_api"]
    assert again.resumed == {"users": 250}
    assert again.rows_total == {"users": 750, "transactions": 1000}


def test_count_rows_agrees_with_dlts_row_counts(tmp_path):
    source = load_project(EXAMPLES_ROOT).sources["my_api"]
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    run_source(source, target)
    from data_foundation.load.session import create_pipeline

    pipeline = create_pipeline(source, target)
    tables = ["users", "transactions"]
    expected = {name: int(n) for name, n in pipeline.dataset().row_counts(table_names=tables).fetchall()}
    assert count_rows(pipeline, tables) == expected == {"users": 250, "transactions": 1000}
    assert count_rows(pipeline, ["transactions"]) == {"transactions": 1000}
    assert count_rows(pipeline, []) == {}
