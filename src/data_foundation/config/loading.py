"""Find source folders and validate them into a `Project`, collecting ALL problems, in five phases:

1. read each folder's `sources.yaml` with the line of every key (`folders`);
2. validate its resources and sources, each on its own (`folders`, with the models of `spec`);
3. resolve the entries to module files, import the modules (first in a child process, while the next folders are
   read: `entries.ModuleImports`) and load the functions they name (`resolution`);
4. assemble the resources into the sources that list them, or the source their name starts with (`assembly`);
5. check each source as a whole: `data_from`, the merged `meta.dagster`, then the warnings (`source_checks`), and
   that no two resources write one destination table (`tables`).

Every phase adds what it finds to one `Problems` collector; a folder's problems stay together, in the order of folders.
"""

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from data_foundation.config.assembly import add_resources, assemble_sources
from data_foundation.config.entries import ModuleImports
from data_foundation.config.folders import FolderSpecs, read_folder, source_folders
from data_foundation.config.problems import Problems
from data_foundation.config.project import Project, ResourceDef
from data_foundation.config.resolution import LoadedEntries, load_entries, resolve_entries
from data_foundation.config.source_checks import check_sources
from data_foundation.config.tables import check_destination_tables
from data_foundation.errors import Problem, ValidationFailed

__all__ = ["DEFAULT_ROOT", "default_root", "load_project", "validate_root"]

DEFAULT_ROOT = "dlthub"


def default_root() -> Path:
    return Path(os.environ.get("FOUNDATION_SOURCES_ROOT") or DEFAULT_ROOT)


def load_project(root: Optional[Path] = None, meanwhile: Optional[Callable[[], None]] = None) -> Project:
    """Validate every source folder under `root` and return the project, or raise `ValidationFailed` with all errors.

    `meanwhile` is called once while the child process imports the modules (see `validate_root`).

    Example:
        >>> project = load_project(Path("dlthub"))
        >>> [r.name for r in project.sources["jaffle_shop"].resources][:2]
        ['jaffle_shop.customers', 'jaffle_shop.orders']
    """
    project, errors = validate_root(root, meanwhile)
    if errors:
        raise ValidationFailed(errors)
    return project


def validate_root(root: Optional[Path] = None,
                  meanwhile: Optional[Callable[[], None]] = None) -> Tuple[Project, List[Problem]]:
    """One pass over the whole root: the project built from what is valid, and every error found (the warnings are
    `project.warnings`).

    The YAML of every folder is read first, and the modules the entries name are imported, each first in one child
    process for all of them (a module that hangs or ends the process is a problem, not the end of validation); then
    the folders' resources and sources are built from what imported. `meanwhile` (optional) is called once while
    that child works, after the YAML is read: work the caller needs next anyway (`foundation run` imports dlt and
    prepares the target there), done on the other core instead of after the wait.

    Example:
        >>> project, errors = validate_root(Path("dlthub"))
        >>> errors, [w.message for w in project.warnings]
        ([], [])
    """
    root = Path(root) if root is not None else default_root()
    project = Project(root=root)
    if not root.is_dir():
        return project, [Problem(root, None, "", f"sources root `{root}` is not a directory",
                                 "Pass --root DIR or set FOUNDATION_SOURCES_ROOT, or run `foundation new NAME`.")]
    problems = Problems()
    folders = _read_folders(root, meanwhile)
    project.sources = assemble_sources(_load_folders(folders, problems), problems)
    check_sources(project.sources.values(), {f.file: f.doc for f in folders if f.doc is not None}, problems)
    problems.extend(check_destination_tables(project.sources.values()))
    project.warnings = problems.warnings
    return project, problems.errors


def _read_folders(root: Path, meanwhile: Optional[Callable[[], None]] = None) -> List[FolderSpecs]:
    """Phases 1 and 2 for every folder, and phase 3 up to the imports: a child process imports the modules of a
    folder's entries while the next folders are read (and `meanwhile` runs)."""
    folders = []
    with ModuleImports() as imports:
        for path in source_folders(root):
            folder = read_folder(path)
            imports.add(resolve_entries(folder, root))
            folders.append(folder)
        if meanwhile is not None:
            meanwhile()
        imports.finish()
    return folders


def _load_folders(folders: List[FolderSpecs], problems: Problems) -> LoadedEntries:
    """Phase 3 from the imported modules on, folder by folder: each folder's problems, then those of its entries."""
    resources: Dict[str, ResourceDef] = {}
    loaded = LoadedEntries()
    for folder in folders:
        problems.merge(folder.problems)
        entries = load_entries(folder, problems)
        add_resources(resources, entries.resources, problems)
        loaded.sources.extend(entries.sources)
    loaded.resources = list(resources.values())
    return loaded
