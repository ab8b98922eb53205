"""Phase 4 of loading: resources into sources. Resource and source names are global across folders; a declared
source gets the resources it lists, and a resource no source lists joins the source its name starts with (made for
it when no folder declares one)."""

from typing import Dict, Iterable, List

from data_foundation.config.dagster_meta import SourceDagsterMeta
from data_foundation.config.problems import Problems
from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.config.resolution import DeclaredSource, LoadedEntries
from data_foundation.errors import Problem, did_you_mean, join_hints

__all__ = ["add_resources", "assemble_sources"]


def add_resources(found: Dict[str, ResourceDef], resources: Iterable[ResourceDef], problems: Problems) -> None:
    """Add `resources` to `found` by name; a name declared before is a problem."""
    for resource in resources:
        first = found.get(resource.name)
        if first is None:
            found[resource.name] = resource
            continue
        problems.add(Problem(resource.file, resource.line, f"resources.{resource.name}",
                             f"resource `{resource.name}` is also declared in {first.file}:{first.line}",
                             "Resource names are global: rename one of them."))


def assemble_sources(loaded: LoadedEntries, problems: Problems) -> Dict[str, SourceDef]:
    """The sources by name: the declared ones in the order declared, then the ones made for unlisted resources
    (`loaded.resources`: one per name, see `add_resources`)."""
    resources = {resource.name: resource for resource in loaded.resources}
    sources: Dict[str, SourceDef] = {}
    owner: Dict[str, str] = {}  # resource name -> the source it belongs to
    for source in loaded.sources:
        other = sources.get(source.name)
        if other is not None:
            problems.add(Problem(source.file, source.line, f"sources.{source.name}",
                                 f"source `{source.name}` is also declared in {other.file}:{other.line}",
                                 "Source names are global: rename one of them."))
            owner.update((r, other.name) for r in source.spec.resources if r not in owner)  # not reported as unlisted
            continue
        members = _members(source, resources, owner, problems)
        sources[source.name] = SourceDef(name=source.name, file=source.file, line=source.line, resources=members,
                                         spec=source.spec, reconcile=source.reconcile)
    for resource in resources.values():
        if resource.name not in owner:
            _join_by_prefix(resource, sources, problems)
    for source in sources.values():
        meta = source.spec.meta
        source.dagster = meta.dagster if meta and meta.dagster else SourceDagsterMeta()
        for resource in source.resources:
            resource.source = source.name
    return sources


def _members(source: DeclaredSource, resources: Dict[str, ResourceDef], owner: Dict[str, str],
             problems: Problems) -> List[ResourceDef]:
    """The resources a declared source lists; each belongs to at most one source."""
    members = []
    for index, name in enumerate(source.spec.resources):
        resource = resources.get(name)
        if resource is None and problems.is_broken(name):
            continue  # its own problem is reported already
        if resource is None:
            problems.add(Problem(source.file, source.line_of_member(index), f"sources.{source.name}.resources",
                                 f"resource `{name}` is not declared",
                                 join_hints(did_you_mean(name, resources),
                                            f"Declared resources: {', '.join(sorted(resources)) or 'none'}.")))
        elif name in owner:
            problems.add(Problem(source.file, source.line_of_member(index), f"sources.{source.name}.resources",
                                 f"resource `{name}` already belongs to source `{owner[name]}`",
                                 "A resource belongs to at most one source: remove it from one of them."))
        else:
            owner[name] = source.name
            members.append(resource)
    return members


def _join_by_prefix(resource: ResourceDef, sources: Dict[str, SourceDef], problems: Problems) -> None:
    """An unlisted resource joins the source its name starts with, unless that source lists its resources."""
    prefix = resource.name.split(".", 1)[0]
    existing = sources.get(prefix)
    if existing is not None and existing.spec.resources:
        problems.add(Problem(resource.file, resource.line, f"resources.{resource.name}",
                             f"resource `{resource.name}` is not listed in source `{prefix}`",
                             f"Add it to `sources.{prefix}.resources` in {existing.file}."))
        return
    if existing is None:
        existing = sources[prefix] = SourceDef(name=prefix, file=resource.file, line=resource.line, resources=[])
    existing.resources.append(resource)
