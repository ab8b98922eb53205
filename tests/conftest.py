"""Shared fixtures: isolated dlt state per test, a real Jaffle Shop replica on 127.0.0.1, DuckDB files in tmp_path."""

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
# The shipped Jaffle Shop source folder. Tests never load the live `dlthub/` root (a source a developer adds there
# must not change what the suite sees): they copy this one folder into a root of their own (`jaffle_root`).
JAFFLE_FOLDER = REPO / "dlthub" / "jaffle_shop"
# Every source folder the repository ships (issue 13 added the four after the Jaffle Shop). Named, never globbed.
SHIPPED_SOURCES = ("jaffle_shop", "exchange_rate", "open_data", "facebook_ads", "google_ads")
EXAMPLES_ROOT = REPO / "examples"
DBT_PROJECT = REPO / "dbt"
FULL_JAFFLE = {"customers": 935, "orders": 61_948, "items": 90_900, "products": 10, "stores": 6, "supplies": 65}


# The longest files, longest first (~4 min, then 1-2 min each): with a file per worker (`--dist loadfile`) the
# workers take files in collection order, so the short ones fill in at the end instead of a long one running alone.
LONGEST_FILES = ("tests/test_docs.py", "tests/test_faults.py", "tests/test_dbt_dagster.py", "tests/test_dagster.py",
                 "tests/test_backfill.py", "tests/test_dagster_ui.py", "tests/test_postgres.py",
                 "tests/test_dbt_sources.py", "tests/test_doctor.py", "tests/test_pages.py")


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Files in LONGEST_FILES order first, the others after them as collected."""
    rank = {path: n for n, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(autouse=True)
def _isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own dlt pipelines dir and no inherited foundation settings."""
    for name in list(os.environ):
        if name.startswith(("FOUNDATION_", "SOURCES__", "DESTINATION__")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "WARNING")
    monkeypatch.setenv("FOUNDATION_USER", "tester")


def write_source(root: Path, name: str, data_py: str, sources_yaml: str) -> Path:
    """A source folder `root/name/` (`__init__.py`, `data.py`, `sources.yaml`); returns `root`."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text(data_py)
    (folder / "sources.yaml").write_text(sources_yaml)
    return root


def copy_jaffle(root: Path) -> Path:
    """`root/jaffle_shop/` copied from the repository (no `__pycache__`); returns `root`."""
    return copy_source(root, "jaffle_shop")


# Tests of how a load behaves (faults, windows, locks, Dagster runs), rather than of what a year of orders holds, start
# the orders' cursor on the replica's last month: a twelfth of the orders through the same code.
LATE_START = "2017-08-01"


def copy_late_jaffle(root: Path) -> Path:
    """`copy_jaffle`, with the orders' `initial_value` on LATE_START; returns `root`."""
    yaml = copy_jaffle(root) / "jaffle_shop" / "sources.yaml"
    text = yaml.read_text()
    assert 'initial_value: "2016-09-01T00:00:00"' in text
    yaml.write_text(text.replace('initial_value: "2016-09-01T00:00:00"', f'initial_value: "{LATE_START}T00:00:00"'))
    return root


def late_counts(replica) -> Dict[str, int]:
    """The rows a load of the late Jaffle Shop source holds: the replica's, less the orders before LATE_START and
    their items (the replica stores orders in day order, `day_starts` index them)."""
    first = replica.state.day_starts[replica.state.order_days.index(LATE_START)]
    orders = replica.state.rows["orders"][first:]
    return {**replica.row_counts(), "orders": len(orders),
            "items": sum(len(json.loads(order)["items"]) for order in orders)}


def serve_late_only(replica) -> Dict[str, int]:
    """Trim the replica to its orders from LATE_START on and their items: its API (`/row-counts` too) then serves what
    `late_counts` counts, so a load of the late source reconciles, and its Dagster checks pass, as a load of the whole
    Jaffle Shop does. Returns the counts. (The replica stores an order's items after those of the orders before it.)"""
    import dataclasses

    with replica._lock:
        state = replica.state
        late = late_counts(replica)
        day = state.order_days.index(LATE_START)
        first = state.day_starts[day]
        items = state.rows["items"][len(state.rows["items"]) - late["items"]:]
        assert json.loads(items[0])["order_id"] == json.loads(state.rows["orders"][first])["id"]
        replica._state = dataclasses.replace(
            state, rows={**state.rows, "orders": state.rows["orders"][first:], "items": items},
            order_days=state.order_days[day:], day_starts=[start - first for start in state.day_starts[day:]])
    assert replica.row_counts() == late == late_counts(replica)
    return late


