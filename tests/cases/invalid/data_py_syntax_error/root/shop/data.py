"""A data.py with a syntax error on line 5."""


def fetch_users():
    yield [{"id": 1}
