"""A resource's `arguments` and `keyword_arguments` checked against its entry function's signature (part of phase 3):
a call that would fail with a `TypeError` at run time is a validation error."""

import inspect
import re
from typing import Any, Dict, List, Tuple

from data_foundation.config.project import ResourceDef
from data_foundation.config.yamlfile import YamlDocument
from data_foundation.errors import Problem, did_you_mean, join_hints

__all__ = ["bind_yaml_arguments", "check_arguments", "check_partition_arguments", "takes_keyword"]


def bind_yaml_arguments(resource: ResourceDef, signature: inspect.Signature,
                        partial: bool = False) -> inspect.BoundArguments:
    """The YAML's `arguments` and `keyword_arguments` bound to `signature` as dlt calls the entry: a transformer's
    first parameter is its parent's page (None here). `partial`: the parameters left to defaults and config may be
    missing. Raises `TypeError` when they do not fit."""
    spec = resource.spec
    arguments = [None, *spec.arguments] if spec.data_from else list(spec.arguments)
    bind = signature.bind_partial if partial else signature.bind
    return bind(*arguments, **spec.keyword_arguments)


def check_arguments(resource: ResourceDef, doc: YamlDocument) -> List[Problem]:
    """The problem of calling the entry with the YAML's arguments (`incremental` is dlt's to pass), if any."""
    try:
        signature = inspect.signature(resource.function)
    except (TypeError, ValueError):
        return []
    params = {n: p for n, p in signature.parameters.items() if n != "incremental"}
    try:
        bind_yaml_arguments(resource, signature.replace(parameters=list(params.values())))
    except TypeError as exc:
        key = _argument_key(resource.spec.keyword_arguments, str(exc))
        names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        suggestion = did_you_mean(key[1], names) if len(key) > 1 and key[1] not in params else ""
        path = ("resources", resource.name) + key
        return [Problem(resource.file, doc.line_of(path), ".".join(path),
                        f"arguments do not fit `{resource.target.function}{signature}`: {exc}",
                        join_hints(suggestion, "Pass the function's parameters under `arguments` (positional) "
                                               "and `keyword_arguments` (by name)."))]
    return []


def takes_keyword(resource: ResourceDef, name: str) -> bool:
    """Whether the entry accepts `name` as a keyword argument (a parameter of that name, or `**kwargs`)."""
    try:
        parameters = inspect.signature(resource.function).parameters
    except (TypeError, ValueError):
        return True  # no signature to read: let the call decide
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def check_partition_arguments(resource: ResourceDef, source: str, start: str, end: str,
                              doc: YamlDocument) -> List[Problem]:
    """A resource that loads data itself, in a partitioned source, must take the window (`start`, `end`): else every
    partition would load the same rows. A transformer gets the window only if it takes it."""
    missing = [name for name in (start, end) if not takes_keyword(resource, name)]
    if resource.spec.data_from or not missing:
        return []
    path = ("resources", resource.name, "entry")
    names = " and ".join(f"`{n}`" for n in missing)
    return [Problem(resource.file, doc.line_of(path), ".".join(path),
                    f"source `{source}` is partitioned, but `{resource.target.function}` does not take {names}: "
                    "each run passes the partition's window to every resource that loads data itself",
                    f"Add `{start}=None, {end}=None` parameters to `{resource.target.function}` and fetch only that "
                    f"window, or name its parameters in `start_argument`/`end_argument` under "
                    f"`sources.{source}.meta.dagster.partition`.")]


def _argument_key(keyword_arguments: Dict[str, Any], problem: str) -> Tuple[str, ...]:
    """The YAML key an argument mismatch is about: the keyword argument the error names, else `arguments`."""
    named = re.search(r"argument '(\w+)'", problem)
    if named and named.group(1) in keyword_arguments:
        return ("keyword_arguments", named.group(1))
    return ("arguments",)
