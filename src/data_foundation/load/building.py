"""Validated spec -> dlt resources and sources. No Dagster here, no YAML either."""

import copy
import hashlib
import inspect
from typing import Any, Callable, Dict, Iterable, List, Optional

import dlt
import pyarrow as pa
from dlt.common.json import custom_encode
from dlt.common.libs import is_pandas_frame, is_polars_frame
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.extract import DltResource, DltSource

from data_foundation.errors import FoundationError
from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.config.spec import PiiSpec

__all__ = ["PII_SALT_ENV", "PII_SALT_KEY", "PiiAudit", "PiiMasker", "PiiRowTypeRefused", "PiiSaltMissing",
           "build_resource", "build_source", "call_entry", "pii_hash"]

PII_SALT_KEY = "data_foundation.pii_salt"  # dlt secret: env DATA_FOUNDATION__PII_SALT, or secrets.toml
PII_SALT_ENV = "DATA_FOUNDATION__PII_SALT"


def build_source(source: SourceDef, tables: Optional[Iterable[str]] = None,
                 keyword_overrides: Optional[Dict[str, Dict[str, Any]]] = None,
                 pii_audit: Optional["PiiAudit"] = None) -> DltSource:
    """A fresh `DltSource` for `source` (one per run: dlt resources keep state between iterations).

    Args:
        source: the validated source.
        tables: tables to select; all when None.
        keyword_overrides: per table, keyword arguments that replace the YAML's for this run.
        pii_audit: collects, per resource with `pii`, the columns that never appeared in the data.

    Example:
        >>> pipeline.run(build_source(project.sources["my_api"], tables=["users"]))
    """
    overrides = keyword_overrides or {}
    built: Dict[str, DltResource] = {}
    for resource in _parents_first(source.resources):
        parent = built.get(resource.spec.data_from.split(".", 1)[1]) if resource.spec.data_from else None
        built[resource.table] = build_resource(resource, parent=parent, keyword_arguments=overrides.get(resource.table),
                                               pii_audit=pii_audit)

    def _resources() -> List[DltResource]:
        return list(built.values())

    dlt_source = dlt.source(_resources, name=source.name, section=source.name)()
    if tables is not None:
        wanted = set(tables)
        dlt_source = dlt_source.with_resources(*[t for t in built if t in wanted])
    return dlt_source


def build_resource(resource: ResourceDef, parent: Optional[DltResource] = None,
                   keyword_arguments: Optional[Dict[str, Any]] = None,
                   pii_audit: Optional["PiiAudit"] = None) -> DltResource:
    """One dlt resource (or transformer when `data_from` is set) calling the entry with its YAML arguments."""
    spec = resource.spec
    kwargs = dict(spec.keyword_arguments)
    kwargs.update(keyword_arguments or {})
    args = list(spec.arguments)
    function = resource.function
    masker = PiiMasker(resource.name, spec.pii) if spec.pii and (spec.pii.hash or spec.pii.drop) else None
    if masker is not None and pii_audit is not None:
        pii_audit.maskers.append(masker)
    pages = _as_arrow if spec.arrow else _iterate
    if parent is not None and spec.incremental is None:
        # no `incremental` parameter here: dlt would resolve its config again for every page the parent yields
        def _transform(item: Any) -> Any:
            if masker is not None:
                masker.salt()  # no salt: fail before the entry sees any data
            yield from pages(call_entry(function, [item, *args], kwargs))
        data: Callable = _transform
    elif parent is not None:
        def _transform_incremental(item: Any, incremental: Optional[dlt.sources.incremental[Any]] = None) -> Any:
            if masker is not None:
                masker.salt()
            yield from pages(call_entry(function, [item, *args], kwargs, incremental))
        data = _transform_incremental
    else:
        def _extract(incremental: Optional[dlt.sources.incremental[Any]] = None) -> Any:
            if masker is not None:
                masker.salt()  # no salt: fail before anything is fetched
            yield from pages(call_entry(function, args, kwargs, incremental))
        data = _extract
    data.__name__ = resource.table
    data.__qualname__ = resource.table
    data.__doc__ = resource.description
    built = dlt.resource(
        data,
        name=resource.table,
        write_disposition=spec.dlt_write_disposition(),
        primary_key=spec.primary_key,
        merge_key=spec.merge_key,
        # dlt writes each column's name into its hint dict: give every resource its own copies
        columns=copy.deepcopy(spec.columns) or None,
        schema_contract=_schema_contract(spec.schema_contract),
        max_table_nesting=spec.max_table_nesting,
        parallelized=spec.parallelized,
        data_from=parent,
        incremental=_incremental(resource),
        section=resource.source,
    )
    if masker is not None:
        # a map step runs right after the generator: before dlt's incremental (cursor state, dedup hashes), before
        # the fork to transformers (`data_from` children get masked pages), before anything is written to disk
        built.add_map(masker)
    return built


