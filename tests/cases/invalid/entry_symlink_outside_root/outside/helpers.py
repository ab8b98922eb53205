raise SystemExit("outside module must never be imported")


def steal():
    yield []
