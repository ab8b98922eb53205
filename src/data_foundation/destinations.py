"""Where pipelines load: DuckDB by default, any dlt destination by name. Credentials come from dlt's providers."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir

from data_foundation.errors import did_you_mean
from data_foundation.targets import (DEFAULT_TARGET, TargetError, TargetSpec, developer_name, load_targets,
                                     target_spec)

__all__ = ["DEFAULT_DUCKDB_FILE", "Target", "create_target", "resolve_target"]

DEFAULT_DUCKDB_FILE = "foundation.duckdb"


@dataclass(frozen=True)
class Target:
    """A destination plus the dataset prefix and the folder where dlt keeps local pipeline working state."""

    destination_name: str
    destination: Any
    dataset_prefix: str = ""
    duckdb_file: Optional[Path] = None
    dataset_suffix: str = ""
    name: str = ""  # the target's name in foundation.toml, if it came from there

    def dataset_name(self, source: str) -> str:
        user = developer_name()
        return f"{self.dataset_prefix.format(user=user)}{source}{self.dataset_suffix.format(user=user)}"

    @property
    def pipelines_dir(self) -> str:
        """Local pipeline state is a cache of what dlt keeps in the destination: one folder per destination,
        so loading a new DuckDB file never reuses a cursor that belongs to another database."""
        if os.environ.get("FOUNDATION_PIPELINES_DIR"):
            return os.environ["FOUNDATION_PIPELINES_DIR"]
        identity = str(self.duckdb_file.resolve()) if self.duckdb_file else f"{self.name}:{self.destination_name}"
        digest = hashlib.sha1(identity.encode()).hexdigest()[:12]
        return str(Path(get_dlt_pipelines_dir()) / "foundation" / digest)

    @property
    def loader_file_format(self) -> Optional[str]:
        """Parquet where the destination takes it: dlt's insert_values default is ~13x slower on DuckDB."""
        caps = self.destination.capabilities()
        return "parquet" if "parquet" in (caps.supported_loader_file_formats or []) else None


def create_target(destination: str = "duckdb", duckdb_file: Optional[str] = None, dataset_prefix: str = "") -> Target:
    """Build the target for `destination` (a dlt destination name such as `duckdb`, `postgres`, `snowflake`).

    Example:
        >>> create_target("duckdb", "/tmp/warehouse.duckdb").destination.destination_name
        'duckdb'
    """
    return _build(TargetSpec(destination=destination, duckdb_file=duckdb_file, dataset_prefix=dataset_prefix))


def resolve_target(name: Optional[str] = None, duckdb_file: Optional[str] = None,
                   dataset_prefix: Optional[str] = None, config_dir: Optional[Path] = None) -> Target:
    """The target called `name` (else `$FOUNDATION_TARGET`, else `dev`) from foundation.toml or the built-ins;
    a name that is no target but a dlt destination (`postgres`, `bigquery`, ...) is used as that destination.

    Example:
        >>> resolve_target("prod").destination_name
        'snowflake'
    """
    name = name or os.environ.get("FOUNDATION_TARGET") or DEFAULT_TARGET
    targets = load_targets(config_dir)
    spec = target_spec(name, targets[name]) if name in targets else None
    if spec is None:
        if not _is_destination(name):
            raise TargetError(f"`{name}` is neither a target ({', '.join(sorted(targets))}) nor a dlt destination. "
                              f"{did_you_mean(name, targets)}".strip())
        spec = TargetSpec(destination=name)
    duckdb_file = duckdb_file or os.environ.get("FOUNDATION_DUCKDB_FILE")  # flag > env > foundation.toml
    overrides = {k: v for k, v in (("duckdb_file", duckdb_file), ("dataset_prefix", dataset_prefix)) if v is not None}
    return _build(spec.model_copy(update=overrides), name)


def _build(spec: TargetSpec, name: str = "") -> Target:
    if spec.destination == "duckdb":
        path = Path(spec.duckdb_file or os.environ.get("FOUNDATION_DUCKDB_FILE") or DEFAULT_DUCKDB_FILE)
        destination = dlt.destinations.duckdb(str(path.resolve()), **spec.options)
        return Target("duckdb", destination, spec.dataset_prefix, path, spec.dataset_suffix, name)
    destination = dlt.destination(spec.destination, credentials=dict(spec.credentials) or None, **spec.options)
    return Target(spec.destination, destination, spec.dataset_prefix, None, spec.dataset_suffix, name)


def _is_destination(name: str) -> bool:
    try:
        dlt.destination(name)
        return True
    except Exception:  # dlt raises its own UnknownDestinationModule and friends
        return False
