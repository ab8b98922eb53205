"""A new source folder that validates and runs as generated: `foundation new NAME` (and, outside the CLI, any
scaffolder that makes one)."""

from importlib import resources
from pathlib import Path
from typing import List

from data_foundation.errors import FoundationError
from data_foundation.config.spec import SOURCE_NAME

__all__ = ["ScaffoldError", "scaffold_source"]


class ScaffoldError(FoundationError, ValueError):
    pass


def scaffold_source(root: Path, name: str) -> List[Path]:
    """Create `root/name/{__init__.py,data.py,sources.yaml}`; refuse an invalid name or an existing folder."""
    if not SOURCE_NAME.match(name):
        raise ScaffoldError(f"`{name}` is not a valid source name: use letters, digits and underscores, e.g. `my_api`")
    folder = Path(root) / name
    if folder.exists():
        raise ScaffoldError(f"`{folder}` already exists: choose another name or edit it")
    folder.mkdir(parents=True)
    templates = resources.files("data_foundation") / "templates" / "source"
    created = [folder / "__init__.py"]
    created[0].write_text("")
    for template in ("data.py", "sources.yaml"):
        text = (templates / f"{template}.tmpl").read_text(encoding="utf-8").format(name=name)
        (folder / template).write_text(text, encoding="utf-8")
        created.append(folder / template)
    return created
