"""A resource's `arguments` and `keyword_arguments` checked against its entry function's signature (part of phase 3):
a call that would fail with a `TypeError` at run time is a validation error."""

import inspect
import re
from typing import Any, Dict, List, Tuple

from data_foundation.config.project import ResourceDef
from data_foundation.config.yamlfile import YamlDocument
from data_foundation.errors import Problem, did_you_mean, join_hints

__all__ = ["check_arguments"]


def check_arguments(resource: ResourceDef, doc: YamlDocument) -> List[Problem]:
    """The problem of calling the entry with the YAML's arguments (`incremental` is dlt's to pass), if any."""
    try:
        signature = inspect.signature(resource.function)
    except (TypeError, ValueError):
        return []
    args = list(resource.spec.arguments)
    if resource.spec.data_from:
        args.insert(0, None)  # a transformer receives its parent's items first
    params = {n: p for n, p in signature.parameters.items() if n != "incremental"}
    try:
        signature.replace(parameters=list(params.values())).bind(*args, **resource.spec.keyword_arguments)
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


def _argument_key(keyword_arguments: Dict[str, Any], problem: str) -> Tuple[str, ...]:
    """The YAML key an argument mismatch is about: the keyword argument the error names, else `arguments`."""
    named = re.search(r"argument '(\w+)'", problem)
    if named and named.group(1) in keyword_arguments:
        return ("keyword_arguments", named.group(1))
    return ("arguments",)
