"""The destination's credentials, resolved through dlt's providers as a load resolves them; every missing field named
as its env var."""

import re
from typing import Any, List

from data_foundation.cli.doctor.check import FAIL, OK, Check, first_lines
from data_foundation.load.credentials import credentials_env, credentials_type, missing_fields, usually_needed
from data_foundation.masking import is_secret_name, register_secret

__all__ = ["credentials_check"]

NAME = "destination credentials"
# credential fields whose presence (never their value) the ✓ line names
_SHOWN_FIELDS = ("host", "port", "database", "username", "password", "private_key", "private_key_path", "token",
                 "authenticator", "warehouse", "role", "project_id", "client_email", "server_hostname", "http_path")


def credentials_check(target: Any) -> Check:
    """Call within an active pipeline for the target: dlt resolves destination config as during a run."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.dataset.utils import get_destination_client_initial_config

    if target.duckdb_file is not None:
        return Check(NAME, OK, "DuckDB needs no credentials")
    destination = target.destination
    dest, kind = destination.destination_name, credentials_type(destination)
    try:
        config = destination.configuration(get_destination_client_initial_config(destination, "foundation_doctor"))
    except ConfigFieldMissingException as exc:
        return _missing(dest, kind, exc)
    except Exception as exc:  # e.g. dlt's ConfigurationValueError: "requires `username` and `password`"
        known = _fields_of(kind)
        named = [f for f in dict.fromkeys(re.findall(r"`(\w+)`", str(exc))) if f in known]
        fixes = [_env_fix(credentials_env(dest, f), kind) for f in named]
        fixes.append(f"or put them under [destination.{dest}.credentials] in .dlt/secrets.toml")
        return Check(NAME, FAIL, f"{dest}: {first_lines(str(exc), 1)}", fixes=fixes, error=exc)
    return Check(NAME, OK, f"{dest}: resolved" + _shown(getattr(config, "credentials", None)))


def _missing(dest: str, kind: Any, exc: Any) -> Check:
    missing, resolved = missing_fields(exc, ["destination", dest])
    fields = [env.rsplit("__", 1)[-1].lower() for env in missing]
    also = usually_needed(kind, fields, resolved)
    fixes = [_env_fix(env, kind) for env in missing]
    fixes += [_env_fix(credentials_env(dest, f), kind) for f in also]
    tables = ", ".join(dict.fromkeys(f"[{'.'.join(env.lower().split('__')[:-1])}]" for env in missing))
    fixes.append(f"or put them under {tables} in .dlt/secrets.toml (never in foundation.toml)")
    notes = [f"usually needed too: {', '.join(also)}"] if also else []
    return Check(NAME, FAIL, f"{dest}: missing {', '.join(fields)}", notes=notes, fixes=fixes, error=exc)


def _shown(credentials: Any) -> str:
    """` (host, username, password set)`: which fields resolved, never their values (secret ones are registered
    for masking)."""
    from dlt.common.configuration.specs.base_configuration import BaseConfiguration, is_secret_hint

    if not isinstance(credentials, BaseConfiguration):
        return ""
    shown = []
    for key, hint in credentials.get_resolvable_fields().items():
        value = getattr(credentials, key, None)
        if is_secret_hint(hint) or is_secret_name(key):
            register_secret(value)
        if value is not None and key in _SHOWN_FIELDS:
            shown.append(key)
    return f" ({', '.join(shown)} set)" if shown else ""


def _fields_of(kind: Any) -> List[str]:
    try:
        return list(kind().get_resolvable_fields())
    except Exception:
        return []


def _env_fix(env: str, kind: Any) -> str:
    if env.endswith("__PASSWORD") and "private_key" in _fields_of(kind):
        base = env.removesuffix("PASSWORD")
        return (f"set {env} (password auth), or {base}PRIVATE_KEY (+ {base}PRIVATE_KEY_PASSPHRASE when the key "
                "is encrypted) for key-pair auth")
    return f"set {env}"