def copy_source(root: Path, *names: str) -> Path:
    """The shipped source folders `names` copied from the repository's `dlthub/` into `root` (no `__pycache__`);
    returns `root`."""
    for name in names:
        shutil.copytree(REPO / "dlthub" / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def copy_dbt_project(destination: Path, root: Path):
    """The repository's dbt project copied to `destination` (no build artifacts), its sources.yml generated from the
    sources root `root` (never the live dlthub/); returns its `DbtSettings`."""
    from data_foundation.config.loading import load_project
    from data_foundation.dbt.settings import DbtSettings
    from data_foundation.dbt.sources_yml import write_sources

    shutil.copytree(DBT_PROJECT, destination, ignore=shutil.ignore_patterns("target", "logs", ".user.yml",
                                                                             "sources.yml"))
    settings = DbtSettings.at(destination)
    write_sources(load_project(root), settings)
    return settings


def make_dg_project(path: Path, targets: str = "") -> Path:
    """A dg project as `create-dagster project platform-x` lays it out (flat: `platform_x/` with its `defs/` at the
    root), using this interpreter (`.env`, as dg reads it); `targets` is TOML for `[tool.data-foundation]`."""
    (path / "platform_x" / "defs").mkdir(parents=True)
    (path / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "platform-x"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = ["data-foundation"]

        [tool.dg]
        directory_type = "project"

        [tool.dg.project]
        root_module = "platform_x"

        [tool.dg.cli]
        suppress_warnings = ["project_and_activated_venv_mismatch"]
        telemetry.enabled = false
        """) + targets)
    (path / ".env").write_text(f"DG_PROJECT_PYTHON_EXECUTABLE={sys.executable}\n")
    (path / "platform_x" / "__init__.py").write_text("")
    (path / "platform_x" / "defs" / "__init__.py").write_text("")
    (path / "platform_x" / "definitions.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        import dagster as dg


        @dg.definitions
        def defs():
            return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
        """))
    return path


@pytest.fixture(scope="session")
def jaffle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sources root holding only a copy of the Jaffle Shop source (shared by the session: do not modify it)."""
    return copy_jaffle(tmp_path_factory.mktemp("jaffle_root"))


@pytest.fixture
def replica() -> Iterator["JaffleReplica"]:  # noqa: F821
    from jaffle_replica import JaffleReplica

    with JaffleReplica() as server:
        yield server


@pytest.fixture
def jaffle_env(replica, monkeypatch: pytest.MonkeyPatch):
    """Point the Jaffle Shop source at the replica, with quick retries."""
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__BASE_URL", replica.base_url)
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__REQUEST_TIMEOUT", "5")
    return replica


@pytest.fixture(scope="session")
def late_jaffle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sources root holding the late Jaffle Shop source (`copy_late_jaffle`; shared: do not modify it)."""
    return copy_late_jaffle(tmp_path_factory.mktemp("late_jaffle_root"))


@pytest.fixture
def late_jaffle(jaffle_env, late_jaffle_root):
    """The Jaffle Shop source with its orders from LATE_START on, pointed at a fresh replica."""
    from data_foundation.config.loading import load_project

    return load_project(late_jaffle_root).sources["jaffle_shop"]


@pytest.fixture
def late_api(jaffle_env):
    """`jaffle_env` (a fresh replica) serving only its orders from LATE_START on (`serve_late_only`)."""
    serve_late_only(jaffle_env)
    return jaffle_env


@pytest.fixture
def jaffle(jaffle_env, jaffle_root):
    """The Jaffle Shop source (from `jaffle_root`), pointed at a fresh replica."""
    from data_foundation.config.loading import load_project

    return load_project(jaffle_root).sources["jaffle_shop"]


@pytest.fixture
def duckdb_file(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def table_counts(path: Path, dataset: str) -> Dict[str, int]:
    """Row counts of every data table of `dataset` in the DuckDB file at `path`."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE '_dlt%'",
            params=[dataset]).fetchall()]
        return {t: con.sql(f'SELECT COUNT(*) FROM "{dataset}"."{t}"').fetchall()[0][0] for t in tables}


def query(path: Path, sql: str, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql, params=params).fetchall() if params else con.sql(sql).fetchall()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 (skipped, saying why, when the server binaries are not installed)."""
    import pg

    if pg.bin_dir() is None:
        pytest.skip("PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does)")
    yield from pg.start_postgres()
