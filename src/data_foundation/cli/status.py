"""`foundation status`: per source and table, the last load, the last failure, the cursor, freshness and pending
loads, read from the destination."""

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from data_foundation.cli.common import (cli_target, console, dataset_prefix_option, debug_option, destination_option,
                                        duckdb_file_option, errors, root_option, target_option, use_options)

__all__ = ["status"]


def status(
    ctx: typer.Context,
    selectors: Optional[List[str]] = typer.Argument(None, metavar="[SELECTOR]...",
                                                    help="`source` or `source.table`; default: all."),
    target_name: Optional[str] = target_option(),
    destination: Optional[str] = destination_option(),
    duckdb_file: Optional[Path] = duckdb_file_option(),
    dataset_prefix: Optional[str] = dataset_prefix_option(),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout, for scripts and alerting."),
    root: Optional[Path] = root_option(),
    debug: bool = debug_option(),
) -> None:
    """Last load, last failure, cursor, freshness and pending loads per source and table.

    Read from the destination (dlt's `_dlt_loads`, pipeline state and table rows, and the failures foundation records
    in dataset `foundation_runs`), so any machine sees the same answer; this machine's working folder adds the loads
    it has not finished and a failure the destination could not record. Nothing is written; a DuckDB file is opened
    read-only and never created.

    Exit 1 when something needs attention - a table is late against its `freshness_lower_bound_delta_seconds` or was
    never loaded, or a source failed after its last successful load - or when the destination cannot be read; else 0.
    Loads in progress or left unfinished are reported but do not fail it (a run in progress has one)."""
    options = use_options(ctx, root, debug)
    with errors(options):
        from data_foundation.config.loading import load_project
        from data_foundation.load.history import read_status

        project = load_project(options.sources_root)
        target = cli_target(target_name, destination, duckdb_file, dataset_prefix)
        now = datetime.now(timezone.utc)
        statuses = read_status(project, target, selectors or [], now)
        attention = any(s.attention for s in statuses)
        if as_json:
            print(json.dumps(status_document(statuses, target, now), indent=2))
        else:
            console.print(_status_table(statuses, target, now))
            _print_notes(statuses)
            console.print(_summary(statuses))
    if attention:
        raise typer.Exit(1)


# --- JSON -------------------------------------------------------------------------------------------------------

def status_document(statuses: List[Any], target: Any, now: datetime) -> Dict[str, Any]:
    """The `--json` document: every key always present (null when it does not apply), times ISO-8601 UTC, durations
    and counts as numbers."""
    return {
        "generated_at": _iso(now),
        "target": target.name or target.destination_name,
        "destination": target.destination_name,
        "ok": not any(s.attention for s in statuses),
        "sources": [_source_json(s) for s in statuses],
    }


def _source_json(status: Any) -> Dict[str, Any]:
    failure = status.last_failure
    return {
        "source": status.source,
        "dataset": status.dataset,
        "pipeline": status.pipeline,
        "last_load": _load_json(status.last_load),
        "failing": status.failing,
        "last_failure": None if failure is None else {
            "finished_at": _iso(failure.finished_at),
            "started_at": _iso(failure.started_at),
            "step": failure.step,
            "cause": failure.cause,
            "pipeline": failure.pipeline,
            "load_id": failure.load_id,
            "tables": list(failure.tables),
            "host": failure.host or None,
            "pid": failure.pid,
            "recorded": failure.recorded,
            "current": status.failing,
        },
        "pending": [{
            "load_id": p.load_id,
            "started_at": _iso(p.started_at),
            "stage": p.stage.replace(" ", "_"),
            "local": p.local,
            "rows": p.rows,
            "rows_in_destination": p.rows_in_destination,
        } for p in status.pending],
        "tables": [_table_json(t) for t in status.tables],
    }


def _table_json(table: Any) -> Dict[str, Any]:
    cursor, freshness = table.cursor, table.freshness
    return {
        "table": table.table,
        "last_load": _load_json(table.last_load),
        "rows": table.rows,
        "last_rows_load": _load_json(table.last_rows),
        "cursor": None if cursor is None else {"path": cursor.cursor_path,
                                               "initial_value": _value(cursor.initial_value),
                                               "last_value": _value(cursor.last_value)},
        "freshness": {"state": freshness.state, "limit_seconds": freshness.limit_seconds,
                      "age_seconds": _round(freshness.age_seconds), "late_seconds": _round(freshness.late_seconds)},
    }


