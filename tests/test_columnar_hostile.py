"""Hostile differential tests of the columnar fast path (`load/columnar.py`): a shape loaded with `columnar: true`
must give exactly the tables `columnar: false` (dlt's row-by-row normalizer) gives.

Every shape is a resource of one source, loaded twice into two DuckDB files (the `batch` fixture loads most of them
once for all tests; shapes that fail a run get their own loads). A failing test here is a report: its docstring says
what dlt does and what the fast path does. Speed is measured by `bench/throughput.py`, not here.
"""

import enum
import json
import pickle
from pathlib import Path
from typing import Any, Dict, List

import duckdb
import pytest

from conftest import write_source
from data_foundation.config.loading import load_project
from data_foundation.load import columnar as columnar_module
from data_foundation.load.destinations import create_target
from data_foundation.load.running import RunFailed, run_source


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


DATA_PY = '''
import pickle
from pathlib import Path

def _shapes():
    return pickle.loads((Path(__file__).parent / "shapes.pkl").read_bytes())

def pages(shape: str, run: int = 0):
    """The pages of `shape` for run `run`."""
    for page in _shapes()[shape][run]:
        yield page

def single(shape: str, run: int = 0):
    """The rows of `shape` for run `run`, one dict at a time."""
    for page in _shapes()[shape][run]:
        for row in page:
            yield row

def mixed(shape: str, run: int = 0):
    """The pages of `shape`, each followed by an Arrow table of rows of the same table (with dlt's `_dlt_id`)."""
    import pyarrow as pa
    for page in _shapes()[shape][run]:
        yield page
        yield pa.Table.from_pylist([{"id": row["id"] + 1000, "a": row.get("a"), "_dlt_id": f"arrow{row['id']}"}
                                    for row in page])

def named(shape: str, run: int = 0):
    """The pages of `shape`, each marked for the table `named_other`."""
    import dlt
    for page in _shapes()[shape][run]:
        yield dlt.mark.with_table_name(page, "named_other")

def row_transformer(item):
    """Expects what dlt hands a transformer of a resource that yields single dicts: one dict."""
    return {"parent_id": item["id"], "kind": type(item).__name__}

def mutating(page):
    """A transformer that changes its parent's dicts (adds a key, rewrites a value) and yields nothing of its own."""
    for row in page:
        row["added_by_transformer"] = 1
        row["id"] = row["id"] * 100
    return []
'''


def _yaml(columnar: bool, resources: Dict[str, Dict[str, Any]]) -> str:
    """`resources`: name -> {entry, write_disposition, primary_key, extra (yaml lines), data_from}."""
    out = "resources:\n"
    for name, spec in resources.items():
        out += f"    hostile.{name}:\n"
        out += f"        entry: data.{spec.get('entry', 'pages')}\n"
        if not spec.get("data_from"):
            out += f"        arguments: [{spec.get('shape', name)}]\n"
        else:
            out += f"        data_from: hostile.{spec['data_from']}\n"
        out += f"        write_disposition: {spec.get('write_disposition', 'append')}\n"
        if spec.get("primary_key", "id"):
            out += f"        primary_key: {spec.get('primary_key', 'id')}\n"
        out += f"        columnar: {str(columnar).lower()}\n"
        for line in spec.get("extra", []):
            out += f"        {line}\n"
    listed = ", ".join(f"hostile.{name}" for name in resources)
    return out + f"sources:\n    hostile:\n        resources: [{listed}]\n"


def _load(tmp: Path, shapes: Dict[str, Any], resources: Dict[str, Dict[str, Any]], columnar: Any,
          monkeypatch: pytest.MonkeyPatch, tag: str = "") -> Path:
    """Load every resource (its shape's runs) into `tmp/<tag><columnar>.duckdb`; `columnar` may be a list, one value
    per run (the same pipeline and database, the sources root rewritten between runs)."""
    monkeypatch.setattr(columnar_module, "MIN_ROWS", 1)  # small pages, converted all the same
    runs = max(len(r) for r in shapes.values())
    padded = {shape: list(r) + [[]] * (runs - len(r)) for shape, r in shapes.items()}
    modes = columnar if isinstance(columnar, list) else [columnar] * runs
    path = tmp / f"{tag}{'_'.join(map(str, modes))}.duckdb"
    for run in range(runs):
        root = tmp / f"root_{tag}{'_'.join(map(str, modes))}_{run}"
        spec = resources[run] if isinstance(resources, list) else resources
        write_source(root, "hostile", DATA_PY, _yaml(modes[run], spec))
        (root / "hostile" / "shapes.pkl").write_bytes(pickle.dumps(padded))
        source = load_project(root).sources["hostile"]
        monkeypatch.setenv("SOURCES__HOSTILE__RUN", str(run))
        run_source(source, create_target("duckdb", str(path)))
    return path


