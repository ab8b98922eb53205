"""Helpers shared by the benchmark scripts (run as `python bench/<script>.py`, so this folder is on sys.path)."""

from pathlib import Path
from typing import Dict


def memory_gb() -> float:
    """Total memory of the machine, from /proc/meminfo (0 where unreadable)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def dlt_steps(pipeline_name: str, pipelines_dir: Path) -> Dict[str, float]:
    """Seconds per dlt step from the trace a child process left in its pipelines dir (foundation keeps one folder per
    destination and dataset below $FOUNDATION_PIPELINES_DIR, a hand-written pipeline its own right there)."""
    import dlt

    found = sorted(Path(pipelines_dir).glob(f"**/{pipeline_name}/state.json"))
    folder = found[0].parent.parent if found else Path(pipelines_dir)
    try:
        trace = dlt.attach(pipeline_name=pipeline_name, pipelines_dir=str(folder)).last_trace
    except Exception:  # noqa: BLE001 - the breakdown is informative only
        return {}
    if trace is None:
        return {}
    return {s.step: (s.finished_at - s.started_at).total_seconds() for s in trace.steps
            if s.step in ("extract", "normalize", "load")}
