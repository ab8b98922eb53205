"""The exchange_rate source against a fake of the Frankfurter v1 API: full load, daily incremental runs over weekends
and holidays, faults retried, a clear error for an unknown currency, its Dagster automation; the real API on demand."""

import datetime as dt
import decimal
import os

import dagster as dg
import pytest
import requests

from conftest import copy_source, query, table_counts
from data_foundation.config.loading import load_project
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target
from data_foundation.load.running import RunFailed, run_source
from fakes.frankfurter import Frankfurter, business_days
from fakes.http import Reply

# read at import: the autouse `_isolated_dlt` fixture removes every FOUNDATION_* variable before a test runs
LIVE = os.environ.get("FOUNDATION_LIVE_TESTS") == "1"
SATURDAY = dt.date(2024, 1, 27)
QUOTES = {"usd": ["CAD", "EUR", "GBP", "JPY"], "cad": ["EUR", "GBP", "JPY", "USD"]}  # the default list less the base


@pytest.fixture(scope="module")
def _server():
    """One fake for the module (stopping a server waits out its 0.5 s poll): `api` resets it for each test."""
    with Frankfurter(today=SATURDAY) as fake:
        yield fake


@pytest.fixture
def api(_server, monkeypatch):
    _server.clear()
    _server.today, _server.published_today = SATURDAY, False
    monkeypatch.setenv("SOURCES__EXCHANGE_RATE__BASE_URL", _server.base_url)
    monkeypatch.setenv("SOURCES__EXCHANGE_RATE__BACKOFF_FACTOR", "0.01")
    monkeypatch.setenv("SOURCES__EXCHANGE_RATE__REQUEST_TIMEOUT", "5")
    return _server


def _root(tmp_path, initial_value=None):
    """A root with the shipped source copied; `initial_value` replaces the shipped first day of both tables."""
    root = copy_source(tmp_path / "root", "exchange_rate")
    if initial_value is not None:
        yaml = root / "exchange_rate" / "sources.yaml"
        yaml.write_text(yaml.read_text().replace("initial_value: 2024-01-01", f"initial_value: {initial_value}"))
    return root


def _source(tmp_path, initial_value=None):
    return load_project(_root(tmp_path, initial_value)).sources["exchange_rate"]


def _duplicate_keys(path, table):
    return query(path, f"SELECT COUNT(*) - COUNT(DISTINCT (date, currency)) FROM exchange_rate.{table}")[0][0]


def _loaded(path, table):
    """`{(date, currency): rate}` of a table, with its one base."""
    rows = query(path, f"SELECT date, currency, rate, base FROM exchange_rate.{table}")
    assert {row[3] for row in rows} == {table.upper()}
    return {(day, currency): rate for day, currency, rate, _ in rows}


def _expected(api, table, days):
    return {(day, currency): decimal.Decimal(str(api.rate(day, table.upper(), currency)))
            for day in days for currency in QUOTES[table]}


def test_the_fake_answers_like_frankfurter_v1(api):
    """What the loader relies on, asked of the fake directly: holidays and weekends absent, a start on one of them
    answered from the business day before, the end clamped to the latest published day, `from`/`to` as aliases."""
    answer = requests.get(f"{api.base_url}/2023-12-23..2024-01-10", params={"from": "usd", "to": "eur"}).json()
    assert answer["start_date"] == "2023-12-22"  # Saturday asked: Friday answered
    assert list(answer["rates"]) == [d.isoformat() for d in business_days(dt.date(2023, 12, 22), dt.date(2024, 1, 10))]
    assert {"2023-12-25", "2023-12-26", "2024-01-01"}.isdisjoint(answer["rates"])
    assert answer["rates"]["2024-01-02"] == {"EUR": api.rate(dt.date(2024, 1, 2), "USD", "EUR")}
    future = requests.get(f"{api.base_url}/2024-01-20..2024-03-01", params={"base": "USD", "symbols": "EUR"}).json()
    assert (future["start_date"], future["end_date"]) == ("2024-01-19", "2024-01-26")  # nothing for today yet
    api.advance(2)  # Monday 29 January, published at 16:00 CET
    api.publish_today()
    assert requests.get(f"{api.base_url}/2024-01-29..2024-01-29").json()["end_date"] == "2024-01-29"
    unknown = requests.get(f"{api.base_url}/2024-01-02..2024-01-10", params={"base": "USD", "symbols": "XYZ"})
    assert (unknown.status_code, unknown.json()) == (404, {"message": "not found"})
    assert requests.get(f"{api.base_url}/2024-03-01..2024-03-05").status_code == 404  # a start after today


