"""The Google Ads source (dlthub/google_ads) against a local fake of the REST API and Google's token endpoint: full
load with types, the look-back re-run with a restated day, a Dagster partition, quota and 5xx retries, the OAuth2
refresh-token exchange and its failures, secrets kept out of output and files, the doctor, and the real API when
credentials are set."""

import datetime as dt
import inspect
import io
import os
import re
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dlt.common.versioned_state import decompress_state
from rich.console import Console

from conftest import copy_source, query, table_counts
from fakes.google_ads_api import (CLIENT_ID, CLIENT_SECRET, CUSTOMER_ID, DEVELOPER_TOKEN, LOGIN_CUSTOMER_ID,
                                  REFRESH_TOKEN, VERSIONS, GoogleAdsAPI, quota_error, unsupported_version)
from fakes.http import Reply
from test_cli import flat, foundation
from test_secrets import _files_text
from data_foundation.cli.doctor import print_checklist, run_checks
from data_foundation.config.loading import load_project
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target
from data_foundation.load.running import run_source

SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, DEVELOPER_TOKEN)
VERSION = VERSIONS[-1]  # the newest the fake serves: the source's default must be it
ENV = "SOURCES__GOOGLE_ADS__"
# the source's own settings, read before conftest's isolation clears SOURCES__* for each test
LIVE_ENV = tuple(ENV + key for key in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "DEVELOPER_TOKEN", "CUSTOMER_ID"))
LIVE = {name: os.environ.get(name) for name in (*LIVE_ENV, ENV + "LOGIN_CUSTOMER_ID")}


def _settings(api: GoogleAdsAPI) -> dict:
    """The source's settings pointing at the fake, customer ids written as users copy them from the UI."""
    return {"BASE_URL": api.url, "TOKEN_URL": f"{api.url}/token", "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET, "REFRESH_TOKEN": REFRESH_TOKEN, "DEVELOPER_TOKEN": DEVELOPER_TOKEN,
            "CUSTOMER_ID": "123-456-7890", "LOGIN_CUSTOMER_ID": "987-654-3210", "BACKOFF_FACTOR": "0.01",
            "MAX_RETRY_DELAY": "0.05", "REQUEST_TIMEOUT": "5"}


@pytest.fixture
def api(monkeypatch):
    with GoogleAdsAPI(days=40, batch_size=25) as fake:
        for key, value in _settings(fake).items():
            monkeypatch.setenv(ENV + key, value)
        yield fake


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One copy for the module (runs never write into it): each new root costs an import probe of ~1 s."""
    return copy_source(tmp_path_factory.mktemp("google_ads_root"), "google_ads")


def _arguments(api: GoogleAdsAPI) -> dict:
    """The settings as the entry's keyword arguments, for calling it directly."""
    numbers = {"BACKOFF_FACTOR", "MAX_RETRY_DELAY", "REQUEST_TIMEOUT"}
    return {key.lower(): float(value) if key in numbers else value for key, value in _settings(api).items()}


def _source(root: Path):
    return load_project(root).sources["google_ads"]


def _entry(root: Path):
    return _source(root).resources[0].function


def _refused(root: Path):
    """The source's `GoogleAdsError` (its data.py is imported from the test's root, under a name of the loader's)."""
    return sys.modules[_entry(root).__module__].GoogleAdsError


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def _stream_requests(api: GoogleAdsAPI):
    return [r for r in api.requests_to(f"/{VERSION}/customers/") if r.path.endswith(":searchStream")]


