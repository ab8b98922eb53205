"""Data gates (`checks:` in sources.yaml) and the empty-replace guard, as two steps of a resource's dlt pipe.

`GateStep` runs before the PII step, so it judges the values the entry yielded, and routes the rows a row-level gate
rejects (`not_null`, `accepted_values`, `predicate`, `unique`): `fail` raises (the extract fails, dlt discards the
load package, no state or cursor moves), `warn` counts them and lets them load, `quarantine` sends them on as rows of
`<table>__quarantine` (append, no key of the table, two columns saying why). Quarantined rows are ordinary items of
the pipe from there on: the PII step masks them as it masks the table's rows; transformers skip them (`NestedMeta`).

`GateCount` runs after dlt's incremental step, so it counts the rows that reach the table: `max_rows` fails as soon
as the count passes it; `min_rows`, the guard and the record of the run's outcomes are decided once the resource's
items are exhausted. dlt reads every step's `custom_metrics` right after the last item of the extract, before it
commits anything (`Extract._compute_metrics`, run when the extract storage closes): `GateCount.custom_metrics`
decides there, for resources and transformers alike, and a failure raised there fails the extract as any other.

Outcomes go to the source state (`data_foundation_gates` -> table -> checks), which dlt commits with the load, so the
destination's `_dlt_pipeline_state` says what the gates of the loaded run found (the Dagster asset checks read it),
and to a `GateAudit` for the run's warnings.
"""

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.libs import is_pandas_frame, is_polars_frame
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.utils import has_table_seen_data
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable
from dlt.extract.hints import make_hints
from dlt.extract.items import DataItemWithMeta
from dlt.extract.items_transform import ItemTransform

from data_foundation.config.gates import ChecksSpec
from data_foundation.config.project import ResourceDef
from data_foundation.config.tables import QUARANTINE_SUFFIX
from data_foundation.errors import FoundationError
from data_foundation.load.columnar import NestedMeta
from data_foundation.load.pii import _as_arrow_table, _as_row

__all__ = ["CHECK_COLUMN", "GATES_STATE_KEY", "QUARANTINE_SUFFIX", "REASON_COLUMN", "Gate", "GateAudit",
           "GateCount", "GateFailed", "GateStep", "QuarantineMeta", "describe_gate", "gate_for",
           "quarantine_table"]

GATES_STATE_KEY = "data_foundation_gates"  # source state: {table: {load_id, rows, quarantined, checks: {...}}}
CHECK_COLUMN = "_quarantine_check"
REASON_COLUMN = "_quarantine_reason"
_EXAMPLES = 3
_TYPE_HINTS = ("data_type", "precision", "scale", "timezone")  # of `columns:`, kept for the quarantine table
_NAMING = NamingConvention()  # dlt's default: the names columns get in the destination
_PATH = "__"  # dlt's separator of a nested field's path in a column name (`address__zip`)


def _normalized(name: str) -> str:
    """A column name as dlt writes it (`userId` -> `user_id`; `address.zip` and `address__zip` -> `address__zip`)."""
    return _NAMING.normalize_path(_PATH.join(str(name).split(".")))


class GateFailed(FoundationError):
    """A gate with `on_failure: fail`, or the empty-replace guard, stopped the run during extract."""


class QuarantineMeta(NestedMeta):
    """Meta of quarantined rows: the extractor writes them to `<table>__quarantine`; transformers skip them."""


def quarantine_table(table: str) -> str:
    return f"{table}{QUARANTINE_SUFFIX}"


@dataclass
class Outcome:
    """What one gate found in one run."""

    name: str
    on_failure: str
    detail: str  # what it checks, e.g. "`id`, `email` not null"
    failed: int = 0  # rows (or, for a count, 1 when it failed)
    quarantined: int = 0
    reasons: List[str] = field(default_factory=list)  # the first few
    examples: List[str] = field(default_factory=list)  # keys of the first few rows

    def add(self, reasons: List[str], keys: List[str]) -> None:
        self.failed += len(reasons)
        for reason in reasons:  # the first few different ones
            if len(self.reasons) >= _EXAMPLES:
                break
            if reason not in self.reasons:
                self.reasons.append(reason)
        self.examples.extend(keys[:_EXAMPLES - len(self.examples)])

    def record(self) -> Dict[str, Any]:
        return {"on_failure": self.on_failure, "detail": self.detail, "failed": self.failed,
                "quarantined": self.quarantined, "passed": self.failed == 0, "reasons": list(self.reasons)}


