"""Google Ads API: campaigns and their daily metrics, read with GAQL queries over REST `googleAds:searchStream`.

Owner: marketing analytics team (ingestion). Purpose: the raw Google Ads spend, clicks and conversions per campaign
and day, for the marketing models next to the other ad platforms.

Configuration (dlt providers: env vars, `.dlt/config.toml`, `.dlt/secrets.toml`), injected by dlt into the
parameters of the same names under `sources.google_ads` (env `SOURCES__GOOGLE_ADS__<KEY>`):
- secrets: `client_secret`, `refresh_token` (the OAuth2 client's secret and a refresh token granted the `adwords`
  scope) and `developer_token` (Google Ads API Center);
- config: `client_id` (the OAuth2 client), `customer_id` (the account queried) and `login_customer_id` (the manager
  account the access goes through, when it does), both accepted as `123-456-7890` or digits only;
- `api_version` (default v26), `base_url`, `token_url`, `request_timeout` (s, default 60), `max_attempts` (default
  6) and `backoff_factor` (s, default 1.0) for retries on 429 and 5xx, `max_retry_delay` (s, default 60): the most a
  retry waits. A quota error asking for a longer wait (`retryDelay`, e.g. a daily quota's hours) fails the run at
  once, saying when to run again: retrying sooner only spends attempts.

API version: Google releases a major version about every quarter and sunsets each about a year after its release
(https://developers.google.com/google-ads/api/docs/sunset-dates); v26 was released on 2026-10-14 (sunset projected
for November 2027). A sunset or unknown version answers 404 with an HTML page: the error then names this setting.
Set `SOURCES__GOOGLE_ADS__API_VERSION=v27` (or `api_version = "v27"` under [sources.google_ads] in
.dlt/config.toml) to move on without a code change; change the default here once tested against the release notes.
"""

import dataclasses
import datetime as dt
import functools
import math
import re
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration.specs.base_configuration import configspec
from dlt.common.pendulum import pendulum
from dlt.common.typing import TSecretStrValue
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from requests import HTTPError, Response, Session

API_URL = "https://googleads.googleapis.com"
API_VERSION = "v26"  # see the module docstring: how to change it, when it sunsets
SUNSET_URL = "https://developers.google.com/google-ads/api/docs/sunset-dates"
TOKEN_URL = "https://oauth2.googleapis.com/token"


@dataclasses.dataclass(frozen=True)
class Report:
    """One GAQL query: its `FROM` resource and, per selected field, the column and the type its JSON value becomes
    (int64 values arrive as strings). A `daily` report is segmented by `segments.date`: the API requires a date
    range for it."""

    resource: str
    fields: Dict[str, tuple]  # GAQL field -> (column, converter)
    daily: bool = False


REPORTS = {
    "campaigns": Report("campaign", {
        "campaign.id": ("id", int),
        "campaign.resource_name": ("resource_name", str),
        "campaign.name": ("name", str),
        "campaign.status": ("status", str),
        "campaign.advertising_channel_type": ("advertising_channel_type", str),
    }),
    "campaign_metrics": Report("campaign", {
        "campaign.id": ("campaign_id", int),
        "segments.date": ("date", str),
        "metrics.impressions": ("impressions", int),
        "metrics.clicks": ("clicks", int),
        "metrics.cost_micros": ("cost_micros", int),
        "metrics.conversions": ("conversions", float),
    }, daily=True),
}

# what to check when the API refuses a request for one of these reasons (Google Ads error codes)
_SETTING_OF_ERROR = {"UNSUPPORTED_VERSION": "api_version",
                     "DEVELOPER_TOKEN": "developer_token", "LOGIN_CUSTOMER_ID": "login_customer_id",
                     "USER_PERMISSION_DENIED": "login_customer_id", "CUSTOMER_NOT_FOUND": "customer_id",
                     "INVALID_CUSTOMER_ID": "customer_id"}


_TOKEN_FIXES = {
    "invalid_grant": "the refresh token is expired, revoked or not this client's: set a new one in "
                     "sources.google_ads.refresh_token (SOURCES__GOOGLE_ADS__REFRESH_TOKEN)",
    "invalid_client": "check sources.google_ads.client_id (SOURCES__GOOGLE_ADS__CLIENT_ID) and client_secret "
                      "(SOURCES__GOOGLE_ADS__CLIENT_SECRET)",
}


