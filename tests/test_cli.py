"""The `foundation` command as users run it: a real subprocess in `tmp_path`, loading into real DuckDB files."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

from conftest import EXAMPLES_ROOT, table_counts

RUNTIME_ROOT = Path(__file__).parent / "cases" / "valid" / "runtime"


def foundation(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the CLI with the test's environment (its own FOUNDATION_PIPELINES_DIR) plus `env`."""
    environment = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "data_foundation.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


def table_rows(output: str) -> List[List[str]]:
    """The body rows of the rich tables in `output`, as lists of stripped cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in output.splitlines() if line.strip().startswith("│")]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_validate_examples(tmp_path):
    result = foundation("validate", str(EXAMPLES_ROOT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"OK 1 source(s), 2 resource(s) valid in {EXAMPLES_ROOT}." in flat(result.stdout)
    assert [row[:2] for row in table_rows(result.stdout)] == [["my_api", "users"], ["my_api", "transactions"]]
    assert "Warning" not in result.stderr and "Error" not in result.stderr


def test_list_shows_tables_and_schedule(tmp_path):
    result = foundation("--root", str(EXAMPLES_ROOT), "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == [
        ["my_api", "users", "data.fetch_users", "append", "id", "", "@daily UTC", "30 h"],
        ["my_api", "transactions", "data.fetch_transactions", "merge", "id", "", "@daily UTC", "30 h"],
    ]


def test_run_defaults_to_foundation_duckdb_and_the_env_root(tmp_path):
    result = foundation("run", cwd=tmp_path, FOUNDATION_SOURCES_ROOT=str(EXAMPLES_ROOT))
    assert result.returncode == 0, result.stderr
    # the default target is `dev`: a personal dataset, suffixed with the developer ($FOUNDATION_USER=tester)
    assert table_counts(tmp_path / "foundation.duckdb", "my_api_tester") == {"users": 250, "transactions": 1000}
    assert "Loading my_api (users, transactions) into duckdb dataset `my_api_tester`" in flat(result.stderr)
    assert table_rows(result.stdout) == [["my_api_tester", "transactions", "1,000", "1,000"],
                                         ["my_api_tester", "users", "250", "250"]]
    assert re.search(r"Done: 1,250 rows loaded in \d+\.\d s\.", result.stdout)
    assert "Traceback" not in result.stderr


def test_run_with_duckdb_file_and_dataset_prefix(tmp_path):
    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.users", "--duckdb-file", "out.duckdb",
                        "--dataset-prefix", "raw_", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "foundation.duckdb").exists()
    assert table_counts(tmp_path / "out.duckdb", "raw_my_api_tester") == {"users": 250}
    assert table_counts(tmp_path / "out.duckdb", "my_api_tester") == {}
    assert "into duckdb dataset `raw_my_api_tester`" in flat(result.stderr)
    assert table_rows(result.stdout) == [["raw_my_api_tester", "users", "250", "250"]]
    assert "Done: 250 rows loaded" in result.stdout


def test_unknown_selector_is_an_error_without_traceback(tmp_path):
    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.user", cwd=tmp_path)
    assert result.returncode == 1
    stderr = flat(result.stderr)
    assert "Error: `my_api.user` matches no source or table. did you mean `my_api.users`?" in stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "foundation.duckdb").exists()  # nothing was loaded


def test_failing_source_is_an_error_without_traceback(tmp_path):
    result = foundation("--root", str(RUNTIME_ROOT), "run", "failing", "--duckdb-file", "w.duckdb", cwd=tmp_path)
    assert result.returncode == 1
    stderr = flat(result.stderr)
    assert "Error: source `failing` failed in step `extract`" in stderr
    assert "upstream said no: HTTP 503" in stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Done:" not in result.stdout


def test_targets_from_foundation_toml(tmp_path):
    (tmp_path / "foundation.toml").write_text(
        '[targets.ci]\ndestination = "duckdb"\nduckdb_file = "ci.duckdb"\ndataset_prefix = "raw_"\n'
        '[targets.leaky]\ndestination = "postgres"\ncredentials = { host = "db", password = "hunter2" }\n')
    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.users", "--target", "ci", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert table_counts(tmp_path / "ci.duckdb", "raw_my_api") == {"users": 250}

    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.users", cwd=tmp_path, FOUNDATION_TARGET="leaky")
    assert result.returncode == 1
    assert "targets.leaky" in flat(result.stderr) and "must not be written in the config file" in flat(result.stderr)
    assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr

    result = foundation("--root", str(EXAMPLES_ROOT), "run", "--target", "prdo", cwd=tmp_path)
    assert result.returncode == 1 and "did you mean `prod`?" in flat(result.stderr)

    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.users", "--destination", "duckdb", cwd=tmp_path)
    assert result.returncode == 0
    assert table_counts(tmp_path / "foundation.duckdb", "my_api") == {"users": 250}  # no target, no suffix


def test_global_options_work_before_and_after_the_command(tmp_path):
    after = foundation("run", "my_api.users", "--root", str(EXAMPLES_ROOT), "--duckdb-file", "a.duckdb", "--debug",
                       cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert table_counts(tmp_path / "a.duckdb", "my_api_tester") == {"users": 250}
    listed = foundation("list", "--root", str(EXAMPLES_ROOT), cwd=tmp_path)
    assert listed.returncode == 0 and ["my_api", "users"] == table_rows(listed.stdout)[0][:2]
    debug = foundation("run", "nope", "--root", str(EXAMPLES_ROOT), "--debug", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # --debug after the command took effect
    before = foundation("--debug", "--root", str(EXAMPLES_ROOT), "run", "nope", cwd=tmp_path)
    assert before.returncode == 1 and "Traceback" in before.stderr  # and before it
    mixed = foundation("--root", "nowhere", "list", "--root", str(EXAMPLES_ROOT), cwd=tmp_path)
    assert mixed.returncode == 0 and ["my_api", "users"] == table_rows(mixed.stdout)[0][:2]  # after wins


def test_version_and_help_without_type_noise(tmp_path):
    from importlib.metadata import version

    result = foundation("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"foundation (data-foundation) {version('data-foundation')}"
    text = foundation("run", "--help", cwd=tmp_path).stdout  # the command with every kind of parameter
    assert "--root" in text and "--no-reconcile" in text and "[SELECTOR]..." in text, text
    assert not re.search(r"<(bool|str|int|path|list\[\w+\])>", text), text


def test_mistakes_are_not_reported_as_bugs(tmp_path):
    typo = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.user", cwd=tmp_path)
    assert typo.returncode == 1 and "--debug" not in typo.stderr
    missing = foundation("run", "--root", "nowhere", cwd=tmp_path)
    assert missing.returncode == 1
    text = flat(missing.stderr)
    assert "sources root `nowhere` is not a directory" in text and "--debug" not in text
    assert "foundation validate" not in text and "run `foundation run` again" in text


def test_missing_destination_credentials_name_every_setting(tmp_path):
    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.users", "--target", "postgres", cwd=tmp_path)
    assert result.returncode == 1
    text = flat(result.stderr)
    assert "destination `postgres` is missing credentials: database, password, username, host" in text
    for field in ("DATABASE", "PASSWORD", "USERNAME", "HOST"):
        assert f"DESTINATION__POSTGRES__CREDENTIALS__{field}" in text
    assert "FOUNDATION_MY_API__" not in text and "Traceback" not in result.stderr


def test_printed_dataset_is_the_schema_dlt_creates(tmp_path):
    """A user name with non-identifier characters: the message and the summary name the schema as dlt normalizes it."""
    result = foundation("--root", str(EXAMPLES_ROOT), "run", "my_api.users", "--dataset-prefix", "Raw-",
                        cwd=tmp_path, FOUNDATION_USER="John.Doe")
    assert result.returncode == 0, result.stderr
    assert "into duckdb dataset `raw_my_api_john_doe`" in flat(result.stderr)
    assert table_rows(result.stdout) == [["raw_my_api_john_doe", "users", "250", "250"]]
    assert table_counts(tmp_path / "foundation.duckdb", "raw_my_api_john_doe") == {"users": 250}


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """`foundation plan --json | head -1`: the reader goes away while the document is still being written (well beyond
    a pipe's 64 KiB buffer); the command stops without an `Error:` line or a traceback, with exit code 1, as rich's
    tables do (`Console.on_broken_pipe`)."""
    from conftest import write_source

    resources = "".join(f"    wide.table_{i:04d}:\n        entry: data.rows\n" for i in range(900))
    write_source(tmp_path / "root", "wide", "def rows():\n    yield []\n", "resources:\n" + resources)
    process = subprocess.Popen([sys.executable, "-m", "data_foundation.cli", "plan", "--json", "--root",
                                str(tmp_path / "root")], cwd=tmp_path, env={**os.environ, "COLUMNS": "200"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline()  # the first line, then the reader is gone
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1, stderr
    assert "Error" not in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
