"""The environment that points dbt at a target: which output of profiles.yml, where the raw datasets are, where dbt
builds, and the connection, read from dlt's providers as the loads read it. Secrets go only into variables dbt
masks (`DBT_ENV_SECRET_*`)."""

import importlib.util
from typing import Any, Dict, Optional

import yaml

from data_foundation.config.project import Project
from data_foundation.dbt.settings import DbtError, DbtSettings
from data_foundation.errors import mask_secrets
from data_foundation.dbt.sources_yml import RAW_DATABASE_ENV, dataset_env_var
from data_foundation.load.destinations import Target

__all__ = ["dbt_environment", "dbt_target_name", "require_adapter"]

# dlt credential field -> the variable profiles.yml reads
_CONNECTION = {"host": "FOUNDATION_DB_HOST", "port": "FOUNDATION_DB_PORT", "username": "FOUNDATION_DB_USER",
               "database": "FOUNDATION_DB_DATABASE", "warehouse": "FOUNDATION_DB_WAREHOUSE",
               "role": "FOUNDATION_DB_ROLE", "authenticator": "FOUNDATION_DB_AUTHENTICATOR",
               "private_key_path": "FOUNDATION_DB_PRIVATE_KEY_PATH",
               "password": "DBT_ENV_SECRET_PASSWORD", "private_key": "DBT_ENV_SECRET_PRIVATE_KEY",
               "private_key_passphrase": "DBT_ENV_SECRET_PRIVATE_KEY_PASSPHRASE"}


def dbt_target_name(target: Target, settings: DbtSettings) -> str:
    """The output of profiles.yml for `target`: the one named like the target (`dev`, `prod`), else the one named like
    its destination (`postgres`, `duckdb`, `snowflake`)."""
    outputs = _profile_outputs(settings)
    for name in (target.name, target.destination_name):
        if name and (outputs is None or name in outputs):
            return name
    wanted = " or ".join(f"`{n}`" for n in dict.fromkeys([target.name, target.destination_name]) if n)
    raise DbtError(f"{settings.profiles_dir / 'profiles.yml'} has no output {wanted} (it has "
                   f"{', '.join(sorted(outputs or [])) or 'none'}): add one for this target.")


def require_adapter(target: Target, settings: DbtSettings) -> None:
    """Fail, saying what to install, when the dbt adapter of `target`'s profile output is not installed (dbt would
    say only "Could not find adapter type")."""
    name = dbt_target_name(target, settings)
    adapter = ((_profile_outputs(settings) or {}).get(name) or {}).get("type")
    if isinstance(adapter, str) and adapter.isidentifier() and importlib.util.find_spec(f"dbt.adapters.{adapter}") \
            is None:
        install = f"pip install -e '.[{adapter}]'" if adapter in ("snowflake", "postgres") else \
            f"pip install dbt-{adapter}"
        raise DbtError(f"dbt-{adapter} is not installed, and the `{name}` output of profiles.yml needs it: {install}")


def _profile_outputs(settings: DbtSettings) -> Optional[Dict[str, Any]]:
    """The outputs of the project's profile in profiles.yml, by name; None when they cannot be read (dbt will say
    why)."""
    try:
        profiles = yaml.safe_load((settings.profiles_dir / "profiles.yml").read_text(encoding="utf-8")) or {}
        return dict(profiles[settings.project_config()["profile"]]["outputs"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None


def dbt_environment(project: Project, target: Target, settings: DbtSettings) -> Dict[str, str]:
    """Variables for one dbt invocation against `target`: `FOUNDATION_TARGET` (the profile's output), the dataset of
    every source, dbt's own schema, the DuckDB file or the server's connection."""
    env = {"FOUNDATION_TARGET": dbt_target_name(target, settings),
           "FOUNDATION_DBT_SCHEMA": target.dataset_name(settings.schema_name),
           "DBT_PROFILES_DIR": str(settings.profiles_dir)}
    env.update({dataset_env_var(name): target.dataset_name(source.dataset_name)
                for name, source in project.sources.items()})
    if target.duckdb_file is not None:
        env["FOUNDATION_DUCKDB_FILE"] = str(target.duckdb_file.resolve())
    else:
        credentials = _credentials(target)
        env.update({variable: str(credentials[field]) for field, variable in _CONNECTION.items()
                    if credentials.get(field) not in (None, "")})
        if credentials.get("database"):  # the raw database, when dbt builds into another one (Snowflake's RAW)
            env[RAW_DATABASE_ENV] = str(credentials["database"])
    return env


def _credentials(target: Target) -> Dict[str, Any]:
    """The destination's credentials as dlt resolves them for a load (env vars, secrets.toml, the target's own)."""
    try:
        config = target.destination.configuration(None, accept_partial=True)
    except Exception as exc:  # dlt's config errors, e.g. a connection string it cannot parse
        raise DbtError(f"the {target.destination_name} credentials do not resolve for dbt: "
                       f"{mask_secrets(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__}; "
                       f"`foundation doctor --target {target.name or target.destination_name}` says more") from None
    credentials = getattr(config, "credentials", None)
    if credentials is None or isinstance(credentials, str):
        return {}
    return {field: getattr(credentials, field, None) for field in _CONNECTION}
