"""The columnar fast path loads exactly what dlt's row-by-row normalizer loads (differential tests).

Every shape is loaded twice through `run_source`, with `columnar: true` (the default) and `columnar: false`, into two
DuckDB files. The tables must match: names, column names, types, nullability, and rows. dlt's ids are compared by
what they link: `_dlt_parent_id`/`_dlt_root_id` are replaced by the row they point to, `_dlt_load_id` by the load.
"""

import json
import logging
import random
from pathlib import Path
from typing import Any, Dict, List, Tuple

import duckdb
import pytest

from data_foundation.config.loading import load_project
from data_foundation.load import columnar as columnar_module
from data_foundation.load.running import RunFailed, run_source
from data_foundation.load.destinations import create_target
from conftest import write_source

DATA_PY = '''
import json
from pathlib import Path

def pages(shape: str, run: int = 0):
    """The pages of `shape` for run number `run` from shapes.json next to this file."""
    for page in json.loads((Path(__file__).parent / "shapes.json").read_text())[shape][run]:
        yield page

def items(page):
    """A transformer: the parent's `lines`, as its own table."""
    return [dict(line, order=row["id"]) for row in page for line in (row.get("lines") or [])]
'''

TS = ["2024-01-0%dT10:0%d:00" % (d, d) for d in range(1, 8)]


def _flat(rng: random.Random, n: int, start: int = 0) -> List[Dict[str, Any]]:
    return [{"id": start + i, "name": f"n{i}", "score": rng.random(), "qty": rng.randint(0, 9), "ok": i % 3 == 0,
             "when": TS[i % 7], "note": None if i % 4 else "x"} for i in range(n)]


def _nested(rng: random.Random, n: int, start: int = 0) -> List[Dict[str, Any]]:
    return [{"id": start + i, "Customer Name": f"c{i}", "address": {"City": "x", "geo": {"lat": 1.5, "lon": -2.5}},
             "tags": [f"t{j}" for j in range(i % 3)],
             "lines": [{"sku": f"s{j}", "qty": j, "extra": {"k": j}, "parts": [{"p": j}] if j % 2 else []}
                       for j in range(i % 4)]}
            for i in range(n)]


