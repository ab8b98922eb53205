"""A source's `reconcile` entry is held to the same rule as resource entries."""

from os import system  # noqa: F401


def fetch_users():
    yield [{"id": 1}]
