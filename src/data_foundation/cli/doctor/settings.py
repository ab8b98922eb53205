"""The settings of an entry function as dlt sees them: dlt's spec of its signature, resolved through dlt's providers.

An entry is a plain dlt resource function: a parameter defaulting to `dlt.secrets.value` or `dlt.config.value` is a
required setting, one with an ordinary default an optional one, and dlt injects both from `sources.<source>.<table>.
<key>`, `sources.<source>.<key>`, ... (env `SOURCES__<SOURCE>__<KEY>`, `.dlt/config.toml`, `.dlt/secrets.toml`).
Parameters the YAML passes (`arguments`, `keyword_arguments`, which win over config), the window a partitioned
source's runs pass and the `incremental` dlt passes are not settings.
"""

import inspect
from dataclasses import dataclass
from typing import Iterable, List, Set

from dlt.common.configuration.container import Container
from dlt.common.configuration.inject import get_fun_spec
from dlt.common.configuration.providers import EnvironProvider
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs.base_configuration import (BaseConfiguration, extract_inner_hint,
                                                               is_secret_hint)
from dlt.common.configuration.utils import ResolvedValueTrace, TraceLogContext
from dlt.common.reflection.spec import spec_from_signature
from dlt.common.typing import is_optional_type, is_subclass
from dlt.extract.incremental import Incremental

from data_foundation.config.arguments import bind_yaml_arguments
from data_foundation.config.project import ResourceDef
from data_foundation.load.credentials import env_name
from data_foundation.masking import is_secret_name, register_secret

__all__ = ["Setting", "entry_settings", "setting_env"]

_ENV = EnvironProvider().name


@dataclass(frozen=True)
class Setting:
    """One setting of an entry function; `found` says where dlt found its value ("" when it is not set)."""

    key: str
    required: bool
    secret: bool
    found: str = ""


def entry_settings(resource: ResourceDef, window: Iterable[str] = ()) -> List[Setting]:
    """The settings of `resource`'s entry function, each resolved as a load resolves it; every secret value found
    is registered for masking (none is returned). `window`: the parameters a partitioned source's runs pass (the
    partition's `start_argument` and `end_argument`), not settings either. Raises dlt's `ConfigurationException` for
    a value dlt would refuse (a secret in config.toml, a value of the wrong type)."""
    function = resource.function
    spec = get_fun_spec(function) or spec_from_signature(function, inspect.signature(function))[0]
    passed = _passed_by_yaml(resource) | set(window)
    hints = {key: hint for key, hint in spec.get_resolvable_fields().items()
             if key not in passed and key != "incremental" and not is_subclass(extract_inner_hint(hint), Incremental)}
    if not hints:
        return []
    log = TraceLogContext()
    with Container().injectable_context(log):
        config = resolve_configuration(spec(), sections=("sources", resource.source, resource.table),
                                       accept_partial=True)
    for trace in log.resolved_traces:
        if is_secret_hint(trace.hint) or is_secret_name(trace.key):
            register_secret(trace.value)
    settings = []
    for key, hint in hints.items():
        required = getattr(spec, key, None) is None and not is_optional_type(hint)
        secret = is_secret_hint(hint) or is_secret_name(key)
        settings.append(Setting(key, required, secret, _found(log.resolved_traces, config, key)))
    return settings


def setting_env(source: str, key: str) -> str:
    """The env var of `sources.<source>.<key>`, as dlt's environment provider names it."""
    return env_name("sources", source, key)


def _passed_by_yaml(resource: ResourceDef) -> Set[str]:
    """Parameters the YAML fills (a transformer's first one is its parent's page)."""
    try:
        return set(bind_yaml_arguments(resource, inspect.signature(resource.function), partial=True).arguments)
    except TypeError:  # validation reports arguments that do not fit
        return set(resource.spec.keyword_arguments)


def _found(traces: List[ResolvedValueTrace], config: BaseConfiguration, key: str) -> str:
    """Where the providers had `key` of `config` ("" when nowhere: a default applies, or nothing does). A nested
    configuration (credentials) counts when it resolved completely."""
    value = getattr(config, key, None)
    found = [t for t in traces if t.config is config and t.key == key]
    if isinstance(value, BaseConfiguration):
        found = found + [t for t in traces if t.config is value] if value.is_resolved() else []
    return ", ".join(dict.fromkeys(_where(t) for t in found))


def _where(trace: ResolvedValueTrace) -> str:
    if trace.provider_name == _ENV:
        return f"env {env_name(*trace.sections, trace.key)}"
    return f"{trace.provider_name} `{'.'.join([*trace.sections, trace.key])}`"
