"""`data_foundation.SourcesComponent` in dg projects: `dg scaffold defs`, `dg check defs` and `dg list defs` in a real
project the test creates; in-process loads through Dagster's component sandbox; the same definitions as
`data_foundation.definitions`; `translation`; errors that point at the defs.yaml line or the sources.yaml line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from conftest import (REPO, copy_dbt_project, copy_late_jaffle, late_counts, make_dg_project, table_counts,
                      write_source)
from data_foundation.scaffold import scaffold_source
from data_foundation.dagster import build_definitions
from data_foundation.dagster.component import SourcesComponent
from data_foundation.dagster.translator import TranslationError
from data_foundation.dbt.settings import DbtSettings
from data_foundation.load.destinations import create_target, resolve_target

DG = str(Path(sys.executable).with_name("dg"))
COMPONENT = "data_foundation.SourcesComponent"
JAFFLE_TABLES = ("customers", "orders", "items", "products", "stores", "supplies")
PARTITIONED = REPO / "tests" / "cases" / "valid" / "partitioned" / "events"


def _dg(project: Path, *args: str) -> subprocess.CompletedProcess:
    home = project / ".dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([DG, *args], cwd=project, env=env, capture_output=True, text=True, timeout=180)


def test_dg_checks_and_lists_the_component(tmp_path):
    """A dg project whose component holds the Jaffle Shop next to the starter source: `dg check defs` passes and `dg
    list defs` lists every asset. (`dg scaffold defs` itself is run by test_docs.py's `component` lane.)"""
    project = make_dg_project(tmp_path / "platform-x")
    ingestion = project / "platform_x" / "defs" / "ingestion"
    scaffold_source(ingestion, "example_api")  # as `dg scaffold defs data_foundation.SourcesComponent ingestion`
    (ingestion / "defs.yaml").write_text(f"type: {COMPONENT}\n\nattributes:\n  root: .\n")
    copy_late_jaffle(ingestion)

    checked = _dg(project, "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout + checked.stderr

    listed = _dg(project, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"]: a for a in defs["assets"]}
    tables = {f"jaffle_shop/{t}" for t in JAFFLE_TABLES} | {"example_api/items"}
    endpoints = {f"jaffle_shop/src/{t}" for t in JAFFLE_TABLES if t != "items"} | {"example_api/src/items"}
    assert set(assets) == tables | endpoints
    assert assets["jaffle_shop/orders"]["dependency_keys"] == ["jaffle_shop/src/orders"]
    assert assets["jaffle_shop/orders"]["kinds"] == ["api", "dlt", "duckdb"]
    assert assets["jaffle_shop/orders"]["automation_condition"]["label"].startswith("on cron")
    assert {a["source"] for a in assets.values()} == {"platform_x/defs/ingestion/defs.yaml:1"}
    checks = {c["key"] for c in defs["asset_checks"]}
    assert {"jaffle_shop/orders:primary_key_unique_not_null", "jaffle_shop/orders:row_count_matches_source",
            "example_api/items:schema_unchanged"} <= checks
    assert {s["name"] for s in defs["sensors"]} == {"foundation_automation_ingestion",
                                                     "foundation_failure_alert_ingestion"}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Dagster's own sandbox for components (a dg project in a temporary folder), working in it."""
    with create_defs_folder_sandbox() as box:
        monkeypatch.chdir(box.project_root)
        (box.project_root / "foundation.toml").write_text(
            f'[targets.local]\ndestination = "duckdb"\nduckdb_file = "{tmp_path / "warehouse.duckdb"}"\n')
        yield box


def _component(box, attributes, name="ingestion") -> Path:
    path = box.defs_folder_path / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "defs.yaml").write_text(yaml.safe_dump({"type": COMPONENT, "attributes": attributes}, sort_keys=False))
    return path


def test_component_loads_the_sources_in_process(sandbox, late_api, tmp_path):
    """The scaffolded source and the Jaffle Shop, materialized with their checks through the component's defs."""
    ingestion = sandbox.scaffold_component(SourcesComponent, "ingestion", scaffold_params={"source": "shop_api"})
    assert sorted(p.name for p in ingestion.iterdir() if p.is_dir()) == ["shop_api"]
    copy_late_jaffle(ingestion)
    _component(sandbox, {"root": ".", "target": "local"})
    with sandbox.load_component_and_build_defs(defs_path=ingestion) as (component, defs):
        assert isinstance(component, SourcesComponent)
        result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources,
                                instance=dg.DagsterInstance.ephemeral())
    assert result.success
    warehouse = tmp_path / "warehouse.duckdb"
    assert table_counts(warehouse, "jaffle_shop") == late_counts(late_api)
    assert table_counts(warehouse, "shop_api") == {"items": 300}
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed
              for e in result.get_asset_check_evaluations()}
    assert checks[("jaffle_shop/orders", "row_count_matches_source")] is True
    assert checks[("shop_api/items", "primary_key_unique_not_null")] is True


