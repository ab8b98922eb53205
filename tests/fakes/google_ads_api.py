"""A fake of the Google Ads REST API and Google's OAuth2 token endpoint, from their documented behaviour.

- `POST /token` (form `grant_type=refresh_token`, `client_id`, `client_secret`, `refresh_token`) answers
  `{"access_token", "expires_in", "token_type": "Bearer"}`; an unknown client is `401 invalid_client`, an unknown
  refresh token `400 invalid_grant`, as Google answers them. `issue_expired(n)` makes the next `n` access tokens
  expire before their first use (revoked, or the client's clock behind): the API answers them 401 UNAUTHENTICATED.
- `POST /{version}/customers/{id}/googleAds:searchStream` with `{"query": "<GAQL>"}` checks the `Authorization`,
  `developer-token` and `login-customer-id` headers (errors in Google's shape: `[{"error": {"code", "message",
  "status", "details": [GoogleAdsFailure]}}]`), reads the GAQL's fields, `FROM` resource and its
  `segments.date BETWEEN 'a' AND 'b'` / `DURING <range>` condition, and answers a JSON array of batches
  `{"results", "fieldMask", "requestId"}` of at most `batch_size` rows, camelCase and nested, int64 values as strings.

Versions: `VERSIONS` are served (as of 2026-12: v22 sunset 2026-10-07, v26 released 2026-10-14). Any other path, a
sunset or unreleased version's included, is answered by Google's front end: 404 with its HTML page, not JSON.
`unsupported_version()` is the JSON refusal a version gets around its sunset (`requestError: UNSUPPORTED_VERSION`).

Data: `CAMPAIGNS` campaigns, with a metrics row per campaign and day from `FIRST_DAY` for `days` days (all
deterministic); `restate(day, campaign_id, clicks=...)` changes a day's metrics the way attribution does.
"""

import datetime as dt
import itertools
import re
from typing import Any, Dict, List, Optional, Tuple

from fakes.http import FakeAPI, Reply, Request

__all__ = ["CAMPAIGNS", "CLIENT_ID", "CLIENT_SECRET", "CUSTOMER_ID", "DEVELOPER_TOKEN", "FIRST_DAY", "GoogleAdsAPI",
           "LOGIN_CUSTOMER_ID", "REFRESH_TOKEN", "VERSIONS", "quota_error", "unsupported_version"]

CLIENT_ID = "1234-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret-9f3k"
REFRESH_TOKEN = "1//fake-refresh-token-Qm72xLp"
DEVELOPER_TOKEN = "fake-dev-token-Zx81Hq"
CUSTOMER_ID = "1234567890"
LOGIN_CUSTOMER_ID = "9876543210"
FIRST_DAY = dt.date(2024, 1, 1)
VERSIONS = ("v23", "v24", "v25", "v26")
_NOT_FOUND = """<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <title>Error 404 (Not Found)!!1</title>
  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>
  <p><b>404.</b> <ins>That’s an error.</ins>
  <p>The requested URL <code>{path}</code> was not found on this server.  <ins>That’s all we know.</ins>
"""
CAMPAIGNS = [
    {"id": "1001", "name": "Brand search", "status": "ENABLED", "advertisingChannelType": "SEARCH"},
    {"id": "1002", "name": "Retargeting display", "status": "PAUSED", "advertisingChannelType": "DISPLAY"},
    {"id": "1003", "name": "Summer video", "status": "REMOVED", "advertisingChannelType": "VIDEO"},
]
_FAILURE_TYPE = "type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"
_SEARCH_STREAM = re.compile(r"^/(?P<version>v\d+)/customers/(?P<customer>[^/]+)/googleAds:searchStream$")
_QUERY = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)(?:\s+WHERE\s+(?P<where>.+?))?\s*$",
                    re.IGNORECASE | re.DOTALL)
_BETWEEN = re.compile(r"segments\.date\s+BETWEEN\s+'(\d{4}-\d{2}-\d{2})'\s+AND\s+'(\d{4}-\d{2}-\d{2})'", re.I)
_DURING = re.compile(r"segments\.date\s+DURING\s+(\w+)", re.I)
_DURING_DAYS = {"TODAY": (0, 0), "YESTERDAY": (1, 1), "LAST_7_DAYS": (7, 1), "LAST_14_DAYS": (14, 1),
                "LAST_30_DAYS": (30, 1)}


