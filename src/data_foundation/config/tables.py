"""Phase 5 of loading, across sources: no two resources, in any folders, write the same destination table.

A source loads into the dataset named after it, and dlt names datasets and tables with its snake_case convention:
`Shop` and `shop` are one dataset, `orderItems` and `order_items` one table. Two resources that land in one table would
overwrite or mix each other's rows, and their pipelines would fight over its schema; so would a resource named like a
table dlt keeps for itself (`_dlt_loads`, ...) or like the nested table dlt makes for another resource's lists
(`orders__items` next to `orders`, which is only a warning: it collides only if `orders` rows carry `items`).
"""

from typing import Dict, Iterable, List, Optional, Tuple

from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.errors import Problem, display_path

__all__ = ["QUARANTINE_SUFFIX", "RUNS_DATASET", "check_destination_tables", "destination_name"]

RUNS_DATASET = "foundation_runs"  # where failed runs are recorded (`load.history`): no source may load into it
QUARANTINE_SUFFIX = "__quarantine"  # `<table>__quarantine`: the rows a resource's gates set aside (`load.gates`)


def check_destination_tables(sources: Iterable[SourceDef]) -> List[Problem]:
    """One problem per resource that writes a table an earlier resource (in the order of folders) writes too."""
    owners: Dict[Tuple[str, str], List[ResourceDef]] = {}  # by `_loose` name: every resource that may clash
    problems: List[Problem] = []
    resources = [resource for source in sources for resource in source.resources]
    quarantines = _quarantine_tables(resources)
    for resource in resources:
        if _loose(resource.source) == _loose(RUNS_DATASET) and \
                destination_name(resource.source, table=False) == RUNS_DATASET:
            problems.append(_problem(resource, f"source `{resource.source}` would load into dataset `{RUNS_DATASET}`, "
                                               "where foundation records failed runs (`foundation status`)",
                                     "Rename the source."))
            continue
        if resource.table.lower().startswith("_dlt"):
            problems.append(_problem(resource, f"table `{resource.table}` is a name dlt keeps for its own tables "
                                               "(`_dlt_loads`, `_dlt_pipeline_state`, ...)",
                                     "Rename the resource: a table name must not start with `_dlt`."))
            continue
        owner = _quarantine_owner(resource, quarantines)
        if owner is not None:
            problems.append(_problem(
                resource, f"`{owner.name}` sets rows aside in table `{owner.table}{QUARANTINE_SUFFIX}` (its "
                          f"`checks` with `on_failure: quarantine`, {display_path(owner.file)}:{owner.line}), the "
                          f"table resource `{resource.name}` writes",
                "Rename the resource: a table name must not be another resource's table followed by "
                f"`{QUARANTINE_SUFFIX}`."))
            continue
        key = (_loose(resource.source), _loose(resource.table))
        alike = owners.setdefault(key, [])
        first = next((earlier for earlier in alike if _same_table(earlier, resource)), None)
        alike.append(resource)
        if first is not None:
            problems.append(_problem(
                resource, f"resource `{resource.name}` writes table `{_where(resource)}`, as does `{first.name}` "
                          f"({display_path(first.file)}:{first.line})",
                "Two resources must not load one destination table: rename one of them (dlt writes "
                "names in snake_case, so `orderItems` and `order_items` are the same table)."))
    problems.extend(_nested_table_names([r for r in resources if _quarantine_owner(r, quarantines) is None]))
    return problems


def _quarantine_tables(resources: List[ResourceDef]) -> Dict[Tuple[str, str], ResourceDef]:
    """The quarantine table of each resource with a gate that quarantines, by `_loose` source and table name."""
    found = {}
    for resource in resources:
        checks = resource.spec.checks
        if checks is not None and any(g.on_failure == "quarantine" for g in checks.declared().values()):
            found[(_loose(resource.source), _loose(resource.table + QUARANTINE_SUFFIX))] = resource
    return found


def _quarantine_owner(resource: ResourceDef, quarantines: Dict[Tuple[str, str], ResourceDef]
                      ) -> Optional[ResourceDef]:
    """The resource whose quarantine table `resource` writes, if any (dlt's verdict on names that look alike)."""
    owner = quarantines.get((_loose(resource.source), _loose(resource.table)))
    if owner is None or owner is resource:
        return None
    names = (destination_name(owner.source, table=False), destination_name(owner.table + QUARANTINE_SUFFIX))
    return owner if names == (destination_name(resource.source, table=False), destination_name(resource.table)) \
        else None


def destination_name(name: str, table: bool = True) -> str:
    """`name` as dlt's default (snake_case) naming convention writes a table name (`__` parts kept: a nested table's
    path) or, `table=False`, a dataset name."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    return naming.normalize_tables_path(name) if table else naming.normalize_table_identifier(name)


def _same_table(first: ResourceDef, second: ResourceDef) -> bool:
    """dlt's own verdict, asked only for names `_loose` could not tell apart (importing dlt costs ~0.7 s)."""
    return (destination_name(first.source, table=False), destination_name(first.table)) == \
        (destination_name(second.source, table=False), destination_name(second.table))


def _loose(name: str) -> str:
    """Equal for any two names dlt's snake_case writes alike (it only lower-cases, inserts or collapses underscores,
    turns trailing ones into `x` and prefixes a leading digit): names without underscores, lower case, trailing `_`
    as `x`. Names of resources and sources are letters, digits and underscores."""
    stripped = name.rstrip("_")
    return (stripped + "x" * (len(name) - len(stripped))).lower().replace("_", "")


def _nested_table_names(resources: List[ResourceDef]) -> List[Problem]:
    """A warning for a resource whose table is `<other table>__<name>` in the same dataset: dlt's name for the nested
    table of `<other table>`'s `<name>` lists."""
    tables = {(r.source, r.table): r for r in resources}
    found = []
    for resource in resources:
        parent = _nesting_parent(resource, tables)
        if parent is not None:
            nested = resource.table[len(parent.table) + 2:]
            found.append(_problem(
                resource, f"table `{resource.table}` is where dlt puts the nested `{nested}` lists of `{parent.name}` "
                          f"({display_path(parent.file)}:{parent.line})",
                "If those rows carry such lists, both would load into one table: rename the resource.",
                severity="warning"))
    return found


def _nesting_parent(resource: ResourceDef, tables: Dict[Tuple[str, str], ResourceDef]) -> Optional[ResourceDef]:
    table = resource.table
    while "__" in table:
        table = table.rsplit("__", 1)[0]
        parent = tables.get((resource.source, table))
        if parent is not None:
            return parent
    return None


def _where(resource: ResourceDef) -> str:
    return f"{resource.source}.{resource.table}"


def _problem(resource: ResourceDef, message: str, hint: str, severity: str = "error") -> Problem:
    return Problem(resource.file, resource.line, f"resources.{resource.name}", message, hint, severity=severity)
