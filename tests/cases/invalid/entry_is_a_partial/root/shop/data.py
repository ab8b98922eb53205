"""`functools.partial` objects are callable, but an entry must be a function."""

import functools


def fetch_users(page_size):
    yield [{"id": i} for i in range(page_size)]


fetch_five = functools.partial(fetch_users, 5)
