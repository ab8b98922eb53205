"""Jaffle Shop API: customers, orders (with their items), products, stores and supplies of the dbt Jaffle Shop.

Owner: data platform team (ingestion). Purpose: raw copy of the shop's operational data for the dbt models.

Configuration (dlt providers: env vars, `.dlt/config.toml`), injected by dlt into the parameters of the same names:
- `sources.jaffle_shop.base_url` (env `SOURCES__JAFFLE_SHOP__BASE_URL`), default the production API;
- `sources.jaffle_shop.page_size` (default 1000), `request_timeout` (s, default 30),
  `max_attempts` (default 6) and `backoff_factor` (s, default 1.0) for retries on 429, 5xx and dropped connections
  (`Retry-After` is respected).
- `sources.jaffle_shop.concurrency` (default 8): requests in flight per table (`data_foundation.pages`: pages are
  fetched ahead in threads and yielded in order), and for orders `window_days` (default 7): orders are read in
  windows of that many days (`start_date`/`end_date`), the newest window open-ended.
A setting under a table's name (`sources.jaffle_shop.orders.page_size`) applies to that table only.
"""

import datetime as dt
from typing import Any, Dict, Iterator, List, Optional

import dlt
from dlt.common.jsonpath import compile_path
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

from data_foundation.pages import paginate_date_windows, paginate_pages

PRODUCTION_URL = "https://jaffle-shop.dlthub.com/api/v1"

# Every endpoint answers a bare JSON list. Compiled once: without a selector dlt detects it on each endpoint's first
# page (decoding that page twice) and parses `$` again for every page (~1.6 ms CPU a page).
_WHOLE_RESPONSE = compile_path("$")


def fetch(endpoint: str, base_url: str = PRODUCTION_URL, page_size: int = 1000, request_timeout: float = 30.0,
          max_attempts: int = 6, backoff_factor: float = 1.0, concurrency: int = 8) -> Iterator[List[Dict[str, Any]]]:
    """All rows of a paginated endpoint (`customers`, `products`, `stores`, `supplies`), page by page.

    The first page alone (one request when it is the only one); when there are more, `/row-counts` tells how many
    and the other pages are fetched `concurrency` at a time by page number, yielded in order (the first page
    without a next link is the last). These tables are read whole on every run.
    """
    _check_page_size(page_size)
    client = _client(base_url, request_timeout, max_attempts, backoff_factor)

    def total() -> int:
        return row_counts(base_url, request_timeout, max_attempts, backoff_factor).get(endpoint, 0)

    yield from paginate_pages(client, endpoint, page_size, concurrency=concurrency, total=total)


def fetch_orders(incremental: Optional[dlt.sources.incremental[str]] = None, base_url: str = PRODUCTION_URL,
                 page_size: int = 1000, request_timeout: float = 30.0, max_attempts: int = 6,
                 backoff_factor: float = 1.0, concurrency: int = 8,
                 window_days: int = 7) -> Iterator[List[Dict[str, Any]]]:
    """Orders with their items, from the day of the last loaded `ordered_at` on.

    The API filters on whole days (`start_date`, `end_date`, inclusive), so the last loaded day is fetched again
    and the merge on `id` keeps one row per order. When more than one page is new, the orders are read in windows
    of `window_days` days, `concurrency` windows at a time, yielded in date order (the cursor never passes a window
    that failed); the newest window is read open-ended, so orders added during the run are not missed.
    """
    _check_page_size(page_size)
    client = _client(base_url, request_timeout, max_attempts, backoff_factor)
    if incremental is None or not incremental.start_value:
        yield from _pages(client, "orders", page_size)
        return
    start = dt.date.fromisoformat(str(incremental.start_value)[:10])
    yield from paginate_date_windows(client, "orders", start, window_days, params={"page_size": page_size},
                                     concurrency=concurrency)


def order_items(orders: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The items embedded in a page of orders: new orders bring their items without reading `/items`."""
    return [item for order in orders for item in (order.get("items") or [])]


def row_counts(base_url: str = PRODUCTION_URL, request_timeout: float = 30.0, max_attempts: int = 6,
               backoff_factor: float = 1.0) -> Dict[str, int]:
    """Rows per table according to the API, for reconciliation.

    `/row-counts` answers a list: `[{"table_name": "customers", "row_count": 935}, ...]`.
    """
    response = _client(base_url, request_timeout, max_attempts, backoff_factor).get("row-counts")
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, list) or not all(isinstance(row, dict) and {"table_name", "row_count"} <= set(row)
                                             for row in body):
        raise ValueError(f"/row-counts answered {str(body)[:200]}, not a list of {{table_name, row_count}}")
    return {str(row["table_name"]): int(row["row_count"]) for row in body}


def _client(base_url: str, request_timeout: float, max_attempts: int, backoff_factor: float) -> RESTClient:
    session = Client(
        request_timeout=request_timeout,
        request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor,
        request_max_retry_delay=60,
        raise_for_status=False,  # RESTClient raises itself, after the retries
        respect_retry_after_header=True,
    ).session
    return RESTClient(base_url=base_url, paginator=HeaderLinkPaginator(), session=session,
                      data_selector=_WHOLE_RESPONSE)


def _check_page_size(page_size: int) -> None:
    if page_size < 1:  # the API answers page_size=0 with [] and a next link: an endless loop
        raise ValueError(f"sources.jaffle_shop.page_size must be >= 1, got {page_size}")


def _pages(client: RESTClient, endpoint: str, page_size: int,
           params: Optional[Dict[str, Any]] = None) -> Iterator[List[Dict[str, Any]]]:
    for page in client.paginate(endpoint, params={"page_size": page_size, **(params or {})}):
        yield list(page)
