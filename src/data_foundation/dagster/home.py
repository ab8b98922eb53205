"""A persistent DAGSTER_HOME for `foundation dagster`, with one concurrent run per destination pool."""

from pathlib import Path

__all__ = ["prepare_dagster_home"]

DAGSTER_YAML = """\
# Written by `foundation dagster`. Runs, schedules and sensor cursors persist here.
telemetry:
  enabled: false
concurrency:
  pools:
    granularity: op
    default_limit: 1  # one load per destination pool at a time (DuckDB has a single writer)
"""


def prepare_dagster_home(home: Path) -> Path:
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home
