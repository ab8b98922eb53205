"""`foundation state show|reset`: cursors read from dlt's state in the destination, and reset through dlt (its drop
and its managed state, loaded as a state package), so the next run loads from the new value. Real DuckDB files and
the suite's PostgreSQL server.

`incr` (tests/cases/valid/runtime) has `RUNTIME_CASE_EVENTS` events (default 10), a cursor on `seq` from 3, and
records the start value each run's entry got (`seen_start`).
"""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import query, write_source
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target, resolve_target
from data_foundation.load.running import run_source
from data_foundation.load.state_edit import (ResetError, apply_reset, parse_cursor_value, plan_reset, show_state)
from test_cli import RUNTIME_ROOT

CLOCK_PY = '''\
import datetime as dt
import os

import dlt


def stamps(incremental=None):
    """One row per day of January 2024 up to `STAMP_DAYS`; keeps conditional-GET validators like unchanged.py."""
    dlt.current.source_state().setdefault("downloads", {})["stamps"] = {"url": "http://x", "etag": "e1",
                                                                       "last_modified": None}
    days = int(os.environ.get("STAMP_DAYS", "5"))
    yield [{"at": dt.datetime(2024, 1, d, tzinfo=dt.timezone.utc), "n": d} for d in range(1, days + 1)]


def plain():
    yield [{"id": 1}]
'''

CLOCK_YAML = '''\
resources:
  clock.stamps:
    entry: data.stamps
    write_disposition: merge
    primary_key: at
    incremental:
      cursor_path: at
      initial_value: 2024-01-02T00:00:00+00:00
  clock.plain:
    entry: data.plain
'''


@pytest.fixture(scope="module")
def incr():
    return load_project(RUNTIME_ROOT).sources["incr"]


def _state_rows(path: Path, dataset: str):
    return query(path, f"SELECT version, version_hash, state FROM {dataset}._dlt_pipeline_state ORDER BY version")


def _seen_starts(path: Path, dataset: str):
    return sorted({row[0] for row in query(path, f"SELECT seen_start FROM {dataset}.events")})


def test_show_reads_the_cursor_from_the_destination_and_creates_nothing(incr, tmp_path):
    duckdb_file = tmp_path / "w.duckdb"
    target = resolve_target("dev", str(duckdb_file))
    before = show_state(incr, target)
    assert before.stored is None and not before.local.exists and not duckdb_file.exists()  # nothing created
    assert [(c.table, c.cursor_path, c.initial_value, c.last_value) for c in before.cursors] == [("events", "seq", 3,
                                                                                                  None)]
    run_source(incr, target)

    shown = _in_process("state", "show", "incr", "--json", "--root", str(RUNTIME_ROOT), "--duckdb-file",
                        str(duckdb_file))
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["dataset"] == "incr_tester" and document["pipeline"] == "foundation_incr"
    assert document["state_table"] == "incr_tester._dlt_pipeline_state" and document["location"] == str(duckdb_file)
    assert document["cursors"] == [{"table": "events", "cursor_path": "seq", "last_value": 10, "initial_value": 3,
                                    "rows_at_last_value": 1, "write_disposition": "append", "validators": False}]
    assert document["state"]["version"] == 1 and document["local"]["exists"] and document["local"]["agrees"]
    assert document["local"]["path"].startswith(str(tmp_path / "pipelines"))

    text = _in_process("state", "show", "incr", "--root", str(RUNTIME_ROOT), "--duckdb-file", str(duckdb_file))
    assert text.exit_code == 0, text.output
    out = " ".join(text.stdout.split())
    assert "incr: pipeline foundation_incr, dataset `incr_tester` in duckdb" in out
    assert "state: incr_tester._dlt_pipeline_state, version 1" in out
    assert "agrees with the destination (state version 1)" in out
    assert "│ events │ seq │ 10 │ 3 │ 1 │ append │" in out


