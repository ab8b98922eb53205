"""Validated spec -> dlt resources and sources. No Dagster here, no YAML either."""

import copy
import inspect
from typing import Any, Callable, Dict, Iterable, List, Optional

import dlt
from dlt.extract import DltResource, DltSource

from data_foundation.project import ResourceDef, SourceDef

__all__ = ["build_resource", "build_source", "call_entry"]


def build_source(source: SourceDef, tables: Optional[Iterable[str]] = None,
                 keyword_overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> DltSource:
    """A fresh `DltSource` for `source` (one per run: dlt resources keep state between iterations).

    Args:
        source: the validated source.
        tables: tables to select; all when None.
        keyword_overrides: per table, keyword arguments that replace the YAML's for this run.

    Example:
        >>> pipeline.run(build_source(project.sources["my_api"], tables=["users"]))
    """
    overrides = keyword_overrides or {}
    built: Dict[str, DltResource] = {}
    for resource in _parents_first(source.resources):
        parent = built.get(resource.spec.data_from.split(".", 1)[1]) if resource.spec.data_from else None
        built[resource.table] = build_resource(resource, parent=parent, keyword_arguments=overrides.get(resource.table))

    def _resources() -> List[DltResource]:
        return list(built.values())

    dlt_source = dlt.source(_resources, name=source.name, section=source.name)()
    if tables is not None:
        wanted = set(tables)
        dlt_source = dlt_source.with_resources(*[t for t in built if t in wanted])
    return dlt_source


def build_resource(resource: ResourceDef, parent: Optional[DltResource] = None,
                   keyword_arguments: Optional[Dict[str, Any]] = None) -> DltResource:
    """One dlt resource (or transformer when `data_from` is set) calling the entry with its YAML arguments."""
    spec = resource.spec
    kwargs = dict(spec.keyword_arguments)
    kwargs.update(keyword_arguments or {})
    args = list(spec.arguments)
    function = resource.function
    if parent is not None:
        def _transform(item: Any, incremental: Optional[dlt.sources.incremental[Any]] = None) -> Any:
            yield from _iterate(call_entry(function, [item, *args], kwargs, incremental))
        data: Callable = _transform
    else:
        def _extract(incremental: Optional[dlt.sources.incremental[Any]] = None) -> Any:
            yield from _iterate(call_entry(function, args, kwargs, incremental))
        data = _extract
    data.__name__ = resource.table
    data.__qualname__ = resource.table
    data.__doc__ = resource.description
    return dlt.resource(
        data,
        name=resource.table,
        write_disposition=spec.dlt_write_disposition(),
        primary_key=spec.primary_key,
        merge_key=spec.merge_key,
        # dlt writes each column's name into its hint dict: give every resource its own copies
        columns=copy.deepcopy(spec.columns) or None,
        schema_contract=spec.schema_contract,
        max_table_nesting=spec.max_table_nesting,
        parallelized=spec.parallelized,
        data_from=parent,
        incremental=_incremental(resource),
        section=resource.source,
    )


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