def _shapes() -> Dict[str, List[List[List[Dict[str, Any]]]]]:
    """shape -> runs -> pages -> rows."""
    rng = random.Random(7)
    shapes: Dict[str, Any] = {
        "flat": [[_flat(rng, 50), _flat(rng, 50, 50)]],
        "nested": [[_nested(rng, 20), _nested(rng, 20, 20)]],
        "nulls": [[[{"id": 1, "a": None, "b": None}, {"id": 2, "a": None, "b": 3}],
                   [{"id": 3, "a": "late", "b": None}]]],
        "int_then_float": [[[{"id": 1, "v": 1}, {"id": 2, "v": 2.5}]]],
        "float_then_int": [[[{"id": 1, "v": 1.5}, {"id": 2, "v": 2}]]],
        "mixed_types": [[[{"id": 1, "v": "a"}, {"id": 2, "v": 2}]]],
        "type_change_across_pages": [[[{"id": 1, "v": 1}], [{"id": 2, "v": "two"}]]],
        "drift": [[[{"id": 1, "a": 1}], [{"id": 2, "b": "x"}], [{"id": 3, "a": 3, "c": {"d": True}}]]],
        "timestamps": [[[{"id": 1, "t": "2024-01-01T00:00:00Z", "u": "2024-01-01 10:00:00.123456",
                          "w": "2024-03-01T10:00:00+05:30"},
                         {"id": 2, "t": "2024-06-01T12:30:00Z", "u": "2024-01-02 11:00:00",
                          "w": "2023-12-31T23:00:00-01:00"}]]],
        "timestamp_then_text": [[[{"id": 1, "t": "2024-01-01T00:00:00"}, {"id": 2, "t": "not a time"}]]],
        "impossible_date": [[[{"id": 1, "t": "2024-01-01T00:00:00"}, {"id": 2, "t": "2024-02-30T00:00:00"}]]],
        "text_then_timestamp": [[[{"id": 1, "t": "hello"}, {"id": 2, "t": "2024-01-01T00:00:00"}]]],
        "date_strings": [[[{"id": 1, "d": "2024-01-01"}, {"id": 2, "d": "2024-01-02"}]]],
        "decimal_strings": [[[{"id": 1, "amount": "10.25"}, {"id": 2, "amount": "3.10"}]]],
        "list_of_lists": [[[{"id": 1, "m": [[1, 2], [3]]}]]],
        "list_with_nulls": [[[{"id": 1, "m": [1, None, 3], "o": [{"a": 1}, None]}]]],
        "empty_lists": [[[{"id": 1, "m": [], "o": {}}, {"id": 2, "m": None}]]],
        "collision": [[[{"id": 1, "A b": 1, "a_b": 2}]]],
        "big_int": [[[{"id": 1, "v": 2 ** 70}]]],
        "bool_and_int": [[[{"id": 1, "v": True}, {"id": 2, "v": 0}]]],
        "single_dicts": [[{"id": 1, "a": 1}, {"id": 2, "a": 2}]],
        "unicode_keys": [[[{"id": 1, "Ünïcødé": "ü", "camelCase": 1, "with-dash": 2, "": 3}]]],
        "merge_runs": [[_nested(rng, 10)], [_nested(rng, 6, 4)]],
        "json_hint": [[[{"id": 1, "raw": {"a": [1, 2]}, "l": [1, 2.5]}, {"id": 2, "raw": None, "l": []}]]],
        "hinted": [[[{"id": 1, "ts": "2024-01-01T00:00:00", "d": 1, "big": 2}]]],
        "numbers_as_text": [[[{"id": 1, "n": "12", "x": "1.5"}, {"id": 2, "n": "-0034", "x": "-2"}]]],
        "number_text_dlt_reads": [[[{"id": 1, "n": "1_000"}, {"id": 2, "n": " 7 "}]]],
    }
    return shapes


def _random_rows(rng: random.Random, kinds: Dict[str, Any], n: int) -> List[Dict[str, Any]]:
    """Rows whose keys each hold one kind of value (or are missing, or null); `kinds` maps a key to its kind, or to
    the kinds of a nested object's keys (an `object`/`objects` pair)."""

    def value(kind: Any) -> Any:
        if rng.random() < 0.15:
            return None
        if isinstance(kind, tuple):
            return (_random_rows(rng, kind[1], 1)[0] if kind[0] == "object"
                    else _random_rows(rng, kind[1], rng.randint(0, 3)))
        return {"int": lambda: rng.randint(-5, 5), "float": lambda: rng.random() + 0.5,
                "text": lambda: f"s{rng.random()}", "bool": lambda: rng.random() < 0.5,
                "ts": lambda: rng.choice(TS), "null": lambda: None,
                "scalars": lambda: [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]}[kind]()

    return [{key: value(kind) for key, kind in kinds.items() if rng.random() < 0.9} for _ in range(n)]


def _random_kinds(rng: random.Random, keys: List[str], depth: int = 0) -> Dict[str, Any]:
    scalars = ["int", "float", "text", "bool", "ts", "null", "scalars"]
    kinds: Dict[str, Any] = {}
    for key in keys:
        kind = rng.choice(scalars + (["object", "objects"] if depth < 2 else []))
        if kind in ("object", "objects"):
            kind = (kind, _random_kinds(rng, [f"k{i}" for i in range(rng.randint(1, 3))], depth + 1))
        kinds[key] = kind
    return kinds


def _random_shape(seed: int) -> List[List[List[Dict[str, Any]]]]:
    rng = random.Random(seed)
    kinds = _random_kinds(rng, [f"f{i}" for i in range(rng.randint(2, 6))] + ["late"])
    early = {key: kind for key, kind in kinds.items() if key != "late"}  # schema drift: `late` from page 2 on
    pages = [_random_rows(rng, early if p == 0 else kinds, rng.randint(1, 20)) for p in range(3)]
    for i, row in enumerate(row for page in pages for row in page):
        row["id"] = i
    return [pages]


