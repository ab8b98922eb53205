"""Reading what dlt keeps in the destination without touching this machine's working folder: `status`, `state` and
`plan` connect through `reading_client`, and read incremental cursors from the pipeline state, whose authoritative
copy is the newest row of the dataset's `_dlt_pipeline_state` table (so an ephemeral runner with an empty working
folder sees what the machine that loaded saw).

dlt's layout: `state["sources"][<source>]["resources"][<table>]["incremental"][<cursor_path>]` holds `initial_value`,
`last_value` and `unique_hashes` (the rows at `last_value` already loaded).
"""

import contextlib
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.errors import FoundationError
from data_foundation.load.destinations import Target

__all__ = ["Cursor", "DestinationUnreadable", "incremental_cursor", "incremental_entry",
           "reading_client"]


class DestinationUnreadable(FoundationError):
    """The destination could not be read; the message says why and what to do."""


@dataclass(frozen=True)
class Cursor:
    """One resource's incremental cursor: the configured start, and the last value dlt saw (None before a load)."""

    table: str
    cursor_path: str
    initial_value: Any
    last_value: Any = None


def incremental_entry(source_state: Dict[str, Any], table: str, cursor_path: str) -> Optional[Dict[str, Any]]:
    """dlt's entry for one cursor in a source's state: `resources.<table>.incremental.<cursor_path>` =
    {initial_value, last_value, unique_hashes}; None before the resource's first load."""
    return source_state.get("resources", {}).get(table, {}).get("incremental", {}).get(cursor_path)


def incremental_cursor(resource: ResourceDef, state: Optional[Dict[str, Any]]) -> Optional[Cursor]:
    """The cursor of a resource with `incremental:` in sources.yaml, its last value from the pipeline `state` (None:
    never loaded); None without `incremental:`."""
    spec = resource.spec.incremental
    if spec is None:
        return None
    source_state = (state or {}).get("sources", {}).get(resource.source, {})
    values = incremental_entry(source_state, resource.table, spec.cursor_path) or {}
    return Cursor(resource.table, spec.cursor_path, spec.initial_value, values.get("last_value"))


@contextlib.contextmanager
def reading_client(source: SourceDef, target: Target, dataset: str, command: str) -> Iterator[Any]:
    """dlt's job client on the source's dataset, connected, through a throwaway pipeline (a temporary folder): reading
    leaves this machine's working folder as it was, and a DuckDB file is opened read-only, so none is created. A
    destination that cannot be reached (server down, wrong credentials, a DuckDB file another process writes) is a
    `DestinationUnreadable` saying so, for `foundation <command>`, not a traceback."""
    import dlt
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    destination = target.destination
    if target.duckdb_file is not None:
        destination = dlt.destinations.duckdb(DuckDbCredentials(str(target.duckdb_file.resolve()), read_only=True))
    with tempfile.TemporaryDirectory(prefix="foundation_read_") as folder:
        pipeline = dlt.pipeline(pipeline_name=f"foundation_{source.name}", destination=destination,
                                dataset_name=dataset, pipelines_dir=folder)
        client = pipeline.destination_client()
        if not hasattr(client, "sql_client"):
            raise DestinationUnreadable(f"`foundation {command}` reads dlt's tables with SQL; destination "
                                        f"`{target.destination_name}` has no SQL client. Query its `_dlt_loads` with "
                                        "dlt's dataset API instead.")
        try:
            client.__enter__()
        except Exception as exc:
            raise DestinationUnreadable(_cannot_connect(target, dataset, exc, command)) from None
        try:
            yield client
        finally:
            client.__exit__(None, None, None)


def _cannot_connect(target: Target, dataset: str, exc: BaseException, command: str) -> str:
    from data_foundation.load.running import _DUCKDB_LOCKED

    chain = list(_chain(exc))
    locked = _DUCKDB_LOCKED.search(" ".join(str(e) for e in chain))
    if locked:
        return (f"DuckDB file `{locked['file']}` is in use by another process (PID {locked['pid']}), which holds it "
                "for writing (a run, Dagster, a DuckDB shell); DuckDB lets no other process read it meanwhile. Run "
                f"`foundation {command}` again when it is done.")
    inner = chain[-1]
    first_line = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return (f"cannot read dataset `{dataset}` in {target.destination_name}: {type(inner).__name__}: "
            f"{' '.join(first_line.split())}. Check that the destination is reachable and its credentials are set "
            "(`foundation doctor` checks both).")


def _chain(exc: Optional[BaseException]) -> Iterator[BaseException]:
    """`exc` and its causes, outermost first (dlt wraps what the database client raised)."""
    seen = 0
    while exc is not None and seen < 20:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
