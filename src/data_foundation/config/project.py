"""The validated, resolved view of a sources root: what `list`, `run` and the Dagster layer consume."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from data_foundation.config.entries import EntryTarget
from data_foundation.errors import Problem, FoundationError, did_you_mean
from data_foundation.config.dagster_meta import AssetDagsterMeta, SourceDagsterMeta
from data_foundation.config.spec import ResourceSpec, SourceSpec

__all__ = ["Project", "ResourceDef", "SourceDef", "SelectorError"]


class SelectorError(FoundationError, ValueError):
    pass


@dataclass
class ResourceDef:
    name: str  # `<source>.<table>` as written in sources.yaml
    spec: ResourceSpec
    file: Path  # the sources.yaml that declares it
    line: int
    folder: str
    target: EntryTarget
    function: Callable
    predicate: Optional[Callable] = None  # `checks.predicate`'s function, resolved as entries are
    source: str = ""
    dagster: AssetDagsterMeta = field(default_factory=AssetDagsterMeta)  # the source's, with the resource's overrides

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def description(self) -> Optional[str]:
        """YAML `description`, else the first paragraph of the entry function's docstring."""
        if self.spec.description:
            return self.spec.description
        doc = (self.function.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split()) or None


@dataclass
class SourceDef:
    name: str
    file: Path
    line: int
    resources: List[ResourceDef]
    spec: SourceSpec = field(default_factory=SourceSpec)
    dagster: SourceDagsterMeta = field(default_factory=SourceDagsterMeta)
    reconcile: Optional[Callable[[], Dict[str, int]]] = None

    @property
    def dataset_name(self) -> str:
        return self.name

    @property
    def folder(self) -> str:
        return self.file.parent.name

    def resource(self, table: str) -> ResourceDef:
        for resource in self.resources:
            if resource.table == table:
                return resource
        raise KeyError(table)


@dataclass
class Project:
    root: Path
    sources: Dict[str, SourceDef] = field(default_factory=dict)
    warnings: List[Problem] = field(default_factory=list)

    @property
    def resources(self) -> List[ResourceDef]:
        return [r for s in self.sources.values() for r in s.resources]

    def select(self, selectors: Iterable[str] = ()) -> List[Tuple[SourceDef, List[str]]]:
        """Resolve `source` / `source.table` selectors to sources and their selected tables (all when empty)."""
        selectors = list(selectors)
        if not selectors:
            return [(s, [r.table for r in s.resources]) for s in self.sources.values()]
        chosen: Dict[str, List[str]] = {}
        for selector in selectors:
            source_name, _, table = selector.partition(".")
            source = self.sources.get(source_name)
            if source is None or (table and table not in {r.table for r in source.resources}):
                known = sorted(self.sources) + sorted(f"{s.name}.{r.table}" for s in self.sources.values()
                                                      for r in s.resources)
                raise SelectorError(f"`{selector}` matches no source or table. {did_you_mean(selector, known)}".strip()
                                    + f" Known: {', '.join(known) or 'none'}.")
            tables = chosen.setdefault(source_name, [])
            for name in [table] if table else [r.table for r in source.resources]:
                if name not in tables:
                    tables.append(name)
        return [(self.sources[name], tables) for name, tables in chosen.items()]