class GoogleAdsError(Exception):
    """The API or Google's token endpoint refused a request; the message says what to fix."""


def google_ads(report: str, start_date: Optional[str] = None, end_date: Optional[str] = None,
               incremental: Optional[dlt.sources.incremental[str]] = None,
               customer_id: str = dlt.config.value, client_id: str = dlt.config.value,
               client_secret: str = dlt.secrets.value, refresh_token: str = dlt.secrets.value,
               developer_token: str = dlt.secrets.value, login_customer_id: Optional[str] = None,
               api_version: str = API_VERSION, base_url: str = API_URL, token_url: str = TOKEN_URL,
               request_timeout: float = 60.0, max_attempts: int = 6, backoff_factor: float = 1.0,
               max_retry_delay: float = 60.0) -> Iterator[List[Dict[str, Any]]]:
    """The rows of one report (`campaigns`, `campaign_metrics`), one page per batch of the search stream.

    `campaign_metrics` asks for the days `start_date` to `end_date` (a Dagster partition's window) when given; else
    from the incremental cursor (the last loaded day, moved back by its `lag`: Google restates recent days as
    conversions are attributed) to today. `campaigns` is read whole on every run: the window does not apply to it.
    """
    spec = REPORTS.get(report)
    if spec is None:
        raise ValueError(f"unknown Google Ads report `{report}`; known: {', '.join(REPORTS)}")
    session = _session(request_timeout, max_attempts, backoff_factor, max_retry_delay)
    auth = GoogleRefreshTokenAuth(access_token_url=token_url, client_id=client_id, client_secret=client_secret,
                                  refresh_token=refresh_token, session=session)
    headers = {"developer-token": developer_token}
    if login_customer_id:
        headers["login-customer-id"] = _digits(login_customer_id, "login_customer_id")
    url = f"{base_url.rstrip('/')}/{api_version}/customers/{_digits(customer_id, 'customer_id')}/googleAds:searchStream"
    window = _date_window(start_date, end_date, incremental) if spec.daily else None
    response = _search_stream(session, auth, url, gaql(spec, window), headers)
    batches = response.json()
    if not isinstance(batches, list):
        raise GoogleAdsError(f"googleAds:searchStream answered {str(batches)[:200]}, not a JSON array of batches")
    for batch in batches:
        if "error" in batch:  # a failure after the stream started arrives as its last element
            raise GoogleAdsError(_describe_error(batch, response.status_code))
        rows = [_row(spec, result) for result in batch.get("results") or []]
        if rows:
            yield rows


def gaql(spec: Report, window: Optional[tuple] = None) -> str:
    """The GAQL query of `spec`, for the days of `window` (first, last) when given.

    Example:
        >>> gaql(Report("campaign", {"campaign.id": ("id", int), "segments.date": ("date", str)}, daily=True),
        ...      ("2024-01-01", "2024-01-31"))
        "SELECT campaign.id, segments.date FROM campaign WHERE segments.date BETWEEN '2024-01-01' AND '2024-01-31'"
    """
    query = f"SELECT {', '.join(spec.fields)} FROM {spec.resource}"
    if window:
        query += f" WHERE segments.date BETWEEN '{window[0]}' AND '{window[1]}'"
    return query


@configspec
class GoogleRefreshTokenAuth(OAuth2ClientCredentials):
    """dlt's OAuth2 client-credentials helper with Google's refresh-token grant: it exchanges the refresh token for an
    access token on first use and again when it expires (`expires_in`) or the API says it did (`expire`)."""

    refresh_token: TSecretStrValue = None

    def build_access_token_request(self) -> Dict[str, Any]:
        return {"data": {"grant_type": "refresh_token", "client_id": self.client_id,
                         "client_secret": self.client_secret, "refresh_token": self.refresh_token}}

    def obtain_token(self) -> None:
        try:
            super().obtain_token()
        except HTTPError as exc:  # no chained cause: the form the request carried holds the secrets
            raise GoogleAdsError(_describe_token_error(exc.response)) from None

    def expire(self) -> None:
        self.token_expiry = pendulum.now()


