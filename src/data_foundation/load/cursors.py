"""Incremental cursors as dlt keeps them: in the pipeline state, whose authoritative copy is the newest row of the
dataset's `_dlt_pipeline_state` table (`status`, `state`, `plan` read it there, so an ephemeral runner with an empty
working folder sees what the machine that loaded saw).

dlt's layout: `state["sources"][<source>]["resources"][<table>]["incremental"][<cursor_path>]` holds `initial_value`,
`last_value` and `unique_hashes` (the rows at `last_value` already loaded).
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import dlt

from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.load.destinations import Target

__all__ = ["Cursor", "DestinationState", "incremental_cursor", "read_destination_state"]


@dataclass(frozen=True)
class Cursor:
    """One resource's incremental cursor: the configured start, and the last value dlt saw (None before a load)."""

    table: str
    cursor_path: str
    initial_value: Any
    last_value: Any = None

    @property
    def loaded(self) -> bool:
        return self.last_value is not None


@dataclass(frozen=True)
class DestinationState:
    """The state of pipeline `foundation_<source>` as its dataset holds it (None: never loaded, or no dataset)."""

    pipeline_name: str
    dataset: str
    state: Optional[Dict[str, Any]]

    @property
    def version(self) -> Optional[int]:
        return self.state.get("_state_version") if self.state else None

    def resource_state(self, source: str, table: str) -> Dict[str, Any]:
        if not self.state:
            return {}
        return self.state.get("sources", {}).get(source, {}).get("resources", {}).get(table, {})


def read_destination_state(source: SourceDef, target: Target) -> Tuple[dlt.Pipeline, DestinationState]:
    """The source's pipeline (not synced, nothing written) and its state read from the destination's dataset."""
    from data_foundation.load.session import create_pipeline, destination_state

    pipeline = create_pipeline(source, target)
    _, state = destination_state(pipeline)
    return pipeline, DestinationState(pipeline.pipeline_name, pipeline.dataset_name, state)


def incremental_cursor(resource: ResourceDef, state: Optional[DestinationState]) -> Optional[Cursor]:
    """The cursor of a resource with `incremental:` in sources.yaml, its last value from `state`; None without one."""
    spec = resource.spec.incremental
    if spec is None:
        return None
    saved = (state.resource_state(resource.source, resource.table) if state else {}).get("incremental", {})
    values = saved.get(spec.cursor_path) or {}
    return Cursor(resource.table, spec.cursor_path, spec.initial_value, values.get("last_value"))
