"""Import user modules in a child process first: a module that hangs or ends the process becomes a problem.

One child (`python -B`, same environment, working directory and `sys.path`; see `import_child`) imports the modules
one after the other as they are submitted, with the same module names as `entries` (so `from . import helpers`
works), and reports on a pipe, one JSON line each: `started`, then `ok` or `error` (the message, file and line of the
exception). A module still importing after the timeout, or one that ends the child (`os._exit`, a segfault), gets its
problem, with the line from faulthandler's dump when there is one, and a new child goes on with the modules after it.
"""

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Deque, Iterator, Optional, Tuple

from data_foundation.config.entries import EntryError, EntryTarget, is_inside
from data_foundation.errors import FoundationError, display_path

__all__ = ["DEFAULT_TIMEOUT", "TIMEOUT_ENV", "ImportCheck", "import_timeout"]

TIMEOUT_ENV = "FOUNDATION_IMPORT_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
_STARTUP = 10.0  # seconds a child may take to start (a busy machine); one that never does: modules imported in-process
_GRACE = 2.0  # after the timeout the child dumps where it hangs and exits itself; the parent kills it this much later
# The requests are read from a copy of stdin: the modules get an empty stdin, and cannot eat the requests.
_CHILD = ("import json, os, sys; requests = os.fdopen(os.dup(0), 'r'); header = json.loads(requests.readline()); "
          "sys.path[:] = header['path']; from data_foundation.config.import_child import serve; serve(header, requests)")
_DUMP = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')

Result = Tuple[EntryTarget, Optional[EntryError]]


def import_timeout() -> float:
    """Seconds one module may take to import: `$FOUNDATION_IMPORT_TIMEOUT`, default 30."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise FoundationError(f"{TIMEOUT_ENV}: `{raw}` is not a number of seconds greater than 0.\n"
                                  f"  hint: Set {TIMEOUT_ENV} to the seconds one data.py may take to import "
                                  f"(default {DEFAULT_TIMEOUT:g}), or unset it.")
    return value


class ImportCheck:
    """Modules submitted one by one (the child starts on the first at once); `results` yields, in the order submitted,
    `(target, None)` for a module that imported cleanly or `(target, EntryError)`. Where no child can start (a frozen
    application) or be served (Windows: no `select` on pipes), every module yields None: it is then imported
    in-process, as before."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._child: Optional[_Child] = None

    def submit(self, target: EntryTarget) -> None:
        if self._child is None:
            self._child = _Child(self.timeout)
        self._child.send(target)

    def results(self) -> Iterator[Result]:
        while self._child is not None:
            child = self._child
            child.end()
            done = yield from child.results()
            child.close()
            self._child = None
            if child.targets[done:]:  # it ended on a module: a new child for the ones after it
                self._child = _Child(self.timeout)
                for target in child.targets[done:]:
                    self._child.send(target)

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None


