"""The package's public API (`data_foundation/__init__.py`) and the layout rules the tree promises."""

import ast
import subprocess
import sys
from pathlib import Path

import duckdb

import data_foundation as df
from conftest import write_source

PACKAGE = Path(df.__file__).parent
DATA_PY = """
def numbers(count):
    yield [{"n": n} for n in range(count)]
"""
SOURCES_YAML = """
resources:
  nums.numbers:
    entry: data.numbers
    arguments: [3]
"""


def test_public_api_validates_builds_and_runs_a_source(tmp_path):
    root = write_source(tmp_path / "root", "nums", DATA_PY, SOURCES_YAML)
    project = df.load_project(root)
    assert isinstance(project, df.Project) and isinstance(project.sources["nums"], df.SourceDef)
    assert [r.name for r in project.resources] == ["nums.numbers"]
    assert isinstance(project.resources[0], df.ResourceDef)
    assert df.validate_root(root)[1] == []
    assert list(df.build_source(project.sources["nums"]).resources) == ["numbers"]

    target = df.create_target("duckdb", str(tmp_path / "w.duckdb"))
    assert isinstance(target, df.Target)
    run = df.run_source(project.sources["nums"], target)
    assert isinstance(run, df.SourceRun) and run.rows_loaded == {"numbers": 3}
    assert [r.rows_total for r in df.run_selection(project, target, ["nums.numbers"])] == [{"numbers": 6}]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("SELECT SUM(n) FROM nums.numbers").fetchall() == [(6,)]  # 0+1+2, appended twice


def test_public_api_reports_problems_with_one_error_type(tmp_path):
    root = write_source(tmp_path / "root", "nums", DATA_PY, SOURCES_YAML.replace("data.numbers", "data.numbrs"))
    project, problems = df.validate_root(root)
    assert [type(p) for p in problems] == [df.Problem] and "did you mean `numbers`?" in problems[0].format()
    try:
        df.load_project(root)
    except df.FoundationError as exc:
        assert "has no function `numbrs`" in str(exc)
    else:
        raise AssertionError("load_project accepted an entry that names no function")


def test_every_public_name_is_documented_and_resolves():
    assert sorted(df.__all__) == sorted(set(df.__all__))
    undocumented = [name for name in df.__all__ if not (getattr(df, name).__doc__ or "").strip()]
    assert not undocumented
    assert "Example:" in df.__doc__


def test_importing_the_package_imports_neither_dlt_nor_dagster():
    """`import data_foundation` is what the import child and every CLI start pay: names load on first use."""
    code = "import sys, data_foundation; print(sorted(m for m in ('dlt', 'dagster', 'pydantic') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _imports(package: str):
    for file in (PACKAGE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield file, node.module
            elif isinstance(node, ast.Import):
                yield from ((file, alias.name) for alias in node.names)


def test_data_flows_one_way_through_the_packages():
    """config -> load -> dbt -> dagster -> cli: nothing imports a package downstream of it, and only dagster/ imports
    Dagster."""
    downstream = {"config": ("data_foundation.load", "data_foundation.dbt", "data_foundation.dagster",
                             "data_foundation.cli", "dagster"),
                  "load": ("data_foundation.dbt", "data_foundation.dagster", "data_foundation.cli", "dagster"),
                  "dbt": ("data_foundation.dagster", "data_foundation.cli", "dagster"),
                  "dagster": ("data_foundation.cli",)}
    wrong = [f"{file.relative_to(PACKAGE)} imports {module}" for package, banned in downstream.items()
             for file, module in _imports(package) if module.startswith(banned)]
    assert not wrong


def test_the_runtime_package_ships_no_test_replica():
    assert not (PACKAGE / "jaffle").exists()
    assert not [f for f in PACKAGE.rglob("*") if f.suffix == ".xz"]


def test_architecture_doc_names_every_module_of_the_tree():
    """docs/architecture.md's table is the map of the tree: every module it names exists, and every module is named
    (the doctor's modules by their names, as the doc lists them)."""
    import re

    doc = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)(?:\.py)?`", doc))
    modules = {f.stem for f in PACKAGE.rglob("*.py") if f.stem not in ("__init__", "__main__")}
    assert not {f"{m}.py" for m in re.findall(r"`([a-z_]+)\.py`", doc)} - {f"{m}.py" for m in modules}
    assert not modules - named
