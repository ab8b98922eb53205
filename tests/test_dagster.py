"""Dagster: definitions from source folders, in-process materialization, automation ticks, freshness, checks."""

import ast
import datetime as dt

import dagster as dg
import duckdb

from conftest import EXAMPLES_ROOT, REPO, query, table_counts, write_source
from data_foundation.dagster import build_definitions
from data_foundation.dagster.checks import CHECK_PRIMARY_KEY, CHECK_RECONCILE, CHECK_SCHEMA
from data_foundation.load.destinations import create_target

PARTITIONED_ROOT = REPO / "tests" / "cases" / "valid" / "partitioned"


def _materialize(defs, selection=None, instance=None, **kwargs):
    return dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources, selection=selection,
                          instance=instance or dg.DagsterInstance.ephemeral(), **kwargs)


def _spec(defs, key):
    return next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(key))


def test_asset_specs_lineage_kinds_metadata_and_freshness(jaffle_root, duckdb_file):
    defs = build_definitions(jaffle_root, create_target("duckdb", str(duckdb_file)))
    orders = _spec(defs, ["jaffle_shop", "orders"])
    assert orders.group_name == "jaffle_shop"
    assert orders.kinds == {"dlt", "duckdb", "api"}
    assert [d.asset_key for d in orders.deps] == [dg.AssetKey(["jaffle_shop", "src", "orders"])]
    assert orders.description.startswith("Orders with their items")
    assert orders.owners == ["team:data-platform"]
    assert orders.metadata["data_foundation/entry"] == "data.fetch_orders"
    assert orders.metadata["data_foundation/write_disposition"] == "merge"
    assert orders.metadata["data_foundation/primary_key"] == "id"
    assert orders.metadata["data_foundation/cursor"] == "ordered_at"
    assert orders.metadata["data_foundation/source_file"].path == str(jaffle_root / "jaffle_shop" / "sources.yaml")
    assert (orders.metadata["dagster/table_name"], orders.metadata["dagster/storage_kind"]) == ("orders", "duckdb")
    assert orders.freshness_policy.fail_window.to_timedelta() == dt.timedelta(seconds=108_000)
    items = _spec(defs, ["jaffle_shop", "items"])
    assert [d.asset_key for d in items.deps] == [dg.AssetKey(["jaffle_shop", "orders"])]  # data_from parent
    api = _spec(defs, ["jaffle_shop", "src", "customers"])
    assert api.kinds == {"api"}
    assert dg.AssetKey(["jaffle_shop", "src", "items"]) not in {s.key for s in defs.resolve_all_asset_specs()}
    supplies_checks = {c.name for c in defs.resolve_asset_graph().get_check_keys_for_assets(
        {dg.AssetKey(["jaffle_shop", "supplies"])})}
    assert supplies_checks == {CHECK_PRIMARY_KEY, CHECK_RECONCILE, CHECK_SCHEMA}


def test_materialize_jaffle_shop_twice_in_one_process(late_api, late_jaffle_root, duckdb_file):
    """A month of orders: the late source on a replica serving only those (conftest's `late_api`), so the
    reconciliation checks compare with what the API has."""
    late = late_api.row_counts()
    defs = build_definitions(late_jaffle_root, create_target("duckdb", str(duckdb_file)))
    instance = dg.DagsterInstance.ephemeral()
    first = _materialize(defs, instance=instance)
    assert first.success
    assert table_counts(duckdb_file, "jaffle_shop") == late
    rows = {e.asset_key.path[-1]: e.materialization.metadata["rows_loaded"].value
            for e in first.get_asset_materialization_events()}
    assert rows == late
    orders_meta = next(e.materialization.metadata for e in first.get_asset_materialization_events()
                       if e.asset_key.path[-1] == "orders")
    columns = {c.name: c.type for c in orders_meta["dagster/column_schema"].schema.columns}
    assert columns["order_total"] == "bigint" and columns["ordered_at"] == "timestamp"
    checks = {(e.asset_key.path[-1], e.check_name): e.passed for e in first.get_asset_check_evaluations()}
    assert len(checks) == 18 and all(checks.values()), checks

    late_api.add_day(orders=10)
    second = _materialize(defs, instance=instance)  # same definitions, same process: a fresh dlt source per run
    assert second.success
    rows = {e.asset_key.path[-1]: e.materialization.metadata["rows_loaded"].value
            for e in second.get_asset_materialization_events()}
    assert rows["orders"] == 10 and rows["customers"] == 935
    assert table_counts(duckdb_file, "jaffle_shop")["orders"] == late["orders"] + 10
    assert all(e.passed for e in second.get_asset_check_evaluations())


