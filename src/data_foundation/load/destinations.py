"""Where pipelines load: DuckDB by default, any dlt destination by name. Credentials come from dlt's providers."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import dlt
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.pipeline import get_dlt_pipelines_dir

from data_foundation.errors import did_you_mean
from data_foundation.masking import is_secret_name
from data_foundation.load.targets import (DEFAULT_TARGET, TargetError, TargetSpec, developer_name, load_targets,
                                     target_spec)

__all__ = ["DEFAULT_DUCKDB_FILE", "Target", "create_target", "resolve_target", "target_name", "normalize_identifier",
           "normalize_path"]

DEFAULT_DUCKDB_FILE = "foundation.duckdb"


@dataclass(frozen=True)
class Target:
    """A destination plus how datasets are named in it and where dlt keeps each dataset's local working state."""

    destination_name: str
    destination: Any
    dataset_prefix: str = ""
    duckdb_file: Optional[Path] = None
    dataset_suffix: str = ""
    name: str = ""  # the target's name in foundation.toml, if it came from there
    location: str = ""  # non-secret parts of the credentials (host, database, ...) that tell two servers apart

    def duckdb_clash(self, dataset: str) -> Optional[str]:
        """Why `dataset` cannot be loaded into this target's DuckDB file, or None: DuckDB names the catalog after the
        file, so `x.duckdb` with a schema `x` makes every query ambiguous."""
        if self.duckdb_file is None or self.duckdb_file.stem != dataset:
            return None
        return (f"DuckDB file `{self.duckdb_file}` has the same name as dataset `{dataset}`; DuckDB cannot tell the two "
                "apart. Choose another file name (--duckdb-file, or duckdb_file in foundation.toml) or a "
                "--dataset-prefix.")

    def dataset_name(self, source: str) -> str:
        """The dataset (schema) `source` loads into, as dlt creates it: prefix and suffix applied, then normalized
        with dlt's naming convention (`{user}` = `John.Doe` gives `jaffle_shop_john_doe`)."""
        return _NAMING.normalize_identifier(self.dataset_pattern(source))

    def dataset_pattern(self, source: str = "<source>") -> str:
        """The dataset name before dlt normalizes it, e.g. `<source>_tester` for showing the naming rule."""
        user = developer_name()
        return f"{self.dataset_prefix.format(user=user)}{source}{self.dataset_suffix.format(user=user)}"

    def pipelines_dir(self, dataset: str) -> str:
        """dlt's local working folder for one dataset of this destination: `<base>/<destination>_<dataset>_<hash>`.

        The local state (incremental cursors, pending load packages) is a cache of what dlt keeps in the
        destination's dataset; keying the folder by destination and dataset means a cursor or an unfinished package
        never crosses into another dataset or database. The base is `$FOUNDATION_PIPELINES_DIR`, else
        `<dlt pipelines dir>/foundation`.
        """
        base = os.environ.get("FOUNDATION_PIPELINES_DIR") or str(Path(get_dlt_pipelines_dir()) / "foundation")
        where = str(self.duckdb_file.resolve()) if self.duckdb_file else f"{self.name}:{self.location}"
        digest = hashlib.sha1(f"{self.destination_name}|{where}|{dataset}".encode()).hexdigest()[:10]
        return str(Path(base) / f"{self.destination_name}_{dataset}_{digest}")

    @property
    def loader_file_format(self) -> Optional[str]:
        """Parquet where the destination takes it: dlt's insert_values default is ~13x slower on DuckDB."""
        caps = self.destination.capabilities()
        return "parquet" if "parquet" in (caps.supported_loader_file_formats or []) else None


_NAMING = NamingConvention()


def normalize_identifier(name: str) -> str:
    """A table, column or dataset name as dlt writes it (its default snake_case convention): `userId` -> `user_id`."""
    return _NAMING.normalize_identifier(name)


def normalize_path(name: str) -> str:
    """A column name as dlt writes it, nested names included: `address__zipCode` -> `address__zip_code`."""
    return _NAMING.normalize_path(name)


def create_target(destination: str = "duckdb", duckdb_file: Optional[str] = None, dataset_prefix: str = "") -> Target:
    """Build the target for `destination` (a dlt destination name such as `duckdb`, `postgres`, `snowflake`).

    Example:
        >>> create_target("duckdb", "/tmp/warehouse.duckdb").destination.destination_name
        'duckdb'
    """
    return _build(TargetSpec(destination=destination, duckdb_file=duckdb_file, dataset_prefix=dataset_prefix))


def target_name(name: Optional[str] = None) -> str:
    """The target a command uses: `--target`, else `$FOUNDATION_TARGET`, else `dev`."""
    return name or os.environ.get("FOUNDATION_TARGET") or DEFAULT_TARGET


def resolve_target(name: Optional[str] = None, duckdb_file: Optional[str] = None,
                   dataset_prefix: Optional[str] = None, config_dir: Optional[Path] = None) -> Target:
    """The target called `name` (else `$FOUNDATION_TARGET`, else `dev`) from foundation.toml or the built-ins;
    a name that is no target but a dlt destination (`postgres`, `bigquery`, ...) is used as that destination.

    Example:
        >>> resolve_target("prod").destination_name
        'snowflake'
    """
    name = target_name(name)
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
    return Target(spec.destination, destination, spec.dataset_prefix, None, spec.dataset_suffix, name,
                  _location(spec.destination, spec.credentials))


def _location(destination: str, credentials: Dict[str, Any]) -> str:
    """Where a server-based destination is, from the non-secret credentials of the target and of dlt's providers
    (env vars, secrets.toml), so two servers never share a local working folder. Secrets are never part of it."""
    found = dict(credentials)
    for key in ("host", "port", "database", "account", "project_id", "server_hostname", "http_path", "catalog",
                "bucket_url"):
        if key not in found:
            value = dlt.config.get(f"destination.{destination}.credentials.{key}") \
                if key != "bucket_url" else dlt.config.get(f"destination.{destination}.{key}")
            if value is not None:
                found[key] = value
    return ",".join(f"{k}={found[k]}" for k in sorted(found) if not is_secret_name(k))



def _is_destination(name: str) -> bool:
    try:
        dlt.destination(name)
        return True
    except Exception:  # dlt raises its own UnknownDestinationModule and friends
        return False
