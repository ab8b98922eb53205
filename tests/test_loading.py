"""Validation of valid roots: what `load_project` resolves from `examples/` and `tests/cases/valid/features/`.

No dlt runs here: only YAML, pydantic and the import of the entries' modules.
"""

import datetime as dt
import shutil
import sys
from pathlib import Path

import pytest

from data_foundation.config.loading import DEFAULT_ROOT, default_root, load_project, validate_root
from data_foundation.config.project import SelectorError

from conftest import EXAMPLES_ROOT

FEATURES_ROOT = Path(__file__).parent / "cases" / "valid" / "features"


@pytest.fixture(scope="module")
def example():
    return load_project(EXAMPLES_ROOT)


@pytest.fixture(scope="module")
def features():
    return load_project(FEATURES_ROOT)


# --- examples/my_api ---------------------------------------------------------------------------------------------


def test_example_validates_without_errors_or_warnings():
    project, errors = validate_root(EXAMPLES_ROOT)
    assert errors == []
    assert project.warnings == []
    assert list(project.sources) == ["my_api"]


def test_example_resource_and_table_names(example):
    source = example.sources["my_api"]
    assert [r.name for r in source.resources] == ["my_api.users", "my_api.transactions"]
    assert [r.table for r in source.resources] == ["users", "transactions"]
    assert {r.source for r in source.resources} == {"my_api"}
    assert source.dataset_name == "my_api"
    assert source.folder == "my_api"
    assert source.file == EXAMPLES_ROOT / "my_api" / "sources.yaml"


def test_example_specs_as_written(example):
    users = example.sources["my_api"].resource("users")
    transactions = example.sources["my_api"].resource("transactions")
    assert users.spec.kinds == ["api"]  # `kinds: {api}` is YAML for {"api": None}
    assert transactions.spec.kinds == []
    assert users.spec.primary_key == ["id"]
    assert transactions.spec.primary_key == "id"
    assert (users.spec.disposition, transactions.spec.disposition) == ("append", "merge")
    assert transactions.spec.keyword_arguments == {"page_size": 100}
    assert users.function.__name__ == "fetch_users"
    assert transactions.target.module_file == EXAMPLES_ROOT / "my_api" / "data.py"


def test_example_date_argument_arrives_as_given(example):
    arguments = example.sources["my_api"].resource("transactions").spec.arguments
    # YAML reads the unquoted 2024-01-01 as a date; it must reach the function as that date, not as text or a datetime.
    assert arguments == [dt.date(2024, 1, 1)]
    assert type(arguments[0]) is dt.date


def test_example_schedule_timezone_normalised_and_inherited(example):
    source = example.sources["my_api"]
    config = source.dagster.automation_condition_config
    assert (config.cron_schedule, config.cron_timezone) == ("@daily", "UTC")  # written `utc`
    assert source.dagster.automation_condition == "on_schedule"
    assert source.dagster.freshness_lower_bound_delta_seconds == 108000
    for resource in source.resources:
        assert resource.dagster == source.dagster.for_resource()


def test_example_descriptions_come_from_docstrings(example):
    source = example.sources["my_api"]
    assert source.resource("users").description == "Users of the example API, one page at a time."
    assert source.resource("transactions").description == (
        "Transactions from `since` on, paginated; returns the generator function (a factory).")


# --- tests/cases/valid/features ----------------------------------------------------------------------------------


def test_features_validate_with_one_warning():
    project, errors = validate_root(FEATURES_ROOT)
    assert errors == []
    assert sorted(project.sources) == ["orphans", "shop"]
    assert [w.key_path for w in project.warnings] == ["resources.shop.orders.write_disposition"]


def test_merge_without_primary_key_is_a_warning(features):
    (warning,) = features.warnings
    assert warning.severity == "warning"
    assert warning.file == FEATURES_ROOT / "shop" / "sources.yaml"
    assert warning.line == 8
    assert "`merge` without `primary_key`" in warning.message
    assert "primary_key" in warning.hint


def test_scalar_arguments_and_null_keyword_arguments(features):
    items = features.sources["shop"].resource("items")
    assert items.spec.arguments == ["widgets"]
    assert items.spec.keyword_arguments == {}
    assert items.spec.kinds == ["api"]
    assert list(items.function(*items.spec.arguments, **items.spec.keyword_arguments))[0][0] == {
        "id": 0, "kind": "widgets", "name": "item 0"}


def test_resources_without_a_source_form_one_named_by_their_prefix(features):
    orphans = features.sources["orphans"]
    assert [r.name for r in orphans.resources] == ["orphans.stock", "orphans.items"]
    assert {r.source for r in orphans.resources} == {"orphans"}
    assert orphans.spec.resources == []  # not declared in any `sources:` block
    assert orphans.file == FEATURES_ROOT / "loose" / "sources.yaml"
    assert orphans.dagster.automation_condition is None


def test_folder_qualified_entries_resolve_relative_to_the_root(features):
    items = features.sources["orphans"].resource("items")
    assert items.folder == "loose"  # declared in loose/ ...
    assert items.target.folder == "shop"  # ... but the function lives in shop/data.py
    assert items.target.module_file == FEATURES_ROOT / "shop" / "data.py"
    # the same module object as the one `data.fetch_items` in shop/ imports: one module per file
    assert items.function is features.sources["shop"].resource("items").function
    assert list(items.function(*items.spec.arguments, **items.spec.keyword_arguments)) == [
        [{"id": i, "kind": "gadgets", "name": f"item {i}"} for i in range(3)]]


