"""Resolve `entry: data.fn` to a function in a module file inside the sources root, and import it safely.

Entries are checked as paths before anything is imported: `os.system` or `../x` never reach `importlib`. A module is
first imported in a child process (`import_probe`), so one that hangs or ends the process cannot take validation
with it; what an entry names must then be a function defined inside the sources root (`entry_kinds`).
"""

import ast
import hashlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from data_foundation.config.entry_kinds import describe_non_function
from data_foundation.errors import FoundationError, did_you_mean, display_path, join_hints

__all__ = ["EntryError", "EntryTarget", "ModuleImports", "resolve_entry", "import_modules", "import_entry",
           "exec_module", "is_inside", "PACKAGE_PREFIX"]

# Source folders are imported as `data_foundation_sources_<root hash>.<folder>` so `from . import helpers` works in data.py.
PACKAGE_PREFIX = "data_foundation_sources"

# Keyed by module name and the content of the `.py` files of its source folder (a sibling it imports counts): a
# module that failed to import is not run again until that changes, one the child imported is not checked again.
_FAILED_IMPORTS: Dict[Tuple[str, str], "EntryError"] = {}
_PROBED: Set[Tuple[str, str]] = set()


class EntryError(FoundationError):
    """An entry that does not resolve, import or name a function of the sources root; `file` and `line` point into
    the module when its import failed."""

    def __init__(self, message: str, hint: str = "", file: Optional[Path] = None, line: Optional[int] = None):
        super().__init__(message)
        self.message, self.hint, self.file, self.line = message, hint, file, line


@dataclass(frozen=True)
class EntryTarget:
    root: Path
    folder: str  # the source folder the module lives in
    module_parts: Tuple[str, ...]  # module path inside that folder, e.g. ("data",)
    function: str

    @cached_property
    def module_file(self) -> Path:
        return self.root.joinpath(self.folder, *self.module_parts[:-1], self.module_parts[-1] + ".py")

    @cached_property
    def root_package(self) -> str:
        # One package per sources root, so two roots with a folder of the same name never share modules.
        digest = hashlib.sha1(str(_resolved_root(os.getcwd(), str(self.root))).encode()).hexdigest()[:10]
        return f"{PACKAGE_PREFIX}_{digest}"

    @cached_property
    def module_name(self) -> str:
        return ".".join((self.root_package, self.folder) + self.module_parts)


def resolve_entry(entry: str, root: Path, folder: str) -> EntryTarget:
    """Map `data.fn` (relative to the source folder) or `<folder>.data.fn` (relative to the root) to a module file.

    Example:
        >>> resolve_entry("data.fetch_users", Path("dlthub"), "my_api").module_file
        PosixPath('dlthub/my_api/data.py')
    """
    parts = entry.split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise EntryError(f"`{entry}` is not an entry", "Use `data.<function>` or `<folder>.data.<function>`.")
    *module, function = parts
    root = Path(root)
    candidates = [(folder, tuple(module))]
    if len(module) >= 2 and (root / module[0]).is_dir():
        candidates.insert(0, (module[0], tuple(module[1:])))
    for cand_folder, cand_module in candidates:
        target = EntryTarget(root, cand_folder, cand_module, function)
        if target.module_file.is_file():
            if not is_inside(target.module_file, root):  # e.g. a symlink: refused before anything is imported
                raise EntryError(
                    f"`{entry}` resolves to `{display_path(target.module_file.resolve())}`, outside the sources root "
                    f"`{root}`",
                    "Move the module into the source folder: entries never import code from outside the sources root.",
                )
            return target
    target = EntryTarget(root, folder, tuple(module), function)
    existing = sorted(p.stem for p in (root / folder).glob("*.py") if p.stem != "__init__")
    raise EntryError(
        f"`{entry}` does not resolve to a module file inside the sources root `{root}` "
        f"(looked for `{display_path(target.module_file)}`)",
        join_hints(did_you_mean(entry, _entries_in(root / folder)),
                   "Entries name a function in a module of the source folder, e.g. `data.fetch_users`; "
                   f"modules here: {', '.join(existing) or 'none'}."),
    )


class ModuleImports:
    """Import the modules entries name, as they are found (`add`): each is first imported in one child process (see
    `import_probe`), which starts at once and works while the rest of the YAML is read; `finish` waits for it and
    imports here the modules that passed. Afterwards each module is in `sys.modules`, or its `EntryError` is kept for
    `import_entry` to raise. No `__pycache__` is written.

    Example:
        >>> with ModuleImports() as imports:
        ...     imports.add([resolve_entry("data.fetch_users", Path("dlthub"), "my_api")])
        ...     imports.finish()
    """

    def __init__(self) -> None:
        from data_foundation.config.import_probe import ImportCheck, import_timeout  # not at the top: it imports this module

        self._check = ImportCheck(import_timeout())
        self._todo: Dict[str, Tuple[EntryTarget, Tuple[str, str]]] = {}
        self._digests: Dict[Path, str] = {}

    def add(self, targets: Iterable[EntryTarget]) -> None:
        for target in targets:
            if target.module_name in sys.modules or target.module_name in self._todo:
                continue
            key = _attempt(target, self._digests)
            self._todo[target.module_name] = (target, key)
            if key not in _PROBED and key not in _FAILED_IMPORTS:
                self._check.submit(target)

    def finish(self) -> None:
        for target, error in self._check.results():  # the child goes on while a module it passed is imported here
            key = self._todo[target.module_name][1]
            if error is None:
                _PROBED.add(key)
                _import_here(target, key)
            else:
                _FAILED_IMPORTS[key] = error
        for target, key in self._todo.values():  # passed in an earlier validation (a Dagster reload): no child
            if key in _PROBED and key not in _FAILED_IMPORTS and target.module_name not in sys.modules:
                _import_here(target, key)

    def __enter__(self) -> "ModuleImports":
        return self

    def __exit__(self, *exc_info) -> None:
        self._check.close()  # interrupted: no child process is left behind


