"""Tests of the local Jaffle Shop API replica, against a real server on 127.0.0.1 (urllib)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from jaffle_replica import JaffleReplica, load_dataset

EXPECTED_COUNTS = {
    "customers": 935,
    "orders": 61948,
    "items": 90900,
    "products": 10,
    "stores": 6,
    "supplies": 65,
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def get(url: str):
    """(status, headers, parsed JSON body) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode()
        return err.code, err.headers, parsed


def post(url: str):
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def next_link(headers) -> str | None:
    link = headers.get("Link")
    if link is None:
        return None
    assert link.endswith('>; rel="next"'), link
    return link[1 : link.index(">")]


def walk(replica: JaffleReplica, path: str) -> tuple[list[dict], int]:
    """Follow ``Link`` headers from ``path``; returns (all rows, number of pages)."""
    rows: list[dict] = []
    pages = 0
    while path:
        assert pages < 10_000, "pagination does not end"
        status, headers, body = get(replica.url + path)
        assert status == 200
        rows.extend(body)
        pages += 1
        path = next_link(headers)
    return rows, pages


@pytest.fixture(scope="module")
def api():
    with JaffleReplica() as replica:
        yield replica


@pytest.fixture(scope="module")
def all_orders(api):
    orders, pages = walk(api, "/api/v1/orders?page_size=5000")
    assert pages == 13  # 12 full pages of 5000 + 1948
    return orders


# ---------------------------------------------------------------------------------------------
# dataset / counts / shapes
# ---------------------------------------------------------------------------------------------
def test_dataset_counts():
    ds = load_dataset(1)  # its load time (~1.3 s here) is a benchmark figure, not asserted
    assert ds.counts() == EXPECTED_COUNTS
    assert (ds.order_days[0], ds.order_days[-1]) == ("2016-09-01", "2017-08-31")
    assert len(ds.order_days) == 365
    assert load_dataset(1) is ds  # cached per process


def counts_of(body: list) -> dict:
    """`/row-counts` answers a list of `{table_name, row_count}`."""
    return {row["table_name"]: row["row_count"] for row in body}


def test_row_counts_root_ping(api):
    status, headers, body = get(api.base_url + "/row-counts")
    assert status == 200 and counts_of(body) == EXPECTED_COUNTS
    assert headers["Content-Type"] == "application/json"
    assert api.row_counts() == EXPECTED_COUNTS
    assert get(api.url + "/ping")[2] == {"message": "pong"}
    status, _, body = get(api.url + "/")
    assert status == 200 and isinstance(body["message"], str)
    status, _, body = get(api.url + "/nope")
    assert (status, body) == (404, {"detail": "Not Found"})
    status, _, body = get(api.base_url + "/widgets")
    assert (status, body) == (404, {"detail": "Not Found"})


def test_all_orders_items_and_dates(api, all_orders):
    assert len(all_orders) == 61948
    assert len({o["id"] for o in all_orders}) == 61948
    days = [o["ordered_at"][:10] for o in all_orders]
    assert days[0] == "2016-09-01" and days[-1] == "2017-08-31"
    assert days == sorted(days)  # served by day
    embedded = [it for o in all_orders for it in o["items"]]
    assert len(embedded) == 90900
    assert all(it["order_id"] == o["id"] for o in all_orders for it in o["items"])
    assert set(all_orders[0]) == {
        "id", "customer_id", "store_id", "ordered_at",
        "subtotal", "tax_paid", "order_total", "items",
    }
    assert all_orders[0]["ordered_at"] == "2016-09-01T15:01:00"
    # the items endpoint serves the same items
    items, pages = walk(api, "/api/v1/items?page_size=20000")
    assert pages == 5 and len(items) == 90900
    assert {i["id"] for i in items} == {i["id"] for i in embedded}
    assert set(items[0]) == {"id", "order_id", "sku"}


