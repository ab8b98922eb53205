"""`foundation dagster` and `foundation materialize`: Dagster's own `dg dev` and `dg launch`, in one instance.

Both start `dg` with `DAGSTER_HOME` set to one persistent folder (`./.dagster_home` unless `--home`), so the UI shows
the runs `materialize` starts, and schedules and sensors keep their cursors. Inside a `dg` project (a
`pyproject.toml` with `[tool.dg]`, or a `dg.toml`, in the working directory or above it) they serve that project, as
`dg dev` and `dg launch` typed there do; elsewhere the module `data_foundation.definitions` for the sources root.

A project whose code location is that module (this checkout) loads the sources root `--root` names. Any other
project names its sources roots in its components' defs.yaml, and may translate their keys: there `dagster` takes no
`--root`, and `materialize` cannot map `source.table` to its keys, so it says to use `dg launch`.
"""

import os
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import typer

from data_foundation.cli.common import debug_option, err_console, errors, root_option, use_options
from data_foundation.config.loading import load_project
from data_foundation.errors import FoundationError

__all__ = ["dagster_dev", "materialize", "DEFAULT_DAGSTER_HOME", "DgProject", "find_dg_project"]

DEFAULT_DAGSTER_HOME = Path(".dagster_home")
DEFINITIONS_MODULE = "data_foundation.definitions"
# The run's steps in the launching process, one after the other (they honour the pools all the same): a step process
# of Dagster's default executor imports Dagster, dlt and the definitions again, seconds of CPU per step
IN_PROCESS = '{"execution": {"config": {"in_process": {}}}}'
# `dg` of this interpreter (`dagster-dg-cli`'s console script, which a virtualenv may not have on PATH)
DG_MAIN = "import sys; from dagster_dg_cli.cli import main; sys.argv[0] = 'dg'; sys.exit(main())"


class NotInThisProject(FoundationError):
    pass


class MissingPartition(FoundationError):
    pass


def _example_key(selected: list) -> str:
    partition = next(source.dagster.partition for source, _ in selected if source.dagster.partition)
    return str(partition.start)


@dataclass(frozen=True)
class DgProject:
    root: Path
    code_location_module: Optional[str]  # `[tool.dg.project] code_location_target_module`

    @property
    def serves_sources_root(self) -> bool:
        """Its code location is `data_foundation.definitions`: the sources root `--root` names (this checkout)."""
        return self.code_location_module == DEFINITIONS_MODULE


def find_dg_project(directory: Path) -> Optional[DgProject]:
    """The `dg` project `directory` is in, as `dg` finds it: the nearest `dg.toml` or `pyproject.toml` with a
    `[tool.dg]` table, in `directory` or above; None outside one (or in a dg workspace's root)."""
    for folder in (directory.resolve(), *directory.resolve().parents):
        for name, table in (("dg.toml", ()), ("pyproject.toml", ("tool", "dg"))):
            config = _toml(folder / name)
            for key in table:
                config = config.get(key) if isinstance(config, dict) else None
            if isinstance(config, dict) and config:
                if config.get("directory_type") != "project":
                    return None
                project = config.get("project") or {}
                return DgProject(folder, project.get("code_location_target_module"))
    return None


def in_project(project: Optional[DgProject], root: Path, root_given: bool, home: Path) -> Tuple[Path, Path]:
    """The sources root and DAGSTER_HOME as typed in a subfolder of the project mean the project's own: the defaults
    `./dlthub` and `./.dagster_home` are its root's (so `dg`, which runs there, and every subfolder share them); a
    path the user gave stays theirs."""
    if project is None:
        return root, home
    if not root_given and not root.is_absolute() and not os.environ.get("FOUNDATION_SOURCES_ROOT"):
        root = project.root / root
    if home == DEFAULT_DAGSTER_HOME:
        home = project.root / home
    return root, home


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # dg reports the broken file itself


def _home_option() -> typer.models.OptionInfo:
    return typer.Option(DEFAULT_DAGSTER_HOME, "--home", envvar="DAGSTER_HOME", metavar="DIR",
                        help="DAGSTER_HOME: runs, materializations, schedules and sensor cursors (default "
                             "./.dagster_home, shared by `foundation dagster` and `foundation materialize`).")


def _dg(arguments: List[str], home: Path, root: Path, project: Optional[DgProject]) -> int:
    """Run `dg ARGUMENTS` (in the project, or on the definitions module for `root`) in the instance at `home`."""
    from data_foundation.dagster.home import prepare_dagster_home

    env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home(home)),
           "FOUNDATION_SOURCES_ROOT": str(root.resolve())}
    command = [sys.executable, "-c", DG_MAIN, *arguments]
    if project is None:
        command += ["-m", DEFINITIONS_MODULE]
    elif arguments[0] == "dev":
        command.append("--use-active-venv")  # the code server in this interpreter, where data-foundation is
    return _forwarding_signals(subprocess.Popen(command, env=env, cwd=project.root if project else None))


def _forwarding_signals(process: subprocess.Popen) -> int:
    """Wait for `dg`, passing it the SIGTERM or SIGHUP this process gets (a supervisor's stop, a CI timeout), so it ends
    its run as Dagster ends one instead of running on orphaned, its run STARTED and its pool slot held. (Ctrl-C
    reaches both: they share the terminal's process group.)"""
    def forward(signum: int, frame: object) -> None:
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
        project = find_dg_project(Path.cwd())
        sources_root, home = in_project(project, options.sources_root, options.root is not None, home)
        if project is None or project.serves_sources_root:
            load_project(sources_root)  # fail here, readably, rather than inside the webserver
        elif options.root is not None:
            raise NotInThisProject(f"--root does not apply in the dg project at {project.root}: its components name "
                                   "their sources roots (`root:` in their defs.yaml). Run without --root, or outside "
                                   "the project for a sources root of its own")
        where = f"dg project {project.root}" if project else f"sources root {sources_root}"
        err_console.print(f"Dagster UI on http://127.0.0.1:{port} for the {where} (DAGSTER_HOME={home.resolve()})")
        raise typer.Exit(_dg(["dev", "-h", "127.0.0.1", "-p", str(port)], home, sources_root, project))


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
        dg_project = find_dg_project(Path.cwd())
        if dg_project is not None and not dg_project.serves_sources_root:
            raise NotInThisProject(f"the dg project at {dg_project.root} names its sources roots in its components, "
                                   "whose translation may change the asset keys: launch its assets with `dg launch "
                                   "--assets <key>,...`, keys as `dg list defs` shows them")
        sources_root, home = in_project(dg_project, options.sources_root, options.root is not None, home)
        project = load_project(sources_root)
        selected = project.select(selectors or [])
        partitioned = sorted(source.name for source, _ in selected if source.dagster.partition)
        if partitioned and not (partition or partition_range):
            raise MissingPartition(
                f"{', '.join(f'`{name}`' for name in partitioned)} is partitioned: pass --partition KEY (e.g. "
                f"{_example_key(selected)}, its first) or --partition-range START...END, or select other sources")
        keys = [f"{source.name}/{table}" for source, tables in selected for table in tables]
        arguments = ["launch", "--assets", ",".join(keys), "--config-json", IN_PROCESS]
        arguments += ["--partition", partition] if partition else []
        arguments += ["--partition-range", partition_range] if partition_range else []
        err_console.print(f"Materializing {', '.join(keys)} (DAGSTER_HOME={home.resolve()})")
        raise typer.Exit(_dg(arguments, home, sources_root, dg_project))