def test_zero_row_run_succeeds_and_duplicate_key_fails_its_check(tmp_path):
    root = tmp_path / "root"
    (root / "empty").mkdir(parents=True)
    (root / "empty" / "__init__.py").write_text("")
    (root / "empty" / "data.py").write_text(
        "def rows(n=0):\n    yield [{'id': i % 2, 'v': i} for i in range(n)]\n")
    (root / "empty" / "sources.yaml").write_text(
        "resources:\n  empty.things:\n    entry: data.rows\n    keyword_arguments: {n: 0}\n"
        "    write_disposition: append\n    primary_key: id\n  empty.keyed:\n    entry: data.rows\n"
        "    keyword_arguments: {n: 3}\n    write_disposition: merge\n    primary_key: id\n")
    database = tmp_path / "w.duckdb"
    defs = build_definitions(root, create_target("duckdb", str(database)))
    result = _materialize(defs, selection=[dg.AssetKey(["empty", "things"]), dg.AssetKey(["empty", "keyed"])])
    assert result.success
    rows = {e.asset_key.path[-1]: e.materialization.metadata["rows_loaded"].value
            for e in result.get_asset_materialization_events()}
    assert rows == {"things": 0, "keyed": 3}  # rows extracted; merge keeps one row per key
    assert table_counts(database, "empty") == {"keyed": 2}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "keyed"}
    assert checks[CHECK_PRIMARY_KEY] is True

    with duckdb.connect(str(database)) as con:  # seed a duplicate key behind dlt's back
        con.execute("INSERT INTO empty.keyed SELECT * FROM empty.keyed LIMIT 1")
    result = _materialize(defs, selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["empty", "keyed"])))
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_PRIMARY_KEY)
    assert evaluation.passed is False
    assert evaluation.metadata["duplicate_keys"].value == 1


def test_schema_drift_is_reported(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "drift").mkdir(parents=True)
    (root / "drift" / "__init__.py").write_text("")
    (root / "drift" / "data.py").write_text(
        "import os\n\ndef rows():\n    extra = {'note': 'x'} if os.environ.get('DRIFT') else {}\n"
        "    yield [{'id': 1, 'v': 1, **extra}]\n")
    (root / "drift" / "sources.yaml").write_text(
        "resources:\n  drift.t:\n    entry: data.rows\n    write_disposition: merge\n    primary_key: id\n")
    defs = build_definitions(root, create_target("duckdb", str(tmp_path / "w.duckdb")))
    instance = dg.DagsterInstance.ephemeral()
    assert all(e.passed for e in _materialize(defs, instance=instance).get_asset_check_evaluations())
    monkeypatch.setenv("DRIFT", "1")
    result = _materialize(defs, instance=instance)
    drift = next(e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_SCHEMA)
    assert drift.passed is False and drift.severity == dg.AssetCheckSeverity.WARN
    assert drift.metadata["added_columns"].value == ["note"]


def _requests(result, key):
    return result.get_requested_subset(dg.AssetKey(key)).size


def test_cron_automation_requests_once_per_tick():
    defs = build_definitions(PARTITIONED_ROOT, create_target("duckdb", ":memory:"))
    spec = _spec(defs, ["events", "daily"])
    assert spec.automation_condition is not None
    instance = dg.DagsterInstance.ephemeral()
    start = dt.datetime(2024, 1, 10, 10, 30, tzinfo=dt.timezone.utc)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=start)
    assert result.total_requested == 0  # no tick has passed since the first evaluation
    requested = []
    for minutes in (10, 20, 31, 40, 50, 59, 91, 100):  # ticks at 11:00 and 12:00 (hourly cron)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=start + dt.timedelta(minutes=minutes))
        requested.append(result.total_requested)
    assert requested == [0, 0, 1, 0, 0, 0, 1, 0]


def test_jaffle_schedule_fires_daily_despite_never_materialized_upstream(jaffle_root):
    defs = build_definitions(jaffle_root, create_target("duckdb", ":memory:"))
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime(2024, 5, 1, 5, 0, tzinfo=dt.timezone.utc)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    counts = []
    for hours in (0.5, 1.5, 12, 25.5, 26):  # 05:30, 06:30, 17:00 on May 1; 06:30, 07:00 on May 2
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=now + dt.timedelta(hours=hours))
        counts.append(result.total_requested)
    assert counts == [0, 6, 0, 6, 0]  # all six tables once per tick, none between ticks


