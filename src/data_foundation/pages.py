"""Page-parallel extraction for paginated HTTP APIs whose pages can be addressed up front.

A `data.py` generator that walks an API page by page waits one round trip per page. When a page can be addressed
without reading the previous one (by page number, by offset or by a date window), these helpers fetch the next
`concurrency` pages at once in threads and still yield them IN ORDER: page k only after every page before it.
dlt's incremental cursor sees rows in yield order, so it never runs ahead of a page that has not been fetched yet,
and when page k fails (after the retries of the client's session) pages before k are yielded, nothing after, and
the error is raised.

Every request goes through the `RESTClient` you pass (its base URL, auth, data selector and retrying session, e.g.
`dlt.sources.helpers.requests.Client(...).session`); the client is shared by the worker threads.

Which addressing is safe when the data changes during the run:
- page numbers / offsets: for lists that only grow at their end (rows never move between pages), or for tables
  read whole on every run (a row that moved between two pages is found by the next run). See `paginate_pages`.
- date windows over an immutable key (`ordered_at`, `created_at`): rows never move between windows and new rows
  land in the newest one, which is read last and open-ended. See `paginate_date_windows`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar

from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator

__all__ = ["fetch_in_order", "paginate_pages", "paginate_date_windows", "date_windows"]

K = TypeVar("K")
R = TypeVar("R")
Page = List[Any]
Window = Tuple[dt.date, dt.date]
_END = object()


def fetch_in_order(fetch: Callable[[K], R], keys: Iterable[K], concurrency: int = 4) -> Iterator[R]:
    """`fetch(key)` for each key, at most `concurrency` at a time in threads, results yielded in the order of `keys`.

    `keys` is read lazily (it may be endless): at most `concurrency` keys are fetched or held ahead of the result
    being yielded, so stopping the iteration (`break`, `close()`) stops the fetching. When `fetch` raises for a key,
    the results of the keys before it are yielded, then the error is raised; keys after it are never yielded.
    Requests still running when the iteration ends are waited for, those not started are cancelled.

    Args:
        fetch: Fetches one key (e.g. a page number), typically one HTTP request; it is called in worker threads.
        keys: The keys in the order their results must be yielded.
        concurrency: Maximum number of `fetch` calls running at the same time (and of results held ahead).

    Returns:
        Iterator[R]: The results of `fetch`, in the order of `keys`.

    Example:
        >>> for page in fetch_in_order(lambda n: client.get("items", params={"page": n}).json(), range(1, 11)):
        ...     yield page
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    keys = iter(keys)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pages")
    pending: Deque[Future[R]] = deque(pool.submit(fetch, key) for key in itertools.islice(keys, concurrency))
    try:
        while pending:
            result = pending.popleft().result()  # raises the error of this key, after the keys before it
            key = next(keys, _END)
            if key is not _END:  # refill the freed slot before handing the result over
                pending.append(pool.submit(fetch, key))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def paginate_pages(client: RESTClient, path: str, page_size: int, params: Optional[Dict[str, Any]] = None,
                   concurrency: int = 4, page_param: str = "page", size_param: str = "page_size",
                   first_page: int = 1, by_offset: bool = False,
                   total: Optional[Callable[[], int]] = None) -> Iterator[Page]:
    """All pages of an endpoint addressed by page number (or offset), fetched `concurrency` at a time, in order.

    The first page is asked for alone (without `page_param`: the API's default first page), so an endpoint that
    fits in one page costs one request. Then the next pages are fetched ahead, `concurrency` at a time, and the
    first one that is the last is yielded, pages fetched after it dropped. A page is the last when it is shorter
    than `page_size` (or empty) or, for an API that sends `Link: <...>; rel="next"` headers (the first page had
    one), when it has none. Links are never followed: an API that answers `page_size=0` with `[]` and a next link
    cannot loop. A short page WITH a next link raises: the API caps the page size and stopping would lose rows.

    Without `total`, up to `concurrency` pages past the end are requested (and dropped). With `total` (a
    callable counting the rows, e.g. from a count endpoint, asked only when there is more than one page) the
    pages it implies are fetched, no more; when the last of them is full and not the last (rows were added since),
    pages are fetched ahead from there as without `total`, so a stale count never stops the read early.

    Rows moving during the run: a list that grows at its end loses and repeats nothing (the pages read are a prefix
    of it; the next run reads on). Rows inserted or deleted in the middle shift the pages after them, and pages are
    read in any order: a row may be read twice (merge on the primary key keeps one) or, at a page boundary, not at
    all in this run. Use it for append-only lists or tables read whole each run, else `paginate_date_windows`.

    Args:
        client: The REST client (base URL, auth, data selector, retrying session) every request goes through.
        path: The endpoint, relative to the client's base URL.
        page_size: Rows per page (>= 1), sent as `size_param`.
        params: Other query parameters of every request (filters).
        concurrency: Maximum number of requests in flight (and of pages held ahead of the one yielded).
        page_param: Query parameter of the page number (of the offset with `by_offset`).
        size_param: Query parameter of the page size (`limit` for most offset APIs).
        first_page: Number of the API's first page (0 or 1); ignored with `by_offset`.
        by_offset: Address pages by row offset (`0, page_size, 2 * page_size, ...`) instead of page number.
        total: Returns the number of rows the endpoint answers (with `params`); bounds the pages fetched ahead.

    Returns:
        Iterator[List[Any]]: The pages, in order, as lists of rows.

    Example:
        >>> client = RESTClient(base_url="https://api.example.com/v1", session=Client(request_max_attempts=5).session)
        >>> def customers(page_size: int = 1000, concurrency: int = 4):
        ...     yield from paginate_pages(client, "customers", page_size, concurrency=concurrency)
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    first_params = {size_param: page_size, **(params or {})}

    def fetch(index: int) -> Tuple[Page, bool]:  # index 0 is the first page; returns the rows and "a next link"
        page_params = dict(first_params)
        if index:
            page_params[page_param] = index * page_size if by_offset else first_page + index
        page = next(iter(client.paginate(path, params=page_params, paginator=SinglePagePaginator())))
        rows, has_next = list(page), "next" in page.response.links
        if len(rows) < page_size and has_next:
            raise ValueError(f"{page.response.url} answered {len(rows)} rows, fewer than {size_param}={page_size}, "
                             "and a next link: the API caps the page size; set a page size it accepts")
        return rows, has_next

    first, uses_links = fetch(0)
    yield first
    if len(first) < page_size:
        return
    expected = -(-total() // page_size) if total else 0  # pages the count implies
    for keys in ([range(1, expected), itertools.count(expected)] if expected > 1 else [itertools.count(1)]):
        with closing(fetch_in_order(fetch, keys, concurrency)) as pages:
            for rows, has_next in pages:
                yield rows
                if len(rows) < page_size or (uses_links and not has_next):
                    return


def date_windows(start: dt.date, days: int) -> Iterator[Window]:
    """Consecutive windows of `days` whole days from `start` on, as inclusive `(first day, last day)`; endless.

    Example:
        >>> [(a.isoformat(), b.isoformat()) for a, b in itertools.islice(date_windows(dt.date(2024, 1, 1), 7), 2)]
        [('2024-01-01', '2024-01-07'), ('2024-01-08', '2024-01-14')]
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    for first in itertools.count(0, days):
        yield start + dt.timedelta(days=first), start + dt.timedelta(days=first + days - 1)


