"""Exchange rates: the European Central Bank's daily reference rates, per base currency, from the Frankfurter API.

Owner: data platform team (ingestion). Purpose: one rate per business day and quote currency for each base currency
the finance models convert amounts from (`exchange_rate.usd`, `exchange_rate.cad`: the same entry, one argument).

The ECB publishes once per TARGET business day, around 16:00 CET: weekends and TARGET holidays (1 January, Good
Friday, Easter Monday, 1 May, 25 and 26 December) have no rates and are gaps, not errors. Frankfurter
(https://frankfurter.dev/v1/) serves them rebased to any of its currencies, rounded to at most six decimals.

Configuration (dlt providers: env vars, `.dlt/config.toml`), injected by dlt into the parameters of the same names:
- `sources.exchange_rate.base_url` (env `SOURCES__EXCHANGE_RATE__BASE_URL`), default the production v1 API;
- `sources.exchange_rate.symbols` (default `EUR,GBP,JPY,CAD,USD`): the quote currencies, comma-separated; the base
  itself is left out. `sources.exchange_rate.usd.symbols` sets them for one table only;
- `request_timeout` (s, default 30), `max_attempts` (default 6) and `backoff_factor` (s, default 1.0) for retries
  on 429, 5xx and dropped connections (`Retry-After` is respected).
No secret: the API is public and keyless.
"""

import datetime as dt
import decimal
from typing import Any, Dict, Iterator, List, Optional

import dlt
from dlt.sources.helpers.requests import Client, Session

PRODUCTION_URL = "https://api.frankfurter.dev/v1"


def daily_rates(base: str, incremental: Optional[dlt.sources.incremental[dt.date]] = None,
                base_url: str = PRODUCTION_URL, symbols: str = "EUR,GBP,JPY,CAD,USD", request_timeout: float = 30.0,
                max_attempts: int = 6, backoff_factor: float = 1.0) -> Iterator[List[Dict[str, Any]]]:
    """Daily ECB reference rates of one base currency against the configured quote currencies.

    One row per business day and quote currency: `date`, `base`, `currency`, `rate` (units of `currency` per one
    `base`). A run asks for the days from the last loaded date to today (UTC): the last loaded day is asked again,
    never a day that cannot exist yet, and dlt drops the rows it already has. Frankfurter starts a range that begins
    on a weekend or holiday at the business day before it; dlt's incremental drops that day too (before the start).
    """
    base = _currency(base, "base currency (the resource's `arguments`)")
    quotes = [_currency(code, "sources.exchange_rate.symbols") for code in symbols.split(",") if code.strip()]
    quotes = [code for code in dict.fromkeys(quotes) if code != base]
    if not quotes:
        raise ValueError(f"sources.exchange_rate.symbols `{symbols}` names no currency other than the base {base}: "
                         "list the quote currencies, e.g. `EUR,GBP,JPY`")
    start = incremental.start_value if incremental is not None else None
    if not start:
        raise ValueError("daily_rates needs the resource's `incremental` (cursor `date`, an `initial_value`) to know "
                         "the first day to load: declare it in sources.yaml")
    start = dt.date.fromisoformat(str(start)[:10])
    end = dt.datetime.now(dt.timezone.utc).date()
    session = _session(request_timeout, max_attempts, backoff_factor)
    yield _rows(_fetch(session, base_url, start, end, base, quotes))


def _fetch(session: Session, base_url: str, start: dt.date, end: dt.date, base: str,
           quotes: List[str]) -> Dict[str, Any]:
    """The answer of `GET /{start}..{end}?base=...&symbols=...` (v1 documents `base`/`symbols`; `from`/`to` are the
    older aliases). A 404 `{"message": "not found"}` means no rates at all: an unknown currency or a future start."""
    response = session.get(f"{base_url.rstrip('/')}/{start.isoformat()}..{end.isoformat()}",
                           params={"base": base, "symbols": ",".join(quotes)})
    if response.status_code in (404, 422):
        raise ValueError(
            f"Frankfurter answered {response.status_code} {_message(response)} for base {base}, symbols "
            f"{','.join(quotes)}, {start}..{end}: check that every currency is one Frankfurter lists at "
            f"{base_url.rstrip('/')}/currencies (set the quotes with SOURCES__EXCHANGE_RATE__SYMBOLS, the base in the "
            "resource's `arguments`) and that the start date is not in the future")
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("rates"), dict):
        raise ValueError(f"Frankfurter answered {str(body)[:200]}, not an object with `rates` by date")
    return body


def _rows(body: Dict[str, Any]) -> List[Dict[str, Any]]:
    """`{"base": "USD", "rates": {"2024-01-02": {"EUR": 0.91, ...}}}` as one row per day and currency. The rate is
    kept as the decimal the API wrote (at most six decimals): `str` of the parsed float is that text again."""
    base = str(body["base"]).upper()
    return [{"date": dt.date.fromisoformat(day), "base": base, "currency": currency,
             "rate": decimal.Decimal(str(rate))}
            for day, rates in sorted(body["rates"].items()) for currency, rate in sorted(rates.items())]


def _currency(code: str, where: str) -> str:
    """An ISO 4217 code, upper-cased: `usd` in sources.yaml is USD."""
    normalized = str(code).strip().upper()
    if len(normalized) != 3 or not normalized.isalpha():
        raise ValueError(f"{where}: `{code}` is not a three-letter currency code such as USD")
    return normalized


def _message(response: Any) -> str:
    try:
        return str(response.json().get("message"))
    except (ValueError, AttributeError):
        return response.text[:200]


def _session(request_timeout: float, max_attempts: int, backoff_factor: float) -> Session:
    return Client(
        request_timeout=request_timeout,
        request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor,
        request_max_retry_delay=60,
        raise_for_status=False,  # 404/422 carry the API's message: read it before raising
        respect_retry_after_header=True,
    ).session
