"""Sources root -> `dg.Definitions`: assets, upstream API assets, checks, automation sensor, dlt resource."""

from pathlib import Path
from typing import Optional

import dagster as dg
from dagster_dlt import DagsterDltResource

from data_foundation.dagster.alerts import build_failure_alert_sensor
from data_foundation.dagster.assets import build_source_assets, build_upstream_specs
from data_foundation.dagster.checks import build_checks
from data_foundation.load.destinations import Target, resolve_target
from data_foundation.config.loading import load_project
from data_foundation.masking import install_log_masking

__all__ = ["build_definitions"]


def build_definitions(root: Optional[Path] = None, target: Optional[Target] = None) -> dg.Definitions:
    """Definitions for every source folder under `root` (default: $FOUNDATION_SOURCES_ROOT or ./dlthub), loading
    into `target` (default: $FOUNDATION_TARGET or `dev`, see foundation.toml).

    Example:
        >>> defs = build_definitions(Path("dlthub"), create_target("duckdb", "warehouse.duckdb"))
        >>> dg.materialize(defs.get_asset_graph().assets_defs, resources={"dlt": DagsterDltResource()})
    """
    install_log_masking()  # dlt's and the user's log records reach Dagster's event log and compute logs masked
    project = load_project(root)
    target = target or resolve_target()
    sources = list(project.sources.values())
    assets = []
    for source in sources:
        assets.append(build_source_assets(source, target))
        assets.extend(build_upstream_specs(source))
    checks = build_checks(sources, target)
    return dg.Definitions(
        assets=assets,
        asset_checks=[checks] if checks is not None else [],
        resources={"dlt": DagsterDltResource()},
        sensors=[
            dg.AutomationConditionSensorDefinition("foundation_automation", target=dg.AssetSelection.all(),
                                                   default_status=dg.DefaultSensorStatus.RUNNING),
            build_failure_alert_sensor(),
        ],
    )
