"""User code is kept at arm's length during validation.

A data.py that hangs or ends the process at import is one problem of the pass (every other source is still validated
and reported), found by importing it first in a child process; an entry names only a function defined in the sources
root, never a builtin or an imported callable the YAML could then call with its own arguments.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from data_foundation.errors import FoundationError
from data_foundation.config.loading import validate_root

from conftest import EXAMPLES_ROOT, JAFFLE_FOLDER

VALID_ROOTS = Path(__file__).parent / "cases" / "valid"
ROWS = "\n\ndef rows():\n    yield [{'id': 1}]\n"
# Runs validate_root in its own interpreter: if a module hung or ended the process, only that interpreter would.
VALIDATE = ("import json, sys\nfrom data_foundation.config.loading import validate_root\n_, errors = validate_root(sys.argv[1])\n"
            "print(json.dumps([dict(file=str(e.file), line=e.line, key_path=e.key_path, message=e.message, hint=e.hint)"
            " for e in errors]))\n")


def _source(root: Path, name: str, data: str, sources: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text(textwrap.dedent(data))
    (folder / "sources.yaml").write_text(sources or f"resources:\n  {name}.rows:\n    entry: data.rows\n")
    return folder


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDATION_")}
    env.update(NO_COLOR="1", TERM="dumb", **extra)
    return env


def _validate_elsewhere(root: Path, cwd: Path, timeout_setting: str = "2") -> list:
    result = subprocess.run([sys.executable, "-c", VALIDATE, str(root.relative_to(cwd))], cwd=cwd, capture_output=True,
                            text=True, timeout=25, env=_env(FOUNDATION_IMPORT_TIMEOUT=timeout_setting))
    assert result.returncode == 0, f"validate_root did not return: exit {result.returncode}\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def _one(errors: list, folder: str) -> dict:
    found = [e for e in errors if f"/{folder}/" in f"/{e['file']}"]
    assert len(found) == 1, f"{folder}: {found}\nall: {errors}"
    return found[0]


@pytest.fixture
def mixed_root(tmp_path: Path) -> Path:
    """Three sources: one loops at import, one ends the process at import, one is fine but has a YAML mistake."""
    root = tmp_path / "root"
    _source(root, "loops", "import sys\n\nwhile True:\n    pass\n" + ROWS)
    _source(root, "quits", "import os\n\nos._exit(3)\n" + ROWS)
    _source(root, "typo", ROWS, "resources:\n  typo.rows:\n    entry: data.rows\n    write_disposition: upsertt\n")
    return root


def test_hang_and_exit_at_import_are_problems_and_every_source_is_reported(mixed_root, tmp_path):
    errors = _validate_elsewhere(mixed_root, tmp_path)

    assert len(errors) == 3, errors
    loops = _one(errors, "loops")
    assert loops["file"].endswith("loops/data.py") and loops["line"] in (3, 4)  # the loop
    assert loops["key_path"] == "resources.loops.rows.entry"
    assert "importing `root/loops/data.py` did not finish within 2 s" in loops["message"]
    assert "move it into the entry function" in loops["hint"] and "FOUNDATION_IMPORT_TIMEOUT" in loops["hint"]
    quits = _one(errors, "quits")
    assert quits["file"].endswith("quits/data.py") and quits["key_path"] == "resources.quits.rows.entry"
    assert "importing `root/quits/data.py` ended the process (exit code 3)" in quits["message"]
    assert "`os._exit`" in quits["hint"]
    typo = _one(errors, "typo")
    assert (typo["file"].endswith("typo/sources.yaml"), typo["line"]) == (True, 4)
    assert typo["key_path"] == "resources.typo.rows.write_disposition" and "`upsertt` is not valid" in typo["message"]
    assert not list(mixed_root.rglob("__pycache__"))


def test_cli_validate_reports_hang_and_exit_without_traceback(mixed_root, tmp_path):
    result = subprocess.run([sys.executable, "-m", "data_foundation.cli", "validate", "root"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=25, env=_env(FOUNDATION_IMPORT_TIMEOUT="2"))

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert "Error: root/loops/data.py:" in output and "did not finish within 2 s" in output
    assert ("Error: root/quits/data.py resources.quits.rows.entry: importing `root/quits/data.py` ended the process "
            "(exit code 3)") in output
    assert "Error: root/typo/sources.yaml:4 resources.typo.rows.write_disposition: `upsertt` is not valid" in output
    assert "3 problem(s) found" in output
    assert "Traceback" not in output


def test_crash_and_wait_are_located_in_the_module(tmp_path):
    root = tmp_path / "root"
    _source(root, "segv", "import ctypes\n\nctypes.string_at(0)\n" + ROWS)
    _source(root, "sleepy", "import time\n\n\ndef wait():\n    time.sleep(10 ** 6)\n\n\nwait()\n" + ROWS)
    _source(root, "fine", ROWS)

    errors = _validate_elsewhere(root, tmp_path)

    assert len(errors) == 2, errors
    segv = _one(errors, "segv")
    assert (segv["line"], segv["key_path"]) == (3, "resources.segv.rows.entry")
    assert "importing `root/segv/data.py` ended the process (signal SIGSEGV)" in segv["message"]
    sleepy = _one(errors, "sleepy")
    assert sleepy["line"] == 5  # inside wait(), where the import waits
    assert "importing `root/sleepy/data.py` did not finish within 2 s" in sleepy["message"]


def _count_children(monkeypatch) -> list:
    """The list of processes started from now on (the import check's children are the only ones here)."""
    started = []
    popen = subprocess.Popen

    def counting(*args, **kwargs):
        started.append(args)
        return popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counting)
    return started