def test_reset_asks_and_the_next_run_loads_from_the_new_value(incr, tmp_path):
    duckdb_file = tmp_path / "w.duckdb"
    target = resolve_target("dev", str(duckdb_file))
    run_source(incr, target)  # 3..10
    args = ("state", "reset", "incr.events", "--to", "5", "--root", str(RUNTIME_ROOT), "--duckdb-file",
            str(duckdb_file))
    loaded = _state_rows(duckdb_file, "incr_tester")

    no = _in_process(*args, "--dry-run")
    assert no.exit_code == 0, no.output
    assert "incr.events (seq): 10 -> 5" in no.stdout and "Dry run: nothing changed." in no.stdout
    assert "`incr.events` is `append`" in " ".join(no.stderr.split())  # re-loading duplicates rows: warned
    declined = _in_process(*args, stdin="n\n")
    assert declined.exit_code == 1 and "Not reset: nothing changed." in declined.stdout
    no_answer = _in_process(*args, stdin="")  # stdin at its end at once, as under cron
    assert no_answer.exit_code == 1 and "pass --yes" in " ".join(no_answer.stderr.split()).lower()
    assert _state_rows(duckdb_file, "incr_tester") == loaded  # the dry run, the "n" and no answer changed nothing

    confirmed = _foundation_with_stdin("y\n", *args, cwd=tmp_path)
    assert confirmed.returncode == 0, confirmed.stderr
    assert "Reset: state version 2 saved in `incr_tester._dlt_pipeline_state`" in " ".join(confirmed.stdout.split())
    assert query(duckdb_file, "SELECT COUNT(*) FROM incr_tester.events") == [(8,)]  # the table is untouched

    assert run_source(incr, target).rows_loaded == {"events": 6}  # 5..10 again: the cursor was moved to 5
    assert _seen_starts(duckdb_file, "incr_tester") == [3, 5]
    assert show_state(incr, target).cursors[0].last_value == 10


