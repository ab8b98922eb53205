"""The destination: its credentials, then that it is reachable (DuckDB: the file opens or its folder is writable,
nothing is created; a server: `SELECT 1`)."""

import contextlib
import os
import tempfile
import time
from typing import Any, Iterator, List, Optional

from data_foundation.cli.doctor.check import FAIL, INFO, OK, SKIP, Check, first_lines, guarded
from data_foundation.cli.doctor.credentials import NAME as CREDENTIALS, credentials_check
from data_foundation.cli.doctor.packages import PROJECT, project_extras
from data_foundation.cli.render import describe
from data_foundation.load.credentials import env_name

__all__ = ["destination_checks"]

NAME = "destination reachable"


def destination_checks(target: Any, project: Optional[Any]) -> List[Check]:
    """The credentials line and the reachable line (skipped when the target does not resolve)."""
    if target is None:
        return [Check(CREDENTIALS, SKIP, "skipped: the target does not resolve"),
                Check(NAME, SKIP, "skipped: the target does not resolve")]
    try:
        with _scratch_pipeline(target) as pipeline:
            credentials = guarded(CREDENTIALS, credentials_check, target)
            return [credentials, guarded(NAME, _reachable_check, target, pipeline, project, credentials.failed)]
    except Exception as exc:  # dlt could not even create a pipeline for the target
        return [Check(CREDENTIALS, FAIL, first_lines(describe(exc)), error=exc)]


@contextlib.contextmanager
def _scratch_pipeline(target: Any) -> Iterator[Any]:
    """A throwaway dlt pipeline (own temp working dir) for the target: dlt resolves destination config within an
    active pipeline, as during a run, and nothing is left behind in the real pipelines dir."""
    import dlt

    with tempfile.TemporaryDirectory(prefix="foundation-doctor-") as folder:
        yield dlt.pipeline(pipeline_name="foundation_doctor", destination=target.destination,
                           dataset_name=target.dataset_name("foundation_doctor"), pipelines_dir=folder)


def _reachable_check(target: Any, pipeline: Any, project: Optional[Any], credentials_failed: bool) -> Check:
    if target.duckdb_file is not None:
        return _duckdb_check(target, project)
    if credentials_failed:
        return Check(NAME, SKIP, "skipped: the credentials do not resolve")
    from dlt.common.exceptions import MissingDependencyException

    started, dest = time.monotonic(), target.destination_name
    try:
        sql_client = getattr(pipeline.destination_client(), "sql_client", None)
        if sql_client is None:
            return Check(NAME, INFO, f"{dest} is not a SQL destination: not checked")
        with sql_client as connection:
            connection.execute_sql("SELECT 1")
    except MissingDependencyException as exc:
        return Check(NAME, FAIL, f"the {dest} driver is not installed", error=exc,
                     fixes=[f"pip install -e '.[{dest}]' in the checkout (or pip install '{PROJECT}[{dest}]')"
                            if dest in project_extras() else f"pip install 'dlt[{dest}]'"])
    except Exception as exc:
        env = env_name("destination", dest, "credentials", "*")
        return Check(NAME, FAIL, f"{dest}: {first_lines(describe(exc))}", error=exc,
                     fixes=[f"check the host, port and network access, and the credentials ({env})"])
    return Check(NAME, OK, f"{dest}: connected, `SELECT 1` in {time.monotonic() - started:.1f} s")


def _duckdb_check(target: Any, project: Optional[Any]) -> Check:
    path = target.duckdb_file.resolve()
    sources = project.sources.values() if project is not None else []
    clash = next(filter(None, (target.duckdb_clash(target.dataset_name(s.dataset_name)) for s in sources)), None)
    if clash:
        return Check(NAME, FAIL, clash)
    if not path.exists():
        folder = path.parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return Check(NAME, OK, f"DuckDB file {path} will be created on the first load")
        return Check(NAME, FAIL, f"cannot create DuckDB file {path}: folder {folder} is missing or not writable",
                     fixes=["create the folder, or point --duckdb-file / duckdb_file in foundation.toml elsewhere"])
    if not os.access(path, os.W_OK):
        return Check(NAME, FAIL, f"DuckDB file {path} is not writable", fixes=[f"chmod u+w {path}"])
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            connection.execute("SELECT 1").fetchall()
    except Exception as exc:
        return Check(NAME, FAIL, f"DuckDB file {path}: {first_lines(str(exc), 1)}", error=exc,
                     fixes=["another process (a load, Dagster) may hold the file: try again when it has finished"])
    return Check(NAME, OK, f"DuckDB file {path} opens")