def paginate_date_windows(client: RESTClient, path: str, start: dt.date, days: int = 7,
                          params: Optional[Dict[str, Any]] = None, concurrency: int = 4,
                          start_param: str = "start_date", end_param: str = "end_date") -> Iterator[Page]:
    """All pages of an endpoint filtered on a date range, from `start` on, fetched in windows of `days` days.

    For endpoints that filter on whole days of an immutable timestamp (`?start_date=2024-01-01&end_date=2024-01-07`,
    both inclusive, ISO dates). Each window is read with the client's own paginator (its pages one after the other);
    `concurrency` windows are read at a time and their pages yielded in date order.

    How it runs and ends:
    1. The open-ended query (`start_param` only) is asked for its first page: when the client's paginator sees no
       next page, that page is everything from `start` on (the usual incremental run: one request) and is yielded.
    2. Otherwise windows `start .. start + days - 1`, ... are read ahead; the first empty window ends them.
    3. The last non-empty window is not yielded: instead everything from its first day on is read open-ended
       (the tail), so its data and whatever is added after it during the run is read, one page after the other.
       Data with a gap of `days` or more empty days is read whole by the tail from the gap on (correct, slower).

    Rows moving during the run: rows never move between windows (the key is immutable) and new rows land in the
    newest days, which the open-ended tail reads after all closed windows: nothing is missed, a row is read at most
    once. When a window fails (after the client's retries), the windows before it are yielded, then the error is
    raised: dlt's incremental cursor never passes the last complete window.

    Args:
        client: The REST client (base URL, auth, data selector, paginator, retrying session) of every request.
        path: The endpoint, relative to the client's base URL.
        start: First day to read (e.g. the day of the incremental's `start_value`: read again, merge dedups).
        days: Window length in whole days (>= 1); a window should fit a few pages.
        params: Other query parameters of every request (e.g. the page size).
        concurrency: Maximum number of windows read at the same time (and held ahead of the one yielded).
        start_param: Query parameter of a window's first day (inclusive).
        end_param: Query parameter of a window's last day (inclusive).

    Returns:
        Iterator[List[Any]]: The pages, in date order, as lists of rows.

    Example:
        >>> def orders(incremental=dlt.sources.incremental("ordered_at", initial_value="2024-01-01T00:00:00")):
        ...     start = dt.date.fromisoformat(incremental.start_value[:10])
        ...     yield from paginate_date_windows(client, "orders", start, days=7, params={"page_size": 1000})
    """
    base = dict(params or {})

    def open_ended(first_day: dt.date) -> Iterator[Page]:
        for page in client.paginate(path, params={**base, start_param: first_day.isoformat()}):
            yield list(page)

    def read_window(window: Window) -> Tuple[Window, List[Page]]:
        first_day, last_day = window
        window_params = {**base, start_param: first_day.isoformat(), end_param: last_day.isoformat()}
        return window, [list(page) for page in client.paginate(path, params=window_params)]

    probe = next(iter(client.paginate(path, params={**base, start_param: start.isoformat()})))
    if not probe.paginator.has_next_page:
        yield list(probe)
        return

    held: Optional[Tuple[Window, List[Page]]] = None  # the last non-empty window, yielded once the next one has rows
    with closing(fetch_in_order(read_window, date_windows(start, days), concurrency)) as windows:
        while True:
            try:
                window, pages = next(windows)  # endless: the first empty window ends the loop
            except Exception:
                if held:  # the window after it failed: this one is complete, the cursor may move up to its end
                    yield from held[1]
                raise
            if not any(pages):
                break
            if held:
                yield from held[1]
            held = (window, pages)
    yield from open_ended(held[0][0] if held else window[0])
