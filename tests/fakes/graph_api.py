"""A fake of the Facebook Marketing API (Graph API) for one ad account, from its documented behaviour.

- `GET /{version}/act_{id}/campaigns|adsets|ads?fields=...&limit=...` and
  `GET /{version}/act_{id}/insights?level=ad&time_increment=1&time_range={"since","until"}&fields=...`: only the
  requested fields are returned (insights always add `date_start`/`date_stop`); insight numbers are strings, `actions`
  a list of `{action_type, value}`, left out for an ad with no actions; a `since` more than 37 months back is
  refused (#3018).
- Versions: `VERSIONS` are served (as of 2026-12: v24.0 expired 2026-11-10, v27.0 released 2026-11-04); an older one
  is refused with #2635 "You are calling a deprecated version of the Ads API", an unknown one with #2500 "Unknown
  path components".
- Statuses, as the API documents them: edges without `effective_status` list only live objects (not `ARCHIVED`, not
  `DELETED`); with it, the objects in those statuses, but `DELETED` is refused on an edge (#100). Insights without
  `filtering` on `ad.effective_status` leave out archived and deleted ads; with `IN [...]`, the ads in those statuses.
  The data holds an archived ad set, an archived ad and a deleted ad (of the archived ad set).
- Cursor paging: `{"data": [...], "paging": {"cursors": {"before", "after"}, "next": <full URL>}}`. The cursors are
  opaque; the `next` URL carries `access_token=<token>` in its query string, as the real one does; a full page has a
  `next` even when nothing follows, so an exact multiple ends with a bare `{"data": []}`.
- The token is checked (`Authorization: Bearer`, or `access_token=`): missing is error 104, wrong 190.
- Errors on demand (`throttle`): #17 user limit (400), #4 app limit (403), #80004 ad-account limit (400 with
  `x-business-use-case-usage`), transient #2 (500), a token expiring mid-run (#190, subcode 463).
- "Please reduce the amount of data" (`too_much_data`: HTTP 500, code 1) on demand, via `throttle`.
- `restate(day)` changes a day's numbers, as late attribution does.
- `served`: every answer (time, path, status), rate limits included, to measure the waits between them.
"""

import base64
import dataclasses
import datetime as dt
import json
import re
import time
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import urlencode

from fakes.http import FakeAPI, Reply, Request

__all__ = ["GraphAPI", "account_limit", "app_limit", "expired_token", "months_before", "too_much_data",
           "transient_error", "user_limit"]

_PATH = re.compile(r"^/(v\d+\.\d+)/act_([^/]+)/(campaigns|adsets|ads|insights)$")
_VERSION = re.compile(r"^/(v\d+\.\d+)/")
_HIDDEN = ("ARCHIVED", "DELETED")  # left out of edges and insights unless asked for
_FIELD = re.compile(r"([a-z_]+)(\{[^}]*\})?")
_TRACE = "AbCdEfGh123"
ACTIONS = ("link_click", "post_engagement")


def _error(status: int, code: int, message: str, subcode: Optional[int] = None, transient: bool = False,
           headers: Optional[Dict[str, str]] = None) -> Reply:
    error: Dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": _TRACE}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return Reply(status, {"error": error}, headers=headers or {})


def user_limit() -> Reply:
    return _error(400, 17, "(#17) User request limit reached", subcode=2446079, transient=True)


def app_limit() -> Reply:
    return _error(403, 4, "(#4) Application request limit reached", transient=True)


def too_much_data() -> Reply:
    return _error(500, 1, "Please reduce the amount of data you're asking for, then retry your request")


def account_limit(account_id: str, minutes: float = 1, kind: str = "ads_insights") -> Reply:
    """#80004 with the wait in `estimated_time_to_regain_access` (whole minutes in the real API: a fraction here keeps
    a test's wait short)."""
    usage = {account_id: [{"type": kind, "call_count": 100, "total_cputime": 30, "total_time": 30,
                           "estimated_time_to_regain_access": minutes}]}
    return _error(400, 80004, "(#80004) There have been too many calls to this ad-account. Wait a bit and try "
                  "again.", subcode=2446079, headers={"x-business-use-case-usage": json.dumps(usage)})


def expired_token() -> Reply:
    return _error(400, 190, "Error validating access token: Session has expired on Tuesday, 01-Dec-26 10:00:00 PST.",
                  subcode=463)


def transient_error(code: int = 2) -> Reply:
    return _error(500, code, "An unexpected error has occurred. Please retry your request later.", transient=True)


@dataclasses.dataclass(frozen=True)
class _Served:
    at: float
    path: str
    status: int


