"""Rich tables and lines for the CLI: what `list`, `validate` and `run` print, and one line for a failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, List, Optional

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table

from data_foundation.errors import FoundationError, Problem

if TYPE_CHECKING:  # for the annotations only: importing them at run time imports dlt and pydantic with the CLI
    from data_foundation.config.project import Project
    from data_foundation.load.reconcile import Reconciliation
    from data_foundation.load.running import SourceRun

__all__ = ["describe", "loaded_table", "print_errors", "print_reconciliation", "run_table", "schema_changes_table",
           "sources_table"]


def sources_table(project: Project) -> Table:
    table = Table(title=f"Sources in {project.root}", header_style="bold")
    for column in ("source", "table", "entry", "write disposition", "primary key", "cursor", "schedule", "freshness"):
        table.add_column(column)
    for source in project.sources.values():
        for resource in source.resources:
            meta = resource.dagster
            config = meta.automation_condition_config
            schedule = meta.automation_condition or ""
            if config and config.cron_schedule:
                schedule = f"{config.cron_schedule} {config.cron_timezone}"
            bound = meta.freshness_lower_bound_delta_seconds
            freshness = f"{bound / 3600:g} h" if bound else ""
            cursor = resource.spec.incremental.cursor_path if resource.spec.incremental else ""
            table.add_row(source.name, resource.table, resource.spec.entry, _disposition(resource.spec),
                          ", ".join(resource.spec.primary_key_columns), cursor, schedule, freshness)
    return table


def run_table(runs: Iterable[SourceRun]) -> RenderableType:
    """The run summary: rows per table ("Loaded"), then the schema drift the runs loaded ("Schema changes"), if any."""
    runs = list(runs)
    changes = schema_changes_table(runs)
    return Group(loaded_table(runs), *([changes] if changes is not None else []))


def schema_changes_table(runs: Iterable[SourceRun]) -> Optional[Table]:
    """One row per schema change a run loaded (new column, variant column for a changed type, new child table);
    None when nothing changed."""
    table = Table(title="Schema changes", header_style="bold")
    for column in ("dataset", "table", "change"):
        table.add_column(column)
    for run in runs:
        for name, lines in sorted(run.schema_changes.items()):
            for line in lines:
                table.add_row(run.dataset, name, escape(line))
    return table if table.row_count else None


def loaded_table(runs: Iterable[SourceRun]) -> Table:
    table = Table(title="Loaded", header_style="bold")
    for column, justify in (("dataset", "left"), ("table", "left"), ("rows loaded", "right"),
                            ("rows in table", "right")):
        table.add_column(column, justify=justify)
    for run in runs:
        names = sorted(set(run.rows_loaded) | set(run.rows_total))
        for name in names:
            table.add_row(run.dataset, name, f"{run.rows_loaded.get(name, 0):,}", f"{run.rows_total.get(name, 0):,}")
    return table


def print_reconciliation(console: Console, err_console: Console, results: List[Reconciliation]) -> bool:
    """One line per source whose counts match or could not be read (why), a table of the tables that differ.
    False when any table differs."""
    mismatched = [r for r in results if r.skipped is None and r.mismatches]
    for result in results:
        if result.skipped is not None:
            err_console.print(f"[bold yellow]Warning:[/] reconciliation for {result.source} skipped: "
                              f"{escape(result.skipped)}")
        elif not result.mismatches:
            details = ", ".join(f"{t} {got:,}" for t, (got, _) in sorted(result.tables.items()))
            console.print(f"Reconciliation for {result.source}: [green]all match[/] ({details})")
    if not mismatched:
        return True
    table = Table(title="Reconciliation mismatch", header_style="bold")
    for column, justify in (("source", "left"), ("table", "left"), ("in destination", "right"),
                            ("at the source", "right"), ("difference", "right")):
        table.add_column(column, justify=justify)
    for result in mismatched:
        for name, (got, want) in sorted(result.mismatches.items()):
            table.add_row(result.source, name, f"{got:,}", f"{want:,}", f"{got - want:+,}")
    console.print(table)
    names = ", ".join(r.source for r in mismatched)
    err_console.print(f"[bold red]Error:[/] the loaded row counts of {names} differ from what the source reports "
                      "(table above). Re-run to load what is missing, or `--full-refresh` the tables that have too "
                      "many rows; `--no-reconcile` skips the comparison.")
    return False


def describe(exc: BaseException) -> str:
    """A failure as the CLI names it: a `FoundationError` by its message (written for the user), anything else with
    its type too (`KeyError: 'x'`)."""
    return str(exc) if isinstance(exc, FoundationError) else f"{type(exc).__name__}: {exc}"


def print_errors(console: Console, errors: List[Problem], label: str = "Error") -> None:
    style = "red" if label == "Error" else "yellow"
    for error in errors:
        console.print(f"[bold {style}]{label}:[/] {escape(str(error))}")
        if error.hint:
            console.print(f"  [dim]hint:[/] {escape(error.hint)}")


def _disposition(spec) -> str:
    wd = spec.write_disposition
    return wd if isinstance(wd, str) else f"{wd.disposition} ({wd.strategy})" if wd.strategy else wd.disposition

