"""Reconciliation: row counts compared with what the source reports, after the load.

A mismatch exits 1 with a table of what differs (`--no-reconcile` skips the comparison) and fails the Dagster check;
a reconciliation that cannot run (endpoint down, unexpected answer) never turns a completed load into a failure: the
summary is printed, then one line says why the comparison was skipped. The Jaffle Shop connector is run against the
real service's recorded answers, whose `/row-counts` is a list.
"""

import datetime as dt
import decimal
from pathlib import Path

import dagster as dg
import pytest

import recorded_api
from conftest import query, table_counts, write_source
from data_foundation.dagster import build_definitions
from data_foundation.dagster.checks import CHECK_RECONCILE
from data_foundation.load.destinations import create_target
from data_foundation.config.loading import load_project
from data_foundation.load.reconcile import reconcile
from data_foundation.load.running import run_source
from test_cli import flat, foundation, table_rows

DATA_PY = '''
import os


def things():
    """Three things."""
    yield [{"id": i} for i in range(3)]


def row_counts():
    """What the source says it has: $EXPECTED things, or an error."""
    if os.environ.get("COUNTS_DOWN"):
        raise ConnectionError("GET https://shop.example.com/api/counts: connection refused")
    if os.environ.get("COUNTS_SHAPE"):
        return [{"table_name": "things", "row_count": 3}]
    return {"things": int(os.environ.get("EXPECTED", "3")), "not_a_table_here": 7}
'''

SOURCES_YAML = '''
resources:
    shop.things:
        entry: data.things
        write_disposition: merge
        primary_key: id
sources:
    shop:
        reconcile: data.row_counts
        resources: [shop.things]
'''


@pytest.fixture
def shop_root(tmp_path: Path) -> Path:
    return write_source(tmp_path / "sources", "shop", DATA_PY, SOURCES_YAML)


def _run(tmp_path: Path, root: Path, *args: str, **env: str):
    return foundation("--root", str(root), "run", "shop", "--duckdb-file", "w.duckdb", *args, cwd=tmp_path, **env)


def test_reconciliation_compares_each_selected_table(shop_root, monkeypatch):
    shop = load_project(shop_root).sources["shop"]
    matching = reconcile(shop, {"things": 3})
    assert (matching.ok, matching.tables, matching.mismatches) == (True, {"things": (3, 3)}, {})
    monkeypatch.setenv("EXPECTED", "5")
    differing = reconcile(shop, {"things": 3})
    assert (differing.ok, differing.mismatches) == (False, {"things": (3, 5)})
    assert reconcile(shop, {"things": 3}, tables=[]).tables == {}  # only what the run selected
    monkeypatch.setenv("COUNTS_DOWN", "1")
    down = reconcile(shop, {"things": 3})
    assert not down.ok and down.tables == {}
    assert down.skipped == ("`data.row_counts` failed: ConnectionError: GET https://shop.example.com/api/counts: "
                            "connection refused")


def test_cli_mismatch_exits_1_with_the_table_of_differences(shop_root, tmp_path):
    result = _run(tmp_path, shop_root, EXPECTED="5")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ["shop", "things", "3", "5", "-2"] in table_rows(result.stdout)
    assert "Reconciliation mismatch" in result.stdout
    assert "Error: the loaded row counts of shop differ from what the source reports" in flat(result.stderr)
    assert "--no-reconcile" in flat(result.stderr) and "Traceback" not in result.stderr
    assert table_counts(tmp_path / "w.duckdb", "shop_tester") == {"things": 3}  # the load itself completed

    skipped = _run(tmp_path, shop_root, "--no-reconcile", EXPECTED="5")
    assert skipped.returncode == 0, skipped.stderr
    assert "Reconciliation" not in skipped.stdout + skipped.stderr



@pytest.mark.parametrize("env, reason", [
    ({"COUNTS_DOWN": "1"}, "`data.row_counts` failed: ConnectionError: GET https://shop.example.com/api/counts: "
                           "connection refused"),
    ({"COUNTS_SHAPE": "1"}, "`data.row_counts` failed: TypeError: returned list, not a mapping of table name to "
                            "row count"),
])
def test_cli_reconciliation_that_cannot_run_is_one_line_after_the_summary(shop_root, tmp_path, env, reason):
    result = _run(tmp_path, shop_root, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert table_rows(result.stdout) == [["shop_tester", "things", "3", "3"]]
    assert "Done: 3 rows loaded" in result.stdout
    lines = [line for line in result.stderr.splitlines() if "reconciliation" in line.lower()]
    assert [flat(line) for line in lines] == [f"Warning: reconciliation for shop skipped: {reason}"]
    assert "Traceback" not in result.stderr


def test_dagster_check_fails_on_a_mismatch_and_warns_when_skipped(shop_root, tmp_path, monkeypatch):
    defs = build_definitions(shop_root, create_target("duckdb", str(tmp_path / "w.duckdb")))

    def check() -> dg.AssetCheckEvaluation:
        result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources,
                                instance=dg.DagsterInstance.ephemeral())
        assert result.success
        return next(e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_RECONCILE)

    assert check().passed is True
    monkeypatch.setenv("EXPECTED", "4")
    mismatch = check()
    assert mismatch.passed is False and mismatch.severity == dg.AssetCheckSeverity.ERROR
    assert (mismatch.metadata["rows_in_destination"].value, mismatch.metadata["rows_in_source"].value) == (3, 4)
    monkeypatch.setenv("COUNTS_DOWN", "1")
    skipped = check()
    assert skipped.passed is False and skipped.severity == dg.AssetCheckSeverity.WARN
    assert "connection refused" in skipped.metadata["skipped"].value


