"""NYC Open Data "Motor Vehicle Collisions - Crashes": every police-reported collision in New York City since 2012,
published by the city's Socrata portal as one large CSV export (about 2 million rows), loaded whole when it changed.

Owner: data platform team (ingestion). Purpose: a raw copy of a public dataset for the road-safety models.

Configuration (dlt providers: env vars, `.dlt/config.toml`), injected by dlt into the parameters of the same names:
- `sources.open_data.url` (env `SOURCES__OPEN_DATA__URL`), default the city's export;
- `sources.open_data.chunk_size` (default 10000): rows per page handed to dlt while the file streams in;
- `request_timeout` (s, default 60: also the longest wait for the next bytes of the body), `max_attempts`
  (default 6) and `backoff_factor` (s, default 1.0) for retries on 429, 5xx and connection errors before the body
  starts (`Retry-After` is respected). A body cut off half way is not retried: the run fails and nothing is loaded.
No secret: the export is public.
"""

import csv
import datetime as dt
import io
from typing import Any, Callable, Dict, Iterator, List

import requests
import urllib3
from dlt.sources.helpers.requests import Client

from data_foundation.unchanged import conditional_headers, mark_unchanged, remember_validators

PRODUCTION_URL = "https://data.cityofnewyork.us/api/views/h9gi-nx95/rows.csv?accessType=DOWNLOAD"


def _us_date(value: str) -> dt.date:
    month, day, year = value.split("/")  # the export writes dates as MM/DD/YYYY
    return dt.date(int(year), int(month), int(day))


def _clock_time(value: str) -> dt.time:
    hour, minute = value.split(":")  # H:MM, the hour without a leading zero
    return dt.time(int(hour), int(minute))


_COUNTS = [f"NUMBER OF {who} {what}" for who in ("PERSONS", "PEDESTRIANS", "CYCLIST", "MOTORIST")
           for what in ("INJURED", "KILLED")]
# By header name; every other column (ZIP CODE too: leading zeros) stays text. An empty field is null in every column.
CONVERTERS: Dict[str, Callable[[str], Any]] = {
    "CRASH DATE": _us_date, "CRASH TIME": _clock_time, "LATITUDE": float, "LONGITUDE": float, "COLLISION_ID": int,
    **{name: int for name in _COUNTS},
}


class DownloadBroken(RuntimeError):
    """The body stopped before its end (connection dropped, read timeout, corrupt compression)."""


def fetch_crashes(url: str = PRODUCTION_URL, chunk_size: int = 10_000, request_timeout: float = 60.0,
                  max_attempts: int = 6, backoff_factor: float = 1.0) -> Iterator[List[Dict[str, Any]]]:
    """All collisions of the published CSV, typed, in pages of `chunk_size` rows while the file streams in.

    A conditional GET: `If-None-Match` / `If-Modified-Since` carry the validators of the last complete download,
    so an unchanged file answers `304 Not Modified`, nothing is downloaded and the table keeps its rows.
    """
    if chunk_size < 1:
        raise ValueError(f"sources.open_data.chunk_size must be >= 1, got {chunk_size}")
    session = Client(request_timeout=request_timeout, request_max_attempts=max_attempts,
                     request_backoff_factor=backoff_factor, request_max_retry_delay=60, raise_for_status=False,
                     respect_retry_after_header=True).session
    with session.get(url, headers=conditional_headers(url), stream=True) as response:
        if response.status_code == 304:
            mark_unchanged()
            return
        response.raise_for_status()
        yield from _pages(_csv_rows(response, url), chunk_size)
        remember_validators(url, response)  # after the last row: the state goes with the rows' load package


def _csv_rows(response: requests.Response, url: str) -> Iterator[Dict[str, Any]]:
    """Rows as they arrive: the csv module reads a text wrapper of the raw socket stream (8 KiB at a time), so
    memory holds one page, never the file. `utf-8-sig` drops a BOM; `newline=""` lets csv keep the newlines inside
    quoted fields and read CRLF line ends."""
    response.raw.decode_content = True  # gunzip as the bytes come (the portal compresses when asked, requests asks)
    reader = csv.reader(io.TextIOWrapper(response.raw, encoding="utf-8-sig", newline=""))
    rows = 0
    try:
        header = next(reader, None)
        if not header:
            raise ValueError(f"{url} answered an empty file, not a CSV with a header row")
        convert = _row_converter(header, url)
        for fields in reader:
            if fields:  # csv reads a blank line as []
                yield convert(fields, reader.line_num)
                rows += 1
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise DownloadBroken(f"the download of {url} broke off after {rows} rows ({type(exc).__name__}: {exc}). "
                             "Nothing of it is loaded: the table keeps what the last complete download loaded, and "
                             "the next run downloads the file again.") from exc


def _row_converter(header: List[str], url: str) -> Callable[[List[str], int], Dict[str, Any]]:
    converters = [CONVERTERS.get(name) for name in header]

    def convert(fields: List[str], line: int) -> Dict[str, Any]:
        if len(fields) != len(header):
            raise ValueError(f"{url}: the row ending on line {line} has {len(fields)} fields, the header "
                             f"{len(header)}")
        row = {}
        for name, to_type, value in zip(header, converters, fields):
            try:
                row[name] = (to_type(value) if to_type else value) if value else None
            except ValueError as exc:
                raise ValueError(f"{url}: the row ending on line {line} has `{value}` in `{name}` ({exc})") from None
        return row

    return convert


def _pages(rows: Iterator[Dict[str, Any]], chunk_size: int) -> Iterator[List[Dict[str, Any]]]:
    page: List[Dict[str, Any]] = []
    for row in rows:
        page.append(row)
        if len(page) == chunk_size:
            yield page
            page = []
    if page:
        yield page
