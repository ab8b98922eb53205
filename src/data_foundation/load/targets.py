"""Named targets (`dev`, `prod`, or any dlt destination) from `foundation.toml` or `[tool.data-foundation]`.

Targets hold no secrets: credentials come only from dlt's providers (env vars, `.dlt/secrets.toml`).
"""

import getpass
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data_foundation.errors import FoundationError
from data_foundation.masking import is_secret_name

__all__ = ["TargetSpec", "TargetError", "load_targets", "target_spec", "developer_name", "read_config",
           "DEFAULT_TARGET", "CONFIG_FILE"]

CONFIG_FILE = "foundation.toml"
DEFAULT_TARGET = "dev"


class TargetError(FoundationError):
    pass


class TargetSpec(BaseModel):
    """One target: a dlt destination plus where its datasets go. `{user}` in prefix/suffix is the developer."""

    model_config = ConfigDict(extra="forbid")

    destination: str = "duckdb"
    duckdb_file: Optional[str] = None
    dataset_prefix: str = ""
    dataset_suffix: str = ""
    credentials: Dict[str, Any] = Field(default_factory=dict)  # non-secret parts: database, warehouse, role, host
    options: Dict[str, Any] = Field(default_factory=dict)  # keyword arguments of the dlt destination factory

    @field_validator("credentials")
    @classmethod
    def _no_secrets(cls, value: Dict[str, Any]) -> Dict[str, Any]:
        secret = sorted(k for k in value if is_secret_name(k))
        if secret:
            raise ValueError(f"secrets such as `{', '.join(secret)}` must not be written in the config file: set them "
                             "through dlt's "
                             "secrets, e.g. the env var DESTINATION__<DESTINATION>__CREDENTIALS__"
                             f"{secret[0].upper()} or .dlt/secrets.toml")
        return value


BUILT_IN = {
    # One DuckDB file per checkout; the per-developer suffix keeps datasets apart wherever dev points at a shared
    # warehouse (the dbt convention of a personal dev schema).
    "dev": TargetSpec(destination="duckdb", duckdb_file="foundation.duckdb", dataset_suffix="_{user}"),
    # Production loads Snowflake's raw database; account, user and secrets come from dlt's providers.
    "prod": TargetSpec(destination="snowflake", credentials={"database": "RAW"}),
}


def developer_name() -> str:
    """`$FOUNDATION_USER`, else the login name, as a lowercase identifier."""
    name = os.environ.get("FOUNDATION_USER") or getpass.getuser()
    return re.sub(r"[^a-z0-9_]", "_", name.lower()) or "dev"


def load_targets(directory: Optional[Path] = None) -> Dict[str, Any]:
    """Built-in targets overlaid with `foundation.toml` (or `pyproject.toml`'s `[tool.data-foundation]`):
    name -> TargetSpec, or the raw table of a configured target (checked by `target_spec` when it is used)."""
    raw, file = read_config(directory)
    return {**BUILT_IN, **{name: (file, values) for name, values in (raw.get("targets") or {}).items()}}


def target_spec(name: str, entry: Any) -> TargetSpec:
    if isinstance(entry, TargetSpec):
        return entry
    file, values = entry
    try:
        return TargetSpec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))} is invalid, {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors(include_url=False))
        raise TargetError(f"{file}: targets.{name}.{problems}") from None


def read_config(directory: Optional[Path] = None) -> Tuple[Dict[str, Any], Optional[Path]]:
    """The settings table of `foundation.toml` in `directory` (default: the working directory), else of
    `pyproject.toml`'s `[tool.data-foundation]`, and the file it came from (None when neither exists)."""
    directory = Path(directory or Path.cwd())
    config = directory / CONFIG_FILE
    if config.is_file():
        return _parse(config), config
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        return _parse(pyproject).get("tool", {}).get("data-foundation", {}), pyproject
    return {}, None


def _parse(path: Path) -> Dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: {exc}") from None
