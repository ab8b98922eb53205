"""What would fail only later (loading the Dagster code location, building or running a dlt resource) is a validation
error of the spec: partition bounds as Dagster parses them, column hints as dlt checks them, the cursor's JSONPath.
The file:line and key path of each are checked by the folders under tests/cases/invalid/."""

import datetime as dt
import subprocess
import sys

import dagster as dg
import pytest
from dlt.common.data_types.typing import DATA_TYPES
from pydantic import ValidationError

from data_foundation.dagster.assets import _partitions_def
from data_foundation.config.dagster_meta import (ASSET_KEYS, PARTITION_FORMATS, SOURCE_KEYS, AssetDagsterMeta,
                                                 PartitionSpec, ResourceDagsterMeta, SourceDagsterMeta)
from data_foundation.config.spec import ResourceSpec

CLASSES = {"hourly": dg.HourlyPartitionsDefinition, "daily": dg.DailyPartitionsDefinition,
           "weekly": dg.WeeklyPartitionsDefinition, "monthly": dg.MonthlyPartitionsDefinition}
UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))


def _error(exc: pytest.ExceptionInfo) -> dict:
    errors = exc.value.errors(include_url=False)
    assert len(errors) == 1, errors
    error = errors[0]
    return {"loc": error["loc"], "message": error["msg"].removeprefix("Value error, "),
            "hint": error["ctx"]["error"].hint, "key": error["ctx"]["error"].key}


@pytest.mark.parametrize("kind, start, end, first, last", [
    ("daily", "2024-01-01", "2024-01-11", "2024-01-01", "2024-01-10"),
    ("daily", dt.date(2024, 1, 1), dt.date(2024, 1, 11), "2024-01-01", "2024-01-10"),  # YAML's unquoted dates
    ("daily", dt.datetime(2024, 1, 1), None, "2024-01-01", None),
    ("daily", "2024-1-1", "2024-1-3", "2024-01-01", "2024-01-02"),  # Dagster's strptime takes unpadded numbers
    ("daily", "2024-01-01+0000", None, "2024-01-01", None),  # ... and a UTC offset
    ("weekly", dt.date(2024, 1, 7), "2024-01-21", "2024-01-07", "2024-01-14"),
    ("monthly", "2024-01-01", dt.date(2024, 4, 1), "2024-01-01", "2024-03-01"),
    ("hourly", "2024-01-01-00:00", "2024-01-01-03:00", "2024-01-01-00:00", "2024-01-01-02:00"),
    ("hourly", dt.date(2024, 1, 1), "2024-01-01-02:00", "2024-01-01-00:00", "2024-01-01-01:00"),  # from midnight
    ("hourly", "2024-01-01", None, "2024-01-01-00:00", None),  # `start: YYYY-MM-DD` as for the other types
    ("hourly", dt.datetime(2024, 1, 1, 10), None, "2024-01-01-10:00", None),
    ("hourly", dt.datetime(2024, 1, 1, 10, tzinfo=UTC_PLUS_2), None, "2024-01-01-08:00", None),
])
def test_partition_bounds_build_the_dagster_partitions(kind, start, end, first, last):
    spec = PartitionSpec(type=kind, start=start, end=end)

    partitions = _partitions_def(spec)  # as the Dagster layer builds them when it loads the code location

    assert partitions.get_first_partition_key() == first
    if last:
        assert partitions.get_last_partition_key() == last


@pytest.mark.parametrize("kind, start", [
    ("daily", "notadate"), ("daily", "2024-02-30"), ("daily", "01/02/2024"), ("weekly", "2024-01-01 00:00"),
    ("monthly", "2024-01"), ("hourly", "2024-01-01 10:00"), ("hourly", "2024-01-01T10:00:00"),
])
def test_partition_bound_dagster_cannot_parse_is_a_validation_error(kind, start):
    with pytest.raises(ValueError):  # what loading the Dagster code location would do
        CLASSES[kind](start_date=start, fmt=PARTITION_FORMATS[kind][0])

    with pytest.raises(ValidationError) as exc:
        PartitionSpec(type=kind, start=start)

    error = _error(exc)
    _, pattern, example = PARTITION_FORMATS[kind]
    assert error["loc"] == ("start",)
    assert error["message"] == (f"`{start}` is not a valid `{kind}` partition start: expected "
                                f"{'a time' if kind == 'hourly' else 'a date'} written {pattern}, e.g. `{example}`")
    assert error["hint"] == f"Write `start: {example}`."


@pytest.mark.parametrize("value", [dt.datetime(2024, 1, 1, 10, 30), 20240101, ["2024-01-01"]])
def test_partition_bound_that_is_no_date_or_loses_its_time_is_refused(value):
    with pytest.raises(ValidationError) as exc:
        PartitionSpec(type="daily", start="2024-01-01", end=value)

    assert _error(exc)["loc"] == ("end",)


@pytest.mark.parametrize("kind, start, end", [
    ("daily", "2024-01-11", "2024-01-01"), ("daily", "2024-01-01", dt.date(2024, 1, 1)),
    ("hourly", "2024-01-01-10:00", "2024-01-01-12:00+0300"),  # 09:00 UTC
])
def test_partition_end_must_come_after_start(kind, start, end):
    with pytest.raises(ValidationError) as exc:
        PartitionSpec(type=kind, start=start, end=end)

    error = _error(exc)
    assert error["key"] == "end" and error["message"].endswith("is not after `start: " + start + "`")


