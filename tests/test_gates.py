"""Data gates (`checks:` in sources.yaml) and the empty-replace guard: each `on_failure` mode of each gate, on dict
pages and Arrow tables, PII masked in the quarantine, nothing loaded and no cursor moved when a gate fails, the
outcomes as warnings and as Dagster asset checks, validation errors, and one run into PostgreSQL."""

import dagster as dg
import pyarrow as pa
import pytest

from conftest import query, table_counts, write_source
from data_foundation.config.loading import load_project, validate_root
from data_foundation.dagster import build_definitions
from data_foundation.dagster.checks import gate_check_name
from data_foundation.load.destinations import create_target
from data_foundation.load.gates import GATES_STATE_KEY
from data_foundation.load.running import RunFailed, run_source
from data_foundation.load.session import create_pipeline

# 10 orders; BAD (env) adds one bad row of the named kind, EMPTY makes the run yield nothing
DATA_PY = '''
import os

import dlt
import pyarrow as pa

from data_foundation.unchanged import mark_unchanged

BAD = {
    "null": {"id": 100, "email": "n@x.com", "ssn": "000", "status": "placed", "note": None, "at": 100},
    "value": {"id": 101, "email": "v@x.com", "ssn": "000", "status": "lost", "note": "n", "at": 101},
    "dup": {"id": 3, "email": "d@x.com", "ssn": "000", "status": "placed", "note": "n", "at": 102},
    "pred": {"id": 103, "email": "p@x.com", "ssn": "000", "status": "placed", "note": "n", "at": -1},
}


def _rows(n):
    rows = [{"id": i, "email": f"user{i}@x.com", "ssn": f"ssn-{i}", "status": "placed" if i % 2 else "shipped",
             "note": "ok", "at": i} for i in range(n)]
    bad = os.environ.get("BAD")
    return rows + [BAD[kind] for kind in bad.split(",")] if bad else rows


def orders(n=10, incremental: dlt.sources.incremental[int] = dlt.sources.incremental("at", initial_value=-10)):
    if os.environ.get("UNCHANGED"):
        mark_unchanged()
        return
    if not os.environ.get("EMPTY"):
        yield _rows(n)


def arrow_orders(n=10):
    yield pa.Table.from_pylist(_rows(n))


def lines(order):
    yield [] if os.environ.get("EMPTY_LINES") else [{"order_id": o["id"], "line": 1} for o in order]


def valid(row):
    return "negative `at`" if row["at"] < 0 else None
'''


def _yaml(name, yaml):
    """`yaml` with its resources renamed into source `name` (`shop.orders` -> `<name>.orders`)."""
    return yaml.replace("shop.", f"{name}.")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Every source of this file in one root, validated once (each validation imports in a child process)."""
    root = tmp_path_factory.mktemp("gates")
    for name, yaml in SOURCES.items():
        write_source(root, name, DATA_PY, _yaml(name, yaml))
    return load_project(root)


def _fails(source, target, *parts):
    with pytest.raises(RunFailed) as raised:
        run_source(source, target)
    message = str(raised.value)
    assert "\n" not in message and all(part in message for part in parts), message
    return message


QUARANTINE_YAML = """
resources:
  shop.orders:
    entry: data.orders
    write_disposition: merge
    primary_key: id
    incremental: {cursor_path: at, initial_value: -10}
    pii: {hash: [email], drop: [ssn]}
    checks:
      not_null: {columns: [note], on_failure: quarantine}
      accepted_values: {status: [placed, shipped], on_failure: quarantine}
      unique: {columns: [id], on_failure: quarantine}
      predicate: {entry: data.valid, on_failure: warn}
"""
FAIL_YAML = """
resources:
  shop.orders:
    entry: data.orders
    write_disposition: merge
    primary_key: id
    incremental: {cursor_path: at, initial_value: -10}
    pii: {hash: [email]}
    checks:
      not_null: [note, id]
      accepted_values: {status: [placed, shipped]}
      unique: id
      predicate: data.valid
"""
COUNTS_YAML = """
resources:
  shop.orders:
    entry: data.arrow_orders
    keyword_arguments: {n: 5}
    checks:
      min_rows: %s
      max_rows: %s