def _foundation_with_stdin(stdin: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`foundation` as a subprocess with `stdin` fed to it."""
    return subprocess.run([sys.executable, "-m", "data_foundation.cli", *args], cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"}, input=stdin, capture_output=True, text=True,
                          timeout=120)


def _in_process(*args: str, stdin: str = ""):
    """The command in this process (typer's runner: no interpreter start-up); the prompt's real subprocess is
    `_foundation_with_stdin`."""
    from typer.testing import CliRunner

    from data_foundation.cli.app import app

    return CliRunner().invoke(app, list(args), input=stdin)


def test_reset_to_the_initial_value_drops_resource_state_and_validators(tmp_path, monkeypatch):
    source = load_project(write_source(tmp_path / "root", "clock", CLOCK_PY, CLOCK_YAML)).sources["clock"]
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    assert run_source(source, target).rows_loaded == {"stamps": 4, "plain": 1}  # Jan 2..5
    shown = show_state(source, target)
    assert shown.without_cursor == ["plain"]
    stamps = shown.cursors[0]
    assert stamps.last_value == dt.datetime(2024, 1, 5, tzinfo=dt.timezone.utc) and stamps.validators

    # --to: a date for a datetime cursor means midnight UTC; merge: no duplicates, no warning
    changes = plan_reset(source, target, "stamps", "2024-01-04")
    assert [(c.before, c.after, c.warning("clock")) for c in changes] == [
        (stamps.last_value, dt.datetime(2024, 1, 4, tzinfo=dt.timezone.utc), None)]
    apply_reset(source, target, changes, "2024-01-04")
    after = show_state(source, target)
    assert after.cursors[0].last_value == dt.datetime(2024, 1, 4, tzinfo=dt.timezone.utc)
    assert after.cursors[0].rows_at_last_value == 0 and not after.cursors[0].validators
    assert run_source(source, target, ["stamps"]).rows_loaded == {"stamps": 2}  # Jan 4 and 5

    # the whole source, back to the initial value: dlt's drop of the resource state, the tables kept
    changes = plan_reset(source, target)
    assert [(c.table, c.after, c.to_initial) for c in changes] == [("stamps", source.resources[0].spec.incremental
                                                                    .initial_value, True)]
    version = apply_reset(source, target, changes)
    assert version == show_state(source, target).stored.version
    assert show_state(source, target).cursors[0].last_value is None
    assert query(tmp_path / "w.duckdb", "SELECT COUNT(*) FROM clock.stamps") == [(4,)]
    monkeypatch.setenv("STAMP_DAYS", "6")
    assert run_source(source, target, ["stamps"]).rows_loaded == {"stamps": 5}  # Jan 2..6

    with pytest.raises(ResetError, match=r"`clock.plain` has no `incremental`.*foundation run clock.plain "
                                         r"--full-refresh"):
        plan_reset(source, target, "plain")
    with pytest.raises(ResetError, match=r"`soon` is not a value of cursor clock.stamps \(at\): expected an ISO "
                                         r"datetime"):
        plan_reset(source, target, "stamps", "soon")


def test_a_changed_state_between_showing_and_resetting_resets_nothing(incr, tmp_path, monkeypatch):
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    run_source(incr, target)
    changes = plan_reset(incr, target, "events", "4")
    monkeypatch.setenv("RUNTIME_CASE_EVENTS", "12")
    run_source(incr, target)  # the cursor moves on to 12 meanwhile
    with pytest.raises(ResetError, match="changed since the reset was shown"):
        apply_reset(incr, target, changes, "4")
    assert show_state(incr, target).cursors[0].last_value == 12


def test_reset_of_a_source_never_loaded(incr, tmp_path):
    target = create_target("duckdb", str(tmp_path / "w.duckdb"))
    assert [c.changes for c in plan_reset(incr, target)] == [False]  # nothing to reset
    with pytest.raises(ResetError, match="never loaded into this dataset.*initial_value"):
        plan_reset(incr, target, "events", "5")
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize("text, like, expected", [
    ("5", 10, 5), ("2.5", 1.0, 2.5), ("2024-02-01", dt.date(2024, 1, 1), dt.date(2024, 2, 1)),
    ("2024-02-01T10:00:00+02:00", dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
     dt.datetime(2024, 2, 1, 8, tzinfo=dt.timezone.utc)),
    ("2024-02-01", "2024-01-01T00:00:00Z", "2024-02-01"), ("b", "a", "b"), ("7", None, 7),
])
def test_to_values_take_the_cursors_type(text, like, expected):
    value = parse_cursor_value(text, like)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, like, expected", [("five", 10, "an integer such as `10`"),
                                                  ("2024-13-01", dt.date(2024, 1, 1), "an ISO date"),
                                                  ("yesterday", "2024-01-01", "an ISO date or datetime")])
def test_to_values_that_do_not_parse_say_what_is_expected(text, like, expected):
    with pytest.raises(ResetError, match=expected):
        parse_cursor_value(text, like, "x.y (c)")


def test_show_and_reset_on_postgres(postgres, incr, tmp_path, monkeypatch):
    (tmp_path / "foundation.toml").write_text(
        "[targets.warehouse]\ndestination = \"postgres\"\ndataset_prefix = \"state_\"\n"
        f"credentials = {{ host = \"{postgres.host}\", port = {postgres.port}, username = \"{postgres.username}\", "
        f"database = \"{postgres.database}\" }}\n")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", postgres.password)
    target = resolve_target("warehouse", config_dir=tmp_path)
    assert show_state(incr, target).stored is None
    run_source(incr, target)

    monkeypatch.chdir(tmp_path)  # foundation.toml
    shown = _in_process("state", "show", "incr", "--json", "--target", "warehouse", "--root", str(RUNTIME_ROOT))
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["destination"] == "postgres" and document["dataset"] == "state_incr"
    assert f"port={postgres.port}" in document["location"] and postgres.password not in shown.stdout
    assert document["cursors"][0]["last_value"] == 10 and document["state"]["version"] == 1

    reset = _in_process("state", "reset", "incr", "--to", "6", "--yes", "--target", "warehouse", "--root",
                        str(RUNTIME_ROOT))
    assert reset.exit_code == 0, reset.output
    assert "incr.events (seq): 10 -> 6" in reset.stdout
    assert run_source(incr, target).rows_loaded == {"events": 5}  # 6..10
    apply_reset(incr, target, plan_reset(incr, target))  # back to the initial value, in-process
    assert run_source(incr, target).rows_loaded == {"events": 8}  # 3..10
    with postgres.connect() as con, con.cursor() as cur:
        cur.execute("SELECT seen_start, COUNT(*) FROM state_incr.events GROUP BY seen_start ORDER BY seen_start")
        assert cur.fetchall() == [(3, 16), (6, 5)]
