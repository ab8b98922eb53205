"""The five shipped source folders together, as the repository's `dlthub/` holds them: `foundation list` and the
Dagster graph show every table, with the automation, freshness and partitions each sources.yaml declares."""

import datetime as dt

import dagster as dg
import pytest

from conftest import SHIPPED_SOURCES, copy_source
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target
from test_cli import foundation, table_rows

TABLES = {
    "exchange_rate": ["usd", "cad"],
    "facebook_ads": ["campaigns", "ad_sets", "ads", "ad_insights"],
    "google_ads": ["campaigns", "campaign_metrics"],
    "jaffle_shop": ["customers", "orders", "items", "products", "stores", "supplies"],
    "open_data": ["crashes"],
}
# source -> (automation label, freshness in hours, first daily partition or None)
DAGSTER = {
    "exchange_rate": ("on cron @daily UTC", 126, None),
    "facebook_ads": ("on cron 0 7 * * * UTC, last 28 days", 30, "2025-01-01"),
    "google_ads": ("on cron 0 7 * * * UTC, last 30 days", 30, "2024-01-01"),
    "jaffle_shop": ("on cron 0 6 * * * UTC", 30, None),
    "open_data": ("missing or changed, on cron 0 5 * * * UTC", 30, None),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return copy_source(tmp_path_factory.mktemp("shipped") / "dlthub", *SHIPPED_SOURCES)


def test_list_shows_every_table_of_the_five_sources(root):
    result = foundation("--root", str(root), "list", cwd=root.parent)
    assert result.returncode == 0, result.stderr
    listed = {}
    for row in table_rows(result.stdout):
        listed.setdefault(row[0], []).append(row[1])
    assert listed == TABLES


def test_the_dagster_graph_has_every_table_with_its_lineage_automation_freshness_and_partitions(root, tmp_path):
    defs = build_definitions(root, create_target("duckdb", str(tmp_path / "w.duckdb")))
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    for source, tables in TABLES.items():
        label, hours, first_partition = DAGSTER[source]
        for table in tables:
            spec = specs[dg.AssetKey([source, table])]
            assert spec.description, (source, table)  # the YAML's or the entry's docstring
            assert spec.automation_condition.get_label() == label, (source, table)
            assert spec.freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=hours), (source, table)
            if table != "items":  # the Jaffle Shop's items are read from the orders
                assert {dep.asset_key for dep in spec.deps} == {dg.AssetKey([source, "src", table])}
                assert dg.AssetKey([source, "src", table]) in specs  # the API it is read from
        assets = defs.resolve_assets_def(dg.AssetKey([source, tables[0]]))
        if first_partition is None:
            assert assets.partitions_def is None, source
        else:
            assert isinstance(assets.partitions_def, dg.DailyPartitionsDefinition), source
            assert assets.partitions_def.get_first_partition_key() == first_partition