"""
ARROW_YAML = """
resources:
  shop.arrow_orders:
    entry: data.arrow_orders
    primary_key: id
    checks:
      not_null: {columns: [note], on_failure: %s}
      accepted_values: {status: [placed, shipped], on_failure: quarantine}
      unique: {columns: [id], on_failure: quarantine}
"""
GUARD_YAML = """
resources:
  shop.orders:
    entry: data.orders
    write_disposition: replace
    primary_key: id
%s
  shop.lines:
    entry: data.lines
    data_from: shop.orders
    write_disposition: replace
"""
SOURCES = {
    "quarantined": QUARANTINE_YAML,
    "failing": FAIL_YAML,
    "too_few": COUNTS_YAML % ("6", "{value: 20, on_failure: warn}"),
    "too_many": COUNTS_YAML % ("1", "4"),
    "few_warned": COUNTS_YAML % ("{value: 6, on_failure: warn}", "8"),
    "many_warned": COUNTS_YAML % ("0", "{value: 3, on_failure: warn}"),
    "arrow_warned": ARROW_YAML % "warn",
    "arrow_failing": ARROW_YAML % "fail",
    "guarded": GUARD_YAML % "",
    "all_quarantined": GUARD_YAML % "    checks: {accepted_values: {status: [lost], on_failure: quarantine}}",
    "allowed": GUARD_YAML % "    allow_empty: true",
}


def test_quarantine_and_warn_route_rows_with_reasons_masked_like_the_table(project, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_FOUNDATION__PII_SALT", "pepper")
    monkeypatch.setenv("BAD", "null,value,dup,pred")
    database = tmp_path / "w.duckdb"
    target = create_target("duckdb", str(database))
    source = project.sources["quarantined"]
    run = run_source(source, target)

    assert run.rows_loaded == {"orders": 11, "orders__quarantine": 3}  # the warned row (id 103) loads
    assert table_counts(database, "quarantined") == {"orders": 11, "orders__quarantine": 3}
    quarantined = query(database, "SELECT id, _quarantine_check, _quarantine_reason, email "
                                  "FROM quarantined.orders__quarantine ORDER BY id")
    assert [row[:3] for row in quarantined] == [
        (3, "unique", "id=3 is not unique in this run"),
        (100, "not_null", "`note` is null"),
        (101, "accepted_values", "`status` = 'lost' is not an accepted value")]
    # PII: hashed and dropped in the quarantine as in the table; no raw value anywhere in it
    assert all(len(row[3]) == 64 for row in quarantined)
    columns = [r[0] for r in query(database, "SELECT column_name FROM information_schema.columns WHERE "
                                             "table_schema = 'quarantined' AND table_name = 'orders__quarantine'")]
    assert "ssn" not in columns and "_dlt_load_id" in columns
    dump = str(query(database, "SELECT * FROM quarantined.orders__quarantine"))
    assert "@x.com" not in dump and "'000'" not in dump
    # the quarantine table appends and has no key of the table
    pipeline = create_pipeline(source, target)
    table = pipeline.default_schema.tables["orders__quarantine"]
    assert table["write_disposition"] == "append"
    assert not any(c.get("primary_key") or c.get("merge_key") for c in table["columns"].values())

    assert run.warnings == [
        "resource `quarantined.orders`: check `not_null` (`note` not null): 1 row(s) quarantined to "
        "`orders__quarantine`; e.g. `note` is null (id=100)",
        "resource `quarantined.orders`: check `accepted_values` (`status` in placed, shipped): 1 row(s) quarantined "
        "to `orders__quarantine`; e.g. `status` = 'lost' is not an accepted value (id=101)",
        "resource `quarantined.orders`: check `predicate` (`data.valid`): 1 row(s) failed it (on_failure: "
        "warn: not set aside); e.g. negative `at` (id=103)",
        "resource `quarantined.orders`: check `unique` (`id` unique): 1 row(s) quarantined to `orders__quarantine`; "
        "e.g. id=3 is not unique in this run (id=3)"]
    gates = pipeline.state["sources"]["quarantined"][GATES_STATE_KEY]["orders"]
    assert gates["rows"] == 11 and gates["quarantined"] == 3 and gates["load_id"] == run.load_ids[0]
    assert gates["checks"]["predicate"] == {"on_failure": "warn", "detail": "`data.valid`", "failed": 1,
                                            "quarantined": 0, "passed": False, "reasons": ["negative `at`"]}


def test_fail_stops_the_run_before_anything_loads_and_the_cursor_stays(project, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_FOUNDATION__PII_SALT", "pepper")
    source = project.sources["failing"]
    database = tmp_path / "w.duckdb"
    target = create_target("duckdb", str(database))
    assert run_source(source, target).rows_loaded == {"orders": 10}

    def cursor():
        return create_pipeline(source, target).state["sources"]["failing"]["resources"]["orders"]["incremental"]["at"]

    assert cursor()["last_value"] == 9
    expected = {
        "null": "check `not_null` (`note`, `id` not null) of resource `failing.orders` failed: 1 row(s) of this page, "
                "e.g. `note` is null (id=100)",
        "value": "check `accepted_values` (`status` in placed, shipped) of resource `failing.orders` failed: 1 row(s) "
                 "of this page, e.g. `status` = 'lost' is not an accepted value (id=101)",
        "dup": "check `unique` (`id` unique) of resource `failing.orders` failed: 1 row(s) of this page, e.g. id=3 is "
               "not unique in this run (id=3)",
        "pred": "check `predicate` (`data.valid`) of resource `failing.orders` failed: 1 row(s) of this page, e.g. "
                "negative `at` (id=103)"}
    for kind, text in expected.items():
        monkeypatch.setenv("BAD", kind)
        message = _fails(source, target, "failed in step `extract`: " + text, "Nothing of this run was loaded",
                         "`on_failure: quarantine`", "`on_failure: warn`")
        assert "@x.com" not in message  # examples are keys, never PII values
    assert table_counts(database, "failing") == {"orders": 10}
    assert cursor()["last_value"] == 9  # no failed run moved the cursor


def test_row_counts_fail_or_warn_at_the_end_of_the_run_max_rows_as_soon_as_passed(project, tmp_path):
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    _fails(project.sources["too_few"], target,
           "check `min_rows` of resource `too_few.orders` failed: the run loads 5 row(s), fewer than min_rows 6",
           "Nothing of this run was loaded", "`on_failure: warn`")
    _fails(project.sources["too_many"], target,
           "check `max_rows` of resource `too_many.orders` failed: the run loads 5 row(s), more than max_rows 4")
    assert table_counts(tmp_path / "w.duckdb", "too_few") == {}

    run = run_source(project.sources["few_warned"], target)
    assert run.rows_loaded == {"orders": 5}
    assert run.warnings == ["resource `few_warned.orders`: check `min_rows` (at least 6 row(s)): the run loads 5 "
                            "row(s), fewer than min_rows 6 (on_failure: warn)"]
    assert run_source(project.sources["many_warned"], target).warnings == [
        "resource `many_warned.orders`: check `max_rows` (at most 3 row(s)): the run loads 5 row(s), more than "
        "max_rows 3 (on_failure: warn)"]


def test_arrow_pages_are_judged_column_wise_in_each_mode(project, tmp_path, monkeypatch):
    monkeypatch.setenv("BAD", "null,value,dup")
    database = tmp_path / "w.duckdb"
    target = create_target("duckdb", str(database))
    run = run_source(project.sources["arrow_warned"], target)
    assert run.rows_loaded == {"arrow_orders": 11, "arrow_orders__quarantine": 2}
    assert query(database, "SELECT id, _quarantine_check FROM arrow_warned.arrow_orders__quarantine ORDER BY id") == [
        (3, "unique"), (101, "accepted_values")]
    assert run.warnings[0] == ("resource `arrow_warned.arrow_orders`: check `not_null` (`note` not null): 1 row(s) "
                               "failed it (on_failure: warn: not set aside); e.g. `note` is null (id=100)")
    _fails(project.sources["arrow_failing"], target,
           "check `not_null` (`note` not null) of resource `arrow_failing.arrow_orders` failed: 1 row(s)")


def test_empty_replace_keeps_the_table_unless_allowed_and_mark_unchanged_still_keeps_it(project, tmp_path,
                                                                                       monkeypatch):
    database = tmp_path / "w.duckdb"
    target = create_target("duckdb", str(database))
    source = project.sources["guarded"]
    monkeypatch.setenv("EMPTY", "1")
    assert run_source(source, target).rows_loaded == {}  # a first run that brings nothing: nothing to wipe
    monkeypatch.delenv("EMPTY")
    assert run_source(source, target).rows_loaded == {"orders": 10, "lines": 10}

    monkeypatch.setenv("EMPTY", "1")
    _fails(source, target, "resource `guarded.orders` (write_disposition: replace) brought no rows in this run",
           "the table keeps its rows", "`allow_empty: true`", "mark_unchanged()")
    with pytest.raises(RunFailed, match="no rows"):  # --full-refresh would drop it: refused the same way
        run_source(source, target, full_refresh=True)
    monkeypatch.delenv("EMPTY")
    monkeypatch.setenv("EMPTY_LINES", "1")  # a transformer's replace table is guarded too
    _fails(source, target, "resource `guarded.lines` (write_disposition: replace) brought no rows")
    assert table_counts(database, "guarded") == {"orders": 10, "lines": 10}
    monkeypatch.delenv("EMPTY_LINES")

    monkeypatch.setenv("UNCHANGED", "1")  # a 304: loads nothing, keeps the table, no failure
    assert run_source(source, target, tables=["orders"]).rows_loaded == {}
    assert table_counts(database, "guarded") == {"orders": 10, "lines": 10}
    monkeypatch.delenv("UNCHANGED")

    # every row quarantined would empty the table as well
    quarantining = project.sources["all_quarantined"]
    run_source(quarantining, target, tables=["orders"])
    monkeypatch.setenv("BAD", "value")
    assert run_source(quarantining, target, tables=["orders"]).rows_loaded == {"orders": 1, "orders__quarantine": 10}
    monkeypatch.delenv("BAD")
    with pytest.raises(RunFailed, match=r"brought no rows in this run \(10 row\(s\) went to `orders__quarantine`\)"):
        run_source(quarantining, target, tables=["orders"])

    allowed = project.sources["allowed"]
    assert run_source(allowed, target).rows_loaded == {"orders": 10, "lines": 10}
    monkeypatch.setenv("EMPTY", "1")
    assert run_source(allowed, target, tables=["orders"]).rows_loaded.get("orders", 0) == 0
    assert table_counts(database, "allowed") == {"orders": 0, "lines": 10}  # allowed: dlt empties it


def test_gates_are_dagster_asset_checks_with_their_results(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_FOUNDATION__PII_SALT", "pepper")
    monkeypatch.setenv("BAD", "null,value,pred")
    yaml = QUARANTINE_YAML.replace("      unique: {columns: [id], on_failure: quarantine}\n",
                                   "      unique: id\n      min_rows: 1\n")
    write_source(tmp_path / "root", "shop", DATA_PY, yaml)
    defs = build_definitions(tmp_path / "root", create_target("duckdb", str(tmp_path / "w.duckdb")))
    result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    found = {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name.startswith("gate_")}
    assert sorted(found) == sorted(gate_check_name(n) for n in
                                   ("not_null", "accepted_values", "predicate", "unique", "min_rows"))
    quarantine = found["gate_not_null"]
    assert (quarantine.passed, quarantine.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert quarantine.metadata["quarantined_rows"].value == 1
    assert quarantine.metadata["quarantine_table"].value == "orders__quarantine"
    assert quarantine.metadata["rows_loaded"].value == 11
    warned = found["gate_predicate"]
    assert (warned.passed, warned.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert warned.metadata["failed_rows"].value == 1 and warned.metadata["quarantined_rows"].value == 0
    assert warned.metadata["reasons"].value == ["negative `at`"]
    for name in ("gate_unique", "gate_min_rows"):  # `fail` gates a loaded run passed
        assert (found[name].passed, found[name].severity) == (True, dg.AssetCheckSeverity.ERROR)


def test_validation_names_each_mistake_with_its_line_and_key(tmp_path):
    yaml = """resources:
  shop.orders:
    entry: data.orders
    checks:
      min_rows: {value: 5, on_failure: quarantine}
      not_null: {columns: [id], on_failure: quarantin}
  shop.other:
    entry: data.orders
    checks:
      min_rows: 10
      max_rows: 2
  shop.fourth:
    entry: data.orders
    checks: {predicate: data.vaild, unique: [id]}
    primary_key: id
  shop.third:
    entry: data.orders
    checks:
      unique: []
      accepted_values: {status: []}
      not_nul: [id]
