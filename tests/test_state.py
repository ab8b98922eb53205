"""Incremental state never crosses datasets or destinations, and an unfinished load is completed only where it
belongs: into the dataset it was extracted for, while that dataset still holds the state it was built on.

`incr` (tests/cases/valid/runtime) has `RUNTIME_CASE_EVENTS` events and an incremental cursor on `seq` starting at
3. Real `kill -9`s of Jaffle Shop runs at every step are in test_faults.py.
"""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from conftest import query
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target, resolve_target
from data_foundation.config.loading import load_project
from data_foundation.load.running import run_source

RUNTIME_ROOT = Path(__file__).parent / "cases" / "valid" / "runtime"


@pytest.fixture(scope="module")
def incr():
    return load_project(RUNTIME_ROOT).sources["incr"]


def _seqs(path: Path, dataset: str):
    return [row[0] for row in query(path, f"SELECT seq FROM {dataset}.events ORDER BY seq")]


def test_two_datasets_in_one_duckdb_file_keep_their_own_cursor(incr, duckdb_file, monkeypatch):
    """The issue's repro: the default `dev` target (dataset `incr_tester`), then `--destination duckdb` (dataset
    `incr`) into the same file, then `dev` again: each dataset gets every event once."""
    dev = resolve_target("dev", str(duckdb_file))
    plain = create_target("duckdb", str(duckdb_file))
    assert run_source(incr, dev).rows_loaded == {"events": 8}  # 3..10
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "15")
    assert run_source(incr, plain).rows_loaded == {"events": 13}  # a new dataset: 3..15
    again = run_source(incr, dev)
    assert again.rows_loaded == {"events": 5}  # 11..15: the dev dataset's own cursor was at 10
    assert _seqs(duckdb_file, "incr_tester") == _seqs(duckdb_file, "incr") == list(range(3, 16))


def test_two_dataset_prefixes_keep_their_own_cursor(incr, duckdb_file, monkeypatch):
    first, second = (create_target("duckdb", str(duckdb_file), dataset_prefix=p) for p in ("a_", "b_"))
    run_source(incr, first)
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "12")
    run_source(incr, second)
    run_source(incr, first)
    assert _seqs(duckdb_file, "a_incr") == _seqs(duckdb_file, "b_incr") == list(range(3, 13))


def test_dagster_runs_keep_each_datasets_cursor(incr, duckdb_file, monkeypatch):
    def materialize(prefix: str) -> None:
        defs = build_definitions(RUNTIME_ROOT, create_target("duckdb", str(duckdb_file), dataset_prefix=prefix))
        result = dg.materialize([*defs.assets], resources=defs.resources,
                                selection=[dg.AssetKey(["incr", "events"])], instance=dg.DagsterInstance.ephemeral())
        assert result.success

    materialize("a_")
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "12")
    materialize("b_")
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "14")
    materialize("b_")  # b_'s cursor moves on: a shared local state would now be ahead of a_'s
    materialize("a_")
    assert _seqs(duckdb_file, "a_incr") == _seqs(duckdb_file, "b_incr") == list(range(3, 15))


def test_local_state_ahead_of_the_destination_is_restored_from_it(incr, duckdb_file, tmp_path, monkeypatch):
    """A DuckDB file restored from a backup holds an older cursor than the local working folder: the local state is
    dropped with a warning and the run loads from the destination's cursor, so nothing in between is skipped."""
    target = create_target("duckdb", str(duckdb_file))
    run_source(incr, target)  # 3..10
    backup = tmp_path / "backup.duckdb"
    shutil.copy(duckdb_file, backup)
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "12")
    run_source(incr, target)  # 11..12, cursor at 12
    shutil.copy(backup, duckdb_file)  # the warehouse is restored: cursor back at 10
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "14")
    run = run_source(incr, target)
    assert run.rows_loaded == {"events": 4}  # 11..14, not just 13..14
    assert _seqs(duckdb_file, "incr") == list(range(3, 15))
    assert any("ahead of dataset `incr`" in w for w in run.warnings), run.warnings


# ---------------------------------------------------------------------------------------------------------------
# an interrupted run, then another destination or dataset
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def interrupted(incr, duckdb_file, monkeypatch):
    """Events 3..10 loaded, then a run that stopped after normalizing 11..14: its package waits in the working
    folder, the local cursor already at 14 - on disk exactly what `kill -9` leaves once `load/normalized/` is
    non-empty (test_faults.py kills real runs at each step). Returns the target."""
    from data_foundation.load.building import build_source
    from data_foundation.load.session import create_pipeline, dlt_defaults

    target = create_target("duckdb", str(duckdb_file))
    run_source(incr, target)
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "14")
    pipeline = create_pipeline(incr, target)
    with dlt_defaults():
        pipeline.extract(build_source(incr))
        pipeline.normalize()
    assert pipeline.list_normalized_load_packages()
    return target


def test_pending_package_is_not_loaded_into_a_recreated_duckdb_file(incr, duckdb_file, interrupted):
    """The issue's repro: with the DuckDB file deleted, completing the pending increment would leave the new file
    with 11..14 only, forever (the cursor says 14). The package is discarded and everything is extracted again."""
    for path in (duckdb_file, duckdb_file.with_name(duckdb_file.name + ".wal")):
        path.unlink(missing_ok=True)
    run = run_source(incr, interrupted)
    assert run.rows_loaded == {"events": 12} and run.resumed == {}
    assert _seqs(duckdb_file, "incr") == list(range(3, 15))
    assert [w for w in run.warnings if "unfinished load" in w and "discarded" in w], run.warnings


def test_pending_package_waits_for_its_own_dataset(incr, duckdb_file, interrupted):
    """A run into another dataset prefix has its own working folder and loads everything itself; the pending package
    stays where it belongs and is completed by the next run of its own dataset, exactly once, its rows reported."""
    other = run_source(incr, create_target("duckdb", str(duckdb_file), dataset_prefix="other_"))
    assert (other.resumed, other.warnings, other.rows_loaded) == ({}, [], {"events": 12})
    assert _seqs(duckdb_file, "other_incr") == list(range(3, 15))

    again = run_source(incr, interrupted)
    assert again.resumed == {"events": 4} and again.rows_loaded == {"events": 4} and again.warnings == []
    assert _seqs(duckdb_file, "incr") == list(range(3, 15))
