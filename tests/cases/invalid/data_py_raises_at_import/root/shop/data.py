"""A data.py that raises while being imported (line 6)."""

import os

if "SHOP_BASE_URL" not in os.environ:
    raise RuntimeError("SHOP_BASE_URL is not set")


def fetch_users():
    yield [{"id": 1}]
