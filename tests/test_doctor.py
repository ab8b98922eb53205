"""`foundation doctor` as users run it: a real subprocess per case, with the test's isolated environment."""

import re
import shutil
from pathlib import Path
from typing import Dict, Tuple

from conftest import EXAMPLES_ROOT, copy_dbt_project, copy_jaffle, write_source
from test_cli import flat, foundation

INVALID_CASE = Path(__file__).parent / "cases" / "invalid" / "write_disposition_invalid"
CORE = ["Python", "dlt", "dagster", "dagster-dlt", "duckdb", "pyarrow", "dbt-core", "dbt-duckdb", "dagster-dbt"]
SNOWFLAKE_ENV = "DESTINATION__SNOWFLAKE__CREDENTIALS__"


def checklist(output: str) -> Dict[str, Tuple[str, str]]:
    """`✓ name: detail` lines -> {name: (mark, detail)}."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^([✓✗–·]) ([^:]+): (.*)$", line)
        if match:
            found[match.group(2)] = (match.group(1), match.group(3))
    return found


def test_dev_target_is_all_green_on_a_fresh_checkout(tmp_path, jaffle_root):
    result = foundation("--root", str(jaffle_root), "doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = checklist(result.stdout)
    for name in [*CORE, "target", "sources root", "config jaffle_shop", "destination credentials",
                 "destination reachable", "Dagster definitions"]:
        assert lines[name][0] == "✓", (name, result.stdout)
    assert lines["target"][1].startswith("`dev` → duckdb") and "datasets `<source>_tester`" in lines["target"][1]
    assert "1 source(s), 6 resource(s) valid" in lines["sources root"][1]
    assert "will be created on the first load" in lines["destination reachable"][1]
    assert lines["Dagster definitions"][1].startswith("6 asset(s)")
    assert lines["failure alerts"][0] == "·"  # informational: not a failure on a laptop
    text = flat(result.stdout)
    assert ("sources.jaffle_shop.base_url: not set, the source's default applies "
            "(env SOURCES__JAFFLE_SHOP__BASE_URL to override)") in text
    assert "All 15 checks passed." in text
    assert lines["dbt project"] == ("·", "none: foundation.toml has no [dbt] table")
    assert not (tmp_path / "foundation.duckdb").exists()  # the doctor changes nothing
    assert "Traceback" not in result.stdout + result.stderr


def test_prod_without_snowflake_credentials_names_the_env_vars(tmp_path):
    result = foundation("--root", str(EXAMPLES_ROOT), "doctor", "--target", "prod", cwd=tmp_path)
    assert result.returncode == 1
    lines = checklist(result.stdout)
    assert lines["destination credentials"] == ("✗", "snowflake: missing host")
    assert lines["destination reachable"][0] == "–"
    assert lines["Dagster definitions"][0] == "✓"
    for field in ("HOST", "USERNAME", "PASSWORD", "PRIVATE_KEY", "PRIVATE_KEY_PASSPHRASE", "WAREHOUSE", "ROLE"):
        assert f"{SNOWFLAKE_ENV}{field}" in result.stdout, field
    assert "[destination.snowflake.credentials] in .dlt/secrets.toml" in result.stdout
    # the example's entries take `page_size` and `total` with ordinary defaults: optional settings, not failures
    assert lines["config my_api"] == ("✓", "2 setting(s) read")
    assert ("sources.my_api.total: not set, the source's default applies (env SOURCES__MY_API__TOTAL to override)"
            in flat(result.stdout))
    assert "1 of 14 checks failed." in flat(result.stdout)


def test_prod_with_partial_credentials_never_prints_the_secret(tmp_path):
    secret = "sf-Secret-Passw0rd-42"
    result = foundation("--root", str(EXAMPLES_ROOT), "--debug", "doctor", "--target", "prod", cwd=tmp_path,
                        **{f"{SNOWFLAKE_ENV}HOST": "acme-xy12345", f"{SNOWFLAKE_ENV}PASSWORD": secret})
    assert result.returncode == 1
    mark, detail = checklist(result.stdout)["destination credentials"]
    assert mark == "✗" and "requires `username` and `password`" in detail
    assert f"set {SNOWFLAKE_ENV}USERNAME" in result.stdout
    assert "Traceback" in result.stderr  # --debug shows the traceback of the failed check
    assert secret not in result.stdout + result.stderr


def test_postgres_target_with_a_wrong_password_is_unreachable(postgres, tmp_path):
    (tmp_path / "foundation.toml").write_text(
        "[targets.warehouse]\ndestination = \"postgres\"\n"
        f"credentials = {{ host = \"{postgres.host}\", port = {postgres.port}, username = \"{postgres.username}\", "
        f"database = \"{postgres.database}\" }}\n")
    wrong = "not-the-pg-password-7731"
    result = foundation("--root", str(EXAMPLES_ROOT), "--debug", "doctor", "--target", "warehouse", cwd=tmp_path,
                        DESTINATION__POSTGRES__CREDENTIALS__PASSWORD=wrong)
    assert result.returncode == 1
    lines = checklist(result.stdout)
    assert lines["destination credentials"][0] == "✓"  # resolved: only the server can tell the password is wrong
    mark, detail = lines["destination reachable"]
    assert mark == "✗" and "password authentication failed" in detail
    assert "DESTINATION__POSTGRES__CREDENTIALS__*" in result.stdout
    assert wrong not in result.stdout + result.stderr

    result = foundation("--root", str(EXAMPLES_ROOT), "doctor", "--target", "warehouse", cwd=tmp_path,
                        DESTINATION__POSTGRES__CREDENTIALS__PASSWORD=postgres.password)
    assert result.returncode == 0, result.stdout
    assert checklist(result.stdout)["destination reachable"][0] == "✓"
    assert "connected, `SELECT 1`" in result.stdout
    assert postgres.password not in result.stdout + result.stderr


def test_broken_sources_root_fails_validation(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(INVALID_CASE / "root", root)
    result = foundation("--root", str(root), "doctor", cwd=tmp_path)
    assert result.returncode == 1
    lines = checklist(result.stdout)
    assert lines["sources root"] == ("✗", f"{root}: 1 problem(s)")
    assert "`merg` is not valid" in result.stdout and "run `foundation validate`" in result.stdout
    assert lines["Dagster definitions"] == ("–", "skipped: fix the sources root first")
    assert "Traceback" not in result.stdout + result.stderr


NEEDS_KEY = """import dlt


