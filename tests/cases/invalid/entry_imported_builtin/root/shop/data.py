"""`from os import system` makes `data.system` resolve: the entry must still be refused."""

from os import system  # noqa: F401


def fetch_users():
    yield [{"id": 1}]
