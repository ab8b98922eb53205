"""An entry is a real dlt resource function: dlt injects its `dlt.config.value` / `dlt.secrets.value` parameters and
overrides its other defaults from env vars and `.dlt/*.toml` under `sources.<source>.<key>` (or
`sources.<source>.<table>.<key>` for one table), while the YAML's arguments win. Reconcile entries read the same
settings. Every test loads into a real DuckDB file."""

from pathlib import Path

import pytest

from conftest import query, write_source
from data_foundation.config.loading import load_project
from data_foundation.load.destinations import create_target
from data_foundation.load.reconcile import reconcile
from data_foundation.load.running import RunFailed, run_source
from test_cli import flat, foundation

SECRET = "s3cr3t-api-key-for-tests"

DATA_PY = '''
import dlt


def fetch(endpoint, base_url=dlt.config.value, api_key=dlt.secrets.value, page_size: int = 1000):
    """What the API would be asked: the settings dlt injected, never the key itself."""
    yield [{"endpoint": endpoint, "base_url": base_url, "key_ok": api_key == "s3cr3t-api-key-for-tests",
            "page_size": page_size}]


def tags(page, separator: str = "/", prefix=dlt.config.value):
    """A transformer: its parent's pages first, then injected settings."""
    for row in page:
        yield {"endpoint": row["endpoint"], "tag": f"{prefix}{separator}{row['endpoint']}"}


def pages(endpoint, page_size: int = 1000):
    """The factory form: returns the generator function; dlt still injects the factory's own parameters."""

    def generate(incremental=None):
        start = incremental.start_value if incremental is not None else None
        for seq in range(1, 4):
            yield [{"endpoint": endpoint, "seq": seq, "page_size": page_size, "seen_start": start}]

    return generate


def row_counts(expected: int = dlt.config.value):
    """A reconcile entry: the expected count comes from the config like a resource's settings."""
    return {"users": expected}
'''

SOURCES_YAML = '''
resources:
    shop.users:
        entry: data.fetch
        arguments: [users]
    shop.orders:
        entry: data.fetch
        arguments: [orders]
        keyword_arguments: {page_size: 7}
    shop.tags:
        entry: data.tags
        data_from: shop.users
    shop.events:
        entry: data.pages
        arguments: [events]
        primary_key: seq
        incremental: {cursor_path: seq, initial_value: 2}
sources:
    shop:
        reconcile: data.row_counts
        resources: [shop.users, shop.orders, shop.tags, shop.events]
'''


@pytest.fixture
def shop(tmp_path: Path):
    return load_project(write_source(tmp_path / "sources", "shop", DATA_PY, SOURCES_YAML)).sources["shop"]


@pytest.fixture
def settings(monkeypatch):
    monkeypatch.setenv("SOURCES__SHOP__BASE_URL", "https://api.example.com/v2")
    monkeypatch.setenv("SOURCES__SHOP__API_KEY", SECRET)
    monkeypatch.setenv("SOURCES__SHOP__PREFIX", "shop")


def test_env_settings_reach_the_entry_and_the_yaml_wins(shop, settings, duckdb_file, monkeypatch):
    monkeypatch.setenv("SOURCES__SHOP__PAGE_SIZE", "50")  # every table of the source ...
    monkeypatch.setenv("SOURCES__SHOP__EVENTS__PAGE_SIZE", "25")  # ... but this one
    run_source(shop, create_target("duckdb", str(duckdb_file)))
    assert query(duckdb_file, "SELECT endpoint, base_url, key_ok, page_size FROM shop.users UNION ALL "
                              "SELECT endpoint, base_url, key_ok, page_size FROM shop.orders ORDER BY 1") == [
        ("orders", "https://api.example.com/v2", True, 7),  # keyword_arguments: {page_size: 7} beats the env var
        ("users", "https://api.example.com/v2", True, 50)]
    assert query(duckdb_file, "SELECT endpoint, tag FROM shop.tags") == [("users", "shop/users")]
    assert query(duckdb_file, "SELECT seq, page_size, seen_start FROM shop.events ORDER BY seq") == [
        (2, 25, 2), (3, 25, 2)]  # the factory's generator function got the configured incremental
    assert SECRET not in repr(query(duckdb_file, "SELECT * FROM shop.users"))


