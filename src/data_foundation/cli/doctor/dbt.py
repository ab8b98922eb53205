"""The dbt project downstream: the profile output for the target, its adapter, the generated sources.yml and the
manifest the Dagster definitions read."""

from typing import Any, Optional

from data_foundation.cli.doctor.check import FAIL, INFO, OK, SKIP, Check, first_lines

__all__ = ["dbt_check"]

NAME = "dbt project"


def dbt_check(target: Any, project: Optional[Any]) -> Check:
    from data_foundation.dbt.environment import dbt_environment, dbt_target_name, require_adapter
    from data_foundation.dbt.invoke import manifest_is_stale, prepare_manifest
    from data_foundation.dbt.settings import DbtError, find_dbt_project
    from data_foundation.dbt.sources_yml import stale_sources

    try:
        settings = find_dbt_project()
    except DbtError as exc:
        return Check(NAME, FAIL, first_lines(str(exc)), fixes=["fix `[dbt]` in foundation.toml"])
    if settings is None:
        return Check(NAME, INFO, "none: foundation.toml has no [dbt] table")
    if target is None:
        return Check(NAME, SKIP, "skipped: the target does not resolve")
    try:
        output = dbt_target_name(target, settings)
    except DbtError as exc:
        return Check(NAME, FAIL, first_lines(str(exc)), fixes=[
            "add the output to profiles.yml, named like the target or like its destination (duckdb, postgres, "
            "snowflake)"])
    try:
        require_adapter(target, settings)
    except DbtError as exc:
        return Check(NAME, FAIL, first_lines(str(exc)), fixes=["install it, then run `foundation doctor` again"])
    if project is not None and stale_sources(project, settings):
        return Check(NAME, FAIL, f"{settings.sources_file} is stale: the sources changed since it was generated",
                     fixes=["run `foundation dbt sources` and commit the file"])
    notes = []
    if manifest_is_stale(settings) and project is not None:
        # what the definitions check right after would do anyway, once: parse, and say what fails
        try:
            prepare_manifest(settings, dbt_environment(project, target, settings))
        except DbtError as exc:
            return Check(NAME, FAIL, first_lines(str(exc), 4),
                         fixes=["fix it, then `foundation dbt prepare`; meanwhile the definitions keep the models of "
                                "the last manifest (their dbt runs fail), or leave them out without one"])
        notes.append("the manifest was older than the project: prepared it now, as the next definitions load would "
                     "have (`foundation dbt prepare`)")
    return Check(NAME, OK, f"{settings.project_dir.name}/, profile output `{output}`, sources.yml up to date",
                 notes=notes)