class _Child:
    """One child process. The pipes are non-blocking and served by the calling thread only (helper threads would
    take the GIL from the YAML parsing at every line): `send` never waits, `results` waits in `select`."""

    def __init__(self, timeout: float):
        self.timeout, self.targets, self.killed = timeout, [], False
        self.stderr = tempfile.TemporaryFile()  # the modules' output (stdout too) and faulthandler's dumps
        self.process: Optional[subprocess.Popen] = None
        path = [os.fspath(p) for p in sys.path if isinstance(p, (str, os.PathLike))]
        self._pending = bytearray(json.dumps({"path": path, "timeout": timeout}).encode() + b"\n")
        self._received = bytearray()
        self._messages: Deque[Tuple[bytes, float]] = deque()
        self._ending = self._ended_output = False
        if os.name == "nt":  # no `select` on pipes: modules are imported in-process, as before
            return
        try:
            self.process = subprocess.Popen([sys.executable, "-B", "-c", _CHILD], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=self.stderr)
        except OSError:  # no usable interpreter (a frozen application): in-process too
            return
        os.set_blocking(self.process.stdin.fileno(), False)
        os.set_blocking(self.process.stdout.fileno(), False)
        self._pump()

    def send(self, target: EntryTarget) -> None:
        self.targets.append(target)
        self._pending += json.dumps([str(target.root), target.folder, list(target.module_parts)]).encode() + b"\n"
        self._pump()

    def end(self) -> None:
        self._ending = True
        self._pump()

    def _pump(self) -> None:
        """Write what the pipe takes now, read what the child has said; never waits."""
        if self.process is None:
            return
        stdin = self.process.stdin
        if self._pending and not stdin.closed:
            try:
                del self._pending[:os.write(stdin.fileno(), self._pending)]
            except BlockingIOError:
                pass
            except OSError:  # the child ended: `results` says why
                self._pending.clear()
        if self._ending and not self._pending and not stdin.closed:
            try:
                stdin.close()  # the child's last request
            except OSError:
                pass
        while not self._ended_output:
            try:
                chunk = os.read(self.process.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                self._ended_output = True
                break
            self._received += chunk
            *lines, rest = self._received.split(b"\n")
            self._received[:] = rest
            now = time.monotonic()
            self._messages.extend((line, now) for line in lines)

    def _next(self, deadline: float) -> Tuple[Optional[bytes], float]:
        """The child's next line, or None when its output ended or the deadline passed (it is then killed)."""
        while not self._messages and not self._ended_output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                return None, time.monotonic()
            stdin = self.process.stdin
            writing = [stdin] if self._pending and not stdin.closed else []
            select.select([self.process.stdout], writing, [], remaining)
            self._pump()
        return self._messages.popleft() if self._messages else (None, time.monotonic())

    def results(self) -> Iterator[Result]:
        """Yield the results in order; return how many targets are settled (the last may be a failure)."""
        settled, current = 0, None
        deadline = time.monotonic() + max(self.timeout, _STARTUP)  # to start the next module (or the child)
        while self.process is not None and settled < len(self.targets):
            line, at = self._next(deadline)
            if line is None:  # the child ended, or was killed after the timeout
                if current is not None:
                    yield self.targets[current], self._ended(current)
                    return current + 1
                if settled:
                    return settled  # it ended between two modules: a new child goes on
                break
            try:
                message = json.loads(line)
                index, status = message["index"], message["status"]
            except (ValueError, KeyError, TypeError):
                continue  # not ours
            if status == "started":
                current, deadline = index, at + self.timeout + _GRACE
                continue
            if status == "interrupted":
                raise KeyboardInterrupt
            error = None
            if status == "error":
                file = message.get("file")
                error = EntryError(message["message"], message["hint"], Path(file) if file else None, message["line"])
            yield self.targets[index], error
            settled, current, deadline = index + 1, None, time.monotonic() + max(self.timeout, _STARTUP)
        if settled == len(self.targets):
            self._wait()
            return settled
        for target in self.targets:  # no child, or it never started a module: import in-process, as before
            yield target, None
        return len(self.targets)

    def _ended(self, index: int) -> EntryError:
        target = self.targets[index]
        self._wait()
        output = self._output()
        dump = max(output.rfind("Timeout ("), output.rfind("Fatal Python error:"))
        file, line = _dumped_frame(output[dump:], target.root) if dump >= 0 else (None, None)
        shown = display_path(target.module_file)
        if self.killed or (dump >= 0 and output.startswith("Timeout (", dump)):
            return EntryError(
                f"importing `{shown}` did not finish within {self.timeout:g} s",
                "Module-level code must not wait (network calls, sleeps, endless loops): move it into the entry "
                f"function. If the import is only slow, raise {TIMEOUT_ENV} (seconds, default {DEFAULT_TIMEOUT:g}).",
                file=file or target.module_file, line=line)
        code = self.process.returncode
        how = f"signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        return EntryError(
            f"importing `{shown}` ended the process ({how})",
            "Module-level code must not end the process (`os._exit`, a crash in a C extension): move it into the "
            "entry function; `python -X faulthandler` shows where a crash happens.",
            file=file or target.module_file, line=line)

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.killed = True
            self.process.kill()

    def _wait(self) -> None:
        """A child that is done exits by itself: give it a moment, then kill it."""
        try:
            self.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self._kill()

    def close(self) -> None:
        """Kill the child if it still runs (the parent was interrupted): no process is left behind."""
        if self.process is not None:
            self._kill()
            self.process.wait()
            for pipe in (self.process.stdin, self.process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        self.stderr.close()

    def _output(self) -> str:
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - 65536))
        return self.stderr.read().decode(errors="replace")


def _dumped_frame(dump: str, root: Path) -> Tuple[Optional[Path], Optional[int]]:
    """The innermost frame inside the sources root in a faulthandler dump (most recent call first)."""
    for match in _DUMP.finditer(dump):
        if is_inside(Path(match["file"]), root):
            return Path(match["file"]), int(match["line"])
    return None, None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
