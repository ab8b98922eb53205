"""Example source `my_api`: generated users and transactions, shaped like a paginated API.

Owner: data platform team. Used by the README, the tests and `foundation run --root examples`.
"""

import datetime as dt


def fetch_users(total=250, page_size=100):
    """Users of the example API, one page at a time."""
    for start in range(0, total, page_size):
        yield [{"id": i, "name": f"user {i}", "email": f"user{i}@example.com"}
               for i in range(start, min(start + page_size, total))]


def fetch_transactions(since, page_size=100, total=1000):
    """Transactions from `since` on, paginated; returns the generator function (a factory)."""
    since = dt.date.fromisoformat(str(since))

    def pages():
        for start in range(0, total, page_size):
            yield [{"id": i, "user_id": i % 250, "amount": round(i * 1.25, 2),
                    "booked_on": (since + dt.timedelta(days=i % 365)).isoformat()}
                   for i in range(start, min(start + page_size, total))]

    return pages