def _search_stream(session: Session, auth: GoogleRefreshTokenAuth, url: str, query: str,
                   headers: Dict[str, str]) -> Response:
    """POST the query; an access token the API calls expired or revoked (401 UNAUTHENTICATED) is refreshed once."""
    response = session.post(url, json={"query": query}, headers=headers, auth=auth)
    if response.status_code == 401 and _access_token_refused(_error_body(response)):
        auth.expire()
        response = session.post(url, json={"query": query}, headers=headers, auth=auth)
    if _unknown_version(response):
        raise GoogleAdsError(_describe_unknown_version(response))
    if response.status_code >= 400:
        raise GoogleAdsError(_describe_error(_error_body(response), response.status_code))
    return response


def _unknown_version(response: Response) -> bool:
    """A sunset or unknown version: Google's front end answers 404 with an HTML page (no API behind the path), or
    gRPC's UNIMPLEMENTED (no such method) in JSON."""
    return response.status_code == 404 or _error_of(_error_body(response)).get("status") == "UNIMPLEMENTED"


def _describe_unknown_version(response: Response) -> str:
    version = urlsplit(response.url).path.strip("/").split("/")[0]
    error = _error_of(_error_body(response))
    answer = f"{error.get('status', '')} {error.get('message', '')}".strip()
    return (f"Google Ads API answered {response.status_code} ({answer}) on {urlsplit(response.url).path}: the API "
            f"version `{version}` is sunset or unknown (Google retires each version about a year after its release). "
            "Check sources.google_ads.api_version (SOURCES__GOOGLE_ADS__API_VERSION): set a current version, see "
            f"{SUNSET_URL}; or base_url if it is not Google's")


def _is_html(response: Response) -> bool:
    return "html" in response.headers.get("content-type", "") or response.text.lstrip()[:1] == "<"


def _session(request_timeout: float, max_attempts: int, backoff_factor: float, max_retry_delay: float) -> Session:
    session = Client(request_timeout=request_timeout, request_max_attempts=max_attempts,
                     request_backoff_factor=backoff_factor, request_max_retry_delay=max_retry_delay,
                     raise_for_status=False, respect_retry_after_header=True).session
    session.hooks["response"].append(functools.partial(_retry_delay_as_header, max_retry_delay=max_retry_delay))
    return session


def _retry_delay_as_header(response: Response, *args: Any, max_retry_delay: float, **kwargs: Any) -> Response:
    """Google puts the wait of a quota error in the body (`quotaErrorDetails.retryDelay`, e.g. "30s"), not in a
    `Retry-After` header: copied into one, dlt's `Client` waits that long before retrying. A wait longer than
    `max_retry_delay` (a daily quota: hours) raises at once: dlt's retry does not retry an exception that is neither
    an HTTP error nor a connection error."""
    if response.status_code == 429 and "Retry-After" not in response.headers:
        delay = _retry_delay(_error_body(response))
        if delay and delay > max_retry_delay:
            raise GoogleAdsError(_describe_long_wait(response, delay, max_retry_delay))
        if delay:
            response.headers["Retry-After"] = str(math.ceil(delay))
    return response


def _describe_long_wait(response: Response, delay: float, max_retry_delay: float) -> str:
    again = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay)
    return (f"{_describe_error(_error_body(response), response.status_code)}. The account's quota is exhausted for "
            f"about {math.ceil(delay / 60)} minutes (retryDelay {delay:g}s), longer than "
            f"sources.google_ads.max_retry_delay ({max_retry_delay:g} s): not retried. Run again after "
            f"{again:%Y-%m-%d %H:%M} UTC")


def _retry_delay(body: Any) -> Optional[float]:
    for failure in _failures(_error_of(body)):
        delay = ((failure.get("details") or {}).get("quotaErrorDetails") or {}).get("retryDelay")
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(delay or ""))
        if match:
            return float(match.group(1))
    return None


