"""`foundation dbt`: sources.yml generated from the spec (and `--check`), dbt run against a target, and the errors a
user meets without a dbt project or a profile output."""

import json
import os
import re

import duckdb
import pytest
import yaml

from conftest import copy_dbt_project, copy_jaffle, write_source
from data_foundation.config.loading import load_project
from data_foundation.dbt.sources_yml import render_sources
from data_foundation.load.destinations import create_target
from test_cli import flat, foundation

DATA_PY = '''
def readings(count=3):
    """Sensor readings, one page.

    Second paragraph, not part of the description."""
    yield [{"sensorId": i % 2, "takenAt": "2024-01-01T00:00:00", "value": i, "email": f"u{i}@x.org"}
           for i in range(count)]


def flat_rows():
    yield [{"n": 1}]
'''
SOURCES_YAML = '''
resources:
  sensors.readings:
    entry: data.readings
    write_disposition: merge
    primary_key: [sensorId, takenAt]
    incremental: {cursor_path: takenAt, initial_value: "2024-01-01T00:00:00"}
    columns:
      value: {data_type: bigint, description: The measured value.}
    pii: {hash: [email]}
  sensors.flat:
    entry: data.flat_rows
    arrow: true
    description: Flat rows.
sources:
  sensors:
    description: Sensors.
    resources: [sensors.readings, sensors.flat]
    meta:
      dagster:
        freshness_lower_bound_delta_seconds: 5400
'''


def test_sources_yml_is_generated_from_the_spec(tmp_path):
    root = write_source(tmp_path / "root", "sensors", DATA_PY, SOURCES_YAML)
    document = yaml.safe_load(render_sources(load_project(root)))
    [source] = document["sources"]
    assert (source["name"], source["description"]) == ("sensors", "Sensors.")
    assert source["schema"] == "{{ env_var('FOUNDATION_DATASET__SENSORS') }}"
    readings, flat_table = source["tables"]
    assert readings["description"] == "Sensor readings, one page."  # the docstring's first paragraph
    assert readings["config"]["meta"]["dagster"]["asset_key"] == ["sensors", "readings"]
    assert readings["config"]["freshness"] == {"error_after": {"count": 90, "period": "minute"}}
    assert readings["config"]["loaded_at_field"] == "to_timestamp(cast(_dlt_load_id as double precision))"
    # a composite key: each column not null, the combination unique; names as dlt writes them (snake_case)
    assert readings["data_tests"] == [{"unique": {"arguments": {
        "column_name": "cast(sensor_id as varchar) || chr(31) || cast(taken_at as varchar)"}}}]
    columns = {c["name"]: c for c in readings["columns"]}
    assert list(columns) == ["sensor_id", "taken_at", "value", "email", "_dlt_load_id", "_dlt_id"]
    assert columns["sensor_id"]["data_tests"] == ["not_null"]
    assert columns["taken_at"]["description"] == "Part of the primary key; incremental cursor."
    assert (columns["value"]["data_type"], columns["value"]["description"]) == ("bigint", "The measured value.")
    assert columns["email"]["data_type"] == "text" and "SHA-256" in columns["email"]["description"]
    # arrow tables have the load id too (not dlt's row id); an append table has no unique test
    assert flat_table["description"] == "Flat rows."
    assert flat_table["config"]["loaded_at_field"] == "to_timestamp(cast(_dlt_load_id as double precision))"
    assert [c["name"] for c in flat_table["columns"]] == ["_dlt_load_id"]