class _Page:
    """A page under judgement: dict rows (the entry's objects kept as they are) or one Arrow table.

    A gate names a column as the YAML writes it, which may be the name the data has (`userId`) or the one dlt loads
    (`user_id`; `address__zip` for `address: {zip: ...}`): a name not in the rows as written is looked up as dlt
    normalizes and flattens them."""

    def __init__(self, rows: Optional[List[Dict[str, Any]]] = None, table: Any = None) -> None:
        self.rows, self.table = rows, table
        self.size = table.num_rows if table is not None else len(rows or ())
        self._dicts: Optional[List[Dict[str, Any]]] = rows
        self._columns: Dict[str, Any] = {}  # column -> its path in the rows, or its Arrow column (None: absent)

    # --- where a column is ---

    def _path(self, column: str) -> Tuple[str, ...]:
        """The keys leading to `column` in the dict rows: as written, else the top-level key or nested keys whose
        normalized path is the column's normalized name. Absent: the name as written (every row then has null)."""
        if column not in self._columns:
            rows = self.rows or ()
            found = None if any(column in row for row in rows) else _find_path(_normalized(column), rows)
            self._columns[column] = found or (column,)
        return self._columns[column]

    def _arrow_column(self, column: str) -> Any:
        """The Arrow column named `column`, as written or as dlt normalizes it (a struct's fields flattened)."""
        if column not in self._columns:
            table = self.table
            index = table.schema.get_field_index(column)
            found = table.column(index) if index != -1 else None
            if found is None:
                wanted = _normalized(column)
                flat = table
                while True:
                    names = {_normalized(name): name for name in flat.column_names}
                    if wanted in names:
                        found = flat.column(names[wanted])
                        break
                    if not any(pa.types.is_struct(f.type) for f in flat.schema):
                        break
                    flat = flat.flatten()
            self._columns[column] = found
        return self._columns[column]

    # --- values ---

    def values(self, column: str) -> List[Any]:
        if self.table is None:
            path = self._path(column)
            return [_get(row, path) for row in self.rows or ()]
        found = self._arrow_column(column)
        return found.to_pylist() if found is not None else [None] * self.size

    def dicts(self) -> List[Dict[str, Any]]:
        if self._dicts is None:
            self._dicts = self.table.to_pylist()
        return self._dicts

    def nulls(self, column: str) -> List[int]:
        if self.table is None:
            path = self._path(column)
            return [i for i, row in enumerate(self.rows or ()) if _get(row, path) is None]
        found = self._arrow_column(column)
        if found is None:
            return list(range(self.size))
        return _indices(pc.is_null(found))

    def not_in(self, column: str, accepted: List[Any]) -> List[int]:
        """Rows whose value is not null and not accepted (a missing column is all nulls: it passes, as in dbt)."""
        if self.table is not None:
            values = self._arrow_column(column)
            if values is None:
                return []
            try:  # built as the column's type, not cast to it: a cast would turn 1 into "1" and accept it
                accepted_array = pa.array(accepted, type=values.type)
            except (pa.ArrowException, ValueError, TypeError):
                pass  # the YAML's values are not of the column's type: compared as Python values below, as for dicts
            else:
                outside = pc.and_(pc.invert(pc.is_in(values, value_set=accepted_array)), pc.is_valid(values))
                return _indices(outside)
        allowed = _Accepted(accepted)
        return [i for i, value in enumerate(self.values(column)) if value is not None and value not in allowed]


def _get(row: Dict[str, Any], path: Tuple[str, ...]) -> Any:
    value: Any = row
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _find_path(wanted: str, rows: Sequence[Any]) -> Optional[Tuple[str, ...]]:
    """The keys whose normalized path is `wanted` in some of `rows` (dicts; a nested dict is searched when the
    normalized name starts with its key's)."""
    keys = {key for row in rows if isinstance(row, dict) for key in row}
    for key in keys:
        if _normalized(key) == wanted:
            return (key,)
    for key in keys:
        prefix = _normalized(key) + _PATH
        if wanted.startswith(prefix):
            inner = _find_path(wanted[len(prefix):], [row.get(key) for row in rows if isinstance(row, dict)])
            if inner:
                return (key, *inner)
    return None


