"""Shop source of an invalid-config test case."""


def fetch_users(total=10, page_size=5):
    """Users, one page at a time."""
    for start in range(0, total, page_size):
        yield [{"id": i, "name": f"user {i}"} for i in range(start, min(start + page_size, total))]


def fetch_orders(since="2024-01-01", page_size=5):
    """Orders booked on or after `since`."""
    yield [{"id": 1, "user_id": 1, "booked_on": since}]


def enrich_users(users):
    """Transformer: adds a flag to each user."""
    yield [dict(user, active=True) for user in users]
