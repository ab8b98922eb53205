"""`foundation plan`: per table what a run would do, read from the spec and the destination, without calling any entry
(the entries here record every call) and without creating a DuckDB file or a dataset. Real DuckDB files and the
suite's PostgreSQL server."""

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import write_source
from data_foundation.config.dagster_meta import AssetDagsterMeta, AutomationConditionConfig
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target, resolve_target
from data_foundation.load.planning import automation, plan_selection, plan_source
from data_foundation.load.running import run_source
from test_cli import foundation, table_rows
from test_state_commands import _in_process

SHOP_PY = '''\
import os


def _called(name):
    path = os.environ.get("PLAN_CALLS")
    if path:
        with open(path, "a") as calls:
            calls.write(name + "\\n")


def events(incremental=None):
    _called("events")
    yield [{"seq": i} for i in range(1, int(os.environ.get("SHOP_EVENTS", "10")) + 1)]


def orders():
    _called("orders")
    yield [{"id": 1, "lines": [{"sku": "a"}, {"sku": "b"}]}, {"id": 2, "lines": [{"sku": "c"}]}]


def notes():
    _called("notes")
    yield [{"text": "x"}]
'''

SHOP_YAML = '''\
resources:
  shop.events:
    entry: data.events
    write_disposition: append
    primary_key: seq
    incremental:
      cursor_path: seq
      initial_value: 3
      lag: 2
    meta:
      dagster:
        automation_condition: on_schedule
        automation_condition_config:
          cron_schedule: "0 6 * * *"
          cron_timezone: Europe/Berlin
  shop.orders:
    entry: data.orders
    write_disposition:
      disposition: merge
      strategy: upsert
    primary_key: id
    meta:
      dagster:
        automation_condition: eager
  shop.notes:
    entry: data.notes
    write_disposition: merge
'''

NOW = dt.datetime(2024, 3, 30, 12, 0, tzinfo=dt.timezone.utc)  # the next 06:00 in Berlin is after the DST switch


@pytest.fixture
def shop_root(tmp_path: Path) -> Path:
    return write_source(tmp_path / "root", "shop", SHOP_PY, SHOP_YAML)


def _calls(path: Path):
    return path.read_text().split() if path.exists() else []


def test_plan_of_a_source_never_loaded_calls_no_entry_and_creates_no_file(shop_root, tmp_path):
    calls = tmp_path / "calls.txt"
    duckdb_file = tmp_path / "never.duckdb"
    result = foundation("plan", "--json", "--root", str(shop_root), "--duckdb-file", str(duckdb_file), cwd=tmp_path,
                        PLAN_CALLS=str(calls))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["target"] == "dev" and document["full_refresh"] is False
    events, orders, notes = document["tables"]
    assert (events["cursor_path"], events["start_value"], events["start_from"]) == ("seq", 3, "initial_value")
    assert events["dataset"] == "shop_tester" and not events["exists"] and events["full_refresh_drops"] == []
    assert (orders["write_disposition"], orders["merge_strategy"], orders["primary_key"]) == ("merge", "upsert",
                                                                                              ["id"])
    assert notes["warnings"][0]["key"] == "resources.shop.notes.write_disposition"  # merge without keys
    assert events["warnings"] == [] and not duckdb_file.exists() and _calls(calls) == []
    assert not (tmp_path / "pipelines").exists()  # no working folder either


