"""Fixture source `failing`: one resource raises mid-run, one yields nothing."""


def broken():
    yield [{"id": 1}]
    raise RuntimeError("upstream said no: HTTP 503")


def nothing():
    yield from ()
