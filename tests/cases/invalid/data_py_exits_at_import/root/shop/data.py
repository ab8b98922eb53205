"""A data.py that calls sys.exit() while being imported (line 5)."""

import sys

sys.exit("no credentials")


def fetch_users():
    yield [{"id": 1}]
