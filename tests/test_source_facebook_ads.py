"""The shipped `facebook_ads` source against a fake of the Graph API (tests/fakes/graph_api.py): a full load, the
look-back re-run, a Dagster partition, rate limits retried, the token kept out of every output, and the real API
when credentials are set."""

import datetime as dt
import importlib.util
import inspect
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import List

import dagster as dg
import pytest

from conftest import copy_source, query, table_counts
from data_foundation.config.loading import load_project
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target
from data_foundation.load.running import run_source
from fakes.graph_api import (GraphAPI, account_limit, app_limit, expired_token, months_before, too_much_data,
                             transient_error, user_limit)
from test_cli import flat, foundation
from test_secrets import _files_text

TOKEN = "EAAJq8fakeZ7xTok3nWm2Lx9"  # no masking pattern would recognise it: only masking by value hides it
ACCOUNT = "1234567890"
TOKEN_ENV, ACCOUNT_ENV = "SOURCES__FACEBOOK_ADS__ACCESS_TOKEN", "SOURCES__FACEBOOK_ADS__ACCOUNT_ID"
LIVE = {name: os.environ.get(name) for name in (TOKEN_ENV, ACCOUNT_ENV)}  # read before conftest clears SOURCES__*
TODAY = dt.datetime.now(dt.timezone.utc).date()
VERSION = GraphAPI.VERSIONS[-1]  # the newest the fake serves: the source's default must be it
# the deleted ad is not listed (edges never list deleted objects) but its insights load: 4 ads x 4 days
COUNTS = {"campaigns": 2, "ad_sets": 3, "ads": 3, "ad_insights": 16, "ad_insights__actions": 24}
ARCHIVED_AD, DELETED_AD = "23852000000003", "23852000000004"


def _settings(api: GraphAPI) -> dict:
    """The source pointed at the fake: pages of 3 rows (paging everywhere), quick retries, waits of at most 0.3 s."""
    return {"BASE_URL": api.url, "ACCESS_TOKEN": TOKEN, "ACCOUNT_ID": f"act_{ACCOUNT}", "PAGE_SIZE": "3",
            "BACKOFF_FACTOR": "0.001", "MAX_RETRY_WAIT": "0.3", "REQUEST_TIMEOUT": "5"}


@pytest.fixture
def graph(monkeypatch):
    with GraphAPI(TOKEN, ACCOUNT, today=TODAY) as api:
        for key, value in _settings(api).items():
            monkeypatch.setenv(f"SOURCES__FACEBOOK_ADS__{key}", value)
        yield api


@pytest.fixture
def root(tmp_path) -> Path:
    return copy_source(tmp_path / "root", "facebook_ads")


def _run(root: Path, database: Path):
    return run_source(load_project(root).sources["facebook_ads"], create_target("duckdb", str(database)))


def _day(offset: int) -> str:
    return (TODAY - dt.timedelta(days=offset)).isoformat()


def _requests(graph: GraphAPI, edge: str) -> list:
    return [r for r in graph.requests if r.path == f"/{VERSION}/act_{ACCOUNT}/{edge}"]


def _no_duplicate_keys(database: Path) -> None:
    assert query(database, "SELECT COUNT(*), COUNT(DISTINCT (ad_id, date_start)) FROM facebook_ads.ad_insights") \
        == [(16, 16)]
    for table in ("campaigns", "ad_sets", "ads"):
        assert query(database, f"SELECT COUNT(*) = COUNT(DISTINCT id) FROM facebook_ads.{table}") == [(True,)]


def _leaks(*texts: str) -> List[str]:
    return [t[max(0, t.find(TOKEN) - 80):t.find(TOKEN) + 40] for t in texts if TOKEN in t]


