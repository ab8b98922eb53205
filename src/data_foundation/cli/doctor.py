"""`foundation doctor`: a checklist of everything a load needs, each line with what to do when it fails.

Checks, in order: Python and the installed versions of the core packages against the project's ranges; the target;
the sources root; each source's settings (`sources.<name>.<key>` read by its data.py, and the keys it declares in a
module-level `REQUIRED_CONFIG` list); the destination's credentials (resolved through dlt's providers, naming the
env var of every missing field); that the destination is reachable; that the Dagster definitions load.

No value of a setting or secret is ever printed: details name keys and env vars only, and every message is passed
through `mask_secrets` plus a redaction of the secret values that were resolved.
"""

import importlib.metadata
import os
import platform
import re
import sys
import tempfile
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from rich.console import Console
from rich.markup import escape

from data_foundation.load.credentials import credentials_env, credentials_type, missing_fields, usually_needed
from data_foundation.errors import mask_secrets

__all__ = ["Check", "CORE_PACKAGES", "REQUIRED_CONFIG_ATTRIBUTE", "print_checklist", "run_checks"]

CORE_PACKAGES = ("dlt", "dagster", "dagster-dlt", "duckdb", "pyarrow")
# data.py may declare the dlt config keys its source cannot run without, e.g. ["sources.my_api.api_key"]
REQUIRED_CONFIG_ATTRIBUTE = "REQUIRED_CONFIG"
PROJECT = "data-foundation"

OK, FAIL, SKIP, INFO = "ok", "fail", "skip", "info"
_MARKS = {OK: "[green]✓[/]", FAIL: "[bold red]✗[/]", SKIP: "[dim]–[/]", INFO: "[blue]·[/]"}
# `sources.<source>.<key>` in a data.py, not preceded by a dot or a word (`dlt.sources.helpers.x` is an import)
_CONFIG_KEY = re.compile(r"(?<![\w.])sources\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")
_SECRET_ENV = re.compile(r"(?i)(password|secret|token|private_key|passphrase|api_key|webhook)")


@dataclass
class Check:
    """One line of the checklist: ✓/✗ with a short detail; notes and fixes are printed below it."""

    name: str
    status: str
    detail: str = ""
    notes: List[str] = field(default_factory=list)
    fixes: List[str] = field(default_factory=list)
    error: Optional[BaseException] = None
    trace: str = ""  # the error's traceback, secrets redacted: shown with --debug

    @property
    def failed(self) -> bool:
        return self.status == FAIL


class _Redactor:
    """Masks secret-looking values and every secret value known to this process (env vars, resolved credentials)."""

    def __init__(self) -> None:
        self.values: Set[str] = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 4}

    def add(self, value: Any) -> None:
        text = str(value) if value is not None else ""
        if len(text) >= 4:
            self.values.add(text)

    def __call__(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return mask_secrets(text)


def run_checks(root: Path, target_name: Optional[str] = None, duckdb_file: Optional[str] = None) -> List[Check]:
    """Every check, in checklist order. Never raises for a failing check: the failure is a ✗ line."""
    redact = _Redactor()
    checks: List[Check] = [_python_check()]
    checks.extend(_package_checks())
    target_check, target = _target_check(target_name, duckdb_file, redact)
    checks.append(target_check)
    root_check, project = _root_check(root, redact)
    checks.append(root_check)
    if project is not None:
        checks.extend(_guarded("source config", redact, _source_config_checks, project, redact))
    if target is None:
        checks.append(Check("destination credentials", SKIP, "skipped: the target does not resolve"))
        checks.append(Check("destination reachable", SKIP, "skipped: the target does not resolve"))
    else:
        try:
            with _scratch_pipeline(target) as pipeline:
                credentials = _guarded("destination credentials", redact, _credentials_check, target, redact)
                checks.append(credentials)
                checks.append(_guarded("destination reachable", redact, _reachable_check, target, pipeline, project,
                                       credentials.failed, redact))
        except Exception as exc:  # dlt could not even create a pipeline for the target
            checks.append(Check("destination credentials", FAIL, redact(_first_lines(exc)), error=exc))
    checks.append(_dagster_check(root, target, root_check.failed, redact))
    checks.append(_alerts_check())
    for check in checks:
        if check.error is not None:
            check.trace = redact("".join(traceback.format_exception(check.error)))
    return checks


def _guarded(name: str, redact: "_Redactor", check: Any, *args: Any) -> Any:
    """Run one check; an unexpected exception becomes a ✗ line instead of ending the checklist."""
    try:
        return check(*args)
    except Exception as exc:
        failed = Check(name, FAIL, f"unexpected error: {redact(_first_lines(exc))}", error=exc,
                       fixes=["run `foundation --debug doctor` for the traceback"])
        return [failed] if name == "source config" else failed


def print_checklist(console: Console, checks: List[Check], header: str = "", debug: bool = False,
                    err_console: Optional[Console] = None) -> bool:
    """Print the checklist; True when nothing failed."""
    if header:
        console.print(header, soft_wrap=True)
    for check in checks:
        detail = f": {escape(check.detail)}" if check.detail else ""
        style = "dim" if check.status == SKIP else ""
        name = f"[{style}]{escape(check.name)}[/]" if style else f"[bold]{escape(check.name)}[/]"
        console.print(f"{_MARKS[check.status]} {name}{detail}", soft_wrap=True)
        for note in check.notes:
            console.print(f"    [dim]{escape(note)}[/]", soft_wrap=True)
        for fix in check.fixes:
            console.print(f"    [yellow]→[/] {escape(fix)}", soft_wrap=True)
        if debug and check.trace and err_console is not None:
            err_console.print(f"[dim]{escape(check.trace)}[/]", soft_wrap=True)
    failed = [c for c in checks if c.failed]
    counted = [c for c in checks if c.status in (OK, FAIL)]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(counted)} checks failed.[/] Fix the ✗ lines and run "
                      "`foundation doctor` again.", soft_wrap=True)
    else:
        console.print(f"[green]All {len(counted)} checks passed.[/]", soft_wrap=True)
    return not failed


