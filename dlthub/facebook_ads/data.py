"""Facebook Ads (Marketing API, over the Graph API): campaigns, ad sets, ads and their daily insights of one ad account.

Owner: growth analytics team (paid media). Purpose: raw copy of the ad account's structure and daily ad-level
delivery and spend, for the marketing attribution models.

Configuration (dlt providers: env vars, `.dlt/config.toml`, `.dlt/secrets.toml`), injected by dlt into the
parameters of the same names:
- `sources.facebook_ads.account_id` (env `SOURCES__FACEBOOK_ADS__ACCOUNT_ID`, required): the ad account, with or
  without its `act_` prefix;
- `sources.facebook_ads.access_token` (env `SOURCES__FACEBOOK_ADS__ACCESS_TOKEN`, a secret, required): a token with
  `ads_read` (a system user's token does not expire). Sent in the `Authorization: Bearer` header only, never in a URL;
- `api_version` (default `v27.0`, released 2026-11-04), `base_url` (default `https://graph.facebook.com`),
  `page_size` (default 500), `request_timeout` (s, default 60), and for insights `window_days` (default 30): days per
  insights request.
- Retries: `max_attempts` (default 8), `backoff_factor` (s, default 5.0), `max_retry_wait` (s, default 300). The Graph
  API reports rate limits as HTTP 400/403 with error codes (#4, #17, #32, #613, #80000-#80014) or `is_transient`;
  they are retried with exponential backoff, and an ad-account limit's `x-business-use-case-usage` header
  (`estimated_time_to_regain_access`, minutes) sets the wait. A wait longer than `max_retry_wait` fails the run at
  once, saying when to run again: retrying sooner only spends attempts. 5xx are retried too, except "Please reduce
  the amount of data" (code 1), which the same request would meet again: lower `window_days`. Any other error fails
  at once with the API's code and message (an invalid token: code 190).

API version: Meta releases a Marketing API version about every 4 months and expires each about a year later
(https://developers.facebook.com/docs/marketing-api/marketing-api-changelog/versions); a call to an expired one is
refused with error #2635 ("You are calling a deprecated version of the Ads API"), or auto-upgraded for endpoints
that did not change. Set `SOURCES__FACEBOOK_ADS__API_VERSION=v28.0` (or `api_version = "v28.0"` under
[sources.facebook_ads] in .dlt/config.toml) to move on without a code change; change the default here once tested.

Archived and deleted objects: edges without a status filter return only live objects, and
`act_<id>/insights?level=ad` leaves out the stats of deleted ads. Insights are therefore filtered on every
`ad.effective_status` (deleted and archived included), so a deleted ad's spend still loads; campaigns, ad sets and
ads are listed with every `effective_status` but `DELETED`, which the API refuses on edges: a deleted object is no
longer listed and keeps its last loaded row (its insights rows carry its `ad_name`, `adset_id`, `campaign_id`).
"""

import datetime as dt
import functools
import itertools
import json
import math
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import dlt
from dlt.common import pendulum
from dlt.sources.helpers.requests import Client, HTTPError, Response
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from data_foundation.pages import date_windows

