"""What an entry names must be a function defined in a module inside the sources root.

`from os import system` in data.py makes `data.system` resolve, but the YAML must not be able to call it with its own
arguments: builtins, functions imported from outside the root, classes and callable objects (`functools.partial`,
instances with `__call__`, bound methods) are refused, each described as what it is. A decorated function is judged
by the function it wraps (`functools.wraps` sets `__wrapped__`).
"""

import ast
import functools
import inspect
import sys
from pathlib import Path
from typing import Any, Optional, Tuple

__all__ = ["describe_non_function"]

# Where a builtin says it lives vs. where users import it from.
_PUBLIC_MODULES = {"posix": "os", "nt": "os", "_operator": "operator", "_functools": "functools", "_io": "io"}


def describe_non_function(entry: str, value: Any, attribute: str, root: Path,
                          module_file: Path) -> Optional[Tuple[str, str]]:
    """None when `value` is a function defined in a file inside `root`, else the problem's message and hint.

    Example:
        >>> describe_non_function("data.system", os.system, "system", Path("dlthub"), Path("dlthub/shop/data.py"))[0]
        '`data.system` is `os.system`, a builtin imported into shop/data.py, not a function defined in the sources root'
    """
    inner = value
    if not inspect.isclass(value):
        try:
            inner = inspect.unwrap(value)
        except ValueError:  # a `__wrapped__` cycle
            pass
    if inspect.isfunction(inner):
        file = Path(inner.__code__.co_filename)
        if file == module_file or _inside(file, root):  # the first: the usual case, and no path to resolve
            return None
    return _describe(entry, inner, _relative(module_file, root),
                     _imported_as(module_file, attribute) or _qualified_name(inner, root), root)


def _describe(entry: str, inner: Any, where: str, name: str, root: Path) -> Tuple[str, str]:
    """What `inner` is instead of a function of the root (`where`: the module the entry names, `name`: as imported)."""
    not_ours = "not a function defined in the sources root"
    imported_hint = (f"Point `entry` at a function written with `def` in a module of the source folder; to use "
                     f"`{name}`, call it inside that function. Entries never name code from outside the sources root.")
    if inspect.isfunction(inner):
        return (f"`{entry}` is `{name}`, a function imported into {where} from `{inner.__code__.co_filename}`, "
                f"{not_ours}", imported_hint)
    if inspect.isclass(inner):
        hint = (f"Entries are functions: write a `def` in {where} that uses the class `{inner.__name__}` and yields "
                "the data, and name that function in `entry`.")
        defined_in = getattr(sys.modules.get(inner.__module__), "__file__", None)
        if defined_in and _inside(Path(defined_in), root):
            return f"`{entry}` is a class defined in {_relative(Path(defined_in), root)}, not a function", hint
        return f"`{entry}` is `{name}`, a class imported into {where}, not a function", hint
    if inspect.ismethod(inner):
        return (f"`{entry}` is a method bound to a `{type(inner.__self__).__qualname__}` object, {not_ours}",
                f"Write a `def` in {where} that calls the method, and name that function in `entry`.")
    if inspect.isroutine(inner):
        return f"`{entry}` is `{name}`, a builtin imported into {where}, {not_ours}", imported_hint
    if isinstance(inner, functools.partial):
        return (f"`{entry}` is a `functools.partial` of `{_qualified_name(inner.func, root)}`, {not_ours}",
                f"Write a `def` in {where} that calls it with those arguments (or pass them from the YAML's "
                "`arguments`), and name that function in `entry`.")
    return (f"`{entry}` is a callable `{type(inner).__qualname__}` object, {not_ours}",
            f"Write a `def` in {where} that calls the object, and name that function in `entry`.")


def _imported_as(module_file: Path, attribute: str) -> Optional[str]:
    """`os.system` for `from os import system` (as written in the module), or None."""
    try:
        tree = ast.parse(module_file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == attribute:
                    module = "." * node.level + (node.module or "")
                    return f"{module}.{alias.name}" if not module.endswith(".") else f"{module}{alias.name}"
    return None


def _qualified_name(value: Any, root: Path) -> str:
    """`json.loads`; for code of the sources root `shop.data.fetch` (as an entry names it), not the package name
    modules of the root are imported under."""
    module = getattr(value, "__module__", None)
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if not isinstance(name, str):
        return type(value).__qualname__
    if not isinstance(module, str):
        return name
    file = getattr(sys.modules.get(module), "__file__", None)
    if file and "." in module and _inside(Path(file), root):
        module = module.split(".", 1)[1]
    return f"{_PUBLIC_MODULES.get(module, module)}.{name}"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())
