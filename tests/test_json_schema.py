"""The JSON Schema of sources.yaml for editors (`config/json_schema.py`, `foundation schema`, the committed
`schema/sources.schema.json`): it accepts what the loader accepts (the valid cases, the template, whatever sources
`dlthub/` holds, YAML's shorthands), rejects a typo'd key at any depth as the loader does, and says what each key
does. In-process but for one CLI call (`foundation schema`, printing to a pipe)."""

import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from data_foundation.scaffold import SCHEMA_FILE, scaffold_source
from data_foundation.config.folders import source_folders
from data_foundation.config.json_schema import schema_text, sources_schema
from data_foundation.config.loading import validate_root

from conftest import write_source
from test_cli import flat, foundation

REPO = Path(__file__).parents[1]
COMMITTED = REPO / "schema" / "sources.schema.json"
REGENERATE = "foundation schema --output schema/sources.schema.json"
MODELINE = "# yaml-language-server: $schema=../sources.schema.json"
DATA_PY = """
def fetch_items(page_size=10):
    yield [{"id": 1, "status": "placed"}]


def valid_item(row):
    return True
"""


class EditorYaml(yaml.SafeLoader):
    """YAML as an editor's language server reads it (YAML 1.2): `2024-01-01` is a string, not a date."""


EditorYaml.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = sources_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(validator: Draft202012Validator, text: str) -> List[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(yaml.load(text, Loader=EditorYaml))]


def template(name: str) -> str:
    source = resources.files("data_foundation") / "templates" / "source" / "sources.yaml.tmpl"
    return source.read_text(encoding="utf-8").format(name=name)


def test_the_committed_schema_is_the_generated_one():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "data-foundation sources.yaml" and schema["description"]
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        f"schema/sources.schema.json is not what the models of src/data_foundation/config/ generate: run "
        f"`{REGENERATE}` and commit the file")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in [
    *(REPO / "tests" / "cases" / "valid").rglob("sources.yaml"), *(REPO / "examples").rglob("sources.yaml")]))
def test_a_valid_file_validates(validator, path):
    assert schema_errors(validator, (REPO / path).read_text(encoding="utf-8")) == []


def test_the_template_validates(validator):
    assert schema_errors(validator, template("my_api")) == []


def test_every_shipped_source_validates(validator):
    """Whatever `dlthub/` holds: each shipped sources.yaml is valid, so the schema accepts it."""
    refused = {str(path): errors for path in sorted((REPO / "dlthub").glob("*/sources.yaml"))
               if (errors := schema_errors(validator, path.read_text(encoding="utf-8")))}
    assert refused == {}


SHORTHANDS = """
resources:
    {name}.items:
        entry: data.fetch_items
        arguments: 5                    # one value: [5]
        keyword_arguments:              # null: {{}}
        primary_key: id                 # one column: [id]
        kinds: {{api, json}}            # the set form: {{api: null, json: null}}
        owners: team:data
        tags:
        columns:
            id: {{data_type: bigint, nullable: false, x-mine: 1}}
        incremental: {{cursor_path: id, initial_value: 2024-01-01}}
        pii: {{hash: status}}
        checks:
            min_rows: 1
            max_rows: {{value: 10, on_failure: warn}}
            not_null: id
            unique: [id, [id, status]]
            accepted_values: {{status: [placed], on_failure: warn}}
            predicate: data.valid_item
sources:
    {name}:
        resources: [{name}.items]
        owners: {{team:data}}
        meta:
            dagster:
                partition: {{type: daily, start: 2024-01-01}}
                automation_condition: on_schedule
                automation_condition_config: {{cron_schedule: "@daily", cron_timezone: utc}}
"""


def test_shorthands_validate_as_the_loader_reads_them(validator, tmp_path):
    text = SHORTHANDS.format(name="short")
    assert schema_errors(validator, text) == []
    root = write_source(tmp_path, "short", DATA_PY.replace("page_size=10", "page_size=10, start_date=None, "
                                                                           "end_date=None"), text)
    project, problems = validate_root(root)
    assert problems == []
    spec = project.sources["short"].resource("items").spec
    assert (spec.kinds, spec.primary_key_columns, spec.arguments, spec.keyword_arguments) == (
        ["api", "json"], ["id"], [5], {})


