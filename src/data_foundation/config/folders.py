"""Phases 1 and 2 of loading: read a source folder's `sources.yaml` with the line of every key, then validate each of
its resources and sources on its own (pydantic). Nothing is imported here."""

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from pydantic import ValidationError

from data_foundation.config.dagster_meta import SOURCE_KEYS
from data_foundation.config.entries import EntryError, EntryTarget
from data_foundation.config.messages import pydantic_errors
from data_foundation.config.problems import Problems
from data_foundation.config.spec import SOURCE_NAME, ResourceSpec, SourcesFile, SourceSpec
from data_foundation.config.yamlfile import YamlDocument, YamlLimitError, YamlSyntaxError, read_yaml
from data_foundation.errors import Problem

__all__ = ["SOURCES_FILE", "FolderSpecs", "read_folder", "source_folders"]

SOURCES_FILE = "sources.yaml"


@dataclass
class FolderSpecs:
    """One source folder after phases 1 and 2: its YAML (None when it could not be read) and the specs that are valid.

    `problems` holds what reading it found (merged into the root's problems in the order of folders); `entries` is
    filled by phase 3 (`resolution.resolve_entries`): each entry the folder names, as a module file or the reason it
    does not resolve.
    """

    path: Path
    doc: Optional[YamlDocument] = None
    resources: Dict[str, ResourceSpec] = field(default_factory=dict)
    sources: Dict[str, SourceSpec] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)
    entries: Dict[str, Union[EntryTarget, EntryError]] = field(default_factory=dict)

    @cached_property
    def file(self) -> Path:
        return self.path / SOURCES_FILE


def source_folders(root: Path) -> List[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def read_folder(path: Path) -> FolderSpecs:
    """Phase 1 (the folder and its YAML), then phase 2 (the specs) when the YAML is a mapping."""
    folder = FolderSpecs(path)
    folder.doc = _read_document(folder)
    if folder.doc is not None and isinstance(folder.doc.data, dict):
        _validate_specs(folder)
    return folder


def _read_document(folder: FolderSpecs) -> Optional[YamlDocument]:
    path, file, problems = folder.path, folder.file, folder.problems
    if not file.is_file():
        if (path / "data.py").is_file():
            problems.add(Problem(path, None, "", f"source folder `{path.name}` has no {SOURCES_FILE}",
                                 f"Add {file} declaring its resources, or run `foundation new {path.name}`."))
        return None
    if not SOURCE_NAME.fullmatch(path.name):
        problems.add(Problem(file, None, "", f"folder name `{path.name}` is not a Python identifier",
                             "Use letters, digits and underscores, e.g. `my_api`."))
        return None
    if not (path / "__init__.py").is_file():
        problems.add(Problem(path / "__init__.py", None, "", f"source folder `{path.name}` has no __init__.py",
                             f"Create an empty {path / '__init__.py'} to mark it as a Python module."))
    doc = _parse(file, problems)
    if doc is not None:
        problems.extend(_declares_nothing(folder.path, doc))
        problems.extend(_shape_problems(file, doc))
    return doc


def _parse(file: Path, problems: Problems) -> Optional[YamlDocument]:
    try:
        return read_yaml(file)
    except YamlSyntaxError as exc:
        message = str(exc) if isinstance(exc, YamlLimitError) else f"YAML syntax error at column {exc.column}: {exc}"
        problems.add(Problem(file, exc.line, "", message, exc.hint))
    except UnicodeDecodeError as exc:
        problems.add(Problem(file, None, "", f"not UTF-8 text: {exc}", "Save the file as UTF-8."))
    return None


def _declares_nothing(path: Path, doc: YamlDocument) -> List[Problem]:
    """An empty sources.yaml (or one with only empty `resources:`/`sources:`) would make the folder silently load
    nothing."""
    data = doc.data
    if data is not None and not (isinstance(data, dict) and set(data) <= {"resources", "sources"}
                                 and not any(data.values())):
        return []
    empty = " (the file is empty)" if data is None else ""
    line = doc.line_of((next(iter(data)),)) if data else None
    return [Problem(path / SOURCES_FILE, line, "", f"folder `{path.name}` declares no resources{empty}: "
                                                   "nothing of it is loaded",
                    "Declare the folder's resources under `resources:`, or delete the folder.", severity="warning")]


def _shape_problems(file: Path, doc: YamlDocument) -> List[Problem]:
    """A document that is not a mapping, and keys written twice in one mapping."""
    if doc.data is None:
        return []
    if not isinstance(doc.data, dict):
        return [Problem(file, 1, "", "the file must be a mapping with `resources` and/or `sources`",
                        "Start with `resources:` at the top level.")]
    return [Problem(file, line, ".".join(map(str, key_path)), "duplicate key: the later one would silently win",
                    "Remove or rename one of them.") for key_path, line in doc.duplicate_keys]


def _validate_specs(folder: FolderSpecs) -> None:
    """Phase 2: each resource and source validated on its own, so one bad resource does not hide the others'
    problems; a declared resource that is not valid is broken (not reported again as missing from its source)."""
    doc, file, problems = folder.doc, folder.file, folder.problems
    try:
        SourcesFile.model_validate({key: {} for key in doc.data})
    except ValidationError as exc:
        problems.extend(pydantic_errors(exc, file, doc))
    folder.resources = _validate_section(doc, file, "resources", ResourceSpec, problems)
    folder.sources = _validate_section(doc, file, "sources", SourceSpec, problems)
    declared = doc.data.get("resources")
    if isinstance(declared, dict):
        for name in declared:
            if name not in folder.resources:
                problems.mark_broken(name)


def _validate_section(doc: YamlDocument, file: Path, section: str, model: Any, problems: Problems) -> Dict[str, Any]:
    entries = doc.data.get(section) or {}
    if not isinstance(entries, dict):
        problems.add(Problem(file, doc.line_of((section,)), section, f"`{section}` must be a mapping of names",
                             f"Write `{section}:` followed by indented `<name>:` blocks."))
        return {}
    found = {}
    for name, raw in entries.items():
        try:
            found[name] = model.model_validate({} if raw is None else raw)
        except ValidationError as exc:
            problems.extend(pydantic_errors(exc, file, doc, prefix=(section, name)))
            spec = _without_misplaced_source_keys(model, raw, exc)
            if spec is not None:  # the resource is checked on (phase 5), so its other problems show in this pass
                found[name] = spec
    return found


def _without_misplaced_source_keys(model: Any, raw: Any, exc: ValidationError) -> Optional[Any]:
    """The spec without the source's keys (`retry`, `partition`, `pool`) a resource's `meta.dagster` set, when those
    are its only problems; else None."""
    locations = [error["loc"] for error in exc.errors(include_url=False)]
    if not (isinstance(raw, dict) and all(loc[:2] == ("meta", "dagster") and len(loc) == 3 and loc[2] in SOURCE_KEYS
                                          for loc in locations)):
        return None
    dagster = {k: v for k, v in raw["meta"]["dagster"].items() if k not in SOURCE_KEYS}
    try:
        return model.model_validate({**raw, "meta": {**raw["meta"], "dagster": dagster}})
    except ValidationError:
        return None