def test_modules_are_checked_in_a_child_once_per_content(tmp_path, monkeypatch):
    root = tmp_path / "root"
    runs = tmp_path / "runs"
    folder = _source(root, "shop", f"from . import helpers\n\nopen({str(runs)!r}, 'a').write('x')\n" + ROWS)
    (folder / "helpers.py").write_text("PREFIX = 'a'\n")
    children = _count_children(monkeypatch)

    project, errors = validate_root(root)
    assert errors == [] and [r.name for r in project.resources] == ["shop.rows"]
    assert len(children) == 1 and runs.read_text() == "xx"  # once in the child, once here

    module = project.resources[0].target.module_name
    del sys.modules[module]  # as if this process had not imported it: an unchanged folder needs no new child
    assert validate_root(root)[1] == []
    assert len(children) == 1 and runs.read_text() == "xxx"

    del sys.modules[module]
    (folder / "helpers.py").write_text("PREFIX = 'b'\n")  # a sibling module changed: checked again
    assert validate_root(root)[1] == []
    assert len(children) == 2


def test_module_that_raises_is_imported_only_in_the_child(tmp_path, monkeypatch, capfd):
    root = tmp_path / "root"
    runs = tmp_path / "runs"
    _source(root, "shop", f"print('hello from shop')\nopen({str(runs)!r}, 'a').write('x')\n\nraise ValueError('no')\n"
            + ROWS)
    _source(root, "chatty", "print('hello from chatty')\n" + ROWS)
    children = _count_children(monkeypatch)

    for _ in range(2):
        _, errors = validate_root(root)
        assert [(Path(e.file).name, e.line, e.key_path) for e in errors] == [("data.py", 4, "resources.shop.rows.entry")]
        assert "importing `" in errors[0].message and "ValueError: no" in errors[0].message

    assert runs.read_text() == "x" and len(children) == 1
    out = capfd.readouterr().out
    assert out.count("hello from chatty") == 1  # the child's output is not shown twice
    assert "hello from shop" not in out


def test_keyboard_interrupt_raised_at_import_still_interrupts(tmp_path):
    root = tmp_path / "root"
    _source(root, "shop", "raise KeyboardInterrupt\n" + ROWS)

    with pytest.raises(KeyboardInterrupt):
        validate_root(root)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan"])
def test_import_timeout_must_be_a_positive_number(tmp_path, monkeypatch, value):
    _source(tmp_path / "root", "shop", ROWS)
    monkeypatch.setenv("FOUNDATION_IMPORT_TIMEOUT", value)

    with pytest.raises(FoundationError, match=f"FOUNDATION_IMPORT_TIMEOUT: `{value}` is not a number of seconds"):
        validate_root(tmp_path / "root")


