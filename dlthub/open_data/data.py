"""NYC Open Data "Motor Vehicle Collisions - Crashes": every police-reported collision in New York City since 2012,
published by the city's Socrata portal as one large CSV export (about 2 million rows), loaded whole when it changed.

Owner: data platform team (ingestion). Purpose: a raw copy of a public dataset for the road-safety models.

Configuration (dlt providers: env vars, `.dlt/config.toml`), injected by dlt into the parameters of the same names:
- `sources.open_data.url` (env `SOURCES__OPEN_DATA__URL`), default the city's export;
- `sources.open_data.chunk_size` (default 10000): rows per page handed to dlt while the file streams in;
- `sources.open_data.min_rows` (env `SOURCES__OPEN_DATA__MIN_ROWS`, default 1): a file with fewer data rows fails the
  run and the table keeps its rows (a header-only answer would otherwise empty the `replace` table);
- `request_timeout` (s, default 60: also the longest wait for the next bytes of the body), `max_attempts`
  (default 6) and `backoff_factor` (s, default 1.0) for retries on 429, 5xx and connection errors before the body
  starts (`Retry-After` is respected). A body cut off half way is not retried: the run fails and nothing is loaded.
No secret: the export is public.

What a file must hold, or the run fails and the table keeps what the last good file loaded: every column of `COLUMNS`
by its exact header name (a renamed or removed column would leave its declared column null and put the renamed one
in a new, untyped column), text in UTF-8 (the error names the line) and rows with as many fields as the header.
A new column the file adds loads as text under dlt's name for it: the table gains a column, nothing is lost; declare
it in sources.yaml (and a converter here) to type it. A field that is empty or only spaces is null in every column
(a ZIP code of five spaces is as unknown as an empty one, and a number column could not read it); other text is kept
as published, padding included.
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
# The published header, whose dlt names are the columns sources.yaml declares: change both together.
COLUMNS = [
    "CRASH DATE", "CRASH TIME", "BOROUGH", "ZIP CODE", "LATITUDE", "LONGITUDE", "LOCATION", "ON STREET NAME",
    "CROSS STREET NAME", "OFF STREET NAME", *_COUNTS, *(f"CONTRIBUTING FACTOR VEHICLE {n}" for n in range(1, 6)),
    "COLLISION_ID", *(f"VEHICLE TYPE CODE {n}" for n in range(1, 6)),
]
# By header name; every other column (ZIP CODE too: leading zeros) stays text.
CONVERTERS: Dict[str, Callable[[str], Any]] = {
    "CRASH DATE": _us_date, "CRASH TIME": _clock_time, "LATITUDE": float, "LONGITUDE": float, "COLLISION_ID": int,
    **{name: int for name in _COUNTS},
}


_KEPT = "Nothing of it is loaded: the table keeps what the last complete download loaded."


class DownloadBroken(RuntimeError):
    """The body stopped before its end (connection dropped, read timeout, corrupt compression)."""


def fetch_crashes(url: str = PRODUCTION_URL, chunk_size: int = 10_000, min_rows: int = 1,
                  request_timeout: float = 60.0, max_attempts: int = 6,
                  backoff_factor: float = 1.0) -> Iterator[List[Dict[str, Any]]]:
    """All collisions of the published CSV, typed, in pages of `chunk_size` rows while the file streams in.

    A conditional GET: `If-None-Match` / `If-Modified-Since` carry the validators of the last complete download,
    so an unchanged file answers `304 Not Modified`, nothing is downloaded and the table keeps its rows.
    """
    if chunk_size < 1:
        raise ValueError(f"sources.open_data.chunk_size must be >= 1, got {chunk_size}")
    if min_rows < 0:
        raise ValueError(f"sources.open_data.min_rows must be >= 0, got {min_rows}")
    session = Client(request_timeout=request_timeout, request_max_attempts=max_attempts,
                     request_backoff_factor=backoff_factor, request_max_retry_delay=60, raise_for_status=False,
                     respect_retry_after_header=True).session
    with session.get(url, headers=conditional_headers(url), stream=True) as response:
        if response.status_code == 304:
            mark_unchanged()
            return
        response.raise_for_status()
        yield from _pages(_csv_rows(response, url, min_rows), chunk_size)
        remember_validators(url, response)  # after the last row: the state goes with the rows' load package


def _csv_rows(response: requests.Response, url: str, min_rows: int) -> Iterator[Dict[str, Any]]:
    """Rows as they arrive: the csv module reads a text wrapper of the raw socket stream (8 KiB at a time), so
    memory holds one page, never the file. `utf-8-sig` drops a BOM; `newline=""` lets csv keep the newlines inside
    quoted fields and read CRLF line ends."""
    response.raw.decode_content = True  # gunzip as the bytes come (the portal compresses when asked, requests asks)
    # else urllib3 closes the body as soon as its Content-Length is read (or a last row without a line break), before
    # the wrapper's read of EOF, which then fails with "I/O operation on closed file"
    response.raw.auto_close = False
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
                             f"{_KEPT} The next run downloads the file again.") from exc
    except UnicodeDecodeError as exc:
        # the wrapper decodes a chunk once csv has read every line before it: the bad byte's line is the lines read
        # plus the line breaks before it in its chunk
        line = reader.line_num + exc.object.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{url}: line {line} is not UTF-8 (byte 0x{exc.object[exc.start]:02x}), the encoding "
                         f"the export is read in. {_KEPT}") from None
    if rows < min_rows:
        raise ValueError(f"{url} answered {rows} data rows, fewer than the {min_rows} expected "
                         f"(`sources.open_data.min_rows`, env SOURCES__OPEN_DATA__MIN_ROWS). {_KEPT}")


def _row_converter(header: List[str], url: str) -> Callable[[List[str], int], Dict[str, Any]]:
    _check_columns(header, url)
    converters = [CONVERTERS.get(name) for name in header]

    def convert(fields: List[str], line: int) -> Dict[str, Any]:
        if len(fields) != len(header):
            raise ValueError(f"{url}: the row ending on line {line} has {len(fields)} fields, the header "
                             f"{len(header)}")
        row = {}
        for name, to_type, value in zip(header, converters, fields):
            try:
                row[name] = (to_type(value) if to_type else value) if value and not value.isspace() else None
            except ValueError as exc:
                raise ValueError(f"{url}: the row ending on line {line} has `{value}` in `{name}` ({exc})") from None
        return row

    return convert


def _check_columns(header: List[str], url: str) -> None:
    """Every expected column by its exact name: a renamed one would load as a new text column, the declared one null."""
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        unexpected = [name for name in header if name not in COLUMNS]
        raise ValueError(f"{url}: the header lacks the columns {missing}; columns not expected: "
                         f"{unexpected or 'none'}. The file changed its columns: map them in dlthub/open_data/data.py "
                         f"(`COLUMNS`, `CONVERTERS`) and sources.yaml. {_KEPT}")


def _pages(rows: Iterator[Dict[str, Any]], chunk_size: int) -> Iterator[List[Dict[str, Any]]]:
    page: List[Dict[str, Any]] = []
    for row in rows:
        page.append(row)
        if len(page) == chunk_size:
            yield page
            page = []
    if page:
        yield page
