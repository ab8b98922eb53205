"""A data.py importing a package that is not installed (line 3)."""

import requestz


def fetch_users():
    yield requestz.get("https://example.com/users").json()