# --- Python and packages ----------------------------------------------------------------------------------------

def _project_requirements() -> Tuple[str, Dict[str, Requirement]]:
    """`requires-python` and the core dependencies: from pyproject.toml in a source checkout, else the installed
    package's metadata."""
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    requires_python, lines = "", []
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == PROJECT:
            requires_python, lines = project.get("requires-python", ""), project.get("dependencies", [])
    except (OSError, tomllib.TOMLDecodeError):
        pass
    if not lines:
        try:
            meta = importlib.metadata.metadata(PROJECT)
            requires_python = meta.get("Requires-Python") or ""
            lines = importlib.metadata.requires(PROJECT) or []
        except importlib.metadata.PackageNotFoundError:
            pass
    requirements: Dict[str, Requirement] = {}
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None:  # the base dependencies, not extras
            requirements[_normalize(requirement.name)] = requirement
    return requires_python, requirements


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python_check() -> Check:
    required, _ = _project_requirements()
    version = platform.python_version()
    specifier = SpecifierSet(required or ">=3.11")
    if specifier.contains(version):
        return Check("Python", OK, f"{version} ({sys.executable}), requires {specifier}")
    return Check("Python", FAIL, f"{version} does not satisfy {specifier}",
                 fixes=[f"use Python {specifier}: `make install` picks python3.13/3.12/3.11 from PATH"])


def _package_checks() -> List[Check]:
    _, requirements = _project_requirements()
    checks = []
    for name in CORE_PACKAGES:
        requirement = requirements.get(_normalize(name))
        wanted = str(requirement.specifier) if requirement and requirement.specifier else ""
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(name, FAIL, "not installed", fixes=["pip install -e . (or `make install`)"]))
            continue
        if requirement is not None and not requirement.specifier.contains(installed, prereleases=True):
            checks.append(Check(name, FAIL, f"{installed} installed, {PROJECT} needs {wanted}",
                                fixes=[f"pip install '{name}{wanted}' (or `make install`)"]))
        else:
            checks.append(Check(name, OK, f"{installed}" + (f" (needs {wanted})" if wanted else "")))
    return checks


# --- target, sources root and source settings -------------------------------------------------------------------

