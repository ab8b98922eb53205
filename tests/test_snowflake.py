"""Real loads into Snowflake through dlt's snowflake destination (password or key-pair auth).

Runs only when Snowflake credentials are in the environment and the `snowflake` extra is installed
(`pip install -e '.[snowflake]'`); otherwise every test is skipped and pytest's summary (-ra) says why. Each test
loads into datasets with a unique prefix and drops them afterwards. Credentials are read once, at import: the
autouse fixture in conftest.py clears DESTINATION__* for every test, so they are set again per test.
"""

import importlib.util
import os
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterator, List

import pytest

from conftest import EXAMPLES_ROOT, FULL_JAFFLE
from data_foundation.load.destinations import Target, create_target
from data_foundation.config.loading import load_project
from data_foundation.load.reconcile import reconcile
from data_foundation.config.project import SourceDef
from data_foundation.load.running import SourceRun, create_pipeline, run_source

PREFIX = "DESTINATION__SNOWFLAKE__CREDENTIALS__"
CREDENTIALS: Dict[str, str] = {k: v for k, v in os.environ.items() if k.startswith("DESTINATION__SNOWFLAKE__")}


def _skip_reason() -> str:
    missing = [f"{PREFIX}{f}" for f in ("HOST", "USERNAME", "DATABASE", "WAREHOUSE") if not CREDENTIALS.get(PREFIX + f)]
    if not any(CREDENTIALS.get(PREFIX + f) for f in ("PASSWORD", "PRIVATE_KEY", "PRIVATE_KEY_PATH")):
        missing.append(f"{PREFIX}PASSWORD or {PREFIX}PRIVATE_KEY")
    if missing:
        return (f"Snowflake credentials not set: {', '.join(missing)} (optional: {PREFIX}ROLE, "
                f"{PREFIX}PRIVATE_KEY_PASSPHRASE); see docs/production.md")
    try:
        connector = importlib.util.find_spec("snowflake.connector")
    except ModuleNotFoundError:  # no `snowflake` package at all
        connector = None
    if connector is None:
        return "snowflake-connector-python is not installed: pip install -e '.[snowflake]'"
    return ""


pytestmark = pytest.mark.skipif(bool(_skip_reason()), reason=_skip_reason() or "-")


@dataclass
class Warehouse:
    """The snowflake target plus the sources loaded into it, whose datasets the fixture drops afterwards."""

    target: Target
    loaded: List[SourceDef] = field(default_factory=list)

    def run(self, source: SourceDef) -> SourceRun:
        if source not in self.loaded:
            self.loaded.append(source)
        return run_source(source, self.target)