def _tables(path: Path) -> Dict[str, Any]:
    """table -> (columns as (position, name, type, nullable), rows as dicts)."""
    with duckdb.connect(str(path), read_only=True) as con:
        schema = [s for (s,) in con.execute("select schema_name from information_schema.schemata").fetchall()
                  if s.startswith("hostile")][0]
        names = [t for (t,) in con.execute("select table_name from information_schema.tables where table_schema = ?",
                                           [schema]).fetchall() if not t.startswith("_dlt")]
        out = {}
        for name in names:
            columns = con.execute("select ordinal_position, column_name, data_type, is_nullable "
                                  "from information_schema.columns where table_schema = ? and table_name = ? "
                                  "order by ordinal_position", [schema, name]).fetchall()
            cursor = con.execute(f'select * from "{schema}"."{name}"')
            header = [d[0] for d in cursor.description]
            out[name] = (columns, [dict(zip(header, r)) for r in cursor.fetchall()])
    return out


def _canonical(tables: Dict[str, Any]) -> Dict[str, Any]:
    """Rows with dlt's ids replaced by what they identify: a root row by its data, a child by (parent, position)."""
    keys: Dict[str, Any] = {}
    result: Dict[str, Any] = {}
    for name in sorted(tables, key=lambda t: t.count("__")):
        columns, rows = tables[name]
        canon = []
        for row in rows:
            data = tuple(sorted((k, repr(v)) for k, v in row.items() if not k.startswith("_dlt_")))
            if "_dlt_parent_id" in row:
                key = (keys.get(row["_dlt_parent_id"], "ORPHAN"), row["_dlt_list_idx"])
            else:
                key = data
            keys[row.get("_dlt_id")] = key
            root = keys.get(row["_dlt_root_id"], "ORPHAN") if "_dlt_root_id" in row else None
            canon.append((key, data, root))
        result[name] = (columns, sorted(canon, key=repr))
    return result


def _differences(fast: Dict[str, Any], slow: Dict[str, Any], order: bool = False) -> Dict[str, Any]:
    """table -> what differs (missing table, columns, rows); the columns' order only when `order`."""
    fast, slow = _canonical(fast), _canonical(slow)
    out: Dict[str, Any] = {}

    def columns(table: Any) -> Any:
        return [c[1:] for c in table[0]] if order else sorted(c[1:] for c in table[0])

    for name in sorted(set(fast) | set(slow)):
        if name not in fast or name not in slow:
            out[name] = "only with columnar" if name in fast else "only with dlt"
        elif columns(fast[name]) != columns(slow[name]):
            out[name] = {"columnar": columns(fast[name]), "dlt": columns(slow[name])}
        elif fast[name][1] != slow[name][1]:
            out[name] = {"columnar": fast[name][1][:5], "dlt": slow[name][1][:5]}
    return out


def _stored_schema(path: Path) -> Dict[str, Any]:
    """The dlt schema the last load stored in the destination (`_dlt_version`)."""
    with duckdb.connect(str(path), read_only=True) as con:
        schema = [s for (s,) in con.execute("select schema_name from information_schema.schemata").fetchall()
                  if s.startswith("hostile")][0]
        stored = con.execute(f'select schema from "{schema}"._dlt_version order by inserted_at desc limit 1').fetchone()
    return json.loads(stored[0])


def _outcome(tmp: Path, monkeypatch: pytest.MonkeyPatch, shapes: Dict[str, Any],
             resources: Dict[str, Dict[str, Any]], columnar: bool) -> Any:
    """The tables a load gives, or the failed step's message."""
    try:
        return _tables(_load(tmp, shapes, resources, columnar, monkeypatch))
    except RunFailed as exc:
        return f"failed: {str(exc)[:400]}"


