"""The dbt project in Dagster: one graph API -> raw -> staging -> marts, dbt tests as asset checks, the marts built
from the replica's data, the manifest prepared ahead of time and parsed again only after a change."""

import datetime as dt
import logging
import os
import shutil
import time

import dagster as dg
import pytest

from conftest import FULL_JAFFLE, copy_dbt_project, query
from data_foundation.config.loading import load_project
from data_foundation.dagster import build_definitions
from data_foundation.dbt.environment import dbt_environment
from data_foundation.dbt.invoke import prepare_manifest
from data_foundation.dbt.settings import DbtSettings
from data_foundation.load.destinations import create_target, resolve_target


@pytest.fixture(scope="module")
def dbt_target(tmp_path_factory):
    """The target the manifest is prepared for; tests that make the definitions parse again use it too, so dbt parses
    partially (a full parse, ~9 s, whenever the profile differs: another DuckDB file or user)."""
    return create_target("duckdb", str(tmp_path_factory.mktemp("parse") / "parse.duckdb"))


@pytest.fixture(scope="module")
def dbt_project(jaffle_root, dbt_target, tmp_path_factory):
    """A copy of the repository's dbt project over the Jaffle Shop root, its manifest prepared as make prepares it."""
    settings = copy_dbt_project(tmp_path_factory.mktemp("dbt") / "project", jaffle_root)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FOUNDATION_USER", "tester")  # as every test sees it (conftest's autouse fixture)
        prepare_manifest(settings, dbt_environment(load_project(jaffle_root), dbt_target, settings), force=True)
    return settings


def _parents(graph, key: str) -> set:
    return {k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}


def test_lineage_reads_api_raw_staging_marts(jaffle_root, dbt_project, tmp_path):
    defs = build_definitions(jaffle_root, create_target("duckdb", str(tmp_path / "w.duckdb")), dbt_project)
    graph = defs.resolve_asset_graph()
    assert _parents(graph, "jaffle_shop/orders") == {"jaffle_shop/src/orders"}
    assert _parents(graph, "staging/stg_orders") == {"jaffle_shop/orders"}
    assert _parents(graph, "marts/orders") == {"staging/stg_orders", "marts/order_items"}
    assert _parents(graph, "jaffle_shop/items") == {"jaffle_shop/orders"}
    assert _parents(graph, "staging/stg_order_items") == {"jaffle_shop/items"}
    assert {"staging/stg_order_items", "staging/stg_products", "staging/stg_supplies"} <= \
        _parents(graph, "marts/order_items")
    assert _parents(graph, "staging/stg_supplies") == {"jaffle_shop/supplies"}
    # every staging model reads raw tables only: dbt's sources are the raw assets, not assets of their own
    staging = [k for k in graph.get_all_asset_keys() if k.path[0] == "staging"]
    assert len(staging) == 6 and all(p.path[0] == "jaffle_shop" for k in staging for p in graph.get(k).parent_keys)

    mart = graph.get(dg.AssetKey(["marts", "orders"]))
    assert mart.group_name == "marts" and "dbt" in mart.kinds
    assert mart.automation_condition.get_label() == "eager"  # refreshes after its raw tables, no schedule of its own
    assert mart.freshness_policy.fail_window.to_timedelta() == dt.timedelta(seconds=108_000)
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("marts/orders", "unique_orders_order_id") in checks
    assert ("marts/customers", "accepted_values_customers_customer_type__new__returning") in checks
    assert ("jaffle_shop/orders", "source_unique_jaffle_shop_orders_id") in checks  # the sources.yml key tests
    assert ("jaffle_shop/orders", "primary_key_unique_not_null") in checks  # next to foundation's own


def test_definitions_read_the_prepared_manifest_and_reparse_only_after_a_change(jaffle_root, dbt_project, dbt_target,
                                                                                 tmp_path):
    # a copy with the prepared target/ (times kept): the shared project stays as the other tests expect it
    project = DbtSettings.at(shutil.copytree(dbt_project.project_dir, tmp_path / "project"))
    manifest = project.manifest_path
    before = manifest.stat().st_mtime_ns
    target = dbt_target
    build_definitions(jaffle_root, target, project)
    assert manifest.stat().st_mtime_ns == before  # no `dbt parse` on load

    model = project.project_dir / "models" / "marts" / "top_customers.sql"
    model.write_text("select * from {{ ref('customers') }} order by lifetime_spend desc limit 10\n")
    graph = build_definitions(jaffle_root, target, project).resolve_asset_graph()
    assert manifest.stat().st_mtime_ns > before
    assert _parents(graph, "marts/top_customers") == {"marts/customers"}

    # a rename keeps the file's time: the folder's tells (it once went unseen, and a run of the old key built nothing)
    renamed = model.with_name("best_customers.sql")
    time.sleep(0.01)
    os.rename(model, renamed)
    keys = {k.to_user_string() for k in build_definitions(jaffle_root, target, project).resolve_asset_graph()
            .get_all_asset_keys()}
    assert "marts/best_customers" in keys and "marts/top_customers" not in keys