@pytest.fixture
def snowflake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """A snowflake target with a unique dataset prefix; every dataset a test loaded is dropped afterwards."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    warehouse = Warehouse(create_target("snowflake", dataset_prefix=f"foundation_test_{uuid.uuid4().hex[:8]}_"))
    yield warehouse
    for source in warehouse.loaded:
        with create_pipeline(source, warehouse.target).sql_client() as client:
            for dataset in (client.dataset_name, client.staging_dataset_name):  # merge loads via `<dataset>_staging`
                with client.with_alternative_dataset_name(dataset):
                    if client.has_dataset():
                        client.drop_dataset()


def test_my_api_loads_merges_and_keeps_state_in_snowflake(snowflake, tmp_path, monkeypatch):
    source = load_project(EXAMPLES_ROOT).sources["my_api"]
    run = snowflake.run(source)
    assert run.rows_loaded == {"users": 250, "transactions": 1000}
    assert run.rows_total == {"users": 250, "transactions": 1000}

    # a fresh runner (empty local pipelines dir): state and schema come back from Snowflake
    monkeypatch.setenv("FOUNDATION_PIPELINES_DIR", str(tmp_path / "another_runner"))
    run = snowflake.run(source)
    assert run.rows_total == {"users": 500, "transactions": 1000}  # users append, transactions merge on id


@pytest.mark.slow
def test_jaffle_shop_from_the_replica_into_snowflake(snowflake, jaffle_env, jaffle_root):
    source = load_project(jaffle_root).sources["jaffle_shop"]
    run = snowflake.run(source)
    assert run.rows_total == FULL_JAFFLE and reconcile(source, run.rows_total).ok
    jaffle_env.add_day(orders=5)
    run = snowflake.run(source)
    assert run.rows_loaded["orders"] == 5 and run.rows_total["orders"] == FULL_JAFFLE["orders"] + 5

    with create_pipeline(source, snowflake.target).sql_client() as client:
        orders = client.make_qualified_table_name("orders")
        rows = client.execute_sql(f"SELECT order_total FROM {orders} WHERE id = '9bed808a-5074-4dfb-b1eb-388e2e60a6da'")
    assert [int(r[0]) for r in rows] == [742]  # integer cents


def test_doctor_passes_against_snowflake(snowflake, tmp_path):
    from test_cli import foundation

    result = foundation("--root", str(EXAMPLES_ROOT), "doctor", "--target", "snowflake", cwd=tmp_path, **CREDENTIALS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ destination reachable: snowflake: connected" in result.stdout
    secrets = [v for k, v in CREDENTIALS.items() if k.endswith(("PASSWORD", "PRIVATE_KEY", "PASSPHRASE"))]
    assert not any(s in result.stdout + result.stderr for s in secrets)


@pytest.mark.slow
def test_the_dbt_project_builds_the_marts_in_snowflake(snowflake, jaffle_env, jaffle_root, tmp_path, monkeypatch):
    """prod's dbt path: the raw tables in the credentials' database, the marts built by dbt-snowflake next to them
    (`FOUNDATION_DBT_DATABASE`), through profiles.yml's `snowflake` output (the target here is `sftest`)."""
    from conftest import copy_dbt_project
    from data_foundation.load.destinations import resolve_target
    from test_cli import foundation

    if importlib.util.find_spec("dbt.adapters.snowflake") is None:
        pytest.skip("dbt-snowflake is not installed: pip install -e '.[snowflake]'")
    prefix = snowflake.target.dataset_prefix
    (tmp_path / "foundation.toml").write_text(f'[dbt]\nproject_dir = "dbt"\n[targets.sftest]\n'
                                              f'destination = "snowflake"\ndataset_prefix = "{prefix}"\n')
    snowflake.target = resolve_target("sftest", config_dir=tmp_path)
    source = load_project(jaffle_root).sources["jaffle_shop"]
    assert snowflake.run(source).rows_total == FULL_JAFFLE
    copy_dbt_project(tmp_path / "dbt", jaffle_root)
    database = CREDENTIALS[PREFIX + "DATABASE"]
    try:
        built = foundation("dbt", "build", "--target", "sftest", "--root", str(jaffle_root), cwd=tmp_path,
                           FOUNDATION_DBT_DATABASE=database, **CREDENTIALS)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr
        secrets = [v for k, v in CREDENTIALS.items() if k.endswith(("PASSWORD", "PRIVATE_KEY", "PASSPHRASE"))]
        assert not any(s in built.stdout + built.stderr for s in secrets)
        with create_pipeline(source, snowflake.target).sql_client() as client:
            marts = f"{prefix}dbt_marts".upper()
            orders = client.execute_sql(f'SELECT COUNT(*) FROM "{database}"."{marts}"."ORDERS"')[0][0]
            items = client.execute_sql(f'SELECT COUNT(*) FROM "{database}"."{marts}"."ORDER_ITEMS"')[0][0]
        assert (orders, items) == (FULL_JAFFLE["orders"], FULL_JAFFLE["items"])
    finally:
        with create_pipeline(source, snowflake.target).sql_client() as client:
            for schema in ("dbt_staging", "dbt_marts"):
                client.execute_sql(f'DROP SCHEMA IF EXISTS "{database}"."{(prefix + schema).upper()}" CASCADE')
