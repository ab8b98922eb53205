"""`data_foundation.SourcesComponent`: a sources root as a Dagster component, for projects built with `dg`.

```yaml
# defs/ingestion/defs.yaml
type: data_foundation.SourcesComponent
attributes:
  root: .            # the source folders, relative to this file (default: its own folder)
  target: dev        # a target of foundation.toml / [tool.data-foundation] (default: $FOUNDATION_TARGET or dev)
  dbt: true          # the dbt project of [dbt] downstream (false: another component of the project has it)
  translation:       # Dagster's asset attributes, applied to every asset of the sources
    key_prefix: raw
    group_name: "{{ resource.source }}_raw"
```

It yields what `data_foundation.definitions:defs` yields for the root: the raw tables, their API endpoints, the
checks, automation sensor, freshness, partitions, failure alerts, and the dbt project of `[dbt]` in the project's
foundation.toml (or pyproject's `[tool.data-foundation]`) downstream; its checks op and sensors carry the name of its
folder under `defs/` (`component_name`), so several components live in one project. `dg scaffold defs
data_foundation.SourcesComponent NAME` writes `defs.yaml` and a starter source folder that validates and runs.
"""

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Optional

import dagster as dg
from dagster.components.resolved.context import ResolutionContext
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import BaseModel, ConfigDict, Field, field_validator

from data_foundation.dagster.translator import ResourceAssetData
from data_foundation.errors import FoundationError

__all__ = ["SourcesComponent", "SourcesScaffolder"]

STARTER_SOURCE = "example_api"


class ScaffoldParams(BaseModel):
    source: str = Field(STARTER_SOURCE, description="Name of the starter source folder to create (letters, digits, _).")

    @field_validator("source")
    @classmethod
    def _source_name(cls, value: str) -> str:
        from data_foundation.config.spec import SOURCE_NAME

        if not SOURCE_NAME.fullmatch(value):
            raise ValueError(f"`{value}` is not a valid source name: use letters, digits and underscores, "
                             "e.g. `my_api`")
        return value


class SourcesScaffolder(dg.Scaffolder[ScaffoldParams]):
    """`dg scaffold defs data_foundation.SourcesComponent NAME [--source my_api]`: `defs.yaml` plus the folder
    `foundation new` creates, so the new component validates and loads at once."""

    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        from data_foundation.scaffold import scaffold_source

        source = request.params.source if request.params else STARTER_SOURCE
        Path(request.target_path).mkdir(parents=True, exist_ok=True)
        scaffold_source(Path(request.target_path), source)
        dg.scaffold_component(request, {"root": "."})


def _root(context: ResolutionContext, value: str) -> Path:
    """`root`, relative to the defs.yaml: a folder, or an error at its line of the defs.yaml."""
    path = context.resolve_source_relative_path(value)
    if not path.is_dir():
        raise FoundationError(f"root `{value}` is not a folder ({path}): point it at the folder of your source "
                              "folders, relative to this defs.yaml")
    return path


def _target(context: ResolutionContext, value: Optional[str]) -> Any:
    """`target`, from the project's foundation.toml (or pyproject.toml's [tool.data-foundation]): an unknown name is
    an error at its line of the defs.yaml, as `foundation run --target` reports it."""
    from data_foundation.load.destinations import resolve_target

    project_root = dg.ComponentLoadContext.from_resolution_context(context).project_root
    return resolve_target(value, config_dir=project_root)


@dg.scaffold_with(SourcesScaffolder)
class SourcesComponent(dg.Component, dg.Resolvable, dg.Model):
    """Source folders (data.py + sources.yaml) loaded by dlt: assets, checks, automation and dbt models.

    `root` is the folder of the source folders; `translation` overrides their assets' attributes."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # the resolved root (a Path) and target

    root: Annotated[Path, dg.Resolver(_root, model_field_type=str, description=(
        "Folder of the source folders, relative to this defs.yaml (default: its own folder)."))] = Path(".")
    target: Annotated[Any, dg.Resolver(_target, model_field_type=Optional[str], description=(
        "Target to load into, as named in the project's foundation.toml or [tool.data-foundation] "
        "(default: $FOUNDATION_TARGET, else dev)."))] = None
    dbt: bool = Field(True, description="Whether the dbt project of the project's [dbt] comes with the sources, "
                                        "downstream of them (false: another component has it).")
    translation: Optional[Annotated[
        TranslationFn[ResourceAssetData],
        TranslationFnResolver[ResourceAssetData](lambda data: {"resource": data.resource, "endpoint": data.endpoint}),
    ]] = Field(None, description="Asset attributes (key_prefix, group_name, kinds, owners, tags, ...) for every asset "
                                 "of the sources; templates see `resource` and `endpoint`.")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from data_foundation.dagster.definitions import build_definitions
        from data_foundation.dbt.settings import find_dbt_project
        from data_foundation.load.destinations import resolve_target

        root = self.root if self.root.is_absolute() else (context.path / self.root).resolve()
        config_dir = context.project_root  # foundation.toml, or pyproject.toml's [tool.data-foundation]
        return build_definitions(root=root, target=self.target or resolve_target(config_dir=config_dir),
                                 dbt_project=find_dbt_project(config_dir) if self.dbt else None,
                                 translation=self.translation, name=component_name(context))


def component_name(context: dg.ComponentLoadContext) -> str:
    """The component's folder under `defs/` as a Dagster name, the suffix of its checks op and sensors, distinct for
    distinct folders: `ingestion`, `teams/eu` -> `teams__eu`; a folder whose name is no identifier (`a-b`, `équipe`,
    or one holding `__`) gets a hash of its path, so `a-b`, `a.b` and `a_b` stay apart."""
    try:
        parts = context.path.absolute().relative_to(context.defs_module_path.absolute()).parts
    except ValueError:  # a component loaded from outside the defs folder (a test's sandbox)
        parts = (context.path.name,)
    path = "/".join(parts) or "defs"
    name = re.sub(r"[^A-Za-z0-9_]", "_", path.replace("/", "__"))
    if name.replace("__", "/") != path:
        name += "_" + hashlib.sha1(path.encode()).hexdigest()[:6]
    return name
