"""Where pipelines load: DuckDB by default, any dlt destination by name. Credentials come from dlt's providers."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir

__all__ = ["DEFAULT_DUCKDB_FILE", "Target", "create_target"]

DEFAULT_DUCKDB_FILE = "foundation.duckdb"


@dataclass(frozen=True)
class Target:
    """A destination plus the dataset prefix and the folder where dlt keeps local pipeline working state."""

    destination_name: str
    destination: Any
    dataset_prefix: str = ""
    duckdb_file: Optional[Path] = None

    def dataset_name(self, source: str) -> str:
        return f"{self.dataset_prefix}{source}"

    @property
    def pipelines_dir(self) -> str:
        """Local pipeline state is a cache of what dlt keeps in the destination: one folder per destination,
        so loading a new DuckDB file never reuses a cursor that belongs to another database."""
        if os.environ.get("FOUNDATION_PIPELINES_DIR"):
            return os.environ["FOUNDATION_PIPELINES_DIR"]
        identity = str(self.duckdb_file.resolve()) if self.duckdb_file else self.destination_name
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
    if destination == "duckdb":
        path = Path(duckdb_file or os.environ.get("FOUNDATION_DUCKDB_FILE") or DEFAULT_DUCKDB_FILE)
        return Target("duckdb", dlt.destinations.duckdb(str(path.resolve())), dataset_prefix, path)
    return Target(destination, dlt.destination(destination), dataset_prefix)
