"""A persistent DAGSTER_HOME for `foundation dagster` and `foundation materialize`, with one concurrent run per
destination pool."""

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
    """Create `home` with its `dagster.yaml` and, the first time, the instance's storage: the webserver and the daemon
    that `dg dev` starts together would otherwise both create the SQLite databases and may collide."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    if not (home / "history" / "runs.db").exists():
        import dagster as dg  # seconds to import: only for a new home

        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)
            instance.all_instigator_state()
    return home