def test_partitioned_backfill_in_one_run_with_launchpad_overrides(tmp_path):
    database = tmp_path / "w.duckdb"
    defs = build_definitions(PARTITIONED_ROOT, create_target("duckdb", str(database)))
    assets_def = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition))
    assert isinstance(assets_def.partitions_def, dg.DailyPartitionsDefinition)
    assert assets_def.backfill_policy == dg.BackfillPolicy.single_run()
    assert assets_def.op.retry_policy == dg.RetryPolicy(max_retries=2, delay=1)
    result = _materialize(defs, selection=[dg.AssetKey(["events", "daily"])],
                          tags={"dagster/asset_partition_range_start": "2024-01-02",
                                "dagster/asset_partition_range_end": "2024-01-05"})
    assert result.success
    assert query(database, "SELECT MIN(day), MAX(day), COUNT(*) FROM events.daily") == [("2024-01-02", "2024-01-05", 8)]
    result = _materialize(defs, selection=[dg.AssetKey(["events", "daily"])], partition_key="2024-01-07",
                          run_config={"ops": {"events": {"config": {"keyword_arguments": {"daily": {"per_day": 5}}}}}})
    assert result.success
    assert query(database, "SELECT COUNT(*) FROM events.daily WHERE day = '2024-01-07'") == [(5,)]


def test_example_run_config_override(tmp_path):
    database = tmp_path / "w.duckdb"
    defs = build_definitions(EXAMPLES_ROOT, create_target("duckdb", str(database)))
    result = _materialize(defs, selection=[dg.AssetKey(["my_api", "users"])],
                          run_config={"ops": {"my_api": {"config": {"keyword_arguments": {"users": {"total": 7}}}}}})
    assert result.success
    assert table_counts(database, "my_api") == {"users": 7}


def test_cron_fires_in_its_time_zone(tmp_path):
    """`0 6 * * *` in Europe/Berlin is 05:00 UTC in winter and 04:00 UTC in summer: a run is requested then, and not
    at 06:00 UTC (where it would be if the zone were ignored)."""
    root = write_source(
        tmp_path / "root", "tz", "def rows():\n    yield [{'id': 1}]\n",
        "resources:\n  tz.t:\n    entry: data.rows\nsources:\n  tz:\n    resources: [tz.t]\n    meta:\n      dagster:\n"
        "        automation_condition: on_schedule\n        automation_condition_config:\n"
        "          cron_schedule: '0 6 * * *'\n          cron_timezone: Europe/Berlin\n")
    defs = build_definitions(root, create_target("duckdb", ":memory:"))
    for day, utc_hour in ((dt.date(2024, 1, 15), 5), (dt.date(2024, 7, 15), 4)):
        instance = dg.DagsterInstance.ephemeral()
        start = dt.datetime.combine(day, dt.time(utc_hour - 1, 30), tzinfo=dt.timezone.utc)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=start)
        requested = []
        for hours in (1, 2, 3):  # hh:30 after the zone's tick, then after 06:00 UTC (a zone-less tick), then later
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                       evaluation_time=start + dt.timedelta(hours=hours))
            requested.append(result.total_requested)
        assert requested == [1, 0, 0], (day, requested)