def test_component_yields_what_the_definitions_module_does(sandbox, tmp_path):
    """Same assets, checks, automation, freshness, partitions, sensors and dbt models as `build_definitions`."""
    ingestion = _component(sandbox, {"target": "local"})
    copy_late_jaffle(ingestion)
    shutil.copytree(PARTITIONED, ingestion / "events")
    dbt = copy_dbt_project(sandbox.project_root / "dbt", ingestion)
    with (sandbox.project_root / "foundation.toml").open("a") as config:
        config.write('[dbt]\nproject_dir = "dbt"\n')
    expected = build_definitions(ingestion, resolve_target("local"), DbtSettings.at(dbt.project_dir), name="ingestion")
    with sandbox.load_component_and_build_defs(defs_path=ingestion) as (_, defs):
        assert _summary(defs) == _summary(expected)
    summary = _summary(expected)
    assert ("jaffle_shop/orders", "jaffle_shop", "on cron 0 6 * * * UTC", "108000.0", None) in summary["assets"]
    assert any(key.startswith("events/") and partitions for key, *_, partitions in summary["assets"])
    assert "stg_orders" in {key.split("/")[-1] for key, *_ in summary["assets"]}  # the dbt models are there too
    assert summary["sensors"] == ["foundation_automation_ingestion", "foundation_failure_alert_ingestion"]

    _component(sandbox, {"target": "local", "translation": {"key_prefix": "raw"}})
    with sandbox.load_component_and_build_defs(defs_path=ingestion) as (_, defs):
        translated = _summary(defs)
    # the dbt models keep dagster-dbt's keys; the sources they read are the prefixed raw tables
    assert ("staging/stg_orders", "raw/jaffle_shop/orders") in translated["deps"]
    assert ("staging/stg_orders", "jaffle_shop/orders") in summary["deps"]
    raw = {key for key, *_ in summary["assets"] if key.split("/")[0] in ("jaffle_shop", "events")}
    assert {key for key, *_ in translated["assets"]} == {key for key, *_ in summary["assets"] if key not in raw} | {
        f"raw/{key}" for key in raw}


def test_translation_moves_keys_lineage_checks_and_runs(sandbox, late_api, tmp_path):
    ingestion = _component(sandbox, {"target": "local", "translation": {
        "key_prefix": "raw", "group_name": "{{ resource.source }}_raw", "owners": ["team:ingest"],
        "tags": {"layer": "{{ 'api' if endpoint else 'raw' }}"}}})
    copy_late_jaffle(ingestion)
    with sandbox.load_component_and_build_defs(defs_path=ingestion) as (_, defs):
        specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
        orders, items, api = specs["raw/jaffle_shop/orders"], specs["raw/jaffle_shop/items"], specs[
            "raw/jaffle_shop/src/orders"]
        assert [d.asset_key.to_user_string() for d in orders.deps] == ["raw/jaffle_shop/src/orders"]
        assert [d.asset_key.to_user_string() for d in items.deps] == ["raw/jaffle_shop/orders"]  # data_from
        assert (orders.group_name, api.group_name) == ("jaffle_shop_raw", "jaffle_shop_raw")
        assert orders.owners == ["team:ingest"] and orders.kinds == {"api", "dlt", "duckdb"}
        assert (orders.tags["layer"], api.tags["layer"]) == ("raw", "api")
        assert orders.metadata["data_foundation/cursor"] == "ordered_at"  # merged, not replaced
        selection = [dg.AssetKey(["raw", "jaffle_shop", t]) for t in ("stores", "products")]
        result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources, selection=selection,
                                instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == set(selection)
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[("raw/jaffle_shop/stores", "row_count_matches_source")] is True
    assert table_counts(tmp_path / "warehouse.duckdb", "jaffle_shop") == {
        t: late_counts(late_api)[t] for t in ("stores", "products")}