def _target_check(target_name: Optional[str], duckdb_file: Optional[str], redact: _Redactor):
    from data_foundation.load.destinations import resolve_target
    from data_foundation.load.targets import DEFAULT_TARGET

    name = target_name or os.environ.get("FOUNDATION_TARGET") or DEFAULT_TARGET
    try:
        target = resolve_target(name, duckdb_file)
    except Exception as exc:  # TargetError (bad foundation.toml, unknown name) or a destination that will not build
        return Check("target", FAIL, redact(_describe(exc)), error=exc,
                     fixes=["fix `[targets.<name>]` in foundation.toml, or pass --target dev|prod|<dlt destination>"]), None
    where = f", DuckDB file {target.duckdb_file.resolve()}" if target.duckdb_file else ""
    dataset = target.dataset_pattern()
    return Check("target", OK, f"`{name}` → {target.destination_name}{where}, datasets `{dataset}`"), target


def _root_check(root: Path, redact: _Redactor):
    from data_foundation.config.loading import validate_root

    try:
        project, errors = validate_root(root)
    except Exception as exc:
        return Check("sources root", FAIL, f"{root}: {redact(_describe(exc))}", error=exc,
                     fixes=["run `foundation --debug validate` for the traceback"]), None
    if errors:
        shown = [redact(str(e)) for e in errors[:10]]
        fixes = ["run `foundation validate` to see every problem with its hint"]
        return Check("sources root", FAIL, f"{root}: {len(errors)} problem(s)", notes=shown, fixes=fixes), project
    warnings = f", {len(project.warnings)} warning(s)" if project.warnings else ""
    return Check("sources root", OK, f"{root}: {len(project.sources)} source(s), {len(project.resources)} "
                                     f"resource(s) valid{warnings}"), project


def _source_config_checks(project, redact: _Redactor) -> List[Check]:
    import dlt
    from dlt.common.typing import AnyType

    providers = [p for p in dlt.config.config_providers if not p.is_empty]
    checks = []
    for source in project.sources.values():
        modules = _source_modules(source)
        required = _required_keys(source, modules)
        mentioned = _mentioned_keys(modules)
        notes, fixes = [], []
        for key in sorted(set(mentioned) | set(required)):
            *sections, name = key.split(".")
            env = "__".join(key.split(".")).upper()
            found = None
            for provider in providers:
                value, effective = provider.get_value(name, AnyType, None, *sections)
                if value is not None:
                    if _SECRET_ENV.search(name) or provider.name == "secrets.toml":
                        redact.add(value)
                    found = provider.name if provider.name != "Environment Variables" else f"env {effective}"
                    break
            if found:
                notes.append(f"{key}: set ({found})")
            elif key in required:
                notes.append(f"{key}: MISSING (required by {REQUIRED_CONFIG_ATTRIBUTE} in data.py)")
                fixes.append(f"set {env}, or `{name} = ...` under [{'.'.join(sections)}] in .dlt/secrets.toml")
            else:
                notes.append(f"{key}: not set, the source's default applies (env {env} to override)")
        if fixes:
            checks.append(Check(f"config {source.name}", FAIL, f"{len(fixes)} required setting(s) missing",
                                notes=notes, fixes=fixes))
        elif notes:
            checks.append(Check(f"config {source.name}", OK, f"{len(notes)} setting(s) read", notes=notes))
        else:
            checks.append(Check(f"config {source.name}", OK, "reads no `sources.*` settings"))
    return checks


def _source_modules(source) -> List[Any]:
    modules, seen = [], set()
    for resource in source.resources:
        name = resource.target.module_name
        if name not in seen and name in sys.modules:
            seen.add(name)
            modules.append(sys.modules[name])
    return modules


def _required_keys(source, modules: Iterable[Any]) -> List[str]:
    keys = []
    for module in modules:
        for key in getattr(module, REQUIRED_CONFIG_ATTRIBUTE, None) or []:
            key = str(key)
            keys.append(key if "." in key else f"sources.{source.name}.{key}")
    return keys


def _mentioned_keys(modules: Iterable[Any]) -> List[str]:
    keys = []
    for module in modules:
        try:
            text = Path(module.__file__).read_text(encoding="utf-8")
        except (OSError, TypeError):
            continue
        keys.extend(f"sources.{section}.{key}" for section, key in _CONFIG_KEY.findall(text))
    return keys


# --- destination ------------------------------------------------------------------------------------------------

