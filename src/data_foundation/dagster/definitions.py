"""Sources root -> `dg.Definitions`: assets, upstream API assets, checks, automation sensor, dlt resource, and the
dbt project downstream when there is one."""

import importlib
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import dagster as dg
from dagster_dlt import DagsterDltResource

from data_foundation.dagster.alerts import build_failure_alert_sensor
from data_foundation.dagster.assets import build_source_assets, build_upstream_specs
from data_foundation.dagster.checks import build_checks
from data_foundation.dagster.translator import FoundationTranslator, SpecTranslation, TranslationError
from data_foundation.load.destinations import Target, resolve_target
from data_foundation.config.loading import load_project
from data_foundation.config.project import ResourceDef
from data_foundation.dbt.settings import DbtSettings
from data_foundation.masking import install_log_masking

__all__ = ["build_definitions"]

# One instance for every set of definitions: Dagster merges a project's component definitions only when a resource key
# holds the same object in each (two components would otherwise clash on `dlt`).
DLT_RESOURCE = DagsterDltResource()


def build_definitions(root: Optional[Path] = None, target: Optional[Target] = None,
                      dbt_project: Optional[DbtSettings] = None,
                      translation: Optional[SpecTranslation] = None, name: str = "") -> dg.Definitions:
    """Definitions for every source folder under `root` (default: $FOUNDATION_SOURCES_ROOT or ./dlthub), loading
    into `target` (default: $FOUNDATION_TARGET or `dev`, see foundation.toml), with the models of `dbt_project`
    downstream (`find_dbt_project()` reads it from foundation.toml's `[dbt]`; `data_foundation.definitions` does).
    `translation` changes the sources' asset specs (a component's `translation`: key prefix, group, kinds, owners);
    checks, lineage and the dbt sources follow the keys it gives. The automation sensor targets these assets only,
    so other assets of a project keep their own. `name` suffixes the names of the checks op and the sensors, so
    several sets merge in one code location (each component passes its own), and the failure alert then reports
    only the runs of these assets.

    Example:
        >>> defs = build_definitions(Path("dlthub"), create_target("duckdb", "warehouse.duckdb"))
        >>> dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources)
    """
    install_log_masking()  # dlt's and the user's log records reach Dagster's event log and compute logs masked
    if dbt_project is not None:
        _import_in_background("dagster_dbt")
    project = load_project(root)
    target = target or resolve_target()
    sources = list(project.sources.values())
    translators = {s.name: FoundationTranslator(s, target.destination_name, translation) for s in sources}
    if translation is not None:
        _refuse_shared_keys(translators)
    assets: List[Any] = []
    for source in sources:
        assets.append(build_source_assets(source, target, translators[source.name]))
        assets.extend(build_upstream_specs(source, translators[source.name]))

    def key_of(resource: ResourceDef) -> dg.AssetKey:
        return translators[resource.source].key(resource)

    suffix = f"_{name}" if name else ""
    checks = build_checks(sources, target, key_of, name=f"foundation_checks{suffix}")
    resources: Dict[str, Any] = {"dlt": DLT_RESOURCE}
    if dbt_project is not None:
        from data_foundation.dagster.dbt_assets import build_dbt_assets  # dagster-dbt only for a dbt project

        models = build_dbt_assets(project, target, dbt_project, key_of)
        if models is not None:
            assets.append(models["assets"])
            resources.update(models["resources"])
    automated = [key for a in assets if isinstance(a, dg.AssetsDefinition) for key in a.keys]
    return dg.Definitions(
        assets=assets,
        asset_checks=[checks] if checks is not None else [],
        resources=resources,
        sensors=[
            dg.AutomationConditionSensorDefinition(f"foundation_automation{suffix}",
                                                   target=dg.AssetSelection.assets(*automated),
                                                   default_status=dg.DefaultSensorStatus.RUNNING),
            build_failure_alert_sensor(name=f"foundation_failure_alert{suffix}", assets=automated if name else None),
        ],
    )


def _refuse_shared_keys(translators: Dict[str, FoundationTranslator]) -> None:
    """Two assets one key: a translation whose `key` template forgets the API endpoint assets, or two sources."""
    owners: Dict[dg.AssetKey, str] = {}
    for translator in translators.values():
        for resource in translator.source.resources:
            specs = [(translator.resource_spec(resource), resource.name)]
            if not resource.spec.data_from:
                specs.append((translator.upstream_spec(resource), f"the API endpoint of {resource.name}"))
            for spec, what in specs:
                if spec.key in owners:
                    raise TranslationError(
                        f"the translation gives {owners[spec.key]} and {what} one asset key, "
                        f"`{spec.key.to_user_string()}`: make keys differ, e.g. by the template variable `endpoint` "
                        "(`key: \"{{ 'api' if endpoint else 'raw' }}/{{ resource.source }}/{{ resource.table }}\"`)")
                owners[spec.key] = what


def _import_in_background(module: str) -> None:
    """Import `module` in a thread: dagster-dbt imports dbt-core (~2 s of CPU), which then overlaps validation's wait
    for the child process importing the sources' data.py. The main thread's own import waits for it, or re-raises."""
    threading.Thread(target=_import_quietly, args=(module,), name=f"import {module}", daemon=True).start()


def _import_quietly(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception:  # the main thread imports it again and reports the error there
        pass
