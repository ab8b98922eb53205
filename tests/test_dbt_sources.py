"""`foundation dbt`: sources.yml generated from the spec (and `--check`), dbt run against a target, and the errors a
user meets without a dbt project or a profile output."""

import json

import yaml

from conftest import copy_dbt_project, copy_jaffle, write_source
from data_foundation.config.loading import load_project
from data_foundation.dbt.environment import dbt_environment
from data_foundation.dbt.invoke import prepare_manifest
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
        "column_name": "cast(sensor_id as varchar) || '|' || cast(taken_at as varchar)"}}}]
    columns = {c["name"]: c for c in readings["columns"]}
    assert list(columns) == ["sensor_id", "taken_at", "value", "email", "_dlt_load_id", "_dlt_id"]
    assert columns["sensor_id"]["data_tests"] == ["not_null"]
    assert columns["taken_at"]["description"] == "Part of the primary key; incremental cursor."
    assert (columns["value"]["data_type"], columns["value"]["description"]) == ("bigint", "The measured value.")
    assert columns["email"]["data_type"] == "text" and "SHA-256" in columns["email"]["description"]
    # arrow pages carry no _dlt_load_id: freshness from the dataset's completed loads instead
    assert flat_table["description"] == "Flat rows."
    assert "_dlt_loads" in flat_table["config"]["loaded_at_query"] and "loaded_at_field" not in flat_table["config"]
    assert [c["name"] for c in flat_table["columns"]] == []


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


def test_a_target_without_a_profile_output_is_named(jaffle_root, tmp_path):
    copy_dbt_project(tmp_path / "dbt", jaffle_root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n'
                                              '[targets.lake]\ndestination = "filesystem"\n')
    done = foundation("dbt", "build", "--target", "lake", "--root", str(jaffle_root), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "has no output `lake` or `filesystem`" in flat(done.stderr) and "add one for this target" in done.stderr


def test_any_dbt_command_runs_against_the_target_with_options_where_users_type_them(jaffle_root, tmp_path):
    copy_dbt_project(tmp_path / "dbt", jaffle_root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')
    # foundation's options before the command or among dbt's (`-t`, `--duckdb-file=`); the rest goes to dbt
    done = foundation("--root", str(jaffle_root), "dbt", "ls", "--resource-type", "model", "-t", "dev",
                      "--select", "marts", f"--duckdb-file={tmp_path / 'w.duckdb'}", "--output", "name", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dbt ls against target `dev` (duckdb)" in done.stderr
    assert sorted(line.strip() for line in done.stdout.splitlines() if line.strip() and " " not in line.strip()) \
        == ["customers", "locations", "order_items", "orders", "products"]


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


def test_jinja_in_descriptions_reaches_dbt_as_text(jaffle_root, tmp_path):
    """dbt renders every value of a schema file with Jinja: a docstring or description with `{{`/`{%` must reach
    the manifest as written, not run or break the parse."""
    root = copy_jaffle(tmp_path / "root")
    write_source(root, "odd", HOSTILE_DATA_PY, HOSTILE_YAML)
    settings = copy_dbt_project(tmp_path / "dbt", root)
    project = load_project(root)
    env = dbt_environment(project, create_target("duckdb", str(tmp_path / "w.duckdb")), settings)
    manifest = json.loads(prepare_manifest(settings, env).read_text())
    source = manifest["sources"]["source.jaffle_shop.odd.rows"]
    assert source["description"] == "Rows, see {{ config(materialized='table') }} and {% if x %}, even {% endraw %}."
    assert source["source_description"] == "{% for x in y %}"
    assert source["columns"]["id"]["description"] == "{# a comment #} {{ var('x') }}"
    assert source["meta"]["owners"] == ["team:{{ env_var('HOME') }}"]


def test_prepare_installs_the_projects_packages_then_writes_the_manifest(jaffle_root, tmp_path):
    """`foundation dbt prepare` (what make runs) prepares as dagster-dbt does: `dbt deps` when the project has
    packages, then `dbt parse`. The package here is local: no network."""
    package = tmp_path / "shop_macros"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: shop_macros\nversion: '1.0.0'\nconfig-version: 2\n")
    (package / "macros" / "first_letter.sql").write_text(
        "{% macro first_letter(column) %}substr({{ column }}, 1, 1){% endmacro %}\n")
    settings = copy_dbt_project(tmp_path / "dbt", jaffle_root)
    (settings.project_dir / "packages.yml").write_text(f"packages:\n  - local: {package}\n")
    (settings.project_dir / "models" / "marts" / "initials.sql").write_text(
        "select {{ shop_macros.first_letter('customer_name') }} as initial from {{ ref('customers') }}\n")
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')

    done = foundation("dbt", "prepare", "--root", str(jaffle_root), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote {settings.manifest_path}" in flat(done.stdout)
    manifest = json.loads(settings.manifest_path.read_text())
    assert "model.jaffle_shop.initials" in manifest["nodes"]
    assert "macro.shop_macros.first_letter" in manifest["macros"]
