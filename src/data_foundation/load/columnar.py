"""Pages of dicts -> Arrow tables that load exactly as dlt's row-by-row normalizer would load the dicts.

dlt normalizes a page of dicts one row at a time in Python (flatten, coerce, add ids, split child lists): ~30k rows/s
here. The same page as an Arrow table is written to parquet as it is, ~30x faster. `ColumnarPages` is the last step of
a resource's pipe (after dlt's incremental step, right before the fork to transformers) and converts each page only
when the result is the one dlt would have produced from the dicts:

- tables and column names: nested objects flattened with dlt's naming (`a__b`), nested lists as child tables
  (`<table>__<list>`) with `_dlt_parent_id`, `_dlt_list_idx`, `_dlt_id` (dlt's hash of the parent id, table and
  position) and, for merge tables, `_dlt_root_id`; root rows get `_dlt_load_id` and a random `_dlt_id`;
- types: bool, bigint, double, text as dlt infers them from the first value, ISO-8601 strings as timestamps when dlt's
  `iso_timestamp` detection (or a `timestamp` hint) makes the column one, an int column hinted `double` as double,
  `json` columns (hinted, or already json) serialized as dlt does; a column with no value yet is left out;
- whatever the table already is in the pipeline's schema (earlier runs, `columns:` hints) wins, as in dlt.

Anything else - mixed types in a column, a value that would become a variant column, NaN, years outside 1-9999,
dlt's typed-JSON markers, decimals, dates, objects, lists of lists, naming collisions, scd2/upsert keys, a nesting
limit, a first page under `MIN_ROWS` rows - is `Unfit`: that page and every later page of the resource in this run go
to dlt as dicts, so dlt decides as it always does. Transformers (`data_from`) still receive what the entry yielded: the
converted page carries it in its meta and `transformer_function` hands it over (see `RowsMeta`). Known differences
that remain (schema precision of detected timestamps, column order): see BENCHMARKS.md and the README.
"""

import base64
import functools
import inspect
import logging
import secrets
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common import json
from dlt.common.normalizers.json.helpers import (get_nested_row_hash, is_nested_type, normalize_identifier,
                                                  normalize_table_identifier)
from dlt.common.libs import is_arrow_object, is_pandas_frame, is_polars_frame
from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns
from dlt.common.schema import Schema
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable
from dlt.common.schema.typing import C_DLT_ID, C_DLT_LOAD_ID
from dlt.common.schema.utils import has_column_with_prop, new_table, normalize_table_identifiers
from dlt.common.schema.detections import is_iso_timestamp
from dlt.extract.hints import NATURAL_CALLABLES, TableNameMeta, make_hints
from dlt.extract.items import DataItemWithMeta
from dlt.extract.items_transform import ItemTransform

log = logging.getLogger("data_foundation.columnar")

# ISO-8601 date-times that Arrow parses to the same instant as dlt (pendulum): with 'T' or ' ', up to microseconds,
# and either no zone (UTC, as dlt reads them) or 'Z'/'+HH:MM' in every value of the page.
_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_UTC = pa.timestamp("us", tz="UTC")
_YEARS = (pa.scalar(-62135596800000000, _UTC), pa.scalar(253402300799999999, _UTC))  # 0001-01-01 .. 9999-12-31
_TYPE_MARKERS = "^[\uf026-\uf02f]"  # dlt's typed JSON marks decimals, dates... with these (`dlt.common.json`)
_NUMBERS = {"bigint": (r"^-?\d{1,18}$", pa.int64()), "double": (r"^-?\d{1,15}(\.\d{1,15})?$", pa.float64())}
_SCALARS = {pa.bool_(): "bool", pa.int64(): "bigint", pa.float64(): "double", pa.string(): "text"}
# precision dlt records when it reads these types from Arrow; the dict path records none
_ARROW_PRECISION = {"bigint": (None, 64), "double": (None, 53), "timestamp": (None, 6), "bool": (None,),
                    "text": (None,), "json": (None,)}


# dlt resources whose `json` columns are written as JSON text: dlt warns on every page that the Arrow type (text)
# differs from the schema's (json) and that the schema's is kept, which is the intent (see `_QuietJsonAsText`)
_JSON_AS_TEXT: set = set()


