"""data-foundation: source folders (`data.py` + `sources.yaml`) -> dlt pipelines -> Dagster assets.

The public API. Data flows one way through the subpackages: `config` (YAML -> validated `Project`), `load` (dlt
sources, runs, targets), `dbt` (the dbt project downstream: settings, sources.yml), `dagster` (assets, checks,
automation, the dbt models), `cli` (the `foundation` command). `SourcesComponent` is a sources root as a Dagster
component, for `dg` projects.

Example:
    >>> import data_foundation as df
    >>> project = df.load_project("dlthub")
    >>> run = df.run_source(project.sources["jaffle_shop"], df.resolve_target("dev"))
    >>> run.rows_loaded["orders"]
    61948

Names are imported on first use, so `import data_foundation` stays cheap (the CLI and the import child need that).
"""

import importlib
from typing import Any

__all__ = [
    "FoundationError",
    "Problem",
    "Project",
    "ResourceDef",
    "SourceDef",
    "SourceRun",
    "SourcesComponent",
    "Target",
    "DbtSettings",
    "build_definitions",
    "build_source",
    "create_target",
    "find_dbt_project",
    "load_project",
    "resolve_target",
    "run_selection",
    "run_source",
    "validate_root",
]

_WHERE = {
    "FoundationError": "data_foundation.errors",
    "Problem": "data_foundation.errors",
    "Project": "data_foundation.config.project",
    "ResourceDef": "data_foundation.config.project",
    "SourceDef": "data_foundation.config.project",
    "load_project": "data_foundation.config.loading",
    "validate_root": "data_foundation.config.loading",
    "build_source": "data_foundation.load.building",
    "SourceRun": "data_foundation.load.running",
    "run_source": "data_foundation.load.running",
    "run_selection": "data_foundation.load.running",
    "Target": "data_foundation.load.destinations",
    "create_target": "data_foundation.load.destinations",
    "resolve_target": "data_foundation.load.destinations",
    "DbtSettings": "data_foundation.dbt.settings",
    "find_dbt_project": "data_foundation.dbt.settings",
    "build_definitions": "data_foundation.dagster.definitions",
    "SourcesComponent": "data_foundation.dagster.component",  # `type: data_foundation.SourcesComponent` in defs.yaml
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'data_foundation' has no attribute '{name}'")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