def test_full_load_through_faults_then_a_lookback_rerun_updates_a_restated_day(api, root, duckdb_file):
    source, target = _source(root), create_target("duckdb", str(duckdb_file))
    unavailable = Reply(503, {"error": {"code": 503, "message": "The service is currently unavailable.",
                                        "status": "UNAVAILABLE"}})
    api.fail(f"/{VERSION}/", quota_error(retry_delay="0.05s"), unavailable)
    first = run_source(source, target)
    assert table_counts(duckdb_file, "google_ads") == {"campaigns": 3, "campaign_metrics": 120}
    assert first.rows_loaded == {"campaigns": 3, "campaign_metrics": 120}
    assert len(_stream_requests(api)) == 4  # two reports, one 429 and one 503 retried
    request = _stream_requests(api)[-1]
    assert (request.headers["developer-token"], request.headers["login-customer-id"]) == (DEVELOPER_TOKEN,
                                                                                          LOGIN_CUSTOMER_ID)
    assert f"/customers/{CUSTOMER_ID}/" in request.path
    assert api.date_ranges() == [("2024-01-01", _today())]  # no state yet: from the incremental's initial value
    assert [q for q in api.queries() if "WHERE" not in q][0].endswith("FROM campaign")  # campaigns: read whole
    types = dict(query(duckdb_file, "SELECT table_name || '.' || column_name, data_type FROM "
                                    "information_schema.columns WHERE table_schema = 'google_ads'"))
    assert {c: types[c] for c in ("campaigns.id", "campaign_metrics.campaign_id", "campaign_metrics.impressions",
                                  "campaign_metrics.clicks", "campaign_metrics.cost_micros",
                                  "campaign_metrics.conversions", "campaign_metrics.date")} == {
        "campaigns.id": "BIGINT", "campaign_metrics.campaign_id": "BIGINT", "campaign_metrics.impressions": "BIGINT",
        "campaign_metrics.clicks": "BIGINT", "campaign_metrics.cost_micros": "BIGINT",
        "campaign_metrics.conversions": "DOUBLE", "campaign_metrics.date": "DATE"}
    assert query(duckdb_file, "SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM google_ads.campaign_metrics "
                              "WHERE campaign_id = 1002 AND date = '2024-01-01'") == [
        (1002, dt.date(2024, 1, 1), 1861, 33, 5_000_086_000, 2.5)]
    assert query(duckdb_file, "SELECT name, status FROM google_ads.campaigns WHERE id = 1003") == [
        ("Summer video", "REMOVED")]

    # two more days; late conversions restate a day inside the 30-day look-back and one before it
    api.days = 42
    api.restate("2024-02-05", "1001", clicks=999)
    api.restate("2024-01-05", "1001", clicks=777)
    api.clear()
    second = run_source(source, target)
    assert api.date_ranges() == [("2024-01-10", _today())]  # last loaded day 2024-02-09, 30 days back
    assert second.rows_loaded["campaign_metrics"] == 33 * 3  # 2024-01-10 .. 2024-02-11: re-fetched rows kept
    assert table_counts(duckdb_file, "google_ads") == {"campaigns": 3, "campaign_metrics": 126}
    assert query(duckdb_file, "SELECT COUNT(*) FROM (SELECT DISTINCT campaign_id, date "
                              "FROM google_ads.campaign_metrics)") == [(126,)]
    clicks = dict(query(duckdb_file, "SELECT date::VARCHAR, clicks FROM google_ads.campaign_metrics "
                                     "WHERE campaign_id = 1001 AND date IN ('2024-02-05', '2024-01-05')"))
    assert clicks["2024-02-05"] == 999  # restated inside the look-back: updated
    assert clicks["2024-01-05"] != 777  # before it: not asked for again


