"""An instance with `__call__` is callable, but an entry must be a function."""


class Fetcher:
    def __call__(self):
        yield [{"id": 1}]


fetch_users = Fetcher()
