"""The `foundation` command: thin wrappers over loading, running and scaffolding, rendered with rich."""

import importlib.metadata
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.markup import escape

from data_foundation.errors import ValidationFailed, mask_secrets
from data_foundation.config.loading import load_project, validate_root
from data_foundation.masking import MaskingStream, install_log_masking
from data_foundation.cli.common import (DEBUG_HELP, ROOT_HELP, Options, cli_target, console, dataset_prefix_option,
                                        debug_option, destination_option, duckdb_file_option, err_console, errors,
                                        root_option, target_option, use_options)
from data_foundation.cli.dagster_commands import dagster_dev, materialize
from data_foundation.cli.dbt import dbt_app
from data_foundation.cli.plan import plan
from data_foundation.cli.schema import schema
from data_foundation.cli.state import state_app
from data_foundation.cli.status import status
from data_foundation.cli.render import print_errors, print_reconciliation, run_table, sources_table
from data_foundation.scaffold import scaffold_source

__all__ = ["app", "main"]

app = typer.Typer(help="Declarative ingestion: source folders -> dlt pipelines -> Dagster assets.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


def _version(value: bool) -> None:
    if value:
        console.print(f"foundation (data-foundation) {importlib.metadata.version('data-foundation')}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR", help=ROOT_HELP),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    ctx.obj = Options(root, debug)


app.add_typer(dbt_app, name="dbt")
app.add_typer(state_app, name="state")
app.command("status")(status)
app.command("plan")(plan)
app.command("schema")(schema)


@app.command()
def validate(
    ctx: typer.Context,
    root_argument: Optional[Path] = typer.Argument(None, metavar="[ROOT]",
                                                   help="Sources root to check (default: --root)."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Check every source folder and report all problems in one pass."""
    options = use_options(ctx, root_argument or root, debug)
    with errors(options):
        project, problems = validate_root(options.sources_root)
        print_errors(err_console, project.warnings, label="Warning")
        if problems:
            raise ValidationFailed(problems)
        console.print(sources_table(project))
        count = len(project.resources)
        console.print(f"[green]OK[/] {len(project.sources)} source(s), {count} resource(s) valid in {project.root}.")


@app.command("list")
def list_sources(ctx: typer.Context, root: Optional[Path] = root_option(), debug: bool = debug_option()) -> None:
    """Sources, tables, dispositions, keys and schedules."""
    options = use_options(ctx, root, debug)
    with errors(options):
        console.print(sources_table(load_project(options.sources_root)))


@app.command()
def run(
    ctx: typer.Context,
    selectors: Optional[List[str]] = typer.Argument(None, metavar="[SELECTOR]...",
                                                    help="`source` or `source.table`; default: all."),
    target_name: Optional[str] = target_option(),
    destination: Optional[str] = destination_option(),
    duckdb_file: Optional[Path] = duckdb_file_option(),
    dataset_prefix: Optional[str] = dataset_prefix_option(),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Drop the selected tables and their state first."),
    no_reconcile: bool = typer.Option(False, "--no-reconcile",
                                      help="Do not compare row counts with the source's `reconcile` entry."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Load sources with dlt into the target, with live progress and a summary of rows per table.

    Exit 1 when a load fails, or when a reconciliation finds other row counts than the source reports."""
    _quick_exit.wanted = True
    options = use_options(ctx, root, debug)
    with errors(options):
        prepared = _RunPreparation(lambda: cli_target(target_name, destination, duckdb_file, dataset_prefix))
        project = load_project(options.sources_root, meanwhile=prepared)
        print_errors(err_console, project.warnings, label="Warning")
        target = prepared.target()
        from data_foundation.cli.progress import RichCollector
        from data_foundation.load.reconcile import reconcile
        from data_foundation.load.running import run_source

        runs = []
        started = time.monotonic()
        for source, tables in project.select(selectors or []):
            err_console.print(f"Loading [bold]{source.name}[/] ({', '.join(tables)}) into {target.destination_name} "
                              f"dataset `{target.dataset_name(source.dataset_name)}`")
            runs.append(run_source(source, target, tables, full_refresh, RichCollector(err_console)))
            for warning in runs[-1].warnings:
                err_console.print(f"[bold yellow]Warning:[/] {escape(mask_secrets(warning))}")
        console.print(run_table(runs))
        total = sum(sum(r.rows_loaded.values()) for r in runs)
        console.print(f"[green]Done[/]: {total:,} rows loaded in {time.monotonic() - started:.1f} s.")
        if no_reconcile:
            return
        results = [reconcile(project.sources[r.source], r.rows_total, r.tables) for r in runs]
        if not print_reconciliation(console, err_console, [r for r in results if r is not None]):
            raise typer.Exit(1)


class _RunPreparation:
    """What `run` needs once the sources are validated, prepared while validation waits for the child process that
    imports the sources' modules (`load_project`'s `meanwhile`): dlt and the loading modules imported, the target
    resolved and its destination's configuration read once (dlt imports the destination's modules on that first
    read). That is ~1 s of imports done on the other core instead of after the wait. A failure to resolve the target
    is raised by `target()`, where `run` resolved it before; anything else goes unnoticed here and surfaces where the
    run meets it, as before."""

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self._resolve = resolve
        self._target: Any = None
        self._error: Optional[Exception] = None
        self._done = False

    def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._target = self._resolve()
        except Exception as exc:  # raised by `target()`, after validation's own errors
            self._error = exc
            return
        try:
            import data_foundation.load.running  # noqa: F401 - dlt, its pipeline, the source builder
            if self._target.loader_file_format == "parquet":  # dlt resolves the destination's configuration here
                import dlt.common.libs.pyarrow  # noqa: F401 - dlt's parquet writer imports it when extracting
            if self._target.destination_name == "duckdb":
                import duckdb  # noqa: F401 - dlt's DuckDB client imports it when it connects
        except Exception:  # the run meets it again and reports it in its own words
            pass

    def target(self) -> Any:
        self()
        if self._error is not None:
            raise self._error
        return self._target


@app.command()
def new(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="Source name (letters, digits, _)."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Scaffold a source folder that validates and runs as generated."""
    options = use_options(ctx, root, debug)
    with errors(options):
        created = scaffold_source(options.sources_root, name)
        for path in created:
            console.print(f"created {path}")
        console.print(f"Next: edit {created[1]}, then `foundation validate` and `foundation run {name}`.")


app.command("dagster")(dagster_dev)
app.command("materialize")(materialize)


@app.command()
def doctor(
    ctx: typer.Context,
    target_name: Optional[str] = typer.Option(None, "--target", "-t", envvar="FOUNDATION_TARGET", metavar="NAME",
                                              help="Target to check (as for `run`); default dev."),
    duckdb_file: Optional[Path] = typer.Option(None, "--duckdb-file", envvar="FOUNDATION_DUCKDB_FILE", metavar="FILE",
                                               help="DuckDB database file (as for `run`)."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Check Python, packages, sources, config and secrets, the destination and Dagster; exit 1 on any failure."""
    from data_foundation.cli.doctor import print_checklist, run_checks
    from data_foundation.load.destinations import target_name as default_target

    options = use_options(ctx, root, debug)
    with errors(options):
        checks = run_checks(options.sources_root, target_name, str(duckdb_file) if duckdb_file else None)
        header = f"foundation doctor: sources root {options.sources_root}, target {default_target(target_name)}"
        if not print_checklist(console, checks, header, debug=options.debug, err_console=err_console):
            raise typer.Exit(1)


def main() -> None:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    # whatever is printed or logged - by foundation, dlt, or a source's own code - passes the secret mask
    sys.stdout, sys.stderr = MaskingStream(sys.stdout), MaskingStream(sys.stderr)
    install_log_masking()
    try:
        app()
    except SystemExit as exc:
        if _quick_exit.wanted:
            _quick_exit(exc.code)
        raise


class _QuickExit:
    """End the process after `run` without tearing the interpreter down: freeing ~1,500 modules (dlt, pyarrow, DuckDB,
    sqlalchemy, pydantic) one by one takes ~0.3-0.5 s of CPU at exit, for memory the OS frees at once. Everything the
    ordinary exit does before that still happens, in its order: the other threads are waited for (dlt's telemetry
    sender, a source's own threads), the atexit handlers run (logging's flush, temporary folders, multiprocessing),
    the output is flushed."""

    wanted = False  # set by `run`

    def __call__(self, code: object) -> None:
        import atexit
        import threading

        shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls first at exit
        if shutdown is None or threading.current_thread() is not threading.main_thread():
            return  # the ordinary exit
        if code is not None and not isinstance(code, int):  # what `sys.exit("message")` does
            print(code, file=sys.stderr)
            code = 1
        shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:  # a closed or broken stream: nothing more can be written to it anyway
                pass
        os._exit(code or 0)


_quick_exit = _QuickExit()