def test_quota_error_waits_its_retry_delay_or_fails_at_once_when_longer_than_the_cap(api, root):
    """Google's 429 carries the wait in its body (`retryDelay`), not in `Retry-After`: the source waits it (0.4 s,
    where its own backoff would wait 0.01 s). A daily quota's wait (a day) longer than `max_retry_delay` is not
    retried max_attempts times: the run fails at once, saying when to run again."""
    api.fail(f"/{VERSION}/", quota_error(retry_delay="0.4s"))
    started = time.monotonic()
    pages = list(_entry(root)("campaigns", **{**_arguments(api), "max_retry_delay": 0.5}))
    waited = time.monotonic() - started
    assert [len(page) for page in pages] == [3]
    assert 0.4 <= waited < 5
    assert len(_stream_requests(api)) == 2

    api.clear()
    api.fail(f"/{VERSION}/", quota_error(retry_delay="86400s"))
    with pytest.raises(_refused(root)) as exhausted:
        list(_entry(root)("campaigns", **{**_arguments(api), "max_retry_delay": 0.5}))
    expected = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=1)
    message = str(exhausted.value)
    assert "429 RESOURCE_EXHAUSTED" in message and "exhausted for about 1440 minutes" in message
    again = dt.datetime.strptime(re.search(r"Run again after (.+) UTC$", message)[1], "%Y-%m-%d %H:%M")
    assert abs(again - expected) < dt.timedelta(minutes=2) and len(_stream_requests(api)) == 1


def test_expired_access_token_is_refreshed_once(api, root):
    settings = _arguments(api)
    api.issue_expired(1)  # the first access token is expired by the time it is used
    pages = list(_entry(root)("campaign_metrics", start_date="2024-01-02", end_date="2024-01-02", **settings))
    assert [len(page) for page in pages] == [3]
    assert [r.headers["authorization"] for r in _stream_requests(api)] == [f"Bearer {t}" for t in api.tokens]
    assert len(api.tokens) == 2

    api.clear()
    api.tokens.clear()
    api.issue_expired(2)  # the refreshed token is refused too: no loop, the API's message
    with pytest.raises(_refused(root), match="401 UNAUTHENTICATED: Request had invalid authentication credentials"):
        list(_entry(root)("campaigns", **settings))
    assert (len(api.tokens), len(_stream_requests(api))) == (2, 2)


def test_invalid_grant_fails_naming_the_setting(api, root):
    arguments = {**_arguments(api), "refresh_token": "1//revoked-refresh-token-Yy0"}
    with pytest.raises(_refused(root)) as failed:
        list(_entry(root)("campaigns", **arguments))
    assert str(failed.value) == (
        "Google's token endpoint refused the refresh token (400 invalid_grant: Token has been expired or revoked.): "
        "the refresh token is expired, revoked or not this client's: set a new one in "
        "sources.google_ads.refresh_token (SOURCES__GOOGLE_ADS__REFRESH_TOKEN)")
    assert failed.value.__cause__ is None and failed.value.__suppress_context__  # no HTTPError with the form
    assert _stream_requests(api) == []


def test_other_client_errors_fail_with_the_apis_message(api, root):
    settings = _arguments(api)
    entry = _entry(root)
    with pytest.raises(_refused(root)) as missing:
        list(entry("campaigns", **{**settings, "developer_token": None}))
    assert str(missing.value) == (
        "Google Ads API answered 400 INVALID_ARGUMENT: Request contains an invalid argument. (requestError "
        "DEVELOPER_TOKEN_PARAMETER_MISSING: The developer-token parameter is required for all requests.). Check "
        "sources.google_ads.developer_token (SOURCES__GOOGLE_ADS__DEVELOPER_TOKEN)")
    # a 401 about the developer token is not the access token's: no refresh
    api.clear()
    with pytest.raises(_refused(root), match="401 UNAUTHENTICATED: The developer token is not valid"):
        list(entry("campaigns", **{**settings, "developer_token": "wrong-dev-token-Pq5"}))
    assert (len(_stream_requests(api)), len(api.requests_to("/token"))) == (1, 1)
    # a non-stream error: one object, not an array; never retried
    api.clear()
    api.fail(f"/{VERSION}/", Reply(400, {"error": {"code": 400, "message": "Invalid JSON payload received.",
                                                  "status": "INVALID_ARGUMENT"}}))
    with pytest.raises(_refused(root), match="^Google Ads API answered 400 INVALID_ARGUMENT: Invalid JSON payload"):
        list(entry("campaigns", **settings))
    assert len(_stream_requests(api)) == 1


