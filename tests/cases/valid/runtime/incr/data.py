"""Fixture source `incr`: an incremental resource that records the start value it was given.

`RUNTIME_CASE_EVENTS` (default 10) is how many events the API "has"; it always returns all of them.
"""

import os


def events(incremental=None):
    total = int(os.environ.get("RUNTIME_CASE_EVENTS", "10"))
    start = incremental.start_value if incremental is not None else None
    yield [{"seq": i, "seen_start": start} for i in range(1, total + 1)]