def test_a_bad_starter_name_is_refused_before_anything_is_written(sandbox):
    with pytest.raises(Exception) as refused:
        sandbox.scaffold_component(SourcesComponent, "ingestion", scaffold_params={"source": "bad-name"})
    assert "`bad-name` is not a valid source name: use letters, digits and underscores" in _messages(refused.value)
    assert not (sandbox.defs_folder_path / "ingestion").exists()  # so the next try can create it
    sandbox.scaffold_component(SourcesComponent, "ingestion", scaffold_params={"source": "good_api"})
    assert (sandbox.defs_folder_path / "ingestion" / "good_api" / "sources.yaml").is_file()


def test_two_components_load_side_by_side(sandbox, late_api, tmp_path):
    """Two sources roots in one project (say, two teams' folders), the dbt project with one of them: no name twice."""
    shop = _component(sandbox, {"target": "local"}, name="shop")
    copy_late_jaffle(shop)
    events = _component(sandbox, {"target": "local", "dbt": False}, name="teams/events")
    shutil.copytree(PARTITIONED, events / "events")
    with sandbox.build_all_defs() as defs:
        assert sorted(s.name for s in defs.sensors) == [
            "foundation_automation_shop", "foundation_automation_teams__events",
            "foundation_failure_alert_shop", "foundation_failure_alert_teams__events"]
        assert sorted(c.node_def.name for c in defs.asset_checks) == [
            "foundation_checks_shop", "foundation_checks_teams__events"]
        keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
        assert {"jaffle_shop/orders", "events/daily"} <= keys
        selection = [dg.AssetKey(["jaffle_shop", "stores"])]
        result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources, selection=selection,
                                instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert table_counts(tmp_path / "warehouse.duckdb", "jaffle_shop") == {"stores": late_counts(late_api)["stores"]}


def test_component_folders_give_distinct_names(sandbox):
    """Folder names that are no identifiers, or that read alike once made one (`a/b`, `a_b`, `a-b`), stay apart."""
    folders = ["a/b", "a_b", "a-b", "a.b", "équipe"]
    for number, folder in enumerate(folders):
        write_source(_component(sandbox, {"target": "local", "dbt": False}, name=folder), f"src{number}",
                     "def rows():\n    yield [{'id': 1}]\n", f"resources:\n  src{number}.rows:\n    entry: data.rows\n")
    with sandbox.build_all_defs() as defs:
        names = sorted(s.name for s in defs.sensors if s.name.startswith("foundation_automation_"))
    assert len(set(names)) == len(folders) and "foundation_automation_a__b" in names
    assert "foundation_automation_a_b" in names  # an identifier keeps its name; the others carry a hash of their path


def test_a_translation_is_rendered_once_per_asset(jaffle_root, duckdb_file):
    """Templates render in ~3 ms each: once per table and API endpoint, however often checks, lineage and dbt ask."""
    calls = []

    def translation(spec: dg.AssetSpec, data) -> dg.AssetSpec:
        calls.append((data.resource.name, data.endpoint))
        return spec.replace_attributes(key=spec.key.with_prefix("raw"))

    defs = build_definitions(jaffle_root, create_target("duckdb", str(duckdb_file)), translation=translation)
    endpoints = [(f"jaffle_shop.{t}", True) for t in JAFFLE_TABLES if t != "items"]  # items is data_from orders
    assert sorted(calls) == sorted([(f"jaffle_shop.{t}", False) for t in JAFFLE_TABLES] + endpoints)
    assert len(list(defs.resolve_asset_graph().asset_check_keys)) > 0 and len(calls) == 11


