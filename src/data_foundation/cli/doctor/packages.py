"""Python and the installed core packages against the project's ranges (pyproject.toml, else the package metadata)."""

import importlib.metadata
import platform
import re
import sys
import tomllib
from pathlib import Path
from typing import Dict, List, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from data_foundation.cli.doctor.check import FAIL, OK, Check

__all__ = ["CORE_PACKAGES", "PROJECT", "package_checks", "project_extras", "python_check"]

CORE_PACKAGES = ("dlt", "dagster", "dagster-dlt", "duckdb", "pyarrow", "dbt-core", "dbt-duckdb", "dagster-dbt")
PROJECT = "data-foundation"
# src/data_foundation/cli/doctor/packages.py -> the checkout's pyproject.toml
_PYPROJECT = Path(__file__).resolve().parents[4] / "pyproject.toml"


def python_check() -> Check:
    required, _ = _project_requirements()
    version = platform.python_version()
    specifier = SpecifierSet(required or ">=3.11")
    if specifier.contains(version):
        return Check("Python", OK, f"{version} ({sys.executable}), requires {specifier}")
    return Check("Python", FAIL, f"{version} does not satisfy {specifier}",
                 fixes=[f"use Python {specifier}: `make install` picks python3.13/3.12/3.11 from PATH"])


def package_checks() -> List[Check]:
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


def project_extras() -> List[str]:
    """The installed project's extras (`postgres`, `snowflake`, ...)."""
    try:
        return list(importlib.metadata.metadata(PROJECT).get_all("Provides-Extra") or [])
    except importlib.metadata.PackageNotFoundError:
        return []


def _project_requirements() -> Tuple[str, Dict[str, Requirement]]:
    """`requires-python` and the base dependencies (not extras), by normalized name."""
    requires_python, lines = _declared_requirements()
    requirements: Dict[str, Requirement] = {}
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None:
            requirements[_normalize(requirement.name)] = requirement
    return requires_python, requirements


def _declared_requirements() -> Tuple[str, List[str]]:
    """From pyproject.toml in a source checkout, else from the installed package's metadata."""
    try:
        project = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == PROJECT and project.get("dependencies"):
            return project.get("requires-python", ""), project["dependencies"]
    except (OSError, tomllib.TOMLDecodeError):
        pass
    try:
        meta = importlib.metadata.metadata(PROJECT)
        return meta.get("Requires-Python") or "", importlib.metadata.requires(PROJECT) or []
    except importlib.metadata.PackageNotFoundError:
        return "", []


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
