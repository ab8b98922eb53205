"""`data_foundation.unchanged`: a conditional GET answered 304 loads nothing and the `replace` table keeps its rows
(dlt would truncate it); the validators count once their rows are loaded, and a full refresh downloads again."""

from conftest import query, write_source
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target
from data_foundation.load.running import run_source

# a "server" whose file is version SOURCES__SNAP__VERSION, with that version as its ETag
DATA_PY = """
import types

import dlt
from data_foundation.unchanged import conditional_headers, mark_unchanged, remember_validators

ASKED = []


def snapshot(version=dlt.config.value, url="https://example.com/export.csv"):
    headers = conditional_headers(url)
    ASKED.append(headers)
    if headers.get("If-None-Match") == version:  # the server answers 304 Not Modified
        mark_unchanged()
        return
    yield [{"id": n, "version": version} for n in range(3 if version == "v1" else 2)]
    remember_validators(url, types.SimpleNamespace(headers={"ETag": version, "Last-Modified": "Mon, 01 Jan 2024"}))
"""
SOURCES_YAML = """
resources:
  snap.snapshot:
    entry: data.snapshot
    write_disposition: replace
"""


def test_unchanged_replace_table_keeps_its_rows_a_change_replaces_them_a_full_refresh_reloads(tmp_path, monkeypatch):
    source = load_project(write_source(tmp_path / "root", "snap", DATA_PY, SOURCES_YAML)).sources["snap"]
    asked = source.resources[0].function.__globals__["ASKED"]
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))

    def table():
        return query(tmp_path / "w.duckdb", "SELECT COUNT(*), MIN(version) FROM snap.snapshot")

    monkeypatch.setenv("SOURCES__SNAP__VERSION", "v1")
    assert run_source(source, target).rows_loaded == {"snapshot": 3}
    assert asked == [{}]

    assert run_source(source, target).rows_loaded.get("snapshot", 0) == 0
    assert asked[-1] == {"If-None-Match": "v1", "If-Modified-Since": "Mon, 01 Jan 2024"}
    assert table() == [(3, "v1")]  # kept, not truncated

    monkeypatch.setenv("SOURCES__SNAP__VERSION", "v2")
    assert run_source(source, target).rows_loaded == {"snapshot": 2}
    assert table() == [(2, "v2")]

    # a full refresh drops the table and the resource's state, not the source state: no validators are sent
    assert run_source(source, target, full_refresh=True).rows_loaded == {"snapshot": 2}
    assert asked[-1] == {}
    assert table() == [(2, "v2")]
