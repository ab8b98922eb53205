"""`data_foundation.pages`: page-parallel extraction, against real HTTP servers (a tiny one here, and the replica).

Pages come out in order whatever order they finish in, at most `concurrency` requests are in flight (counted by the
server), a failed window yields exactly the windows before it and raises (and a failed load keeps the stored cursor),
retries go through the client's session, short/empty pages end the iteration, and orders added while a load runs are
neither lost nor loaded twice.
"""

import datetime as dt
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator
from requests import HTTPError

from conftest import LATE_START, late_counts, query, table_counts
from data_foundation.load.destinations import create_target
from data_foundation.load.running import RunFailed, create_pipeline, run_source
from data_foundation.pages import date_windows, fetch_in_order, paginate_date_windows, paginate_pages

Query = Dict[str, str]


# ---------------------------------------------------------------------------------------------------------------
# a tiny paginated API: /items (page numbers) and /events (start_date/end_date, whole days, inclusive)
# ---------------------------------------------------------------------------------------------------------------
class Api(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, items: int = 0, events: Optional[Dict[str, int]] = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rows = {
            "items": [{"id": i} for i in range(items)],
            "events": [{"id": f"{day}/{n}", "day": day} for day, count in sorted((events or {}).items())
                       for n in range(count)],
        }
        self.delay: Callable[[Query], float] = lambda q: 0.0
        self.fail: Callable[[Query], Optional[int]] = lambda q: None  # a status to answer instead of the page
        self.max_page_size: Optional[int] = None  # an API that caps the page size
        self.links = True  # send `Link: <...>; rel="next"` while more rows exist
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        # requests wait (up to 2 s) until this many were in flight at once: "the concurrency is reached" is then a
        # fact of the client, not of how busy the machine running the test is
        self.hold_until: Optional[int] = None
        self.reached = threading.Condition(self.lock)
        self.requests: List[Query] = []  # in arrival order
        self.finished: List[Query] = []  # in the order the answers were sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def client(self, max_attempts: int = 3) -> RESTClient:
        session = Client(request_timeout=5, request_max_attempts=max_attempts, request_backoff_factor=0.01,
                         raise_for_status=False, respect_retry_after_header=True).session
        return RESTClient(base_url=self.url, paginator=HeaderLinkPaginator(), session=session, data_selector="$")

    def answer(self, path: str, q: Query):
        status = self.fail(q)
        if status:
            return status, {"detail": "failed on purpose"}, {"retry-after": "0"} if status == 429 else {}
        rows = self.rows[path.strip("/")]
        if "start_date" in q:
            rows = [r for r in rows if r["day"] >= q["start_date"]]
        if "end_date" in q:
            rows = [r for r in rows if r["day"] <= q["end_date"]]
        page, size = int(q.get("page", 1)), int(q.get("page_size", 100))
        if self.max_page_size:
            size = min(size, self.max_page_size)
        headers = {}
        if page * size < len(rows) and self.links:
            headers["link"] = f'<{path}?{urlencode({**q, "page": page + 1})}>; rel="next"'
        return 200, rows[(page - 1) * size:page * size], headers


class _Handler(BaseHTTPRequestHandler):
    server: Api

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        api = self.server
        parts = urlsplit(self.path)
        q = dict(parse_qsl(parts.query))
        with api.lock:
            api.requests.append(q)
            api.in_flight += 1
            api.max_in_flight = max(api.max_in_flight, api.in_flight)
            api.reached.notify_all()
            if api.hold_until and len(api.requests) > 1:  # not the first: a client may wait for it alone
                api.reached.wait_for(lambda: api.max_in_flight >= api.hold_until, timeout=2)
        try:
            time.sleep(api.delay(q))
            status, body, headers = api.answer(parts.path, q)
        finally:
            with api.lock:  # before the answer is sent: the client's next request is counted after this one
                api.in_flight -= 1
                api.finished.append(q)
        raw = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def serve():
    servers: List[Api] = []

    def start(**kwargs: Any) -> Api:
        api = Api(**kwargs)
        threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(api)
        return api

    yield start
    for api in servers:
        api.shutdown()
        api.server_close()


def days(first: str, count: int, per_day: int = 3) -> Dict[str, int]:
    start = dt.date.fromisoformat(first)
    return {(start + dt.timedelta(days=n)).isoformat(): per_day for n in range(count)}


def page_of(q: Query) -> int:
    return int(q.get("page", 1))


def ids(pages) -> List[Any]:
    return [row["id"] for page in pages for row in page]


# ---------------------------------------------------------------------------------------------------------------
# order, bounded concurrency, stop conditions, retries
# ---------------------------------------------------------------------------------------------------------------
def test_pages_come_out_in_order_when_later_pages_answer_first(serve):
    api = serve(items=100)
    api.delay = lambda q: 0.03 * max(0, 10 - page_of(q))  # page 10 answers first, page 2 last
    pages = list(paginate_pages(api.client(), "items", page_size=10, concurrency=4))
    assert ids(pages) == list(range(100))
    finished = [page_of(q) for q in api.finished]
    assert finished[0] == 1  # the first page is asked for alone
    assert finished[1:] != sorted(finished[1:])  # ... the others really overlapped and finished out of order


def test_windows_come_out_in_date_order_when_later_windows_answer_first(serve):
    api = serve(events=days("2024-01-01", 60))
    api.delay = lambda q: 0.1 if q.get("start_date") == "2024-01-01" and "end_date" in q else 0.0
    client = api.client()
    pages = list(paginate_date_windows(client, "events", dt.date(2024, 1, 1), days=7, params={"page_size": 10}))
    assert ids(pages) == [row["id"] for row in api.rows["events"]]
    first_window = next(i for i, q in enumerate(api.finished) if q.get("end_date") == "2024-01-07")
    assert any("end_date" in q for q in api.finished[:first_window])  # later windows finished before the first


@pytest.mark.parametrize("concurrency", [1, 3, 6])
def test_requests_in_flight_never_exceed_the_concurrency(serve, concurrency):
    api = serve(items=400)
    api.delay = lambda q: 0.02
    api.hold_until = concurrency
    pages = list(paginate_pages(api.client(), "items", page_size=10, concurrency=concurrency))
    assert ids(pages) == list(range(400))
    assert api.max_in_flight == concurrency  # reached, never passed


def test_windows_in_flight_never_exceed_the_concurrency(serve):
    api = serve(events=days("2024-01-01", 90))
    api.delay = lambda q: 0.02
    api.hold_until = 3
    pages = list(paginate_date_windows(api.client(), "events", dt.date(2024, 1, 1), days=5,
                                       params={"page_size": 4}, concurrency=3))
    assert ids(pages) == [row["id"] for row in api.rows["events"]]
    assert api.max_in_flight == 3


@pytest.mark.parametrize("links", [True, False], ids=["with-links", "no-links"])
@pytest.mark.parametrize("rows, last_page", [(30, 3), (25, 3), (5, 1)])
def test_a_short_or_empty_page_or_no_next_link_is_the_last(serve, rows, last_page, links):
    api = serve(items=rows)
    api.links = links
    assert ids(paginate_pages(api.client(), "items", page_size=10, concurrency=4)) == list(range(rows))
    asked = [page_of(q) for q in api.requests]
    assert len(asked) == len(set(asked))
    if last_page == 1:
        assert asked == [1]  # one short page: one request
    else:
        # the pages up to the last one (without links: up to the empty page after a full last one), and at most
        # `concurrency` fetched ahead and dropped (a freed slot is refilled before the page is handed over)
        needed = last_page + (0 if links or rows % 10 else 1)
        assert set(range(1, needed + 1)) <= set(asked) <= set(range(1, needed + 5))


def test_a_count_bounds_the_pages_fetched_ahead(serve):
    api = serve(items=6)
    pages = list(paginate_pages(api.client(), "items", page_size=2, concurrency=4, total=lambda: 6))
    assert ids(pages) == list(range(6))
    assert sorted(page_of(q) for q in api.requests) == [1, 2, 3]  # not one page more
    api.rows["items"].extend({"id": i} for i in range(6, 11))  # the count is stale: 5 more rows since
    api.requests.clear()
    assert ids(paginate_pages(api.client(), "items", page_size=2, concurrency=4, total=lambda: 6)) == list(range(11))


def test_page_size_below_one_and_a_capped_page_size_are_refused(serve):
    api = serve(items=50)
    with pytest.raises(ValueError, match="page_size must be >= 1"):
        next(paginate_pages(api.client(), "items", page_size=0))
    assert api.requests == []  # never asked: the API answers page_size=0 with [] and a next link, forever
    api.max_page_size = 10
    with pytest.raises(ValueError, match="caps the page size"):
        list(paginate_pages(api.client(), "items", page_size=20))


def test_5xx_and_429_are_retried_by_the_clients_session(serve):
    api = serve(items=100)
    attempts: Dict[int, int] = {}

    def fail(q: Query) -> Optional[int]:
        page = page_of(q)
        attempts[page] = attempts.get(page, 0) + 1
        return {3: 503, 5: 429, 7: 500}.get(page) if attempts[page] <= (2 if page == 3 else 1) else None

    api.fail = fail
    assert ids(paginate_pages(api.client(max_attempts=3), "items", page_size=10, concurrency=4)) == list(range(100))
    assert attempts[3] == 3 and attempts[5] == 2 and attempts[7] == 2 and attempts[2] == 1


def test_fetch_in_order_stops_fetching_when_the_consumer_stops(serve):
    api = serve(items=1000)
    client = api.client()
    pages = fetch_in_order(lambda n: client.get("items", params={"page": n, "page_size": 1}).json(),
                           itertools.count(1), concurrency=3)
    assert [page[0]["id"] for page in itertools.islice(pages, 5)] == [0, 1, 2, 3, 4]
    pages.close()
    assert len(api.requests) <= 5 + 3  # endless keys, yet only what was yielded and the 3 fetched ahead


# ---------------------------------------------------------------------------------------------------------------
# failures: window k fails -> windows < k, then the error; the stored cursor does not move
# ---------------------------------------------------------------------------------------------------------------
def test_a_failed_window_yields_exactly_the_windows_before_it_then_raises(serve):
    api = serve(events=days("2024-01-01", 91))
    api.fail = lambda q: 500 if q.get("start_date") == "2024-01-29" and "end_date" in q else None  # window 5
    api.delay = lambda q: 0.1 if q.get("start_date", "") <= "2024-01-29" and "end_date" in q else 0.0
    got: List[List[Dict[str, Any]]] = []
    with pytest.raises(HTTPError, match="500") as failure:
        for page in paginate_date_windows(api.client(max_attempts=2), "events", dt.date(2024, 1, 1), days=7,
                                          params={"page_size": 5}, concurrency=4):
            got.append(page)
    assert "start_date=2024-01-29" in str(failure.value)
    assert ids(got) == [row["id"] for row in api.rows["events"] if row["day"] < "2024-01-29"]
    # windows after the failed one were read (faster, before it failed), none of their rows came out
    failed_at = max(i for i, q in enumerate(api.finished) if q.get("start_date") == "2024-01-29")
    assert any(q.get("start_date", "") > "2024-01-29" for q in api.finished[:failed_at])


def test_a_failed_page_yields_exactly_the_pages_before_it_then_raises(serve):
    api = serve(items=200)
    api.fail = lambda q: 503 if page_of(q) == 6 else None
    api.delay = lambda q: 0.05 if page_of(q) < 6 else 0.0
    got: List[List[Dict[str, Any]]] = []
    with pytest.raises(HTTPError, match="503"):
        for page in paginate_pages(api.client(max_attempts=2), "items", page_size=10, concurrency=4):
            got.append(page)
    assert ids(got) == list(range(50))


@pytest.mark.timeout(300)
def test_a_failed_orders_window_keeps_the_stored_cursor(late_jaffle, jaffle_env, duckdb_file, monkeypatch):
    jaffle = late_jaffle
    from dlt.common.versioned_state import decompress_state

    def cursor(state: dict) -> Optional[str]:
        return state["sources"]["jaffle_shop"]["resources"]["orders"]["incremental"]["ordered_at"]["last_value"]

    def stored_cursor() -> str:
        rows = query(duckdb_file, "SELECT state FROM jaffle_shop._dlt_pipeline_state ORDER BY version DESC LIMIT 1")
        return cursor(decompress_state(rows[0][0]))

    target = create_target("duckdb", str(duckdb_file))
    run_source(jaffle, target, tables=["orders"])
    loaded = late_counts(jaffle_env)["orders"]
    assert table_counts(duckdb_file, "jaffle_shop")["orders"] == loaded
    before = stored_cursor()
    assert before.startswith("2017-08-31")

    added = [jaffle_env.add_day() for _ in range(20)]  # 2017-09-01 .. 09-20: windows of 7 days from 08-31
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__PAGE_SIZE", "100")
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS", "1")
    jaffle_env.inject_fault(status=500, count=10_000, after=3, path_prefix="/api/v1/orders")  # probe + 2 pass
    jaffle_env.clear_requests()
    with pytest.raises(RunFailed, match="500"):
        run_source(jaffle, target, tables=["orders"])
    windows = {q.get("end_date") for _, p, q in jaffle_env.requests if p == "/api/v1/orders"} - {None}
    assert len(windows) >= 2  # it was reading windows when it failed
    assert stored_cursor() == before == cursor(create_pipeline(jaffle, target).state)
    assert table_counts(duckdb_file, "jaffle_shop")["orders"] == loaded

    jaffle_env.clear_faults()
    monkeypatch.delenv("SOURCES__JAFFLE_SHOP__MAX_ATTEMPTS")
    run_source(jaffle, target, tables=["orders"])
    assert table_counts(duckdb_file, "jaffle_shop")["orders"] == late_counts(jaffle_env)["orders"]
    assert stored_cursor().startswith(added[-1]["date"])


# ---------------------------------------------------------------------------------------------------------------
# data moving during the run
# ---------------------------------------------------------------------------------------------------------------
def _orders_from(replica, start: str) -> List[Dict[str, Any]]:
    """The replica's orders from day `start` on, as the API serves them now (sequentially)."""
    client = RESTClient(base_url=replica.base_url, paginator=HeaderLinkPaginator(), data_selector="$")
    return [order for page in client.paginate("orders", params={"start_date": start, "page_size": 1000})
            for order in page]


def test_windows_lose_and_repeat_nothing_while_days_are_added(replica):
    """Days are added while the windows are read (one every other page, 30 in all, some landing in windows already
    read): every order is read once, and what was read is everything up to the last day read."""
    client = RESTClient(base_url=replica.base_url, paginator=HeaderLinkPaginator(), data_selector="$")
    got: List[Dict[str, Any]] = []
    pages = 0
    for page in paginate_date_windows(client, "orders", dt.date(2017, 7, 1), days=3, params={"page_size": 200},
                                      concurrency=4):
        got.extend(page)
        pages += 1
        if pages % 2 == 0 and len(replica.state.order_days) < 365 + 30:
            replica.add_day()
    read = [order["id"] for order in got]
    assert len(read) == len(set(read))
    last_day = max(order["ordered_at"][:10] for order in got)
    assert last_day >= "2017-09-10"  # most of the added days were read in this run
    expected = {o["id"] for o in _orders_from(replica, "2017-07-01") if o["ordered_at"][:10] <= last_day}
    assert set(read) == expected  # everything up to the last day read: the next run reads on from that day


def test_page_numbers_over_a_list_growing_at_its_end_lose_and_repeat_nothing(replica):
    client = RESTClient(base_url=replica.base_url, paginator=HeaderLinkPaginator(), data_selector="$")
    got: List[str] = []
    for n, page in enumerate(paginate_pages(client, "orders", 100, params={"start_date": "2017-08-01"},
                                            concurrency=4)):
        got.extend(order["id"] for order in page)
        if n % 3 == 0 and len(replica.state.order_days) < 365 + 15:
            replica.add_day()
    assert len(got) == len(set(got))
    now = [order["id"] for order in _orders_from(replica, "2017-08-01")]
    assert got == now[:len(got)]  # a prefix of the list: the next run reads on from the last day read


@pytest.mark.timeout(300)
def test_a_load_while_days_are_added_loses_no_row(late_jaffle, jaffle_env, duckdb_file, monkeypatch):
    """A real load (windows of 7 days, pages of 250) while a thread adds a day every 200 ms: the loaded orders are
    every order up to the last loaded day, once; the next run brings the tables to the replica's counts."""
    monkeypatch.setenv("SOURCES__JAFFLE_SHOP__PAGE_SIZE", "250")
    jaffle_env.latency_ms = 5
    stop = threading.Event()

    def add_days() -> None:
        while not stop.is_set() and len(jaffle_env.state.order_days) < 365 + 40:
            jaffle_env.add_day()
            time.sleep(0.2)

    adder = threading.Thread(target=add_days)
    adder.start()
    target = create_target("duckdb", str(duckdb_file))
    try:
        run_source(late_jaffle, target)
    finally:
        stop.set()
        adder.join()
    assert query(duckdb_file, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM jaffle_shop.orders") == [(0,)]
    loaded = dict(query(duckdb_file, "SELECT ordered_at::DATE::VARCHAR, COUNT(*) FROM jaffle_shop.orders GROUP BY 1"))
    state = jaffle_env.state
    per_day = {day: end - begin for day, begin, end in zip(state.order_days, state.day_starts, state.day_starts[1:])}
    last = max(loaded)
    assert last > "2017-08-31"  # days added during the run were loaded ...
    # ... no day missing or partial
    assert loaded == {day: count for day, count in per_day.items() if LATE_START <= day <= last}

    jaffle_env.latency_ms = 0
    run_source(late_jaffle, target)
    assert table_counts(duckdb_file, "jaffle_shop") == late_counts(jaffle_env)
    assert query(duckdb_file, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM jaffle_shop.items") == [(0,)]


# ---------------------------------------------------------------------------------------------------------------
# the Jaffle Shop source
# ---------------------------------------------------------------------------------------------------------------
def test_date_windows_are_consecutive_whole_days():
    windows = list(itertools.islice(date_windows(dt.date(2024, 2, 26), 3), 3))
    assert [(a.isoformat(), b.isoformat()) for a, b in windows] == [
        ("2024-02-26", "2024-02-28"), ("2024-02-29", "2024-03-02"), ("2024-03-03", "2024-03-05")]
    with pytest.raises(ValueError):
        next(date_windows(dt.date(2024, 1, 1), 0))


def test_one_request_when_everything_since_the_start_fits_one_page(serve):
    api = serve(events=days("2024-01-01", 10))
    pages = list(paginate_date_windows(api.client(), "events", dt.date(2024, 1, 5), params={"page_size": 100}))
    assert ids(pages) == [row["id"] for row in api.rows["events"] if row["day"] >= "2024-01-05"]
    assert api.requests == [{"page_size": "100", "start_date": "2024-01-05"}]


def test_a_gap_longer_than_a_window_is_read_by_the_tail(serve):
    api = serve(events={**days("2024-01-01", 10), **days("2024-03-01", 5)})
    pages = list(paginate_date_windows(api.client(), "events", dt.date(2024, 1, 1), days=7,
                                       params={"page_size": 4}))
    assert ids(pages) == [row["id"] for row in api.rows["events"]]
