"""Live progress of a dlt run rendered with rich: dlt's `Collector` interface, drawn as rich progress bars."""

from typing import Any, Dict, Optional

from dlt.common.runtime.collector import Collector
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["RichCollector"]


class RichCollector(Collector):
    """Shows one bar per dlt counter (rows per table while extracting, files and jobs later)."""

    def __init__(self, console: Optional[Console] = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Optional[Progress] = None
        self._tasks: Dict[str, TaskID] = {}

    def update(self, name: str, inc: int = 1, total: int = None, inc_total: int = None, message: str = None,
               label: str = None) -> None:
        if self._progress is None:
            return
        key = f"{name}:{label}" if label else name
        if key not in self._tasks:
            description = f"{self.step} {name}" + (f" ({label})" if label else "")
            self._tasks[key] = self._progress.add_task(description, total=total)
        task = self._tasks[key]
        if inc_total:
            current = self._progress.tasks[self._tasks_index(task)].total or 0
            self._progress.update(task, total=current + inc_total)
        self._progress.advance(task, inc)

    def _tasks_index(self, task: TaskID) -> int:
        return next(i for i, t in enumerate(self._progress.tasks) if t.id == task)

    def _start(self, step: str) -> None:
        self._tasks = {}
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}"),
                                  TimeElapsedColumn(), console=self.console, transient=True,
                                  disable=not self.console.is_terminal)
        self._progress.start()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None

    def __getstate__(self) -> Dict[str, Any]:  # dlt may copy collectors into traces
        return {}