def _schema_contract(contract: Any) -> Any:
    """A mode given as one string applies to columns and data types; the table itself may still be created (dlt's
    `tables: freeze` would refuse the very first load). The dict form is passed to dlt as it is."""
    if isinstance(contract, str) and contract != "evolve":
        return {"tables": "evolve", "columns": contract, "data_type": contract}
    return contract


class PiiSaltMissing(FoundationError):
    """A resource hashes columns but no salt is configured."""


def pii_hash(salt: str, value: Any) -> Optional[str]:
    """Hex SHA-256 of the salt followed by the value: UTF-8 of `salt + str(value)` (bytes values appended as they
    are). None stays None."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hashlib.sha256(salt.encode("utf-8") + bytes(value)).hexdigest()
    return hashlib.sha256((salt + str(value)).encode("utf-8")).hexdigest()


class PiiRowTypeRefused(FoundationError):
    """A resource with `pii` yielded something whose columns cannot be masked."""


class PiiMasker:
    """dlt map step: hashes and drops top-level columns of every row type dlt loads, before anything is written.

    Dict rows are masked as they are; pydantic models, dataclasses, named tuples and objects with `asdict()` become
    the dicts dlt itself would serialize them to; arrow tables and record batches are masked column-wise, pandas and
    polars frames after dlt's own conversion to arrow. Anything else (a scalar, an arbitrary object) stops the run:
    its columns cannot be known, so nothing is written. Column names match as written or after dlt's snake_case
    normalisation (`E-Mail` matches `e_mail`).
    """

    _naming = NamingConvention()

    def __init__(self, resource: str, pii: PiiSpec):
        self.resource = resource
        self.hashed = {self._naming.normalize_identifier(c) for c in pii.hash} | set(pii.hash)
        self.dropped = {self._naming.normalize_identifier(c) for c in pii.drop} | set(pii.drop)
        self.hash_names = list(pii.hash)
        self.columns = list(dict.fromkeys([*pii.hash, *pii.drop]))
        self._actions: Dict[str, Optional[str]] = {}
        self._salt: Optional[str] = None
        self.rows = 0  # rows masked, to tell "the column never appeared" from "no data"
        self.seen: set = set()  # configured columns found in the data (normalized names)

    def salt(self) -> str:
        """The salt from dlt's secrets (read once per run); raises `PiiSaltMissing` naming the setting."""
        if self._salt is None and self.hash_names:
            value = dlt.secrets.get(PII_SALT_KEY)
            if value is None or not str(value):
                columns = ", ".join(self.hash_names)
                raise PiiSaltMissing(
                    f"resource `{self.resource}` hashes PII columns ({columns}) but no salt is configured: set the "
                    f"environment variable {PII_SALT_ENV} (or `pii_salt` under `[data_foundation]` in "
                    ".dlt/secrets.toml)")
            self._salt = str(value)
        return self._salt or ""

    def action(self, column: str) -> Optional[str]:
        found = self._actions.get(column, "?")
        if found == "?":
            names = {column, self._naming.normalize_identifier(column)}
            found = "drop" if names & self.dropped else "hash" if names & self.hashed else None
            self._actions[column] = found
            if found is not None:
                self.seen.update(names)
        return found

    def unseen(self) -> List[str]:
        """Configured columns that never appeared in any row (a renamed field would leak under its new name)."""
        return [c for c in self.columns if not ({c, self._naming.normalize_identifier(c)} & self.seen)]

    def __call__(self, item: Any) -> Any:
        if isinstance(item, dict):
            return self._mask_row(item)
        row = _as_row(item)
        if row is not None:
            return self._mask_row(row)
        table = _as_arrow_table(item)
        if table is not None:
            return self._mask_arrow(table)
        if item is None:
            return item
        raise PiiRowTypeRefused(
            f"resource `{self.resource}` declares `pii` but yielded a `{type(item).__module__}."
            f"{type(item).__qualname__}`, whose columns cannot be masked; nothing was written. Yield dicts, pydantic "
            "models, dataclasses, arrow tables or data frames")

    def _mask_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        self.rows += 1
        masked = {}
        for key, value in row.items():
            action = self.action(key)
            if action is None:
                masked[key] = value
            elif action == "hash":
                masked[key] = pii_hash(self.salt(), value)
        return masked  # a new dict: the entry's rows (possibly shared with a parent's) stay untouched

    def _mask_arrow(self, table: Any) -> Any:
        self.rows += table.num_rows
        schema = table.schema
        actions = [self.action(name) for name in schema.names]
        if not any(actions):
            return table
        arrays: List[Any] = []
        fields: List[Any] = []
        for index, action in enumerate(actions):
            if action == "drop":
                continue
            field = schema.field(index)
            column = table.column(index)
            if action == "hash":
                salt = self.salt()
                column = pa.array([pii_hash(salt, v) for v in column.to_pylist()], type=pa.string())
                field = pa.field(field.name, pa.string(), nullable=True, metadata=field.metadata)
            arrays.append(column)
            fields.append(field)
        return type(table).from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


