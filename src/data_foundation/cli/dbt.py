"""`foundation dbt`: the sources.yml generated from the spec, the manifest Dagster reads, and dbt itself run against
a target (`foundation dbt build --target prod`): any command not listed here goes to dbt."""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click
import typer
from typer.core import TyperGroup

from data_foundation.cli.common import (Options, console, err_console, errors, root_option, debug_option,
                                        use_options)
from data_foundation.config.loading import load_project

__all__ = ["dbt_app"]

_DBT_HELP = ("The dbt project that foundation.toml names (its dbt table), run against a target: `sources` and "
             "`prepare` below; any other command goes to dbt with the target's profile output, datasets and "
             "credentials, e.g. "
             "`foundation dbt build --target dev` or `foundation dbt source freshness`.")


class _DbtGroup(TyperGroup):
    """Our commands, and every other name passed to dbt (`build`, `test`, `source freshness`, `docs generate`)."""

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        return super().get_command(ctx, name) or _passthrough(name)


dbt_app = typer.Typer(cls=_DbtGroup, help=_DBT_HELP, no_args_is_help=True)

TARGET_HELP = "Target from foundation.toml (dev, prod, ...) or a dlt destination name; default dev."


@dbt_app.callback()
def _group_options(
    ctx: typer.Context,
    target_name: Optional[str] = typer.Option(None, "--target", "-t", metavar="NAME", help=TARGET_HELP),
    duckdb_file: Optional[Path] = typer.Option(None, "--duckdb-file", metavar="FILE",
                                               help="DuckDB database file (as for `run`)."),
) -> None:
    """`foundation dbt --target prod build`: the options may come before the dbt command too."""
    ctx.meta["foundation_dbt"] = {"target": target_name, "duckdb_file": str(duckdb_file) if duckdb_file else None}


def _group_option(ctx: click.Context, name: str) -> Optional[str]:
    return ctx.meta.get("foundation_dbt", {}).get(name)


def _target_option() -> Any:
    # no envvar here: $FOUNDATION_TARGET is the fallback of resolve_target, after `foundation dbt --target x`
    return typer.Option(None, "--target", "-t", metavar="NAME", help=TARGET_HELP)


def _settings():
    """foundation.toml's dbt project, or a clear error naming what to add."""
    from data_foundation.dbt.settings import DbtError, find_dbt_project

    settings = find_dbt_project()
    if settings is None:
        raise DbtError("no dbt project: add `[dbt]` with `project_dir = \"dbt\"` (the folder of dbt_project.yml) to "
                       "foundation.toml")
    return settings


def _context(options: Options, target_name: Optional[str] = None, duckdb_file: Optional[Path] = None):
    """The project, the target and the dbt settings a dbt command needs."""
    from data_foundation.load.destinations import resolve_target

    settings = _settings()
    project = load_project(options.sources_root)
    target = resolve_target(target_name, str(duckdb_file) if duckdb_file else None)
    return project, target, settings


@dbt_app.command()
def sources(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Exit 1 when the committed file is stale (for CI); write "
                                                      "nothing."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Generate the dbt project's sources.yml from the sources' sources.yaml: one dbt source per source, tables,
    columns, key tests, freshness, and the Dagster asset key of each table."""
    from data_foundation.dbt.sources_yml import stale_sources, write_sources

    options = use_options(ctx, root, debug, "dbt sources")
    with errors(options):
        settings = _settings()
        project = load_project(options.sources_root)
        if check:
            diff = stale_sources(project, settings)
            if diff:
                console.print(diff, markup=False, highlight=False, soft_wrap=True)
                err_console.print(f"[red]{settings.sources_file} is stale[/]: run `foundation dbt sources` and commit "
                                  "the file.")
                raise typer.Exit(1)
            console.print(f"[green]OK[/] {settings.sources_file} matches the sources.")
            return
        counts = f"{len(project.sources)} source(s), {len(project.resources)} table(s)"
        if write_sources(project, settings):
            console.print(f"wrote {settings.sources_file} ({counts})")
        else:
            console.print(f"{settings.sources_file} is up to date ({counts})")


@dbt_app.command()
def prepare(
    ctx: typer.Context,
    target_name: Optional[str] = _target_option(),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Parse the dbt project into target/manifest.json, which Dagster's definitions read (make runs this)."""
    from data_foundation.dbt.environment import dbt_environment, require_adapter
    from data_foundation.dbt.invoke import prepare_manifest

    options = use_options(ctx, root, debug, "dbt prepare")
    with errors(options):
        project, target, settings = _context(options, target_name or _group_option(ctx, "target"),
                                             _path(_group_option(ctx, "duckdb_file")))
        require_adapter(target, settings)
        path = prepare_manifest(settings, dbt_environment(project, target, settings), force=True)
        console.print(f"wrote {path}")


def _passthrough(name: str) -> click.Command:
    def run(args: List[str]) -> None:
        _run_dbt(name, args)

    return click.Command(name, callback=run, add_help_option=False, help=f"dbt {name}, against the target.",
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


def _run_dbt(name: str, args: List[str]) -> None:
    """`dbt <name> <args>` with foundation's own options taken out of `args`: --target/-t (the target, which also
    picks the profile's output), --duckdb-file and --root. Everything else, dbt's --debug included, goes to dbt;
    foundation's --debug goes before the command (`foundation --debug dbt build`)."""
    from data_foundation.dbt.environment import dbt_environment, require_adapter
    from data_foundation.dbt.invoke import run_dbt

    ctx = click.get_current_context()
    ours, rest = _split_options(list(args))
    parent = ctx.find_object(Options) or Options()
    options = Options(Path(ours["root"]) if ours.get("root") else parent.root, parent.debug, f"dbt {name}")
    with errors(options):
        project, target, settings = _context(options, ours.get("target") or _group_option(ctx, "target"),
                                             _path(ours.get("duckdb_file") or _group_option(ctx, "duckdb_file")))
        require_adapter(target, settings)
        command = " ".join([name, *[arg for arg in rest[:1] if not arg.startswith("-")]])  # `source freshness`
        err_console.print(f"dbt {command} against target `{target.name or target.destination_name}` "
                          f"({target.destination_name}) in {settings.project_dir}")
        done = run_dbt([name, *rest], settings, dbt_environment(project, target, settings))
        raise typer.Exit(done.returncode)


def _path(value: Optional[str]) -> Optional[Path]:
    return Path(value) if value else None


_OURS = {"--target": "target", "-t": "target", "--duckdb-file": "duckdb_file", "--root": "root"}


def _split_options(args: List[str]) -> Tuple[Dict[str, str], List[str]]:
    """foundation's options out of a dbt command line, in every form click accepts: `--target x`, `--target=x`,
    `-t x`, `-tx`, `-t=x`."""
    ours: Dict[str, str] = {}
    rest: List[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, equals, value = arg.partition("=")
        if key in _OURS and (equals or i + 1 < len(args)):
            ours[_OURS[key]] = value if equals else args[i + 1]
            i += 1 if equals else 2
            continue
        if arg.startswith("-t") and not arg.startswith("--") and len(arg) > 2:
            ours["target"] = arg[2:]
        else:
            rest.append(arg)
        i += 1
    return ours, rest
