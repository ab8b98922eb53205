"""`foundation new NAME`: the generated folder validates and loads as generated; existing names are refused."""

from pathlib import Path

import pytest

from data_foundation.config.loading import load_project
from data_foundation.scaffold import ScaffoldError, scaffold_source

from conftest import query, table_counts
from test_cli import flat, foundation, table_rows


def test_new_source_validates_and_runs(tmp_path):
    created = foundation("--root", "sources", "new", "shop_api", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    folder = tmp_path / "sources" / "shop_api"
    assert sorted(p.name for p in folder.iterdir()) == ["__init__.py", "data.py", "sources.yaml"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["shop_api", "sources.schema.json"]  # for editors
    assert [line.removeprefix("created ") for line in created.stdout.splitlines() if line.startswith("created ")] == [
        str(Path("sources", "shop_api", name)) for name in ("__init__.py", "data.py", "sources.yaml")] + [
        str(Path("sources", "sources.schema.json"))]
    assert "`foundation run shop_api`" in flat(created.stdout)

    validated = foundation("validate", cwd=tmp_path, FOUNDATION_SOURCES_ROOT="sources")
    assert validated.returncode == 0, validated.stderr
    assert "OK 1 source(s), 1 resource(s) valid in sources." in validated.stdout
    assert validated.stderr == ""  # not even a warning

    run = foundation("--root", "sources", "run", "shop_api", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # the template's fetch_items: 3 pages of 100 items
    assert table_counts(tmp_path / "foundation.duckdb", "shop_api_tester") == {"items": 300}
    assert query(tmp_path / "foundation.duckdb", "SELECT MIN(id), MAX(id), COUNT(DISTINCT id) FROM shop_api_tester.items") == [
        (0, 299, 300)]
    assert query(tmp_path / "foundation.duckdb", "SELECT name FROM shop_api_tester.items WHERE id = 123") == [("item 123",)]
    assert table_rows(run.stdout) == [["shop_api_tester", "items", "300", "300"]]
    assert not list(folder.rglob("__pycache__"))


def test_new_refuses_an_existing_folder(tmp_path):
    existing = tmp_path / "dlthub" / "my_api"  # the default root, relative to the working directory
    existing.mkdir(parents=True)
    (existing / "data.py").write_text("# mine\n")
    result = foundation("new", "my_api", cwd=tmp_path)
    assert result.returncode == 1
    assert f"Error: `{Path('dlthub', 'my_api')}` already exists: choose another name or edit it" in flat(result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert sorted(p.name for p in existing.iterdir()) == ["data.py"]
    assert (existing / "data.py").read_text() == "# mine\n"


def test_scaffolded_spec(tmp_path):
    created = scaffold_source(tmp_path / "root", "orders_api")
    assert created == [tmp_path / "root" / "orders_api" / name for name in ("__init__.py", "data.py", "sources.yaml")
                       ] + [tmp_path / "root" / "sources.schema.json"]
    project = load_project(tmp_path / "root")
    assert project.warnings == []
    items = project.sources["orders_api"].resource("items")
    assert items.name == "orders_api.items"
    assert items.spec.keyword_arguments == {"page_size": 100, "pages": 3}
    assert (items.spec.disposition, items.spec.primary_key, items.spec.kinds) == ("merge", "id", ["api"])
    assert items.description == "Example items, yielded one page (a list of dicts) at a time."
    config = items.dagster.automation_condition_config
    assert (items.dagster.automation_condition, config.cron_schedule, config.cron_timezone) == (
        "on_schedule", "@daily", "UTC")
    assert items.dagster.freshness_lower_bound_delta_seconds == 108000
    pages = list(items.function(**items.spec.keyword_arguments))
    assert [len(page) for page in pages] == [100, 100, 100]
    assert pages[2][99] == {"id": 299, "name": "item 299"}


@pytest.mark.parametrize("name", ["my-api", "1api", "my api", ""])
def test_scaffold_refuses_invalid_names(tmp_path, name):
    with pytest.raises(ScaffoldError, match="is not a valid source name"):
        scaffold_source(tmp_path / "root", name)
    assert not (tmp_path / "root").exists()


def test_scaffold_refuses_an_existing_folder(tmp_path):
    scaffold_source(tmp_path, "twice")
    before = (tmp_path / "twice" / "sources.yaml").read_text()
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold_source(tmp_path, "twice")
    assert (tmp_path / "twice" / "sources.yaml").read_text() == before
