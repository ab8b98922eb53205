"""`dagster dev -m data_foundation.definitions`: the Definitions of the sources root ($FOUNDATION_SOURCES_ROOT or ./dlthub)."""

from data_foundation.dagster.definitions import build_definitions

defs = build_definitions()
