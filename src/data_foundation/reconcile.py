"""Compare loaded row counts with what the source says it has (a source's `reconcile` entry)."""

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from data_foundation.project import SourceDef

__all__ = ["Reconciliation", "reconcile"]


@dataclass
class Reconciliation:
    tables: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # table -> (in destination, expected)

    @property
    def ok(self) -> bool:
        return all(got == want for got, want in self.tables.values())


def reconcile(source: SourceDef, rows_in_destination: Dict[str, int]) -> Optional[Reconciliation]:
    """Call the source's `reconcile` function (expected rows per table) and pair it with the destination's counts."""
    if source.reconcile is None:
        return None
    expected = source.reconcile()
    return Reconciliation({table: (rows_in_destination.get(table, 0), int(count))
                           for table, count in expected.items() if table in {r.table for r in source.resources}})