def test_resource_meta_overrides_source_keys_and_inherits_the_rest(features):
    shop = features.sources["shop"]
    orders = shop.resource("orders").dagster
    assert orders.automation_condition_config.cron_schedule == "0 6 * * *"
    assert orders.automation_condition_config.cron_timezone == "Europe/Berlin"  # written europe/berlin
    assert not hasattr(orders, "retry")  # retry, partition and pool are the source's (one multi-asset)
    # inherited from the source
    assert orders.automation_condition == "on_schedule"
    assert orders.freshness_lower_bound_delta_seconds == 7200
    assert orders.group_name == "shop_group"
    # the source and its other resources keep the source's values
    assert shop.dagster.automation_condition_config.cron_schedule == "@daily"
    assert shop.dagster.automation_condition_config.cron_timezone == "UTC"
    assert shop.dagster.retry is None
    assert shop.resource("items").dagster == shop.dagster.for_resource()


def test_description_falls_back_to_first_docstring_paragraph(features):
    shop = features.sources["shop"]
    assert shop.resource("items").description == "Items of one kind, one page at a time."
    assert shop.resource("orders").description == "Orders from the YAML."  # YAML wins over the docstring
    assert shop.resource("stock").description is None  # no docstring


@pytest.mark.parametrize("root", [FEATURES_ROOT, EXAMPLES_ROOT], ids=["features", "examples"])
def test_validation_leaves_no_pycache(root, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in a normal interpreter
    copy = tmp_path / "root"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    project, errors = validate_root(copy)
    assert errors == [] and project.resources
    assert sorted(p.relative_to(copy) for p in copy.rglob("__pycache__")) == []
    assert sorted(p.relative_to(copy) for p in copy.rglob("*.pyc")) == []


def test_sources_root_env_var_is_the_default_root(tmp_path, monkeypatch):
    assert default_root() == Path(DEFAULT_ROOT) == Path("dlthub")
    shutil.copytree(EXAMPLES_ROOT, tmp_path / "elsewhere")
    monkeypatch.setenv("FOUNDATION_SOURCES_ROOT", str(tmp_path / "elsewhere"))
    assert default_root() == tmp_path / "elsewhere"
    project, errors = validate_root()
    assert errors == []
    assert project.root == tmp_path / "elsewhere"
    assert list(project.sources) == ["my_api"]


# --- Project.select -----------------------------------------------------------------------------------------------


def test_select_everything_by_default(features):
    assert [(s.name, tables) for s, tables in features.select()] == [
        ("shop", ["items", "orders", "stock"]), ("orphans", ["stock", "items"])]


def test_select_a_source(features):
    assert [(s.name, tables) for s, tables in features.select(["orphans"])] == [("orphans", ["stock", "items"])]


def test_select_tables_groups_them_by_source(features):
    selected = features.select(["shop.stock", "orphans.items", "shop.items", "shop.stock"])
    assert [(s.name, tables) for s, tables in selected] == [("shop", ["stock", "items"]), ("orphans", ["items"])]
    assert selected[0][0] is features.sources["shop"]


@pytest.mark.parametrize("selector, suggestion", [("shop.item", "shop.items"), ("shopp", "shop"),
                                                  ("orphan.stock", "orphans.stock")])
def test_unknown_selector_suggests_the_closest(features, selector, suggestion):
    with pytest.raises(SelectorError) as info:
        features.select(["shop", selector])
    message = str(info.value)
    assert f"`{selector}` matches no source or table" in message
    assert f"did you mean `{suggestion}`?" in message
    assert "Known: orphans, shop, orphans.items" in message


def test_unknown_selector_without_a_close_match(example):
    with pytest.raises(SelectorError) as info:
        example.select(["zzzz"])
    assert "did you mean" not in str(info.value)
    assert "Known: my_api, my_api.transactions, my_api.users." in str(info.value)


def test_resource_meta_overrides_source_meta_key_by_key(tmp_path):
    from data_foundation.config.loading import validate_root

    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text("def rows():\n    yield [{'id': 1}]\n")
    (folder / "sources.yaml").write_text(
        "resources:\n  shop.users:\n    entry: data.rows\n    meta:\n      dagster:\n"
        "        automation_condition: on_schedule\n        automation_condition_config: {cron_timezone: Europe/Berlin}\n"
        "  shop.orders:\n    entry: data.rows\n"
        "sources:\n  shop:\n    resources: [shop.users, shop.orders]\n    meta:\n      dagster:\n"
        "        automation_condition: eager\n        automation_condition_config: {cron_schedule: '@daily'}\n")
    project, errors = validate_root(tmp_path)
    assert errors == []
    users = project.sources["shop"].resource("users").dagster
    assert users.automation_condition == "on_schedule"
    assert (users.automation_condition_config.cron_schedule, users.automation_condition_config.cron_timezone) == (
        "@daily", "Europe/Berlin")
    assert project.sources["shop"].resource("orders").dagster.automation_condition == "eager"