GRAPH_URL = "https://graph.facebook.com"
API_VERSION = "v27.0"  # see the module docstring: how to change it, when it expires
TOKEN_ENV = "SOURCES__FACEBOOK_ADS__ACCESS_TOKEN"
# the fields asked per edge: the API returns only what is asked (and `id`)
FIELDS = {
    "campaigns": ["id", "account_id", "name", "objective", "status", "effective_status", "daily_budget",
                  "lifetime_budget", "created_time", "updated_time", "start_time", "stop_time"],
    "adsets": ["id", "account_id", "campaign_id", "name", "status", "effective_status", "daily_budget",
               "lifetime_budget", "optimization_goal", "billing_event", "created_time", "updated_time", "start_time",
               "end_time"],
    "ads": ["id", "account_id", "campaign_id", "adset_id", "name", "status", "effective_status", "creative{id}",
            "created_time", "updated_time"],
}
# every `effective_status` of each object type (Marketing API reference); edges refuse `DELETED`
STATUSES = {
    "campaigns": ["ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"],
    "adsets": ["ACTIVE", "PAUSED", "DELETED", "CAMPAIGN_PAUSED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"],
    "ads": ["ACTIVE", "PAUSED", "DELETED", "PENDING_REVIEW", "DISAPPROVED", "PREAPPROVED", "PENDING_BILLING_INFO",
            "CAMPAIGN_PAUSED", "ARCHIVED", "ADSET_PAUSED", "IN_PROCESS", "WITH_ISSUES"],
}
INSIGHT_FIELDS = ["account_id", "campaign_id", "adset_id", "ad_id", "ad_name", "impressions", "clicks", "reach",
                  "spend", "cpc", "ctr", "cpm", "frequency", "actions"]
# https://developers.facebook.com/docs/graph-api/overview/rate-limiting: app (4), user (17), page (32), per-call (613)
# and business use case (800xx) limits
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
HISTORY_MONTHS = 37  # insights older than this are refused (#3018)
VERSIONS_URL = "https://developers.facebook.com/docs/marketing-api/marketing-api-changelog/versions"


class GraphAPIError(HTTPError):
    """An error answer of the Graph API, described by its code and message (never by a URL with its query)."""


def fetch_objects(edge: str, start_date: Optional[str] = None, end_date: Optional[str] = None,
                  account_id: str = dlt.config.value, access_token: str = dlt.secrets.value,
                  api_version: str = API_VERSION, base_url: str = GRAPH_URL, page_size: int = 500,
                  request_timeout: float = 60.0, max_attempts: int = 8, backoff_factor: float = 5.0,
                  max_retry_wait: float = 300.0) -> Iterator[List[Dict[str, Any]]]:
    """All campaigns, ad sets or ads (`edge`) of the ad account, read whole on every run (a few thousand rows at
    most; merged on `id`, so a changed budget or status replaces the row).

    `start_date`/`end_date` are the Dagster partition's window, which every resource of the partitioned source
    takes: the account's structure has no date, so a partition run reads it whole too.
    """
    client, hooks = _client(base_url, api_version, access_token, request_timeout, max_attempts, backoff_factor,
                            max_retry_wait)
    live = [status for status in STATUSES[edge] if status != "DELETED"]  # without it: archived objects left out
    params = {"fields": ",".join(FIELDS[edge]), "limit": page_size, "effective_status": _compact(live)}
    for page in client.paginate(f"{_account(account_id)}/{edge}", params=params, hooks=hooks):
        yield list(page)


def fetch_insights(start_date: Optional[str] = None, end_date: Optional[str] = None,
                   incremental: Optional[dlt.sources.incremental[str]] = None, account_id: str = dlt.config.value,
                   access_token: str = dlt.secrets.value, api_version: str = API_VERSION, base_url: str = GRAPH_URL,
                   page_size: int = 500, window_days: int = 30, request_timeout: float = 60.0,
                   max_attempts: int = 8, backoff_factor: float = 5.0,
                   max_retry_wait: float = 300.0) -> Iterator[List[Dict[str, Any]]]:
    """Daily insights per ad (one row per ad and day it delivered), merged on `ad_id` and `date_start`.

    A Dagster partition run reads exactly its window (`start_date`..`end_date`, inclusive). Any other run reads from
    the incremental's start on: the first run from `initial_value`, later runs from the last loaded day minus the
    look-back (`lag`, days), since Facebook restates recent days as late conversions are attributed; the merge
    replaces the restated rows. Up to today (UTC), never more than 37 months back (the API refuses older days),
    `window_days` days per request: one request over a long range times out on a large account.
    """
    if window_days < 1:
        raise ValueError(f"sources.facebook_ads.window_days must be >= 1, got {window_days}")
    client, hooks = _client(base_url, api_version, access_token, request_timeout, max_attempts, backoff_factor,
                            max_retry_wait)
    since, until = _insights_range(start_date, end_date, incremental)
    for first, last in itertools.takewhile(lambda window: window[0] <= until, date_windows(since, window_days)):
        last = min(last, until)
        params = {"level": "ad", "time_increment": 1, "fields": ",".join(INSIGHT_FIELDS), "limit": page_size,
                  "time_range": _compact({"since": first.isoformat(), "until": last.isoformat()}),
                  "filtering": _compact([{"field": "ad.effective_status", "operator": "IN", "value": STATUSES["ads"]}])}
        for page in client.paginate(f"{_account(account_id)}/insights", params=params, hooks=hooks):
            yield [_typed_actions(row) for row in page]


