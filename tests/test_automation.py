"""The automation-condition registry: one list of names for validation and for Dagster, and conditions an installed
package adds with an entry point, known alike to `foundation validate` (a process of its own) and to the Dagster
definitions. A package is "installed" by writing its `*.dist-info` (METADATA, entry_points.txt) and module into a
directory put on the path."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from conftest import write_source
from data_foundation.config.automation_conditions import (BUILT_IN_CONDITIONS, ENTRY_POINT_GROUP, condition_names,
                                                          refresh_conditions)
from data_foundation.config.loading import validate_root
from data_foundation.dagster import build_definitions
from data_foundation.errors import FoundationError
from data_foundation.load.destinations import create_target

BUILT_IN = "eager, manual, missing_or_changed, on_cron, on_missing, on_schedule"
CONDITIONS_PY = '''\
"""Conditions of the package `shop-conditions`. Importing it leaves a mark, to show who imports it."""

with open({marker!r}, "a") as mark:
    mark.write("imported\\n")

import dagster as dg


def business_hours(config):
    tick = dg.AutomationCondition.cron_tick_passed(config.cron_schedule, config.cron_timezone)
    return (tick.since_last_handled() & ~dg.AutomationCondition.in_progress()).with_label(
        f"business hours {{config.cron_schedule}} {{config.cron_timezone}}")


def eager(config):
    return dg.AutomationCondition.on_missing().with_label("not the built-in eager")


def not_a_condition(config):
    return "eager"
'''
SOURCES_YAML = """\
resources:
  shop.users:
    entry: data.rows
  shop.orders:
    entry: data.rows
    meta:
      dagster:
        automation_condition: {condition}
sources:
  shop:
    resources: [shop.users, shop.orders]
    meta:
      dagster:
        automation_condition: business_hours
        automation_condition_config: {{cron_schedule: "0 9 * * 1-5", cron_timezone: europe/berlin}}
"""


def _install_package(site: Path, entry_points: str) -> Path:
    """`shop_conditions.py` and its distribution's metadata in `site`; returns the marker file its import appends to."""
    marker = site / "imported.txt"
    info = site / "shop_conditions-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-conditions\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")
    (site / "shop_conditions.py").write_text(CONDITIONS_PY.format(marker=str(marker)))
    return marker


def _root(tmp_path: Path, condition: str = "business_hours") -> Path:
    return write_source(tmp_path / "root", "shop", "def rows():\n    yield [{'id': 1}]\n",
                        SOURCES_YAML.format(condition=condition))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on `sys.path` for packages a test installs; the registry reads the entry points again."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    refresh_conditions()
    yield site
    sys.modules.pop("shop_conditions", None)
    monkeypatch.undo()
    refresh_conditions()


def _validate_in_a_process(root: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, NO_COLOR="1", TERM="dumb", COLUMNS="300")
    return subprocess.run([sys.executable, *args], cwd=root.parent, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_registry_lists_the_built_in_conditions():
    refresh_conditions()
    assert ", ".join(condition_names()) == BUILT_IN == ", ".join(sorted(BUILT_IN_CONDITIONS))


def test_an_installed_condition_is_valid_for_the_cli_which_imports_neither_it_nor_dagster(tmp_path, site):
    marker = _install_package(site, "business_hours = shop_conditions:business_hours\n")
    root = _root(tmp_path, condition="eager")

    result = _validate_in_a_process(root, site, "-m", "data_foundation.cli", "--root", str(root), "validate")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK 1 source(s), 2 resource(s) valid" in " ".join(result.stdout.split())
    assert not marker.exists()  # names are read from the package's metadata: its module is not imported
    code = ("import sys; from data_foundation.config.loading import validate_root; "
            f"print(validate_root({str(root)!r})[1], 'dagster' in sys.modules, 'shop_conditions' in sys.modules)")
    result = _validate_in_a_process(root, site, "-c", code)
    assert result.stdout.split() == ["[]", "False", "False"], result.stderr


def test_without_the_package_the_cli_lists_the_registered_names(tmp_path):
    root = _root(tmp_path)

    result = _validate_in_a_process(root, tmp_path / "no-site", "-m", "data_foundation.cli", "--root", str(root),
                                    "validate")

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert (f"sources.shop.meta.dagster.automation_condition: `business_hours` is not a known automation condition. "
            f"Valid values: {BUILT_IN}.") in output
    assert f"entry points in the group `{ENTRY_POINT_GROUP}`" in output


def test_an_unknown_name_lists_the_installed_conditions_too(tmp_path, site):
    _install_package(site, "business_hours = shop_conditions:business_hours\n")

    _, errors = validate_root(_root(tmp_path, condition="busines_hours"))

    (error,) = errors
    assert error.key_path == "resources.shop.orders.meta.dagster.automation_condition" and error.line == 8
    assert error.message == ("`busines_hours` is not a known automation condition. "
                             f"Valid values: business_hours, {BUILT_IN}.")
    assert error.hint.startswith("did you mean `business_hours`?")


def test_an_installed_condition_is_built_in_the_dagster_definitions(tmp_path, site):
    marker = _install_package(site, "business_hours = shop_conditions:business_hours\n")
    defs = build_definitions(_root(tmp_path, condition="eager"), create_target("duckdb", ":memory:"))

    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs() if len(s.key.path) == 2}
    assert specs["users"].automation_condition.get_label() == "business hours 0 9 * * 1-5 Europe/Berlin"
    assert specs["orders"].automation_condition.get_label() == "eager"  # the resource's override, a built-in
    assert marker.read_text() == "imported\n"  # once, however many assets use it

    instance = dg.DagsterInstance.ephemeral()
    monday = dt.datetime(2024, 1, 15, 7, 30, tzinfo=dt.timezone.utc)  # 08:30 in Berlin: before the 09:00 tick
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=monday)
    requested = []
    for hours in (1, 2):  # 09:30 Berlin, after the tick; 10:30, no tick since
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=monday + dt.timedelta(hours=hours))
        requested.append(result.get_num_requested(dg.AssetKey(["shop", "users"])))
    assert requested == [1, 0]