def _load_json(load: Any) -> Optional[Dict[str, Any]]:
    if load is None:
        return None
    return {"load_id": load.load_id, "started_at": _iso(load.started_at), "finished_at": _iso(load.finished_at),
            "seconds": round(load.seconds, 3)}


def _iso(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def _value(value: Any) -> Any:
    """A cursor value as JSON: numbers and strings as they are, times ISO-8601, anything else as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return _iso(value) if value.tzinfo else value.isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --- the table ----------------------------------------------------------------------------------------------------

def _status_table(statuses: List[Any], target: Any, now: datetime) -> Table:
    where = f" {target.duckdb_file.resolve()}" if target.duckdb_file is not None else ""
    title = (f"Status in {target.name or target.destination_name} ({target.destination_name}{escape(where)}) at "
             f"{_time(now)} UTC")
    table = Table(title=title, header_style="bold")
    for column in ("source", "table", "last load (UTC)", "rows", "took", "cursor", "freshness"):
        table.add_column(column, justify="right" if column in ("rows", "took") else "left")
    for status in statuses:
        for t in status.tables:
            load = t.last_load
            table.add_row(status.source, t.table,
                          f"{_time(load.finished_at)} ({_ago(load.finished_at, now)})" if load else "",
                          f"{t.rows:,}" if t.rows is not None else "",
                          _took(load.seconds) if load else "",
                          escape(_cursor(t.cursor)), _freshness(t.freshness))
    return table


def _print_notes(statuses: List[Any]) -> None:
    """Below the table: a source's current failure and its unfinished loads, one line each."""
    for status in statuses:
        failure = status.last_failure
        if status.failing:
            where = "" if failure.recorded == "destination" else " (only in this machine's trace)"
            console.print(f"[bold red]{status.source} failing[/]: failed at {_time(failure.finished_at)} UTC in step "
                          f"`{failure.step}`{where}: {escape(failure.cause)}")
        for pending in status.pending:
            console.print(f"[bold yellow]{status.source} pending[/]: {escape(_pending(status.source, pending))}")


def _pending(source: str, pending: Any) -> str:
    started = f"started {_time(pending.started_at)} UTC, " if pending.started_at else ""
    if pending.stage == "partially loaded":
        rows = ", ".join(f"{table} {count:,}" for table, count in sorted(pending.rows_in_destination.items()))
        then = (f"the next `foundation run {source}` here completes it" if pending.local else
                "its package is not in this machine's working folder: the machine that ran it completes it on its "
                "next run; until then these rows belong to no completed load")
        return f"load {pending.load_id} ({started}killed while loading): rows in the destination: {rows}; {then}"
    rows = f" ({', '.join(f'{t} {n:,}' for t, n in sorted(pending.rows.items()))})" if pending.rows else ""
    return (f"load {pending.load_id}{rows} ({started}{pending.stage}, not loaded yet): a run in progress, or the "
            f"next `foundation run {source}` here loads it")


def _summary(statuses: List[Any]) -> str:
    tables = [t for s in statuses for t in s.tables]
    counts = {state: sum(1 for t in tables if t.freshness.state == state)
              for state in ("fresh", "late", "never_loaded", "no_policy")}
    failing = sum(1 for s in statuses if s.failing)
    pending = sum(len(s.pending) for s in statuses)
    parts = [f"{counts['fresh']} fresh", f"{counts['late']} late", f"{counts['never_loaded']} never loaded",
             f"{counts['no_policy']} without a freshness policy"]
    text = f"{len(tables)} table(s): {', '.join(parts)}; {failing} source(s) failing; {pending} pending load(s)."
    return f"[bold red]Attention[/]: {text}" if any(s.attention for s in statuses) else f"[green]OK[/]: {text}"


def _freshness(freshness: Any) -> str:
    style = {"fresh": "green", "late": "bold red", "never_loaded": "yellow", "no_policy": "dim"}[freshness.state]
    return f"[{style}]{freshness.describe()}[/]"


def _cursor(cursor: Any) -> str:
    if cursor is None:
        return ""
    if cursor.last_value is None:
        return f"{cursor.cursor_path}: from {_value(cursor.initial_value)}"
    return f"{cursor.cursor_path} = {_value(cursor.last_value)}"


def _took(seconds: float) -> str:
    from data_foundation.load.history import humanize_seconds

    return f"{seconds:.1f} s" if seconds < 60 else humanize_seconds(seconds)


def _ago(then: datetime, now: datetime) -> str:
    from data_foundation.load.history import humanize_seconds

    return f"{humanize_seconds(max(0.0, (now - then).total_seconds()))} ago"


def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