def test_a_dagster_run_waits_for_the_per_source_lock(tmp_path, monkeypatch):
    """The Dagster path takes the same per-source lock as `foundation run`: while another run holds it, the
    materialization fails with the CLI's message, and it succeeds once the lock is free."""
    from data_foundation.config.loading import load_project
    from data_foundation.load.session import source_lock

    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    defs = build_definitions(EXAMPLES_ROOT, target)
    source = load_project(EXAMPLES_ROOT).sources["my_api"]
    with source_lock(source, target):
        blocked = _materialize(defs, selection=[dg.AssetKey(["my_api", "users"])], raise_on_error=False)
    assert not blocked.success
    failure = next(e for e in blocked.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "source `my_api` is already being loaded into dataset `my_api`" in str(failure.event_specific_data.error)
    assert not (tmp_path / "w.duckdb").exists() or table_counts(tmp_path / "w.duckdb", "my_api") == {}
    assert _materialize(defs, selection=[dg.AssetKey(["my_api", "users"])]).success


def test_partition_retry_and_pool_are_the_sources(tmp_path):
    """They apply to the source's one multi-asset, so only `sources.<name>.meta.dagster` sets them (a resource
    setting one is a validation error: tests/cases/invalid/resource_meta_*); without `pool` the destination's."""
    data = "def rows(start_date=None, end_date=None):\n    yield [{'id': 1}]\n"
    root = write_source(
        tmp_path / "root", "pooled", data,
        "resources:\n  pooled.a:\n    entry: data.rows\n  pooled.b:\n    entry: data.rows\n"
        "    meta: {dagster: {group_name: b_group}}\n"
        "sources:\n  pooled:\n    resources: [pooled.a, pooled.b]\n    meta:\n      dagster:\n"
        "        pool: warehouse_writes\n        retry: {max_retries: 4, delay_seconds: 2}\n"
        "        partition: {type: monthly, start: 2024-01-01}\n")
    write_source(root, "plain", data, "resources:\n  plain.t:\n    entry: data.rows\n")

    defs = build_definitions(root, create_target("duckdb", str(tmp_path / "w.duckdb")))

    assets = {a.op.name: a for a in defs.assets if isinstance(a, dg.AssetsDefinition)}
    pooled, plain = assets["pooled"], assets["plain"]
    assert (pooled.op.pool, plain.op.pool) == ("warehouse_writes", "foundation_duckdb")
    assert pooled.op.retry_policy == dg.RetryPolicy(max_retries=4, delay=2) and plain.op.retry_policy is None
    assert isinstance(pooled.partitions_def, dg.MonthlyPartitionsDefinition) and plain.partitions_def is None
    assert pooled.partitions_def.get_first_partition_key() == "2024-01-01"
    assert {key.path[-1]: group for key, group in pooled.group_names_by_key.items()} == {"a": "pooled",
                                                                                          "b": "b_group"}


def test_the_automation_sensor_evaluates_the_sources_assets_only(jaffle_root, duckdb_file):
    """In a project with other assets (a dg project's other components), `foundation_automation` leaves their
    automation to their own sensor (Dagster's default one): two sensors evaluating one asset would both request it."""
    @dg.asset(automation_condition=dg.AutomationCondition.eager())
    def other_team_table() -> None:
        pass

    defs = dg.Definitions.merge(build_definitions(jaffle_root, create_target("duckdb", str(duckdb_file))),
                                dg.Definitions(assets=[other_team_table]))
    sensor = next(s for s in defs.sensors if s.name == "foundation_automation")
    selected = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert dg.AssetKey(["jaffle_shop", "orders"]) in selected
    assert dg.AssetKey("other_team_table") not in selected


def test_the_package_uses_only_public_dagster_modules():
    """Private modules (`dagster._core...`) change without notice between Dagster releases."""
    private = []
    for path in sorted((REPO / "src" / "data_foundation").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            private += [f"{path.name}: {n}" for n in names if n.split(".")[0].startswith("dagster")
                        and any(part.startswith("_") for part in n.split(".")[1:])]
    assert private == []


WINDOWED_DATA = '''
import datetime as dt


def days(start_date=None, end_date=None):
    day, last = dt.date.fromisoformat(start_date), dt.date.fromisoformat(end_date)
    while day <= last:
        yield [{"day": day.isoformat()}]
        day += dt.timedelta(days=1)


def tagged(page, tag: str = "x"):
    return [{"day": row["day"], "tag": tag} for row in page]
'''
WINDOWED_YAML = """
resources:
  ev.days: {entry: data.days}
  ev.tagged: {entry: data.tagged, data_from: ev.days}
sources:
  ev:
    resources: [ev.days, ev.tagged]
    meta: {dagster: {partition: {type: daily, start: "2024-01-01", end: "2024-01-10"}}}
"""


def test_the_partition_window_goes_to_the_resources_that_take_it(tmp_path):
    """A transformer of a partitioned source gets its parent's pages, not the window it does not take (it used to
    fail the run with "unexpected keyword argument 'start_date'")."""
    database = tmp_path / "w.duckdb"
    root = write_source(tmp_path / "root", "ev", WINDOWED_DATA, WINDOWED_YAML)
    defs = build_definitions(root, create_target("duckdb", str(database)))
    result = _materialize(defs, partition_key="2024-01-03")
    assert result.success
    assert query(database, "SELECT day, tag FROM ev.tagged") == [("2024-01-03", "x")]