def test_money_strings_and_booleans(api, all_orders):
    first = all_orders[0]
    assert (first["subtotal"], first["tax_paid"], first["order_total"]) == ("700", "42", "742")
    money = ("subtotal", "tax_paid", "order_total")
    assert all(isinstance(o[k], str) and o[k].isdigit() for o in all_orders for k in money)
    _, _, products = get(api.base_url + "/products")
    assert len(products) == 10 and all(isinstance(p["price"], str) for p in products)
    assert {p["sku"]: p["price"] for p in products}["JAF-001"] == "1100"
    _, _, stores = get(api.base_url + "/stores")
    assert stores[0] == {
        "id": "4b6c2304-2b9e-41e4-942a-cf11a1819378",
        "name": "Philadelphia",
        "opened_at": "2016-09-01T00:00:00",
        "tax_rate": "0.06",
    }
    _, _, supplies = get(api.base_url + "/supplies")
    assert len(supplies) == 65
    assert supplies[0] == {
        "id": "SUP-001",
        "name": "compostable cutlery - knife",
        "cost": "7",
        "perishable": False,
        "sku": "JAF-001",
    }
    # as in raw_supplies.csv
    assert Counter(s["perishable"] for s in supplies) == Counter({False: 35, True: 30})


def test_single_objects(api, all_orders):
    order = all_orders[1234]
    assert get(f"{api.base_url}/orders/{order['id']}")[2] == order
    item = order["items"][0] if order["items"] else all_orders[0]["items"][0]
    assert get(f"{api.base_url}/items/{item['id']}")[2] == item
    assert get(api.base_url + "/customers/50a2d1c4-d788-4498-a6f7-dd75d4db588f")[2] == {
        "id": "50a2d1c4-d788-4498-a6f7-dd75d4db588f", "name": "Stephanie Love"
    }
    assert get(api.base_url + "/products/JAF-002")[2]["name"] == "doctor stew"
    store = get(api.base_url + "/stores/40e6ddd6-b8f6-4e17-8bd6-5e53966809d2")[2]
    assert store["name"] == "Brooklyn"
    for path in ("/orders/missing", "/customers/missing", "/products/NOPE"):
        status, _, body = get(api.base_url + path)
        assert (status, body) == (404, {"detail": "Not Found"})


# ---------------------------------------------------------------------------------------------
# pagination
# ---------------------------------------------------------------------------------------------
def test_link_header_format(api):
    _, headers, body = get(api.base_url + "/orders?page_size=100")
    assert len(body) == 100
    assert headers["Link"] == '</api/v1/orders?page_size=100&page=2>; rel="next"'
    _, headers, body = get(api.base_url + "/orders")
    assert len(body) == 100 and headers["Link"] == '</api/v1/orders?page=2>; rel="next"'
    query = "page=3&page_size=10&start_date=2017-01-01&end_date=2017-01-31"
    _, headers, _ = get(api.base_url + "/orders?" + query)
    assert headers["Link"] == (
        '</api/v1/orders?page=4&page_size=10&start_date=2017-01-01&end_date=2017-01-31>; rel="next"'
    )
    _, headers, _ = get(api.base_url + "/customers?page_size=50&page=2")
    assert headers["Link"] == '</api/v1/customers?page_size=50&page=3>; rel="next"'


def test_links_page_through_everything_once(api):
    customers, pages = walk(api, "/api/v1/customers?page_size=100")
    assert pages == 10 and len(customers) == 935
    ids = [c["id"] for c in customers]
    assert len(set(ids)) == 935
    _, headers, one_page = get(api.base_url + "/customers?page_size=1000")
    assert "Link" not in headers
    assert ids == [c["id"] for c in one_page]
    # the last page (35 rows) has no Link
    _, headers, last = get(api.base_url + "/customers?page_size=100&page=10")
    assert len(last) == 35 and "Link" not in headers
    # exact multiple: 6 stores with page_size=3 -> 2 pages, no Link on the 2nd
    stores, pages = walk(api, "/api/v1/stores?page_size=3")
    assert (len(stores), pages) == (6, 2)


