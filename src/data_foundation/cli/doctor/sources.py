"""The sources root (`foundation validate`) and, per source, the settings its entry functions take from dlt."""

from pathlib import Path
from typing import Any, Dict, List, Tuple

from dlt.common.configuration.exceptions import ConfigurationException

from data_foundation.cli.doctor.check import FAIL, OK, Check
from data_foundation.cli.doctor.settings import Setting, entry_settings, setting_env
from data_foundation.cli.render import describe

__all__ = ["root_check", "settings_check"]


def root_check(root: Path) -> Tuple[Check, Any]:
    """The ✓/✗ line and the `Project` (None when the root cannot be read at all; partial when it has problems)."""
    from data_foundation.config.loading import validate_root

    try:
        project, errors = validate_root(root)
    except Exception as exc:
        return Check("sources root", FAIL, f"{root}: {describe(exc)}", error=exc,
                     fixes=["run `foundation --debug validate` for the traceback"]), None
    if errors:
        fixes = ["run `foundation validate` to see every problem with its hint"]
        return Check("sources root", FAIL, f"{root}: {len(errors)} problem(s)", notes=[str(e) for e in errors[:10]],
                     fixes=fixes), project
    warnings = f", {len(project.warnings)} warning(s)" if project.warnings else ""
    return Check("sources root", OK, f"{root}: {len(project.sources)} source(s), {len(project.resources)} "
                                     f"resource(s) valid{warnings}"), project


def settings_check(source: Any) -> Check:
    """`config <source>`: each setting set (and where), left to its default, or missing (✗, with the env var)."""
    name = f"config {source.name}"
    outcomes: Dict[str, Dict[str, List[str]]] = {}  # key -> what the line says -> the tables it says it for
    missing: Dict[str, Setting] = {}
    refused: List[str] = []
    partition = source.dagster.partition
    window = (partition.start_argument, partition.end_argument) if partition else ()
    for resource in source.resources:
        try:
            settings = entry_settings(resource, window)
        except ConfigurationException as exc:  # dlt would refuse the value at load time too
            refused.append(f"{resource.name} ({resource.spec.entry}): {describe(exc)}")
            continue
        for setting in settings:
            outcomes.setdefault(setting.key, {}).setdefault(_outcome(source.name, setting), []).append(resource.table)
            if setting.required and not setting.found:
                missing.setdefault(setting.key, setting)
    notes = _notes(source.name, outcomes)
    if missing or refused:
        fixes = [_fix(source.name, setting) for setting in missing.values()]
        fixes += ["fix the value dlt refuses: in the env var, .dlt/config.toml or .dlt/secrets.toml"] if refused else []
        problems = [f"{len(missing)} required setting(s) missing"] if missing else []
        problems += [f"{len(refused)} resource(s) with a value dlt refuses"] if refused else []
        return Check(name, FAIL, ", ".join(problems), notes=notes + refused, fixes=fixes)
    if not outcomes:
        return Check(name, OK, "reads no `sources.*` settings")
    return Check(name, OK, f"{len(outcomes)} setting(s) read", notes=notes)


def _outcome(source: str, setting: Setting) -> str:
    if setting.found:
        return f"set ({setting.found})"
    if setting.required:
        return "MISSING (required: no default in data.py)"
    return f"not set, the source's default applies (env {setting_env(source, setting.key)} to override)"


def _notes(source: str, outcomes: Dict[str, Dict[str, List[str]]]) -> List[str]:
    """`sources.<source>.<key>: ...`, naming the tables when the source's resources differ for that key."""
    notes = []
    for key in sorted(outcomes):
        for outcome, tables in outcomes[key].items():
            which = f" ({', '.join(tables)})" if len(outcomes[key]) > 1 else ""
            notes.append(f"sources.{source}.{key}{which}: {outcome}")
    return notes


def _fix(source: str, setting: Setting) -> str:
    where = ".dlt/secrets.toml" if setting.secret else ".dlt/config.toml"
    return (f"set {setting_env(source, setting.key)}, or `{setting.key} = ...` under [sources.{source}] in "
            f"{where}")
