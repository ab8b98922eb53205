"""Events per day, for partitioned-asset tests: one row per day in [start_date, end_date]."""

import datetime as dt


def fetch_events(start_date="2024-01-01", end_date="2024-01-03", per_day=1):
    """Events of the days in the window (both ends inclusive)."""
    day, last = dt.date.fromisoformat(start_date), dt.date.fromisoformat(end_date)
    while day <= last:
        yield [{"id": f"{day}-{i}", "day": day.isoformat(), "n": i} for i in range(per_day)]
        day += dt.timedelta(days=1)