def _insights_range(start_date: Optional[str], end_date: Optional[str],
                    incremental: Optional[dlt.sources.incremental[str]]) -> Tuple[dt.date, dt.date]:
    today = dt.datetime.now(dt.timezone.utc).date()
    oldest = pendulum.Date(today.year, today.month, today.day).subtract(months=HISTORY_MONTHS)
    oldest = dt.date(oldest.year, oldest.month, oldest.day)
    start = incremental.start_value if incremental is not None else None
    if start_date:
        since, until = _day(start_date), _day(end_date or start_date)
        if start and _day(start) > since:  # a window given outside Dagster, e.g. by SOURCES__FACEBOOK_ADS__START_DATE
            raise ValueError(f"the window {since}..{until} starts before the incremental's start {start}: dlt would "
                             "drop its rows. Backfill those days as Dagster partitions (each has its own state)")
    else:
        since, until = (_day(start) if start else oldest), today
    return max(since, oldest), until


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _day(value: Any) -> dt.date:
    return dt.date.fromisoformat(str(value)[:10])


def _typed_actions(row: Dict[str, Any]) -> Dict[str, Any]:
    """`actions` values arrive as strings: made decimals, so the `ad_insights__actions` child table is typed."""
    if row.get("actions"):
        row["actions"] = [{**action, "value": Decimal(action["value"])} for action in row["actions"]]
    return row


def _account(account_id: str) -> str:
    return "act_" + str(account_id).strip().removeprefix("act_")


class _GraphPaginator(JSONResponseCursorPaginator):
    """The Graph API's cursor paging: `paging.cursors.after` is sent back as `after` with the request's own
    parameters; a page without `paging.next` is the last (it still carries cursors). The `next` URL itself is not
    followed: the real one holds `access_token=` in its query string, and a URL ends up in messages and logs."""

    def __init__(self) -> None:
        super().__init__(cursor_path="paging.cursors.after", cursor_param="after")

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        super().update_state(response, data)
        if not (response.json().get("paging") or {}).get("next"):
            self._has_next_page = False


def _client(base_url: str, api_version: str, access_token: str, request_timeout: float, max_attempts: int,
            backoff_factor: float, max_retry_wait: float) -> Tuple[RESTClient, Dict[str, Any]]:
    """The REST client and the response hooks its requests carry (they raise the Graph API's errors)."""
    session = Client(
        request_timeout=request_timeout,
        request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor,
        request_max_retry_delay=max_retry_wait,
        raise_for_status=False,  # the response hook raises, with the Graph API's own error
        retry_condition=_rate_limited,
        respect_retry_after_header=True,
    ).session
    client = RESTClient(base_url=f"{base_url.rstrip('/')}/{api_version}", auth=BearerTokenAuth(access_token),
                        paginator=_GraphPaginator(), session=session, data_selector="data")
    return client, {"response": [functools.partial(_check_response, max_retry_wait=max_retry_wait)]}