SHAPES = {**_shapes(), **{f"random_{seed}": _random_shape(seed) for seed in range(12)}}
SHAPES.pop("big_int")
MERGE = {"merge_runs", "nested", "random_0", "random_1", "random_2"}
EXTRA = {
    "json_hint": "columns: {raw: {data_type: json}, l: {data_type: json}}",
    "hinted": "columns: {ts: {data_type: timestamp}, d: {data_type: double}}",
    "numbers_as_text": "columns: {n: {data_type: bigint}, x: {data_type: double}}",
    "number_text_dlt_reads": "columns: {n: {data_type: bigint}}",
}


def _sources_yaml(columnar: bool, shapes: List[str]) -> str:
    resources = "".join(
        f"    shapes.{shape}:\n        entry: data.pages\n        arguments: [{shape}]\n"
        f"        write_disposition: {'merge' if shape in MERGE else 'append'}\n        primary_key: id\n"
        f"        columnar: {str(columnar).lower()}\n" + (f"        {EXTRA[shape]}\n" if shape in EXTRA else "")
        for shape in shapes)
    listed = ", ".join(f"shapes.{shape}" for shape in shapes)
    return f"resources:\n{resources}sources:\n    shapes:\n        resources: [{listed}]\n"


def _load(tmp: Path, shapes: Dict[str, Any], columnar: bool, monkeypatch: pytest.MonkeyPatch,
          min_rows: int = 1) -> Path:
    monkeypatch.setattr(columnar_module, "MIN_ROWS", min_rows)  # the shapes are small pages: convert them all
    root = tmp / f"root_{columnar}"
    write_source(root, "shapes", DATA_PY, _sources_yaml(columnar, sorted(shapes)))
    runs = max(len(runs) for runs in shapes.values())
    padded = {shape: pages + [[]] * (runs - len(pages)) for shape, pages in shapes.items()}
    (root / "shapes" / "shapes.json").write_text(json.dumps(padded))
    path = tmp / f"{columnar}.duckdb"
    source = load_project(root).sources["shapes"]
    for run in range(runs):
        monkeypatch.setenv("SOURCES__SHAPES__RUN", str(run))  # dlt injects it into `pages(run=...)`
        run_source(source, create_target("duckdb", str(path)))
    return path
def _tables(path: Path) -> Dict[str, Tuple[List[Tuple[str, str, str]], List[Dict[str, Any]]]]:
    """table -> (columns as (name, type, nullable), rows as dicts); only the source's dataset, no dlt tables."""
    with duckdb.connect(str(path), read_only=True) as con:
        schema = [s for (s,) in con.execute("select schema_name from information_schema.schemata").fetchall()
                  if s.startswith("shapes")][0]
        names = [t for (t,) in con.execute("select table_name from information_schema.tables where table_schema = ?",
                                           [schema]).fetchall() if not t.startswith("_dlt")]
        out = {}
        for name in names:
            columns = con.execute("select column_name, data_type, is_nullable from information_schema.columns "
                                  "where table_schema = ? and table_name = ? order by column_name",
                                  [schema, name]).fetchall()
            cursor = con.execute(f'select * from "{schema}"."{name}"')
            header = [d[0] for d in cursor.description]
            out[name] = (columns, [dict(zip(header, r)) for r in cursor.fetchall()])
    return out


