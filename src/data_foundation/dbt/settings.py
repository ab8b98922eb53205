"""`[dbt]` in foundation.toml: where the dbt project is. A checkout without the table has no dbt project."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from data_foundation.errors import FoundationError
from data_foundation.load.targets import read_config

__all__ = ["DbtSettings", "DbtError", "find_dbt_project", "PROJECT_DIR_ENV"]

PROJECT_DIR_ENV = "FOUNDATION_DBT_PROJECT_DIR"  # overrides `[dbt] project_dir` (a deployment, a test)


class DbtError(FoundationError):
    pass


class _DbtTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_dir: str
    profiles_dir: Optional[str] = None  # default: the project directory, which ships profiles.yml
    sources_file: str = "models/sources.yml"  # relative to the project directory
    # the schema dbt builds into, named as the target names datasets: `dbt_<user>` on dev
    schema_name: str = Field("dbt", alias="schema")


@dataclass(frozen=True)
class DbtSettings:
    """A dbt project downstream of the sources: absolute paths, and the schema it builds into before the target's
    dataset prefix and suffix (dbt's custom schemas are appended to it: `dbt_<user>_marts`)."""

    project_dir: Path
    profiles_dir: Path
    sources_file: Path
    schema_name: str = "dbt"

    @classmethod
    def at(cls, project_dir: Path, sources_file: str = "models/sources.yml", schema_name: str = "dbt",
           profiles_dir: Optional[Path] = None) -> "DbtSettings":
        project_dir = Path(project_dir).resolve()
        return cls(project_dir, Path(profiles_dir or project_dir).resolve(), project_dir / sources_file, schema_name)

    @property
    def manifest_path(self) -> Path:
        return self.project_dir / "target" / "manifest.json"

    def project_config(self) -> Dict[str, Any]:
        """dbt_project.yml as a mapping; empty when it cannot be read (dbt itself says why when it runs)."""
        try:
            config = yaml.safe_load((self.project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return {}
        return config if isinstance(config, dict) else {}


def find_dbt_project(config_dir: Optional[Path] = None) -> Optional[DbtSettings]:
    """The dbt project `foundation.toml` names under `[dbt]` (paths relative to that file),
    `$FOUNDATION_DBT_PROJECT_DIR` winning over `project_dir`; None when neither names one."""
    raw, file = read_config(config_dir)
    table = raw.get("dbt")
    override = os.environ.get(PROJECT_DIR_ENV)
    if table is None and not override:
        return None
    base = file.parent if file is not None else Path(config_dir or Path.cwd())
    if table is not None and not isinstance(table, dict):
        raise DbtError(f"{file}: dbt must be a table, e.g. [dbt] with project_dir = \"dbt\"")
    try:
        settings = _DbtTable.model_validate({**(table or {}), **({"project_dir": override} if override else {})})
    except ValidationError as exc:
        problems = "; ".join(f"dbt.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise DbtError(f"{file}: {problems}") from None
    project_dir = (base / settings.project_dir).resolve()
    if not (project_dir / "dbt_project.yml").is_file():
        raise DbtError(f"{file or PROJECT_DIR_ENV}: dbt.project_dir `{settings.project_dir}` has no dbt_project.yml "
                       f"({project_dir}). Point it at the folder of your dbt project.")
    profiles = (base / settings.profiles_dir) if settings.profiles_dir else None
    return DbtSettings.at(project_dir, settings.sources_file, settings.schema_name, profiles)