# ---------------------------------------------------------------------------------------------------------------
# the Jaffle Shop connector against the real service's recorded answers
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def recorded(monkeypatch):
    for server in recorded_api.serve():
        monkeypatch.setenv("SOURCES__JAFFLE_SHOP__BASE_URL", server.base_url)
        monkeypatch.setenv("SOURCES__JAFFLE_SHOP__BACKOFF_FACTOR", "0.01")
        monkeypatch.setenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS", "2")
        yield server


def test_row_counts_reads_the_real_services_list(recorded, jaffle_root):
    """`row_counts` takes its settings as parameters, injected by dlt (as for the source's resources): it is
    called through `reconcile`, which reads SOURCES__JAFFLE_SHOP__BASE_URL for it."""
    jaffle = load_project(jaffle_root).sources["jaffle_shop"]
    full = {"customers": 935, "orders": 61_948, "items": 90_900, "products": 10, "stores": 6, "supplies": 65}
    result = reconcile(jaffle, full)
    assert result.ok and result.tables == {table: (count, count) for table, count in full.items()}
    recorded.overrides["/api/v1/row-counts"] = (200, {"customers": 935})  # the replica's old, wrong shape
    assert reconcile(jaffle, full).skipped == ("`data.row_counts` failed: ValueError: /row-counts answered "
                                               "{'customers': 935}, not a list of {table_name, row_count}")


def test_connector_loads_the_recorded_bodies_and_reconciles(recorded, jaffle_root, tmp_path):
    """Against the real service the run loaded every row and then died in reconciliation (`'list' object has no
    attribute 'items'`): the same run against its recorded answers completes, with the values typed."""
    result = foundation("--root", str(jaffle_root), "run", "jaffle_shop.products", "jaffle_shop.stores",
                        "jaffle_shop.supplies", "--duckdb-file", "w.duckdb", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reconciliation for jaffle_shop: all match (products 10, stores 6, supplies 65)" in flat(result.stdout)
    database = tmp_path / "w.duckdb"
    assert table_counts(database, "jaffle_shop_tester") == {"products": 10, "stores": 6, "supplies": 65}
    # money arrives as strings of cents ("1100"), rates as strings ("0.06"), timestamps without a zone
    assert query(database, "SELECT price FROM jaffle_shop_tester.products WHERE sku = 'JAF-001'") == [(1100,)]
    assert query(database, "SELECT tax_rate, opened_at FROM jaffle_shop_tester.stores WHERE name = 'Philadelphia'") \
        == [(decimal.Decimal("0.0600"), dt.datetime(2016, 9, 1, tzinfo=dt.timezone.utc))]
    assert query(database, "SELECT cost, perishable FROM jaffle_shop_tester.supplies WHERE id = 'SUP-001' "
                           "AND sku = 'JAF-001'") == [(7, False)]


def test_row_counts_endpoint_down_skips_reconciliation_of_a_completed_load(jaffle_env, jaffle_root, tmp_path):
    jaffle_env.inject_fault(status=503, count=100, path_prefix="/api/v1/row-counts")
    result = foundation("--root", str(jaffle_root), "run", "jaffle_shop.stores", "--duckdb-file", "w.duckdb",
                        cwd=tmp_path, SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS="2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert table_rows(result.stdout) == [["jaffle_shop_tester", "stores", "6", "6"]]
    text = flat(result.stderr)
    assert "Warning: reconciliation for jaffle_shop skipped: `data.row_counts` failed: HTTPError: 503" in text
    assert "/api/v1/row-counts" in text


def test_run_source_reconciles_with_the_replica(jaffle, jaffle_env, duckdb_file):
    run = run_source(jaffle, create_target("duckdb", str(duckdb_file)), tables=["stores", "products"])
    result = reconcile(jaffle, run.rows_total, run.tables)
    assert result.ok and result.tables == {"products": (10, 10), "stores": (6, 6)}