def fetch_things(api_key: str = dlt.secrets.value, base_url: str = "https://api.example.com", page_size: int = 100):
    \"\"\"Things.\"\"\"
    yield [{"id": 1, "key_length": len(api_key), "base_url": base_url, "page_size": page_size}]
"""


def test_settings_are_read_from_the_entry_signature(tmp_path):
    """dlt's spec of the entry: `dlt.secrets.value` is required, an ordinary default optional, a YAML argument no
    setting at all."""
    root = write_source(tmp_path / "root", "needs_key", NEEDS_KEY,
                        "resources:\n    needs_key.things:\n        entry: data.fetch_things\n"
                        "        keyword_arguments: {page_size: 10}\n")
    result = foundation("--root", str(root), "doctor", cwd=tmp_path)
    assert result.returncode == 1
    assert checklist(result.stdout)["config needs_key"] == ("✗", "1 required setting(s) missing")
    text = flat(result.stdout)
    assert "sources.needs_key.api_key: MISSING (required: no default in data.py)" in text
    assert ("set SOURCES__NEEDS_KEY__API_KEY, or `api_key = ...` under [sources.needs_key] in .dlt/secrets.toml"
            in text)
    assert ("sources.needs_key.base_url: not set, the source's default applies "
            "(env SOURCES__NEEDS_KEY__BASE_URL to override)") in text
    assert "page_size" not in text  # passed by the YAML: not a setting
    assert "1 of 15 checks failed." in text

    secret = "sk-live-0123456789abcdef"
    result = foundation("--root", str(root), "doctor", cwd=tmp_path, SOURCES__NEEDS_KEY__API_KEY=secret,
                        SOURCES__NEEDS_KEY__BASE_URL="http://127.0.0.1:9")
    assert result.returncode == 0, result.stdout
    assert checklist(result.stdout)["config needs_key"] == ("✓", "2 setting(s) read")
    assert "sources.needs_key.api_key: set (env SOURCES__NEEDS_KEY__API_KEY)" in result.stdout
    assert "sources.needs_key.base_url: set (env SOURCES__NEEDS_KEY__BASE_URL)" in result.stdout
    assert secret not in result.stdout + result.stderr


TWO_ENTRIES = """import dlt


def fetch_things(api_key: str = dlt.secrets.value, region: str = dlt.config.value):
    yield [{"id": 1, "region": region}]


def fetch_others(api_key=dlt.secrets.value):
    yield [{"id": 2}]
