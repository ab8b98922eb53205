"""Resolve `entry: data.fn` to a function in a module file inside the sources root, and import it safely.

Entries are checked as paths before anything is imported: `os.system` or `../x` never reach `importlib`.
"""

import ast
import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional, Tuple

from data_foundation.errors import did_you_mean

__all__ = ["EntryError", "EntryTarget", "resolve_entry", "import_entry", "PACKAGE_PREFIX"]

# Source folders are imported as `data_foundation_sources_<root hash>.<folder>` so `from . import helpers` works in data.py.
PACKAGE_PREFIX = "data_foundation_sources"

# A module that failed to import is not run again (once per entry naming it) until its file changes.
_FAILED_IMPORTS: Dict[Tuple[str, str], "EntryError"] = {}


class EntryError(Exception):
    def __init__(self, message: str, hint: str = "", file: Optional[Path] = None, line: Optional[int] = None):
        super().__init__(message)
        self.message, self.hint, self.file, self.line = message, hint, file, line


@dataclass(frozen=True)
class EntryTarget:
    root: Path
    folder: str  # the source folder the module lives in
    module_parts: Tuple[str, ...]  # module path inside that folder, e.g. ("data",)
    function: str

    @property
    def module_file(self) -> Path:
        return self.root.joinpath(self.folder, *self.module_parts[:-1], self.module_parts[-1] + ".py")

    @cached_property  # resolving the root for every module name was a tenth of loading 500 sources
    def root_package(self) -> str:
        # One package per sources root, so two roots with a folder of the same name never share modules.
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:10]
        return f"{PACKAGE_PREFIX}_{digest}"

    @property
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
            if not _inside(target.module_file, root):  # e.g. a symlink: refused before anything is imported
                raise EntryError(
                    f"`{entry}` resolves to `{_show(target.module_file.resolve())}`, outside the sources root `{root}`",
                    "Move the module into the source folder: entries never import code from outside the sources root.",
                )
            return target
    target = EntryTarget(root, folder, tuple(module), function)
    existing = sorted(p.stem for p in (root / folder).glob("*.py") if p.stem != "__init__")
    raise EntryError(
        f"`{entry}` does not resolve to a module file inside the sources root `{root}` "
        f"(looked for `{_show(target.module_file)}`)",
        " ".join(filter(None, [did_you_mean(entry, _entries_in(root / folder)),
                               "Entries name a function in a module of the source folder, e.g. `data.fetch_users`; "
                               f"modules here: {', '.join(existing) or 'none'}."])),
    )


def import_entry(target: EntryTarget) -> Callable:
    """Import the entry's module (no `__pycache__` written) and return the function."""
    module = _import_module(target)
    function = getattr(module, target.function, None)
    if function is None or not callable(function):
        available = _public_functions(module)
        raise EntryError(
            f"`{_show(target.module_file)}` has no function `{target.function}`",
            " ".join(filter(None, [did_you_mean(target.function, available),
                                   f"Functions defined there: {', '.join(available) or 'none'}."])),
        )
    return function


def _import_module(target: EntryTarget) -> ModuleType:
    if target.module_name in sys.modules:
        return sys.modules[target.module_name]
    attempt = (target.module_name, hashlib.sha1(target.module_file.read_bytes()).hexdigest())
    if attempt in _FAILED_IMPORTS:
        raise _FAILED_IMPORTS[attempt]
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
        _FAILED_IMPORTS[attempt] = EntryError(
            f"importing `{_show(target.module_file)}` failed: {type(exc).__name__}: {exc}",
            "Fix the error in the module; it must import without side effects such as network calls.",
            file=file or target.module_file,
            line=line,
        )
        raise _FAILED_IMPORTS[attempt] from exc
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
        if _inside(Path(frame.filename), root):
            found = (Path(frame.filename), frame.lineno)
    return found


def _public_functions(module: ModuleType) -> List[str]:
    return sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                  and getattr(v, "__module__", None) == module.__name__)


def _entries_in(folder: Path) -> List[str]:
    """`module.function` for the top-level functions of the folder's modules, read with `ast` (nothing imported)."""
    found = []
    for file in sorted(folder.glob("*.py")):
        if not _inside(file, folder):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        found += [f"{file.stem}.{n.name}" for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
