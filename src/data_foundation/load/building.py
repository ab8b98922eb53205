"""Validated spec -> dlt resources and sources. No Dagster here, no YAML either.

An entry is the resource function itself, called the way dlt's own `rest_api` source builds its resources:
`dlt.resource(entry, name=<table>, section=<source>, ...)(*arguments, **keyword_arguments)`. So dlt injects the
entry's `dlt.config.value` / `dlt.secrets.value` parameters and overrides its other defaults from config
(`sources.<source>.<table>.<key>`, then `sources.<source>.<key>`: env `SOURCES__<SOURCE>__<KEY>`, `.dlt/*.toml`),
while the YAML's arguments, passed explicitly, win. A parameter annotated `dlt.sources.incremental` receives the
resource's configured `incremental`; a transformer (`data_from`) receives its parent's items first.

dlt calls only generator functions as they are. Two other shapes get an adapter that keeps the entry's own signature
(so injection still sees every parameter): an entry that returns instead of yields (rows, a page, or - the factory
form - a generator function, called in turn), and one whose `incremental` parameter has no annotation.
`arrow: true` and `pii` are steps of the resource's pipe, ahead of dlt's incremental step and of the fork to
transformers, so cursors, dedup hashes, children and files only ever see converted, masked items. `checks` (data
gates, `load/gates.py`) sit between the two: they judge the raw values, and the rows they quarantine are masked by the
PII step like every other row; their count of the rows that reach the table runs after dlt's incremental step.
"""

import copy
import functools
import inspect
from graphlib import TopologicalSorter
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, get_args, get_origin

import dlt
import pyarrow as pa
from dlt.common.libs import is_arrow_object, is_pandas_frame, is_polars_frame
from dlt.common.typing import extract_inner_type, is_subclass
from dlt.extract import DltResource, DltSource
from dlt.extract.incremental import Incremental
from dlt.extract.items_transform import MapItem

from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.load.columnar import ColumnarPages, transformer_function, unfit_resource
from data_foundation.load.gates import GateAudit, GateCount, GateStep, gate_for
from data_foundation.load.pii import (PII_SALT_ENV, PII_SALT_KEY, PiiAudit, PiiMasker, PiiRowTypeRefused,
                                      PiiSaltMissing, pii_hash)
from data_foundation.load.session import RunFailed

__all__ = ["GateAudit", "PII_SALT_ENV", "PII_SALT_KEY", "PiiAudit", "PiiMasker", "PiiRowTypeRefused",
           "PiiSaltMissing", "build_resource", "build_source", "pii_hash", "resource_function"]


def build_source(source: SourceDef, tables: Optional[Iterable[str]] = None,
                 keyword_overrides: Optional[Dict[str, Dict[str, Any]]] = None,
                 pii_audit: Optional[PiiAudit] = None, gate_audit: Optional[GateAudit] = None) -> DltSource:
    """A fresh `DltSource` for `source` (one per run: dlt resources keep state between iterations).

    Args:
        source: the validated source.
        tables: tables to select; all when None.
        keyword_overrides: per table, keyword arguments that replace the YAML's for this run.
        pii_audit: collects, per resource with `pii`, the columns that never appeared in the data.
        gate_audit: collects the gates (`checks`) of the run, for their warnings after it.

    Example:
        >>> pipeline.run(build_source(project.sources["my_api"], tables=["users"]))
    """
    overrides = keyword_overrides or {}
    by_name = {r.name: r for r in source.resources}
    graph = {r.name: [r.spec.data_from] if r.spec.data_from in by_name else [] for r in source.resources}
    built: Dict[str, DltResource] = {}
    for name in TopologicalSorter(graph).static_order():  # a transformer needs its parent built first
        resource = by_name[name]
        parent = built.get(resource.spec.data_from) if resource.spec.data_from else None
        built[name] = build_resource(resource, parent=parent, keyword_arguments=overrides.get(resource.table),
                                     pii_audit=pii_audit, gate_audit=gate_audit)
    resources = [built[r.name] for r in source.resources]  # in the order sources.yaml declares them

    def _resources() -> List[DltResource]:
        return resources

    dlt_source = dlt.source(_resources, name=source.name, section=source.name)()
    if tables is not None:
        wanted = set(tables)
        dlt_source = dlt_source.with_resources(*[r.table for r in source.resources if r.table in wanted])
    return dlt_source