def test_page_past_end_zero_size_and_errors(api):
    status, headers, body = get(api.base_url + "/customers?page_size=100&page=11")
    assert (status, body) == (200, []) and "Link" not in headers
    status, headers, body = get(api.base_url + "/orders?page=999999")
    assert (status, body) == (200, []) and "Link" not in headers
    # page_size=0: empty page WITH a next link (the real service's endless loop)
    status, headers, body = get(api.base_url + "/orders?page_size=0")
    assert (status, body) == (200, [])
    assert headers["Link"] == '</api/v1/orders?page_size=0&page=2>; rel="next"'
    # page < 1 -> 500
    for page in (0, -1):
        status, _, body = get(api.base_url + f"/orders?page={page}")
        assert status == 500 and body == "Internal Server Error"
    # non-integer -> FastAPI 422
    status, _, body = get(api.base_url + "/customers?page=abc")
    assert status == 422
    assert body["detail"][0]["loc"] == ["query", "page"]
    assert body["detail"][0]["type"] == "int_parsing"
    assert get(api.base_url + "/customers?page_size=1.5")[0] == 422


def test_date_filter_inclusive(api, all_orders):
    by_day = Counter(o["ordered_at"][:10] for o in all_orders)
    jan = sum(n for d, n in by_day.items() if "2017-01-01" <= d <= "2017-01-31")
    rows, _ = walk(api, "/api/v1/orders?start_date=2017-01-01&end_date=2017-01-31&page_size=1000")
    assert len(rows) == jan > 0
    assert min(o["ordered_at"] for o in rows)[:10] == "2017-01-01"
    assert max(o["ordered_at"] for o in rows)[:10] == "2017-01-31"
    # a single day, both bounds inclusive
    query = "start_date=2017-03-15&end_date=2017-03-15&page_size=1000"
    _, _, one_day = get(api.base_url + "/orders?" + query)
    assert len(one_day) == by_day["2017-03-15"] > 0
    assert {o["ordered_at"][:10] for o in one_day} == {"2017-03-15"}
    # datetimes: only the date part counts
    query = "start_date=2017-03-15T23:59:59&end_date=2017-03-15T00:00:00&page_size=1000"
    _, _, same = get(api.base_url + "/orders?" + query)
    assert [o["id"] for o in same] == [o["id"] for o in one_day]
    # open-ended bounds
    _, headers, tail = get(api.base_url + "/orders?start_date=2017-08-31&page_size=1000")
    assert len(tail) == by_day["2017-08-31"] and "Link" not in headers
    _, _, head = get(api.base_url + "/orders?end_date=2016-09-01&page_size=1000")
    assert len(head) == by_day["2016-09-01"] == 56
    _, _, none = get(api.base_url + "/orders?start_date=2018-01-01")
    assert none == []


