"""A new source folder that validates and runs as generated: `foundation new NAME`, and the starter folder of
`dg scaffold defs data_foundation.SourcesComponent`.

Its sources.yaml starts with a yaml-language-server modeline naming `../sources.schema.json`: the JSON Schema of
sources.yaml (`config/json_schema.py`), written in the sources root next to the folders, so an editor completes keys
and flags typos in the new file at once. The loader ignores files in the root, and every `new` refreshes the copy.
"""

from importlib import resources
from pathlib import Path
from typing import List

from data_foundation.errors import FoundationError
from data_foundation.config.spec import SOURCE_NAME

__all__ = ["SCHEMA_FILE", "ScaffoldError", "scaffold_source"]

SCHEMA_FILE = "sources.schema.json"  # in the sources root: `$schema=../sources.schema.json` in the template


class ScaffoldError(FoundationError, ValueError):
    pass


def scaffold_source(root: Path, name: str) -> List[Path]:
    """Create `root/name/{__init__.py,data.py,sources.yaml}` and write `root/sources.schema.json` when it is missing
    or outdated; return the files written, in that order. Refuse an invalid name or an existing folder."""
    if not SOURCE_NAME.fullmatch(name):
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
    return created + _write_schema(Path(root) / SCHEMA_FILE)


def _write_schema(path: Path) -> List[Path]:
    """The schema file, written unless it holds the current schema already: `[path]` when written, else `[]`."""
    from data_foundation.config.json_schema import schema_text  # imports dlt (the column hints are dlt's)

    text = schema_text()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return []
    path.write_text(text, encoding="utf-8")
    return [path]
