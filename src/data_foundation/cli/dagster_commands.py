"""`foundation dagster` and `foundation materialize`: Dagster's own `dg dev` and `dg launch`, in one instance.

Both start `dg` with `DAGSTER_HOME` set to one persistent folder (`./.dagster_home` unless `--home`), so the UI shows
the runs `materialize` starts, and schedules and sensors keep their cursors. In a `dg` project (a `pyproject.toml`
or `dg.toml` with a `[tool.dg]` project in the working directory) they serve that project, as `dg dev` and `dg launch`
typed there do; elsewhere the module `data_foundation.definitions` for the sources root.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import List, Optional

import typer

from data_foundation.cli.common import debug_option, err_console, errors, root_option, use_options
from data_foundation.config.loading import load_project

__all__ = ["dagster_dev", "materialize", "DEFAULT_DAGSTER_HOME", "in_dg_project"]

DEFAULT_DAGSTER_HOME = Path(".dagster_home")
DEFINITIONS_MODULE = "data_foundation.definitions"
# `dg` of this interpreter (`dagster-dg-cli`'s console script, which a virtualenv may not have on PATH)
DG_MAIN = "import sys; from dagster_dg_cli.cli import main; sys.argv[0] = 'dg'; sys.exit(main())"


def in_dg_project(directory: Path) -> bool:
    """Whether `directory` is the root of a `dg` project: `dg` commands there load the project, not a module."""
    for name, table in (("dg.toml", ()), ("pyproject.toml", ("tool", "dg"))):
        path = directory / name
        if not path.is_file():
            continue
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # dg reports the broken file itself
        for key in table:
            config = config.get(key) or {}
        if config.get("directory_type") == "project":
            return True
    return False


def _home_option() -> typer.models.OptionInfo:
    return typer.Option(DEFAULT_DAGSTER_HOME, "--home", envvar="DAGSTER_HOME", metavar="DIR",
                        help="DAGSTER_HOME: runs, materializations, schedules and sensor cursors (default "
                             "./.dagster_home, shared by `foundation dagster` and `foundation materialize`).")


def _dg(arguments: List[str], home: Path, root: Path, project: bool) -> int:
    """Run `dg ARGUMENTS` (the project, or the definitions module for `root`) in the instance at `home`."""
    from data_foundation.dagster.home import prepare_dagster_home

    env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home(home)),
           "FOUNDATION_SOURCES_ROOT": str(root.resolve())}
    command = [sys.executable, "-c", DG_MAIN, *arguments]
    if not project:
        command += ["-m", DEFINITIONS_MODULE]
    elif arguments[0] == "dev":
        command.append("--use-active-venv")  # the code server in this interpreter, where data-foundation is
    return subprocess.call(command, env=env)


def dagster_dev(
    ctx: typer.Context,
    port: int = typer.Option(3000, "--port", metavar="PORT", help="Webserver port on 127.0.0.1."),
    home: Path = _home_option(),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Start the Dagster webserver and daemon (`dg dev`) on 127.0.0.1 for the sources root, or the dg project here."""
    options = use_options(ctx, root, debug)
    with errors(options):
        project = in_dg_project(Path.cwd())
        if not project or options.sources_root.is_dir():
            load_project(options.sources_root)  # fail here, readably, rather than inside the webserver
        where = "dg project" if project else f"sources root {options.sources_root}"
        err_console.print(f"Dagster UI on http://127.0.0.1:{port} for the {where} (DAGSTER_HOME={home.resolve()})")
        raise typer.Exit(_dg(["dev", "-h", "127.0.0.1", "-p", str(port)], home, options.sources_root, project))


def materialize(
    ctx: typer.Context,
    selectors: Optional[List[str]] = typer.Argument(None, metavar="[SELECTOR]...",
                                                    help="`source` or `source.table`; default: all."),
    partition: Optional[str] = typer.Option(None, "--partition", metavar="KEY",
                                            help="One partition of partitioned sources, e.g. 2024-01-02."),
    partition_range: Optional[str] = typer.Option(None, "--partition-range", metavar="START...END",
                                                  help="A range of partitions, run as one backfill run, e.g. "
                                                       "2024-01-02...2024-01-05."),
    home: Path = _home_option(),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Materialize assets with Dagster (`dg launch`) from the command line, in the same Dagster instance as
    `foundation dagster` (so the UI shows these runs), with their asset checks."""
    options = use_options(ctx, root, debug)
    with errors(options):
        project = load_project(options.sources_root)
        keys = [f"{source.name}/{table}" for source, tables in project.select(selectors or []) for table in tables]
        arguments = ["launch", "--assets", ",".join(keys)]
        arguments += ["--partition", partition] if partition else []
        arguments += ["--partition-range", partition_range] if partition_range else []
        err_console.print(f"Materializing {', '.join(keys)} (DAGSTER_HOME={home.resolve()})")
        raise typer.Exit(_dg(arguments, home, options.sources_root, in_dg_project(Path.cwd())))
