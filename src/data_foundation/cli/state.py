"""`foundation state show|reset`: incremental cursors in dlt's pipeline state (`load/state_edit.py` does the work)."""

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from data_foundation.cli.common import (cli_target, console, dataset_prefix_option, debug_option, destination_option,
                                        duckdb_file_option, err_console, errors, root_option, target_option,
                                        use_options)

__all__ = ["state_app"]

state_app = typer.Typer(help="Show or reset incremental cursors (dlt's pipeline state).", no_args_is_help=True)


@state_app.command("show")
def show(
    ctx: typer.Context,
    source_name: str = typer.Argument(..., metavar="SOURCE", help="The source whose cursors to show."),
    target_name: Optional[str] = target_option(),
    destination: Optional[str] = destination_option(),
    duckdb_file: Optional[Path] = duckdb_file_option(),
    dataset_prefix: Optional[str] = dataset_prefix_option(),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout, for scripts."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """The source's incremental cursors (last and initial value) and where they live: the dataset's
    `_dlt_pipeline_state` table (authoritative) and the local working folder (a cache)."""
    options = use_options(ctx, root, debug, "state show")
    with errors(options):
        from data_foundation.config.loading import load_project
        from data_foundation.load.state_edit import show_state

        project = load_project(options.sources_root)
        source, _ = project.select([source_name.partition(".")[0]])[0]
        shown = show_state(source, cli_target(target_name, destination, duckdb_file, dataset_prefix))
        if as_json:
            print(json.dumps(shown.to_json(), indent=2))
            return
        _print_state(shown)


def _print_state(shown: Any) -> None:
    from data_foundation.load.state_edit import describe_value

    console.print(f"[bold]{shown.source}[/]: pipeline {shown.pipeline_name}, dataset `{shown.dataset}` in "
                  f"{shown.destination} {escape(shown.where)}")
    stored = shown.stored
    if stored is None:
        console.print(f"  state: none in {shown.state_table} (never loaded there): runs start from each cursor's "
                      "initial value")
    else:
        saved = f", saved {stored.saved_at:%Y-%m-%d %H:%M:%S %Z}" if stored.saved_at else ""
        console.print(f"  state: {shown.state_table}, version {stored.version}{saved} (load {stored.load_id})")
    console.print(f"  local working folder: {escape(shown.local.path)}: {shown.local.agreement(stored)}")
    if shown.cursors:
        table = Table(header_style="bold")
        for column in ("table", "cursor", "last value", "initial value", "rows at last value", "write disposition",
                       "validators"):
            table.add_column(column)
        for cursor in shown.cursors:
            table.add_row(cursor.table, cursor.cursor_path,
                          describe_value(cursor.last_value) if cursor.loaded else "(not loaded)",
                          describe_value(cursor.initial_value), str(cursor.rows_at_last_value), cursor.disposition,
                          "kept" if cursor.validators else "")
        console.print(table)
    else:
        console.print("  no resource with `incremental`: nothing to show")
    if shown.without_cursor:
        console.print(f"  without a cursor (every run loads all rows; `--full-refresh` re-loads the table): "
                      f"{', '.join(shown.without_cursor)}")
    if shown.partitioned or shown.partition_pipelines:
        found = ", ".join(shown.partition_pipelines) or "none yet"
        console.print(f"  partition runs keep their own state (pipelines {shown.pipeline_name}__<partition>: {found}); "
                      f"`foundation state reset` changes only {shown.pipeline_name}")


@state_app.command("reset")
def reset(
    ctx: typer.Context,
    selector: str = typer.Argument(..., metavar="SOURCE[.TABLE]",
                                   help="Every incremental table of SOURCE, or one table."),
    to: Optional[str] = typer.Option(None, "--to", metavar="VALUE",
                                     help="Load from VALUE (of the cursor's type) instead of the initial value."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change and change nothing."),
    target_name: Optional[str] = target_option(),
    destination: Optional[str] = destination_option(),
    duckdb_file: Optional[Path] = duckdb_file_option(),
    dataset_prefix: Optional[str] = dataset_prefix_option(),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Reset incremental cursors so the next `foundation run` re-loads from the initial value (or --to VALUE).

    The change goes through dlt (its state, loaded to the destination); tables are not touched."""
    options = use_options(ctx, root, debug, "state reset")
    with errors(options):
        from data_foundation.config.loading import load_project
        from data_foundation.load.state_edit import apply_reset, plan_reset

        project = load_project(options.sources_root)
        source, _ = project.select([selector])[0]
        table = selector.partition(".")[2] or None
        target = cli_target(target_name, destination, duckdb_file, dataset_prefix)
        changes = plan_reset(source, target, table, to)
        if not any(change.changes for change in changes):
            console.print(f"Nothing to reset: {', '.join(f'{source.name}.{c.table}' for c in changes)} never loaded "
                          f"into dataset `{target.dataset_name(source.dataset_name)}`; the next run starts from the "
                          "initial value.")
            return
        _print_changes(source, target, changes)
        if dry_run:
            console.print("Dry run: nothing changed.")
            return
        if not yes and not _confirmed(len(changes)):
            console.print("Not reset: nothing changed.")
            raise typer.Exit(1)
        version = apply_reset(source, target, changes, to)
        console.print(f"[green]Reset[/]: state version {version} saved in "
                      f"`{target.dataset_name(source.dataset_name)}._dlt_pipeline_state`; the next "
                      f"`foundation run {selector}` loads from the values above.")


def _print_changes(source: Any, target: Any, changes: List[Any]) -> None:
    from data_foundation.load.state_edit import describe_value

    dataset = target.dataset_name(source.dataset_name)
    where = f" {target.duckdb_file.resolve()}" if target.duckdb_file is not None else ""
    console.print(f"Reset in dataset `{dataset}` ({target.destination_name}{escape(where)}), pipeline "
                  f"foundation_{source.name}:")
    for change in changes:
        before = describe_value(change.before) if change.before is not None else "(not loaded)"
        after = describe_value(change.after) + (" (initial value)" if change.to_initial else "")
        extra = " and its conditional-GET validators" if change.validators else ""
        console.print(f"  {source.name}.{change.table} ({change.cursor_path}): {escape(before)} -> "
                      f"{escape(after)}{extra}")
    for change in changes:
        warning = change.warning(source.name)
        if warning:
            err_console.print(f"[bold yellow]Warning:[/] {escape(warning)}")
    if source.dagster.partition is not None:
        err_console.print(f"[bold yellow]Note:[/] partition runs keep their own state (pipelines "
                          f"foundation_{source.name}__<partition>); they are not reset.")


def _confirmed(count: int) -> bool:
    """Ask on the terminal; without one and without an answer on stdin, fail saying to pass --yes."""
    from data_foundation.load.state_edit import ResetError

    try:
        return typer.confirm(f"Reset {count} cursor{'s' if count != 1 else ''}?", default=False)
    except typer.Abort:  # stdin closed or at its end (or Ctrl-C at the prompt)
        if sys.stdin is None or not sys.stdin.isatty():
            raise ResetError("no answer to the confirmation (stdin is not a terminal); nothing changed. Pass --yes "
                             "to reset without asking, or --dry-run to only see the change.") from None
        raise typer.Exit(130)
