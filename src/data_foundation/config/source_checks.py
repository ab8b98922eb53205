"""Phase 5 of loading: each assembled source as a whole. Its `data_from` chains name its own
resources and never come back, each resource's `meta.dagster` merged over the source's is valid; then the warnings
about what would load but probably not as meant."""

import dataclasses
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Dict, Iterable, List, Mapping

from pydantic import ValidationError

from data_foundation.config.arguments import check_partition_arguments
from data_foundation.config.dagster_meta import AssetDagsterMeta, SourceDagsterMeta
from data_foundation.config.messages import pydantic_errors
from data_foundation.config.problems import Problems
from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.config.yamlfile import YamlDocument
from data_foundation.errors import Problem, did_you_mean, join_hints

__all__ = ["check_sources"]


def check_sources(sources: Iterable[SourceDef], docs: Mapping[Path, YamlDocument], problems: Problems) -> None:
    """`docs`: each sources.yaml read, for the lines of the keys the problems are about."""
    for source in sources:
        for resource in source.resources:
            resource.dagster = _merge_meta(source.dagster, resource, docs[resource.file], problems)
            problems.extend(_merge_without_keys(resource))
            partition = source.dagster.partition
            if partition is not None:
                problems.extend(check_partition_arguments(resource, source.name, partition.start_argument,
                                                          partition.end_argument, docs[resource.file]))
        problems.extend(_check_data_from(source, docs, problems))


def _check_data_from(source: SourceDef, docs: Mapping[Path, YamlDocument], problems: Problems) -> List[Problem]:
    """Each `data_from` names another resource of the source (or a broken one: its own problem is reported), and
    following them never comes back: each cycle is reported once, at its resource declared first."""
    by_name = {r.name: r for r in source.resources}
    cycles = _cycles(source.resources, by_name)
    found = []
    for resource in source.resources:
        parent, key = resource.spec.data_from, ("resources", resource.name, "data_from")
        if not parent:
            continue
        line = docs[resource.file].line_of(key)
        if parent not in by_name and not problems.is_broken(parent):
            found.append(Problem(resource.file, line, ".".join(key),
                                 f"`{parent}` is not a resource of source `{source.name}`",
                                 join_hints(did_you_mean(parent, by_name),
                                            "`data_from` names another resource of the same source.")))
        if resource.name in cycles:
            found.append(Problem(resource.file, line, ".".join(key),
                                 f"`data_from` goes round in a cycle: {' -> '.join(cycles[resource.name])}",
                                 "Remove `data_from` from one of them: the chain must start at a resource that loads "
                                 "data itself."))
    return found


def _cycles(resources: List[ResourceDef], by_name: Dict[str, ResourceDef]) -> Dict[str, List[str]]:
    """Each cycle of `data_from`, by its resource declared first: the chain from it back to it."""
    parents = {r.name: r.spec.data_from for r in resources if r.spec.data_from in by_name}
    order = {r.name: index for index, r in enumerate(resources)}
    cycles: Dict[str, List[str]] = {}
    while parents:
        sorter = TopologicalSorter()
        for child, parent in parents.items():
            sorter.add(child, parent)
        try:
            sorter.prepare()
            break
        except CycleError as exc:
            first = min(exc.args[1], key=order.__getitem__)
        chain = [first]
        while parents[chain[-1]] != first:
            chain.append(parents[chain[-1]])
        cycles[first] = chain + [first]
        del parents[first]  # the cycle is broken: the next `prepare` finds another one, if any
    return cycles


def _merge_meta(source_meta: SourceDagsterMeta, resource: ResourceDef, doc: YamlDocument,
                problems: Problems) -> AssetDagsterMeta:
    """The meta of the resource's asset: its `meta.dagster` over the source's (`SourceDagsterMeta.for_resource`)."""
    meta = resource.spec.meta
    try:
        return source_meta.for_resource(meta.dagster if meta else None)
    except ValidationError as exc:  # each part is valid alone, the combination is not
        for error in pydantic_errors(exc, resource.file, doc, prefix=("resources", resource.name, "meta", "dagster")):
            problems.add(dataclasses.replace(
                error, message=f"{error.message} (with source `{resource.source}`'s meta.dagster merged in)",
                hint=f"A resource's `meta.dagster` overrides the source's key by key. {error.hint}"))
        return source_meta.for_resource()


def _merge_without_keys(resource: ResourceDef) -> List[Problem]:
    spec = resource.spec
    if spec.disposition != "merge" or spec.primary_key or spec.merge_key:
        return []
    return [Problem(resource.file, resource.line, f"resources.{resource.name}.write_disposition",
                    "`merge` without `primary_key` or `merge_key`: dlt will append every row",
                    "Set `primary_key` (or `merge_key`) so re-runs update rows instead of duplicating them.",
                    severity="warning")]