BASE = """
resources:
    {name}.items:
        entry: data.fetch_items
        write_disposition: merge
        primary_key: id
        incremental: {{cursor_path: id}}
        columns: {{id: {{data_type: bigint, nullable: false}}}}
        checks: {{min_rows: 1}}
        meta: {{dagster: {{group_name: items}}}}
sources:
    {name}:
        resources: [{name}.items]
        description: Items.
        meta:
            dagster:
                automation_condition: on_schedule
                automation_condition_config: {{cron_schedule: "@daily", cron_timezone: UTC}}
"""
# a typo'd key, as a replacement in BASE: where the schema's error points (its JSON path), and the loader's key path
TYPOS = {
    "top_level": ("\nsources:", "\nsource:", "$", "source"),
    "resource": ("write_disposition:", "write_dispositon:", "$.resources['{name}.items']",
                 "resources.{name}.items.write_dispositon"),
    "incremental": ("{{cursor_path: id}}", "{{cursor_path: id, cursor: id}}", "$.resources['{name}.items'].incremental",
                    "resources.{name}.items.incremental.cursor"),
    "column_hint": ("nullable:", "nulable:", "$.resources['{name}.items'].columns.id",
                    "resources.{name}.items.columns.id.nulable"),
    "checks": ("min_rows: 1", "min_row: 1", "$.resources['{name}.items'].checks",
               "resources.{name}.items.checks.min_row"),
    "resource_meta_dagster": ("group_name: items", "group: items", "$.resources['{name}.items'].meta.dagster",
                              "resources.{name}.items.meta.dagster.group"),
    "source": ("description:", "descripton:", "$.sources.{name}", "sources.{name}.descripton"),
    "meta_dagster": ("automation_condition:", "automation_conditon:", "$.sources.{name}.meta.dagster",
                     "sources.{name}.meta.dagster.automation_conditon"),
    "automation_condition_config": ("cron_timezone:", "cron_timezon:",
                                    "$.sources.{name}.meta.dagster.automation_condition_config",
                                    "sources.{name}.meta.dagster.automation_condition_config.cron_timezon"),
}


def typo_cases() -> Iterator[Tuple[str, str, str, str, str]]:
    """(folder name, sources.yaml, the schema error's JSON path, the bad key, the loader's key path) of each typo."""
    for case, (right, wrong, json_path, key_path) in TYPOS.items():
        name = f"typo_{case}"
        base = BASE.format(name=name)
        right, wrong = right.format(), wrong.format()
        assert base.count(right) == 1, case
        yield (name, base.replace(right, wrong), json_path.format(name=name), key_path.split(".")[-1],
               key_path.format(name=name))


def test_a_source_without_settings_and_an_empty_file_are_valid_for_both(validator, tmp_path):
    """What the loader accepts the editor must not flag: `shop:` with nothing after it, a file of comments only."""
    empty_source = "resources:\n  bare.items:\n    entry: data.fetch_items\nsources:\n  bare:\n"
    assert schema_errors(validator, empty_source) == []
    assert schema_errors(validator, "# nothing here yet\n") == []
    project, problems = validate_root(write_source(tmp_path, "bare", DATA_PY, empty_source))
    assert problems == [] and list(project.sources) == ["bare"]


@pytest.mark.parametrize("yaml_text, where", [
    ("resources:\n  shop.items:\n    entry: data.fetch_items\n  shop.details:\n    entry: data.valid_item\n"
     "    data_from: items\n", "$.resources['shop.details'].data_from"),
    ("resources:\n  shop.items:\n    entry: data.fetch_items\nsources:\n  shop:\n    resources: [items]\n",
     "$.sources.shop.resources[0]"),
])
def test_resource_names_are_source_dot_table_for_both(validator, tmp_path, yaml_text, where):
    error = best_match(validator.iter_errors(yaml.load(yaml_text, Loader=EditorYaml)))
    assert error is not None and error.json_path == where, error and error.json_path
    _, problems = validate_root(write_source(tmp_path, "shop", DATA_PY, yaml_text))
    assert problems, "the loader accepts what the schema refuses"


def test_the_base_of_the_typos_is_valid(validator):
    assert schema_errors(validator, BASE.format(name="base")) == []


@pytest.mark.parametrize("name, text, json_path, key, _", list(typo_cases()), ids=list(TYPOS))
def test_a_typo_is_refused_where_it_is(validator, name, text, json_path, key, _):
    error = best_match(validator.iter_errors(yaml.load(text, Loader=EditorYaml)))
    assert error is not None, f"the schema accepts `{key}`"
    assert (error.json_path, f"'{key}'" in error.message) == (json_path, True), error.message


