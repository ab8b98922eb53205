"""The replica's CPU-bound mode: busy CPU per order served, one request at a time (the real service's worker)."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from jaffle_replica import JaffleReplica


def fetch(url: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def timed(url: str) -> float:
    started = time.perf_counter()
    fetch(url)
    return time.perf_counter() - started


def test_off_by_default():
    with JaffleReplica() as api:
        assert api.cpu_per_order_ms == 0
        assert fetch(api.url + "/_control/state")["cpu_per_order_ms"] == 0
        fetch(api.base_url + "/orders?page_size=200")  # warm up
        # 200 orders at the 1.3 ms the mode mimics would take 260 ms
        assert timed(api.base_url + "/orders?page_size=200") < 0.2


def test_costs_time_per_order_one_request_at_a_time():
    with JaffleReplica(cpu_per_order_ms=2) as api:
        fetch(api.base_url + "/stores")  # warm up (connection, dataset)
        assert timed(api.base_url + "/orders?page_size=50") >= 0.1  # 50 x 2 ms
        assert timed(api.base_url + "/orders?page_size=5") < 0.1  # per order, not per request
        assert timed(api.base_url + "/customers?page_size=200") < 0.1  # orders only
        order_id = fetch(api.base_url + "/orders?page_size=1")[0]["id"]
        api.cpu_per_order_ms = 150
        assert timed(f"{api.base_url}/orders/{order_id}") >= 0.15  # one order
        # a single worker: 4 concurrent requests of 25 orders queue, 4 x 25 x 2 ms = 200 ms in all
        api.cpu_per_order_ms = 2
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            pages = list(pool.map(fetch, [f"{api.base_url}/orders?page_size=25&page={n}" for n in range(1, 5)]))
        assert time.perf_counter() - started >= 0.2
        assert [len(page) for page in pages] == [25] * 4


def test_http_control():
    with JaffleReplica() as api:
        assert fetch(api.url + "/_control/cpu?per_order_ms=1.5", "POST") == {"cpu_per_order_ms": 1.5}
        assert api.cpu_per_order_ms == 1.5
        assert fetch(api.url + "/_control/state")["cpu_per_order_ms"] == 1.5
        assert fetch(api.url + "/_control/cpu?per_order_ms=0", "POST") == {"cpu_per_order_ms": 0}
        assert timed(api.base_url + "/orders?page_size=100") < 0.13