def _graph_error(response: Response) -> Dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _rate_limited(response: Optional[Response], exception: Optional[BaseException]) -> bool:
    """A rate limit or a transient error, which the Graph API answers with 400 or 403 (5xx are retried anyway)."""
    if response is None or response.status_code < 400:
        return False
    error = _graph_error(response)
    return error.get("code") in RATE_LIMIT_CODES or error.get("is_transient") is True


def _check_response(response: Response, *args: Any, max_retry_wait: float, **kwargs: Any) -> None:
    """Raise an error answer as `GraphAPIError`. A rate limit first gets a `Retry-After` from the ad account's
    `estimated_time_to_regain_access`, which dlt's retry waits for. An error no retry can help (a wait longer than
    `max_retry_wait`, a request too large) is raised without its response: dlt's retry decides on an error's
    response (status, rate-limit code), so an error without one is not retried."""
    if response.status_code < 400:
        return
    error = _graph_error(response)
    wait = _regain_access_seconds(response)
    if wait > max_retry_wait and _rate_limited(response, None):
        raise GraphAPIError(_describe_long_wait(response, error, wait, max_retry_wait))
    if error.get("code") == 1 and "reduce the amount of data" in str(error.get("message")):
        raise GraphAPIError(f"{_describe(response, error)}. The same request would fail again: lower "
                            "sources.facebook_ads.window_days (SOURCES__FACEBOOK_ADS__WINDOW_DAYS, days per insights "
                            "request) or page_size (SOURCES__FACEBOOK_ADS__PAGE_SIZE)")
    if wait and _rate_limited(response, None):
        response.headers["Retry-After"] = str(math.ceil(wait))
    raise GraphAPIError(_describe(response, error), response=response)


def _regain_access_seconds(response: Response) -> float:
    """`x-business-use-case-usage: {"<account>": [{"type": ..., "estimated_time_to_regain_access": <minutes>}]}`."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage") or "{}")
        minutes = [float(entry.get("estimated_time_to_regain_access") or 0) for entries in usage.values()
                   for entry in entries]
    except (ValueError, AttributeError, TypeError):
        return 0
    return max(minutes, default=0) * 60


def _describe_long_wait(response: Response, error: Dict[str, Any], wait: float, max_retry_wait: float) -> str:
    again = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=wait)
    return (f"{_describe(response, error, retried=False)}. The ad account is rate-limited for about "
            f"{math.ceil(wait / 60)} minutes (estimated_time_to_regain_access), longer than "
            f"sources.facebook_ads.max_retry_wait ({max_retry_wait:g} s): not retried. Run again after "
            f"{again:%Y-%m-%d %H:%M} UTC")


def _describe(response: Response, error: Dict[str, Any], retried: bool = True) -> str:
    code, subcode = error.get("code"), error.get("error_subcode")
    what = f"code {code}" + (f", subcode {subcode}" if subcode else "") + ", " if code is not None else ""
    path = urlsplit(response.url).path  # the path only: a query string may hold a token
    message = str(error.get("message") or response.reason)
    text = f"Graph API error ({what}HTTP {response.status_code}) on GET {path}: {message}"
    if error.get("fbtrace_id"):
        text += f" (fbtrace_id {error['fbtrace_id']})"
    if code in (104, 190):
        return (f"{text}. The access token is invalid or expired: set {TOKEN_ENV} (or `access_token` under "
                "[sources.facebook_ads] in .dlt/secrets.toml) to a valid token with the `ads_read` permission")
    if code == 2635 or (code == 2500 and "Unknown path components" in message):  # an expired / unknown version
        version = path.strip("/").split("/")[0]
        return (f"{text}. The Marketing API version `{version}` is expired or unknown: set "
                "sources.facebook_ads.api_version (SOURCES__FACEBOOK_ADS__API_VERSION) to a current one, "
                f"see {VERSIONS_URL}")
    if retried and (_rate_limited(response, None) or response.status_code >= 500):
        return (f"{text}. Still failing after the retries (a rate limit or a transient error): raise "
                "sources.facebook_ads.max_attempts or max_retry_wait, or run again later")
    return text
