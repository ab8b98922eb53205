"""Two resources, in any folders, never write one destination table: a validation error naming both files. dlt
writes dataset and table names in snake_case, so names that differ only in case or underscores are one table."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_source
from data_foundation.config.loading import validate_root

DATA = "def rows():\n    yield [{'id': 1}]\n"


def _resources(*names: str) -> str:
    return "resources:\n" + "".join(f"    {name}:\n        entry: data.rows\n" for name in names)


def _problems(root: Path):
    project, errors = validate_root(root)
    return errors, project.warnings


def test_two_folders_writing_one_dataset_and_table_fail_naming_both_files(tmp_path):
    """`Shop` and `shop` are two sources but one dataset, `shop`: both write `shop.orders`."""
    write_source(tmp_path, "one", DATA, _resources("shop.orders", "shop.customers"))
    write_source(tmp_path, "two", DATA, _resources("Shop.orders"))
    errors, _ = _problems(tmp_path)
    assert len(errors) == 1, errors
    error = errors[0]
    assert (error.file, error.line, error.key_path) == (tmp_path / "two" / "sources.yaml", 2, "resources.Shop.orders")
    assert "writes table `Shop.orders`, as does `shop.orders` (" in error.message
    assert "one/sources.yaml:2)" in error.message
    assert "rename one of them" in error.hint


def test_table_names_dlt_writes_alike_are_one_table(tmp_path):
    write_source(tmp_path, "shop", DATA, _resources("shop.orderItems", "shop.order_items", "shop.order__items"))
    errors, _ = _problems(tmp_path)
    assert [e.key_path for e in errors] == ["resources.shop.order_items"]  # `order__items` is a path of its own
    assert "as does `shop.orderItems`" in errors[0].message


def test_a_source_listing_two_folders_resources_of_one_table_name(tmp_path):
    write_source(tmp_path, "a", DATA, _resources("a.orders"))
    combined = "sources:\n    combined:\n        resources: [a.orders, b.orders]\n"
    write_source(tmp_path, "b", DATA, _resources("b.orders") + combined)
    errors, _ = _problems(tmp_path)
    assert len(errors) == 1 and "writes table `combined.orders`, as does `a.orders`" in errors[0].message
    assert errors[0].file == tmp_path / "b" / "sources.yaml"


def test_same_table_name_in_two_sources_is_two_tables(tmp_path):
    write_source(tmp_path, "a", DATA, _resources("a.orders"))
    write_source(tmp_path, "b", DATA, _resources("b.orders"))
    assert _problems(tmp_path) == ([], [])


def test_dlt_tables_are_not_a_resource_name(tmp_path):
    write_source(tmp_path, "shop", DATA, _resources("shop._dlt_loads", "shop._DLT_version"))
    errors, _ = _problems(tmp_path)
    assert [e.key_path for e in errors] == ["resources.shop._dlt_loads", "resources.shop._DLT_version"]
    assert "a name dlt keeps for its own tables" in errors[0].message


def test_a_table_named_like_a_nested_table_is_a_warning(tmp_path):
    write_source(tmp_path, "shop", DATA, _resources("shop.orders", "shop.orders__items"))
    errors, warnings = _problems(tmp_path)
    assert errors == []
    assert [(w.key_path, w.message.split(" (")[0]) for w in warnings] == [
        ("resources.shop.orders__items", "table `orders__items` is where dlt puts the nested `items` lists of "
                                         "`shop.orders`")]


@pytest.mark.parametrize("names", [("shop.orders", "shop.Orders"), ("shop.orders_", "shop.ordersx")])
def test_dlt_confirms_what_looks_alike(tmp_path, names):
    """`_` at the end becomes `x` in dlt's snake_case: `orders_` and `ordersx` are one table; so are two cases."""
    write_source(tmp_path, "shop", DATA, _resources(*names))
    errors, _ = _problems(tmp_path)
    assert len(errors) == 1 and errors[0].key_path == f"resources.{names[1]}"


def test_validate_exits_1_with_both_files_and_no_traceback(tmp_path):
    write_source(tmp_path, "one", DATA, _resources("shop.orders"))
    write_source(tmp_path, "two", DATA, _resources("Shop.orders"))
    result = subprocess.run([sys.executable, "-m", "data_foundation.cli", "validate", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    text = " ".join(result.stderr.split())
    assert "two/sources.yaml:2 resources.Shop.orders:" in text and "one/sources.yaml:2)" in text
    assert "Traceback" not in result.stderr + result.stdout


def test_the_dataset_of_recorded_failures_is_no_source(tmp_path):
    write_source(tmp_path, "runs", DATA, _resources("foundation_runs.failures", "foundationRuns.other"))
    errors, _ = _problems(tmp_path)
    assert [e.key_path for e in errors] == ["resources.foundation_runs.failures", "resources.foundationRuns.other"]
    assert "where foundation records failed runs" in errors[0].message


def test_a_clash_behind_a_name_that_only_looks_alike_is_found(tmp_path):
    """`ab` looks like `aB` and `a_b` but is its own table; `aB` and `a_b` are both table `a_b`."""
    write_source(tmp_path, "shop", DATA, _resources("shop.ab", "shop.aB", "shop.a_b"))
    errors, _ = _problems(tmp_path)
    assert [e.key_path for e in errors] == ["resources.shop.a_b"], errors
    assert "as does `shop.aB`" in errors[0].message


def test_a_table_named_like_another_resources_quarantine_is_an_error(tmp_path):
    yaml = _resources("shop.orders", "shop.orders__quarantine").replace(
        "        entry: data.rows\n", "        entry: data.rows\n        checks: {not_null: {columns: [id], "
        "on_failure: quarantine}}\n", 1)
    write_source(tmp_path, "shop", DATA, yaml)
    errors, warnings = _problems(tmp_path)
    assert [e.key_path for e in errors] == ["resources.shop.orders__quarantine"], errors
    assert "`shop.orders` sets rows aside in table `orders__quarantine`" in errors[0].message
    assert warnings == []
