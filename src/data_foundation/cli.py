"""The `foundation` command: thin wrappers over loading, running and scaffolding, rendered with rich."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from data_foundation.errors import FoundationException, ValidationFailed, mask_secrets
from data_foundation.loading import default_root, load_project, validate_root
from data_foundation.render import print_errors, run_table, sources_table
from data_foundation.scaffold import scaffold_source

__all__ = ["app", "main"]

app = typer.Typer(help="Declarative ingestion: source folders -> dlt pipelines -> Dagster assets.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class _State:
    root: Optional[Path] = None
    debug: bool = False


state = _State()


@app.callback()
def _options(
    root: Optional[Path] = typer.Option(None, "--root", help="Sources root (default: $FOUNDATION_SOURCES_ROOT or ./dlthub)."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks."),
) -> None:
    state.root, state.debug = root, debug


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Known failures print `Error:` lines and exit 1; a traceback only with --debug."""
    try:
        yield
    except typer.Exit:
        raise
    except ValidationFailed as exc:
        print_errors(err_console, exc.errors)
        err_console.print(f"[red]{len(exc.errors)} problem(s) found.[/] Fix them and run `foundation validate` again.")
        _exit(exc)
    except KeyboardInterrupt:
        err_console.print("[red]Interrupted.[/]")
        raise typer.Exit(130)
    except Exception as exc:  # anything else still gets one readable line
        err_console.print(f"[bold red]Error:[/] {escape(mask_secrets(_describe(exc)))}")
        if not state.debug:
            err_console.print("[dim]Run with --debug for the traceback.[/]")
        _exit(exc)


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, FoundationException) else f"{type(exc).__name__}: {exc}"


def _exit(exc: BaseException) -> None:
    if state.debug:
        raise exc
    raise typer.Exit(1)


def _root(root: Optional[Path] = None) -> Path:
    return root or state.root or default_root()


@app.command()
def validate(root: Optional[Path] = typer.Argument(None, help="Sources root to check (default: --root).")) -> None:
    """Check every source folder and report all problems in one pass."""
    with _errors():
        project, errors = validate_root(_root(root))
        print_errors(err_console, project.warnings, label="Warning")
        if errors:
            raise ValidationFailed(errors)
        console.print(sources_table(project))
        count = len(project.resources)
        console.print(f"[green]OK[/] {len(project.sources)} source(s), {count} resource(s) valid in {project.root}.")


@app.command("list")
def list_sources() -> None:
    """Sources, tables, dispositions, keys and schedules."""
    with _errors():
        console.print(sources_table(load_project(_root())))


@app.command()
def run(
    selectors: Optional[List[str]] = typer.Argument(None, help="`source` or `source.table`; default: all."),
    target_name: Optional[str] = typer.Option(None, "--target", "-t", envvar="FOUNDATION_TARGET",
                                              help="Target from foundation.toml (dev, prod, ...) or a dlt destination "
                                                   "name; default dev."),
    destination: Optional[str] = typer.Option(None, "--destination", "-d",
                                              help="A dlt destination name, without a target's dataset suffix."),
    duckdb_file: Optional[Path] = typer.Option(None, "--duckdb-file", envvar="FOUNDATION_DUCKDB_FILE",
                                               help="DuckDB database file (default ./foundation.duckdb)."),
    dataset_prefix: Optional[str] = typer.Option(None, "--dataset-prefix", help="Prefix for every dataset name."),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Drop the selected tables and their state first."),
) -> None:
    """Load sources with dlt into the target, with live progress and a summary of rows per table."""
    from data_foundation.destinations import create_target, resolve_target
    from data_foundation.progress import RichCollector
    from data_foundation.running import run_source

    with _errors():
        project = load_project(_root())
        print_errors(err_console, project.warnings, label="Warning")
        file = str(duckdb_file) if duckdb_file else None
        target = (create_target(destination, file, dataset_prefix or "") if destination
                  else resolve_target(target_name, file, dataset_prefix))
        runs = []
        started = time.monotonic()
        for source, tables in project.select(selectors or []):
            err_console.print(f"Loading [bold]{source.name}[/] ({', '.join(tables)}) into {target.destination_name} "
                              f"dataset `{target.dataset_name(source.dataset_name)}`")
            runs.append(run_source(source, target, tables, full_refresh, RichCollector(err_console)))
            for line in _reconciliation_lines(source, runs[-1]):
                console.print(line)
        console.print(run_table(runs))
        total = sum(sum(r.rows_loaded.values()) for r in runs)
        console.print(f"[green]Done[/]: {total:,} rows loaded in {time.monotonic() - started:.1f} s.")


