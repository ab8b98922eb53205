"""`foundation plan`: what a run would do, per table, without fetching any data (`load/planning.py` does the work)."""

import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from data_foundation.cli.common import (cli_target, console, dataset_prefix_option, debug_option, destination_option,
                                        duckdb_file_option, errors, root_option, target_option, use_options)

__all__ = ["plan"]


def plan(
    ctx: typer.Context,
    selectors: Optional[List[str]] = typer.Argument(None, metavar="[SELECTOR]...",
                                                    help="`source` or `source.table`; default: all."),
    target_name: Optional[str] = target_option(),
    destination: Optional[str] = destination_option(),
    duckdb_file: Optional[Path] = duckdb_file_option(),
    dataset_prefix: Optional[str] = dataset_prefix_option(),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Plan a run with --full-refresh."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout, for scripts."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """What `foundation run` would do per table, without fetching data: disposition, keys, the cursor's start value,
    the dataset, whether the table exists (and --full-refresh would drop it), the next automation, warnings."""
    options = use_options(ctx, root, debug)
    with errors(options):
        from data_foundation.config.loading import load_project
        from data_foundation.load.planning import plan_selection

        project = load_project(options.sources_root)
        target = cli_target(target_name, destination, duckdb_file, dataset_prefix)
        plans = plan_selection(project, target, selectors or [], full_refresh)
        if as_json:
            print(json.dumps({"target": target.name or target.destination_name,
                              "destination": target.destination_name, "full_refresh": full_refresh,
                              "tables": [p.to_json() for p in plans]}, indent=2))
            return
        console.print(_plan_table(plans, target, full_refresh))
        _print_warnings(plans)


def _plan_table(plans: List[Any], target: Any, full_refresh: bool) -> Table:
    from data_foundation.load.planning import describe_start

    where = f" {target.duckdb_file.resolve()}" if target.duckdb_file is not None else ""
    datasets = ", ".join(f"`{d}`" for d in dict.fromkeys(p.dataset for p in plans))
    title = (f"Plan: `foundation run`{' --full-refresh' if full_refresh else ''} into "
             f"{target.name or target.destination_name} ({target.destination_name}{escape(where)}), "
             f"dataset{'s' if ', ' in datasets else ''} {escape(datasets)}")
    table = Table(title=title, header_style="bold")
    for column in ("table", "disposition", "keys", "cursor", "start value", "exists", "--full-refresh", "automation",
                   "next"):
        # names and values whole (a narrow terminal wraps the descriptions around them, not a name into `…`)
        table.add_column(column, no_wrap=column in ("table", "start value"))
    for p in plans:
        disposition = p.write_disposition + (f" ({p.merge_strategy})" if p.merge_strategy else "")
        keys = "; ".join(part for part in (", ".join(p.primary_key),
                                           f"merge: {', '.join(p.merge_key)}" if p.merge_key else "") if part)
        drops = f"drops {', '.join(p.full_refresh_drops)}" if p.full_refresh_drops else "nothing to drop"
        automation = p.automation + (f"; {p.partitions} partitions" if p.partitions else "")
        table.add_row(f"{p.source}.{p.table}", disposition, keys, p.cursor_path or "", escape(describe_start(p)),
                      "yes" if p.exists else "no", drops, escape(automation), p.next_run or "")
    return table


def _print_warnings(plans: List[Any]) -> None:
    from data_foundation.cli.render import print_errors

    seen: List[Any] = []
    for p in plans:
        seen.extend(w for w in p.warnings if w not in seen)
    print_errors(console, seen, label="Warning")