"""


def test_settings_from_toml_files_per_resource(tmp_path):
    """Resolved as dlt resolves a resource's config: `sources.<source>.<table>.<key>` before `sources.<source>.<key>`,
    from .dlt/secrets.toml and .dlt/config.toml; a secret in config.toml is refused, as a load would refuse it."""
    root = write_source(tmp_path / "root", "two", TWO_ENTRIES,
                        "resources:\n    two.things:\n        entry: data.fetch_things\n"
                        "    two.others:\n        entry: data.fetch_others\n")
    secret = "things-Secret-4242"
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(f'[sources.two.things]\napi_key = "{secret}"\n')
    (tmp_path / ".dlt" / "config.toml").write_text('[sources.two]\nregion = "eu-west-1"\n')
    result = foundation("--root", str(root), "doctor", cwd=tmp_path)
    assert result.returncode == 1
    assert checklist(result.stdout)["config two"] == ("✗", "1 required setting(s) missing")
    text = flat(result.stdout)
    assert "sources.two.api_key (things): set (secrets.toml `sources.two.things.api_key`)" in text
    assert "sources.two.api_key (others): MISSING (required: no default in data.py)" in text
    assert "sources.two.region: set (config.toml `sources.two.region`)" in text
    assert "set SOURCES__TWO__API_KEY, or `api_key = ...` under [sources.two] in .dlt/secrets.toml" in text
    assert secret not in result.stdout + result.stderr and "eu-west-1" not in result.stdout

    (tmp_path / ".dlt" / "config.toml").write_text('[sources.two]\nregion = "eu-west-1"\napi_key = "in-the-open"\n')
    result = foundation("--root", str(root), "doctor", cwd=tmp_path)
    assert result.returncode == 1
    mark, detail = checklist(result.stdout)["config two"]
    assert mark == "✗" and "1 resource(s) with a value dlt refuses" in detail
    assert "cannot hold secret values but key `sources.two.api_key`" in flat(result.stdout)
    assert "in-the-open" not in result.stdout + result.stderr


def test_duckdb_file_named_like_a_dataset_is_refused(tmp_path):
    result = foundation("--root", str(EXAMPLES_ROOT), "doctor", "--duckdb-file", "my_api_tester.duckdb", cwd=tmp_path)
    assert result.returncode == 1
    mark, detail = checklist(result.stdout)["destination reachable"]
    assert mark == "✗" and "has the same name as dataset `my_api_tester`" in detail
    assert "DuckDB cannot tell the two apart" in detail and "--dataset-prefix" in detail
    assert not (tmp_path / "my_api_tester.duckdb").exists()


def test_package_outside_the_projects_range_is_a_failure(monkeypatch):
    import importlib.metadata

    from data_foundation.cli.doctor import packages

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.0.0" if name == "dlt" else real(name))
    checks = {c.name: c for c in packages.package_checks()}
    assert checks["dlt"].failed and "1.0.0 installed, data-foundation needs" in checks["dlt"].detail
    assert checks["dlt"].fixes[0].startswith("pip install 'dlt<1.32,>=1.31'")
    assert not checks["duckdb"].failed


def test_the_dbt_project_is_checked_and_a_stale_sources_yml_named(tmp_path, jaffle_root, monkeypatch):
    root = copy_jaffle(tmp_path / "root")
    copy_dbt_project(tmp_path / "dbt", root)
    (tmp_path / "foundation.toml").write_text('[dbt]\nproject_dir = "dbt"\n')
    result = foundation("--root", str(root), "doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = checklist(result.stdout)
    assert lines["dbt project"] == ("✓", "dbt/, profile output `dev`, sources.yml up to date")
    assert "the manifest was older than the project: prepared it now" in flat(result.stdout)  # none was prepared
    assert lines["Dagster definitions"][1].startswith("17 asset(s) (+5 upstream API asset(s))")  # + 11 models

    # a source added, sources.yml not regenerated: the line fails (in process: the same check, no second doctor run)
    from data_foundation.cli.doctor.dbt import dbt_check
    from data_foundation.config.loading import load_project
    from data_foundation.load.destinations import create_target

    write_source(root, "extra", "def rows():\n    yield [{'id': 1}]\n",
                 "resources:\n  extra.rows:\n    entry: data.rows\n")
    monkeypatch.chdir(tmp_path)
    check = dbt_check(create_target("duckdb", str(tmp_path / "w.duckdb")), load_project(root))
    assert check.failed and "sources.yml is stale: the sources changed since it was generated" in check.detail
    assert check.fixes == ["run `foundation dbt sources` and commit the file"]


def test_a_partitioned_sources_window_is_not_a_setting(tmp_path):
    """A partitioned source's runs pass `start_date`/`end_date`: doctor does not offer them as settings (dlt would
    inject SOURCES__ADS__START_DATE into a run outside Dagster)."""
    from data_foundation.cli.doctor.sources import settings_check
    from data_foundation.config.loading import load_project

    data_py = ("import dlt\n\n\ndef insights(start_date=None, end_date=None, token=dlt.secrets.value, days=28):\n"
               "    yield [{'day': start_date}]\n")
    yaml = ("resources:\n  ads.insights:\n    entry: data.insights\nsources:\n  ads:\n    resources: [ads.insights]\n"
            "    meta:\n      dagster:\n        partition: {type: daily, start: 2024-01-01}\n")
    check = settings_check(load_project(write_source(tmp_path / "root", "ads", data_py, yaml)).sources["ads"])
    text = "\n".join([check.detail, *check.notes, *check.fixes])
    assert "sources.ads.token: MISSING" in text and "sources.ads.days: not set" in text
    assert "start_date" not in text and "end_date" not in text
