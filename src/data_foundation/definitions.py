"""The Definitions of the sources root ($FOUNDATION_SOURCES_ROOT or ./dlthub) and of the dbt project foundation.toml
names under `[dbt]`, if any: the code location of this checkout's dg project (`dg dev`), or `dg dev -m
data_foundation.definitions` elsewhere. A dg project of its own uses `data_foundation.SourcesComponent` instead."""

from data_foundation.dagster.definitions import build_definitions
from data_foundation.dbt.settings import find_dbt_project

defs = build_definitions(dbt_project=find_dbt_project())
