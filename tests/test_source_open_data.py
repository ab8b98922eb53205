"""The open_data source (NYC "Motor Vehicle Collisions - Crashes", one large CSV) against a fake portal
(`fakes.open_data`): typed full load, conditional GET (304: nothing downloaded or loaded), replace on a new version
(served with a Content-Length, without a final line break), rows reaching dlt while the file still streams, 503
retried, a body cut off half way and files that must not replace the table (renamed column, header only, not UTF-8),
validators that count only with the load of their rows, and the Dagster automation."""

import datetime as dt
import inspect
import os
import re
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest
from dlt.common.runtime.collector import NullCollector
from dlt.common.versioned_state import decompress_state

from conftest import copy_source, query
from data_foundation.config.loading import load_project
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target
from data_foundation.load.running import RunFailed, run_source
from fakes.http import Reply
from fakes.open_data import ACCENTED_STREET, AWKWARD_STREET, FIRST_ID, HEADER, PATH, OpenDataPortal

ROWS, NEW_ROWS, CHUNK = 2000, 1500, 500
TYPES = {"crash_date": "DATE", "crash_time": "TIME", "borough": "VARCHAR", "zip_code": "VARCHAR",
         "latitude": "DOUBLE", "longitude": "DOUBLE", "location": "VARCHAR", "off_street_name": "VARCHAR",
         "number_of_persons_injured": "BIGINT", "number_of_cyclist_killed": "BIGINT",
         "contributing_factor_vehicle_5": "VARCHAR", "collision_id": "BIGINT", "vehicle_type_code_1": "VARCHAR"}


