"""The Jaffle Shop source end to end against the local replica: full load, incremental re-runs, types, faults."""

import datetime as dt
import decimal

import pytest

from conftest import late_counts, query, table_counts
from data_foundation.load.destinations import create_target
from data_foundation.load.reconcile import reconcile
from data_foundation.load.running import RunFailed, run_source

FULL = {"customers": 935, "orders": 61_948, "items": 90_900, "products": 10, "stores": 6, "supplies": 65}


def _order_pages(replica):
    return [q for _, path, q in replica.requests if path == "/api/v1/orders"]


def test_full_load_incremental_rerun_and_new_day(jaffle, jaffle_env, duckdb_file):
    target = create_target("duckdb", str(duckdb_file))

    first = run_source(jaffle, target)
    assert table_counts(duckdb_file, "jaffle_shop") == FULL == jaffle_env.row_counts()
    assert first.rows_loaded == FULL  # nothing read twice
    assert reconcile(jaffle, first.rows_total).ok
    # orders: the open-ended probe, then 7-day windows (`data_foundation.pages`), eight at a time
    orders = _order_pages(jaffle_env)
    assert orders[0] == {"page_size": "1000", "start_date": "2016-09-01"}
    windows = sorted({(q["start_date"], q["end_date"]) for q in orders if "end_date" in q})
    assert windows[:2] == [("2016-09-01", "2016-09-07"), ("2016-09-08", "2016-09-14")]
    assert query(duckdb_file, "SELECT MIN(ordered_at)::DATE, MAX(ordered_at)::DATE FROM jaffle_shop.orders") == [
        (dt.date(2016, 9, 1), dt.date(2017, 8, 31))]

    # nothing new: counts unchanged, only the last loaded day of orders is asked for again
    jaffle_env.clear_requests()
    second = run_source(jaffle, target)
    assert table_counts(duckdb_file, "jaffle_shop") == FULL
    pages = _order_pages(jaffle_env)
    assert 1 <= len(pages) <= 2
    assert all(p.get("start_date") == "2017-08-31" for p in pages)
    assert second.rows_loaded.get("orders", 0) == 0  # the re-fetched day was loaded before: dlt drops it
    assert jaffle_env.count_requests("/api/v1/items") == 0  # items come embedded in the orders

    # a new day: exactly its orders and items appear, nothing else changes
    added = jaffle_env.add_day()
    jaffle_env.clear_requests()
    run_source(jaffle, target)
    counts = table_counts(duckdb_file, "jaffle_shop")
    assert counts == {**FULL, "orders": FULL["orders"] + added["orders"], "items": FULL["items"] + added["items"]}
    assert counts == jaffle_env.row_counts()
    assert query(duckdb_file, "SELECT COUNT(*) FROM jaffle_shop.orders WHERE ordered_at::DATE = ?",
                 [dt.date.fromisoformat(added["date"])]) == [(added["orders"],)]
    assert query(duckdb_file, """SELECT COUNT(*) FROM jaffle_shop.items i JOIN jaffle_shop.orders o
                                 ON i.order_id = o.id WHERE o.ordered_at::DATE = ?""",
                 [dt.date.fromisoformat(added["date"])]) == [(added["items"],)]
    assert all(p.get("start_date") == "2017-08-31" for p in _order_pages(jaffle_env))
    for table, key in (("orders", "id"), ("items", "id"), ("customers", "id"), ("supplies", "id, sku")):
        assert query(duckdb_file, f"SELECT COUNT(*) - COUNT(DISTINCT ({key})) FROM jaffle_shop.{table}") == [(0,)]


def test_types_money_as_cents_and_timestamps_utc(late_jaffle, duckdb_file):
    """The types do not depend on how many orders load: the late source's month of them."""
    run_source(late_jaffle, create_target("duckdb", str(duckdb_file)),
               tables=["orders", "stores", "products", "supplies"])
    types = dict(((t, c), d) for t, c, d in query(duckdb_file, """
        SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'jaffle_shop'"""))
    assert types[("orders", "subtotal")] == types[("orders", "tax_paid")] == types[("orders", "order_total")] == "BIGINT"
    assert types[("products", "price")] == types[("supplies", "cost")] == "BIGINT"
    assert types[("stores", "tax_rate")] == "DECIMAL(10,4)"
    assert types[("orders", "ordered_at")] == types[("stores", "opened_at")] == "TIMESTAMP WITH TIME ZONE"
    assert types[("supplies", "perishable")] == "BOOLEAN"
    row = query(duckdb_file, """SELECT subtotal, tax_paid, order_total, ordered_at FROM jaffle_shop.orders
                                WHERE id = 'e6273b98-0975-411f-aa71-5f98a82dd908'""")[0]
    assert row[:3] == (600, 36, 636)
    assert row[3] == dt.datetime(2017, 8, 1, 12, 8, tzinfo=dt.timezone.utc)
    assert query(duckdb_file, "SELECT tax_rate FROM jaffle_shop.stores WHERE name = 'Philadelphia'") == [
        (decimal.Decimal("0.0600"),)]
    assert query(duckdb_file, "SELECT COUNT(*), COUNT(DISTINCT id) FROM jaffle_shop.supplies") == [(65, 29)]


def test_5xx_burst_429_and_dropped_connection_are_retried(late_jaffle, jaffle_env, duckdb_file):
    jaffle_env.inject_fault(status=503, count=3, path_prefix="/api/v1/orders")
    jaffle_env.inject_fault(status=429, count=1, retry_after=1, path_prefix="/api/v1/customers")
    jaffle_env.inject_fault(status=500, count=2, after=5, path_prefix="/api/v1/orders")
    jaffle_env.inject_fault(status=200, drop=True, count=1, after=10, path_prefix="/api/v1/orders")
    run_source(late_jaffle, create_target("duckdb", str(duckdb_file)))
    assert table_counts(duckdb_file, "jaffle_shop") == late_counts(jaffle_env)
    assert jaffle_env.faults == []  # every injected fault was hit


def test_retries_exhausted_fail_with_url_and_status(jaffle, jaffle_env, duckdb_file, monkeypatch):
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS", "2")
    jaffle_env.inject_fault(status=503, count=50, path_prefix="/api/v1/stores")
    with pytest.raises(RunFailed) as failure:
        run_source(jaffle, create_target("duckdb", str(duckdb_file)), tables=["stores"])
    message = str(failure.value)
    assert "jaffle_shop" in message and "503" in message and "/api/v1/stores" in message


def test_request_timeouts_are_retried(jaffle, jaffle_env, duckdb_file, monkeypatch):
    import threading

    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__REQUEST_TIMEOUT", "0.3")
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__BACKOFF_FACTOR", "0.5")
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS", "8")
    jaffle_env.latency_ms = 1500  # every request outlives the client's timeout ...
    threading.Timer(1.5, lambda: setattr(jaffle_env, "latency_ms", 0)).start()  # ... until the API recovers
    run_source(jaffle, create_target("duckdb", str(duckdb_file)), tables=["stores"])
    assert table_counts(duckdb_file, "jaffle_shop") == {"stores": 6}
    assert jaffle_env.count_requests("/api/v1/stores") >= 2  # the first attempt timed out and was retried