class PiiAudit:
    """The maskers of one run: after it, which `pii` columns never appeared in data that was loaded."""

    def __init__(self) -> None:
        self.maskers: List[PiiMasker] = []

    def warnings(self) -> List[str]:
        found = []
        for masker in self.maskers:
            unseen = masker.unseen()
            if masker.rows and unseen:
                names = ", ".join(f"`{c}`" for c in unseen)
                found.append(f"resource `{masker.resource}`: pii column(s) {names} never appeared in its "
                             f"{masker.rows:,} row(s): check the name (a renamed field is loaded unmasked)")
        return found


def _as_row(item: Any) -> Optional[Dict[str, Any]]:
    """The dict dlt's JSON encoder turns a row object into (a pydantic model, a dataclass, a named tuple, an object
    with `asdict()`), or None for anything it does not turn into a dict."""
    try:
        row = custom_encode(item)
    except TypeError:  # dlt could not serialize it either
        return None
    return row if isinstance(row, dict) else None


def _as_arrow_table(item: Any) -> Any:
    """An arrow table/record batch as it is; a pandas or polars frame converted the way dlt's extractor does."""
    if _is_arrow(item) and hasattr(item, "schema") and hasattr(item, "column"):
        return item
    if is_pandas_frame(item):
        from dlt.common.libs.pandas import pandas_to_arrow

        return pandas_to_arrow(item)
    if is_polars_frame(item):
        from dlt.common.libs.polars import polars_to_arrow

        return polars_to_arrow(item)
    return None


def call_entry(function: Callable, args: List[Any], kwargs: Dict[str, Any], incremental: Any = None) -> Any:
    """Call the entry; a returned generator function (a factory's result) is called too.

    `incremental` is passed to whichever of the two accepts a parameter of that name.
    """
    result = function(*args, **kwargs, **_incremental_kwarg(function, incremental))
    if callable(result) and not _is_iterable(result):
        result = result(**_incremental_kwarg(result, incremental))
    return result


def _incremental(resource: ResourceDef) -> Optional[dlt.sources.incremental]:
    spec = resource.spec.incremental
    if spec is None:
        return None
    options = spec.model_dump(exclude_none=True)
    return dlt.sources.incremental(**options)


def _incremental_kwarg(function: Callable, incremental: Any) -> Dict[str, Any]:
    if incremental is None:
        return {}
    try:
        return {"incremental": incremental} if "incremental" in inspect.signature(function).parameters else {}
    except (TypeError, ValueError):
        return {}


def _iterate(result: Any) -> Iterable[Any]:
    if result is None:
        return []
    if isinstance(result, (dict, list)) or not _is_iterable(result) or _is_arrow(result):
        return [result]
    return result


def _as_arrow(result: Any) -> Iterable[Any]:
    """`arrow: true`: each page of flat dicts becomes a pyarrow table, so dlt writes parquet straight from it
    instead of normalizing row by row (~10x faster). Other items pass through."""
    for page in _iterate(result):
        if isinstance(page, list) and page and all(isinstance(row, dict) for row in page):
            yield pa.Table.from_pylist(page)
        elif isinstance(page, dict):
            yield pa.Table.from_pylist([page])
        else:
            yield page


def _is_iterable(value: Any) -> bool:
    return hasattr(value, "__iter__") or hasattr(value, "__next__")


def _is_arrow(value: Any) -> bool:
    return type(value).__module__.startswith(("pyarrow", "pandas"))


def _parents_first(resources: List[ResourceDef]) -> List[ResourceDef]:
    ordered: List[ResourceDef] = []
    by_name = {r.name: r for r in resources}

    def visit(resource: ResourceDef, seen: frozenset) -> None:
        if resource in ordered or resource.name in seen:
            return
        if resource.spec.data_from in by_name:
            visit(by_name[resource.spec.data_from], seen | {resource.name})
        ordered.append(resource)

    for resource in resources:
        visit(resource, frozenset())
    return ordered