def test_every_dlt_data_type_and_hint_is_accepted():
    columns = {f"c_{t}": {"data_type": t, "nullable": False} for t in DATA_TYPES}
    columns["amount"] = {"data_type": "decimal", "precision": 10, "scale": 4, "x-custom": {"any": "thing"}}
    columns["items"] = {"data_type": "complex"}  # dlt's former name of json: still migrated by dlt

    spec = ResourceSpec(entry="data.fetch", columns=columns)

    assert spec.columns == columns


@pytest.mark.parametrize("hints, key, message, hint", [
    ({"data_type": "integer"}, "data_type",
     f"`integer` is not a dlt data type. Valid values: {', '.join(sorted(DATA_TYPES))}.", "did you mean `bigint`?"),
    ({"data_type": "timestmap"}, "data_type", "`timestmap` is not a dlt data type", "did you mean `timestamp`?"),
    ({"data_type": "bigint", "nulable": False}, "nulable", "unknown column hint `nulable`", "did you mean `nullable`?"),
    ({"primary": True}, "primary", "unknown column hint `primary`", "Valid hints: cluster, data_type"),
    ({"nullable": "maybe"}, "nullable", "field `nullable=maybe` has invalid type `str` while `bool` is expected",
     "e.g. `nullable: false`"),
])
def test_column_hints_dlt_would_refuse_are_validation_errors(hints, key, message, hint):
    with pytest.raises(ValidationError) as exc:
        ResourceSpec(entry="data.fetch", columns={"amount": hints})

    error = _error(exc)
    assert (error["loc"], error["key"]) == (("columns", "amount"), key)  # validation_messages points at the key
    assert message in error["message"] and hint in error["hint"]


@pytest.mark.parametrize("path", ["updated_at", "$.meta.updated_at", "meta.updated_at", "items[0].at"])
def test_cursor_paths_dlt_parses_are_accepted(path):
    assert ResourceSpec(entry="data.fetch", incremental={"cursor_path": path}).incremental.cursor_path == path


@pytest.mark.parametrize("path", ["orders[", "$..[", "", "a..", "$[?(@.x"])
def test_cursor_path_dlt_cannot_parse_is_a_validation_error(path):
    from dlt.common.jsonpath import compile_path

    with pytest.raises(Exception):  # what building the dlt resource would do
        compile_path(path)

    with pytest.raises(ValidationError) as exc:
        ResourceSpec(entry="data.fetch", incremental={"cursor_path": path})

    error = _error(exc)
    assert error["loc"] == ("incremental", "cursor_path")
    assert error["message"].startswith(f"`{path}` is not a JSONPath dlt can parse: ")
    assert "`updated_at`" in error["hint"] and "`$.meta.updated_at`" in error["hint"]


def test_reading_specs_does_not_import_dlt():
    code = "import sys, data_foundation.config.loading; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dlt'))"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- meta.dagster: per source and per resource ------------------------------------------------------------------

SOURCE_META = {"automation_condition": "on_cron", "automation_condition_config": {"cron_schedule": "@daily"},
               "group_name": "shop", "retry": {"max_retries": 2}, "partition": {"type": "daily", "start": "2024-01-01"},
               "pool": "warehouse_writes"}


def test_the_keys_of_the_multi_asset_are_the_sources_only():
    assert SOURCE_KEYS == ("partition", "retry", "pool")
    assert set(ResourceDagsterMeta.model_fields) == set(AssetDagsterMeta.model_fields) == set(ASSET_KEYS) == {
        "automation_condition", "automation_condition_config", "freshness_lower_bound_delta_seconds", "group_name"}


def test_a_resource_overrides_the_sources_per_asset_keys_one_by_one():
    source = SourceDagsterMeta.model_validate(SOURCE_META)
    override = ResourceDagsterMeta(automation_condition_config={"cron_timezone": "europe/berlin"},
                                   freshness_lower_bound_delta_seconds=3600)

    merged = source.for_resource(override)

    assert type(merged) is AssetDagsterMeta and not hasattr(merged, "retry")
    assert merged.model_dump() == {
        "automation_condition": "on_cron",  # the source's
        "automation_condition_config": {"cron_schedule": "@daily", "cron_timezone": "Europe/Berlin",
                                        "lookback_days": None},  # merged
        "freshness_lower_bound_delta_seconds": 3600, "group_name": "shop"}
    assert source.for_resource() == source.for_resource(ResourceDagsterMeta()) == AssetDagsterMeta(
        automation_condition="on_cron", automation_condition_config={"cron_schedule": "@daily"}, group_name="shop")
    assert source.for_resource().model_fields_set == {"automation_condition", "automation_condition_config",
                                                      "group_name"}


def test_a_merge_that_is_invalid_raises():
    source = SourceDagsterMeta(automation_condition="eager", automation_condition_config={"cron_timezone": "UTC"})

    with pytest.raises(ValidationError) as exc:  # each part is valid alone
        source.for_resource(ResourceDagsterMeta(automation_condition="on_cron"))

    error = _error(exc)
    assert (error["key"], error["message"]) == ("automation_condition",
                                                "`on_cron` needs `automation_condition_config.cron_schedule`")


@pytest.mark.parametrize("key", SOURCE_KEYS)
def test_a_resource_setting_a_key_of_the_multi_asset_is_told_where_it_goes(key):
    with pytest.raises(ValidationError) as exc:
        ResourceDagsterMeta.model_validate({key: SOURCE_META[key], "group_name": 5})

    errors = {e["loc"]: e for e in exc.value.errors(include_url=False)}
    assert set(errors) == {(key,), ("group_name",)}  # the resource's other errors are still reported
    problem = errors[(key,)]["ctx"]["error"]
    assert str(problem) == f"`{key}` applies to the whole source (one Dagster multi-asset), not to one resource"
    assert problem.hint.startswith("Set it under `sources.<source>.meta.dagster` of the source listing this resource")