def _canonical(tables: Dict[str, Any]) -> Dict[str, Any]:
    """Rows with dlt's ids replaced by what they identify: a root row by its data, a child by (parent, position)."""
    keys: Dict[str, Any] = {}
    result: Dict[str, Any] = {}
    for name in sorted(tables, key=lambda t: t.count("__")):  # parents before children
        columns, rows = tables[name]
        canon = []
        for row in rows:
            data = tuple(sorted((k, repr(v)) for k, v in row.items() if not k.startswith("_dlt_")))
            if "_dlt_parent_id" in row:
                key = (keys[row["_dlt_parent_id"]], row["_dlt_list_idx"])
            else:
                key = data
                assert row["_dlt_load_id"]
            keys[row["_dlt_id"]] = key
            root = keys.get(row["_dlt_root_id"]) if "_dlt_root_id" in row else None
            canon.append((key, data, root))
        result[name] = (columns, sorted(canon, key=repr))
    return result


# shapes dlt may load differently from what Arrow infers: they go to dlt's normalizer (the rest take the fast path)
FALLBACKS = {
    "bool_and_int": "Arrow cannot type the page", "mixed_types": "Arrow cannot type the page",
    "collision": "two fields normalize to `a_b`", "int_then_float": "column `v` may start with an int",
    "list_of_lists": "a list of lists", "list_with_nulls": "a null in a list of objects",
    "timestamp_then_text": "column `t`: timestamps in more than one form", "impossible_date": "Arrow: ",
    "type_change_across_pages": "column `v` is bigint, the page has text",
    "number_text_dlt_reads": "column `n` is bigint, the page has text that is not a plain number",
}


def test_columnar_loads_what_dlt_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """Every shape, one resource each, loaded twice (two runs where a shape has them): the same tables."""
    caplog.set_level(logging.DEBUG, logger="data_foundation.columnar")
    monkeypatch.setattr(logging.getLogger("dlt"), "handlers", [caplog.handler])  # dlt's own handler may not propagate
    fast = _tables(_load(tmp_path, SHAPES, True, monkeypatch))
    # dlt warns when the hints it reads from an Arrow table differ from the schema's: the tables declare dlt's
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if "arrow" in w.lower()] == []
    fell_back = {r.getMessage().split(":")[0].split(".")[-1]: r.getMessage() for r in caplog.records
                 if r.name == "data_foundation.columnar"}
    assert sorted(fell_back) == sorted(FALLBACKS)
    assert {s: m for s, m in fell_back.items() if FALLBACKS[s] not in m} == {}
    slow = _tables(_load(tmp_path, SHAPES, False, monkeypatch))
    assert sorted(fast) == sorted(slow)
    mismatched = [name for name in slow if fast[name][0] != slow[name][0]]
    assert not mismatched, {name: (fast[name][0], slow[name][0]) for name in mismatched}
    fast, slow = _canonical(fast), _canonical(slow)
    assert [name for name in slow if fast[name] != slow[name]] == []



def test_a_page_dlt_cannot_load_fails_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An int beyond 64 bits: Arrow refuses the page, dlt gets the dicts and fails as it always does."""
    errors = []
    for columnar in (True, False):
        with pytest.raises(RunFailed) as failed:
            _load(tmp_path, {"big_int": _shapes()["big_int"]}, columnar, monkeypatch)
        errors.append(str(failed.value).replace(str(tmp_path), ""))
    assert "Integer exceeds 64-bit range" in errors[0]
    assert errors[0] == errors[1]


def test_small_first_pages_go_to_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A first page under MIN_ROWS rows (or single dicts): dlt's cost per Arrow item would make the fast path slower,
    so the resource's dicts go to dlt."""
    caplog.set_level(logging.DEBUG, logger="data_foundation.columnar")
    shapes = {"flat": _shapes()["flat"], "single_dicts": _shapes()["single_dicts"]}
    path = _load(tmp_path, shapes, True, monkeypatch, min_rows=columnar_module.MIN_ROWS)
    assert sorted(r.getMessage() for r in caplog.records if r.name == "data_foundation.columnar") == [
        "resource shapes.flat: dlt normalizes the dicts: its first page has 50 rows, fewer than 100",
        "resource shapes.single_dicts: dlt normalizes the dicts: its first page has 1 rows, fewer than 100"]
    assert len(_tables(path)["flat"][1]) == 100
