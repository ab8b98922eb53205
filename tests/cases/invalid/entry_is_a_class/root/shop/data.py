"""A class defined in data.py is callable, but an entry must be a function."""


class Users:
    def __init__(self, page_size=10):
        self.page_size = page_size

    def __iter__(self):
        yield [{"id": i} for i in range(self.page_size)]