def test_a_sunset_or_unknown_api_version_fails_naming_the_setting(api, root):
    """The default is the newest version Google serves. A sunset (v18) or unreleased (v99) version is answered 404
    with Google's HTML page, a version about to be blocked with UNSUPPORTED_VERSION: each fails at once, naming
    `api_version`, never quoting the HTML."""
    entry, settings = _entry(root), _arguments(api)
    assert inspect.signature(entry).parameters["api_version"].default == VERSION
    for version in ("v18", "v99"):
        api.clear()
        with pytest.raises(_refused(root)) as failed:
            list(entry("campaigns", **{**settings, "api_version": version}))
        message = str(failed.value)
        assert message.startswith(f"Google Ads API answered 404 (an HTML page) on /{version}/customers/")
        assert f"version `{version}` is sunset or unknown" in message and "<" not in message
        assert "sources.google_ads.api_version (SOURCES__GOOGLE_ADS__API_VERSION)" in message
        assert len(api.requests_to(f"/{version}/")) == 1
    api.clear()
    api.fail(f"/{VERSION}/", unsupported_version(VERSION))
    with pytest.raises(_refused(root), match=r"UNSUPPORTED_VERSION: Version v26 is deprecated.*Check "
                                             r"sources.google_ads.api_version \(SOURCES__GOOGLE_ADS__API_VERSION\)$"):
        list(entry("campaigns", **settings))


def test_partition_asks_only_its_day_and_assets_carry_automation(api, root, tmp_path):
    database = tmp_path / "w.duckdb"
    defs = build_definitions(root, create_target("duckdb", str(database)))
    assets = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition))
    assert isinstance(assets.partitions_def, dg.DailyPartitionsDefinition)
    assert assets.partitions_def.get_first_partition_key() == "2024-01-01"
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs() if len(s.key.path) == 2}
    for table in ("campaigns", "campaign_metrics"):
        assert specs[table].automation_condition.get_label() == "on cron 0 7 * * * UTC, last 30 days"
        assert specs[table].freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=30)

    result = dg.materialize([*defs.assets], resources=defs.resources, partition_key="2024-01-15",
                            selection=list(assets.keys),
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert api.date_ranges() == [("2024-01-15", "2024-01-15")]
    assert table_counts(database, "google_ads") == {"campaigns": 3, "campaign_metrics": 3}

    # a tick requests the partitions of the last 30 days (the look-back), not the history
    today = dt.date.fromisoformat(_today())
    now = dt.datetime.combine(today, dt.time(7, 30), tzinfo=dt.timezone.utc)
    instance = dg.DagsterInstance.ephemeral()
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               evaluation_time=now - dt.timedelta(hours=1))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now, cursor=before.cursor)
    last_30_days = {(today - dt.timedelta(days=n)).isoformat() for n in range(1, 31)}
    assert before.total_requested == 0
    assert {table: tick.get_requested_partitions(dg.AssetKey(["google_ads", table])) for table in specs} == {
        "campaigns": last_30_days, "campaign_metrics": last_30_days}


def test_cli_output_duckdb_and_pipelines_hold_no_secret(api, root, tmp_path):
    """A successful and a failing run (the developer token refused after an access token was issued), with
    `--debug` and dlt's INFO logs: no client secret, refresh token, developer token or access token anywhere."""
    ok = foundation("--root", str(root), "--debug", "run", "google_ads", "--duckdb-file", "w.duckdb", cwd=tmp_path,
                    RUNTIME__LOG_LEVEL="INFO")
    assert ok.returncode == 0, ok.stderr
    assert table_counts(tmp_path / "w.duckdb", "google_ads_tester") == {"campaigns": 3, "campaign_metrics": 120}
    failed = foundation("--root", str(root), "--debug", "run", "google_ads", "--duckdb-file", "w.duckdb",
                        cwd=tmp_path, RUNTIME__LOG_LEVEL="INFO", **{ENV + "DEVELOPER_TOKEN": "wrong-dev-token-Pq5"})
    assert failed.returncode == 1
    text = flat(failed.stdout + failed.stderr)
    assert "401 UNAUTHENTICATED: The developer token is not valid." in text and "Traceback" in text
    assert "SOURCES__GOOGLE_ADS__DEVELOPER_TOKEN" in text
    secrets = [*SECRETS, "wrong-dev-token-Pq5", *api.tokens]
    assert len(api.tokens) >= 3  # access tokens were issued in both runs: there were some to leak
    places = {"output": ok.stdout + ok.stderr + failed.stdout + failed.stderr,
              "duckdb": _duckdb_text(tmp_path / "w.duckdb"),
              "pipelines": _files_text(Path(os.environ["FOUNDATION_PIPELINES_DIR"]))}
    assert "google_ads_tester" in places["duckdb"] and "Brand search" in places["duckdb"]  # the text is read
    assert {where: [s for s in secrets if s in text] for where, text in places.items()} == {
        "output": [], "duckdb": [], "pipelines": []}