def build_resource(resource: ResourceDef, parent: Optional[DltResource] = None,
                   keyword_arguments: Optional[Dict[str, Any]] = None,
                   pii_audit: Optional[PiiAudit] = None, gate_audit: Optional[GateAudit] = None) -> DltResource:
    """One dlt resource (a transformer of `parent` when `data_from` is set) over the entry, bound to its YAML
    arguments; `keyword_arguments` replace the YAML's of the same name.

    Example:
        >>> orders = build_resource(jaffle.resource("orders"))
        >>> items = build_resource(jaffle.resource("items"), parent=orders)
    """
    spec = resource.spec
    unbound = dlt.resource(
        resource_function(resource),
        name=resource.table,
        write_disposition=spec.dlt_write_disposition(),
        primary_key=spec.primary_key,
        merge_key=spec.merge_key,
        # dlt writes each column's name into its hint dict: give every resource its own copies
        columns=copy.deepcopy(spec.columns) or None,
        schema_contract=_schema_contract(spec.schema_contract),
        max_table_nesting=spec.max_table_nesting,
        data_from=parent,
        incremental=_incremental(resource),
        section=resource.source,
    )
    built = _bind(unbound, resource, keyword_arguments)
    if spec.parallelized:
        # after binding: called with arguments, dlt re-wraps a copy of the bare function and drops `parallelized`
        built.parallelize()
    if spec.arrow:
        built.add_step(_arrow_page)  # a step, not `add_map`: a map is given each row of a page, not the page
    gate = gate_for(resource)
    if gate is not None:
        if gate_audit is not None:
            gate_audit.gates.append(gate)
        if gate.row_level:  # before PII: the gates judge the values the entry yielded
            built.add_step(GateStep(gate))
        built.add_step(GateCount(gate))  # placed after dlt's incremental step (its affinity)
    if spec.pii and (spec.pii.hash or spec.pii.drop):
        masker = PiiMasker(resource.name, spec.pii)
        if pii_audit is not None:
            pii_audit.maskers.append(masker)
        built.add_step(_PiiStep(masker))
    convert = spec.columnar and not spec.arrow and unfit_resource(
        spec.dlt_write_disposition(), spec.max_table_nesting, spec.schema_contract) is None
    built.add_step(ColumnarPages(resource.name, merge=spec.disposition == "merge", convert=convert))
    return built


def resource_function(resource: ResourceDef) -> Callable:
    """The function dlt calls for `resource`: the entry itself when it is a generator function dlt can call as it is,
    else an adapter with the entry's signature (see the module docstring).

    Example:
        >>> resource_function(jaffle.resource("customers")) is jaffle_data.fetch
        True
    """
    function = resource.function
    signature = inspect.signature(function)
    incremental = resource.spec.incremental is not None
    if not _yields(function) or (incremental and _unfit_incremental(signature)):
        function = _adapt(function, _signature_for_dlt(signature, incremental),
                          added="incremental" not in signature.parameters)
    return transformer_function(function) if resource.spec.data_from else function


def _bind(unbound: DltResource, resource: ResourceDef, keyword_arguments: Optional[Dict[str, Any]]) -> DltResource:
    kwargs = {**resource.spec.keyword_arguments, **(keyword_arguments or {})}
    if resource.spec.data_from:
        kwargs["meta"] = None  # bound, so dlt passes each item's meta on (`columnar.transformer_function` reads it)
    try:
        return unbound(*resource.spec.arguments, **kwargs)
    except TypeError as exc:  # validation checked the YAML's: these are a run's overrides (Dagster's launchpad)
        raise RunFailed(f"resource `{resource.name}`: the arguments do not fit `{resource.spec.entry}`: {exc}. "
                        "Pass only the parameters the function takes") from None


def _schema_contract(contract: Any) -> Any:
    """A mode given as one string applies to columns and data types; the table itself may still be created (dlt's
    `tables: freeze` would refuse the very first load). The dict form is passed to dlt as it is."""
    if isinstance(contract, str) and contract != "evolve":
        return {"tables": "evolve", "columns": contract, "data_type": contract}
    return contract


def _incremental(resource: ResourceDef) -> Optional[dlt.sources.incremental]:
    spec = resource.spec.incremental
    if spec is None:
        return None
    return dlt.sources.incremental(**spec.model_dump(exclude_none=True))


# --- entries dlt cannot call as they are -----------------------------------------------------------------------