def test_an_entry_point_cannot_replace_a_built_in(tmp_path, site):
    _install_package(site, "business_hours = shop_conditions:business_hours\neager = shop_conditions:eager\n")

    defs = build_definitions(_root(tmp_path, condition="eager"), create_target("duckdb", ":memory:"))

    orders = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(["shop", "orders"]))
    assert orders.automation_condition.get_label() == "eager"


@pytest.mark.parametrize("entry_point, message", [
    ("business_hours = shop_conditions:missing_function",
     "automation condition `business_hours`: cannot import its builder `shop_conditions:missing_function` "
     "(entry point of shop-conditions): AttributeError"),
    ("business_hours = shop_conditions:not_a_condition",
     "automation condition `business_hours`: its builder returned str, not a dagster AutomationCondition or None"),
])
def test_a_broken_builder_fails_the_definitions_with_its_name(tmp_path, site, entry_point, message):
    _install_package(site, entry_point + "\n")
    root = _root(tmp_path, condition="eager")
    assert validate_root(root)[1] == []  # validation reads names only

    with pytest.raises(FoundationError) as exc:
        build_definitions(root, create_target("duckdb", ":memory:"))

    assert str(exc.value).startswith(message)


LOOKBACK_YAML = """\
resources:
  ads.insights:
    entry: data.rows
sources:
  ads:
    resources: [ads.insights]
    meta:
      dagster:
        automation_condition: on_schedule
        automation_condition_config: {{cron_schedule: "0 7 * * *", lookback_days: 3}}
        {partition}
"""
HOUR = dt.timedelta(hours=1)
WINDOW_PY = "def rows(start_date=None, end_date=None):\n    yield [{'day': start_date}]\n"


def test_lookback_days_requests_the_last_days_partitions_on_each_tick(tmp_path):
    root = write_source(tmp_path / "root", "ads", WINDOW_PY,
                        LOOKBACK_YAML.format(partition='partition: {type: daily, start: "2024-01-01"}'))
    defs = build_definitions(root, create_target("duckdb", str(tmp_path / "w.duckdb")))
    key = dg.AssetKey(["ads", "insights"])
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == key)
    assert spec.automation_condition.get_label() == "on cron 0 7 * * * UTC, last 3 days"
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime(2024, 3, 10, 7, 30, tzinfo=dt.timezone.utc)
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now - HOUR)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now, cursor=before.cursor)
    assert before.total_requested == 0
    assert tick.get_requested_partitions(key) == {"2024-03-07", "2024-03-08", "2024-03-09"}
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now + HOUR,
                                              cursor=tick.cursor)
    assert again.total_requested == 0  # once per tick


def test_lookback_days_without_partitions_is_a_problem(tmp_path):
    root = write_source(tmp_path / "root", "ads", WINDOW_PY, LOOKBACK_YAML.format(partition=""))
    problems = validate_root(root)[1]
    assert [(p.key_path, p.line) for p in problems] == [("sources.ads.meta.dagster.automation_condition_config", 10)]
    assert "`automation_condition_config.lookback_days` needs a partitioned source" in problems[0].message


POLLED_YAML = """\
resources:
  files.export:
    entry: data.rows
    write_disposition: replace
sources:
  files:
    resources: [files.export]
    meta:
      dagster:
        automation_condition: missing_or_changed
        automation_condition_config: {cron_schedule: "0 6 * * *"}
"""


def test_missing_or_changed_runs_when_missing_when_the_code_changed_and_on_its_poll(tmp_path):
    """Missing: requested; its run fails: not requested again (no retry storm). data.py fixed (the asset's code
    version changed): requested. Materialized: not again until the poll's cron ticks."""
    root = write_source(tmp_path / "root", "files", "def rows():\n    raise RuntimeError('the portal is down')\n"
                        "    yield\n", POLLED_YAML)
    key = dg.AssetKey(["files", "export"])
    instance = dg.DagsterInstance.ephemeral()

    def evaluate(minutes: int, cursor=None):
        defs = build_definitions(root, create_target("duckdb", str(tmp_path / "w.duckdb")))
        at = dt.datetime(2024, 3, 10, 1, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minutes)
        return defs, dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=at, cursor=cursor)

    def materialize(defs) -> bool:
        assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
        return dg.materialize(assets, resources=defs.resources, instance=instance, raise_on_error=False).success

    defs, missing = evaluate(0)
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == key)
    assert spec.automation_condition.get_label() == "missing or changed, on cron 0 6 * * * UTC"
    assert missing.get_requested_partitions(key) == {None}
    assert not materialize(defs)
    _, failed = evaluate(1, missing.cursor)
    assert failed.total_requested == 0

    (root / "files" / "data.py").write_text("def rows():\n    yield [{'id': 2}]\n")
    for name in [n for n, m in sys.modules.items() if str(getattr(m, "__file__", "")).startswith(str(root))]:
        del sys.modules[name]  # as a code server reloads its definitions
    defs, changed = evaluate(2, failed.cursor)
    assert next(s for s in defs.resolve_all_asset_specs() if s.key == key).code_version != spec.code_version
    assert changed.get_requested_partitions(key) == {None}
    assert materialize(defs)
    _, materialized = evaluate(3, changed.cursor)
    assert materialized.total_requested == 0
    _, polled = evaluate(5 * 60 + 1, materialized.cursor)  # 06:01: the daily poll
    assert polled.get_requested_partitions(key) == {None}
