"""Fixture source `shapes`: every shape an entry may return, plus column hints and an upsert.

`RUNTIME_CASE_VERSION` (default 1) changes the values of `accounts`, so a test can load them twice.
"""

import os

import pyarrow as pa


def make_pages(pages, page_size=4):
    """A factory: returns the generator function that yields the pages."""

    def generate():
        for page in range(pages):
            yield [{"id": page * page_size + i, "page": page} for i in range(page_size)]

    return generate


def single_rows(count):
    """Yields one dict at a time, not pages."""
    for i in range(count):
        yield {"id": i, "square": i * i}


def one_row(value):
    """Returns (not yields) a single dict: one row, not one row per key."""
    return {"id": 1, "value": value}


def arrow_pages(pages=2, page_size=5):
    """Yields pyarrow tables."""
    for page in range(pages):
        ids = list(range(page * page_size, (page + 1) * page_size))
        yield pa.table({"id": ids, "label": [f"row {i}" for i in ids]})


def parents():
    yield [{"id": 1, "children": 2}, {"id": 2, "children": 3}]
    yield [{"id": 3, "children": 0}]


def children(page, suffix):
    """A transformer: receives each page of `parents`."""
    for parent in page:
        for n in range(parent["children"]):
            yield {"parent_id": parent["id"], "n": n, "name": f"{parent['id']}-{n}{suffix}"}


def typed_rows():
    yield [{"id": 1, "a": "700", "b": "-3", "c": "42", "untyped": "700"},
           {"id": 2, "a": "1", "b": "2", "c": "3", "untyped": "x"}]


def accounts():
    version = int(os.environ.get("RUNTIME_CASE_VERSION", "1"))
    yield [{"id": i, "balance": i * 10 * version, "version": version} for i in range(1, 6)]
