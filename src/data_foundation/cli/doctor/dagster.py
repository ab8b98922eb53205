"""The Dagster definitions (the dbt models included) load for the sources root and target; failure alerts are
configured (informational)."""

import os
from pathlib import Path
from typing import Any

from data_foundation.cli.doctor.check import FAIL, INFO, OK, SKIP, Check, first_lines
from data_foundation.cli.render import describe

__all__ = ["alerts_check", "definitions_check"]


def definitions_check(root: Path, target: Any, root_failed: bool) -> Check:
    name = "Dagster definitions"
    if root_failed:
        return Check(name, SKIP, "skipped: fix the sources root first")
    if target is None:
        return Check(name, SKIP, "skipped: the target does not resolve")
    try:
        import dagster as dg

        from data_foundation.dagster.definitions import build_definitions
        from data_foundation.dbt.settings import find_dbt_project

        defs = build_definitions(root, target, find_dbt_project())
        dg.Definitions.validate_loadable(defs)
        graph = defs.resolve_asset_graph()
        tables = len(graph.materializable_asset_keys)
        upstream = len(list(graph.get_all_asset_keys())) - tables
        sensors = ", ".join(s.name for s in defs.sensors or [])
        return Check(name, OK, f"{tables} asset(s) (+{upstream} upstream API asset(s)), "
                               f"{len(graph.asset_check_keys)} asset check(s), sensors: {sensors}")
    except Exception as exc:
        return Check(name, FAIL, first_lines(describe(exc)), error=exc,
                     fixes=["run `foundation --debug doctor` for the traceback (in a dg project: `dg check defs`)"])


def alerts_check() -> Check:
    from data_foundation.dagster.alerts import WEBHOOK_ENV

    if os.environ.get(WEBHOOK_ENV):
        return Check("failure alerts", OK, f"{WEBHOOK_ENV} is set: failed Dagster runs are posted")
    return Check("failure alerts", INFO, f"{WEBHOOK_ENV} not set: failed Dagster runs are not posted "
                                         "(set it where Dagster runs in production)")