# ---------------------------------------------------------------------------------------------
# controls
# ---------------------------------------------------------------------------------------------
def test_add_day():
    with JaffleReplica() as api, JaffleReplica() as other:
        _, _, first_day = get(api.base_url + "/orders?end_date=2016-09-01&page_size=100")
        base_ids = {o["id"] for o in first_day}
        day = api.add_day()
        assert day == {"date": "2017-09-01", "orders": 56, "items": day["items"]}
        assert day["items"] > 0
        counts = counts_of(get(api.base_url + "/row-counts")[2])
        assert counts["orders"] == 61948 + 56 and counts["items"] == 90900 + day["items"]
        assert counts["customers"] == 935
        _, headers, new = get(api.base_url + "/orders?start_date=2017-09-01&page_size=100")
        assert len(new) == 56 and "Link" not in headers
        assert {o["ordered_at"][:10] for o in new} == {"2017-09-01"}
        assert not ({o["id"] for o in new} & base_ids)
        assert sum(len(o["items"]) for o in new) == day["items"]
        # the new day is at the end of the list; single lookups work
        _, _, last = get(api.base_url + f"/orders?page_size={61948 + 56 - 1}&page=2")
        assert last == [new[-1]]
        assert get(f"{api.base_url}/orders/{new[0]['id']}")[2] == new[0]
        assert get(f"{api.base_url}/items/{new[0]['items'][0]['id']}")[2] == new[0]["items"][0]
        # deterministic across replicas, the other replica is unaffected until it adds a day
        assert other.row_counts()["orders"] == 61948
        assert other.add_day() == day
        assert get(other.base_url + "/orders?start_date=2017-09-01&page_size=100")[2] == new
        # next day, explicit number of orders
        day2 = api.add_day(orders=10)
        assert (day2["date"], day2["orders"]) == ("2017-09-02", 10)
        assert api.row_counts()["items"] == counts["items"] + day2["items"]
        _, _, sep2 = get(api.base_url + "/orders?start_date=2017-09-02&end_date=2017-09-02")
        assert len(sep2) == 10
        assert [o["ordered_at"][11:] for o in sep2] == [o["ordered_at"][11:] for o in new[:10]]
    assert load_dataset(1).counts() == EXPECTED_COUNTS  # the cached dataset is untouched


def test_scale_2():
    with JaffleReplica(scale=2) as api:
        assert counts_of(get(api.base_url + "/row-counts")[2]) == {
            **EXPECTED_COUNTS, "customers": 1870, "orders": 123896, "items": 181800
        }
        orders, pages = walk(api, "/api/v1/orders?page_size=50000")
        assert pages == 3 and len(orders) == 123896
        assert len({o["id"] for o in orders}) == 123896
        days = [o["ordered_at"][:10] for o in orders]
        assert days == sorted(days)
        items = [i for o in orders for i in o["items"]]
        assert len(items) == 181800 and len({i["id"] for i in items}) == 181800
        customers = get(api.base_url + "/customers?page_size=5000")[2]
        assert len(customers) == 1870 and len({c["id"] for c in customers}) == 1870
        assert {o["customer_id"] for o in orders} <= {c["id"] for c in customers}
        # copy 0 keeps the original ids
        assert orders[0]["id"] == "9bed808a-5074-4dfb-b1eb-388e2e60a6da"
        _, _, first_day = get(api.base_url + "/orders?end_date=2016-09-01&page_size=1000")
        assert len(first_day) == 112


def test_latency():
    with JaffleReplica(latency_ms=150) as api:
        t0 = time.perf_counter()
        assert get(api.base_url + "/stores")[0] == 200
        assert time.perf_counter() - t0 >= 0.15
        api.latency_ms = 0
        t0 = time.perf_counter()
        get(api.base_url + "/stores")
        assert time.perf_counter() - t0 < 0.15
        assert post(api.url + "/_control/latency?ms=200") == (200, {"latency_ms": 200})
        assert api.latency_ms == 200
        t0 = time.perf_counter()
        get(api.url + "/ping")
        assert time.perf_counter() - t0 >= 0.2


def test_fault_503_count_and_after():
    with JaffleReplica() as api:
        api.inject_fault(status=503, count=2)
        assert [get(api.base_url + "/stores")[0] for _ in range(3)] == [503, 503, 200]
        api.inject_fault(status=500, count=1, after=2, path_prefix="/api/v1/orders")
        paths = ("/orders", "/customers", "/orders", "/orders", "/orders")
        results = [get(api.base_url + p)[0] for p in paths]
        assert results == [200, 200, 200, 500, 200]
        # queued faults are consumed in order
        api.inject_fault(status=503)
        api.inject_fault(status=502)
        assert [get(api.base_url + "/stores")[0] for _ in range(3)] == [503, 502, 200]
        api.inject_fault(status=503, count=5)
        api.clear_faults()
        assert get(api.base_url + "/stores")[0] == 200
        api.inject_fault(status=503)
        assert get(api.url + "/ping")[0] == 200  # the default prefix /api/v1/ does not match /ping
        assert get(api.base_url + "/stores")[0] == 503