def test_a_project_that_stops_parsing_does_not_stop_the_loads(jaffle_root, dbt_project, dbt_target, tmp_path, caplog,
                                                              monkeypatch):
    """A broken model (or a missing adapter) fails dbt parse: the raw tables keep their assets and schedules, the
    models stay as the last manifest has them (their runs fail with dbt's error), and doctor names the error."""
    from data_foundation.cli.doctor.dbt import dbt_check

    project = DbtSettings.at(shutil.copytree(dbt_project.project_dir, tmp_path / "project"))
    (project.project_dir / "models" / "marts" / "broken.sql").write_text("select * from {{ ref('stg_orders' }}\n")
    target = dbt_target
    with caplog.at_level(logging.ERROR, logger="data_foundation.dbt"):
        keys = {k.to_user_string() for k in build_definitions(jaffle_root, target, project).resolve_asset_graph()
                .get_all_asset_keys()}
    assert {"jaffle_shop/orders", "marts/orders"} <= keys and "marts/broken" not in keys
    assert "the dbt project does not parse; its models are those of the last manifest" in caplog.text
    monkeypatch.chdir(tmp_path)  # no foundation.toml here: the project comes from the environment
    monkeypatch.setenv("FOUNDATION_DBT_PROJECT_DIR", str(project.project_dir))
    check = dbt_check(target, load_project(jaffle_root))
    assert check.failed and check.detail.startswith(
        f"dbt parse failed in {project.project_dir}: Encountered an error: Compilation Error in model broken "
        "(models/marts/broken.sql)")

    project.manifest_path.unlink()  # never parsed: no dbt assets at all, the loads still there
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="data_foundation.dbt"):
        keys = {k.to_user_string() for k in build_definitions(jaffle_root, target, project).resolve_asset_graph()
                .get_all_asset_keys()}
    assert "jaffle_shop/orders" in keys and not [k for k in keys if k.startswith(("staging/", "marts/"))]
    assert "the dbt project is left out of the definitions: dbt parse failed" in caplog.text

    caplog.clear()  # a target profiles.yml has no output for: dbt cannot run, the loads still can
    with caplog.at_level(logging.ERROR, logger="data_foundation.dbt"):
        defs = build_definitions(jaffle_root, create_target("filesystem"), project)
    assert dg.AssetKey(["jaffle_shop", "orders"]) in defs.resolve_asset_graph().get_all_asset_keys()
    assert "profiles.yml has no output `filesystem`" in caplog.text


def test_materializing_everything_builds_marts_that_match_the_raw_data(late_api, late_jaffle_root, dbt_project,
                                                                         tmp_path):
    """A month of orders (the late source on a replica serving only those, conftest's `late_api`: the reconciliation
    checks compare with what the API has); its sources.yml is the project's (a cursor's start is not in it)."""
    warehouse = tmp_path / "warehouse.duckdb"
    target = resolve_target("dev", str(warehouse), config_dir=tmp_path)  # dev: the developer's own schemas
    defs = build_definitions(late_jaffle_root, target, dbt_project)
    result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and not [e.check_name for e in evaluations if not e.passed]
    assert {e.asset_key.path[0] for e in evaluations} == {"jaffle_shop", "staging", "marts"}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"jaffle_shop/orders", "staging/stg_orders", "marts/orders", "marts/customers"} <= materialized

    def count(table: str) -> int:
        return query(warehouse, f"SELECT COUNT(*) FROM {table}")[0][0]

    late = late_api.row_counts()
    assert count("jaffle_shop_tester.orders") == count("dbt_tester_marts.orders") == late["orders"]
    assert count("jaffle_shop_tester.items") == count("dbt_tester_marts.order_items") == late["items"]
    assert count("dbt_tester_marts.customers") == late["customers"] == FULL_JAFFLE["customers"]
    spend = query(warehouse, "SELECT SUM(lifetime_spend) FROM dbt_tester_marts.customers")[0][0]
    assert float(spend) == query(warehouse, "SELECT SUM(order_total) FROM jaffle_shop_tester.orders")[0][0] / 100


def test_models_refresh_after_their_raw_tables_load_without_a_schedule(jaffle_root, dbt_project, tmp_path):
    defs = build_definitions(jaffle_root, create_target("duckdb", str(tmp_path / "w.duckdb")), dbt_project)
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime(2024, 5, 1, 7, 0, tzinfo=dt.timezone.utc)

    cursor, minutes = None, 0

    def requested() -> set:
        """One evaluation of the automation sensor, a minute after the last: the keys it requests."""
        nonlocal cursor, minutes
        minutes += 1
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor,
                                                   evaluation_time=now + dt.timedelta(minutes=minutes))
        cursor = result.cursor
        return {r.key.to_user_string() for r in result.results if r.true_subset.size}

    assert requested() == set()  # nothing loaded yet: the models wait for their raw tables
    for table in FULL_JAFFLE:  # a load of the whole source, as its cron tick runs it
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["jaffle_shop", table])))
    models = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()
              if k.path[0] in ("staging", "marts")}
    assert len(models) == 11 and requested() == models  # every model in the same tick, and no raw table
    assert requested() == set()  # once per load, not on every evaluation
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["jaffle_shop", "stores"])))
    assert requested() == {"staging/stg_locations", "marts/locations"}  # only what reads the table that loaded
