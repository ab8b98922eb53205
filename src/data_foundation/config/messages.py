"""Turn pydantic's validation errors into one `Problem` per problem, with line, key path and a hint."""

from pathlib import Path
from typing import Any, Dict, List, Tuple, Type

from pydantic import BaseModel, ValidationError

from data_foundation.errors import Problem, did_you_mean, join_hints
from data_foundation.config.spec import SourcesFile
from data_foundation.config.yamlfile import YamlDocument

__all__ = ["pydantic_errors"]

REFERENCE = "See the sources.yaml reference in README.md."
# Hints for a wrong value, by the key it is under.
_HINTS = {
    "primary_key": "Use a column name or a list of column names, e.g. `id` or `[id, tenant_id]`.",
    "merge_key": "Use a column name or a list of column names, e.g. `id` or `[id, tenant_id]`.",
    "kinds": "Use a list of names, e.g. `[api]`, or the set form `kinds: {api}`.",
    "owners": "Use a list of names or e-mail addresses, e.g. `[data-platform@example.com]`.",
    "arguments": "Use a list of values, e.g. `[2024-01-01]`, or a single value.",
    "keyword_arguments": "Use a mapping of parameter names to values, e.g. `{page_size: 100}`.",
    "freshness_lower_bound_delta_seconds": "Use a whole number of seconds greater than 0, e.g. `108000` (30 hours).",
}
# Examples for required keys.
_EXAMPLES = {"entry": "data.fetch_users", "cursor_path": "updated_at", "disposition": "merge"}


def pydantic_errors(exc: ValidationError, file: Path, doc: YamlDocument, prefix: Tuple[Any, ...] = ()) -> List[Problem]:
    """One error per key path of the document; `prefix` is where the validated value sits in the document."""
    grouped: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        error["loc"] = tuple(prefix) + tuple(error["loc"]) + _validator_key(error)
        path = _document_path(error["loc"], doc)
        if error["type"] in ("missing", "extra_forbidden"):
            path = path + (error["loc"][-1],) if path[-1:] != (error["loc"][-1],) else path
        grouped.setdefault(path, []).append(error)
    for path in [p for p in grouped if _other_union_branch(p, grouped)]:
        del grouped[path]
    results = []
    for path, errors in grouped.items():
        message, hint = _describe(path, errors)
        line = doc.line_of(path) if errors[0]["type"] != "missing" else doc.line_of(path[:-1])
        results.append(Problem(file, line, ".".join(str(p) for p in path), message, hint))
    return results


def _document_path(loc: Tuple[Any, ...], doc: YamlDocument) -> Tuple[Any, ...]:
    """The part of pydantic's `loc` that names keys of the YAML document (drops union tags like `str`)."""
    path: Tuple[Any, ...] = ()
    for part in loc:
        if path + (part,) in doc.lines:
            path = path + (part,)
        elif not path or path in doc.lines:
            continue
    return path


def _describe(path: Tuple[Any, ...], errors: List[Dict[str, Any]]) -> Tuple[str, str]:
    first = errors[0]
    kind, key = first["type"], str(path[-1]) if path else ""
    if kind == "extra_forbidden":
        allowed = sorted(_model_at(path[:-1]).model_fields)
        suggestion = did_you_mean(key, allowed)
        return f"unknown key `{key}`", join_hints(suggestion, f"Valid keys: {', '.join(allowed)}.")
    if kind == "missing":
        example = f", e.g. `{key}: {_EXAMPLES[key]}`" if key in _EXAMPLES else ""
        return f"`{key}` is required", f"Add `{key}:` here{example}."
    value = first.get("input")
    custom = [e for e in errors if e["type"] == "value_error"]
    if custom:
        hint = getattr(custom[0].get("ctx", {}).get("error"), "hint", "")
        return custom[0]["msg"].removeprefix("Value error, "), hint or "Fix the value as described."
    literals = [e for e in errors if e["type"] == "literal_error"]
    if literals:
        expected = literals[0]["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        choices = [c.strip() for c in expected.split(",")]
        suggestion = did_you_mean(str(value), choices)
        return (f"`{_show(value)}` is not valid. Valid values: {', '.join(choices)}.",
                suggestion or "Use one of the valid values.")
    expected = "; ".join(sorted({e["msg"] for e in errors}))
    return f"`{_show(value)}` is not valid: {expected}", _HINTS.get(key, REFERENCE)


def _other_union_branch(path: Tuple[Any, ...], grouped: Dict[Tuple[Any, ...], List[Dict[str, Any]]]) -> bool:
    """A mapping such as `write_disposition: {strategy: scd3}` also fails the union's string branch: that error is noise
    when the mapping's own keys have errors."""
    deeper = any(len(other) > len(path) and other[:len(path)] == path for other in grouped)
    return deeper and all(isinstance(e.get("input"), dict) and e["type"] in ("literal_error", "string_type")
                          for e in grouped[path])


def _validator_key(error: Dict[str, Any]) -> Tuple[Any, ...]:
    """A model validator's `SpecError(key=...)` names the field it is about: point there, not at the whole model."""
    key = getattr(error.get("ctx", {}).get("error"), "key", None)
    return (key,) if key else ()


def _model_at(path: Tuple[Any, ...]) -> Type[BaseModel]:
    """Walk the schema along `path` (skipping dict keys such as resource names) to the model that owns the key."""
    model: Type[BaseModel] = SourcesFile
    for part in path:
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        nested = _find_model(field.annotation)
        if nested is not None:
            model = nested
    return model


def _find_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