class _Accepted:
    """`in` over the YAML's values: hashable values by set, anything else by equality."""

    def __init__(self, values: List[Any]) -> None:
        self.hashable = {v for v in values if _hashable(v)}
        self.others = [v for v in values if not _hashable(v)]

    def __contains__(self, value: Any) -> bool:
        if _hashable(value) and value in self.hashable:
            return True
        return any(value == other for other in self.others)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _indices(mask: Any) -> List[int]:
    """Indices of the true values of a boolean Arrow array or chunked array (null is false)."""
    filled = pc.fill_null(mask, False)
    return pc.indices_nonzero(filled).to_pylist() if pc.any(filled).as_py() else []


class Gate:
    """One resource's gates and guard: the checks of each page, the run's counts and outcomes.

    Example:
        >>> gate = gate_for(project.sources["shop"].resource("orders"))
        >>> gate.warnings()  # after a run
        ['resource `shop.orders`: check `not_null` ...']
    """

    def __init__(self, resource: ResourceDef) -> None:
        spec = resource.spec
        self.resource = resource.name
        self.table = resource.table
        self.checks: ChecksSpec = spec.checks or ChecksSpec()
        self.predicate: Optional[Callable[[Dict[str, Any]], Any]] = resource.predicate
        self.guard_empty = spec.disposition == "replace" and not spec.allow_empty
        self.keys = spec.primary_key_columns
        pii = spec.pii
        # values never shown in reasons or messages: matched as the PII step matches them (as written or normalized)
        self.private = {_normalized(c) for c in [*pii.hash, *pii.drop]} if pii else set()
        self.columns = spec.columns
        self.row_level = any(getattr(self.checks, n) is not None
                             for n in ("not_null", "accepted_values", "predicate", "unique"))
        self.start()

    # --- a run ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Forget the last run (dlt binds the pipe's steps again at the start of every extract)."""
        self.outcomes: Dict[str, Outcome] = {name: Outcome(name, gate.on_failure, describe_gate(name, gate))
                                             for name, gate in self.checks.declared().items()}
        self.rows = 0  # rows that reach the table (after dlt's incremental step)
        self.quarantined = 0
        self.position = 0  # rows judged so far: the position of rows without a key in messages
        self.seen: Dict[Tuple[str, ...], Set[Any]] = {}
        self.load_id: Optional[str] = None
        self.finished = False
        self.failure: Optional[str] = None
        self.in_flight = sys.exc_info()[1]  # an exception being handled around the whole extract, not ours

    def finish(self) -> None:
        """After the resource's last item: the run's counts, the empty-replace guard, the record in the source state.
        Nothing is decided when the extract is failing anyway (dlt reads the metrics on its way out too)."""
        if self.finished:
            return
        self.finished = True
        current = sys.exc_info()[1]
        if current is not None and current is not self.in_flight:
            return
        failures = [self._count_gate("min_rows", self.rows < self.checks.min_rows.value)
                    if self.checks.min_rows else None,
                    self._count_gate("max_rows", self.rows > self.checks.max_rows.value)
                    if self.checks.max_rows else None,
                    self._empty_replace()]
        self._record()
        failed = [f for f in failures if f]
        if failed:
            self.failure = failed[0]
            raise GateFailed(failed[0])

    def _count_gate(self, name: str, failed: bool) -> Optional[str]:
        outcome = self.outcomes[name]
        if not failed:
            return None
        outcome.failed = 1
        gate = getattr(self.checks, name)
        relation = "fewer" if name == "min_rows" else "more"
        reason = (f"the run loads {self.rows:,} row(s), {relation} than {name} {gate.value:,}"
                  + (f" ({self.quarantined:,} quarantined)" if self.quarantined else ""))
        outcome.reasons = [reason]
        if outcome.on_failure != "fail":
            return None
        return (f"check `{name}` of resource `{self.resource}` failed: {reason}. Nothing of this run was loaded. "
                f"Fix the source (or its arguments), change `{name}`, or set `on_failure: warn` to load and report it")

    def _empty_replace(self) -> Optional[str]:
        """A `replace` resource whose run brings no row would make dlt empty its table: refused, unless the table
        holds nothing yet, the entry called `mark_unchanged()` (the resource is `append` for this run then) or
        `allow_empty: true`. A full refresh (`--full-refresh`) drops the table first: refused the same way."""
        if not self.guard_empty or self.rows:
            return None
        if not _still_replace(self.table) or not _has_data(self.table):
            return None
        quarantined = f" ({self.quarantined:,} row(s) went to `{quarantine_table(self.table)}`)" if self.quarantined \
            else ""
        return (f"resource `{self.resource}` (write_disposition: replace) brought no rows in this run{quarantined}: "
                "loading it would empty the table, so nothing of this run was loaded and the table keeps its rows. "
                "If the data is empty now, set `allow_empty: true` on the resource; if it did not change (a 304 Not "
                "Modified), call `data_foundation.unchanged.mark_unchanged()` in the entry")

    def _record(self) -> None:
        if not self.outcomes:
            return
        try:
            state = dlt.current.source_state()
        except Exception:  # iterated without a pipeline (`list(source)`): nothing to commit
            return
        state.setdefault(GATES_STATE_KEY, {})[self.table] = {
            "load_id": self.load_id, "rows": self.rows, "quarantined": self.quarantined,
            "checks": {name: outcome.record() for name, outcome in self.outcomes.items()}}

    def warnings(self) -> List[str]:
        """The run's gate findings that did not stop it: `warn` and `quarantine` gates that found rows."""
        lines = []
        for outcome in self.outcomes.values():
            if not outcome.failed or outcome.on_failure == "fail":
                continue
            if outcome.name in ("min_rows", "max_rows"):
                lines.append(f"resource `{self.resource}`: check `{outcome.name}` ({outcome.detail}): "
                             f"{outcome.reasons[0]} (on_failure: warn)")
                continue
            if outcome.on_failure == "quarantine":
                what = f"{outcome.quarantined:,} row(s) quarantined to `{quarantine_table(self.table)}`"
            else:
                what = f"{outcome.failed:,} row(s) failed it (on_failure: warn: not set aside)"
            lines.append(f"resource `{self.resource}`: check `{outcome.name}` ({outcome.detail}): {what}; "
                         f"e.g. {_example(outcome)}")
        return lines

    # --- pages ---------------------------------------------------------------------------------------------

    def judge(self, item: Any, meta: Any) -> Any:
        """`item` with the rows a `quarantine` gate rejects moved to the quarantine table (a generator of both parts
        then); raises `GateFailed` for a `fail` gate; counts `warn` gates' rows."""
        page, original = _page(item, self.resource)
        if page is None or not page.size:
            return item
        verdicts: List[Optional[Tuple[str, str]]] = [None] * page.size
        for name in ("not_null", "accepted_values", "predicate", "unique"):
            gate = getattr(self.checks, name)
            if gate is not None:
                found = getattr(self, f"_{name}")(gate, page, verdicts)
                self._act(name, found, page, verdicts)
        self.position += page.size
        if not any(verdicts):
            return item
        return self._split(page, original, verdicts, meta)

    def _act(self, name: str, found: List[Tuple[int, str]], page: _Page, verdicts: List[Any]) -> None:
        if not found:
            return
        outcome = self.outcomes[name]
        outcome.add([reason for _, reason in found], [self._key(page, i) for i, _ in found[:_EXAMPLES]])
        if outcome.on_failure == "fail":
            raise GateFailed(self._failure_message(outcome, len(found)))
        if outcome.on_failure == "quarantine":
            for index, reason in found:
                verdicts[index] = (name, reason)
            outcome.quarantined += len(found)
            self.quarantined += len(found)

    def _failure_message(self, outcome: Outcome, count: int) -> str:
        return (f"check `{outcome.name}` ({outcome.detail}) of resource `{self.resource}` failed: {count:,} row(s) of "
                f"this page, e.g. {_example(outcome)}. Nothing of this run was loaded. Fix the data at the source, or "
                f"set `on_failure: quarantine` (those rows go to `{quarantine_table(self.table)}`, the rest loads) or "
                "`on_failure: warn` (they load and are reported)")

    def _key(self, page: _Page, index: int) -> str:
        """How a row is named in messages: its primary key, unless a key column is PII; else its position."""
        if self.keys and not any(self._is_private(k) for k in self.keys):
            return ", ".join(f"{k}={_short(page.values(k)[index])}" for k in self.keys)
        return f"row {self.position + index + 1:,} of the run"

    def _is_private(self, column: str) -> bool:
        return _normalized(column) in self.private

    def _value(self, column: str, value: Any) -> str:
        return "a PII value" if self._is_private(column) else _short(value)

    def _not_null(self, gate: Any, page: _Page, verdicts: List[Any]) -> List[Tuple[int, str]]:
        found: Dict[int, str] = {}
        for column in gate.columns:
            for index in page.nulls(column):
                if verdicts[index] is None and index not in found:
                    found[index] = f"`{column}` is null"
        return sorted(found.items())

    def _accepted_values(self, gate: Any, page: _Page, verdicts: List[Any]) -> List[Tuple[int, str]]:
        found: Dict[int, str] = {}
        for column, accepted in gate.values.items():
            indices = [i for i in page.not_in(column, accepted) if verdicts[i] is None and i not in found]
            if not indices:
                continue
            values = page.values(column)
            for index in indices:
                found[index] = f"`{column}` = {self._value(column, values[index])} is not an accepted value"
        return sorted(found.items())

    def _predicate(self, gate: Any, page: _Page, verdicts: List[Any]) -> List[Tuple[int, str]]:
        found = []
        for index, row in enumerate(page.dicts()):
            if verdicts[index] is not None:
                continue
            raised = None
            try:
                answer = self.predicate(row) if self.predicate else True
            except Exception as exc:
                raised = self._predicate_raised(gate, page, index, row, exc)
            if raised is not None:  # raised outside the handler: dlt's trace keeps no chained exception (its values)
                raise GateFailed(raised)
            if answer is False:
                found.append((index, f"`{gate.entry}` returned False"))
            elif isinstance(answer, str):
                found.append((index, answer[:500]))
        return found

    def _predicate_raised(self, gate: Any, page: _Page, index: int, row: Dict[str, Any], exc: Exception) -> str:
        """The predicate's exception in one line, the row's PII values (as the exception may quote them) masked."""
        text = " ".join(str(exc).split())
        secrets = sorted({str(v) for k, v in row.items() if self._is_private(k) and v is not None and str(v)},
                         key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return (f"check `predicate` (`{gate.entry}`) of resource `{self.resource}` raised {type(exc).__name__} on "
                f"{self._key(page, index)}: {text[:300]}. Nothing of this run was loaded. Fix `{gate.entry}`: it must "
                "return True or None for a good row and False or a reason for a bad one, for every row")

    def _unique(self, gate: Any, page: _Page, verdicts: List[Any]) -> List[Tuple[int, str]]:
        """The second and later rows of the run with a key already seen (a rejected row's key is not remembered).
        A null in a one-column key is no value, as in dbt's `unique`; a combination compares nulls as values."""
        found: Dict[int, str] = {}
        for key in gate.keys:
            seen = self.seen.setdefault(tuple(key), set())
            columns = [page.values(column) for column in key]
            for index, values in enumerate(zip(*columns)):
                if verdicts[index] is not None or index in found or (len(values) == 1 and values[0] is None):
                    continue
                value = tuple(_hashable_value(v) for v in values)
                if value in seen:
                    shown = ", ".join(f"{c}={self._value(c, v)}" for c, v in zip(key, values))
                    found[index] = f"{shown} is not unique in this run"
                else:
                    seen.add(value)
        return sorted(found.items())

    def _split(self, page: _Page, original: Any, verdicts: List[Optional[Tuple[str, str]]], meta: Any) -> Iterator[Any]:
        """The page's passing rows (with the item's own meta), then its quarantined rows for the quarantine table."""
        keep = [v is None for v in verdicts]
        rejected = [(i, v) for i, v in enumerate(verdicts) if v is not None]
        table = quarantine_table(self.table)
        _declare_quarantine(table, self.columns)
        if page.table is not None:
            passing = page.table.filter(pa.array(keep)) if any(keep) else None
            moved = page.table.take(pa.array([i for i, _ in rejected], pa.int64()))
            moved = moved.append_column(CHECK_COLUMN, pa.array([v[0] for _, v in rejected], pa.string()))
            moved = moved.append_column(REASON_COLUMN, pa.array([v[1] for _, v in rejected], pa.string()))
        else:
            rows = original if isinstance(original, list) else [original]
            passing = [row for row, kept in zip(rows, keep) if kept] or None
            dicts = page.dicts()
            moved = [{**dicts[i], CHECK_COLUMN: v[0], REASON_COLUMN: v[1]} for i, v in rejected]
        return _emit(passing, meta, moved, table)

    # --- the run's rows ------------------------------------------------------------------------------------

    def count(self, item: Any, meta: Any) -> None:
        if isinstance(meta, QuarantineMeta):
            return
        if self.load_id is None:
            self.load_id = _load_id()
        self.rows += _rows_in(item)
        limit = self.checks.max_rows
        if limit is not None and limit.on_failure == "fail" and self.rows > limit.value:
            failure = self._count_gate("max_rows", True)
            self.finished = True  # decided: the extract fails here
            raise GateFailed(failure or "")


def _emit(passing: Any, meta: Any, moved: Any, table: str) -> Iterator[Any]:
    if passing is not None:
        yield DataItemWithMeta(meta, passing) if meta is not None else passing
    yield DataItemWithMeta(QuarantineMeta(table), moved)


def _declare_quarantine(table: str, columns: Dict[str, Dict[str, Any]]) -> None:
    """The quarantine table's hints, once per resource object: `append`, no key of the table, the types the
    resource's `columns:` gives (fresh dicts: dlt writes each column's name into its own), the two reason columns."""
    try:
        resource = dlt.current.get_resource()
    except Exception:  # iterated without a pipeline: dlt gives the item to the caller as it is
        return
    if table in resource._hints_variants:
        return
    hints = [{"name": name, **{k: v for k, v in hint.items() if k in _TYPE_HINTS}} for name, hint in columns.items()
             if any(k in hint for k in _TYPE_HINTS)]
    hints += [{"name": CHECK_COLUMN, "data_type": "text", "nullable": True},
              {"name": REASON_COLUMN, "data_type": "text", "nullable": True}]
    resource._hints_variants[table] = make_hints(table_name=table, write_disposition="append", columns=hints)


def _page(item: Any, resource: str) -> Tuple[Optional[_Page], Any]:
    """The item as a page to judge, and the item to split (a data frame becomes the Arrow table dlt makes of it)."""
    if isinstance(item, dict):
        return _Page(rows=[item]), item
    if isinstance(item, list):
        if all(type(row) is dict for row in item):
            return _Page(rows=item), item
        rows = [row if isinstance(row, dict) else _as_row(row) for row in item]
        if any(row is None for row in rows):
            raise GateFailed(_unjudgeable(resource, next(r for r, d in zip(item, rows) if d is None)))
        page = _Page(rows=rows)  # the objects' dicts judged, the objects themselves passed on
        return page, item
    table = _as_arrow_table(item)
    if table is not None:
        return _Page(table=table), table
    if item is None:
        return None, item
    row = _as_row(item)
    if row is None:
        raise GateFailed(_unjudgeable(resource, item))
    return _Page(rows=[row]), item


def _unjudgeable(resource: str, item: Any) -> str:
    return (f"resource `{resource}` declares `checks` but yielded a `{type(item).__module__}."
            f"{type(item).__qualname__}`, whose columns cannot be checked; nothing was loaded. Yield dicts, pydantic "
            "models, dataclasses, arrow tables or data frames")


def _rows_in(item: Any) -> int:
    """Rows in an item: a page's length, a table's or frame's rows, else one row (a dict, a pydantic model, a
    dataclass, a named tuple, whose `len` is its number of fields)."""
    if item is None:
        return 0
    if isinstance(item, list):
        return len(item)
    rows = getattr(item, "num_rows", None)
    if isinstance(rows, int):
        return rows
    if is_pandas_frame(item) or is_polars_frame(item):
        return len(item)
    return 1


def _hashable_value(value: Any) -> Any:
    return value if _hashable(value) else repr(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _example(outcome: Outcome) -> str:
    reason = outcome.reasons[0] if outcome.reasons else ""
    keys = f" ({'; '.join(outcome.examples)})" if outcome.examples else ""
    return f"{reason}{keys}"


def describe_gate(name: str, gate: Any) -> str:
    """What a gate checks, in a few words: `` `id`, `email` not null ``, `at least 1 row(s)`."""
    if name == "not_null":
        return f"{_names(gate.columns)} not null"
    if name == "unique":
        return " and ".join(f"{_names(key)} unique" for key in gate.keys)
    if name == "accepted_values":
        return "; ".join(f"`{c}` in {', '.join(map(str, v))}" for c, v in gate.values.items())
    if name == "predicate":
        return f"`{gate.entry}`"
    return f"{'at least' if name == 'min_rows' else 'at most'} {gate.value:,} row(s)"


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f"`{c}`" for c in columns)


def _load_id() -> Optional[str]:
    try:
        return dlt.current.load_package_state()["load_id"]
    except CurrentLoadPackageStateNotAvailable:
        return None


def _still_replace(table: str) -> bool:
    """The resource is still `replace` in this run: `mark_unchanged()` makes it `append` (keep the table)."""
    try:
        resource = dlt.current.source().resources[table]
    except Exception:
        return True
    disposition = resource.write_disposition
    return (disposition.get("disposition") if isinstance(disposition, dict) else disposition) == "replace"


def _has_data(table: str) -> bool:
    """The table holds loaded rows (the schema says it has seen data), or a full refresh is dropping it."""
    try:
        schema = dlt.current.source_schema()
        dropped = dlt.current.load_package_state()["state"].get("dropped_tables") or []
    except Exception:
        return True
    if any(t.get("name") == table for t in dropped):
        return True
    known = schema.tables.get(table)
    return bool(known) and has_table_seen_data(known)


# --- the steps -----------------------------------------------------------------------------------------------

class GateStep(ItemTransform[Any, Dict[str, Any]]):
    """The row-level gates, ahead of the PII step (raw values) and of dlt's incremental step."""

    def __init__(self, gate: Gate) -> None:
        super().__init__(lambda item: item)
        self.gate = gate

    def __call__(self, item: Any, meta: Any = None) -> Any:
        return self.gate.judge(item, meta)


class GateCount(ItemTransform[Any, Dict[str, Any]]):
    """Counts the rows that reach the table, after dlt's incremental step and `add_limit`; decides the run-level
    gates when dlt reads the steps' metrics at the end of the extract (see the module docstring)."""

    placement_affinity = 1.2  # after incremental (1) and add_limit (1.1), before the columnar step (1.5)

    def __init__(self, gate: Gate) -> None:
        super().__init__(lambda item: item)
        self.gate = gate

    def bind(self, pipe: Any) -> "GateCount":
        self.gate.start()
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        self.gate.count(item, meta)
        return item

    @property
    def custom_metrics(self) -> Dict[str, Any]:  # type: ignore[override]
        self.gate.finish()
        self._custom_metrics["gates"] = {name: {"failed": o.failed, "quarantined": o.quarantined}
                                         for name, o in self.gate.outcomes.items()}
        return self._custom_metrics


def gate_for(resource: ResourceDef) -> Optional[Gate]:
    """The resource's gate, or None when it has no `checks` and no empty table to guard (then it costs nothing)."""
    spec = resource.spec
    if spec.checks is None and not (spec.disposition == "replace" and not spec.allow_empty):
        return None
    return Gate(resource)


class GateAudit:
    """The gates of one run: after it, their findings as warnings (`foundation run` prints them).

    Example:
        >>> audit = GateAudit()
        >>> pipeline.run(build_source(source, gate_audit=audit))
        >>> audit.warnings()
        ['resource `shop.orders`: check `not_null` (`email` not null, quarantine): 2 row(s) quarantined ...']
    """

    def __init__(self) -> None:
        self.gates: List[Gate] = []

    def warnings(self) -> List[str]:
        return [line for gate in self.gates if gate.finished for line in gate.warnings()]