class GoogleAdsAPI(FakeAPI):
    """The token endpoint and `googleAds:searchStream`; `queries` and `date_ranges()` tell what was asked."""

    def __init__(self, days: int = 40, batch_size: int = 25) -> None:
        super().__init__()
        self.days = days
        self.batch_size = batch_size
        self.tokens: List[str] = []  # every access token issued, in order
        self._valid: set = set()
        self._born_expired = 0
        self._restated: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self._request_ids = itertools.count(1)
        self._token_numbers = itertools.count(1)

    # --- test controls ----------------------------------------------------------------------------------------
    @property
    def last_day(self) -> dt.date:
        return FIRST_DAY + dt.timedelta(days=self.days - 1)

    def issue_expired(self, count: int = 1) -> None:
        self._born_expired += count

    def restate(self, day: str, campaign_id: str, **metrics: Any) -> None:
        """Change a day's metrics (e.g. `clicks=999`), as Google does when late conversions are attributed."""
        self._restated.setdefault((campaign_id, day), {}).update(metrics)

    def queries(self) -> List[str]:
        return [r.json()["query"] for r in self.requests_to("/", "POST") if "searchStream" in r.path]

    def date_ranges(self) -> List[Tuple[str, str]]:
        """The `segments.date BETWEEN` ranges of the queries asked, in order."""
        return [match.groups() for match in map(_BETWEEN.search, self.queries()) if match]

    # --- the API ----------------------------------------------------------------------------------------------
    def answer(self, request: Request) -> Reply:
        if request.path == "/token" and request.method == "POST":
            return self._token(request.form())
        stream = _SEARCH_STREAM.match(request.path)
        if stream and request.method == "POST" and stream["version"] in VERSIONS:
            return self._search_stream(request, stream["version"], stream["customer"])
        return Reply(404, _NOT_FOUND.format(path=request.path).encode(),
                     headers={"Content-Type": "text/html; charset=UTF-8"})

    def _token(self, form: Dict[str, str]) -> Reply:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Reply(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != REFRESH_TOKEN:
            return Reply(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        token = f"ya29.fake-access-{next(self._token_numbers)}-Hd83kQ"
        self.tokens.append(token)
        if self._born_expired:
            self._born_expired -= 1
        else:
            self._valid.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                           "scope": "https://www.googleapis.com/auth/adwords"})

    def _search_stream(self, request: Request, version: str, customer: str) -> Reply:
        refused = self._refused(request, version, customer)
        if refused is not None:
            return refused
        query = _QUERY.match(str((request.json() or {}).get("query", "")))
        if query is None:
            return _error(version, 400, "INVALID_ARGUMENT", "queryError", "EXPECTED_SELECT", "Missing SELECT clause.")
        fields = [f.strip() for f in query["fields"].split(",")]
        if query["resource"] != "campaign":
            return _error(version, 400, "INVALID_ARGUMENT", "queryError", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                          f"The FROM clause resource is not supported by this fake: {query['resource']}.")
        days = self._days(query["where"] or "")
        if "segments.date" in fields and days is None:
            return _error(version, 400, "INVALID_ARGUMENT", "queryError", "EXPECTED_FILTERS_ON_DATE_RANGE",
                          "Missing filters on date related fields.")
        rows = [_select(row, fields) for row in self._rows(days)]
        mask = ",".join(_camel(f) for f in fields)
        request_id = f"req-{next(self._request_ids)}"
        batches = [{"results": rows[i:i + self.batch_size], "fieldMask": mask, "requestId": request_id}
                   for i in range(0, len(rows), self.batch_size)]
        return Reply(200, batches or [{"fieldMask": mask, "requestId": request_id}])

    def _refused(self, request: Request, version: str, customer: str) -> Optional[Reply]:
        """The header checks, in the API's order: the access token, the developer token, the accounts."""
        bearer = request.headers.get("authorization", "")
        token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else ""
        if token not in self._valid:
            return _error(version, 401, "UNAUTHENTICATED", "authenticationError", "OAUTH_TOKEN_EXPIRED",
                          "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                          "cookie or other valid authentication credential.")
        if request.headers.get("developer-token") != DEVELOPER_TOKEN:
            return (_error(version, 400, "INVALID_ARGUMENT", "requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING",
                           "The developer-token parameter is required for all requests.")
                    if "developer-token" not in request.headers else
                    _error(version, 401, "UNAUTHENTICATED", "authenticationError", "DEVELOPER_TOKEN_INVALID",
                           "The developer token is not valid."))
        if "login-customer-id" in request.headers and request.headers["login-customer-id"] != LOGIN_CUSTOMER_ID:
            return _error(version, 403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED",
                          "User doesn't have permission to access customer. Note: If you're accessing a client "
                          "customer, the manager's customer id must be set in the 'login-customer-id' header.")
        if customer != CUSTOMER_ID:
            return _error(version, 400, "INVALID_ARGUMENT", "requestError", "INVALID_CUSTOMER_ID",
                          "Customer ID is invalid.")
        return None

    def _days(self, where: str) -> Optional[Tuple[dt.date, dt.date]]:
        between = _BETWEEN.search(where)
        if between:
            return dt.date.fromisoformat(between[1]), dt.date.fromisoformat(between[2])
        during = _DURING.search(where)
        if during and during[1].upper() in _DURING_DAYS:
            back, forward = _DURING_DAYS[during[1].upper()]
            today = dt.datetime.now(dt.timezone.utc).date()
            return today - dt.timedelta(days=back), today - dt.timedelta(days=forward)
        return None

    def _rows(self, days: Optional[Tuple[dt.date, dt.date]]) -> List[Dict[str, Any]]:
        """GoogleAdsRows: one per campaign without `days`, one per campaign and day within them with."""
        if days is None:
            return [{"campaign": {"resourceName": _resource_name(c["id"]), **c}} for c in CAMPAIGNS]
        first, last = max(days[0], FIRST_DAY), min(days[1], self.last_day)
        rows = []
        for offset in range((last - first).days + 1):
            day = (first + dt.timedelta(days=offset)).isoformat()
            for index, campaign in enumerate(CAMPAIGNS):
                rows.append({"campaign": {"resourceName": _resource_name(campaign["id"]), "id": campaign["id"]},
                             "segments": {"date": day}, "metrics": self._metrics(campaign["id"], day, index)})
        return rows

    def _metrics(self, campaign_id: str, day: str, index: int) -> Dict[str, Any]:
        ordinal = dt.date.fromisoformat(day).toordinal() % 100
        metrics = {"impressions": 1000 + 10 * ordinal + index, "clicks": 30 + ordinal % 7 + index,
                   "costMicros": 5_000_000_000 + 1000 * ordinal, "conversions": 1.5 + index}
        metrics.update(self._restated.get((campaign_id, day), {}))
        # int64 as JSON strings, doubles as numbers (proto3 JSON mapping)
        return {key: value if isinstance(value, float) else str(value) for key, value in metrics.items()}


def _resource_name(campaign_id: str) -> str:
    return f"customers/{CUSTOMER_ID}/campaigns/{campaign_id}"


def _camel(field: str) -> str:
    return ".".join(head + "".join(w.capitalize() for w in rest)
                    for head, *rest in (part.split("_") for part in field.split(".")))


def _select(row: Dict[str, Any], fields: List[str]) -> Dict[str, Any]:
    """The row with only the selected fields (and each resource's `resourceName`, which the API always returns)."""
    selected: Dict[str, Any] = {}
    for field in fields:
        resource, name = _camel(field).split(".", 1)
        if resource in row and name in row[resource]:
            selected.setdefault(resource, {})[name] = row[resource][name]
    for resource, values in selected.items():
        if "resourceName" in row[resource]:
            values.setdefault("resourceName", row[resource]["resourceName"])
    return selected


def _error(version: str, code: int, status: str, kind: str, reason: str, message: str) -> Reply:
    """Google's error for a searchStream request: an array holding one `{"error": ...}` with a GoogleAdsFailure."""
    failure = {"@type": _FAILURE_TYPE.format(version=version),
               "errors": [{"errorCode": {kind: reason}, "message": message}], "requestId": "req-error"}
    top = {400: "Request contains an invalid argument.", 403: "The caller does not have permission",
           401: message}.get(code, message)
    return Reply(code, [{"error": {"code": code, "message": top, "status": status, "details": [failure]}}])


def unsupported_version(version: str = VERSIONS[0]) -> Reply:
    return _error(version, 400, "INVALID_ARGUMENT", "requestError", "UNSUPPORTED_VERSION",
                  f"Version {version} is deprecated. Requests to this version will be blocked.")


def quota_error(version: str = VERSIONS[-1], retry_delay: str = "30s") -> Reply:
    """429 RESOURCE_EXHAUSTED with the wait in the failure's `quotaErrorDetails.retryDelay` (no Retry-After header)."""
    failure = {"@type": _FAILURE_TYPE.format(version=version), "requestId": "req-quota",
               "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
                           "message": "Too many requests. Retry in 30 seconds.",
                           "details": {"quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "Requests per "
                                                             "account", "retryDelay": retry_delay}}}]}
    return Reply(429, [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                  "status": "RESOURCE_EXHAUSTED", "details": [failure]}}])