"""
    _, problems = validate_root(write_source(tmp_path / "root", "shop", DATA_PY, yaml))
    found = {(p.line, p.key_path): (p.message, p.hint) for p in problems}
    quarantine = found[(5, "resources.shop.orders.checks.min_rows.on_failure")]
    assert quarantine[0].startswith("`quarantine` does not apply to `min_rows`")
    assert "`on_failure: fail` or `on_failure: warn`" in quarantine[1]
    assert found[(6, "resources.shop.orders.checks.not_null.on_failure")] == (
        "`quarantin` is not valid. Valid values: fail, warn, quarantine.", "did you mean `quarantine`?")
    assert found[(10, "resources.shop.other.checks.min_rows")][0] == (
        "`min_rows` (10) is more than `max_rows` (2): no run can pass both")
    message, hint = found[(14, "resources.shop.fourth.checks.predicate.entry")]
    assert "vaild" in message and "`valid`" in hint
    assert found[(19, "resources.shop.third.checks.unique")][0] == "no column listed"
    assert found[(20, "resources.shop.third.checks.accepted_values")][0] == "column `status` accepts no value"
    assert found[(21, "resources.shop.third.checks.not_nul")][0] == "unknown key `not_nul`"
    assert "did you mean `not_null`?" in found[(21, "resources.shop.third.checks.not_nul")][1]
    assert len(problems) == 7, problems


def test_postgres_quarantines_and_fails_like_duckdb(project, postgres, tmp_path, monkeypatch):
    from data_foundation.load.destinations import resolve_target

    (tmp_path / "foundation.toml").write_text(
        "[targets.warehouse]\ndestination = \"postgres\"\ndataset_prefix = \"gates_\"\n"
        f"credentials = {{ host = \"{postgres.host}\", port = {postgres.port}, username = \"{postgres.username}\", "
        f"database = \"{postgres.database}\" }}\n")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", postgres.password)
    monkeypatch.setenv("DATA_FOUNDATION__PII_SALT", "pepper")
    target = resolve_target("warehouse", config_dir=tmp_path)
    monkeypatch.setenv("BAD", "null,value,dup,pred")
    run = run_source(project.sources["quarantined"], target)
    assert run.rows_loaded == {"orders": 11, "orders__quarantine": 3}
    with postgres.connect() as con, con.cursor() as cur:
        cur.execute("SELECT id, _quarantine_check, email FROM gates_quarantined.orders__quarantine ORDER BY id")
        rows = cur.fetchall()
    assert [r[:2] for r in rows] == [(3, "unique"), (100, "not_null"), (101, "accepted_values")]
    assert all("@" not in r[2] for r in rows)
    _fails(project.sources["failing"], target, "check `not_null` (`note`, `id` not null)")


# --- rows as real APIs send them: camelCase and nested fields, row objects, a predicate that raises ----------------

EDGE_DATA_PY = '''
import collections

NT = collections.namedtuple("NT", "id email ssn note")


def users():
    yield [{"userId": 1, "userEmail": "ann@x.com", "address": {"zip": "123"}, "code": None},
           {"userId": 2, "userEmail": "bob@x.com", "address": {"zip": None}, "code": None},
           {"userId": 3, "userEmail": "ann@x.com", "address": {"zip": "9"}, "code": "c"},
           {"userId": 4, "userEmail": "cat@x.com", "address": {"zip": "5"}, "code": None}]


def named():
    for i in range(3):
        yield NT(i, f"u{i}@x.com", f"ssn-{i}", "n")


def people():
    yield [{"id": 1, "ssn": "123456789"}, {"id": 2, "ssn": "987-65-4321"}]


def ssn_valid(row):
    return int(row["ssn"]) > 0
'''
EDGE_YAML = """
resources:
  edge.users:
    entry: data.users
    primary_key: user_id
    pii: {hash: [user_email]}
    checks:
      not_null: {columns: [user_id, address__zip], on_failure: quarantine}
      accepted_values: {user_email: [ann@x.com], on_failure: quarantine}
      unique: {columns: [userEmail, code], on_failure: warn}
  edge.named:
    entry: data.named
    checks: {min_rows: 3, max_rows: 3}
  edge.people:
    entry: data.people
    primary_key: id
    pii: {drop: [ssn]}
    checks: {predicate: data.ssn_valid}
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    return load_project(write_source(tmp_path_factory.mktemp("edge"), "edge", EDGE_DATA_PY, EDGE_YAML)).sources["edge"]