class GraphAPI(FakeAPI):
    """One ad account: 2 campaigns, 3 ad sets (one archived), 4 ads (one archived, one deleted), insights per ad for
    the last `days` days up to `today`."""

    VERSIONS = ("v25.0", "v26.0", "v27.0")

    def __init__(self, token: str, account_id: str = "1234567890", today: Optional[dt.date] = None,
                 days: int = 4) -> None:
        super().__init__()
        self.token, self.account_id = token, account_id
        self.today = today or dt.datetime.now(dt.timezone.utc).date()
        self.days = [self.today - dt.timedelta(days=n) for n in reversed(range(days))]
        self.objects = _objects(account_id)
        self.served: List[_Served] = []
        self._restated: Set[dt.date] = set()
        self._throttles: List[Tuple[str, Reply]] = []

    def throttle(self, edge: str, *replies: Reply) -> None:
        """Answer the next requests to `edge` (`insights`, `campaigns`, ...) with `replies`, one each."""
        with self._lock:
            self._throttles.extend((edge, reply) for reply in replies)

    def restate(self, day: dt.date) -> None:
        """Late attribution: `day`'s impressions, spend and actions grow from now on."""
        self._restated.add(day)

    def insight(self, ad_id: str, day: dt.date) -> Dict[str, Any]:
        """The insight row of `ad_id` on `day` (all fields), as the API sends it now."""
        index = [ad["id"] for ad in self.objects["ads"]].index(ad_id)
        ad = self.objects["ads"][index]
        boost = 1000 if day in self._restated else 0
        impressions = 100 * (index + 1) + 10 * (day - self.days[0]).days + boost
        clicks = impressions // 20
        row = {"account_id": self.account_id, "campaign_id": ad["campaign_id"], "adset_id": ad["adset_id"],
               "ad_id": ad_id, "ad_name": ad["name"], "impressions": str(impressions), "clicks": str(clicks),
               "reach": str(impressions * 4 // 5), "spend": f"{impressions / 100:.2f}",
               "cpc": f"{impressions / 100 / clicks:.6f}", "ctr": f"{100 * clicks / impressions:.6f}",
               "cpm": f"{1000 * impressions / 100 / impressions:.6f}", "frequency": "1.250000",
               "date_start": day.isoformat(), "date_stop": day.isoformat()}
        if index < 3:  # the last ad has no actions: the API leaves the field out
            row["actions"] = [{"action_type": kind, "value": str(clicks + n + (5 if boost else 0))}
                              for n, kind in enumerate(ACTIONS)]
        return row

    def time_ranges(self) -> List[Dict[str, str]]:
        """The `time_range` of every insights request, in order."""
        return [json.loads(r.query["time_range"]) for r in self.requests_to("/") if r.path.endswith("/insights")
                and "time_range" in r.query]

    def answer(self, request: Request) -> Reply:
        reply = self._answer(request)
        with self._lock:
            self.served.append(_Served(time.monotonic(), request.path, reply.status))
        return reply

    def _answer(self, request: Request) -> Reply:
        denied = self._check_token(request)
        if denied:
            return denied
        refused = self._check_version(request)
        if refused:
            return refused
        match = _PATH.match(request.path)
        if not match or match[2] != self.account_id:
            return _error(400, 100, f"Unsupported get request. Object with ID '{request.path.split('/')[2]}' does "
                          "not exist, cannot be loaded due to missing permissions, or does not support this "
                          "operation.", subcode=33)
        throttled = self._take_throttle(match[3])
        if throttled:
            return throttled
        if match[3] == "insights":
            return self._insights(request)
        statuses = json.loads(request.query.get("effective_status", "null")) or None
        if statuses and "DELETED" in statuses:
            return _error(400, 100, "(#100) Filtering on DELETED objects is not supported for this edge: query a "
                          "deleted object by its id")
        fields = _fields(request)
        rows = [{k: v for k, v in obj.items() if k in fields or k == "id"} for obj in self.objects[match[3]]
                if _shown(obj["effective_status"], statuses)]
        return self._page(request, rows)

    def _check_version(self, request: Request) -> Optional[Reply]:
        version = _VERSION.match(request.path)
        if version and version[1] in self.VERSIONS:
            return None
        newest = self.VERSIONS[-1]
        if version and _number(version[1]) < _number(self.VERSIONS[0]):
            return _error(400, 2635, "(#2635) You are calling a deprecated version of the Ads API. Please update to "
                          f"the latest version: {newest}.")
        return _error(400, 2500, f"Unknown path components: {request.path}")

    def _check_token(self, request: Request) -> Optional[Reply]:
        header = request.headers.get("authorization", "")
        given = header[len("Bearer "):] if header.startswith("Bearer ") else request.query.get("access_token")
        if not given:
            return _error(400, 104, "An access token is required to request this resource.")
        if given != self.token:
            return _error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        return None

    def _take_throttle(self, edge: str) -> Optional[Reply]:
        with self._lock:
            for index, (wanted, reply) in enumerate(self._throttles):
                if wanted == edge:
                    del self._throttles[index]
                    return reply
        return None

    def _insights(self, request: Request) -> Reply:
        if request.query.get("level") != "ad" or request.query.get("time_increment") != "1":
            return _error(400, 100, "(#100) this fake answers level=ad&time_increment=1 only")
        try:
            window = json.loads(request.query["time_range"])
            since, until = dt.date.fromisoformat(window["since"]), dt.date.fromisoformat(window["until"])
        except (KeyError, ValueError) as exc:
            return _error(400, 100, f"(#100) time_range is invalid: {exc}")
        if since < months_before(self.today, 37):
            return _error(400, 3018, "(#3018) The start date of the time range cannot be beyond 37 months from "
                          "the current date")
        fields = _fields(request) | {"date_start", "date_stop"}
        statuses = _status_filter(request.query.get("filtering"))
        rows = [{k: v for k, v in self.insight(ad["id"], day).items() if k in fields}
                for day in self.days if since <= day <= until for ad in self.objects["ads"]
                if _shown(ad["effective_status"], statuses)]
        return self._page(request, rows)

    def _page(self, request: Request, rows: List[Dict[str, Any]]) -> Reply:
        limit = int(request.query.get("limit", 25))
        start = _decode(request.query["after"]) + 1 if "after" in request.query else 0
        page = rows[start:start + limit]
        if not page:
            return Reply(200, {"data": []})
        edge = request.path.rsplit("/", 1)[1]
        paging: Dict[str, Any] = {"cursors": {"before": _encode(edge, start), "after": _encode(edge, start + len(page)
                                                                                                  - 1)}}
        if len(page) == limit:
            query = {k: v for k, v in request.query.items() if k not in ("after", "access_token")}
            query.update(access_token=self.token, after=paging["cursors"]["after"])
            paging["next"] = f"{self.url}{request.path}?{urlencode(query)}"
        return Reply(200, {"data": page, "paging": paging})


def _objects(account_id: str) -> Dict[str, List[Dict[str, Any]]]:
    created = "2024-03-01T09:30:00+0000"
    campaigns = [{"id": f"2385000000000{n}", "name": f"Campaign {n}", "objective": "OUTCOME_TRAFFIC",
                  "status": "ACTIVE", "effective_status": "ACTIVE", "daily_budget": str(5000 * n),
                  "created_time": created, "updated_time": f"2024-03-0{n}T10:00:00+0000",
                  "start_time": created, "account_id": account_id} for n in (1, 2)]
    adsets = [{"id": f"2385100000000{n}", "name": f"Ad set {n}", "campaign_id": campaigns[min(n, 2) - 1]["id"],
               "status": "ACTIVE", "effective_status": "ACTIVE", "daily_budget": str(1000 * n),
               "optimization_goal": "LINK_CLICKS", "billing_event": "IMPRESSIONS", "created_time": created,
               "updated_time": created, "start_time": created, "account_id": account_id} for n in (1, 2, 3)]
    adsets[2].update(status="ARCHIVED", effective_status="ARCHIVED")
    parents = [adsets[0], adsets[0], adsets[1], adsets[2]]
    ads = [{"id": f"2385200000000{n}", "name": f"Ad {n}", "adset_id": parent["id"],
            "campaign_id": parent["campaign_id"], "status": "ACTIVE", "effective_status": "ACTIVE",
            "creative": {"id": f"2385300000000{n}"}, "created_time": created, "updated_time": created,
            "account_id": account_id} for n, parent in enumerate(parents, start=1)]
    ads[2].update(status="ARCHIVED", effective_status="ARCHIVED")
    ads[3].update(status="DELETED", effective_status="DELETED")
    return {"campaigns": campaigns, "adsets": adsets, "ads": ads}


def _shown(status: str, asked: Optional[List[str]]) -> bool:
    """Without a status filter the API answers live objects only; with one, those in the statuses asked."""
    return status in asked if asked else status not in _HIDDEN


def _status_filter(filtering: Optional[str]) -> Optional[List[str]]:
    """The statuses of `filtering=[{"field": "ad.effective_status", "operator": "IN", "value": [...]}]`."""
    rules = [rule for rule in json.loads(filtering or "[]") if rule.get("field") == "ad.effective_status"]
    return [status for rule in rules if rule.get("operator") == "IN" for status in rule["value"]] or None


def _number(version: str) -> float:
    return float(version.lstrip("v"))


def _fields(request: Request) -> Set[str]:
    """`fields=id,name,creative{id}` -> {"id", "name", "creative"}."""
    return {m[1] for m in _FIELD.finditer(request.query.get("fields", "id"))}


def _encode(edge: str, index: int) -> str:
    return base64.urlsafe_b64encode(f"fake-cursor:{edge}:{index}".encode()).decode()


def _decode(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().rsplit(":", 1)[1])


def months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    for last in (31, 30, 29, 28):  # the same day of month, or the month's last day
        try:
            return dt.date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