def test_missing_secret_names_the_env_var(shop, duckdb_file, monkeypatch):
    monkeypatch.setenv("SOURCES__SHOP__BASE_URL", "https://api.example.com/v2")
    monkeypatch.setenv("SOURCES__SHOP__PREFIX", "shop")
    with pytest.raises(RunFailed) as failure:
        run_source(shop, create_target("duckdb", str(duckdb_file)), tables=["users"])
    assert str(failure.value) == (
        "source `shop` failed in step `extract`: resource `users` of source `shop` is missing `api_key`: set "
        "SOURCES__SHOP__API_KEY (or SOURCES__SHOP__USERS__API_KEY for this resource only), or put it under "
        "[sources.shop] in .dlt/secrets.toml (.dlt/config.toml for a setting that is not secret)")


def test_cli_reads_dlt_toml_files_and_reports_a_missing_secret_without_traceback(tmp_path, shop):
    root = shop.file.parent.parent
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text('[sources.shop]\nbase_url = "https://toml.example.com"\n'
                                                   'prefix = "t"\nexpected = 1\n')
    missing = foundation("--root", str(root), "run", "shop.users", "--duckdb-file", "w.duckdb", cwd=tmp_path)
    assert missing.returncode == 1
    assert ("Error: source `shop` failed in step `extract`: resource `users` of source `shop` is missing `api_key`: "
            "set SOURCES__SHOP__API_KEY") in flat(missing.stderr)
    assert "Traceback" not in missing.stderr

    (tmp_path / ".dlt" / "secrets.toml").write_text(f'[sources.shop]\napi_key = "{SECRET}"\n')
    loaded = foundation("--root", str(root), "run", "shop.users", "--duckdb-file", "w.duckdb", cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert query(tmp_path / "w.duckdb", "SELECT base_url, key_ok FROM shop_tester.users") == [
        ("https://toml.example.com", True)]
    assert "Reconciliation for shop: all match (users 1)" in flat(loaded.stdout)  # `expected` from config.toml
    assert SECRET not in loaded.stdout + loaded.stderr


def test_reconcile_entry_reads_the_sources_settings(shop, monkeypatch):
    monkeypatch.setenv("SOURCES__SHOP__EXPECTED", "3")
    assert reconcile(shop, {"users": 3}).tables == {"users": (3, 3)}
    monkeypatch.delenv("SOURCES__SHOP__EXPECTED")
    skipped = reconcile(shop, {"users": 3})
    assert skipped.skipped.startswith("`data.row_counts` failed: ConfigFieldMissingException: ")
    assert "`expected`" in skipped.skipped


JAFFLE_TABLE_SETTING = "SOURCES__JAFFLE_SHOP__STORES__PAGE_SIZE"


def test_jaffle_shop_reads_a_setting_for_one_table(jaffle, jaffle_env, duckdb_file, monkeypatch):
    """dlt's injection also looks under the table's name: stores are fetched 2 at a time, products as before."""
    monkeypatch.setenv(JAFFLE_TABLE_SETTING, "2")
    run = run_source(jaffle, create_target("duckdb", str(duckdb_file)), tables=["stores", "products"])
    assert run.rows_loaded == {"stores": 6, "products": 10}
    stores = [q for _, path, q in jaffle_env.requests if path == "/api/v1/stores"]
    products = [q for _, path, q in jaffle_env.requests if path == "/api/v1/products"]
    assert len(stores) == 3 and all(q.get("page_size") == "2" for q in stores)
    assert len(products) == 1 and products[0].get("page_size") == "1000"
