"""Find source folders, parse their YAML with line numbers, validate into a `Project`, and collect ALL errors."""

import dataclasses
import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

from pydantic import ValidationError

from data_foundation.config.entries import EntryError, EntryTarget, ModuleImports, import_entry, resolve_entry
from data_foundation.errors import Problem, ValidationFailed, did_you_mean
from data_foundation.config.project import Project, ResourceDef, SourceDef
from data_foundation.config.dagster_meta import DagsterMeta
from data_foundation.config.spec import RESOURCE_NAME, SOURCE_NAME, ResourceSpec, SourcesFile, SourceSpec
from data_foundation.config.messages import pydantic_errors
from data_foundation.config.yamlfile import YamlDocument, YamlLimitError, YamlSyntaxError, read_yaml

__all__ = ["DEFAULT_ROOT", "default_root", "load_project", "validate_root"]

DEFAULT_ROOT = "dlthub"
SOURCES_FILE = "sources.yaml"


def default_root() -> Path:
    return Path(os.environ.get("FOUNDATION_SOURCES_ROOT") or DEFAULT_ROOT)


def load_project(root: Optional[Path] = None) -> Project:
    """Validate every source folder under `root` and return the project, or raise `ValidationFailed` with all errors.

    Example:
        >>> project = load_project(Path("dlthub"))
        >>> [r.name for r in project.sources["jaffle_shop"].resources][:2]
        ['jaffle_shop.customers', 'jaffle_shop.orders']
    """
    project, errors = validate_root(root)
    if errors:
        raise ValidationFailed(errors)
    return project


def validate_root(root: Optional[Path] = None) -> Tuple[Project, List[Problem]]:
    """One pass over the whole root: the project built from what is valid, and every error found.

    The YAML of every folder is read first, and the modules the entries name are imported, each first in one child
    process for all of them (a module that hangs or ends the process is a problem, not the end of validation); then
    the folders' resources and sources are built from what imported.
    """
    root = Path(root) if root is not None else default_root()
    project = Project(root=root)
    if not root.is_dir():
        return project, [Problem(root, None, "", f"sources root `{root}` is not a directory",
                                         "Pass --root DIR or set FOUNDATION_SOURCES_ROOT, or run `foundation new NAME`.")]
    folders: List[_Folder] = []
    with ModuleImports() as imports:  # a child process imports the modules while the next folders are read
        for path in _source_folders(root):
            folders.append(_read_folder(root, path))
            imports.add(t for t in folders[-1].entries.values() if isinstance(t, EntryTarget))
        imports.finish()
    errors: List[Problem] = []
    resources: Dict[str, ResourceDef] = {}
    declared: List[Tuple[str, SourceSpec, Path, YamlDocument, Optional[Callable]]] = []
    broken: set = set()  # declared resources that already have an error: not reported again as missing
    docs: Dict[Path, YamlDocument] = {}  # each sources.yaml, for the lines of errors found after assembly
    reported: Set[Tuple[Any, ...]] = set()  # a module that fails to import: reported once, not for every entry
    for folder in folders:
        errors.extend(folder.errors)
        project.warnings.extend(folder.warnings)
        broken.update(folder.broken)
        if folder.doc is not None:
            docs[folder.file] = folder.doc
        for item in _load_folder(folder, errors, broken, reported):
            if isinstance(item, ResourceDef):
                if item.name in resources:
                    first = resources[item.name]
                    errors.append(Problem(item.file, item.line, f"resources.{item.name}",
                                                  f"resource `{item.name}` is also declared in {first.file}:{first.line}",
                                                  "Resource names are global: rename one of them."))
                else:
                    resources[item.name] = item
            else:
                declared.append(item)
    _assemble_sources(project, resources, declared, errors, broken, docs)
    project.warnings.extend(_warnings(project))
    return project, errors


@dataclass
class _Folder:
    """A source folder once its sources.yaml is read and its entries resolved to module files (none imported)."""

    path: Path
    doc: Optional[YamlDocument] = None
    resources: Dict[str, ResourceSpec] = field(default_factory=dict)
    sources: Dict[str, SourceSpec] = field(default_factory=dict)
    entries: Dict[str, Union[EntryTarget, EntryError]] = field(default_factory=dict)
    errors: List[Problem] = field(default_factory=list)
    warnings: List[Problem] = field(default_factory=list)
    broken: set = field(default_factory=set)

    @property
    def file(self) -> Path:
        return self.path / SOURCES_FILE

    def resolve(self, entry: str, root: Path) -> None:
        try:
            self.entries[entry] = resolve_entry(entry, root, self.path.name)
        except EntryError as exc:
            self.entries[entry] = exc