@pytest.fixture
def portal(monkeypatch):
    with OpenDataPortal(rows=ROWS) as fake:
        monkeypatch.setenv("SOURCES__OPEN_DATA__URL", _url(fake))
        monkeypatch.setenv("SOURCES__OPEN_DATA__CHUNK_SIZE", str(CHUNK))
        monkeypatch.setenv("SOURCES__OPEN_DATA__BACKOFF_FACTOR", "0.01")
        monkeypatch.setenv("SOURCES__OPEN_DATA__REQUEST_TIMEOUT", "5")
        yield fake


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A root holding a copy of the shipped source, shared by the module: loading it is the slow part of setup."""
    return copy_source(tmp_path_factory.mktemp("open_data_root"), "open_data")


@pytest.fixture
def source(root, portal):
    return load_project(root).sources["open_data"]


@pytest.fixture
def target(duckdb_file):
    return create_target("duckdb", str(duckdb_file))


def _table(path):
    """What the table holds, as the CSV published it: (id, zip, off street, date, injured) per row, and load ids."""
    rows = query(path, """SELECT collision_id, zip_code, off_street_name, strftime(crash_date, '%m/%d/%Y'),
                                 number_of_persons_injured::VARCHAR FROM open_data.crashes""")
    loads = {r[0] for r in query(path, "SELECT DISTINCT _dlt_load_id FROM open_data.crashes")}
    return sorted(rows), loads


def _published(portal):
    return sorted((int(r["COLLISION_ID"]), r["ZIP CODE"].strip() or None, r["OFF STREET NAME"] or None, r["CRASH DATE"],
                   r["NUMBER OF PERSONS INJURED"] or None) for r in portal.current_rows())


def _url(portal):
    return f"{portal.url}{PATH}?accessType=DOWNLOAD"


def _validators(request):
    return request.headers.get("if-none-match"), request.headers.get("if-modified-since")


def test_typed_full_load_after_503_then_304_keeps_the_table_then_new_versions_replace_it_however_served(
        source, portal, target, duckdb_file):
    portal.fail(PATH, Reply(503, "Service Unavailable", {"Retry-After": "0"}), Reply(503, "Service Unavailable"))
    first = run_source(source, target)
    assert first.rows_loaded == {"crashes": ROWS}
    assert portal.count(PATH) == 3 and portal.answers == [200]  # two 503s retried, then the file once
    assert _validators(portal.requests[-1]) == (None, None)
    published = _published(portal)
    rows, loads = _table(duckdb_file)
    assert rows == published and loads == set(first.load_ids)  # every row exactly, no duplicate key
    types = dict(query(duckdb_file, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_schema = 'open_data' AND table_name = 'crashes'"))
    assert {name: types[name] for name in TYPES} == TYPES
    assert len(types) == len(HEADER) + 2  # dlt's snake_case names of the 29 headers, `_dlt_load_id`, `_dlt_id`
    awkward, leading_zero, unlocated, accented, zip_of_spaces = (query(duckdb_file, f"""
        SELECT crash_date, crash_time, zip_code, latitude, longitude, location, off_street_name, borough,
               number_of_persons_injured FROM open_data.crashes WHERE collision_id = {FIRST_ID + index}""")[0]
        for index in (5, 3, 0, 50, 13))
    assert awkward[:2] == (dt.date(2024, 1, 6), dt.time(5, 35)) and awkward[6] == AWKWARD_STREET
    assert awkward[3:6] == (40.505, -74.195, "(40.505000, -74.1950)")
    assert leading_zero[2] == "07302"
    assert unlocated[2:6] == (None, None, None, None) and unlocated[7] is None and unlocated[8] == 1
    assert accented[6] == ACCENTED_STREET and zip_of_spaces[2] is None  # spaces only: as unknown as empty

    body_bytes = portal.body_bytes
    unchanged = run_source(source, target)
    assert _validators(portal.requests[-1]) == (portal.etag, portal.last_modified)
    assert portal.answers == [200, 304] and portal.body_bytes == body_bytes  # nothing downloaded
    assert unchanged.rows_loaded == {}
    assert _table(duckdb_file) == (published, set(first.load_ids))  # nothing loaded, nothing truncated

    old_etag = portal.etag
    portal.publish(NEW_ROWS)
    portal.content_length = True  # served whole with a Content-Length, as S3, CDNs and static servers do
    changed = run_source(source, target)
    assert portal.requests[-1].headers["if-none-match"] == old_etag and portal.answers[-1] == 200
    assert changed.rows_loaded == {"crashes": NEW_ROWS}
    assert _table(duckdb_file) == (_published(portal), set(changed.load_ids))  # exactly the new version
    assert _published(portal) != published[:NEW_ROWS]  # the injured counts changed too

    # a full refresh drops the table (and its resource state, but not the source state holding the validators):
    # the file is downloaded again unconditionally, not answered 304 onto an empty table
    portal.content_length, portal.final_line_break = False, False  # chunked, the last row without a line break
    refreshed = run_source(source, target, full_refresh=True)
    assert _validators(portal.requests[-1]) == (None, None) and portal.answers[-1] == 200
    assert refreshed.rows_loaded == {"crashes": NEW_ROWS}
    assert _table(duckdb_file) == (_published(portal), set(refreshed.load_ids))


class _RowsSeen(NullCollector):
    """dlt's progress collector: the rows extracted so far, per table, as dlt writes them."""

    def __init__(self) -> None:
        self.rows = {}

    def update(self, name, inc=1, total=None, inc_total=None, message=None, label=None) -> None:
        self.rows[name] = self.rows.get(name, 0) + inc


def test_rows_reach_dlt_while_the_rest_of_the_file_is_still_unsent(source, portal, target, duckdb_file, monkeypatch):
    monkeypatch.setenv("SOURCES__OPEN_DATA__CHUNK_SIZE", "100")
    gate = portal.hold_body(after_chunks=2)  # ~32 KiB of CSV (about 170 rows) sent, the rest held
    seen, outcome = _RowsSeen(), {}
    run = threading.Thread(target=lambda: outcome.update(run=run_source(source, target, progress=seen)))
    run.start()
    try:
        assert gate.reached.wait(10)
        deadline = time.monotonic() + 10
        while seen.rows.get("crashes", 0) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        extracted_before_the_rest, sent_before_the_rest = seen.rows.get("crashes", 0), portal.body_bytes
    finally:
        gate.open()
        run.join(30)
    assert extracted_before_the_rest == 100  # a page of 100 rows was in dlt; the next one waits for more bytes
    assert portal.body_bytes > sent_before_the_rest
    assert outcome["run"].rows_loaded == {"crashes": ROWS}
    assert _table(duckdb_file)[0] == _published(portal)


