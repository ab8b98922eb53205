"""Phase 3 of loading: the entries of a folder's specs, first as paths to module files (`resolve_entries`, nothing
imported: `ModuleImports` then imports the modules in a child process first), then as the functions they name
(`load_entries`), giving the folder's resources and its declared sources."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from data_foundation.config.arguments import check_arguments
from data_foundation.config.entries import EntryError, EntryTarget, import_entry, resolve_entry
from data_foundation.config.folders import FolderSpecs
from data_foundation.config.problems import Problems
from data_foundation.config.project import ResourceDef
from data_foundation.config.spec import RESOURCE_NAME, SOURCE_NAME, SourceSpec
from data_foundation.config.yamlfile import YamlDocument
from data_foundation.errors import Problem

__all__ = ["DeclaredSource", "LoadedEntries", "load_entries", "resolve_entries"]


@dataclass
class DeclaredSource:
    """A source of a `sources:` block whose `reconcile` entry, if any, loaded; phase 4 gives it its resources."""

    name: str
    spec: SourceSpec
    file: Path
    doc: YamlDocument
    reconcile: Optional[Callable[[], Dict[str, int]]] = None

    @property
    def line(self) -> int:
        return self.doc.line_of(("sources", self.name))

    def line_of_member(self, index: int) -> int:
        return self.doc.line_of(("sources", self.name, "resources", index))


@dataclass
class LoadedEntries:
    """Phase 3's result, for one folder or the whole root: the resources whose entry loaded, the declared sources."""

    resources: List[ResourceDef] = field(default_factory=list)
    sources: List[DeclaredSource] = field(default_factory=list)


def resolve_entries(folder: FolderSpecs, root: Path) -> List[EntryTarget]:
    """Map each entry of the folder to its module file (`folder.entries`); the targets found, to import."""
    for name, spec in folder.resources.items():
        if RESOURCE_NAME.fullmatch(str(name)):
            _resolve(folder, spec.entry, root)
            if spec.checks and spec.checks.predicate:  # a gate's function: imported and checked as an entry
                _resolve(folder, spec.checks.predicate.entry, root)
    for name, spec in folder.sources.items():
        if spec.reconcile and SOURCE_NAME.fullmatch(str(name)):
            _resolve(folder, spec.reconcile, root)
    return [target for target in folder.entries.values() if isinstance(target, EntryTarget)]


def _resolve(folder: FolderSpecs, entry: str, root: Path) -> None:
    try:
        folder.entries[entry] = resolve_entry(entry, root, folder.path.name)
    except EntryError as exc:
        folder.entries[entry] = exc


def load_entries(folder: FolderSpecs, problems: Problems) -> LoadedEntries:
    """The folder's resources and sources with their entries' functions (their modules imported by `ModuleImports`);
    a resource whose name or entry is wrong is reported and broken."""
    found = LoadedEntries()
    for name, spec in folder.resources.items():
        line = folder.doc.line_of(("resources", name))
        if not RESOURCE_NAME.fullmatch(str(name)):
            problems.add(Problem(folder.file, line, f"resources.{name}", f"`{name}` is not a resource name",
                                 "Name resources `<source>.<table>`, e.g. `my_api.users` (letters, digits, _)."))
            problems.mark_broken(name)
            continue
        loaded = _load_entry(folder, spec.entry, ("resources", name, "entry"), problems)
        if loaded is None:
            problems.mark_broken(name)
            continue
        function, target = loaded
        predicate = None
        if spec.checks and spec.checks.predicate:
            found_predicate = _load_entry(folder, spec.checks.predicate.entry,
                                          ("resources", name, "checks", "predicate", "entry"), problems)
            if found_predicate is None:
                problems.mark_broken(name)
                continue
            predicate = found_predicate[0]
        resource = ResourceDef(name=name, spec=spec, file=folder.file, line=line, folder=folder.path.name,
                               target=target, function=function, predicate=predicate)
        problems.extend(check_arguments(resource, folder.doc))
        found.resources.append(resource)
    found.sources = _declared_sources(folder, problems)
    return found


def _declared_sources(folder: FolderSpecs, problems: Problems) -> List[DeclaredSource]:
    declared = []
    for name, spec in folder.sources.items():
        if not SOURCE_NAME.fullmatch(str(name)):
            problems.add(Problem(folder.file, folder.doc.line_of(("sources", name)), f"sources.{name}",
                                 f"`{name}` is not a source name", "Use letters, digits and underscores."))
            continue
        source = DeclaredSource(name=name, spec=spec, file=folder.file, doc=folder.doc)
        if spec.reconcile:
            loaded = _load_entry(folder, spec.reconcile, ("sources", name, "reconcile"), problems)
            if loaded is None:
                continue
            source.reconcile = loaded[0]
        declared.append(source)
    return declared


def _load_entry(folder: FolderSpecs, entry: str, key: Tuple[str, ...],
                problems: Problems) -> Optional[Tuple[Callable, EntryTarget]]:
    """The function `entry` names and its target, or None once the problem is reported: a module that fails to
    import is reported once, however many entries name it."""
    target = folder.entries[entry]
    try:
        if isinstance(target, EntryError):
            raise target
        return import_entry(target, entry), target
    except EntryError as exc:
        line = exc.line if exc.file else folder.doc.line_of(key)  # a line of the module, or of the YAML
        problem = Problem(exc.file or folder.file, line, ".".join(key), exc.message, exc.hint)
        if exc.file:
            problems.add_once(problem)
        else:
            problems.add(problem)
        return None
