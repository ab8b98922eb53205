"""`foundation materialize` and `foundation dagster` are Dagster's `dg launch` and `dg dev`, in one instance: the
dg project of the working directory, else the module `data_foundation.definitions` for the sources root. (Served in
a dg project: the `dagster` and `materialize` lanes of test_docs.py, whose sandbox is this checkout.)"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from conftest import EXAMPLES_ROOT, REPO, make_dg_project, table_counts, write_source
from data_foundation.cli.dagster_commands import DEFAULT_DAGSTER_HOME, DgProject, find_dg_project, in_project
from test_cli import flat, foundation

PARTITIONED_ROOT = REPO / "tests" / "cases" / "valid" / "partitioned"


def test_the_dg_project_is_found_as_dg_finds_it(tmp_path):
    project = make_dg_project(tmp_path / "project")
    assert find_dg_project(project) == DgProject(project.resolve(), None)
    assert find_dg_project(project / "platform_x" / "defs") == DgProject(project.resolve(), None)  # from below too
    (tmp_path / "dg_toml").mkdir()
    (tmp_path / "dg_toml" / "dg.toml").write_text('directory_type = "project"\n[project]\nroot_module = "p"\n')
    assert find_dg_project(tmp_path / "dg_toml") == DgProject((tmp_path / "dg_toml").resolve(), None)
    assert find_dg_project(REPO).serves_sources_root  # this checkout: the code location data_foundation.definitions
    for name, text in (("library", '[project]\nname = "x"\n'), ("broken", "[tool.dg\n"),
                       ("workspace", '[tool.dg]\ndirectory_type = "workspace"\n')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pyproject.toml").write_text(text)
        assert find_dg_project(tmp_path / name) is None, name


def test_in_a_project_of_components_the_commands_defer_to_it(tmp_path):
    """A component names its root and may translate its keys: `source.table` and `--root` do not apply there."""
    project = make_dg_project(tmp_path / "project")
    inside = project / "platform_x"
    launched = foundation("--root", str(EXAMPLES_ROOT), "materialize", "my_api.users", cwd=inside)
    assert launched.returncode == 1
    assert flat(launched.stderr) == (
        f"Error: the dg project at {project.resolve()} names its sources roots in its components, whose translation "
        "may change the asset keys: launch its assets with `dg launch --assets <key>,...`, keys as `dg list defs` "
        "shows them")
    served = foundation("dagster", "--root", str(EXAMPLES_ROOT), cwd=project)
    assert served.returncode == 1 and "Traceback" not in served.stderr
    assert flat(served.stderr).startswith(f"Error: --root does not apply in the dg project at {project.resolve()}")
    assert not (project / ".dagster_home").exists()  # nothing started


def test_materialize_outside_a_dg_project_launches_the_definitions_module(tmp_path):
    home = tmp_path / "home"
    result = foundation("--root", str(EXAMPLES_ROOT), "materialize", "my_api.users", "--home", str(home),
                        cwd=tmp_path)
    output = flat(result.stdout + result.stderr)
    assert result.returncode == 0, output[-3000:]
    assert f"Materializing my_api/users (DAGSTER_HOME={home})" in output
    assert "RUN_SUCCESS" in output and "superseded" not in output  # `dg launch`, not `dagster asset materialize`
    assert "Executing steps in process" in output  # no process per step, each importing dlt and the definitions
    assert table_counts(tmp_path / "foundation.duckdb", "my_api_tester") == {"users": 250}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
        assert runs[0].asset_selection == {dg.AssetKey(["my_api", "users"])}


def test_from_a_subfolder_of_this_kind_of_project_the_defaults_are_the_projects(tmp_path, monkeypatch):
    """In a subfolder of a checkout like this one, `./dlthub` and `./.dagster_home` are the project's, as for `dg`."""
    checkout = tmp_path / "checkout"
    shutil.copytree(EXAMPLES_ROOT, checkout / "dlthub")
    (checkout / "pyproject.toml").write_text('[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\n'
                                             'root_module = "data_foundation"\n'
                                             'code_location_target_module = "data_foundation.definitions"\n')
    project = find_dg_project(checkout / "dlthub" / "my_api")
    assert project is not None and project.serves_sources_root
    assert in_project(project, Path("dlthub"), False, DEFAULT_DAGSTER_HOME) == (
        project.root / "dlthub", project.root / ".dagster_home")
    assert in_project(project, Path("mine"), True, Path("/srv/dagster")) == (Path("mine"), Path("/srv/dagster"))
    monkeypatch.setenv("FOUNDATION_SOURCES_ROOT", "elsewhere")
    assert in_project(project, Path("elsewhere"), False, DEFAULT_DAGSTER_HOME)[0] == Path("elsewhere")
    monkeypatch.delenv("FOUNDATION_SOURCES_ROOT")
    result = foundation("materialize", "my_api.nosuch", cwd=checkout / "dlthub" / "my_api")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "`my_api.nosuch`" in flat(result.stderr) and "is not a directory" not in result.stderr


def test_a_stopped_materialize_stops_its_dagster_run(tmp_path):
    """SIGTERM (a supervisor's stop, a CI timeout) reaches `dg launch`: no orphaned run left STARTED."""
    root = write_source(tmp_path / "root", "slow",
                        "import time\n\ndef rows():\n    time.sleep(120)\n    yield [{'id': 1}]\n",
                        "resources:\n  slow.rows:\n    entry: data.rows\n")
    home = tmp_path / "home"
    env = {**os.environ, "COLUMNS": "200"}
    with open(tmp_path / "out.log", "wb") as log:
        started = subprocess.Popen([sys.executable, "-m", "data_foundation.cli", "--root", str(root), "materialize",
                                    "slow", "--home", str(home)], cwd=tmp_path, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while b"STEP_START" not in (tmp_path / "out.log").read_bytes():
            assert time.monotonic() < deadline and started.poll() is None, (tmp_path / "out.log").read_text()[-3000:]
            time.sleep(0.3)
        os.kill(started.pid, signal.SIGTERM)
        started.wait(60)
        deadline = time.monotonic() + 30
        while _group_alive(started.pid):
            assert time.monotonic() < deadline, "dg launch still runs after foundation was stopped"
            time.sleep(0.3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGKILL)
    assert started.returncode != 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert [run.status for run in instance.get_runs()] in (
            [dg.DagsterRunStatus.FAILURE], [dg.DagsterRunStatus.CANCELED])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_materialize_asks_for_the_partition_of_a_partitioned_source(tmp_path):
    result = foundation("--root", str(PARTITIONED_ROOT), "materialize", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert flat(result.stderr) == ("Error: `events` is partitioned: pass --partition KEY (e.g. 2024-01-01, its first) "
                                   "or --partition-range START...END, or select other sources")
    assert not (tmp_path / ".dagster_home").exists()  # refused before Dagster started