def test_full_load_then_daily_runs_fetch_only_the_new_days(api, tmp_path, duckdb_file):
    source = _source(tmp_path)
    target = create_target("duckdb", str(duckdb_file))

    # first load from 1 January 2024 (a holiday: the API starts at Friday 29 December, which is not loaded)
    first = run_source(source, target)
    days = business_days(dt.date(2024, 1, 2), dt.date(2024, 1, 26))  # 19 business days by Saturday 27 January
    assert first.rows_loaded == table_counts(duckdb_file, "exchange_rate") == {"usd": 19 * 4, "cad": 19 * 4}
    ranges = api.ranges()
    assert sorted((start, query["base"], query["symbols"]) for start, _, query in ranges) == [
        ("2024-01-01", "CAD", "EUR,GBP,JPY,USD"), ("2024-01-01", "USD", "EUR,GBP,JPY,CAD")]
    assert all(end == dt.datetime.now(dt.timezone.utc).date().isoformat() for _, end, _ in ranges)  # end = today
    for table in ("usd", "cad"):
        assert _loaded(duckdb_file, table) == _expected(api, table, days)
        assert _duplicate_keys(duckdb_file, table) == 0
    types = dict(query(duckdb_file, """SELECT column_name, data_type FROM information_schema.columns
                                       WHERE table_schema = 'exchange_rate' AND table_name = 'usd'"""))
    assert (types["date"], types["base"], types["currency"], types["rate"]) == ("DATE", "VARCHAR", "VARCHAR",
                                                                               "DECIMAL(18,6)")

    # four days on (Wednesday 31 January, not yet published): Monday and Tuesday are new, the weekend a gap
    api.advance(4)
    api.clear()
    second = run_source(source, target)
    assert second.rows_loaded == {"usd": 2 * 4, "cad": 2 * 4}
    assert sorted((start, query["base"]) for start, _, query in api.ranges()) == [
        ("2024-01-26", "CAD"), ("2024-01-26", "USD")]  # from the last loaded day on, nothing before it
    days += [dt.date(2024, 1, 29), dt.date(2024, 1, 30)]
    for table in ("usd", "cad"):
        assert _loaded(duckdb_file, table) == _expected(api, table, days)
        assert _duplicate_keys(duckdb_file, table) == 0


def test_a_first_day_on_a_weekend_loads_from_the_next_business_day(api, tmp_path, duckdb_file):
    """Saturday 6 January asked: Frankfurter answers from Friday 5 January, which is before the first day."""
    run = run_source(_source(tmp_path, initial_value="2024-01-06"), create_target("duckdb", str(duckdb_file)),
                     tables=["usd"])
    days = business_days(dt.date(2024, 1, 8), dt.date(2024, 1, 26))
    assert [start for start, _, _ in api.ranges()] == ["2024-01-06"]
    assert run.rows_loaded == {"usd": len(days) * 4} == {"usd": 15 * 4}
    assert _loaded(duckdb_file, "usd") == _expected(api, "usd", days)


def test_429_and_503_are_retried_with_backoff(api, tmp_path, duckdb_file):
    api.fail("/v1/", Reply(429, {"message": "rate limit exceeded"}, {"Retry-After": "0"}),
             Reply(503, "Service Unavailable"))
    run = run_source(_source(tmp_path), create_target("duckdb", str(duckdb_file)), tables=["usd"])
    assert api.count("/v1/") == 3  # the 429, the 503, then the answer
    assert run.rows_loaded == {"usd": 19 * 4}
    assert _duplicate_keys(duckdb_file, "usd") == 0


def test_an_unknown_currency_fails_the_run_saying_which_and_where_to_set_it(api, tmp_path, duckdb_file,
                                                                            monkeypatch):
    monkeypatch.setenv("SOURCES__EXCHANGE_RATE__SYMBOLS", "xyz")
    with pytest.raises(RunFailed) as failed:
        run_source(_source(tmp_path), create_target("duckdb", str(duckdb_file)), tables=["usd"])
    message = str(failed.value)
    assert "Frankfurter answered 404 not found for base USD, symbols XYZ, 2024-01-01.." in message
    assert "SOURCES__EXCHANGE_RATE__SYMBOLS" in message
    assert api.count("/v1/") == 1  # a 404 is an answer, not retried


def test_dagster_assets_run_daily_with_business_day_freshness(tmp_path, duckdb_file):
    defs = build_definitions(_root(tmp_path), create_target("duckdb", str(duckdb_file)))
    keys = [dg.AssetKey(["exchange_rate", "usd"]), dg.AssetKey(["exchange_rate", "cad"])]
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    for key in keys:
        assert specs[key].automation_condition.get_label() == "on cron @daily UTC"
        assert specs[key].freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=126)

    instance = dg.DagsterInstance.ephemeral()
    evening = dt.datetime(2024, 1, 26, 23, 30, tzinfo=dt.timezone.utc)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=evening)
    requested = []
    for hours in (1, 2):  # 00:30, after the midnight tick; 01:30, no tick since
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=evening + dt.timedelta(hours=hours))
        requested.append([result.get_num_requested(key) for key in keys])
    assert requested == [[1, 1], [0, 0]]


@pytest.mark.skipif(not LIVE, reason="the real Frankfurter API is called only with FOUNDATION_LIVE_TESTS=1")
def test_real_api_loads_the_last_ten_days(tmp_path, duckdb_file):
    start = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=10)
    source = _source(tmp_path, initial_value=start.isoformat())  # no base_url set: production
    run = run_source(source, create_target("duckdb", str(duckdb_file)))
    for table in ("usd", "cad"):
        loaded = _loaded(duckdb_file, table)
        days = {day for day, _ in loaded}
        assert 4 <= len(days) <= 9 and all(day >= start and day.weekday() < 5 for day in days)
        assert run.rows_loaded[table] == len(loaded) == len(days) * 4
        assert {currency for _, currency in loaded} == set(QUOTES[table])
        assert all(rate > 0 for rate in loaded.values())
        assert _duplicate_keys(duckdb_file, table) == 0