def _yields(function: Callable) -> bool:
    return inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function)


def _unfit_incremental(signature: inspect.Signature) -> bool:
    """An `incremental` parameter dlt would not fill as it is: one without a `dlt.sources.incremental[<type>]`
    annotation (dlt goes by the annotation or an incremental default), or with one that names no value type (dlt
    1.31 reads the type from `Optional[dlt.sources.incremental]` and fails)."""
    parameter = signature.parameters.get("incremental")
    if parameter is None:
        return False
    annotation = extract_inner_type(parameter.annotation)
    return not (is_subclass(get_origin(annotation), Incremental) and get_args(annotation))


def _signature_for_dlt(signature: inspect.Signature, incremental: bool) -> inspect.Signature:
    """The entry's signature, with an `incremental` parameter dlt recognizes when the resource configures one: the
    entry's own, annotated, or a keyword-only one added for the generator function a factory returns."""
    if not incremental or ("incremental" in signature.parameters and not _unfit_incremental(signature)):
        return signature
    annotated = Optional[dlt.sources.incremental[Any]]
    parameters = list(signature.parameters.values())
    names = [p.name for p in parameters]
    if "incremental" in names:
        index = names.index("incremental")
        parameters[index] = parameters[index].replace(annotation=annotated)
    else:
        added = inspect.Parameter("incremental", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotated)
        keywords = [i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD]
        parameters.insert(keywords[0] if keywords else len(parameters), added)
    return signature.replace(parameters=parameters)


def _adapt(function: Callable, signature: inspect.Signature, added: bool) -> Callable:
    """A generator function with `signature` (the entry's, see `_signature_for_dlt`) that calls the entry and yields
    what it returned as dlt would have received it yielded; a returned generator function (the factory form) is
    called in turn, with the `incremental` dlt injected when it takes one."""

    @functools.wraps(function)
    def entry(*args: Any, **kwargs: Any) -> Iterator[Any]:
        bound = signature.bind_partial(*args, **kwargs)
        if added:
            incremental = bound.arguments.pop("incremental", None)
        else:
            incremental = bound.arguments.get("incremental")
        result = function(*bound.args, **bound.kwargs)
        if callable(result) and not _is_iterable(result):
            result = result(**_incremental_kwarg(result, incremental))
        yield from _returned_items(result)

    entry.__signature__ = signature  # type: ignore[attr-defined]
    return entry


def _incremental_kwarg(function: Callable, incremental: Any) -> Dict[str, Any]:
    if incremental is None:
        return {}
    try:
        return {"incremental": incremental} if "incremental" in inspect.signature(function).parameters else {}
    except (TypeError, ValueError):
        return {}


def _returned_items(result: Any) -> Iterable[Any]:
    """What an entry returned, as the items it would have yielded: None is nothing; a row, a page (a list), a string,
    an arrow table or a data frame is one item (a string is not its characters); any other iterable is iterated."""
    if result is None:
        return ()
    if isinstance(result, (dict, list, str, bytes)) or not _is_iterable(result) or _is_table(result):
        return (result,)
    return result


def _is_iterable(value: Any) -> bool:
    return hasattr(value, "__iter__") or hasattr(value, "__next__")


def _is_table(value: Any) -> bool:
    return is_arrow_object(value) or is_pandas_frame(value) or is_polars_frame(value)


# --- steps of the resource's pipe ------------------------------------------------------------------------------

def _arrow_page(item: Any, meta: Any = None) -> Any:
    """`arrow: true`: a page of flat dicts becomes one pyarrow table, so dlt writes parquet straight from it instead
    of normalizing row by row (~10x faster). Other items pass through."""
    if isinstance(item, list) and item and all(isinstance(row, dict) for row in item):
        return pa.Table.from_pylist(item)
    if isinstance(item, dict):
        return pa.Table.from_pylist([item])
    return item


class _PiiStep(MapItem):
    """The masker as a dlt map step (each row of a page, or a whole table). dlt binds its steps when it opens the
    resource's pipe, after calling the generator function but before its first line runs: a missing salt stops the
    run there, before the entry fetches anything, and only for resources that run (a subset needs no salt for the
    tables it leaves out)."""

    def __init__(self, masker: PiiMasker) -> None:
        super().__init__(masker)
        self.masker = masker

    def bind(self, pipe: Any) -> "_PiiStep":
        self.masker.salt()
        return self
