"""`foundation materialize` and `foundation dagster` are Dagster's `dg launch` and `dg dev`, in one instance: the
dg project of the working directory, else the module `data_foundation.definitions` for the sources root. (Served in
a dg project: the `dagster` and `materialize` lanes of test_docs.py, whose sandbox is this checkout.)"""

import dagster as dg

from conftest import EXAMPLES_ROOT, make_dg_project, table_counts
from data_foundation.cli.dagster_commands import in_dg_project
from test_cli import flat, foundation


def test_a_dg_project_is_a_dg_config_in_the_working_directory(tmp_path):
    assert in_dg_project(make_dg_project(tmp_path / "project"))
    (tmp_path / "dg_toml").mkdir()
    (tmp_path / "dg_toml" / "dg.toml").write_text('directory_type = "project"\n[project]\nroot_module = "p"\n')
    assert in_dg_project(tmp_path / "dg_toml")
    for name, text in (("library", '[project]\nname = "x"\n'), ("broken", "[tool.dg\n"),
                       ("workspace", '[tool.dg]\ndirectory_type = "workspace"\n')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pyproject.toml").write_text(text)
        assert not in_dg_project(tmp_path / name), name
    assert not in_dg_project(tmp_path / "project" / "platform_x")  # dg's root only, where foundation.toml is read


def test_materialize_outside_a_dg_project_launches_the_definitions_module(tmp_path):
    home = tmp_path / "home"
    result = foundation("--root", str(EXAMPLES_ROOT), "materialize", "my_api.users", "--home", str(home),
                        cwd=tmp_path)
    output = flat(result.stdout + result.stderr)
    assert result.returncode == 0, output[-3000:]
    assert f"Materializing my_api/users (DAGSTER_HOME={home})" in output
    assert "RUN_SUCCESS" in output and "superseded" not in output  # `dg launch`, not `dagster asset materialize`
    assert table_counts(tmp_path / "foundation.duckdb", "my_api_tester") == {"users": 250}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
        assert runs[0].asset_selection == {dg.AssetKey(["my_api", "users"])}
