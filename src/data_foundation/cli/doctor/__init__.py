"""`foundation doctor`: a checklist of everything a load needs, each line with what to do when it fails.

Checks, in order, one module per concern: Python and the installed versions of the core packages against the
project's ranges (`packages`); the target (`target`); the sources root and, per source, the settings its entry
functions take from dlt, read from dlt's spec of each function (`sources`, `settings`); the destination's credentials,
resolved through dlt's providers, naming the env var of every missing field (`credentials`); that the destination is
reachable (`destination`); the dbt project's profile output, adapter and generated sources.yml (`dbt`); that the
Dagster definitions load, the dbt models included, and whether failure alerts are configured (`dagster`).

No value of a setting or secret is ever printed: details name keys and env vars only, every secret dlt resolves
meanwhile is registered with `data_foundation.masking`, and every line is masked.
"""

import traceback
from pathlib import Path
from typing import List, Optional

from rich.console import Console
from rich.markup import escape

from data_foundation.cli.doctor.check import FAIL, INFO, OK, SKIP, Check, guarded
from data_foundation.cli.doctor.dagster import alerts_check, definitions_check
from data_foundation.cli.doctor.dbt import dbt_check
from data_foundation.cli.doctor.destination import destination_checks
from data_foundation.cli.doctor.packages import CORE_PACKAGES, package_checks, python_check
from data_foundation.cli.doctor.sources import root_check, settings_check
from data_foundation.cli.doctor.target import target_check
from data_foundation.masking import capture_resolved_secrets, mask_secrets

__all__ = ["CORE_PACKAGES", "Check", "print_checklist", "run_checks"]

_MARKS = {OK: "[green]✓[/]", FAIL: "[bold red]✗[/]", SKIP: "[dim]–[/]", INFO: "[blue]·[/]"}


def run_checks(root: Path, target_name: Optional[str] = None, duckdb_file: Optional[str] = None) -> List[Check]:
    """Every check, in checklist order. Never raises for a failing check: the failure is a ✗ line.

    Example:
        >>> [c.name for c in run_checks(Path("dlthub")) if c.failed]
        []
    """
    with capture_resolved_secrets():
        checks = [python_check(), *package_checks()]
        target_line, target = target_check(target_name, duckdb_file)
        root_line, project = root_check(root)
        checks += [target_line, root_line]
        if project is not None:
            checks += [guarded(f"config {s.name}", settings_check, s) for s in project.sources.values()]
        checks += destination_checks(target, project)
        checks += [guarded("dbt project", dbt_check, target, project),
                   definitions_check(root, target, root_line.failed), alerts_check()]
    for check in checks:
        if check.error is not None:
            check.trace = mask_secrets("".join(traceback.format_exception(check.error)))
    return checks


def print_checklist(console: Console, checks: List[Check], header: str = "", debug: bool = False,
                    err_console: Optional[Console] = None) -> bool:
    """Print the checklist; True when nothing failed."""
    if header:
        console.print(header, soft_wrap=True)
    for check in checks:
        detail = f": {escape(check.detail)}" if check.detail else ""
        name = f"[dim]{escape(check.name)}[/]" if check.status == SKIP else f"[bold]{escape(check.name)}[/]"
        console.print(f"{_MARKS[check.status]} {name}{detail}", soft_wrap=True)
        for note in check.notes:
            console.print(f"    [dim]{escape(note)}[/]", soft_wrap=True)
        for fix in check.fixes:
            console.print(f"    [yellow]→[/] {escape(fix)}", soft_wrap=True)
        if debug and check.trace and err_console is not None:
            err_console.print(f"[dim]{escape(check.trace)}[/]", soft_wrap=True)
    failed = [c for c in checks if c.failed]
    counted = [c for c in checks if c.status in (OK, FAIL)]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(counted)} checks failed.[/] Fix the ✗ lines and run "
                      "`foundation doctor` again.", soft_wrap=True)
    else:
        console.print(f"[green]All {len(counted)} checks passed.[/]", soft_wrap=True)
    return not failed