class _scratch_pipeline:
    """A throwaway dlt pipeline (own temp working dir) for the target: dlt resolves destination config within an
    active pipeline, as during a run, and nothing is left behind in the real pipelines dir."""

    def __init__(self, target) -> None:
        self.target = target

    def __enter__(self):
        import dlt

        self.folder = tempfile.TemporaryDirectory(prefix="foundation-doctor-")
        return dlt.pipeline(pipeline_name="foundation_doctor", destination=self.target.destination,
                            dataset_name=self.target.dataset_name("foundation_doctor"), pipelines_dir=self.folder.name)

    def __exit__(self, *exc_info) -> None:
        self.folder.cleanup()


def _credentials_check(target, redact: _Redactor) -> Check:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.common.configuration.specs.base_configuration import BaseConfiguration, is_secret_hint
    from dlt.dataset.utils import get_destination_client_initial_config

    name = "destination credentials"
    destination = target.destination
    if target.duckdb_file is not None:
        return Check(name, OK, "DuckDB needs no credentials")
    dest = destination.destination_name
    kind = credentials_type(destination)
    try:
        config = destination.configuration(get_destination_client_initial_config(destination, "foundation_doctor"))
    except ConfigFieldMissingException as exc:
        missing, resolved = missing_fields(exc, ["destination", dest])
        fields = [env.rsplit("__", 1)[-1].lower() for env in missing]
        also = usually_needed(kind, fields, resolved)
        fixes = [_env_fix(env, kind) for env in missing]
        fixes += [_env_fix(credentials_env(dest, f), kind) for f in also]
        tables = ", ".join(dict.fromkeys(f"[{'.'.join(env.lower().split('__')[:-1])}]" for env in missing))
        fixes.append(f"or put them under {tables} in .dlt/secrets.toml (never in foundation.toml)")
        notes = [f"usually needed too: {', '.join(also)}"] if also else []
        return Check(name, FAIL, f"{dest}: missing {', '.join(fields)}", notes=notes, fixes=fixes, error=exc)
    except Exception as exc:  # e.g. dlt's ConfigurationValueError: "requires `username` and `password`"
        known = _fields_of(kind)
        named = [f for f in dict.fromkeys(re.findall(r"`(\w+)`", str(exc))) if f in known]
        fixes = [_env_fix(credentials_env(dest, f), kind) for f in named]
        fixes.append(f"or put them under [destination.{dest}.credentials] in .dlt/secrets.toml")
        return Check(name, FAIL, f"{dest}: {redact(_first_line(exc))}", fixes=fixes, error=exc)
    credentials = getattr(config, "credentials", None)
    shown = []
    if isinstance(credentials, BaseConfiguration):
        for key, hint in credentials.get_resolvable_fields().items():
            value = getattr(credentials, key, None)
            if is_secret_hint(hint) or _SECRET_ENV.search(key):
                redact.add(value)
            if value is not None and key in _SHOWN_FIELDS:
                shown.append(key)
    return Check(name, OK, f"{dest}: resolved" + (f" ({', '.join(shown)} set)" if shown else ""))


# credential fields whose presence (never their value) the ✓ line names
_SHOWN_FIELDS = ("host", "port", "database", "username", "password", "private_key", "private_key_path", "token",
                 "authenticator", "warehouse", "role", "project_id", "client_email", "server_hostname", "http_path")


def _fields_of(credentials_type) -> List[str]:
    try:
        return list(credentials_type().get_resolvable_fields())
    except Exception:
        return []


def _env_fix(env: str, credentials_type) -> str:
    if env.endswith("__PASSWORD") and "private_key" in _fields_of(credentials_type):
        base = env.removesuffix("PASSWORD")
        return (f"set {env} (password auth), or {base}PRIVATE_KEY (+ {base}PRIVATE_KEY_PASSPHRASE when the key "
                "is encrypted) for key-pair auth")
    return f"set {env}"


def _reachable_check(target, pipeline, project, credentials_failed: bool, redact: _Redactor) -> Check:
    name = "destination reachable"
    if target.duckdb_file is not None:
        return _duckdb_check(target, project, redact)
    if credentials_failed:
        return Check(name, SKIP, "skipped: the credentials do not resolve")
    from dlt.common.exceptions import MissingDependencyException

    started = time.monotonic()
    try:
        client = pipeline.destination_client()
        sql_client = getattr(client, "sql_client", None)
        if sql_client is None:
            return Check(name, INFO, f"{target.destination_name} is not a SQL destination: not checked")
        with sql_client as connection:
            connection.execute_sql("SELECT 1")
    except MissingDependencyException as exc:
        extra = target.destination_name
        return Check(name, FAIL, f"the {extra} driver is not installed", error=exc,
                     fixes=[f"pip install -e '.[{extra}]' in the checkout (or pip install '{PROJECT}[{extra}]')"
                            if extra in _project_extras() else f"pip install 'dlt[{extra}]'"])
    except Exception as exc:
        env = f"DESTINATION__{target.destination_name.upper()}__CREDENTIALS__*"
        return Check(name, FAIL, f"{target.destination_name}: {redact(_first_lines(exc))}", error=exc,
                     fixes=[f"check the host, port and network access, and the credentials ({env})"])
    return Check(name, OK, f"{target.destination_name}: connected, `SELECT 1` in {time.monotonic() - started:.1f} s")


