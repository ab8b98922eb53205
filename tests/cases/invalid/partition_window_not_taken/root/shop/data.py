def fetch_orders(start_date=None, end_date=None):
    yield [{"id": 1, "day": start_date}]


def fetch_stock():
    yield [{"sku": "a", "count": 3}]