def test_a_cut_or_malformed_file_fails_the_run_keeps_the_table_and_the_next_run_downloads_again(
        source, portal, target, duckdb_file):
    first = run_source(source, target)
    v1_etag, v1_table = portal.etag, (_published(portal), set(first.load_ids))
    portal.publish(NEW_ROWS)
    portal.break_body(after_bytes=20_000)  # of ~40 KB (gzip)
    message = _rejected(source, target, duckdb_file, v1_table)
    broke_off = re.search(rf"the download of {re.escape(_url(portal))} broke off after (\d+) rows", message)
    assert broke_off and CHUNK < int(broke_off[1]) < NEW_ROWS  # a page of the cut file had been handed to dlt

    portal.header = ["Crash Date", *HEADER[1:]]  # loaded, it would be a text column and `crash_date` null everywhere
    assert (f"{_url(portal)}: the header lacks the columns ['CRASH DATE']; columns not expected: ['Crash Date']"
            in _rejected(source, target, duckdb_file, v1_table))
    portal.header, portal.encoding = list(HEADER), "cp1252"
    # the first byte that is not UTF-8 is the É of row 50 (0xc9), on line 53: the header, then row 5 takes two lines
    assert f"{_url(portal)}: line 53 is not UTF-8 (byte 0xc9)" in _rejected(source, target, duckdb_file, v1_table)
    portal.encoding = "utf-8"
    portal.publish(0)  # the header only: replacing the table with it would empty the table
    message = _rejected(source, target, duckdb_file, v1_table)
    assert f"{_url(portal)} answered 0 data rows, fewer than the 1 expected" in message
    assert "SOURCES__OPEN_DATA__MIN_ROWS" in message

    portal.publish(NEW_ROWS)
    portal.header = [*HEADER, "CRASH SEVERITY"]  # a column the file adds loads as text
    again = run_source(source, target)
    assert portal.requests[-1].headers["if-none-match"] == v1_etag  # the failed downloads' validators were not kept
    assert portal.answers == [200] * 6
    assert again.resumed == {} and again.rows_loaded == {"crashes": NEW_ROWS}  # no part of the cut file loaded
    assert _table(duckdb_file) == (_published(portal), set(again.load_ids))
    assert query(duckdb_file, f"""SELECT crash_severity, typeof(crash_severity) FROM open_data.crashes
                                  WHERE collision_id = {FIRST_ID + 7}""") == [("new 7", "VARCHAR")]


def _rejected(source, target, duckdb_file, table):
    """The run fails in extract saying the table keeps its rows, and it does: the message."""
    with pytest.raises(RunFailed) as failure:
        run_source(source, target)
    message = str(failure.value)
    assert "source `open_data` failed in step `extract`" in message
    assert "the table keeps what the last complete download loaded" in message
    assert _table(duckdb_file) == table
    return message


def _destination_validators(path):
    state = query(path, "SELECT state FROM open_data._dlt_pipeline_state ORDER BY version DESC LIMIT 1")[0][0]
    return decompress_state(state)["sources"]["open_data"]["downloads"]["crashes"]["etag"]


