"""The dbt project as Dagster assets (dagster-dbt) in the same graph as the raw tables: dbt sources are the raw
assets (`meta.dagster.asset_key` of the generated sources.yml), dbt tests are asset checks, models refresh when their
raw tables load and inherit their freshness."""

import contextlib
import datetime as dt
import logging
import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from data_foundation.config.project import Project, ResourceDef
from data_foundation.dagster.assets import pool_name
from data_foundation.dagster.translator import asset_key
from data_foundation.dbt.environment import dbt_environment
from data_foundation.dbt.invoke import dbt_executable, prepare_manifest, read_manifest
from data_foundation.dbt.settings import DbtError, DbtSettings
from data_foundation.load.destinations import Target

__all__ = ["build_dbt_assets", "DBT_RESOURCE_KEY", "FoundationDbtTranslator"]

DBT_RESOURCE_KEY = "dbt"
_LOG = logging.getLogger("data_foundation.dbt")


class FoundationDbtTranslator(DagsterDbtTranslator):
    """dagster-dbt's translator, plus: models are grouped by their folder (`staging`, `marts`), refresh eagerly after
    their upstream assets (the raw tables keep the only schedule), and fail freshness after the longest
    `freshness_lower_bound_delta_seconds` of the raw tables they read. A dbt source that is a raw table (its
    `meta.dagster.asset_key` in the generated sources.yml) is keyed as `key_of` keys that table."""

    def __init__(self, project: Project, key_of: Callable[[ResourceDef], dg.AssetKey] = asset_key):
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=True))
        self._declared: Dict[dg.AssetKey, dg.AssetKey] = {asset_key(r): key_of(r) for r in project.resources}
        self._resources: Dict[dg.AssetKey, ResourceDef] = {key_of(r): r for r in project.resources}
        self._upstream: Dict[str, List[ResourceDef]] = {}

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        key = super().get_asset_key(dbt_resource_props)
        if dbt_resource_props.get("resource_type") == "source":
            return self._declared.get(key, key)
        return key

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not unique_id.startswith(("model.", "seed.", "snapshot.")):
            return spec
        seconds = [r.dagster.freshness_lower_bound_delta_seconds for r in self._raw_upstream(manifest, unique_id)]
        seconds = [s for s in seconds if s]
        policy = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(seconds=max(seconds))) if seconds else None
        return spec.replace_attributes(freshness_policy=policy)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> Optional[str]:
        fqn = dbt_resource_props.get("fqn") or []
        return super().get_group_name(dbt_resource_props) or (fqn[1] if len(fqn) > 2 else "dbt")

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> Optional[dg.AutomationCondition]:
        return dg.AutomationCondition.eager()

    def _raw_upstream(self, manifest: Mapping[str, Any], unique_id: str) -> List[ResourceDef]:
        """The foundation resources `unique_id` reads, directly or through other models."""
        if unique_id not in self._upstream:
            self._upstream[unique_id] = []  # a cycle (dbt refuses them) ends here
            found: Dict[str, ResourceDef] = {}
            for parent in manifest["parent_map"].get(unique_id, []):
                if parent.startswith("source."):
                    resource = self._resources.get(self.get_asset_key(manifest["sources"][parent]))
                    if resource is not None:
                        found[resource.name] = resource
                elif parent in manifest["nodes"]:
                    found.update({r.name: r for r in self._raw_upstream(manifest, parent)})
            self._upstream[unique_id] = list(found.values())
        return self._upstream[unique_id]


def build_dbt_assets(project: Project, target: Target, settings: DbtSettings,
                     key_of: Callable[[ResourceDef], dg.AssetKey] = asset_key) -> Optional[Dict[str, Any]]:
    """The dbt project's models (and their tests as checks) as one multi-asset that runs `dbt build` against
    `target`, with the resource it needs: `{"assets": ..., "resources": {...}}`.

    The manifest is the one `foundation dbt prepare` (make) wrote; dbt parses again here only when a file of the
    project changed since, never on every load. A project that no longer parses (a broken model, a missing adapter)
    must not stop the loads: its last manifest is used, or, without one, the definitions have no dbt assets; either
    way the error is logged, dbt's runs fail with it, and `foundation doctor` names it."""
    try:
        env = dbt_environment(project, target, settings)
    except DbtError as exc:  # no profile output for this target: dbt cannot run here at all
        _LOG.error("the dbt project is left out of the definitions: %s", exc)
        return None
    try:
        path = prepare_manifest(settings, env)
    except DbtError as exc:
        if not settings.manifest_path.is_file():
            _LOG.error("the dbt project is left out of the definitions: %s", exc)
            return None
        _LOG.error("the dbt project does not parse; its models are those of the last manifest: %s", exc)
        path = settings.manifest_path
    # read here, not by path: dagster-dbt caches a path's manifest for the life of the process
    manifest = read_manifest(path)
    # not `prepare_if_dev()`: under `dg dev` it parses on every load, without the target's environment
    dbt_project = DbtProject(project_dir=settings.project_dir, profiles_dir=settings.profiles_dir,
                             target=env["FOUNDATION_TARGET"])

    @dbt_assets(manifest=manifest, project=dbt_project, name=f"dbt_{_project_name(settings)}", pool=pool_name(target),
                dagster_dbt_translator=FoundationDbtTranslator(project, key_of))
    def _models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        with _environment(env):  # dagster-dbt starts dbt, and opens its adapter, with os.environ
            invocation = dbt.cli(["build"], context=context)
        yield from invocation.stream()

    resource = DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    return {"assets": _models, "resources": {DBT_RESOURCE_KEY: resource}}


def _project_name(settings: DbtSettings) -> str:
    return "".join(c if c.isalnum() else "_" for c in settings.project_dir.name) or "project"


@contextlib.contextmanager
def _environment(env: Dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