def test_a_translation_that_gives_two_assets_one_key_is_refused(jaffle_root, duckdb_file):
    def same_key_for_endpoint(spec: dg.AssetSpec, data) -> dg.AssetSpec:
        return spec.replace_attributes(key=dg.AssetKey(["raw", data.resource.table]))

    with pytest.raises(TranslationError) as refused:
        build_definitions(jaffle_root, create_target("duckdb", str(duckdb_file)), translation=same_key_for_endpoint)
    assert str(refused.value).startswith("the translation gives jaffle_shop.customers and the API endpoint of "
                                         "jaffle_shop.customers one asset key, `raw/customers`")
    assert "endpoint" in str(refused.value)


def test_a_translation_cannot_partition(sandbox):
    ingestion = _component(sandbox, {"target": "local", "translation": {
        "partitions_def": {"type": "daily", "start_date": "2024-01-01"}}})
    shutil.copytree(PARTITIONED, ingestion / "events")
    message = _load_error(sandbox, ingestion)
    assert "the translation sets `partitions_def` on events/" in message
    assert "a source's partitions are `meta.dagster.partition` in its sources.yaml" in message


def test_defs_yaml_errors_point_at_their_line(sandbox):
    ingestion = _component(sandbox, {"root": ".", "target": "prdo"})
    copy_late_jaffle(ingestion)
    message = _load_error(sandbox, ingestion)
    assert f"{ingestion / 'defs.yaml'}:4 - attributes.target" in message
    assert "`prdo` is neither a target (dev, local, prod) nor a dlt destination" in message

    _component(sandbox, {"root": "sources", "roots": "."})
    message = _load_error(sandbox, ingestion)
    assert f"{ingestion / 'defs.yaml'}:4" in message
    assert "attributes.roots" in message
    assert "Extra inputs are not permitted" in message

    _component(sandbox, {"root": "sources"})
    message = _load_error(sandbox, ingestion)
    assert f"{ingestion / 'defs.yaml'}:3 - attributes.root" in message
    assert "root `sources` is not a folder" in message


def test_source_folder_errors_keep_their_file_and_line(sandbox):
    ingestion = _component(sandbox, {"root": "."})
    scaffold_source(ingestion, "shop_api")
    spec = ingestion / "shop_api" / "sources.yaml"
    spec.write_text(spec.read_text().replace("write_disposition: merge", "write_disposition: merge_all"))
    message = _load_error(sandbox, ingestion)
    assert "shop_api/sources.yaml:" in message
    assert "resources.shop_api.items.write_disposition: `merge_all` is not valid" in message
    assert "did you mean `merge`?" in message


def _load_error(sandbox, defs_path: Path) -> str:
    """What loading the component at `defs_path` fails with, causes included."""
    with pytest.raises(Exception) as raised:
        with sandbox.load_component_and_build_defs(defs_path=defs_path):
            pass
    return _messages(raised.value)


def _messages(error: BaseException) -> str:
    """The error and its causes, as Dagster shows them."""
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def _summary(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition.get_label() if node.automation_condition else None
        freshness = node.freshness_policy.fail_window.to_timedelta().total_seconds() if node.freshness_policy else None
        partitions = type(node.partitions_def).__name__ if node.partitions_def else None
        assets.append((key.to_user_string(), node.group_name, condition, str(freshness) if freshness else None,
                       partitions))
    return {"assets": assets, "checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
            "deps": sorted((k.to_user_string(), p.to_user_string())
                           for k in graph.get_all_asset_keys() for p in graph.get(k).parent_keys),
            "sensors": sorted(s.name for s in defs.sensors or []), "resources": sorted(defs.resources or {})}
