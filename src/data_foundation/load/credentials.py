"""A destination's missing credentials as the settings to set: shared by `foundation run` and `foundation doctor`."""

from typing import Any, List, Set, Tuple

from dlt.common.configuration.providers import EnvironProvider

__all__ = ["credentials_env", "credentials_type", "describe_missing_credentials", "env_name", "missing_fields",
           "missing_keys", "usually_needed"]


def env_name(*parts: str) -> str:
    """The environment variable dlt reads for a setting, as its environment provider names it: `env_name("sources",
    "shop", "api_key")` is `SOURCES__SHOP__API_KEY`. The one a user sets, not the lookups dlt also tries under a
    pipeline's name (`FOUNDATION_<SOURCE>__...`)."""
    *sections, key = parts
    return EnvironProvider.get_key_name(key, *sections)


def missing_keys(exc: Any) -> Tuple[List[Tuple[str, ...]], Set[str]]:
    """The key of every field dlt's `ConfigFieldMissingException` names as missing (`(field,)`, or `(field, sub)` in
    a nested configuration such as `credentials`), and the fields of that nested configuration that did resolve."""
    missing: List[Tuple[str, ...]] = []
    resolved: Set[str] = set()
    for field_name, traces in exc.traces.items():
        nested = [t for t in traces if hasattr(t, "traces")]  # a nested configuration such as `credentials`
        if nested:
            resolved.update(nested[0].resolved_fields_set or [])
            missing.extend((field_name, sub_name) for sub_name in nested[0].traces)
        elif field_name not in ("dataset_name", "local_dir"):  # both are set by the pipeline during a run
            missing.append((field_name,))
    return list(dict.fromkeys(missing)), resolved


def missing_fields(exc: Any, sections: List[str]) -> Tuple[List[str], Set[str]]:
    """`missing_keys` as the env vars to set under `sections` (e.g. `["destination", "postgres"]`)."""
    keys, resolved = missing_keys(exc)
    return [env_name(*sections, *key) for key in keys], resolved


def credentials_env(destination: str, field_name: str) -> str:
    return env_name("destination", destination, "credentials", field_name)


def describe_missing_credentials(exc: Any, destination: Any) -> str:
    """`destination `postgres` is missing credentials: database, password. Set DESTINATION__POSTGRES__CREDENTIALS__
    DATABASE, ... (or ...)` for a `ConfigFieldMissingException` raised while a pipeline resolved `destination` (a dlt
    destination), naming too the fields that destination usually needs and that did not resolve."""
    name = destination.destination_name
    missing, resolved = missing_fields(exc, ["destination", name])
    fields = [env.rsplit("__", 1)[-1].lower() for env in missing]
    also = usually_needed(credentials_type(destination), fields, resolved)
    settings = missing + [credentials_env(name, f) for f in also]
    return (f"destination `{name}` is missing credentials: {', '.join(fields)}"
            + (f" (and usually needs {', '.join(also)})" if also else "")
            + f". Set {', '.join(settings)} (or put them under [destination.{name}.credentials] in "
              ".dlt/secrets.toml); `foundation doctor` checks them all")


def credentials_type(destination: Any) -> Any:
    """The credentials class of a dlt destination, or None."""
    try:
        return destination.spec.credentials_type(destination.spec())
    except Exception:  # a destination without credentials, or one dlt cannot describe
        return None


def usually_needed(kind: Any, missing: List[str], resolved: Set[str]) -> List[str]:
    """Fields of the credentials class `kind` without a default that are neither missing nor resolved: a destination
    such as Snowflake reports only `host` missing, then needs the user, password, warehouse and role too."""
    return [f for f in getattr(kind, "__config_gen_annotations__", [])
            if f not in resolved and f not in missing and _default_of(kind, f) is None]


def _default_of(kind: Any, field_name: str) -> Any:
    try:
        return getattr(kind(), field_name, None)
    except Exception:  # a credentials class that cannot be built empty
        return None
