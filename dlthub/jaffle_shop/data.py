"""Jaffle Shop API: customers, orders (with their items), products, stores and supplies of the dbt Jaffle Shop.

Owner: data platform team (ingestion). Purpose: raw copy of the shop's operational data for the dbt models.

Configuration (dlt providers: env vars, `.dlt/config.toml`), injected by dlt into the parameters of the same names:
- `sources.jaffle_shop.base_url` (env `SOURCES__JAFFLE_SHOP__BASE_URL`), default the production API;
- `sources.jaffle_shop.page_size` (default 1000), `request_timeout` (s, default 30),
  `max_attempts` (default 6) and `backoff_factor` (s, default 1.0) for retries on 429, 5xx and dropped connections
  (`Retry-After` is respected).
A setting under a table's name (`sources.jaffle_shop.orders.page_size`) applies to that table only.
"""

from typing import Any, Dict, Iterator, List, Optional

import dlt
from dlt.common.jsonpath import compile_path
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

PRODUCTION_URL = "https://jaffle-shop.dlthub.com/api/v1"

# Every endpoint answers a bare JSON list. Compiled once: without a selector dlt detects it on each endpoint's first
# page (decoding that page twice) and parses `$` again for every page (~1.6 ms CPU a page).
_WHOLE_RESPONSE = compile_path("$")


def fetch(endpoint: str, base_url: str = PRODUCTION_URL, page_size: int = 1000, request_timeout: float = 30.0,
          max_attempts: int = 6, backoff_factor: float = 1.0) -> Iterator[List[Dict[str, Any]]]:
    """All rows of a paginated endpoint (`customers`, `products`, `stores`, `supplies`), one page at a time."""
    client = _client(base_url, request_timeout, max_attempts, backoff_factor)
    yield from _pages(client, endpoint, page_size)


def fetch_orders(incremental: Optional[dlt.sources.incremental[str]] = None, base_url: str = PRODUCTION_URL,
                 page_size: int = 1000, request_timeout: float = 30.0, max_attempts: int = 6,
                 backoff_factor: float = 1.0) -> Iterator[List[Dict[str, Any]]]:
    """Orders with their items, from the day of the last loaded `ordered_at` on.

    The API filters on whole days (`start_date`, inclusive), so the last loaded day is fetched again and the
    merge on `id` keeps one row per order.
    """
    params = {}
    if incremental is not None and incremental.start_value:
        params["start_date"] = str(incremental.start_value)[:10]
    client = _client(base_url, request_timeout, max_attempts, backoff_factor)
    yield from _pages(client, "orders", page_size, params)


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


def _pages(client: RESTClient, endpoint: str, page_size: int,
           params: Optional[Dict[str, Any]] = None) -> Iterator[List[Dict[str, Any]]]:
    if page_size < 1:  # the API answers page_size=0 with [] and a next link: an endless loop
        raise ValueError(f"sources.jaffle_shop.page_size must be >= 1, got {page_size}")
    for page in client.paginate(endpoint, params={"page_size": page_size, **(params or {})}):
        yield list(page)
