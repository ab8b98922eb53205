"""Fixture source `shop`: functions whose arguments and docstrings the loading tests inspect."""

from . import helpers


def fetch_items(kind, page_size=10):
    """Items of one kind, one page at a time.

    This second paragraph is not part of the description.
    """
    yield [{"id": i, "kind": kind, "name": f"{helpers.PREFIX} {i}"} for i in range(page_size)]


def fetch_orders(since, limit=None):
    """Orders booked on or after `since`."""
    yield [{"id": 1, "since": str(since), "limit": limit}]


def fetch_stock():
    yield [{"sku": "a", "count": 1}]