def import_modules(targets: Iterable[EntryTarget]) -> None:
    """`ModuleImports` for targets known at once."""
    with ModuleImports() as imports:
        imports.add(targets)
        imports.finish()


def import_entry(target: EntryTarget, entry: Optional[str] = None) -> Callable:
    """The function the entry names, from its module imported by `ModuleImports` (imported now if it was not).

    `entry` is the YAML's text, for the messages (default: the module path and function)."""
    if target.module_name not in sys.modules and _attempt(target, {}) not in _FAILED_IMPORTS:
        import_modules([target])
    module = sys.modules.get(target.module_name)
    if module is None:
        raise _FAILED_IMPORTS.get(_attempt(target, {})) or EntryError(
            f"`{display_path(target.module_file)}` changed while it was being imported", "Run the command again.")
    function = getattr(module, target.function, None)
    if function is None or not callable(function):
        available = _public_functions(module)
        raise EntryError(
            f"`{display_path(target.module_file)}` has no function `{target.function}`",
            join_hints(did_you_mean(target.function, available),
                       f"Functions defined there: {', '.join(available) or 'none'}."),
        )
    entry = entry or ".".join(target.module_parts + (target.function,))
    problem = describe_non_function(entry, function, target.function, target.root, target.module_file)
    if problem:
        raise EntryError(*problem)
    return function


def _import_here(target: EntryTarget, key: Tuple[str, str]) -> None:
    try:
        exec_module(target)
    except EntryError as exc:  # imported in the child, fails here (the environment differs?): reported the same way
        _FAILED_IMPORTS[key] = exc


def _attempt(target: EntryTarget, digests: Dict[Path, str]) -> Tuple[str, str]:
    """The module name and a digest of the `.py` files of its source folder: a sibling it imports counts too."""
    folder = target.root / target.folder
    if folder not in digests:
        digest = hashlib.sha1()
        for directory, subdirs, files in os.walk(folder):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith((".", "__pycache__")))
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(directory, name)
                digest.update(os.path.relpath(path, folder).encode() + b"\0")
                try:
                    with open(path, "rb") as file:
                        digest.update(file.read() + b"\0")
                except OSError:
                    pass
        digests[folder] = digest.hexdigest()
    return target.module_name, digests[folder]


def exec_module(target: EntryTarget) -> ModuleType:
    """Import the target's module in this process (the child's check is `ModuleImports`' job); raise `EntryError`
    with the file and line of the user's code when it fails."""
    if target.module_name in sys.modules:
        return sys.modules[target.module_name]
    _ensure_package(target.root_package, target.root)
    for depth in range(len(target.module_parts)):
        sub = target.module_parts[:depth]
        _ensure_package(".".join((target.root_package, target.folder) + sub), target.root.joinpath(target.folder, *sub))
    spec = importlib.util.spec_from_file_location(target.module_name, target.module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[target.module_name] = module
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # user code: report whatever it raised, including SystemExit
        del sys.modules[target.module_name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        file, line = _user_frame(exc, target.root)
        raise EntryError(
            f"importing `{display_path(target.module_file)}` failed: {type(exc).__name__}: {exc}",
            "Fix the error in the module; it must import without side effects such as network calls.",
            file=file or target.module_file,
            line=line,
        ) from exc
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


def _ensure_package(name: str, path: Optional[Path]) -> None:
    if name in sys.modules:
        return
    module = ModuleType(name)
    module.__path__ = [str(path)] if path else []  # namespace-like: its __init__.py is not executed
    sys.modules[name] = module


def _user_frame(exc: BaseException, root: Path) -> Tuple[Optional[Path], Optional[int]]:
    if isinstance(exc, SyntaxError) and exc.filename:
        return Path(exc.filename), exc.lineno
    root = root.resolve()
    found: Tuple[Optional[Path], Optional[int]] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if is_inside(Path(frame.filename), root):
            found = (Path(frame.filename), frame.lineno)
    return found


def _public_functions(module: ModuleType) -> List[str]:
    return sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                  and getattr(v, "__module__", None) == module.__name__)


def _entries_in(folder: Path) -> List[str]:
    """`module.function` for the top-level functions of the folder's modules, read with `ast` (nothing imported)."""
    found = []
    for file in sorted(folder.glob("*.py")):
        if not is_inside(file, folder):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        found += [f"{file.stem}.{n.name}" for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def is_inside(path: Path, root: Path) -> bool:
    """`path`, symlinks resolved, is `root` or below it."""
    return path.resolve().is_relative_to(_resolved_root(os.getcwd(), str(root)))


@lru_cache(maxsize=64)  # resolving the root for every entry was a tenth of loading 500 sources
def _resolved_root(cwd: str, root: str) -> Path:
    return Path(cwd, root).resolve()