class _QuietJsonAsText(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage() if record.levelno == logging.WARNING else ""
        return not any(message.startswith(f"In resource: {name}, when merging arrow schema with dlt schema")
                       for name in _JSON_AS_TEXT)


# a resource whose first page is smaller goes to dlt's normalizer: for small pages dlt's own cost per Arrow item
# (computing and merging the table's schema, ~3 ms) is more than converting saves
MIN_ROWS = 100


class Unfit(Exception):
    """The page would not load exactly as dlt loads the dicts: the resource goes back to dlt's normalizer."""


class RowsMeta:
    """Meta of a converted page: the item it came from (what a transformer receives) and the page's own meta."""

    __slots__ = ("rows", "meta")

    def __init__(self, rows: Any, meta: Any) -> None:
        self.rows = rows
        self.meta = meta


class NestedMeta(TableNameMeta):
    """Meta of a child table's rows (`<table>__<list>`): the extractor writes them there; transformers skip them."""


def unfit_resource(write_disposition: Any, max_table_nesting: Optional[int], schema_contract: Any) -> Optional[str]:
    """Why a resource never takes the fast path (its row ids, nesting or contract are dlt's alone), or None."""
    if isinstance(write_disposition, dict):
        strategy = write_disposition.get("strategy", "delete-insert")
        if write_disposition.get("disposition") == "merge" and strategy != "delete-insert":
            return f"merge strategy {strategy}"
    if max_table_nesting is not None:
        return "max_table_nesting"
    if schema_contract not in (None, "evolve"):
        return "schema_contract"
    return None


class ColumnarPages(ItemTransform[Any, Dict[str, Any]]):
    """The last step of every resource's pipe: pages of dicts become the tables they load to when `convert` (see the
    module), and every Arrow item gets `_dlt_load_id` as rows do (dlt's own `add_dlt_load_id` setting would also stamp
    the child tables written here, which rows never get). Transformers receive what the entry yielded."""

    placement_affinity = 1.5  # after incremental (1) and add_limit (1.1), before the fork to transformers (2)

    def __init__(self, resource_name: str, merge: bool, convert: bool) -> None:
        super().__init__(lambda item: item)
        _quiet_dlt_json_warning()
        self.resource_name = resource_name
        self.merge = merge
        self.convert = convert
        self.unfit: Optional[str] = None  # why this run's pages go to dlt as dicts
        self.declared = False

    def bind(self, pipe: Any) -> "ColumnarPages":
        self.unfit = None
        self.declared = False
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        load_id = _load_id()
        if load_id is None:  # not a pipeline's extract: the source is iterated as it is (`list(source)`)
            return item
        if is_arrow_object(item) or is_pandas_frame(item) or is_polars_frame(item):
            if self.unfit is None:  # the entry's own tables and converted pages would share one parquet writer
                self.unfit = "the entry yields Arrow tables too"
            stamped = _with_load_id(item, load_id)
            return DataItemWithMeta(RowsMeta(item, None) if meta is None else meta, stamped)
        if not self.convert or self.unfit is not None or meta is not None:
            return item
        rows = [item] if type(item) is dict else item
        if type(rows) is not list or not rows:
            return item
        if not self.declared and len(rows) < MIN_ROWS:  # dlt's own cost per Arrow item outweighs the gain
            self.unfit = f"its first page has {len(rows)} rows, fewer than {MIN_ROWS}"
            log.debug("resource %s: dlt normalizes the dicts: %s", self.resource_name, self.unfit)
            return item
        try:
            schema = dlt.current.source_schema()
            if not self.declared:  # the resource's hints (`columns:`) as dlt's extractor declares them, before a page
                _declare_resource(schema, dlt.current.get_resource())
                self.declared = True
            tables = _Converter(schema, load_id, self.merge).page(rows)
        except (Unfit, pa.ArrowException, ValueError, TypeError, OverflowError) as exc:  # e.g. a cast Arrow refuses
            self.unfit = str(exc) if isinstance(exc, Unfit) else f"Arrow: {exc}"
            log.debug("resource %s: dlt normalizes the dicts: %s", self.resource_name, self.unfit)
            return item
        return _emit(tables, item, schema)


def _quiet_dlt_json_warning() -> None:
    dlt_logger = logging.getLogger("dlt")
    if not any(isinstance(f, _QuietJsonAsText) for f in dlt_logger.filters):
        dlt_logger.addFilter(_QuietJsonAsText())


def _declare_resource(schema: Schema, resource: Any) -> None:
    if resource.has_dynamic_table_name or any(callable(hint) for name, hint in (resource._hints or {}).items()
                                              if name not in NATURAL_CALLABLES):
        raise Unfit("hints computed from the data")
    schema.update_table(normalize_table_identifiers(resource.compute_table_schema(), schema.naming),
                        normalize_identifiers=False)


def _load_id() -> Optional[str]:
    """The id of the load package a pipeline is extracting, or None (a source may also be iterated as it is)."""
    try:
        return dlt.current.load_package_state()["load_id"]
    except CurrentLoadPackageStateNotAvailable:
        return None


def _with_load_id(item: Any, load_id: str) -> Any:
    """An Arrow table or batch (a data frame becomes one, as dlt's extractor does) with `_dlt_load_id`."""
    if not is_arrow_object(item):
        item = pa.Table.from_pandas(item) if is_pandas_frame(item) else item.to_arrow()
    index = item.schema.get_field_index(C_DLT_LOAD_ID)
    if index != -1:
        item = item.remove_column(index)
    load_ids = pa.array([load_id] * item.num_rows, pa.string())
    return item.append_column(pa.field(C_DLT_LOAD_ID, pa.string(), nullable=False), load_ids)


def _emit(tables: List[Tuple[str, Optional[str], pa.Table]], item: Any, schema: Schema) -> Iterator[Any]:
    """The page's tables: the root one carrying the item as the entry yielded it (for transformers), then the child
    tables."""
    resource = dlt.current.get_resource()
    _declare(schema, tables[0][0], None, tables[0][2])
    yield DataItemWithMeta(RowsMeta(item, None), tables[0][2])
    for name, parent, table in tables[1:]:
        if name not in resource._hints_variants:
            # the child table's own hints: a variant would start from the resource's (its key, columns, disposition)
            resource._hints_variants[name] = make_hints(table_name=name, parent_table_name=parent)
        _declare(schema, name, parent, table)
        if not isinstance(schema.tables[name], _NestedTable):
            # dlt's extract metrics look up the resource of every table written during extract (see `_NestedTable`)
            schema.tables[name] = _NestedTable(schema.tables[name], resource.name)
        yield DataItemWithMeta(NestedMeta(name), table)


def _declare(schema: Schema, name: str, parent: Optional[str], table: pa.Table) -> None:
    """dlt's own columns of `table` (`_dlt_id`, `_dlt_parent_id`, ...) with the hints dlt's normalizer gives them
    (the schema's `default_hints`: row and parent keys, not null), which dlt does not read from Arrow, and the new
    columns in the page's order (dlt's own columns after the data, as rows have them)."""
    columns = py_arrow_to_table_schema_columns(table.schema)
    known = schema.tables[name]["columns"] if name in schema.tables else {}
    columns = {k: v for k, v in columns.items() if k not in known or k.startswith("_dlt_")}
    for hint, names in (schema.settings.get("default_hints") or {}).items():
        for column in names:
            if column in columns:
                if hint == "not_null":
                    columns[column]["nullable"] = False
                else:
                    columns[column][hint] = True  # type: ignore[literal-required]
    schema.update_table(new_table(name, parent_table_name=parent, columns=list(columns.values())),
                        normalize_identifiers=False)


class _NestedTable(dict):
    """A child table in the schema being extracted into, answering `table["resource"]` with the root's resource.

    dlt's extract metrics read `schema.get_table(name)["resource"]` for every table written during extract, and a
    nested table has none; storing one is refused by dlt's schema merge. Only item access answers it: `get`, `in`,
    copies to storage and merges see the table exactly as dlt's normalizer would leave it."""

    def __init__(self, table: Dict[str, Any], resource: str) -> None:
        super().__init__(table)
        self.root_resource = resource

    def __missing__(self, key: str) -> Any:
        if key == "resource":
            return self.root_resource
        raise KeyError(key)

    def __reduce__(self) -> Any:  # copies are plain dicts: nothing outside this extract sees the answer
        return dict, (dict(self),)


def transformer_function(function: Callable) -> Callable:
    """`function` as a `data_from` transformer that receives its parent's pages as dicts whichever path they took.

    dlt passes every transformer the parent's item and `meta`: a converted page is handed over as the dicts in its
    `RowsMeta`, a child table of the parent is skipped, anything else is passed as it is. The signature stays the
    entry's (plus `meta`) so dlt still injects its config.
    """
    signature = inspect.signature(function)
    takes_meta = "meta" in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    parameters = list(signature.parameters.values())
    if "meta" not in signature.parameters:
        keywords = [i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD]
        added = inspect.Parameter("meta", inspect.Parameter.KEYWORD_ONLY, default=None)
        parameters.insert(keywords[0] if keywords else len(parameters), added)

    def _unwrap(item: Any, kwargs: Dict[str, Any]) -> Tuple[bool, Any]:
        meta = kwargs.pop("meta", None)
        if isinstance(meta, NestedMeta):
            return False, None
        if isinstance(meta, RowsMeta):
            item, meta = meta.rows, meta.meta
        if takes_meta:
            kwargs["meta"] = meta
        return True, item

    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def transformer(item: Any, *args: Any, **kwargs: Any) -> Any:
            wanted, item = _unwrap(item, kwargs)
            if wanted:
                yield from function(item, *args, **kwargs)
    else:
        @functools.wraps(function)
        def transformer(item: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            wanted, item = _unwrap(item, kwargs)
            return function(item, *args, **kwargs) if wanted else None

    transformer.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return transformer


class _Converter:
    """One page: the root table and its child tables, or `Unfit`."""

    def __init__(self, schema: Schema, load_id: str, merge: bool) -> None:
        self.schema = schema
        self.naming = schema.naming
        self.load_id = load_id
        self.merge = merge
        detections = set(schema.settings.get("detections") or ())
        if detections - {"iso_timestamp"}:
            raise Unfit(f"schema detections {sorted(detections)}")
        self.detect_timestamps = "iso_timestamp" in detections
        if schema.settings.get("preferred_types"):
            raise Unfit("schema preferred_types")
        self.tables: List[Tuple[str, Optional[str], pa.Table]] = []

    def page(self, rows: List[Dict[str, Any]]) -> List[Tuple[str, Optional[str], pa.Table]]:
        for row in rows:
            if type(row) is not dict:
                raise Unfit(f"a row of type {type(row).__name__}")
        keys = list(rows[0])
        if len(set().union(*rows)) != len(keys):  # keys that only later rows have: all keys, in order of appearance
            keys = list(dict.fromkeys(chain.from_iterable(rows)))
        try:
            array = pa.StructArray.from_arrays([pa.array(_column(rows, key)) for key in keys], names=keys)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise Unfit(f"Arrow cannot type the page: {exc}") from None
        table = normalize_table_identifier(self.schema, self.naming, dlt.current.resource_name())
        if table in self.schema.tables and self.schema.tables[table].get("parent"):
            raise Unfit("the table is a child table")
        propagated = ((self.schema._normalizers_config["json"].get("config") or {}).get("propagation") or {})
        root_key = self.merge or table in (propagated.get("tables") or {}) or any(
            has_column_with_prop(t, "root_key", include_incomplete=True)
            for name, t in self.schema.tables.items() if name.startswith(table + "__"))
        ids = _random_ids(len(array))
        self._table(table, None, array, rows, ids, ids if root_key else None, lambda i: i)
        return self.tables

    def _table(self, table: str, parent: Optional[str], array: pa.StructArray, rows: Optional[Sequence[Any]],
               ids: pa.Array, root_ids: Optional[pa.Array], parent_ids: Any) -> None:
        """Columns of `table` from a struct array (one element per row), then its child tables. `rows` are the
        Python values behind `array` (root table only: first-value and json checks need them)."""
        columns: Dict[str, pa.Array] = {}
        children: List[Tuple[Tuple[str, ...], pa.Array, Tuple[str, ...]]] = []
        known = self.schema.tables.get(table, {}).get("columns", {})
        # dlt's `_flatten`: a level's values in order, nested objects after them, the last object first
        stack: List[Tuple[pa.StructArray, Tuple[str, ...], Tuple[str, ...]]] = [(array, (), ())]
        while stack:
            struct, path, keys = stack.pop()
            fields = struct.flatten() if len(struct.type) else []
            for field, values in zip(struct.type, fields):
                norm = normalize_identifier(self.schema, self.naming, field.name) if field.name.strip() else "_empty"
                name = norm if not path else self.naming.shorten_fragments(*path, norm)
                kind = values.type
                if pa.types.is_struct(kind) or pa.types.is_list(kind):
                    if is_nested_type(self.schema, table, name, 1000):
                        self._add(columns, name, self._json(rows, keys + (field.name,), name))
                    elif pa.types.is_struct(kind):
                        stack.append((values, path + (norm,), keys + (field.name,)))
                    else:
                        list_path = path + (normalize_table_identifier(self.schema, self.naming, field.name),)
                        children.append((list_path, values, keys + (field.name,)))
                    continue
                if pa.types.is_null(kind):
                    continue  # dlt creates a column at its first value
                self._add(columns, name, self._scalar(name, values, known.get(name), rows, keys + (field.name,)))
        if root_ids is not None and parent is not None:
            columns["_dlt_root_id"] = root_ids
        if parent is not None:
            columns["_dlt_parent_id"], columns["_dlt_list_idx"] = parent_ids
        else:
            columns[C_DLT_LOAD_ID] = pa.array([self.load_id] * len(array), pa.string())
        columns[C_DLT_ID] = ids
        self.tables.append((table, parent, _with_nullability(columns, known)))
        for list_path, values, _ in children:
            self._child(table, list_path, values, ids, root_ids)

    def _child(self, parent: str, list_path: Tuple[str, ...], lists: pa.ListArray, parent_row_ids: pa.Array,
               root_ids: Optional[pa.Array]) -> None:
        table = self.naming.shorten_fragments(parent, *list_path)
        values = lists.flatten()
        if len(values) == 0:
            return
        owners = pc.list_parent_indices(lists)
        lengths = pc.fill_null(pc.list_value_length(lists), 0)
        starts = pc.subtract(pc.cumulative_sum(lengths), lengths)
        positions = pc.subtract(pa.array(range(len(values)), pa.int64()), pc.take(starts, owners))
        parent_ids = pc.take(parent_row_ids, owners)
        ids = pa.array([get_nested_row_hash(p, table, i)
                        for p, i in zip(parent_ids.to_pylist(), positions.to_pylist())], pa.string())
        child_roots = pc.take(root_ids, owners) if root_ids is not None else None
        kind = values.type
        if pa.types.is_list(kind):
            raise Unfit(f"a list of lists in `{table}`")
        if pa.types.is_struct(kind):
            if values.null_count:
                raise Unfit(f"a null in a list of objects in `{table}`")
            struct = values
        else:
            struct = pa.StructArray.from_arrays([values], names=["value"])
        self._table(table, parent, struct, None, ids, child_roots, (parent_ids, positions))

    def _scalar(self, name: str, values: pa.Array, column: Optional[Dict[str, Any]], rows: Optional[Sequence[Any]],
                keys: Tuple[str, ...]) -> pa.Array:
        found = _SCALARS.get(values.type)
        if found is None:
            raise Unfit(f"column `{name}` of Arrow type {values.type}")
        if found == "double" and pc.all(pc.is_finite(values.drop_null())).as_py() is False:
            raise Unfit(f"column `{name}` has NaN or infinity (dlt's JSON makes them null)")
        if found == "text" and pc.any(pc.match_substring_regex(values, _TYPE_MARKERS)).as_py():
            raise Unfit(f"column `{name}` has text starting with one of dlt's type markers")
        wanted = column.get("data_type") if column else None
        if wanted is None and column and {"precision", "scale", "timezone"} & set(column):
            raise Unfit(f"column `{name}` has a precision, scale or timezone hint but no data type")
        if wanted is None:  # a new column: dlt types it by its first value
            if found == "double" and not self._starts_with_float(values, rows, keys):
                raise Unfit(f"column `{name}` may start with an int and has floats")
            if found == "text" and self.detect_timestamps and _is_timestamp(values.drop_null()[0].as_py()):
                return self._timestamps(name, values)
            return values
        if column.get("precision") not in _ARROW_PRECISION.get(wanted, (None,)) or column.get("scale") is not None:
            raise Unfit(f"column `{name}` has precision or scale")
        if wanted == found:
            return values
        if wanted == "double" and found == "bigint":
            return pc.cast(values, pa.float64(), safe=False)
        if wanted == "timestamp" and found == "text" and column.get("timezone", True):
            return self._timestamps(name, values)
        if wanted in _NUMBERS and found == "text":  # what dlt's int()/float() of the text gives, for plain numbers
            pattern, arrow_type = _NUMBERS[wanted]
            if pc.all(pc.match_substring_regex(values.drop_null(), pattern)).as_py() is False:
                raise Unfit(f"column `{name}` is {wanted}, the page has text that is not a plain number")
            return pc.cast(values, arrow_type)
        raise Unfit(f"column `{name}` is {wanted}, the page has {found}")

    @staticmethod
    def _starts_with_float(values: pa.Array, rows: Optional[Sequence[Any]], keys: Tuple[str, ...]) -> bool:
        """Whether the column's first value is a float (Arrow types ints among floats as double; dlt goes by the
        first value). In child tables the Python values are gone: a first value with a fraction is a float."""
        if rows is not None:
            return type(next((v for row in rows if (v := _dig(row, keys)) is not None), None)) is float
        first = values.drop_null()[0].as_py()
        return first != int(first) if first == first and abs(first) != float("inf") else True

    def _timestamps(self, name: str, values: pa.Array) -> pa.Array:
        present = values.drop_null()
        if pc.any(pc.starts_with(present, "0000")).as_py():
            raise Unfit(f"column `{name}`: year 0 (dlt cannot parse it)")
        if pc.all(pc.match_substring_regex(present, _NAIVE)).as_py() is not False:
            times = pc.cast(pc.cast(values, pa.timestamp("us")), _UTC)
        elif pc.all(pc.match_substring_regex(present, _ZONED)).as_py():
            times = pc.cast(values, _UTC)
        else:
            raise Unfit(f"column `{name}`: timestamps in more than one form")
        bounds = pc.min_max(times)
        if len(present) and (pc.less(bounds["min"], _YEARS[0]).as_py() or pc.greater(bounds["max"], _YEARS[1]).as_py()):
            raise Unfit(f"column `{name}`: a time outside years 1-9999 in UTC")
        return times

    def _json(self, rows: Optional[Sequence[Any]], keys: Tuple[str, ...], name: str) -> pa.Array:
        if rows is None:
            raise Unfit(f"json column `{name}` in a child table")
        _JSON_AS_TEXT.add(dlt.current.resource_name())
        return pa.array([None if (v := _dig(row, keys)) is None else json.dumps(v) for row in rows], pa.string())

    @staticmethod
    def _add(columns: Dict[str, pa.Array], name: str, values: pa.Array) -> None:
        if name in columns:
            raise Unfit(f"two fields normalize to `{name}`")
        if name.startswith("_dlt_"):
            raise Unfit(f"a field named `{name}`")
        columns[name] = values


def _with_nullability(columns: Dict[str, pa.Array], known: Dict[str, Any]) -> pa.Table:
    """The table, its fields not nullable where dlt's schema says so (dlt's own columns, keys): dlt reads the
    nullability of an Arrow field into the schema, where the dict path would take the schema's."""
    fields = []
    for name, values in columns.items():
        required = name.startswith("_dlt_") or known.get(name, {}).get("nullable") is False
        if required and values.null_count:
            raise Unfit(f"column `{name}` is not nullable and has nulls")
        fields.append(pa.field(name, values.type, nullable=not required))
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))


def _random_ids(count: int) -> pa.Array:
    """`count` random row ids in the form of dlt's `generate_dlt_ids` (14 base64 characters, here of 84 random bits),
    encoded in one call: 12 random bytes are 16 characters, no padding, so the ids lie side by side."""
    encoded = base64.b64encode(secrets.token_bytes(12 * count))
    offsets = pa.array(range(0, 16 * (count + 1), 16), pa.int32()).buffers()[1]
    return pc.utf8_slice_codeunits(pa.StringArray.from_buffers(count, offsets, pa.py_buffer(encoded)), 0, 14)


def _column(rows: List[Dict[str, Any]], key: str) -> List[Any]:
    try:
        return list(map(itemgetter(key), rows))  # in C; a row without the key needs `get`
    except KeyError:
        return [row.get(key) for row in rows]


def _dig(row: Any, keys: Tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(row, dict):
            return None
        row = row.get(key)
    return row


def _is_timestamp(value: Any) -> bool:
    """dlt's `iso_timestamp` detection, as dlt applies it to a new column's first value."""
    return is_iso_timestamp(type(value), value) == "timestamp"


__all__ = ["ColumnarPages", "NestedMeta", "RowsMeta", "Unfit", "unfit_resource", "transformer_function"]
