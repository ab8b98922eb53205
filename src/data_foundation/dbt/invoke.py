"""Running dbt for a target (`foundation dbt ...`) and preparing the manifest Dagster reads.

dbt runs as its own process, as dagster-dbt runs it, with `environment.dbt_environment` on top of ours."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import orjson

from data_foundation.dbt.settings import DbtError, DbtSettings

__all__ = ["dbt_executable", "run_dbt", "prepare_manifest", "manifest_is_stale"]

# what a manifest is parsed from, besides dbt_project.yml: these folders (dbt's defaults)
_PROJECT_PATHS = {"model-paths": ["models"], "macro-paths": ["macros"], "test-paths": ["tests"],
                  "seed-paths": ["seeds"], "snapshot-paths": ["snapshots"], "analysis-paths": ["analyses"]}
_PACKAGE_FILES = ("packages.yml", "dependencies.yml")


def dbt_executable() -> str:
    """The `dbt` of this Python environment (a virtualenv's bin is often not on PATH), else `dbt` on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.is_file() else "dbt"


def run_dbt(args: Sequence[str], settings: DbtSettings, env: Dict[str, str], capture: bool = False,
            timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """`dbt <args>` in the project directory with `env` added to ours; dbt's own output, exit code and all."""
    command = [dbt_executable(), *args]
    try:
        return subprocess.run(command, cwd=settings.project_dir, env={**os.environ, **env}, timeout=timeout,
                              capture_output=capture, text=True)
    except FileNotFoundError:
        raise DbtError("dbt is not installed in this environment: pip install 'data-foundation' brings dbt-core and "
                       "dbt-duckdb (`make install`).") from None


def manifest_is_stale(settings: DbtSettings) -> bool:
    """True when `target/manifest.json` is missing or older than a file it is parsed from, or than a folder of the
    project's paths: a model renamed or deleted changes its folder, not any file."""
    try:
        built = settings.manifest_path.stat().st_mtime
    except FileNotFoundError:
        return True
    return any(path.stat().st_mtime > built for path in _sources_of(settings))


def prepare_manifest(settings: DbtSettings, env: Dict[str, str], force: bool = False) -> Path:
    """`dbt parse` (after `dbt deps` when the project has packages), when the manifest is stale (or `force`): what
    `make` runs, and what Dagster's definitions do only when someone changed the project since (never on every
    load)."""
    if force or manifest_is_stale(settings):
        if any((settings.project_dir / name).is_file() for name in _PACKAGE_FILES):  # as dagster-dbt prepares
            done = run_dbt(["deps", "--quiet", "--no-use-colors"], settings, env, capture=True)
            if done.returncode != 0:
                raise DbtError(f"dbt deps failed in {settings.project_dir}: {_last_lines(done.stdout + done.stderr)}")
        done = run_dbt(["parse", "--quiet", "--no-use-colors"], settings, env, capture=True)
        if done.returncode != 0 or not settings.manifest_path.is_file():
            raise DbtError(f"dbt parse failed in {settings.project_dir}: {_last_lines(done.stdout + done.stderr)}")
        settings.manifest_path.touch()  # dbt keeps the file's time when nothing changed
    return settings.manifest_path


def read_manifest(path: Path, attempts: int = 20, pause: float = 0.25) -> Any:
    """The manifest at `path`, parsed. dbt rewrites `target/manifest.json` in place on every command (a `foundation
    dbt build` beside a Dagster run's process loading its definitions), so a reader can meet it half written: such a
    read is tried again, up to `attempts` times `pause` seconds apart, and the last error raised."""
    for attempt in range(attempts):
        try:
            return orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause)


def _sources_of(settings: DbtSettings) -> List[Path]:
    """dbt_project.yml, the package files, and every folder and file under the project's paths."""
    paths = [settings.project_dir / "dbt_project.yml", *(settings.project_dir / name for name in _PACKAGE_FILES)]
    for folder in _project_folders(settings):
        for parent, _, files in os.walk(folder):
            paths.append(Path(parent))
            paths.extend(Path(parent) / name for name in files)
    return [p for p in paths if p.exists()]


def _project_folders(settings: DbtSettings) -> List[Path]:
    """The folders dbt parses, as dbt_project.yml sets them (`model-paths: [...]`), else dbt's defaults."""
    config = settings.project_config()
    folders = []
    for key, default in _PROJECT_PATHS.items():
        value = config.get(key)
        names = value if isinstance(value, list) and all(isinstance(v, str) for v in value) else default
        folders.extend(settings.project_dir / name for name in names)
    return folders


def _last_lines(output: str, count: int = 8) -> str:
    """dbt's last lines, without its `HH:MM:SS` prefixes."""
    lines = [re.sub(r"^\d\d:\d\d:\d\d\s+", "", line) for line in output.splitlines() if line.strip()]
    lines = [line for line in lines if line.strip()]
    return "\n".join(lines[-count:]) or "no output"