def _duckdb_text(path: Path) -> str:
    """The file's bytes, every row of every table as text, and dlt's stored pipeline state decompressed."""
    chunks = [path.read_bytes().decode("latin-1")]
    tables = query(path, "SELECT table_schema, table_name FROM information_schema.tables")
    for schema, table in tables:
        rows = query(path, f'SELECT * FROM "{schema}"."{table}"')
        chunks.append(repr(rows))
        if table == "_dlt_pipeline_state":
            names = [c for (c,) in query(path, "SELECT column_name FROM information_schema.columns WHERE "
                                               f"table_schema = '{schema}' AND table_name = '{table}'")]
            chunks += [repr(decompress_state(row[names.index("state")])) for row in rows]
    return "\n".join(chunks)


def test_doctor_names_each_missing_secret(root, tmp_path, monkeypatch):
    """`foundation --root R doctor`'s checklist, built and printed by the functions the command calls (in process:
    a subprocess would cost the suite ~5 s of imports)."""
    monkeypatch.chdir(tmp_path)
    output = io.StringIO()
    passed = print_checklist(Console(file=output, width=200), run_checks(root, duckdb_file=str(tmp_path / "w.duckdb")))
    text = flat(output.getvalue())
    assert not passed
    assert "✗ config google_ads: 5 required setting(s) missing" in text
    for key in ("client_secret", "refresh_token", "developer_token"):
        assert f"sources.google_ads.{key}: MISSING (required: no default in data.py)" in text
        assert f"set {ENV}{key.upper()}, or `{key} = ...` under [sources.google_ads] in .dlt/secrets.toml" in text
    for key in ("client_id", "customer_id"):
        assert f"set {ENV}{key.upper()}, or `{key} = ...` under [sources.google_ads] in .dlt/config.toml" in text
    assert "1 of" in text and "checks failed" in text  # the missing settings are the only failure


@pytest.mark.skipif(not all(LIVE[name] for name in LIVE_ENV),
                    reason=f"real Google Ads API: set {', '.join(LIVE_ENV)} (and {ENV}LOGIN_CUSTOMER_ID when the "
                           "access goes through a manager account)")
def test_real_api(root, duckdb_file, monkeypatch):
    for name, value in LIVE.items():
        if value:
            monkeypatch.setenv(name, value)
    run = run_source(_source(root), create_target("duckdb", str(duckdb_file)), tables=["campaigns"])
    assert run.rows_loaded.get("campaigns", 0) == table_counts(duckdb_file, "google_ads").get("campaigns", 0)
    settings = {name.removeprefix(ENV).lower(): value for name, value in LIVE.items() if value}
    week_ago = (dt.date.today() - dt.timedelta(days=7)).isoformat()
    rows = [row for page in _entry(root)("campaign_metrics", start_date=week_ago, **settings) for row in page]
    assert all(isinstance(row["campaign_id"], int) and isinstance(row["cost_micros"], int) for row in rows)
    assert all(row["date"] >= week_ago for row in rows)
