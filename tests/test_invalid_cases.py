"""Invalid configs are data: each `tests/cases/invalid/<case>/` holds a sources root with one mistake and the error
(`expected.yaml`: file, line, key_path, message, hint) that `validate` must report for it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from data_foundation.config.loading import validate_root

CASES_DIR = Path(__file__).parent / "cases" / "invalid"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expected.yaml").is_file())
EXAMPLES = Path(__file__).parents[1] / "examples"
# A few representative cases for the real CLI (one subprocess each): a spec error, a YAML syntax error,
# a data.py that fails to import, refused entries and an error spanning two folders.
CLI_CASES = ["typo_keword_arguments", "yaml_syntax_error", "data_py_raises_at_import", "entry_os_system",
             "entry_imported_builtin", "duplicate_resource_across_folders"]


def _expected(case: str) -> dict:
    return yaml.safe_load((CASES_DIR / case / "expected.yaml").read_text())


def _copy_case(case: str, tmp_path: Path) -> Path:
    """The whole case folder (symlinks kept) in `tmp_path`, so validation cannot touch the repository."""
    target = tmp_path / case
    shutil.copytree(CASES_DIR / case, target, symlinks=True)
    return target / "root"


def _matches(error, expected: dict) -> bool:
    return (error.file is not None and Path(error.file).as_posix().endswith(expected["file"])
            and error.line == expected["line"]
            and error.key_path == expected["key_path"]
            and expected["message"] in error.message
            and expected["hint"] in error.hint)


def _pycache_dirs(path: Path) -> list:
    return list(path.rglob("__pycache__"))


def test_there_are_enough_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_invalid_case_reports_expected_error(case, tmp_path):
    expected = _expected(case)
    root = _copy_case(case, tmp_path)

    _, errors = validate_root(root)

    assert errors, f"{case}: no error reported"
    report = "\n".join(f"{e.format()}  [file={e.file} line={e.line} key_path={e.key_path!r}]" for e in errors)
    assert any(_matches(e, expected) for e in errors), f"{case}: expected {expected}, got:\n{report}"
    assert not _pycache_dirs(tmp_path / case), f"{case}: validation wrote __pycache__"


def _run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", TERM="dumb")
    env.pop("FOUNDATION_SOURCES_ROOT", None)
    return subprocess.run([sys.executable, "-m", "data_foundation.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _unwrapped(text: str) -> str:
    """Rich wraps long lines when not on a terminal: compare with all whitespace runs as one space."""
    return " ".join(text.split())


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_validate_prints_errors_without_traceback(case, tmp_path):
    expected = _expected(case)
    root = _copy_case(case, tmp_path)

    result = _run_cli(tmp_path, "--root", str(root.relative_to(tmp_path)), "validate")

    output = _unwrapped(result.stdout + result.stderr)
    assert result.returncode == 1, output
    assert "Error:" in result.stderr
    location = f"{root.relative_to(tmp_path) / expected['file']}:{expected['line']}"
    where = f"{location} {expected['key_path']}:" if expected["key_path"] else f"{location} "
    assert where in output, output
    assert _unwrapped(expected["message"]) in output and _unwrapped(expected["hint"]) in output, output
    assert "Traceback" not in output
    assert not _pycache_dirs(tmp_path / case)


def test_module_that_fails_to_import_runs_and_is_reported_once(tmp_path):
    root = _copy_case("data_py_raises_at_import", tmp_path)
    data = root / "shop" / "data.py"
    data.write_text(f"with open({str(tmp_path / 'runs')!r}, 'a') as f:\n    f.write('x')\n"
                    + data.read_text())
    (root / "shop" / "sources.yaml").write_text(
        "resources:\n  shop.users:\n    entry: data.fetch_users\n  shop.orders:\n    entry: data.fetch_users\n")

    _, errors = validate_root(root)

    assert [e.key_path for e in errors] == ["resources.shop.users.entry"]
    assert errors[0].line == 8 and "SHOP_BASE_URL is not set" in errors[0].message
    assert (tmp_path / "runs").read_text() == "x"


def test_cli_debug_shows_traceback(tmp_path):
    root = _copy_case("data_py_raises_at_import", tmp_path)

    result = _run_cli(tmp_path, "--debug", "--root", str(root), "validate")

    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_cli_validate_accepts_the_examples(tmp_path):
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root)

    result = _run_cli(tmp_path, "validate", "examples")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error:" not in result.stderr
    assert "OK" in result.stdout and "1 source(s), 2 resource(s) valid" in result.stdout
    assert not _pycache_dirs(root)


def _empty_folders(root: Path) -> None:
    """`empty/` with an empty sources.yaml, `blank/` with only `resources:`, both next to a data.py; `shop/` is fine."""
    for name, sources in (("empty", ""), ("blank", "# to do\nresources:\n"),
                          ("shop", "resources:\n  shop.users:\n    entry: data.fetch_users\n")):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "data.py").write_text("def fetch_users():\n    yield [{'id': 1}]\n")
        (root / name / "sources.yaml").write_text(sources)


def test_sources_yaml_declaring_no_resources_is_a_warning(tmp_path):
    _empty_folders(tmp_path / "root")

    project, errors = validate_root(tmp_path / "root")

    assert errors == [] and list(project.sources) == ["shop"]
    assert [(w.file.relative_to(tmp_path / "root").as_posix(), w.line, w.severity) for w in project.warnings] == [
        ("blank/sources.yaml", 2, "warning"), ("empty/sources.yaml", None, "warning")]
    blank, empty = project.warnings
    assert "folder `blank` declares no resources: nothing of it is loaded" in blank.message
    assert "folder `empty` declares no resources (the file is empty)" in empty.message
    assert empty.hint == "Declare the folder's resources under `resources:`, or delete the folder."


def test_cli_validate_prints_the_warnings_and_exits_0(tmp_path):
    _empty_folders(tmp_path / "root")

    result = _run_cli(tmp_path, "validate", "root")

    assert result.returncode == 0, result.stdout + result.stderr
    errors = _unwrapped(result.stderr)
    assert "Warning: root/empty/sources.yaml folder `empty` declares no resources (the file is empty)" in errors
    assert "Warning: root/blank/sources.yaml:2 folder `blank` declares no resources" in errors
    assert "hint: Declare the folder's resources under `resources:`, or delete the folder." in errors
    assert "Error:" not in errors
    assert "OK 1 source(s), 1 resource(s) valid" in _unwrapped(result.stdout)