def _source_folders(root: Path) -> List[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _read_folder(root: Path, path: Path) -> _Folder:
    folder = _Folder(path)
    file, errors = folder.file, folder.errors
    if not file.is_file():
        if (path / "data.py").is_file():
            errors.append(Problem(path, None, "", f"source folder `{path.name}` has no {SOURCES_FILE}",
                                          f"Add {file} declaring its resources, or run `foundation new {path.name}`."))
        return folder
    if not SOURCE_NAME.match(path.name):
        errors.append(Problem(file, None, "", f"folder name `{path.name}` is not a Python identifier",
                                      "Use letters, digits and underscores, e.g. `my_api`."))
        return folder
    if not (path / "__init__.py").is_file():
        errors.append(Problem(path / "__init__.py", None, "", f"source folder `{path.name}` has no __init__.py",
                                      f"Create an empty {path / '__init__.py'} to mark it as a Python module."))
    try:
        doc = read_yaml(file)
    except YamlSyntaxError as exc:
        message = str(exc) if isinstance(exc, YamlLimitError) else f"YAML syntax error at column {exc.column}: {exc}"
        errors.append(Problem(file, exc.line, "", message, exc.hint))
        return folder
    except UnicodeDecodeError as exc:
        errors.append(Problem(file, None, "", f"not UTF-8 text: {exc}", "Save the file as UTF-8."))
        return folder
    folder.doc = doc
    folder.warnings.extend(_declares_nothing(folder))
    if doc.data is None:
        return folder
    if not isinstance(doc.data, dict):
        errors.append(Problem(file, 1, "", "the file must be a mapping with `resources` and/or `sources`",
                                      "Start with `resources:` at the top level."))
        return folder
    for key_path, line in doc.duplicate_keys:
        errors.append(Problem(file, line, ".".join(map(str, key_path)),
                                      "duplicate key: the later one would silently win", "Remove or rename one of them."))
    folder.resources, folder.sources = _validate_specs(doc, file, errors)
    declared_resources = doc.data.get("resources")
    if isinstance(declared_resources, dict):
        folder.broken.update(name for name in declared_resources if name not in folder.resources)
    for name, spec in folder.resources.items():
        if RESOURCE_NAME.match(str(name)):
            folder.resolve(spec.entry, root)
    for name, spec in folder.sources.items():
        if spec.reconcile and SOURCE_NAME.match(str(name)):
            folder.resolve(spec.reconcile, root)
    return folder


def _declares_nothing(folder: _Folder) -> List[Problem]:
    """An empty sources.yaml (or one with only empty `resources:`/`sources:`) would make the folder silently load
    nothing."""
    data = folder.doc.data
    if data is not None and not (isinstance(data, dict) and set(data) <= {"resources", "sources"}
                                 and not any(data.values())):
        return []
    empty = " (the file is empty)" if data is None else ""
    line = folder.doc.line_of((next(iter(data)),)) if data else None
    return [Problem(folder.file, line, "", f"folder `{folder.path.name}` declares no resources{empty}: "
                                                   "nothing of it is loaded",
                            "Declare the folder's resources under `resources:`, or delete the folder.", severity="warning")]


def _load_folder(folder: _Folder, errors: List[Problem], broken: set, reported: set) -> List[Any]:
    """The folder's resources and sources, with their entries imported (modules already imported by validate_root)."""
    file, doc = folder.file, folder.doc
    items: List[Any] = []
    for name, spec in folder.resources.items():
        line = doc.line_of(("resources", name))
        if not RESOURCE_NAME.match(str(name)):
            errors.append(Problem(file, line, f"resources.{name}", f"`{name}` is not a resource name",
                                          "Name resources `<source>.<table>`, e.g. `my_api.users` (letters, digits, _)."))
            broken.add(name)
            continue
        function, target = _load_entry(folder, spec.entry, ("resources", name, "entry"), errors, reported)
        if function is None:
            broken.add(name)
            continue
        resource = ResourceDef(name=name, spec=spec, file=file, line=line, folder=folder.path.name, target=target,
                               function=function)
        _check_arguments(resource, doc, errors)
        items.append(resource)
    for name, spec in folder.sources.items():
        if not SOURCE_NAME.match(str(name)):
            errors.append(Problem(file, doc.line_of(("sources", name)), f"sources.{name}",
                                          f"`{name}` is not a source name", "Use letters, digits and underscores."))
            continue
        reconcile = None
        if spec.reconcile:
            reconcile, _ = _load_entry(folder, spec.reconcile, ("sources", name, "reconcile"), errors, reported)
            if reconcile is None:
                continue
        items.append((name, spec, file, doc, reconcile))
    return items


def _validate_specs(doc: YamlDocument, file: Path, errors: List[Problem]):
    """Validate each resource and source on its own, so one bad resource does not hide the others' problems."""
    try:
        SourcesFile.model_validate({key: {} for key in doc.data})
    except ValidationError as exc:
        errors.extend(pydantic_errors(exc, file, doc))
    found: Dict[str, Dict[str, Any]] = {"resources": {}, "sources": {}}
    for section, model in (("resources", ResourceSpec), ("sources", SourceSpec)):
        entries = doc.data.get(section) or {}
        if not isinstance(entries, dict):
            errors.append(Problem(file, doc.line_of((section,)), section, f"`{section}` must be a mapping of names",
                                          f"Write `{section}:` followed by indented `<name>:` blocks."))
            continue
        for name, raw in entries.items():
            try:
                found[section][name] = model.model_validate({} if raw is None else raw)
            except ValidationError as exc:
                errors.extend(pydantic_errors(exc, file, doc, prefix=(section, name)))
    return found["resources"], found["sources"]


def _load_entry(folder: _Folder, entry: str, key: Tuple[str, ...], errors: List[Problem], reported: set):
    target = folder.entries[entry]
    try:
        if isinstance(target, EntryError):
            raise target
        return import_entry(target, entry), target
    except EntryError as exc:
        line = exc.line if exc.file else folder.doc.line_of(key)  # a line of the module, or of the YAML
        error = Problem(exc.file or folder.file, line, ".".join(key), exc.message, exc.hint)
        if exc.file and (error.file, error.line, error.message) in reported:
            return None, None  # a module that fails to import is reported once, not for every entry naming it
        reported.add((error.file, error.line, error.message))
        errors.append(error)
        return None, None


def _check_arguments(resource: ResourceDef, doc: YamlDocument, errors: List[Problem]) -> None:
    try:
        signature = inspect.signature(resource.function)
    except (TypeError, ValueError):
        return
    args = list(resource.spec.arguments)
    if resource.spec.data_from:
        args.insert(0, None)  # a transformer receives its parent's items first
    params = {n: p for n, p in signature.parameters.items() if n != "incremental"}
    try:
        signature.replace(parameters=list(params.values())).bind(*args, **resource.spec.keyword_arguments)
    except TypeError as exc:
        key = _argument_key(resource.spec.keyword_arguments, str(exc))
        names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        suggestion = did_you_mean(key[1], names) if len(key) > 1 and key[1] not in params else ""
        path = ("resources", resource.name) + key
        errors.append(Problem(
            resource.file, doc.line_of(path), ".".join(path),
            f"arguments do not fit `{resource.target.function}{signature}`: {exc}",
            " ".join(filter(None, [suggestion, "Pass the function's parameters under `arguments` (positional) "
                                               "and `keyword_arguments` (by name)."]))))


def _argument_key(keyword_arguments: Dict[str, Any], problem: str) -> Tuple[str, ...]:
    """The YAML key an argument mismatch is about: the keyword argument the error names, else `arguments`."""
    named = re.search(r"argument '(\w+)'", problem)
    if named and named.group(1) in keyword_arguments:
        return ("keyword_arguments", named.group(1))
    return ("arguments",)


def _assemble_sources(project: Project, resources: Dict[str, ResourceDef], declared, errors, broken, docs) -> None:
    owner: Dict[str, str] = {}
    for name, spec, file, doc, reconcile in declared:
        if name in project.sources:
            other = project.sources[name]
            errors.append(Problem(file, doc.line_of(("sources", name)), f"sources.{name}",
                                          f"source `{name}` is also declared in {other.file}:{other.line}",
                                          "Source names are global: rename one of them."))
            owner.update((r, other.name) for r in spec.resources if r not in owner)  # not reported again as unlisted
            continue
        members = []
        for index, resource_name in enumerate(spec.resources):
            key = ("sources", name, "resources", index)
            resource = resources.get(resource_name)
            if resource is None and resource_name in broken:
                continue
            if resource is None:
                errors.append(Problem(file, doc.line_of(key), f"sources.{name}.resources",
                                              f"resource `{resource_name}` is not declared",
                                              " ".join(filter(None, [did_you_mean(resource_name, resources),
                                                                     f"Declared resources: {', '.join(sorted(resources)) or 'none'}."]))))
            elif resource_name in owner:
                errors.append(Problem(file, doc.line_of(key), f"sources.{name}.resources",
                                              f"resource `{resource_name}` already belongs to source `{owner[resource_name]}`",
                                              "A resource belongs to at most one source: remove it from one of them."))
            else:
                owner[resource_name] = name
                members.append(resource)
        project.sources[name] = SourceDef(name=name, file=file, line=doc.line_of(("sources", name)),
                                          resources=members, spec=spec, reconcile=reconcile)
    for resource in resources.values():
        if resource.name in owner:
            continue
        prefix = resource.name.split(".", 1)[0]
        existing = project.sources.get(prefix)
        if existing is not None and existing.spec.resources:
            errors.append(Problem(resource.file, resource.line, f"resources.{resource.name}",
                                          f"resource `{resource.name}` is not listed in source `{prefix}`",
                                          f"Add it to `sources.{prefix}.resources` in {existing.file}."))
            continue
        if existing is None:
            existing = project.sources[prefix] = SourceDef(name=prefix, file=resource.file, line=resource.line,
                                                           resources=[])
        existing.resources.append(resource)
    for source in project.sources.values():
        _check_source(source, errors, docs)


def _check_source(source: SourceDef, errors: List[Problem], docs: Dict[Path, YamlDocument]) -> None:
    tables: Dict[str, ResourceDef] = {}
    source.dagster = (source.spec.meta.dagster if source.spec.meta and source.spec.meta.dagster else DagsterMeta())
    for resource in source.resources:
        resource.source = source.name
        resource.dagster = _merge_meta(source.dagster, resource, docs[resource.file], errors)
        if resource.table in tables:
            errors.append(Problem(resource.file, resource.line, f"resources.{resource.name}",
                                          f"table `{resource.table}` is loaded twice in source `{source.name}` "
                                          f"(also by `{tables[resource.table].name}`)",
                                          "Give each resource of a source its own table name."))
        tables[resource.table] = resource
    _check_data_from(source, errors, docs)


def _check_data_from(source: SourceDef, errors: List[Problem], docs: Dict[Path, YamlDocument]) -> None:
    """Each `data_from` names another resource of the source, and following them never comes back (no cycles)."""
    by_name = {r.name: r for r in source.resources}
    in_cycle: set = set()
    for resource in source.resources:
        parent, chain = resource.spec.data_from, [resource.name]
        key = ("resources", resource.name, "data_from")
        if parent and parent not in by_name:
            errors.append(Problem(resource.file, docs[resource.file].line_of(key), ".".join(key),
                                          f"`{parent}` is not a resource of source `{source.name}`",
                                          " ".join(filter(None, [did_you_mean(parent, by_name),
                                                                 "`data_from` names another resource of the same source."]))))
        while parent in by_name and parent not in chain:
            chain.append(parent)
            parent = by_name[parent].spec.data_from
        if parent == resource.name and not in_cycle.intersection(chain):
            in_cycle.update(chain)
            errors.append(Problem(resource.file, docs[resource.file].line_of(key), ".".join(key),
                                          f"`data_from` goes round in a cycle: {' -> '.join(chain + [resource.name])}",
                                          "Remove `data_from` from one of them: the chain must start at a resource "
                                          "that loads data itself."))


def _merge_meta(source_meta: DagsterMeta, resource: ResourceDef, doc: YamlDocument,
                errors: List[Problem]) -> DagsterMeta:
    override = resource.spec.meta.dagster if resource.spec.meta and resource.spec.meta.dagster else None
    if override is None:
        return source_meta
    merged = source_meta.model_dump(exclude_unset=True)
    for key, value in override.model_dump(exclude_unset=True).items():
        nested = merged.get(key)
        merged[key] = {**nested, **value} if isinstance(nested, dict) and isinstance(value, dict) else value
    try:
        return DagsterMeta.model_validate(merged)
    except ValidationError as exc:  # each part is valid alone, the combination is not
        for error in pydantic_errors(exc, resource.file, doc, prefix=("resources", resource.name, "meta", "dagster")):
            errors.append(dataclasses.replace(
                error, message=f"{error.message} (with source `{resource.source}`'s meta.dagster merged in)",
                hint=f"A resource's `meta.dagster` overrides the source's key by key. {error.hint}"))
        return source_meta


def _warnings(project: Project) -> List[Problem]:
    found = []
    for resource in project.resources:
        spec = resource.spec
        if spec.disposition == "merge" and not (spec.primary_key or spec.merge_key):
            found.append(Problem(resource.file, resource.line, f"resources.{resource.name}.write_disposition",
                                         "`merge` without `primary_key` or `merge_key`: dlt will append every row",
                                         "Set `primary_key` (or `merge_key`) so re-runs update rows instead of duplicating them.",
                                         severity="warning"))
    return found
