"""Compare loaded row counts with what the source says it has (a source's `reconcile` entry).

A reconciliation that cannot run (the endpoint is down, the answer has an unexpected shape) is reported as skipped
with the reason; it never turns a completed load into a failure.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Tuple

from dlt.common.configuration.inject import with_config

from data_foundation.errors import mask_secrets
from data_foundation.config.project import SourceDef

__all__ = ["Reconciliation", "reconcile"]


@dataclass
class Reconciliation:
    source: str
    tables: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # table -> (in destination, expected)
    skipped: Optional[str] = None  # why the expected counts could not be read

    @property
    def ok(self) -> bool:
        """Every compared table matches (a skipped reconciliation is not ok: nothing was verified)."""
        return self.skipped is None and not self.mismatches

    @property
    def mismatches(self) -> Dict[str, Tuple[int, int]]:
        return {table: counts for table, counts in self.tables.items() if counts[0] != counts[1]}


def reconcile(source: SourceDef, rows_in_destination: Dict[str, int],
              tables: Optional[Iterable[str]] = None) -> Optional[Reconciliation]:
    """Call the source's `reconcile` entry (expected rows per table) and pair it with the destination's counts,
    for `tables` (default: every table of the source). None when the source declares no `reconcile`.

    The entry is called the way dlt calls the source's resources, with `dlt.config.value` / `dlt.secrets.value`
    parameters and other defaults injected from `sources.<source>.<key>`, so it reads the same settings.

    Example:
        >>> result = reconcile(project.sources["jaffle_shop"], run.rows_total)
        >>> result.ok, result.mismatches
        (False, {'orders': (61948, 62948)})
    """
    if source.reconcile is None:
        return None
    wanted = set(tables) if tables is not None else {r.table for r in source.resources}
    entry = source.spec.reconcile
    try:
        expected = _counts(with_config(source.reconcile, sections=("sources", source.name))())
    except Exception as exc:  # user code talking to an API: whatever it raises only skips the comparison
        reason = f"`{entry}` failed: {type(exc).__name__}: {_first_line(exc)}"
        return Reconciliation(source.name, skipped=mask_secrets(reason))
    return Reconciliation(source.name, {table: (rows_in_destination.get(table, 0), count)
                                        for table, count in expected.items() if table in wanted})


def _counts(value: Any) -> Dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError(f"returned {type(value).__name__}, not a mapping of table name to row count")
    try:
        return {str(table): int(count) for table, count in value.items()}
    except (TypeError, ValueError) as exc:
        raise TypeError(f"returned a row count that is not a whole number ({exc})") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""