def test_validators_count_only_once_their_rows_are_loaded(source, portal, target, duckdb_file):
    """The validators travel in the load package's state with the rows: a load that fails after a complete download
    leaves the destination's validators at the old version, and the next run loads the package, then asks with the
    new ones."""
    first = run_source(source, target)
    v1_etag, v1_rows = portal.etag, _published(portal)
    portal.publish(NEW_ROWS)
    gate = portal.hold_body(after_chunks=1)
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(error=_failure(source, target)))
    run.start()
    assert gate.reached.wait(10)
    holder = _lock_duckdb(duckdb_file)  # another writer takes the file before the load step
    try:
        gate.open()
        run.join(30)
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert "failed in step `load`" in outcome["error"] and "in use by another process" in outcome["error"]
    assert portal.answers == [200, 200]  # the new version was downloaded whole
    assert _table(duckdb_file) == (v1_rows, set(first.load_ids))
    assert _destination_validators(duckdb_file) == v1_etag

    resumed = run_source(source, target)
    assert resumed.resumed == {"crashes": NEW_ROWS}  # the downloaded package was loaded first ...
    assert portal.requests[-1].headers["if-none-match"] == portal.etag and portal.answers[-1] == 304  # ... then 304
    assert _table(duckdb_file)[0] == _published(portal)
    assert _destination_validators(duckdb_file) == portal.etag


def _failure(source, target):
    try:
        run_source(source, target)
    except RunFailed as exc:
        return str(exc)
    return "the run did not fail"


def _lock_duckdb(path):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('locked', flush=True); sys.stdin.read()", str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_dagster_asset_is_materialized_when_missing_and_polled_daily(root):
    defs = build_definitions(root, create_target("duckdb", ":memory:"))
    key = dg.AssetKey(["open_data", "crashes"])
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == key)
    assert spec.kinds == {"dlt", "duckdb", "csv"}
    assert spec.automation_condition.get_label() == "missing or changed, on cron 0 5 * * * UTC"
    assert spec.freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=30)
    assert spec.description.startswith("All collisions of the published CSV")
    assert spec.metadata["data_foundation/write_disposition"] == "replace"
    assert spec.metadata["data_foundation/primary_key"] == "collision_id"
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime(2024, 6, 3, 6, 0, tzinfo=dt.timezone.utc)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    assert result.get_requested_partitions(key) == {None}  # missing: requested
    instance.report_runless_asset_event(dg.AssetMaterialization(key))
    requested = []
    for hours in (1, 25, 26, 24 * 8):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=now + dt.timedelta(hours=hours))
        requested.append(result.total_requested)
        if result.total_requested:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))  # the requested run
    assert requested == [0, 1, 0, 1]  # materialized: again at each daily poll (05:00 UTC), once


@pytest.mark.skipif(os.environ.get("FOUNDATION_LIVE_TESTS") != "1",
                    reason="talks to data.cityofnewyork.us: set FOUNDATION_LIVE_TESTS=1 to run it")
def test_live_first_pages_of_the_real_export(root, tmp_path, monkeypatch):
    import dlt
    import requests

    from data_foundation.load.building import build_source

    monkeypatch.setenv("SOURCES__OPEN_DATA__CHUNK_SIZE", "1000")
    source = load_project(root).sources["open_data"]
    built = build_source(source)
    built.resources["crashes"].add_limit(2)  # two pages, then the download is closed: not the whole ~500 MB
    pipeline = dlt.pipeline("open_data_live", destination=dlt.destinations.duckdb(str(tmp_path / "live.duckdb")),
                            dataset_name="open_data", pipelines_dir=str(tmp_path / "pipelines"))
    pipeline.run(built)
    path = tmp_path / "live.duckdb"
    assert query(path, "SELECT COUNT(*), COUNT(DISTINCT collision_id) FROM open_data.crashes") == [(2000, 2000)]
    types = dict(query(path, "SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'open_data' AND table_name = 'crashes'"))
    assert {name: types[name] for name in TYPES} == TYPES
    assert query(path, "SELECT MIN(crash_date) >= DATE '2012-07-01' FROM open_data.crashes") == [(True,)]
    url = inspect.signature(source.resource("crashes").function).parameters["url"].default
    with requests.get(url, stream=True, timeout=60) as response:  # headers only: closed before the body is read
        assert response.status_code == 200
        assert response.headers.get("ETag") or response.headers.get("Last-Modified")  # what the conditional GET sends