# --- one batch of shapes, loaded once both ways (two runs), that the tests below look into ----------------------

NAN, INF = float("nan"), float("inf")
PUA = 0xF026  # dlt's typed-json markers: Decimal, datetime, date, UUID, hexbytes, base64 bytes, ...


def _nested(n: int, start: int = 0, shrink: bool = False) -> List[Dict[str, Any]]:
    return [{"id": start + i, "o": {"x": i}, "t": f"2024-01-0{1 + i % 7}T00:00:00", "f": i + 0.5,
             "tags": [f"t{j}" for j in range(0 if shrink else i % 3)],
             "lines": [{"sku": f"s{j}", "parts": [{"p": j}]} for j in range(1 if shrink else i % 3)]} for i in range(n)]


ROWS = [{"id": i, "a": i, "o": {"c": f"2024-01-0{1 + i % 7}T00:00:00"}, "l": [i, i + 1]} for i in range(10)]

# shapes where the fast path loads something else than dlt: shape -> runs -> pages -> rows
DIVERGENT: Dict[str, Any] = {
    "dunder": [[[{"id": 1, "a__b": 1, "__typename": "T", "x__": 2, "n": {"c__d": 3}, "l__m": [1, 2]}]]],
    "nan": [[[{"id": 1, "f": NAN, "g": INF, "k": 1.5}, {"id": 2, "f": 1.5, "g": -INF, "k": NAN}]]],
    "nan_child": [[[{"id": 1, "m": [1.5, NAN, INF]}]]],
    "nan_first": [[[{"id": 1, "v": NAN}, {"id": 2, "v": 1}, {"id": 3, "v": 2.5}]]],
    "subclass_json": [[[{"id": 1, "o": __import__("collections").OrderedDict(raw={"a": 1}, x=1)}]]],
    "year_zero": [[[{"id": 1, "t": "2024-01-01T00:00:00"}, {"id": 2, "t": "0000-01-01T00:00:00"}]]],
    "year_zero_child": [[[{"id": 1, "m": ["2024-01-01T00:00:00", "0000-01-01T00:00:00"]}]]],
    "was_merge": [[[{"id": 1, "l": []}]], [[{"id": 2, "l": [1, 2]}]]],
    "ms_hint": [[[{"id": 1, "t": "2024-01-01T00:00:00.123456"}]]],
    "pua": [[[{"id": 1, "d": chr(PUA) + "12.5", "t": chr(PUA + 1) + "2024-01-01T00:00:00",
               "b": chr(PUA + 5) + "aGVsbG8="}]]],
    "mutated": [[[{"id": 1, "a": 1}, {"id": 2, "a": 2}]]],
    "order_key": [[[{"id": 1, "a": 1}]]],
    "order_drift": [[[{"a": {"x": 1}}, {"a": {"x": 2, "y": 3}, "b": 4}]]],
    "stored": [[[{"id": 1, "t": "2024-01-01T00:00:00", "l": [{"a": 1}]}]]],
}

