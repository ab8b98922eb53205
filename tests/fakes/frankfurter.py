"""A fake of the Frankfurter v1 API (https://frankfurter.dev/v1/): the ECB's daily reference rates, time series only.

Modelled on the v1 application's code (lineofflight/frankfurter `lib/versions/v1.rb`, `quote/*.rb`, `query.rb`,
`roundable.rb`, the `Currency.between` scope):
- `GET /v1/{start}..{end}` (end optional: up to today), base from `base` or its alias `from` (default EUR), quotes
  from `symbols` or `to` (default all), both case-insensitive;
- rates exist for TARGET business days only, up to the latest published one: weekends and holidays are absent, an
  end in the future is clamped by there being no data, and today has none until `publish_today()` (the ECB publishes
  around 16:00 CET);
- a start on a day without rates starts at the business day before it (the answer's `start_date` may be before the
  one asked); a start after today is 404;
- rates are rebased from EUR and rounded as v1 does (`Roundable`: 2 to 6 decimals by size, integers above 5000);
- nothing to answer (an unknown base or quote currencies, a future start) is 404 `{"message": "not found"}`; a quote
  list that is just the base is 422 `{"message": "bad currency pair"}`.
`today` is settable (`advance`), and every request is logged (`ranges()` reads them back).
"""

import datetime as dt
import re
from typing import Dict, List, Optional, Tuple

from fakes.http import FakeAPI, Reply, Request

__all__ = ["Frankfurter", "business_days", "is_business_day"]

# units per 1 EUR, roughly as in January 2024: the anchors of the deterministic daily rates
EUR_RATES = {"EUR": 1.0, "USD": 1.09, "GBP": 0.86, "JPY": 158.7, "CAD": 1.46, "CHF": 0.94, "AUD": 1.63,
             "IDR": 16985.0, "SEK": 11.2}
_RANGE = re.compile(r"^/v1/(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})?$")
NOT_FOUND = {"message": "not found"}


def _easter(year: int) -> dt.date:
    """Easter Sunday (the Gregorian computus, anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def is_business_day(day: dt.date) -> bool:
    """A TARGET2 business day: Monday to Friday except 1 Jan, Good Friday, Easter Monday, 1 May, 25 and 26 Dec."""
    if day.weekday() >= 5 or (day.month, day.day) in {(1, 1), (5, 1), (12, 25), (12, 26)}:
        return False
    easter = _easter(day.year)
    return day not in (easter - dt.timedelta(days=2), easter + dt.timedelta(days=1))


def business_days(start: dt.date, end: dt.date) -> List[dt.date]:
    """The business days from `start` to `end`, both included."""
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)
            if is_business_day(start + dt.timedelta(days=n))]


def _round(value: float) -> float:
    """v1's `Roundable#round`."""
    if value > 5000:
        return float(round(value))
    places = 2 if value > 80 else 3 if value > 20 else 4 if value > 1 else 5 if value > 0.0001 else 6
    return float(f"{value:.{places}f}")


class Frankfurter(FakeAPI):
    """The v1 time series endpoint over deterministic rates; `today` is the fake's clock (UTC date)."""

    def __init__(self, today: dt.date) -> None:
        super().__init__()
        self.today = today
        self.published_today = False

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def latest(self) -> dt.date:
        """The latest day with rates: the last business day before today, or today once published."""
        day = self.today if self.published_today else self.today - dt.timedelta(days=1)
        while not is_business_day(day):
            day -= dt.timedelta(days=1)
        return day

    def advance(self, days: int) -> None:
        """Move the clock `days` days on; the new today is not published yet."""
        self.today += dt.timedelta(days=days)
        self.published_today = False

    def publish_today(self) -> None:
        self.published_today = True

    def rate(self, day: dt.date, base: str, currency: str) -> float:
        """Units of `currency` per 1 `base` on `day`, as the API answers it."""
        return _round(self._eur_rate(day, currency) / self._eur_rate(day, base))

    def ranges(self) -> List[Tuple[str, str, Dict[str, str]]]:
        """`(start, end, query)` of every time series request, in order."""
        found = [(_RANGE.match(r.path), r.query) for r in self.requests_to("/v1/")]
        return [(match.group(1), match.group(2) or "", query) for match, query in found if match]

    def answer(self, request: Request) -> Reply:
        match = _RANGE.match(request.path)
        if request.method != "GET" or not match:
            return Reply(404, "")  # Roda's answer to a route it does not have: an empty 404
        base = (request.query.get("from") or request.query.get("base") or "EUR").upper()
        wanted = request.query.get("to") or request.query.get("symbols")
        symbols = wanted.upper().split(",") if wanted else None
        if symbols == [base]:
            return Reply(422, {"message": "bad currency pair"})
        start = dt.date.fromisoformat(match.group(1))
        end = dt.date.fromisoformat(match.group(2)) if match.group(2) else self.today
        rates = self._series(self._first_day(start), end, base, symbols) if start <= self.today else {}
        if not rates:
            return Reply(404, NOT_FOUND)
        days = list(rates)
        return Reply(200, {"amount": 1.0, "base": base, "start_date": days[0], "end_date": days[-1], "rates": rates},
                     headers={"Cache-Control": "public, max-age=86400"})

    def _first_day(self, start: dt.date) -> dt.date:
        """`Currency.between`: the range starts at the latest day with rates on or before `start`."""
        day = min(start, self.latest)
        while not is_business_day(day):
            day -= dt.timedelta(days=1)
        return day

    def _series(self, start: dt.date, end: dt.date, base: str,
                symbols: Optional[List[str]]) -> Dict[str, Dict[str, float]]:
        if base not in EUR_RATES:
            return {}  # v1 drops every day whose rates lack the base: nothing is left
        quotes = sorted(c for c in (symbols or EUR_RATES) if c in EUR_RATES and c != base)
        days = business_days(start, min(end, self.latest)) if quotes else []
        return {day.isoformat(): {c: self.rate(day, base, c) for c in quotes} for day in days}

    @staticmethod
    def _eur_rate(day: dt.date, currency: str) -> float:
        """A deterministic wobble of up to +-2% around the anchor, by date and currency."""
        seed = sum(map(ord, currency))
        return EUR_RATES[currency] * (1 + ((day.toordinal() * 7 + seed * 13) % 41 - 20) / 1000)