def test_sources_check_fails_on_a_stale_file_and_regeneration_adds_a_new_source(jaffle_root, tmp_path):
    copy_dbt_project(tmp_path / "dbt", jaffle_root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')
    root = tmp_path / "root"
    write_source(root, "sensors", DATA_PY, SOURCES_YAML)
    copy_jaffle(root)

    stale = foundation("dbt", "sources", "--check", "--root", str(root), cwd=tmp_path)
    assert stale.returncode == 1
    assert "sources.yml is stale: run `foundation dbt sources` and commit the file" in flat(stale.stderr)
    assert "+  - name: sensors" in stale.stdout and "Traceback" not in stale.stderr

    written = foundation("dbt", "sources", "--root", str(root), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "2 source(s), 8 table(s)" in written.stdout
    names = [s["name"] for s in yaml.safe_load((tmp_path / "dbt/models/sources.yml").read_text())["sources"]]
    assert names == ["jaffle_shop", "sensors"]
    again = foundation("dbt", "sources", "--root", str(root), cwd=tmp_path)  # unchanged: not rewritten, no re-parse
    assert "sources.yml is up to date (2 source(s), 8 table(s))" in flat(again.stdout)
    assert foundation("dbt", "sources", "--check", "--root", str(root), cwd=tmp_path).returncode == 0


def test_dbt_commands_without_a_dbt_project_say_what_to_add(tmp_path, jaffle_root):
    done = foundation("dbt", "build", "--root", str(jaffle_root), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no dbt project: add `[dbt]` with `project_dir = \"dbt\"`" in flat(done.stderr)


HOSTILE_DATA_PY = '''
def rows():
    """Rows, see {{ config(materialized='table') }} and {% if x %}, even {% endraw %}."""
    yield [{"id": 1}]
'''
HOSTILE_YAML = '''
resources:
  odd.rows:
    entry: data.rows
    primary_key: id
    columns:
      id: {data_type: bigint, description: "{# a comment #} {{ var('x') }}"}
sources:
  odd:
    description: "{% for x in y %}"
    owners: ["team:{{ env_var('HOME') }}"]
    resources: [odd.rows]
'''


def test_prepare_installs_packages_and_jinja_in_descriptions_reaches_dbt_as_text(jaffle_root, tmp_path):
    """`foundation dbt prepare` (what make runs) prepares as dagster-dbt does: `dbt deps` when the project has
    packages (a local one here: no network), then `dbt parse`. dbt renders every value of a schema file with Jinja:
    a docstring or description with `{{`/`{%` must reach the manifest as written, not run or break the parse."""
    root = copy_jaffle(tmp_path / "root")
    write_source(root, "odd", HOSTILE_DATA_PY, HOSTILE_YAML)
    package = tmp_path / "shop_macros"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: shop_macros\nversion: '1.0.0'\nconfig-version: 2\n")
    (package / "macros" / "first_letter.sql").write_text(
        "{% macro first_letter(column) %}substr({{ column }}, 1, 1){% endmacro %}\n")
    settings = copy_dbt_project(tmp_path / "dbt", root)
    (settings.project_dir / "packages.yml").write_text(f"packages:\n  - local: {package}\n")
    (settings.project_dir / "models" / "marts" / "initials.sql").write_text(
        "select {{ shop_macros.first_letter('customer_name') }} as initial from {{ ref('customers') }}\n")
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')

    done = foundation("dbt", "prepare", "--root", str(root), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote {settings.manifest_path}" in flat(done.stdout)
    manifest = json.loads(settings.manifest_path.read_text())
    assert "model.jaffle_shop.initials" in manifest["nodes"]
    assert "macro.shop_macros.first_letter" in manifest["macros"]
    source = manifest["sources"]["source.jaffle_shop.odd.rows"]
    assert source["description"] == "Rows, see {{ config(materialized='table') }} and {% if x %}, even {% endraw %}."
    assert source["source_description"] == "{% for x in y %}"
    assert source["columns"]["id"]["description"] == "{# a comment #} {{ var('x') }}"
    assert source["meta"]["owners"] == ["team:{{ env_var('HOME') }}"]


ODD_DATA_PY = '''
import dlt


def keyed(version: int = dlt.config.value):
    """Rows keyed by SQL reserved words, with a nested field."""
    yield [{"select": i, "group": i % 2, "amount": i * 1.5, "address": {"zipCode": f"z{i}"}} for i in range(3)]


def events():
    yield [{"eventId": 1, "what": "click"}, {"eventId": 2, "what": "view"}]


def history(version: int = dlt.config.value):
    yield [{"id": i, "state": f"v{version}" if i == 0 else "same"} for i in range(3)]
'''
ODD_YAML = '''
resources:
  odd.order:
    entry: data.keyed
    write_disposition: merge
    primary_key: select
    merge_key: group
    columns:
      address__zipCode: {data_type: text, description: The postal code.}
      amount: {data_type: decimal, precision: 10, scale: 2}
  odd.events:
    entry: data.events
    write_disposition: append
    primary_key: eventId
  odd.history:
    entry: data.history
    write_disposition: {disposition: merge, strategy: scd2}
    primary_key: id
'''


def test_generated_key_tests_pass_on_what_dlt_loads(jaffle_root, tmp_path):
    """Against real loads: a key named like a reserved word (quoted), an append table loaded twice (duplicates are
    its nature: no unique test), an scd2 table after a change (unique among the current rows), and a nested column
    under the name dlt gives it."""
    from data_foundation.load.running import run_source

    root = copy_jaffle(tmp_path / "root")
    write_source(root, "odd", ODD_DATA_PY, ODD_YAML)
    warehouse = tmp_path / "w.duckdb"
    target = create_target("duckdb", str(warehouse))
    project = load_project(root)
    for version in (1, 2):
        os.environ["SOURCES__ODD__VERSION"] = str(version)
        try:
            run_source(project.sources["odd"], target)
        finally:
            del os.environ["SOURCES__ODD__VERSION"]
    settings = copy_dbt_project(tmp_path / "dbt", root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')
    [odd] = [s for s in yaml.safe_load(settings.sources_file.read_text())["sources"] if s["name"] == "odd"]
    columns = {c["name"]: c for c in odd["tables"][0]["columns"]}
    assert columns["select"]["quote"] is True and "address__zip_code" in columns
    assert columns["amount"]["data_type"] == "decimal(10,2)"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = {r[0] for r in con.sql("SELECT column_name FROM information_schema.columns "
                                        "WHERE table_schema = 'odd' AND table_name = 'order'").fetchall()}
    assert set(columns) <= loaded  # every documented column is one dlt created

    # foundation's options where users type them: --root before the command, -t and --duckdb-file= among dbt's
    done = foundation("--root", str(root), "dbt", "test", "--select", "source:odd", "-t", "duckdb",
                      f"--duckdb-file={warehouse}", cwd=tmp_path)
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert done.returncode == 0, output[-3000:] + done.stderr
    assert "dbt test against target `duckdb` (duckdb)" in done.stderr
    assert re.search(r"Done\. PASS=5 WARN=0 ERROR=0", output)
    assert "PASS source_unique_odd_order__select_" in output and "PASS source_unique_odd_history_id" in output
    assert "source_unique_odd_events" not in output  # append: no unique test


def test_the_target_option_in_every_form_click_accepts(jaffle_root, tmp_path):
    """`-tpostgres` once reached dbt untouched: dbt used its postgres output with dev's environment. Every form of
    foundation's options is taken out of dbt's command line, and `foundation dbt --target x build` works too."""
    from data_foundation.cli.dbt import _split_options

    for form in (["-tlake"], ["-t=lake"], ["--target=lake"], ["-t", "lake"], ["--target", "lake"]):
        assert _split_options(["--select", "marts", *form, "--debug"]) == (
            {"target": "lake"}, ["--select", "marts", "--debug"]), form  # dbt's own --debug stays dbt's
    copy_dbt_project(tmp_path / "dbt", jaffle_root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n'
                                              '[targets.lake]\ndestination = "filesystem"\n')
    # the option wins over $FOUNDATION_TARGET wherever it is typed (prepare's own option once read the variable)
    for command in (["dbt", "debug", "-tlake"], ["dbt", "--target", "lake", "debug"], ["dbt", "-t", "lake", "prepare"]):
        done = foundation(*command, "--root", str(jaffle_root), cwd=tmp_path, FOUNDATION_TARGET="dev")
        assert done.returncode == 1 and "has no output `lake` or `filesystem`" in flat(done.stderr), (command,
                                                                                                    done.stderr)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "foundation.toml").write_text('dbt = "dbt"\n')
    done = foundation("dbt", "sources", "--root", str(jaffle_root), cwd=bad)
    assert done.returncode == 1 and "dbt must be a table" in done.stderr and "Traceback" not in done.stderr



def test_credentials_dlt_cannot_parse_are_one_line_without_the_secret(jaffle_root, tmp_path):
    copy_dbt_project(tmp_path / "dbt", jaffle_root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')
    secret = "S3cret-pw-9911"
    done = foundation("dbt", "build", "--target", "postgres", "--root", str(jaffle_root), cwd=tmp_path,
                      DESTINATION__POSTGRES__CREDENTIALS=f"postgresql://u:{secret}@@127.0.0.1:notaport/db")
    assert done.returncode == 1 and "Traceback" not in done.stderr and "looks like a bug" not in done.stderr
    assert "the postgres credentials do not resolve for dbt" in flat(done.stderr)
    assert secret not in done.stdout + done.stderr


def test_a_sources_yml_that_cannot_be_read_or_written_is_a_readable_error(tmp_path):
    from data_foundation.dbt.settings import DbtError, DbtSettings
    from data_foundation.dbt.sources_yml import stale_sources, write_sources

    root = write_source(tmp_path / "root", "sensors", DATA_PY, SOURCES_YAML)
    project = load_project(root)
    (tmp_path / "dbt" / "models").mkdir(parents=True)
    settings = DbtSettings.at(tmp_path / "dbt")
    settings.sources_file.write_bytes(b"\xff\xfe not UTF-8")
    with pytest.raises(DbtError, match="cannot read it .*run `foundation dbt sources` to write it again"):
        stale_sources(project, settings)
    settings.sources_file.unlink()
    settings.sources_file.mkdir()  # a folder where the file should be
    with pytest.raises(DbtError, match="sources.yml: cannot write it"):
        write_sources(project, settings)


def test_a_manifest_being_rewritten_is_read_once_dbt_has_written_it(tmp_path):
    """dbt rewrites target/manifest.json in place on every command: a reader that meets it half written (a
    `foundation dbt build` beside a Dagster process loading its definitions) waits for the whole file."""
    import threading

    from data_foundation.dbt.invoke import read_manifest

    manifest = tmp_path / "manifest.json"
    whole = json.dumps({"nodes": {f"model.x.m{i}": {"name": f"m{i}"} for i in range(100)}})
    manifest.write_text(whole[: len(whole) // 2])
    writer = threading.Timer(0.3, manifest.write_text, [whole])
    writer.start()
    try:
        assert read_manifest(manifest)["nodes"]["model.x.m99"] == {"name": "m99"}
    finally:
        writer.join()
    manifest.write_text("{")
    with pytest.raises(ValueError):
        read_manifest(manifest, attempts=2, pause=0.01)
