"""The child process of `import_probe`: import the modules it is sent, one by one, reporting on each.

Kept to what it needs (`entries` and `errors`; no pydantic, YAML or `subprocess`): it starts once per validation
that has modules to check.
"""

import faulthandler
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO

from data_foundation.config.entries import EntryError, EntryTarget, exec_module

__all__ = ["serve"]


def serve(header: dict, requests: IO[str]) -> None:
    """Import the module of each request line (`[root, folder, [module parts]]`) until the input ends: `started`,
    then `ok` or `error`, as JSON lines on what was stdout; the modules' own output goes to stderr. A module still
    importing after the timeout makes faulthandler dump where it is and end the process. Never returns."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which then stops this child
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    with open(os.devnull, "rb") as empty:
        os.dup2(empty.fileno(), 0)
    faulthandler.enable()  # a crash dumps the stack to stderr: the parent reads the line from it
    index = 0
    for request in iter(requests.readline, ""):
        root, folder, parts = json.loads(request)
        _send(channel, index, "started")
        faulthandler.dump_traceback_later(header["timeout"], exit=True)
        try:
            exec_module(EntryTarget(Path(root), folder, tuple(parts), ""))
            _send(channel, index, "ok")
        except EntryError as exc:
            _send(channel, index, "error", message=exc.message, hint=exc.hint, line=exc.line,
                  file=str(exc.file) if exc.file else None)
        except KeyboardInterrupt:  # raised by the module itself: the parent raises it, as an in-process import did
            _send(channel, index, "interrupted")
            break
        finally:
            faulthandler.cancel_dump_traceback_later()
        index += 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers or threads of the modules: the parent has what it needs


def _send(channel: IO[str], index: int, status: str, **fields) -> None:
    channel.write(json.dumps({"index": index, "status": status, **fields}) + "\n")
