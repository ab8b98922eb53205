"""Dagster integration: every source folder becomes dlt assets with lineage, automation, freshness and checks."""

from data_foundation.dagster.definitions import build_definitions

__all__ = ["build_definitions"]