# shapes the fast path loads exactly as dlt (kept: the existing differential test does not cover them)
HELD: Dict[str, Any] = {
    # values
    "floats": [[[{"id": 1, "h": -0.0, "k": 1e308, "s": 5e-324}, {"id": 2, "h": 0.0, "k": -1e308, "s": 1.0}]]],
    "int_edges": [[[{"id": 1, "i": 2 ** 63 - 1, "j": -2 ** 63}, {"id": 2, "i": 0, "j": 0}]]],
    "strings": [[[{"id": 1, "s": "", "t": "a\x00b", "u": "\U0001F600" * 3, "v": "x" * 100_000, "w": " "}]]],
    "py_objects": [[[{"id": 1, "d": __import__("decimal").Decimal("1.5"),
                      "t": __import__("datetime").datetime(2024, 1, 1),
                      "dd": __import__("datetime").date(2024, 1, 1), "u": __import__("uuid").UUID(int=5), "b": b"xy",
                      "tm": __import__("datetime").time(10, 0)}]]],
    "enums_tuples": [[[{"id": 1, "c": Color.RED, "l": Level.HIGH, "t": (1, 2), "td": ({"a": 1}, {"a": 2})}]]],
    "int_keys": [[[{"id": 1, 1: "a", "o": {2: "b"}}]]],
    "ordered_rows": [[[__import__("collections").OrderedDict(id=1, a=1, o={"x": 1})]]],
    "float_inference": [[[{"id": 1, "v": 1.0, "m": [0.5, 2], "p": [{"x": 2.5}, {"x": 1}]}, {"id": 2, "v": 2}]]],
    "whole_float_in_child": [[[{"id": 1, "l": [1.0, 2.5]}]]],
    "nested_int_then_float": [[[{"id": 1, "o": {"v": 1}}, {"id": 2, "o": {"v": 2.5}}]]],
    "numeric_text_pages": [[[{"id": 1, "v": 1, "w": 1.5}], [{"id": 2, "v": "007", "w": "2.50"}],
                            [{"id": 3, "v": "-0", "w": "-0"}], [{"id": 4, "v": " 5", "w": "1e3"}]]],
    # timestamps
    **{f"ts_{name}": [[[{"id": 1, "t": first}, {"id": 2, "t": second}]]] for name, first, second in [
        ("space_z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00-00:00"), ("year1", "0001-01-01T00:00:00", None),
        ("no_colon", "2024-01-01T00:00:00+0530", "2024-01-01T00:00:00"), ("week", "2024-W01-1T00:00:00", "x"),
        ("ordinal", "2024-001T00:00:00", "2024-01-01"), ("nanos", "2024-01-01T00:00:00.1234567", None),
        ("lower", "2024-01-01t00:00:00z", None), ("t24", "2024-01-01T24:00:00", None),
        ("leap_second", "2016-12-31T23:59:60", None),
        ("offsets", "2024-01-01T00:00:00+23:59", "2024-01-01T00:00:00-12:45"),
        ("date_only", "2024-01-01", "2024-01-02"), ("basic", "20240101T000000", None),
        ("pre_epoch", "1969-12-31T23:59:59.999999", "1970-01-01T00:00:00"), ("minutes", "2024-01-01T00:00", None),
        ("then_empty", "2024-01-01T00:00:00", ""), ("empty_first", "", "2024-01-01T00:00:00")]},
    "ts_nested": [[[{"id": 1, "o": {"t": "2024-01-01T00:00:00+05:30"}}, {"id": 2, "o": {"t": "2024-01-01T00:00:00"}}]]],
    # keys
    "blank_keys": [[[{"id": 1, "  ": 1, "\t": 2}]]],
    "camel_collision": [[[{"id": 1, "userId": 1, "UserID": 3}]]],
    "keys": [[[{"id": 1, "  ": 1, "a.b": 1, "a": {"c": 2, "": 3}, "k" * 300: 1, "userId": 1,
                "o": {"_dlt_id": "x", "x" * 300: 2}, "l" * 200: [1], "l": [1], "value": 5}]]],
    "same_child_two_ways": [[[{"id": 1, "a": {"b": [1]}, "ab": [2]}]]],
    # nesting
    "deep": [[[{"id": 1, "a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}, "z": [{"b": [{"c": [{"d": [1, 2]}]}]}]}]]],
    "lists": [[[{"id": 1, "m": [1, None, 3], "n": [None, None], "e": [{}, {}], "v": [{"value": 1}],
                 "lo": [{"o": {"m": [1, 2]}}]}, {"id": 2, "m": [None], "o": None}]]],
    "mixed_list": [[[{"id": 1, "mx": [1, {"a": 1}]}]]],
    "empty_lists_in_list": [[[{"id": 1, "ll": [[], []]}]]],
    "dict_or_list": [[[{"id": 1, "a": {"x": 1}}, {"id": 2, "a": [1]}]]],
    "drift_pages": [[[{"id": 1, "a": {"x": 1}, "b": [1, 2], "c": "x"}], [{"id": 2, "a": 5, "b": "x", "c": [1]}],
                     [{"id": 3, "l": [{"a": 1}]}], [{"id": 4, "l": [{"b": "x"}]}],
                     [{"id": 5, "l": [{"a": "y", "c": True}]}],
                     [], [{"id": 6}, {"id": 7, "a": 1, "o": {"x": 1}, "l": [{"a": 2}]}]]],
    # dispositions, hints and features
    "merge_children": [[_nested(5)], [_nested(4, 1, shrink=True)]],
    "merge_no_key": [[_nested(3)], [_nested(3)]],
    "replace_children": [[_nested(4)], [_nested(2, shrink=True)]],
    "merge_compound": [[[{"id": 1, "k": "a", "l": [1, 2]}, {"id": 1, "k": "b", "l": [3]}]],
                       [[{"id": 1, "k": "a", "l": [9]}]]],
    "incremental_nested": [[ROWS[:6], ROWS[4:]], [ROWS[3:9]]],
    "incremental_ts": [[[{"id": i, "t": f"2024-01-0{1 + i}T00:00:00", "l": [i]} for i in range(4)]],
                       [[{"id": i, "t": f"2024-01-0{1 + i}T00:00:00", "l": [i]} for i in range(2, 6)]]],
    "incremental_merge": [[[{"id": i, "t": f"2024-01-0{1 + i}T00:00:00", "l": [i] * i} for i in range(4)]],
                          [[{"id": i, "t": f"2024-01-0{1 + i}T00:00:00", "l": [i]} for i in range(2, 6)]]],
    "scd2": [[[{"id": 1, "a": 1, "l": [1]}]], [[{"id": 1, "a": 2, "l": [2]}]]],
    "upsert": [[[{"id": 1, "a": 1, "l": [1]}]], [[{"id": 1, "a": 2, "l": [2]}]]],
    "contract": [[[{"id": 1, "a": 1}]], [[{"id": 2, "a": 2, "b": 3}]]],
    "pii": [[[{"id": 1, "email": "a@b", "o": {"x": 1}, "l": [1]}]]],
    "named": [[[{"id": 1, "a": 1, "l": [1]}]]],
    "parallel": [[ROWS[:5], ROWS[5:]]],
    "nesting": [[[{"id": 1, "o": {"x": {"y": 1}}, "l": [{"m": [1]}]}]]],
    "json_hints": [[[{"id": 1, "j": {"a": [1, 2], "b": {"c": None}, "c": "\u00e9"}, "l": [{"a": 1}],
                     "o": {"raw": {"a": [1]}, "x": 1}},
                    {"id": 2, "j": None, "l": [], "o": {"raw": None, "x": 2}}]]],
    "hints": [[[{"id": 1, "ts": "2024-01-01T00:00:00", "tsz": "2024-01-01T00:00:00+05:30", "d": 1, "bd": 2 ** 53 + 1,
                 "txt": "2024-01-01T00:00:00", "u": 1, "tz": "2024-01-01T00:00:00", "ip": 300, "nn": 1,
                 "hx": {"x": 1}, "ox": {"x": 1}},
                {"id": 2, "ts": None, "tsz": "2024-01-01T00:00:00Z", "d": None, "bd": None, "txt": None, "u": 2,
                 "tz": None, "ip": None, "nn": 2, "hx": None, "ox": None}]]],
}
HINTS = ("columns: {ts: {data_type: timestamp}, tsz: {data_type: timestamp}, d: {data_type: double}, "
         "bd: {data_type: double}, txt: {data_type: text}, u: {unique: true}, tz: {timezone: false}, "
         "ip: {precision: 16}, nn: {nullable: false}, hx: {data_type: bigint}, ox__x: {data_type: double}}")
RESOURCES: Dict[str, Any] = {
    "was_merge": [{"write_disposition": "merge"}, {"write_disposition": "append"}],
    "ms_hint": {"extra": ["columns: {t: {precision: 3}}"]},
    "subclass_json": {"extra": ["columns: {o__raw: {data_type: json}}"]},
    "mutated_transformer": {"entry": "mutating", "data_from": "mutated", "primary_key": None},
    "order_drift": {"primary_key": None},
    "merge_children": {"write_disposition": "merge"},
    "merge_no_key": {"write_disposition": "merge", "primary_key": None},
    "replace_children": {"write_disposition": "replace"},
    "merge_compound": {"write_disposition": "merge", "primary_key": "[id, k]"},
    "incremental_nested": {"extra": ["incremental: {cursor_path: o.c}"]},
    "incremental_ts": {"extra": ["incremental: {cursor_path: t, initial_value: '2024-01-02T00:00:00'}"]},
    "incremental_merge": {"write_disposition": "merge", "extra": ["incremental: {cursor_path: t}"]},
    "scd2": {"write_disposition": "{disposition: merge, strategy: scd2}", "primary_key": None},
    "upsert": {"write_disposition": "{disposition: merge, strategy: upsert}"},
    "contract": {"extra": ["schema_contract: discard_value"]},
    "pii": {"extra": ["pii: {hash: [email]}"]},
    "named": {"entry": "named"},
    "parallel": {"extra": ["parallelized: true"]},
    "nesting": {"extra": ["max_table_nesting: 1"]},
    "json_hints": {"extra": ["columns: {j: {data_type: json}, l: {data_type: json}, o__raw: {data_type: json}}"]},
    "hints": {"extra": [HINTS]},
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """DIVERGENT and HELD loaded both ways (two runs); the tables, the stored schemas and the resources that fell
    back to dlt."""
    import logging

    tmp = tmp_path_factory.mktemp("batch")
    shapes = {**DIVERGENT, **HELD}
    names = list(shapes) + ["mutated_transformer"]
    per_run = [{name: (RESOURCES.get(name, {})[run] if isinstance(RESOURCES.get(name), list)
                       else RESOURCES.get(name, {})) for name in names} for run in range(2)]
    records: List[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("data_foundation.columnar")
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FOUNDATION_PIPELINES_DIR", str(tmp / "pipelines"))
            mp.setenv("RUNTIME__LOG_LEVEL", "WARNING")
            mp.setenv("FOUNDATION_USER", "tester")
            mp.setenv("DATA_FOUNDATION__PII_SALT", "salt")
            fast = _load(tmp, shapes, per_run, True, mp)
            slow = _load(tmp, shapes, per_run, False, mp)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return {"fast": _tables(fast), "slow": _tables(slow), "fast_schema": _stored_schema(fast),
            "slow_schema": _stored_schema(slow), "fell_back": records}


def _diff(batch: Dict[str, Any], *shapes: str, order: bool = False) -> Dict[str, Any]:
    """The differences in the tables of `shapes` (a shape's table and its child tables)."""
    def pick(tables: Dict[str, Any]) -> Dict[str, Any]:
        return {n: t for n, t in tables.items() if any(n == s or n.startswith(s + "__") for s in shapes)}

    return _differences(pick(batch["fast"]), pick(batch["slow"]), order)


def test_keys_with_double_underscores_are_named_as_dlt_names_them(batch: Dict[str, Any]) -> None:
    """dlt normalizes a key with `normalize_path` (the schema's `use_break_path_on_normalize`, on by default) and a
    list's key with `normalize_tables_path`: `a__b` stays `a__b`, `__typename` becomes `typename`, `x__` becomes `x`,
    `{"n": {"c__d": 3}}` becomes `n__c__d`, the list `l__m` the child table `dunder__l__m`. The fast path uses
    `normalize_identifier`/`normalize_table_identifier`, which collapse the separator: columns `a_b`, `_typename`,
    `xxx`, `n__c_d` and the child table `dunder__l_m` (columnar.py `_Converter._table`: `norm = ...` and `list_path`;
    also the root table name in `page`). GraphQL's `__typename` is a common key."""
    assert _diff(batch, "dunder") == {}


def test_nan_and_infinity_load_as_dlt_loads_them(batch: Dict[str, Any]) -> None:
    """dlt writes extracted dicts as JSON (orjson), which turns NaN and +-inf into null: dlt loads NULL (a column
    with only NaN/inf gets no type and is not created: `g`), and a column whose first value is NaN is typed by the
    next value (`nan_first`: bigint from 1, then a `v__v_double` variant for 2.5). The fast path loads NaN and inf
    as they are, creates `g`, and types `nan_first.v` double (`_Converter._scalar`/`_starts_with_float`: NaN counts
    as a first float; no NaN/inf check anywhere)."""
    assert _diff(batch, "nan", "nan_child", "nan_first") == {}


def test_a_json_column_under_a_dict_subclass_keeps_its_value(batch: Dict[str, Any]) -> None:
    """A row `{"o": OrderedDict(raw={"a": 1}, x=1)}` with `o__raw` hinted json: dlt (the dict went through JSON at
    extract) loads `o__raw = '{"a":1}'`. The fast path loads NULL: `_dig` returns None as soon as a level is not
    exactly a `dict` (columnar.py `_dig`: `type(row) is not dict`), and `_json` writes that None. Silent data loss."""
    assert _diff(batch, "subclass_json") == {}


def test_a_timestamp_dlt_cannot_parse_becomes_a_variant_column(batch: Dict[str, Any]) -> None:
    """A timestamp column (first value `2024-01-01T00:00:00`) with a later value `0000-01-01T00:00:00`: dlt cannot
    parse year 0 (pendulum/datetime), so the value goes to a variant column `t__v_text` (also in a child table:
    `value__v_text`). Arrow parses year 0, it matches `_NAIVE`, and the fast path loads it as a timestamp with no
    variant column (columnar.py `_timestamps`: the regex plus Arrow's cast accept what dlt's coercion refuses)."""
    assert _diff(batch, "year_zero", "year_zero_child") == {}


def test_a_table_that_was_merge_keeps_root_ids_in_new_child_tables(batch: Dict[str, Any]) -> None:
    """Run 1 loads `was_merge` with `write_disposition: merge` and empty lists (no child table yet); run 2 with
    `append` and a list. dlt stored the root-key propagation for the table in the schema's normalizer config in run 1
    and keeps it: the child table gets `_dlt_root_id`. The fast path decides by this run's disposition and by child
    tables that already have a root key, so the child table has no `_dlt_root_id` (columnar.py `page`: `root_key =
    self.merge or any(...)`; dlt reads `schema._normalizers_config['json']['config']['propagation']`)."""
    assert _diff(batch, "was_merge") == {}


def test_a_precision_hint_without_a_type_applies_to_detected_timestamps(batch: Dict[str, Any]) -> None:
    """`columns: {t: {precision: 3}}` (no data_type) and an ISO string with microseconds: dlt detects a timestamp,
    applies the hint and loads milliseconds (`...00.123`). The fast path checks precision and scale only when the
    column has a data_type and loads microseconds (`...00.123456`) (columnar.py `_scalar`: `if wanted is None:`
    returns before the precision check)."""
    assert _diff(batch, "ms_hint") == {}


def test_strings_with_dlts_type_markers_load_as_dlt_loads_them(batch: Dict[str, Any]) -> None:
    """Strings starting with dlt's private-use type markers (U+F026 Decimal, U+F027 datetime, U+F02B base64 bytes):
    dlt's extract JSON round trip decodes them, and dlt loads a decimal, a timestamp and a binary column. The fast
    path never serializes and loads the marked strings as text."""
    assert _diff(batch, "pua") == {}


def test_hostile_shapes_load_as_dlt_loads_them(batch: Dict[str, Any]) -> None:
    """Shapes that held: float edges, int64 edges, NUL/emoji/100k-char strings, Python objects (Decimal, datetime,
    date, time, UUID, bytes: all fall back), str/int enums, tuples, non-string keys, OrderedDict rows, float
    inference in nested objects and child tables, exotic ISO forms (week/ordinal dates, 7-digit fractions, +0530,
    lowercase t/z, T24:00, leap seconds, dates only), whitespace/dotted/300-char/CamelCase keys, `_dlt_id` inside a
    nested object, lists with nulls, empty objects, `value` keys, lists of lists, mixed lists, a key that is an object
    in one row and a list in another, drift of types and child columns across pages, empty pages; merge (children
    shrinking, no key, compound key), replace, incremental on a nested path and on a detected timestamp, scd2, upsert,
    a schema contract, pii, `with_table_name`, `parallelized`, `max_table_nesting`, json hints at the root, on a list
    and under an object, type hints (timestamp, double, text, timezone, precision, not null)."""
    assert _diff(batch, *HELD) == {}
    fell_back = {m.split(":")[0].split(".")[-1] for m in batch["fell_back"]}
    # the fast path is actually taken for the plain shapes (not a vacuous comparison)
    assert not fell_back & {"floats", "int_edges", "strings", "keys", "deep", "lists", "merge_children",
                            "incremental_ts", "incremental_nested", "json_hints", "parallel", "float_inference",
                            "ts_space_z", "ts_offsets", "ts_pre_epoch", "enums_tuples"}


# --- shapes that fail a run dlt loads ---------------------------------------------------------------------------

def test_a_transformer_of_a_resource_that_yields_single_dicts_gets_dicts(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A resource yielding one dict at a time and a `data_from` transformer that reads `item["id"]`. dlt hands the
    transformer each dict: the run loads. The fast path wraps the dict in a list to convert it (`__call__`: `rows =
    [item] if type(item) is dict else item`) and hands the transformer that list (`_emit`: `RowsMeta(rows, None)`):
    `TypeError: list indices must be integers`, the run fails in extract."""
    shapes = {"singles": [[[{"id": 1, "a": 1}, {"id": 2, "a": 2}]]]}
    resources = {"singles": {"entry": "single"},
                 "per_row": {"entry": "row_transformer", "data_from": "singles", "primary_key": None}}
    slow = _outcome(tmp_path, monkeypatch, shapes, resources, False)
    fast = _outcome(tmp_path, monkeypatch, shapes, resources, True)
    assert not isinstance(slow, str)
    assert not isinstance(fast, str), fast
    assert _differences(fast, slow) == {}


def test_floats_under_a_dict_subclass_do_not_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`{"o": OrderedDict(v=1.5)}`, `{"o": OrderedDict(v=2)}`: dlt loads `o__v` double. The fast path looks for the
    first Python value of `o__v` with `_dig`, which gives None below anything that is not exactly a dict, so
    `next(...)` in `_starts_with_float` raises StopIteration, which is not among the exceptions `__call__` turns
    into `Unfit`: the run fails in extract (`ResourceExtractionError` in `ColumnarPages`)."""
    od = __import__("collections").OrderedDict
    shapes = {"od_float": [[[{"id": 1, "o": od(v=1.5)}, {"id": 2, "o": od(v=2)}]]]}
    slow = _outcome(tmp_path, monkeypatch, shapes, {"od_float": {}}, False)
    fast = _outcome(tmp_path, monkeypatch, shapes, {"od_float": {}}, True)
    assert not isinstance(slow, str)
    assert not isinstance(fast, str), fast
    assert _differences(fast, slow) == {}


def test_a_timestamp_dlt_cannot_load_fails_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`9999-12-31T23:59:59-01:00` is year 10000 in UTC: dlt's normalize fails (`date value out of range`). The fast
    path casts it with Arrow and loads it: a run that fails with dlt succeeds, with a value dlt never loads."""
    shapes = {"y10000": [[[{"id": 1, "t": "9999-12-31T23:59:59-01:00"}]]]}
    slow = _outcome(tmp_path, monkeypatch, shapes, {"y10000": {}}, False)
    fast = _outcome(tmp_path, monkeypatch, shapes, {"y10000": {}}, True)
    assert isinstance(slow, str) and "failed in step `normalize`" in slow and "date value out of range" in slow
    assert isinstance(fast, str), fast


# --- schema state across runs -----------------------------------------------------------------------------------

def test_switching_columnar_between_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same pipeline and database, `columnar` switched between runs (dlt first, then the fast path, and the other
    way round): the tables are the ones dlt alone loads (merge, append and replace, children shrinking)."""
    shapes = {"m": [[_nested(5)], [_nested(4, 1, shrink=True)]], "a": [[_nested(3)], [_nested(2, 1, shrink=True)]],
              "r": [[_nested(3)], [_nested(2, 1, shrink=True)]]}
    resources = {"m": {"write_disposition": "merge"}, "a": {}, "r": {"write_disposition": "replace"}}
    reference = _tables(_load(tmp_path, shapes, resources, [False, False], monkeypatch))
    for modes in ([False, True], [True, False]):
        switched = _tables(_load(tmp_path, shapes, resources, modes, monkeypatch))
        assert _differences(switched, reference) == {}, modes