def test_the_loader_refuses_each_typo_too(tmp_path):
    """Schema and loader agree: every typo the schema refuses is a problem at the same key for `validate`."""
    cases = list(typo_cases())
    for name, text, *_ in cases:
        write_source(tmp_path, name, DATA_PY, text)
    write_source(tmp_path, "base", DATA_PY, BASE.format(name="base"))

    _, problems = validate_root(tmp_path)

    found = {(p.file.parent.name, p.key_path) for p in problems}
    assert found == {(name, key_path) for name, _, _, _, key_path in cases}
    assert all(f"`{p.key_path.split('.')[-1]}`" in p.message for p in problems)


def _properties(node: Any, path: str = "") -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Every key a user writes: each entry of every `properties` in the schema, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    yield f"{path}.{name}", prop
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{path}/{index}")


def test_every_key_says_what_it_does():
    schema = sources_schema()
    undescribed = [where for where, prop in _properties(schema)
                   if not prop.get("description") or "\n" in prop["description"]]
    assert undescribed == []  # a short, one-line `Field(description=...)` on the model
    resource = schema["$defs"]["ResourceSpec"]["properties"]
    assert resource["entry"]["description"].startswith("The function yielding the table's data")
    assert "`merge`" in resource["write_disposition"]["description"]


def test_foundation_schema_prints_the_committed_schema(tmp_path):
    printed = foundation("schema", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert printed.stdout == COMMITTED.read_text(encoding="utf-8")


def cli(*args: str) -> Any:
    """The `foundation` command in this process (`foundation(...)` runs it as a subprocess)."""
    from typer.testing import CliRunner

    from data_foundation.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_foundation_schema_output_writes_the_file(tmp_path):
    target = tmp_path / "editor" / "sources.schema.json"
    written = cli("schema", "--output", str(target))
    assert written.exit_code == 0, written.output
    assert flat(written.output) == f"wrote {target}"
    assert target.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")


def test_new_writes_the_modeline_and_the_schema_beside_the_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    created = cli("--root", "sources", "new", "shop_api")
    assert created.exit_code == 0, created.output
    root = tmp_path / "sources"
    assert (root / "shop_api" / "sources.yaml").read_text().splitlines()[0] == MODELINE
    assert (root / SCHEMA_FILE).read_text(encoding="utf-8") == schema_text()
    assert created.output.splitlines()[-2:-1] == [f"created {Path('sources', SCHEMA_FILE)}"]

    validated = cli("validate", "sources")
    assert validated.exit_code == 0, validated.output
    assert "OK 1 source(s), 1 resource(s) valid in sources." in flat(validated.output)


def test_the_schema_file_in_the_root_is_not_a_source_folder(tmp_path):
    scaffold_source(tmp_path, "first")
    assert source_folders(tmp_path) == [tmp_path / "first"]
    stale = tmp_path / SCHEMA_FILE
    stale.write_text("{}\n")

    assert scaffold_source(tmp_path, "second") == [tmp_path / "second" / n for n in (
        "__init__.py", "data.py", "sources.yaml")] + [stale]  # refreshed: it was outdated
    assert stale.read_text(encoding="utf-8") == schema_text()
    assert scaffold_source(tmp_path, "third")[-1] == tmp_path / "third" / "sources.yaml"  # current: left alone
    project, problems = validate_root(tmp_path)
    assert problems == [] and sorted(project.sources) == ["first", "second", "third"]


def test_the_checkouts_editor_settings_map_the_schema_as_the_readme_shows():
    """`.vscode/settings.json` maps the committed schema onto the shipped sources, with the line the README shows."""
    settings = json.loads((REPO / ".vscode" / "settings.json").read_text())
    readme = (REPO / "README.md").read_text()
    shown = readme[readme.index("```json\n") + len("```json\n"):]
    assert json.loads(shown[:shown.index("```")]) == settings
    (schema, pattern), = settings["yaml.schemas"].items()
    assert (REPO / schema).read_text() == schema_text()
    assert pattern == "dlthub/*/sources.yaml"


@pytest.mark.parametrize("yaml_text", [
    'resources:\n  "shop.items\\n":\n    entry: data.fetch_items\n',
    'resources:\n  shop.items:\n    entry: "data.fetch_items\\n"\n',
    'resources:\n  shop.items:\n    entry: data.fetch_items\nsources:\n  "shop\\n":\n    resources: [shop.items]\n',
])
def test_a_name_ending_in_a_newline_is_refused_as_editors_refuse_it(tmp_path, yaml_text):
    """Python's `$` matches before a final newline, an editor's (JavaScript's) does not: names match whole."""
    _, problems = validate_root(write_source(tmp_path, "shop", DATA_PY, yaml_text))
    assert problems, "a name with a trailing newline was accepted"