def test_plan_after_a_load_shows_the_start_value_with_lag_the_tables_and_automation(shop_root, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("PLAN_CALLS", str(tmp_path / "calls.txt"))
    project = load_project(shop_root)
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    run_source(project.sources["shop"], target)
    assert _calls(tmp_path / "calls.txt") == ["events", "orders", "notes"]

    events, orders, notes = plan_selection(project, target, now=NOW)
    # dlt's lag on the destination's last value: 10 - 2 (the rows from 8 on are read again)
    assert (events.start_value, events.start_from, events.exists) == (8, "last_value - lag", True)
    assert events.full_refresh_drops == ["events"]
    assert (events.automation, events.next_run) == ("on cron 0 6 * * * Europe/Berlin", "2024-03-31 06:00 Europe/Berlin")
    assert orders.full_refresh_drops == ["orders", "orders__lines"]  # child tables, from dlt's stored schema
    assert (orders.automation, orders.next_run) == ("eager", "when missing or an upstream asset updates")
    assert (notes.automation, notes.next_run, notes.cursor_path) == ("manual only", None, None)
    assert [w.message for w in notes.warnings] == ["`merge` without `primary_key` or `merge_key`: dlt will append "
                                                   "every row"]
    refresh = plan_source(project.sources["shop"], ["events"], target, full_refresh=True)
    assert (refresh[0].start_value, refresh[0].start_from) == (3, "initial_value")

    monkeypatch.setenv("SHOP_EVENTS", "12")
    assert run_source(project.sources["shop"], target, ["events"]).rows_loaded == {"events": 5}  # 8..12, as planned

    result = _in_process("plan", "shop.events", "shop.notes", "--root", str(shop_root), "--destination", "duckdb",
                         "--duckdb-file", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 0, result.output
    assert [row[:8] for row in table_rows(result.stdout) if row[0]] == [  # (a long cell wraps onto a second line)
        ["shop.events", "append", "seq", "seq", "10 (last_value - lag)", "yes", "drops events", "on cron 0 6 * * *"],
        ["shop.notes", "merge", "", "", "", "yes", "drops notes", "manual only"]]
    assert "dataset `shop`" in " ".join(result.stdout.split())
    printed = " ".join(result.stdout.split())
    assert "Warning:" in printed and "merge` without `primary_key`" in printed
    assert _calls(tmp_path / "calls.txt") == ["events", "orders", "notes", "events"]  # only the run's


def test_automation_labels_are_the_dagster_layers():
    from data_foundation.dagster.automation import build_automation_condition

    cron = AutomationConditionConfig(cron_schedule="@daily", cron_timezone="UTC")
    for meta in (AssetDagsterMeta(automation_condition="on_schedule", automation_condition_config=cron),
                 AssetDagsterMeta(automation_condition="on_cron", automation_condition_config=cron),
                 AssetDagsterMeta(automation_condition="eager"), AssetDagsterMeta(automation_condition="on_missing"),
                 AssetDagsterMeta(automation_condition="missing_or_changed"),
                 AssetDagsterMeta(automation_condition="missing_or_changed", automation_condition_config=cron)):
        assert automation(meta, NOW)[0] == build_automation_condition(meta).get_label()
    assert automation(AssetDagsterMeta(automation_condition="manual"))[0] == "manual only"
    assert automation(AssetDagsterMeta(automation_condition="on_cron", automation_condition_config=cron), NOW)[1] \
        == "2024-03-31 00:00 UTC"


def test_plan_on_postgres(postgres, shop_root, tmp_path, monkeypatch):
    (tmp_path / "foundation.toml").write_text(
        "[targets.warehouse]\ndestination = \"postgres\"\ndataset_prefix = \"plan_\"\n"
        f"credentials = {{ host = \"{postgres.host}\", port = {postgres.port}, username = \"{postgres.username}\", "
        f"database = \"{postgres.database}\" }}\n")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", postgres.password)
    monkeypatch.setenv("PLAN_CALLS", str(tmp_path / "calls.txt"))
    project = load_project(shop_root)
    target = resolve_target("warehouse", config_dir=tmp_path)

    before = plan_selection(project, target, ["shop.events"])
    assert [(p.dataset, p.exists, p.start_value) for p in before] == [("plan_shop", False, 3)]
    with postgres.connect() as con, con.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'plan_shop'")
        assert cur.fetchone() == (0,)  # planning created no dataset
    run_source(project.sources["shop"], target)

    monkeypatch.chdir(tmp_path)  # foundation.toml
    result = _in_process("plan", "shop", "--json", "--target", "warehouse", "--root", str(shop_root))
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.stdout)["tables"]}
    assert tables["events"]["destination"] == "postgres" and tables["events"]["start_value"] == 8
    assert tables["orders"]["exists"] and tables["orders"]["full_refresh_drops"] == ["orders", "orders__lines"]
    assert _calls(tmp_path / "calls.txt") == ["events", "orders", "notes"]  # the run's calls only


def test_plan_and_state_say_the_destination_is_unreachable_without_a_traceback(shop_root, tmp_path, monkeypatch):
    from data_foundation.errors import FoundationError
    from data_foundation.load.state_edit import plan_reset, show_state

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", "postgresql://u:hunter2pw@127.0.0.1:1/warehouse")
    project = load_project(shop_root)
    target = create_target("postgres")
    for attempt in (lambda: plan_selection(project, target), lambda: show_state(project.sources["shop"], target),
                    lambda: plan_reset(project.sources["shop"], target, "events")):
        with pytest.raises(FoundationError) as raised:  # an intended failure: no "this looks like a bug"
            attempt()
        message = str(raised.value)
        assert message.startswith("cannot read dataset `shop` in postgres: OperationalError: connection to server"), \
            message
        assert "Check that the destination is reachable" in message and "hunter2pw" not in message


CAPITAL_YAML = '''\
resources:
  Shop.Notes:
    entry: data.notes
'''


def test_plan_finds_a_table_dlt_named_in_snake_case(tmp_path):
    """Resource `Shop.Notes` loads table `notes` of dataset `shop`: it exists, and --full-refresh drops it."""
    project = load_project(write_source(tmp_path / "root", "Shop", SHOP_PY, CAPITAL_YAML))
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    (before,) = plan_selection(project, target)
    assert (before.exists, before.full_refresh_drops) == (False, [])
    run_source(project.sources["Shop"], target)
    (after,) = plan_selection(project, target)
    assert (after.table, after.exists, after.full_refresh_drops) == ("Notes", True, ["notes"])


def test_plan_shows_long_names_and_start_values_whole(tmp_path):
    """At 160 columns (the CLI's width when not on a terminal) the table name and the start value are what a plan is
    read for: never cut to `…` or wrapped (the descriptions are, if something must give)."""
    yaml = '''\
resources:
  warehouse_inventory.daily_stock_levels_by_store:
    entry: data.levels
    write_disposition: merge
    primary_key: [store_id, sku, day]
    incremental:
      cursor_path: updated_at
      initial_value: "2024-01-01T00:00:00.000000+00:00"
    meta:
      dagster:
        automation_condition: on_schedule
        automation_condition_config: {cron_schedule: "15 4 * * 1-5", cron_timezone: America/Argentina/Buenos_Aires}
'''
    root = write_source(tmp_path / "root", "warehouse_inventory", "def levels(incremental=None):\n    yield []\n", yaml)
    result = _in_process("plan", "--root", str(root), "--duckdb-file", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 0, result.output
    for whole in ("warehouse_inventory.daily_stock_levels_by_store", "2024-01-01T00:00:00.000000+00:00"):
        assert whole in result.stdout, result.stdout