def _access_token_refused(body: Any) -> bool:
    """A 401 about the access token (Google's bare UNAUTHENTICATED, or `OAUTH_TOKEN_*`), not the developer token's."""
    reasons = [name for failure in _failures(_error_of(body)) for name in (failure.get("errorCode") or {}).values()]
    return not reasons or any(str(name).startswith("OAUTH_TOKEN") for name in reasons)


def _date_window(start_date: Optional[str], end_date: Optional[str],
                 incremental: Optional[dlt.sources.incremental[str]]) -> tuple:
    """The days to ask for: the partition's window, else from the (lagged) cursor or its initial value to today."""
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    if start_date:
        return str(start_date)[:10], str(end_date or today)[:10]
    start = incremental.start_value if incremental is not None else None
    if not start:
        raise ValueError("campaign_metrics needs a start day: configure `incremental.initial_value` in sources.yaml "
                         "or pass `start_date`")
    return str(start)[:10], today


def _row(spec: Report, result: Dict[str, Any]) -> Dict[str, Any]:
    """A result (`{"campaign": {"id": "456", ...}, "metrics": {"costMicros": "5670000"}}`) as a flat row."""
    row = {}
    for field, (column, convert) in spec.fields.items():
        value = _camel_lookup(result, field)
        row[column] = None if value is None else convert(value)
    return row


def _camel_lookup(result: Dict[str, Any], field: str) -> Any:
    """`metrics.cost_micros` in the JSON: GAQL names are snake_case, REST answers lowerCamelCase."""
    value: Any = result
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        head, *rest = part.split("_")
        value = value.get(head + "".join(word.capitalize() for word in rest))
    return value


def _digits(value: Any, setting: str) -> str:
    digits = re.sub(r"[\s-]", "", str(value))
    if not digits.isdigit():
        raise ValueError(f"sources.google_ads.{setting} must be a Google Ads customer id such as 123-456-7890, "
                         f"got `{value}`")
    return digits


def _error_body(response: Response) -> Any:
    """The JSON error; a page from Google's front end or a proxy (HTML) is named, not quoted."""
    try:
        return response.json()
    except ValueError:
        return {"error": {"message": "an HTML page" if _is_html(response) else response.text[:300]}}


def _error_of(body: Any) -> Dict[str, Any]:
    """`{"error": {...}}`, or the first such element of a stream's array."""
    if isinstance(body, list):
        body = next((item for item in body if isinstance(item, dict) and "error" in item), {})
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _failures(error: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """The Google Ads errors of an error's `GoogleAdsFailure` details (`{"errorCode": {...}, "message", "details"}`)."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            yield from (failure for failure in detail.get("errors") or [] if isinstance(failure, dict))


def _describe_error(body: Any, status: int) -> str:
    """`Google Ads API answered 400 INVALID_ARGUMENT: <message> (requestError DEVELOPER_TOKEN_PARAMETER_MISSING:
    <message>)`, naming the setting to check when the reason points at one."""
    error = _error_of(body)
    reasons = [(code, name, failure.get("message", ""))
               for failure in _failures(error) for code, name in (failure.get("errorCode") or {}).items()]
    text = f"Google Ads API answered {error.get('code', status)} {error.get('status', '')}".rstrip()
    text += f": {error.get('message', 'no message')}"
    if reasons:
        text += " (" + "; ".join(f"{code} {name}: {message}" for code, name, message in reasons) + ")"
    settings = {setting for _, name, _ in reasons for key, setting in _SETTING_OF_ERROR.items() if key in name}
    if settings:
        text += ". Check " + ", ".join(f"sources.google_ads.{s} (SOURCES__GOOGLE_ADS__{s.upper()})"
                                       for s in sorted(settings))
    return text


def _describe_token_error(response: Response) -> str:
    """Google's token endpoint answers `{"error": "invalid_grant", "error_description": ...}`: say which setting."""
    body = _error_body(response)
    code = body.get("error") if isinstance(body, dict) else None
    code = code if isinstance(code, str) else "error"
    description = body.get("error_description", "") if isinstance(body, dict) else ""
    fix = _TOKEN_FIXES.get(code, "check the OAuth2 settings client_id, client_secret and refresh_token")
    return (f"Google's token endpoint refused the refresh token ({response.status_code} {code}"
            f"{': ' + description if description else ''}): {fix}")