def test_gate_columns_are_named_as_dlt_writes_them_and_pii_stays_masked(edge, tmp_path, monkeypatch):
    """`user_id` is the loaded column of `userId`, `address__zip` of `address: {zip}`; `user_email` (hashed) is
    `userEmail`, whose raw value never reaches a message, a reason or the quarantine table; in `unique` a null is no
    value (as dbt's `unique`)."""
    monkeypatch.setenv("DATA_FOUNDATION__PII_SALT", "pepper")
    database = tmp_path / "w.duckdb"
    run = run_source(edge, create_target("duckdb", str(database)), tables=["users"])
    assert run.rows_loaded == {"users": 2, "users__quarantine": 2}
    reasons = query(database, "SELECT user_id, _quarantine_check, _quarantine_reason FROM edge.users__quarantine "
                              "ORDER BY user_id")
    assert reasons == [(2, "not_null", "`address__zip` is null"),
                       (4, "accepted_values", "`user_email` = a PII value is not an accepted value")], reasons
    assert run.warnings[-1] == ("resource `edge.users`: check `unique` (`userEmail` unique and `code` unique): 1 "
                                "row(s) failed it (on_failure: warn: not set aside); e.g. userEmail=a PII value is "
                                "not unique in this run (user_id=3)"), run.warnings
    everything = str(run.warnings) + str(query(database, "SELECT * FROM edge.users__quarantine")) + str(
        query(database, "SELECT state FROM edge._dlt_pipeline_state"))
    assert "bob@x.com" not in everything and "cat@x.com" not in everything  # the data's (YAML lists ann@x.com)