def test_fault_429_retry_after():
    with JaffleReplica() as api:
        api.inject_fault(status=429, retry_after=1)
        status, headers, body = get(api.base_url + "/customers")
        assert (status, headers["Retry-After"], body) == (429, "1", {"detail": "Too Many Requests"})
        status, headers, body = get(api.base_url + "/customers")
        assert status == 200 and len(body) == 100


def test_fault_drop_mid_body():
    with JaffleReplica() as api:
        api.inject_fault(drop=True, path_prefix="/api/v1/orders")
        full = get(api.base_url + "/customers")  # not matching: fine
        assert full[0] == 200
        with pytest.raises(http.client.IncompleteRead) as info:
            with urllib.request.urlopen(api.base_url + "/orders?page_size=500", timeout=10) as resp:
                assert resp.status == 200
                resp.read()
        assert info.value.expected > 0 and len(info.value.partial) > 1000
        assert len(get(api.base_url + "/orders?page_size=500")[2]) == 500  # one-shot


def test_request_log_and_http_controls():
    with JaffleReplica() as api:
        get(api.base_url + "/orders?page_size=5&start_date=2017-01-01")
        get(api.base_url + "/customers")
        get(api.url + "/ping")
        assert api.requests == [
            ("GET", "/api/v1/orders", {"page_size": "5", "start_date": "2017-01-01"}),
            ("GET", "/api/v1/customers", {}),
            ("GET", "/ping", {}),
        ]
        assert api.count_requests("/api/v1/orders") == 1
        assert api.count_requests("/api/v1/") == 2
        status, logged = get(api.url + "/_control/requests")[::2]
        assert status == 200 and logged[0] == {
            "method": "GET",
            "path": "/api/v1/orders",
            "query": {"page_size": "5", "start_date": "2017-01-01"},
        }
        assert len(logged) == 3  # control requests are not logged

        status, body = post(
            api.url
            + "/_control/fault?status=503&count=2&after=1&path_prefix=/api/v1/orders&retry_after=3"
        )
        assert status == 200
        assert (body["queued"]["status"], body["queued"]["retry_after"]) == (503, "3")
        codes = []
        for _ in range(4):
            s, h, _ = get(api.base_url + "/orders?page_size=1")
            codes.append((s, h.get("Retry-After")))
        assert codes == [(200, None), (503, "3"), (503, "3"), (200, None)]
        post(api.url + "/_control/fault?status=503&count=9")
        assert post(api.url + "/_control/reset") == (200, {"reset": True})
        assert api.requests == [] and api.faults == []
        assert get(api.base_url + "/stores")[0] == 200

        post(api.url + "/_control/fault?drop=1&path_prefix=/api/v1/customers")
        with pytest.raises(http.client.IncompleteRead):
            with urllib.request.urlopen(api.base_url + "/customers", timeout=10) as resp:
                resp.read()

        added = {"date": "2017-09-01", "orders": 56, "items": 72}
        assert post(api.url + "/_control/add_day") == (200, added)
        assert post(api.url + "/_control/add_day?orders=3")[1]["orders"] == 3
        assert counts_of(get(api.base_url + "/row-counts")[2])["orders"] == 61948 + 56 + 3
        state = get(api.url + "/_control/state")[2]
        assert state["last_day"] == "2017-09-02" and state["row_counts"]["orders"] == 61948 + 59
        assert get(api.url + "/_control/nope")[0] == 404
        assert get(api.url + "/_control/reset")[0] == 405


def test_keep_alive_and_stop():
    api = JaffleReplica().start()
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    for page in (1, 2, 3):
        conn.request("GET", f"/api/v1/customers?page={page}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(body)
        assert len(json.loads(body)) == 100
    port = api.port
    api.stop()
    with pytest.raises(OSError):
        conn.request("GET", "/api/v1/customers")
        conn.getresponse().read()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