def _duckdb_check(target, project, redact: _Redactor) -> Check:
    name = "destination reachable"
    path = target.duckdb_file.resolve()
    if project is not None:
        clashes = [s.name for s in project.sources.values() if target.dataset_name(s.dataset_name) == path.stem]
        if clashes:
            return Check(name, FAIL, f"DuckDB file {path.name} has the same name as dataset `{path.stem}`",
                         fixes=["choose another DuckDB file name (--duckdb-file or duckdb_file in foundation.toml)"])
    if not path.exists():
        folder = path.parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return Check(name, OK, f"DuckDB file {path} will be created on the first load")
        return Check(name, FAIL, f"cannot create DuckDB file {path}: folder {folder} is missing or not writable",
                     fixes=["create the folder, or point --duckdb-file / duckdb_file in foundation.toml elsewhere"])
    if not os.access(path, os.W_OK):
        return Check(name, FAIL, f"DuckDB file {path} is not writable", fixes=[f"chmod u+w {path}"])
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            connection.execute("SELECT 1").fetchall()
    except Exception as exc:
        return Check(name, FAIL, f"DuckDB file {path}: {redact(_first_line(exc))}", error=exc,
                     fixes=["another process (a load, Dagster) may hold the file: try again when it has finished"])
    return Check(name, OK, f"DuckDB file {path} opens")


def _project_extras() -> List[str]:
    try:
        return list(importlib.metadata.metadata(PROJECT).get_all("Provides-Extra") or [])
    except importlib.metadata.PackageNotFoundError:
        return []


# --- Dagster and alerts ----------------------------------------------------------------------------------------

def _dagster_check(root: Path, target, root_failed: bool, redact: _Redactor) -> Check:
    name = "Dagster definitions"
    if root_failed:
        return Check(name, SKIP, "skipped: fix the sources root first")
    if target is None:
        return Check(name, SKIP, "skipped: the target does not resolve")
    try:
        import dagster as dg

        from data_foundation.dagster.definitions import build_definitions

        defs = build_definitions(root, target)
        dg.Definitions.validate_loadable(defs)
        graph = defs.resolve_asset_graph()
        tables = len(graph.materializable_asset_keys)
        upstream = len(list(graph.get_all_asset_keys())) - tables
        sensors = ", ".join(s.name for s in defs.sensors or [])
        return Check(name, OK, f"{tables} asset(s) (+{upstream} upstream API asset(s)), "
                               f"{len(graph.asset_check_keys)} asset check(s), sensors: {sensors}")
    except Exception as exc:
        return Check(name, FAIL, redact(_first_lines(_describe(exc))), error=exc,
                     fixes=["run `foundation --debug doctor` or `dagster definitions validate -m "
                            "data_foundation.definitions` for the traceback"])


def _alerts_check() -> Check:
    from data_foundation.dagster.alerts import WEBHOOK_ENV

    if os.environ.get(WEBHOOK_ENV):
        return Check("failure alerts", OK, f"{WEBHOOK_ENV} is set: failed Dagster runs are posted")
    return Check("failure alerts", INFO, f"{WEBHOOK_ENV} not set: failed Dagster runs are not posted "
                                         "(set it where Dagster runs in production)")


# --- helpers ---------------------------------------------------------------------------------------------------

def _describe(exc: BaseException) -> str:
    from data_foundation.errors import FoundationError

    return str(exc) if isinstance(exc, FoundationError) else f"{type(exc).__name__}: {exc}"


def _first_line(exc: Any) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _first_lines(error: Any, limit: int = 3) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return " ".join(line.strip() for line in text.strip().splitlines()[:limit])
