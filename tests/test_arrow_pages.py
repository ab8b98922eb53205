"""`arrow: true`: pages of dicts become Arrow tables before dlt; same rows, keys and merge behaviour."""

from conftest import query, table_counts
from data_foundation.load.destinations import create_target
from data_foundation.config.loading import load_project
from data_foundation.load.running import run_source


def test_arrow_pages_load_like_dict_pages(tmp_path):
    folder = tmp_path / "root" / "fast"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text(
        "def rows(n=2500, version=1):\n"
        "    for start in range(0, n, 1000):\n"
        "        yield [{'id': i, 'name': f'n{i}', 'v': version, 'at': '2024-01-01T10:00:00'}\n"
        "               for i in range(start, min(start + 1000, n))]\n")
    (folder / "sources.yaml").write_text(
        "resources:\n  fast.rows:\n    entry: data.rows\n    arrow: true\n    write_disposition: merge\n"
        "    primary_key: id\n    columns: {at: {data_type: timestamp, timezone: true}}\n")
    database = tmp_path / "w.duckdb"
    source = load_project(tmp_path / "root").sources["fast"]
    first = run_source(source, create_target("duckdb", str(database)))
    assert first.rows_loaded == {"rows": 2500}
    source.resources[0].spec.keyword_arguments["version"] = 2
    run_source(source, create_target("duckdb", str(database)))
    assert table_counts(database, "fast") == {"rows": 2500}  # merged on id, not appended
    assert query(database, "SELECT MIN(v), MAX(v), COUNT(DISTINCT _dlt_load_id) FROM fast.rows") == [(2, 2, 1)]
    assert query(database, "SELECT typeof(\"at\") FROM fast.rows LIMIT 1") == [("TIMESTAMP WITH TIME ZONE",)]