def _data_module():
    spec = importlib.util.spec_from_file_location("facebook_ads_data", Path(__file__).parents[1] / "dlthub" /
                                                  "facebook_ads" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_load_then_a_rerun_rereads_the_lookback_and_updates_a_restated_day(graph, root, duckdb_file):
    first = _run(root, duckdb_file)
    assert table_counts(duckdb_file, "facebook_ads") == COUNTS
    assert first.rows_loaded == COUNTS
    pipelines = Path(os.environ["FOUNDATION_PIPELINES_DIR"])
    assert TOKEN.encode() not in duckdb_file.read_bytes() and TOKEN not in _files_text(pipelines)
    _no_duplicate_keys(duckdb_file)
    # the first run: from `initial_value` to today, in contiguous windows of at most 30 days
    ranges = graph.time_ranges()
    assert ranges[0]["since"] == "2025-01-01" and ranges[-1]["until"] == TODAY.isoformat()
    windows = list(dict.fromkeys((r["since"], r["until"]) for r in ranges))  # a window's pages repeat its range
    assert len(ranges) - len(windows) == 5  # the last window holds the 16 rows: 6 pages of 3
    days = [(dt.date.fromisoformat(since), dt.date.fromisoformat(until)) for since, until in windows]
    assert all(until - since < dt.timedelta(days=30) for since, until in days)
    assert all(later[0] - earlier[1] == dt.timedelta(days=1) for earlier, later in zip(days, days[1:]))
    # paging followed the cursors, never the `next` URL, and the token went in the header only
    # ads: 4 rows, pages of 3 and 1; ad sets: 3 rows, a full page with a `next`, then a bare `{"data": []}`
    assert [bool(r.query.get("after")) for r in _requests(graph, "ads")] == [False, True]
    assert len(_requests(graph, "adsets")) == 2 and len(_requests(graph, "campaigns")) == 1
    assert not [r for r in graph.requests if "access_token" in r.query]
    assert {r.headers["authorization"] for r in graph.requests} == {f"Bearer {TOKEN}"}
    # archived and deleted objects: asked for by status (the API leaves them out otherwise), a deleted ad's spend
    # loads through the insights' filter though the ad itself can no longer be listed
    assert "ARCHIVED" in json.loads(_requests(graph, "ads")[0].query["effective_status"])
    assert "DELETED" in json.loads(_requests(graph, "insights")[0].query["filtering"])[0]["value"]
    assert query(duckdb_file, "SELECT id, effective_status FROM facebook_ads.ads WHERE effective_status <> 'ACTIVE' "
                              "UNION ALL SELECT id, effective_status FROM facebook_ads.ad_sets "
                              "WHERE effective_status <> 'ACTIVE'") == [(ARCHIVED_AD, "ARCHIVED"),
                                                                        ("23851000000003", "ARCHIVED")]
    deleted = graph.insight(DELETED_AD, TODAY)
    assert query(duckdb_file, "SELECT spend::VARCHAR FROM facebook_ads.ad_insights WHERE ad_id = ? AND date_start = ?",
                 [DELETED_AD, _day(0)]) == [(deleted["spend"],)]

    types = dict(query(duckdb_file, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_schema = 'facebook_ads' AND table_name = 'ad_insights'"))
    assert {k: types[k] for k in ("date_start", "impressions", "clicks", "spend", "ctr")} == {
        "date_start": "DATE", "impressions": "BIGINT", "clicks": "BIGINT", "spend": "DECIMAL(18,2)",
        "ctr": "DECIMAL(18,6)"}
    assert query(duckdb_file, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'facebook_ads' "
                              "AND table_name = 'campaigns' AND column_name IN ('created_time', 'daily_budget') "
                              "ORDER BY column_name") == [("TIMESTAMP WITH TIME ZONE",), ("BIGINT",)]
    ad = "23852000000001"
    expected = graph.insight(ad, TODAY - dt.timedelta(days=1))
    assert query(duckdb_file, "SELECT impressions, spend::VARCHAR, ad_name FROM facebook_ads.ad_insights "
                              "WHERE ad_id = ? AND date_start = ?", [ad, _day(1)]) == [
        (int(expected["impressions"]), expected["spend"], "Ad 1")]

    # attribution restates the day before yesterday and today, the last loaded day (the incremental's boundary,
    # where dlt drops rows it saw unless `lag` is set); the re-run reads the last loaded day minus 28 days on
    restated_days = (2, 0)
    for offset in restated_days:
        graph.restate(TODAY - dt.timedelta(days=offset))
    graph.clear()
    second = _run(root, duckdb_file)
    assert graph.time_ranges() == [{"since": _day(28), "until": TODAY.isoformat()}] * 6  # one window, 6 pages
    assert second.rows_loaded["ad_insights"] == 16  # every row of the look-back goes to the merge
    assert table_counts(duckdb_file, "facebook_ads") == COUNTS
    _no_duplicate_keys(duckdb_file)
    for offset in restated_days:
        restated = graph.insight(ad, TODAY - dt.timedelta(days=offset))
        assert query(duckdb_file, "SELECT impressions, spend::VARCHAR FROM facebook_ads.ad_insights "
                                  "WHERE ad_id = ? AND date_start = ?", [ad, _day(offset)]) == [
            (int(restated["impressions"]), restated["spend"])]
        actions = query(duckdb_file, "SELECT a.action_type, a.value FROM facebook_ads.ad_insights__actions a JOIN "
                                     "facebook_ads.ad_insights i ON a._dlt_parent_id = i._dlt_id "
                                     "WHERE i.ad_id = ? AND i.date_start = ? ORDER BY 1", [ad, _day(offset)])
        assert actions == sorted((a["action_type"], Decimal(a["value"])) for a in restated["actions"])
    assert query(duckdb_file, "SELECT impressions FROM facebook_ads.ad_insights WHERE ad_id = ? AND date_start = ?",
                 [ad, _day(1)]) == [(int(expected["impressions"]),)]  # a day not restated is unchanged


def test_an_invalid_token_and_other_client_errors_fail_at_once(graph):
    data = _data_module()
    settings = {"account_id": ACCOUNT, "base_url": graph.url, "max_attempts": 5, "backoff_factor": 0.001}
    wrong = "EAAJwrongTok3nPq7Rz4"
    with pytest.raises(data.GraphAPIError) as failed:
        list(data.fetch_objects("campaigns", access_token=wrong, **settings))
    message = str(failed.value)
    assert "code 190" in message and "Invalid OAuth access token" in message and TOKEN_ENV in message
    assert wrong not in message and graph.count() == 1  # not retried
    graph.clear()
    with pytest.raises(data.GraphAPIError, match=r"code 100, subcode 33.*does not exist"):
        list(data.fetch_objects("campaigns", access_token=TOKEN, **{**settings, "account_id": "act_999"}))
    assert graph.count() == 1


def test_an_expired_or_unknown_api_version_fails_naming_the_setting(graph):
    """The default is the newest version the API serves; an expired one (#2635) or an unknown one (#2500) fails at
    once, naming the setting to change rather than only the API's words."""
    data = _data_module()
    assert inspect.signature(data.fetch_objects).parameters["api_version"].default == VERSION
    settings = {"account_id": ACCOUNT, "access_token": TOKEN, "base_url": graph.url, "backoff_factor": 0.001}
    for version, code in (("v21.0", "code 2635"), ("v99.0", "code 2500")):
        graph.clear()
        with pytest.raises(data.GraphAPIError) as failed:
            list(data.fetch_objects("campaigns", api_version=version, **settings))
        message = str(failed.value)
        assert code in message and f"version `{version}` is expired or unknown" in message
        assert "SOURCES__FACEBOOK_ADS__API_VERSION" in message and graph.count() == 1


def test_a_long_rate_limit_and_a_too_large_request_fail_at_once(graph):
    """An ad account blocked for a day is not retried max_attempts times (each waiting max_retry_wait): the run fails
    at once saying when to run again. "Please reduce the amount of data" (500, code 1) is not retried unchanged."""
    data = _data_module()
    settings = {"account_id": ACCOUNT, "access_token": TOKEN, "base_url": graph.url, "max_attempts": 3,
                "backoff_factor": 0.001, "max_retry_wait": 0.3}
    graph.throttle("insights", account_limit(f"act_{ACCOUNT}", minutes=1440))
    with pytest.raises(data.GraphAPIError) as blocked:
        list(data.fetch_insights(start_date=_day(1), end_date=_day(1), **settings))
    expected = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=1440)
    message = str(blocked.value)
    assert "code 80004" in message and "rate-limited for about 1440 minutes" in message and graph.count() == 1
    again = dt.datetime.strptime(re.search(r"Run again after (.+) UTC$", message)[1], "%Y-%m-%d %H:%M")
    assert abs(again - expected) < dt.timedelta(minutes=2)
    graph.clear()
    graph.throttle("insights", too_much_data())
    with pytest.raises(data.GraphAPIError) as too_large:
        list(data.fetch_insights(start_date=_day(1), end_date=_day(1), **settings))
    assert "Please reduce the amount of data" in str(too_large.value)
    assert "SOURCES__FACEBOOK_ADS__WINDOW_DAYS" in str(too_large.value) and graph.count() == 1


def test_insights_windows_stay_within_what_the_api_serves(graph):
    """Never more than 37 months back (the API refuses older days, #3018); a window older than the incremental's
    start (given outside Dagster) is refused rather than fetched and silently dropped by dlt's incremental."""
    data = _data_module()
    settings = {"account_id": ACCOUNT, "access_token": TOKEN, "base_url": graph.url}
    old = [row for page in data.fetch_insights(start_date="2020-01-01", end_date=_day(365 * 3), **settings)
           for row in page]
    assert old == [] and graph.time_ranges()[0]["since"] == months_before(TODAY, 37).isoformat()
    before_start = data.fetch_insights(start_date="2025-02-01", end_date="2025-02-01",
                                       incremental=SimpleNamespace(start_value="2026-11-04"), **settings)
    with pytest.raises(ValueError, match="starts before the incremental's start 2026-11-04: dlt would drop"):
        next(before_start)


def test_a_token_expiring_mid_run_fails_clearly_and_no_output_or_file_holds_the_token(graph, root, tmp_path):
    """`--debug` with dlt logging every request at DEBUG, on a run whose token expires after the first requests (the
    DuckDB file and folder of a successful load are checked by the first test)."""
    graph.throttle("insights", expired_token())
    failed = foundation("--root", str(root), "--debug", "run", "facebook_ads", "--duckdb-file", "w.duckdb",
                        cwd=tmp_path, RUNTIME__LOG_LEVEL="DEBUG")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1
    assert "code 190, subcode 463" in flat(output) and f"set {TOKEN_ENV}" in flat(output)
    assert "Traceback" in output and "Making GET request" in output
    assert len([s for s in graph.served if s.path.endswith("/insights")]) == 1  # failed at once, not retried
    assert _leaks(output) == []
    pipelines = Path(os.environ["FOUNDATION_PIPELINES_DIR"])
    assert any(pipelines.rglob("trace.pickle"))
    assert TOKEN not in _files_text(pipelines)


def test_doctor_names_the_missing_token(root):
    """The doctor's check of the source's settings (`foundation doctor` prints it: the docs test runs that command
    on the shipped sources), with neither setting set."""
    from data_foundation.cli.doctor.sources import settings_check

    check = settings_check(load_project(root).sources["facebook_ads"])
    text = flat("\n".join([check.detail, *check.notes, *check.fixes]))
    assert check.detail == "2 required setting(s) missing"
    assert "sources.facebook_ads.access_token: MISSING" in text and f"set {TOKEN_ENV}" in text
    assert "sources.facebook_ads.account_id: MISSING" in text and ACCOUNT_ENV in text


def test_dagster_daily_partitions_and_automation_and_a_partition_run_through_rate_limits(graph, root, duckdb_file):
    defs = build_definitions(root, create_target("duckdb", str(duckdb_file)))
    assets = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition))
    assert isinstance(assets.partitions_def, dg.DailyPartitionsDefinition)
    assert assets.partitions_def.start.date() == dt.date(2025, 1, 1)
    for table in ("campaigns", "ad_sets", "ads", "ad_insights"):
        spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(["facebook_ads", table]))
        assert spec.automation_condition.get_label() == "on cron 0 7 * * * UTC, last 28 days"
        assert spec.freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=30)

    # the API rate-limits the run: the user limit (#17), the ad account's (#80004), a transient 500, the app's (403)
    graph.throttle("insights", user_limit(), account_limit(f"act_{ACCOUNT}", minutes=0.005), transient_error(2))
    graph.throttle("campaigns", app_limit(), transient_error(1))
    day = _day(1)
    result = dg.materialize([*defs.assets], resources=defs.resources, partition_key=day,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    # the window only, through the retries: 3 rate-limited answers, then 4 rows in pages of 3; the dimensions whole
    assert graph.time_ranges() == [{"since": day, "until": day}] * 5
    assert query(duckdb_file, "SELECT date_start::VARCHAR, COUNT(*) FROM facebook_ads.ad_insights GROUP BY 1") == [
        (day, 4)]
    assert table_counts(duckdb_file, "facebook_ads") == {**COUNTS, "ad_insights": 4, "ad_insights__actions": 6}
    statuses = [(s.path.rsplit("/", 1)[1], s.status) for s in graph.served if s.status != 200]
    assert sorted(statuses) == [("campaigns", 403), ("campaigns", 500), ("insights", 400), ("insights", 400),
                                ("insights", 500)]
    # the ad account's `estimated_time_to_regain_access` (0.005 minutes: 0.3 s, within max_retry_wait) set the wait;
    # the other retries waited their backoff (0.001 s)
    insights = [s.at for s in graph.served if s.path.endswith("/insights")]
    assert insights[1] - insights[0] < 0.25 and 0.3 <= insights[2] - insights[1] < 2


@pytest.mark.skipif(not all(LIVE.values()), reason=f"set {TOKEN_ENV} and {ACCOUNT_ENV} to run against the real "
                                                   "Graph API")
def test_real_graph_api():
    """The shapes the fake models, read from the real API: the token in the header, the fields asked (a field or
    version the API does not know fails the request), cursor paging to the end, yesterday's insights (numbers as
    strings, `actions` as {action_type, value})."""
    data = _data_module()
    credentials = {"account_id": LIVE[ACCOUNT_ENV], "access_token": LIVE[TOKEN_ENV], "page_size": 25}
    campaigns = [row for page in data.fetch_objects("campaigns", **credentials) for row in page]
    assert all("id" in row and set(row) <= set(data.FIELDS["campaigns"]) for row in campaigns)
    yesterday = _day(1)
    rows = [row for page in data.fetch_insights(start_date=yesterday, end_date=yesterday, **credentials)
            for row in page]
    assert all(row["date_start"] == yesterday and row["impressions"].isdigit() for row in rows)
    assert all(a["action_type"] and a["value"] >= 0 for row in rows for a in row.get("actions") or [])
