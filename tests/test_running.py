"""`run_source` / `run_selection` into real DuckDB files: the my_api example and `tests/cases/valid/runtime`."""

import datetime as dt
import shutil
from pathlib import Path

import pytest

from data_foundation.load.destinations import create_target
from data_foundation.config.loading import load_project
from data_foundation.load.running import RunFailed, create_pipeline, run_selection, run_source

from conftest import EXAMPLES_ROOT, query, table_counts

RUNTIME_ROOT = Path(__file__).parent / "cases" / "valid" / "runtime"


def expected_transactions():
    """What examples/my_api/data.py yields for `fetch_transactions(2024-01-01, page_size=100)`, computed independently."""
    start = dt.date(2024, 1, 1)
    return [(i, i % 250, i * 1.25, (start + dt.timedelta(days=i % 365)).isoformat()) for i in range(1000)]


@pytest.fixture(scope="module")
def example():
    return load_project(EXAMPLES_ROOT)


@pytest.fixture(scope="module")
def runtime():
    return load_project(RUNTIME_ROOT)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    return path, create_target("duckdb", str(path))


def test_example_loads_users_and_transactions(example, warehouse):
    path, target = warehouse
    (run,) = run_selection(example, target)
    assert table_counts(path, "my_api") == {"users": 250, "transactions": 1000}
    assert (run.source, run.dataset) == ("my_api", "my_api")
    assert run.rows_loaded == {"users": 250, "transactions": 1000}
    assert run.rows_total == {"users": 250, "transactions": 1000}
    assert query(path, "SELECT id, name, email FROM my_api.users ORDER BY id") == [
        (i, f"user {i}", f"user{i}@example.com") for i in range(250)]
    # the YAML's date argument reached the factory: booked_on starts at 2024-01-01
    assert query(path, "SELECT id, user_id, amount, booked_on FROM my_api.transactions ORDER BY id") == \
        expected_transactions()

    schema = create_pipeline(example.sources["my_api"], target).default_schema
    users, transactions = schema.get_table("users"), schema.get_table("transactions")
    assert users["write_disposition"] == "append"
    assert transactions["write_disposition"] == "merge"
    assert users["columns"]["id"]["primary_key"] is True
    assert transactions["columns"]["id"]["primary_key"] is True
    assert not any(c.get("primary_key") for name, c in transactions["columns"].items() if name != "id")


def test_rerun_merges_transactions_and_appends_users(example, warehouse):
    path, target = warehouse
    source = example.sources["my_api"]
    first = run_source(source, target)
    second = run_source(source, target)
    assert second.rows_loaded == {"users": 250, "transactions": 1000}
    assert second.rows_total == {"users": 500, "transactions": 1000}
    assert table_counts(path, "my_api") == {"users": 500, "transactions": 1000}
    assert query(path, "SELECT COUNT(DISTINCT id) FROM my_api.transactions") == [(1000,)]
    assert query(path, "SELECT id, user_id, amount, booked_on FROM my_api.transactions ORDER BY id") == \
        expected_transactions()
    # merged rows carry the second load's id; appended users keep both
    assert query(path, "SELECT DISTINCT _dlt_load_id FROM my_api.transactions") == [(second.load_ids[0],)]
    assert query(path, "SELECT _dlt_load_id, COUNT(*) FROM my_api.users GROUP BY 1 ORDER BY 1") == [
        (first.load_ids[0], 250), (second.load_ids[0], 250)]


def test_select_a_single_table(example, warehouse):
    path, target = warehouse
    (run,) = run_selection(example, target, ["my_api.users"])
    assert run.rows_loaded == {"users": 250}
    assert table_counts(path, "my_api") == {"users": 250}


def test_full_refresh_reloads_only_the_selected_tables(example, warehouse):
    path, target = warehouse
    (first,) = run_selection(example, target)
    (refresh,) = run_selection(example, target, ["my_api.users"], full_refresh=True)
    # users is append: without the drop it would hold 500 rows
    assert refresh.rows_loaded == {"users": 250}
    assert table_counts(path, "my_api") == {"users": 250, "transactions": 1000}
    assert query(path, "SELECT DISTINCT _dlt_load_id FROM my_api.users") == [(refresh.load_ids[0],)]
    # transactions was neither dropped nor reloaded
    assert query(path, "SELECT DISTINCT _dlt_load_id FROM my_api.transactions") == [(first.load_ids[0],)]

    (again,) = run_selection(example, target, ["my_api.users"])  # no refresh: append as usual
    assert table_counts(path, "my_api") == {"users": 500, "transactions": 1000}


def test_incremental_filters_and_state_survives_losing_the_local_pipeline(runtime, warehouse, tmp_path, monkeypatch):
    path, target = warehouse
    source = runtime.sources["incr"]
    rows = "SELECT seq, seen_start FROM incr.events ORDER BY seq"

    run = run_source(source, target)  # events 1..10, initial_value 3
    assert run.rows_loaded == {"events": 8}
    assert query(path, rows) == [(i, 3) for i in range(3, 11)]

    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "15")
    run = run_source(source, target)  # the entry got start_value 10: only 11..15 are new
    assert run.rows_loaded == {"events": 5}
    assert query(path, rows) == [(i, 3) for i in range(3, 11)] + [(i, 10) for i in range(11, 16)]

    # without the local pipeline folder dlt restores the cursor from the state stored in DuckDB
    assert (tmp_path / "pipelines").is_dir()
    shutil.rmtree(tmp_path / "pipelines")
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "20")
    run = run_source(source, target)
    assert run.rows_loaded == {"events": 5}
    assert query(path, rows) == ([(i, 3) for i in range(3, 11)] + [(i, 10) for i in range(11, 16)]
                                 + [(i, 15) for i in range(16, 21)])
    assert table_counts(path, "incr") == {"events": 18}


def test_failing_generator_raises_run_failed(runtime, warehouse):
    path, target = warehouse
    with pytest.raises(RunFailed) as info:
        run_selection(runtime, target, ["failing"])
    message = str(info.value)
    assert "source `failing`" in message
    assert "upstream said no: HTTP 503" in message
    assert "extract" in message


def test_zero_row_run_succeeds(runtime, warehouse):
    path, target = warehouse
    (run,) = run_selection(runtime, target, ["empty"])
    assert (run.source, run.dataset) == ("empty", "empty")
    assert run.rows_loaded == {}
    assert run.rows_total == {}
    assert len(run.load_ids) == 1  # a completed load, with no data table
    assert table_counts(path, "empty") == {}
    assert query(path, "SELECT status FROM empty._dlt_loads") == [(0,)]


def test_dataset_prefix(example, tmp_path):
    path = tmp_path / "prefixed.duckdb"
    target = create_target("duckdb", str(path), dataset_prefix="raw_")
    (run,) = run_selection(example, target, ["my_api.users"])
    assert run.dataset == "raw_my_api"
    assert table_counts(path, "raw_my_api") == {"users": 250}
    assert table_counts(path, "my_api") == {}


def test_duckdb_file_named_like_the_dataset_is_refused_before_loading(tmp_path):
    project = load_project(EXAMPLES_ROOT)
    target = create_target("duckdb", str(tmp_path / "my_api.duckdb"))
    with pytest.raises(RunFailed, match="same name as dataset `my_api`"):
        run_source(project.sources["my_api"], target)
    assert not (tmp_path / "my_api.duckdb").exists()
