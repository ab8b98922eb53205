"""Schema drift from the API, against the local replica: a new field and a field whose type changes are loaded
(`schema_contract: evolve`, the default) and reported in `SourceRun.schema_changes` and the CLI's run summary;
`schema_contract: freeze` fails the run with a message naming the table, the column and the contract."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_jaffle, query, table_counts
from data_foundation.load.destinations import create_target
from data_foundation.config.loading import load_project
from data_foundation.load.running import RunFailed, run_source


def _columns(path: Path, table: str) -> dict:
    return dict(query(path, "SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'jaffle_shop' AND table_name = ?", [table]))


def test_new_field_and_changed_type_are_loaded_and_reported(jaffle, jaffle_env, duckdb_file):
    # stores and products: small, not incremental (every run re-reads every row), so quick
    target = create_target("duckdb", str(duckdb_file))
    tables = ["stores", "products"]
    first = run_source(jaffle, target, tables=tables)
    assert first.schema_changes == {}  # creating the tables is no drift

    # nothing changed: nothing reported
    assert run_source(jaffle, target, tables=tables).schema_changes == {}

    # a new field, and a new nested list (dlt loads it into a child table)
    jaffle_env.set_field("stores", "manager", "Ann")
    jaffle_env.set_field("products", "allergens", ["nuts", "gluten"])
    second = run_source(jaffle, target, tables=tables)
    assert second.schema_changes == {"stores": ["+ manager (text)"],
                                     "products__allergens": ["new child table of products (1 column)"]}
    assert query(duckdb_file, "SELECT manager, COUNT(*) FROM jaffle_shop.stores GROUP BY 1") == [("Ann", 6)]
    assert _columns(duckdb_file, "stores")["manager"] == "VARCHAR"
    assert query(duckdb_file, "SELECT COUNT(*) FROM jaffle_shop.products__allergens") == [(20,)]

    # fields whose values no longer fit the column's type: dlt loads them into variant columns
    jaffle_env.set_field("stores", "tax_rate", "n/a")
    jaffle_env.set_field("products", "price", "seven dollars")
    third = run_source(jaffle, target, tables=tables)
    assert third.schema_changes == {
        "stores": ["tax_rate: decimal -> text (variant column tax_rate__v_text)"],
        "products": ["price: bigint -> text (variant column price__v_text)"],
    }
    columns = _columns(duckdb_file, "stores")
    assert (columns["tax_rate"], columns["tax_rate__v_text"]) == ("DECIMAL(10,4)", "VARCHAR")
    assert query(duckdb_file, "SELECT COUNT(*) FROM jaffle_shop.stores WHERE tax_rate IS NULL "
                              "AND tax_rate__v_text = 'n/a'") == [(6,)]
    assert _columns(duckdb_file, "products")["price"] == "BIGINT"
    assert query(duckdb_file, "SELECT DISTINCT price__v_text FROM jaffle_shop.products") == [("seven dollars",)]
    assert table_counts(duckdb_file, "jaffle_shop") == {"stores": 6, "products": 10, "products__allergens": 20}


def test_cli_run_prints_schema_changes(jaffle, jaffle_env, jaffle_root, duckdb_file, tmp_path):
    run_source(jaffle, create_target("duckdb", str(duckdb_file)), tables=["stores"])
    jaffle_env.set_field("stores", "manager", "Ann")
    jaffle_env.set_field("stores", "opened_at", "sometime in 2016")

    result = subprocess.run(
        [sys.executable, "-m", "data_foundation.cli", "--root", str(jaffle_root), "run", "jaffle_shop.stores", "--destination", "duckdb",
         "--duckdb-file", str(duckdb_file)],
        cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "Schema changes" in lines
    assert "│ jaffle_shop │ stores │ + manager (text) │" in lines, result.stdout
    assert ("│ jaffle_shop │ stores │ opened_at: timestamp -> text (variant column opened_at__v_text) │"
            in lines), result.stdout
    assert lines.index("Schema changes") > lines.index("Loaded")


def _jaffle_copy(tmp_path: Path, contract: str) -> Path:
    """The Jaffle Shop source folder with `schema_contract` declared on `stores`."""
    root = copy_jaffle(tmp_path / "sources")
    yaml_file = root / "jaffle_shop" / "sources.yaml"
    text = yaml_file.read_text()
    anchor = "        description: Stores and their tax rates.\n"
    assert anchor in text
    yaml_file.write_text(text.replace(anchor, anchor + f"        schema_contract: {contract}\n"))
    return root


@pytest.mark.parametrize("field, value, column, entity", [
    ("manager", "Ann", "manager", "columns"),
    ("tax_rate", "n/a", "tax_rate__v_text", "data_type"),
])
def test_freeze_fails_the_run_and_loads_nothing(jaffle_env, duckdb_file, tmp_path, field, value, column, entity):
    source = load_project(_jaffle_copy(tmp_path, "freeze")).sources["jaffle_shop"]
    target = create_target("duckdb", str(duckdb_file))
    first = run_source(source, target, tables=["stores"])  # `freeze` still lets the first load create the table
    assert first.rows_total == {"stores": 6}
    loads = query(duckdb_file, "SELECT COUNT(*) FROM jaffle_shop._dlt_loads")

    jaffle_env.set_field("stores", field, value)
    with pytest.raises(RunFailed) as failure:
        run_source(source, target, tables=["stores"])

    message = str(failure.value)
    assert "`stores`" in message and f"`{column}`" in message and "freeze" in message and entity in message, message
    assert set(_columns(duckdb_file, "stores")) == {"id", "name", "opened_at", "tax_rate", "_dlt_load_id", "_dlt_id"}
    assert query(duckdb_file, "SELECT COUNT(*) FROM jaffle_shop._dlt_loads") == loads
    assert query(duckdb_file, "SELECT COUNT(*), COUNT(DISTINCT _dlt_load_id) FROM jaffle_shop.stores") == [(6, 1)]


def test_after_a_freeze_failure_the_next_run_starts_afresh(jaffle_env, duckdb_file, tmp_path):
    source = load_project(_jaffle_copy(tmp_path, "freeze")).sources["jaffle_shop"]
    target = create_target("duckdb", str(duckdb_file))
    run_source(source, target, tables=["stores"])
    jaffle_env.set_field("stores", "manager", "Ann")
    with pytest.raises(RunFailed):
        run_source(source, target, tables=["stores"])

    jaffle_env.clear_fields()  # the API is back to its old shape: the next run must load normally
    assert run_source(source, target, tables=["stores"]).rows_loaded == {"stores": 6}
