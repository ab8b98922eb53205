"""`mark_unchanged`: a `replace` resource whose data did not change keeps its table (dlt would truncate it)."""

from conftest import query, write_source
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target
from data_foundation.load.running import run_source

DATA_PY = """
import dlt
from data_foundation.unchanged import mark_unchanged


def snapshot(version=dlt.config.value):
    # not `resource_state()`: dlt resets the state of a `replace` resource at the start of every extract
    state = dlt.current.source_state().setdefault("snapshot", {})
    if state.get("version") == version:
        mark_unchanged()
        return
    state["version"] = version
    yield [{"id": n, "version": version} for n in range(3 if version == "v1" else 2)]


def empty():
    return
    yield
"""
SOURCES_YAML = """
resources:
  snap.snapshot:
    entry: data.snapshot
    write_disposition: replace
  snap.empty:
    entry: data.empty
    write_disposition: replace
"""


def test_unchanged_replace_table_keeps_its_rows_and_a_change_replaces_them(tmp_path, monkeypatch):
    source = load_project(write_source(tmp_path / "root", "snap", DATA_PY, SOURCES_YAML)).sources["snap"]
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SOURCES__SNAP__VERSION", "v1")
    assert run_source(source, target).rows_loaded == {"snapshot": 3}

    unchanged = run_source(source, target)
    assert unchanged.rows_loaded.get("snapshot", 0) == 0
    assert query(tmp_path / "w.duckdb", "SELECT COUNT(*), MIN(version) FROM snap.snapshot") == [(3, "v1")]

    monkeypatch.setenv("SOURCES__SNAP__VERSION", "v2")
    assert run_source(source, target).rows_loaded == {"snapshot": 2}
    assert query(tmp_path / "w.duckdb", "SELECT COUNT(*), MIN(version) FROM snap.snapshot") == [(2, "v2")]