# --- what an entry may name --------------------------------------------------------------------------------------


def test_functions_imported_from_the_source_folder_and_wrapped_functions_are_valid(tmp_path):
    root = tmp_path / "root"
    folder = _source(root, "shop", """\
        import functools

        from .helpers import fetch_items, retried


        def logged(function):
            @functools.wraps(function)
            def wrapper(*args, **kwargs):
                return function(*args, **kwargs)
            return wrapper


        @logged
        def fetch_users(page_size=2):
            yield [{"id": i} for i in range(page_size)]


        @functools.lru_cache
        def fetch_codes():
            return [[{"code": "a"}]]


        @retried
        def fetch_orders():
            yield [{"id": 1}]
        """, "resources:\n"
             "  shop.users: {entry: data.fetch_users, keyword_arguments: {page_size: 3}}\n"
             "  shop.items: {entry: data.fetch_items}\n"
             "  shop.codes: {entry: data.fetch_codes}\n"
             "  shop.orders: {entry: data.fetch_orders}\n"
             "  shop.stock: {entry: helpers.fetch_items}\n")
    (folder / "helpers.py").write_text(textwrap.dedent("""\
        import functools


        def retried(function):
            @functools.wraps(function)
            def again(*args, **kwargs):
                return function(*args, **kwargs)
            return again


        def fetch_items():
            yield [{"id": 1}]
        """))

    project, errors = validate_root(root)

    assert errors == []
    assert sorted(r.table for r in project.resources) == ["codes", "items", "orders", "stock", "users"]
    assert list(project.sources["shop"].resource("users").function(page_size=3)) == [[{"id": 0}, {"id": 1}, {"id": 2}]]


@pytest.mark.parametrize("code, entry, message", [
    ("import os\n\n\n@__import__('functools').wraps(os.system)\ndef fetch(command):\n    return os.system(command)\n",
     "data.fetch", "`data.fetch` is `os.system`, a builtin imported into shop/data.py"),
    ("import os\n\nshell = os.system\n", "data.shell", "`data.shell` is `os.system`, a builtin imported into shop/data.py"),
    ("from subprocess import run as fetch\n", "data.fetch", "`data.fetch` is `subprocess.run`, a function imported into "
                                                           "shop/data.py from `"),
    ("from collections import OrderedDict\n", "data.OrderedDict",
     "`data.OrderedDict` is `collections.OrderedDict`, a class imported into shop/data.py, not a function"),
    ("class Client:\n    def pages(self):\n        yield []\n\n\nfetch = Client().pages\n", "data.fetch",
     "`data.fetch` is a method bound to a `Client` object, not a function defined in the sources root"),
    ("fetch = len\n", "data.fetch", "`data.fetch` is `builtins.len`, a builtin imported into shop/data.py"),
], ids=["wraps_a_builtin", "assigned_builtin", "renamed_import", "imported_class", "bound_method", "builtin_len"])
def test_entries_that_are_not_functions_of_the_root_are_refused(tmp_path, code, entry, message):
    root = tmp_path / "root"
    _source(root, "shop", code, f"resources:\n  shop.rows:\n    entry: {entry}\n")

    _, errors = validate_root(root)

    assert [(Path(e.file).name, e.line, e.key_path) for e in errors] == [("sources.yaml", 3, "resources.shop.rows.entry")]
    assert message in errors[0].message, errors[0].message
    assert errors[0].hint


@pytest.mark.parametrize("root", [EXAMPLES_ROOT] + sorted(p for p in VALID_ROOTS.iterdir() if p.is_dir()) + [None],
                         ids=lambda p: "jaffle_shop" if p is None else p.name)
def test_shipped_valid_roots_still_validate(root, tmp_path):
    copy = tmp_path / "root"
    if root is None:
        shutil.copytree(JAFFLE_FOLDER, copy / "jaffle_shop", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))

    project, errors = validate_root(copy)

    assert errors == [] and project.resources
