"""Entries of every shape -> dlt resources -> real DuckDB files: `tests/cases/valid/runtime/shapes`."""

from pathlib import Path

import pytest

from data_foundation.load.building import build_source
from data_foundation.load.destinations import create_target
from data_foundation.config.loading import load_project
from data_foundation.load.running import RunFailed, create_pipeline, run_source

from conftest import query, table_counts, write_source

RUNTIME_ROOT = Path(__file__).parent / "cases" / "valid" / "runtime"
SHAPES_TABLES = ["factory_rows", "single_rows", "one_row", "arrow_rows", "parents", "children", "typed_rows"]


@pytest.fixture(scope="module")
def project():
    return load_project(RUNTIME_ROOT)


@pytest.fixture(scope="module")
def shapes_db(project, tmp_path_factory):
    """The `shapes` source (all but `accounts`) loaded once into a DuckDB file shared by the tests below."""
    path = tmp_path_factory.mktemp("shapes") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FOUNDATION_PIPELINES_DIR", str(path.parent / "pipelines"))
        run = run_source(project.sources["shapes"], create_target("duckdb", str(path)), tables=SHAPES_TABLES)
    return path, run


def test_shapes_row_counts(shapes_db):
    path, run = shapes_db
    expected = {"factory_rows": 12, "single_rows": 7, "one_row": 1, "arrow_rows": 10, "parents": 3, "children": 5, "typed_rows": 2}
    assert table_counts(path, "shapes") == expected
    assert run.rows_loaded == expected
    assert run.rows_total == expected
    assert run.dataset == "shapes"
    assert len(run.load_ids) == 1


def test_factory_entry_is_called_with_its_arguments(shapes_db):
    path, _ = shapes_db
    # make_pages(3) returns a generator function yielding 3 pages of 4 rows
    assert query(path, "SELECT id, page FROM shapes.factory_rows ORDER BY id") == [(i, i // 4) for i in range(12)]


def test_entry_yielding_single_dicts(shapes_db):
    path, _ = shapes_db
    assert query(path, "SELECT id, square FROM shapes.single_rows ORDER BY id") == [(i, i * i) for i in range(7)]


def test_entry_returning_one_dict(shapes_db):
    path, _ = shapes_db
    assert query(path, "SELECT id, value FROM shapes.one_row") == [(1, "only")]


def test_entry_yielding_arrow_tables(shapes_db):
    path, _ = shapes_db
    assert query(path, "SELECT id, label FROM shapes.arrow_rows ORDER BY id") == [(i, f"row {i}") for i in range(10)]


def test_transformer_receives_parent_pages(shapes_db):
    path, _ = shapes_db
    assert query(path, "SELECT parent_id, n, name FROM shapes.children ORDER BY parent_id, n") == [
        (1, 0, "1-0!"), (1, 1, "1-1!"), (2, 0, "2-0!"), (2, 1, "2-1!"), (2, 2, "2-2!")]


def test_column_hints_type_the_columns(shapes_db):
    path, _ = shapes_db
    types = dict(query(path, "SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'shapes' AND table_name = 'typed_rows'"))
    # `a` and `b` share one YAML mapping (an alias): dlt writes the column name into each hint dict, so a shared
    # dict would leave only one of them typed.
    assert (types["a"], types["b"], types["c"]) == ("BIGINT", "BIGINT", "BIGINT")
    assert types["untyped"] == "VARCHAR"  # the same values without a hint stay text
    assert query(path, "SELECT id, a, b, c, untyped FROM shapes.typed_rows ORDER BY id") == [
        (1, 700, -3, 42, "700"), (2, 1, 2, 3, "x")]


def test_building_leaves_the_spec_untouched(project):
    typed = project.sources["shapes"].resource("typed_rows")
    before = {name: dict(hint) for name, hint in typed.spec.columns.items()}
    source = build_source(project.sources["shapes"], tables=["typed_rows"])
    list(source)  # extract: dlt fills in its hints
    assert typed.spec.columns == before == {"a": {"data_type": "bigint"}, "b": {"data_type": "bigint"},
                                            "c": {"data_type": "bigint"}}
    columns = source.resources["typed_rows"].columns
    assert {name: (hint.get("name"), hint["data_type"]) for name, hint in columns.items()} == {
        "a": ("a", "bigint"), "b": ("b", "bigint"), "c": ("c", "bigint")}


def test_build_source_selects_tables_and_keeps_transformer_parents(project):
    source = build_source(project.sources["shapes"], tables=["children"])
    assert list(source.selected_resources) == ["children"]
    rows = list(source)
    assert sorted(r["name"] for r in rows) == ["1-0!", "1-1!", "2-0!", "2-1!", "2-2!"]


def test_dict_write_disposition_upsert(project, tmp_path, monkeypatch):
    path = tmp_path / "upsert.duckdb"
    target = create_target("duckdb", str(path))
    source = project.sources["shapes"]
    run_source(source, target, tables=["accounts"])
    assert query(path, "SELECT id, balance, version FROM shapes.accounts ORDER BY id") == [
        (i, i * 10, 1) for i in range(1, 6)]

    monkeypatch.setenv("RUNTIME_CASE_VERSION", "2")
    run = run_source(source, target, tables=["accounts"])
    assert run.rows_loaded == {"accounts": 5}
    assert query(path, "SELECT id, balance, version FROM shapes.accounts ORDER BY id") == [
        (i, i * 20, 2) for i in range(1, 6)]

    table = create_pipeline(source, target).default_schema.get_table("accounts")
    assert table["write_disposition"] == "merge"
    assert table["x-merge-strategy"] == "upsert"
    assert table["columns"]["id"]["primary_key"] is True


THREADS_PY = '''
import threading


def fetch(pages=3):
    for page in range(pages):
        yield [{"id": page, "thread": threading.current_thread().name}]
'''


def test_parallelized_resource_runs_in_a_worker_thread(tmp_path, duckdb_file):
    """dlt drops `parallelized` from a resource that is called with its arguments: it is applied after binding."""
    root = write_source(tmp_path / "sources", "threads", THREADS_PY,
                        "resources:\n  threads.rows:\n    entry: data.fetch\n    parallelized: true\n")
    run_source(load_project(root).sources["threads"], create_target("duckdb", str(duckdb_file)))
    threads = [row[0] for row in query(duckdb_file, "SELECT DISTINCT thread FROM threads.rows")]
    assert threads and "MainThread" not in threads, threads


def test_run_overrides_that_do_not_fit_the_entry_fail_before_extracting(project):
    with pytest.raises(RunFailed, match=r"resource `shapes.single_rows`: the arguments do not fit `data.single_rows`: "
                                        r"single_rows\(\): got an unexpected keyword argument 'size'"):
        build_source(project.sources["shapes"], keyword_overrides={"single_rows": {"size": 3}})


def test_an_entry_returning_a_string_loads_one_value_not_its_characters(tmp_path, duckdb_file):
    """As if it had yielded the string: dlt loads a scalar as one row of `value`."""
    root = write_source(tmp_path / "root", "words", 'def word(text: str = "abc"):\n    return text\n',
                        "resources:\n  words.word:\n    entry: data.word\n")
    run = run_source(load_project(root).sources["words"], create_target("duckdb", str(duckdb_file)))
    assert run.rows_loaded == {"word": 1}
    assert query(duckdb_file, "SELECT value FROM words.word") == [("abc",)]