def test_row_objects_count_as_one_row_each(edge, tmp_path):
    """Named tuples (a tuple of fields) are one row each for `min_rows`/`max_rows`, not one per field."""
    run = run_source(edge, create_target("duckdb", str(tmp_path / "w.duckdb")), tables=["named"])
    assert run.rows_loaded == {"named": 3} and run.warnings == []


def test_a_predicate_that_raises_fails_the_run_naming_the_row_without_its_pii(edge, tmp_path):
    with pytest.raises(RunFailed) as raised:
        run_source(edge, create_target("duckdb", str(tmp_path / "w.duckdb")), tables=["people"])
    message = str(raised.value)
    assert "987-65-4321" not in message and "987" not in message, message
    assert "check `predicate` (`data.ssn_valid`) of resource `edge.people` raised ValueError on id=2" in message, \
        message
    chain, exc = [], raised.value  # what dlt's trace keeps (`trace.pickle`, status's local failure): every exception
    while exc is not None and len(chain) < 20:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert not [e for e in chain if "987" in str(e)], chain


@pytest.mark.parametrize("values, accepted, outside", [
    (["1", "2", None, "3"], [1, 2], [0, 1, 3]),  # numbers never accept text, as Python's == says
    ([1, 2, None, 3], ["1", "2"], [0, 1, 3]),  # ... nor text numbers
    ([1.0, 2.5, None], [1, 2], [1]),  # an int accepts the float it equals
    (["a", "b"], ["a"], [1]),
])
def test_accepted_values_judge_arrow_pages_as_dict_pages(values, accepted, outside):
    """The same rows as dicts and as an Arrow table: the same rows fall outside `accepted_values`."""
    from data_foundation.load.gates import _Page

    rows = [{"code": value} for value in values]
    assert _Page(rows=rows).not_in("code", accepted) == outside
    assert _Page(table=pa.Table.from_pylist(rows)).not_in("code", accepted) == outside