def _reconciliation_lines(source, source_run) -> List[str]:
    from data_foundation.reconcile import reconcile

    result = reconcile(source, source_run.rows_total)
    if result is None:
        return []
    status = "[green]all match[/]" if result.ok else "[red]MISMATCH[/]"
    details = ", ".join(f"{t} {got:,}/{want:,}" for t, (got, want) in result.tables.items())
    return [f"Reconciliation for {source.name}: {status} ({details})"]


@app.command()
def new(name: str = typer.Argument(..., help="Source name (letters, digits, _).")) -> None:
    """Scaffold a source folder that validates and runs as generated."""
    with _errors():
        created = scaffold_source(_root(), name)
        for path in created:
            console.print(f"created {path}")
        console.print(f"Next: edit {created[1]}, then `foundation validate` and `foundation run {name}`.")


@app.command("jaffle-api")
def jaffle_api(
    port: int = typer.Option(8000, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    scale: int = typer.Option(1, "--scale", min=1, help="Multiply orders, items and customers."),
    latency_ms: int = typer.Option(0, "--latency-ms", min=0, help="Added latency per request."),
) -> None:
    """Serve the local Jaffle Shop API replica (for demos, tests and benchmarks)."""
    from data_foundation.jaffle.server import serve

    with _errors():
        serve(port=port, scale=scale, latency_ms=latency_ms)


@app.command("dagster")
def dagster_dev(
    port: int = typer.Option(3000, "--port", help="Webserver port on 127.0.0.1."),
    home: Path = typer.Option(Path(".dagster_home"), "--home", envvar="DAGSTER_HOME",
                              help="Persistent DAGSTER_HOME (runs, schedules, sensor cursors)."),
) -> None:
    """Start the Dagster webserver and daemon on 127.0.0.1 for the sources root."""
    from data_foundation.dagster.home import prepare_dagster_home

    with _errors():
        load_project(_root())  # fail here, readably, rather than inside the webserver
        env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home(home)),
               "FOUNDATION_SOURCES_ROOT": str(_root().resolve())}
        command = [sys.executable, "-m", "dagster", "dev", "-m", "data_foundation.definitions",
                   "-h", "127.0.0.1", "-p", str(port)]
        err_console.print(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={env['DAGSTER_HOME']})")
        raise typer.Exit(subprocess.call(command, env=env))


@app.command()
def doctor(
    target_name: Optional[str] = typer.Option(None, "--target", "-t", envvar="FOUNDATION_TARGET",
                                              help="Target to check (as for `run`); default dev."),
    duckdb_file: Optional[Path] = typer.Option(None, "--duckdb-file", envvar="FOUNDATION_DUCKDB_FILE",
                                               help="DuckDB database file (as for `run`)."),
) -> None:
    """Check Python, packages, sources, config and secrets, the destination and Dagster; exit 1 on any failure."""
    from data_foundation.doctor import print_checklist, run_checks

    with _errors():
        checks = run_checks(_root(), target_name, str(duckdb_file) if duckdb_file else None)
        header = f"foundation doctor: sources root {_root()}, target {target_name or 'dev'}"
        if not print_checklist(console, checks, header, debug=state.debug, err_console=err_console):
            raise typer.Exit(1)


def main() -> None:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    app()


if __name__ == "__main__":
    main()
