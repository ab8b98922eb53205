"""A fake of NYC Open Data's CSV export of "Motor Vehicle Collisions - Crashes" (Socrata's
`GET /api/views/h9gi-nx95/rows.csv?accessType=DOWNLOAD`), as a real open-data server serves a large file.

- The CSV is generated row by row, deterministically from the published version and its row count, and streamed with
  chunked transfer encoding, gzip-compressed (flushed per chunk) when the client accepts gzip, as the portal does.
  `content_length = True` serves it whole with a `Content-Length` instead, as S3, CDNs and static file servers do.
- Shapes real files have: a UTF-8 BOM, CRLF line ends, quoted fields (the `LOCATION` "(lat, lon)" pairs; a street
  name holding a comma, double quotes and a line break), a street name beyond ASCII, empty fields, a ZIP code of
  only spaces, H:MM times, MM/DD/YYYY dates, and ZIP codes with a leading zero (New Jersey's 07xxx: NYC's own start
  with 1, but the column must stay text).
- Shapes a changed or other export has: `final_line_break = False` (the last row ends the file without CRLF),
  `header` (the header as served: rename a column, append a new one, whose fields hold `new <index>`), `encoding`
  (e.g. "cp1252", then without a BOM) and `publish(0)` (the header only).
- Validators: `ETag` and `Last-Modified` change with each `publish`; a conditional GET is answered `304 Not Modified`
  (no body) when `If-None-Match` matches (weak comparison, `*` too) or, without `If-None-Match`, when the file is not
  newer than `If-Modified-Since` (RFC 9110, 13.2.2).
- Faults: `fail(PATH, Reply(503))` from the base (before the body); `break_body(after_bytes)` cuts the next body's
  connection half way; `hold_body(after_chunks)` holds the next body at a `Gate` (both chunked bodies only).
"""

import csv
import datetime as dt
import email.utils
import io
import zlib
from typing import Dict, Iterator, List, Optional, Tuple

from fakes.http import FakeAPI, Gate, Reply, Request

PATH = "/api/views/h9gi-nx95/rows.csv"
HEADER = [
    "CRASH DATE", "CRASH TIME", "BOROUGH", "ZIP CODE", "LATITUDE", "LONGITUDE", "LOCATION", "ON STREET NAME",
    "CROSS STREET NAME", "OFF STREET NAME", "NUMBER OF PERSONS INJURED", "NUMBER OF PERSONS KILLED",
    "NUMBER OF PEDESTRIANS INJURED", "NUMBER OF PEDESTRIANS KILLED", "NUMBER OF CYCLIST INJURED",
    "NUMBER OF CYCLIST KILLED", "NUMBER OF MOTORIST INJURED", "NUMBER OF MOTORIST KILLED",
    "CONTRIBUTING FACTOR VEHICLE 1", "CONTRIBUTING FACTOR VEHICLE 2", "CONTRIBUTING FACTOR VEHICLE 3",
    "CONTRIBUTING FACTOR VEHICLE 4", "CONTRIBUTING FACTOR VEHICLE 5", "COLLISION_ID", "VEHICLE TYPE CODE 1",
    "VEHICLE TYPE CODE 2", "VEHICLE TYPE CODE 3", "VEHICLE TYPE CODE 4", "VEHICLE TYPE CODE 5",
]
FIRST_ID = 4_000_000
AWKWARD_STREET = 'PIER 76 "TOW POUND", REAR\nWEST SIDE HIGHWAY'  # a comma, quotes and a line break
ACCENTED_STREET = "PLAZA DE LAS AMÉRICAS"
_BOROUGHS = ["BROOKLYN", "QUEENS", "MANHATTAN", "BRONX", "STATEN ISLAND"]
_FACTORS = ["Unspecified", "Driver Inattention/Distraction", "Failure to Yield Right-of-Way", "Following Too Closely"]
_VEHICLES = ["Sedan", "Station Wagon/Sport Utility Vehicle", "Taxi", "Bike", "Box Truck"]
_FIRST_PUBLISHED = dt.datetime(2024, 6, 3, 14, 5, 11, tzinfo=dt.timezone.utc)


class BodyCut(ConnectionAbortedError):
    """Raised inside a streamed body: the server closes the connection half way (quietly, see `start`)."""


def crash(index: int, version: int) -> Dict[str, str]:
    """Row `index` of the file as published in `version`, each field as the CSV holds it."""
    located = index % 11 != 0
    lat, lon = (f"{40.5 + (index % 400) / 1000:.6f}", f"{-74.2 + (index % 700) / 1000:.4f}") if located else ("", "")
    in_borough = index % 13 != 0
    row = {
        "CRASH DATE": (dt.date(2024, 1, 1) + dt.timedelta(days=index % 366)).strftime("%m/%d/%Y"),
        "CRASH TIME": f"{index % 24}:{index * 7 % 60:02d}",
        "BOROUGH": _BOROUGHS[index % 5] if in_borough else "",
        "ZIP CODE": ("07302" if index % 50 == 3 else f"{11201 + index % 300}") if in_borough else
                    ("     " if index % 26 == 13 else ""),
        "LATITUDE": lat, "LONGITUDE": lon, "LOCATION": f"({lat}, {lon})" if located else "",
        "ON STREET NAME": f"{index % 90 + 1} STREET" if index % 3 else "",
        "CROSS STREET NAME": "BROADWAY" if index % 3 == 1 else "",
        "OFF STREET NAME": AWKWARD_STREET if index % 97 == 5 else ACCENTED_STREET if index % 97 == 50 else
                           ("" if index % 3 else f"{index} ATLANTIC AVENUE"),
        "COLLISION_ID": str(FIRST_ID + index),
    }
    for n, who in enumerate(("PERSONS", "PEDESTRIANS", "CYCLIST", "MOTORIST")):
        injured = "" if index % 101 == 7 else str((index + version + n) % 4)
        row[f"NUMBER OF {who} INJURED"], row[f"NUMBER OF {who} KILLED"] = injured, "1" if index % 500 == n else "0"
    for n in range(1, 6):
        involved = n <= 1 + index % 3
        row[f"CONTRIBUTING FACTOR VEHICLE {n}"] = _FACTORS[(index + n) % 4] if involved else ""
        row[f"VEHICLE TYPE CODE {n}"] = _VEHICLES[(index * n) % 5] if involved else ""
    return {name: row[name] for name in HEADER}


class OpenDataPortal(FakeAPI):
    """The portal serving one dataset's export; `publish` puts out a new version of the file."""

    def __init__(self, rows: int = 2000, chunk_bytes: int = 16 * 1024) -> None:
        super().__init__()
        self.version, self.rows, self.chunk_bytes = 1, rows, chunk_bytes
        self.content_length, self.final_line_break, self.header, self.encoding = False, True, list(HEADER), "utf-8"
        self.answers: List[int] = []  # the status of each answer to PATH (faults from `fail` are not answers)
        self.body_bytes = 0  # bytes of CSV bodies sent, all requests together (after compression)
        self._cut_after: Optional[int] = None
        self._hold: Optional[Tuple[int, Gate]] = None

    @property
    def etag(self) -> str:
        return f'W/"h9gi-nx95.{self.version}.{self.rows}"'

    @property
    def last_modified(self) -> str:
        return email.utils.format_datetime(_FIRST_PUBLISHED + dt.timedelta(days=self.version - 1), usegmt=True)

    def publish(self, rows: int) -> None:
        """A new version: `rows` rows with other counts (the injured columns), new validators."""
        self.version, self.rows = self.version + 1, rows

    def current_rows(self) -> List[Dict[str, str]]:
        return [crash(index, self.version) for index in range(self.rows)]

    def break_body(self, after_bytes: int) -> None:
        """The next body is cut off (the connection closed) after about `after_bytes` bytes."""
        self._cut_after = after_bytes

    def hold_body(self, after_chunks: int) -> Gate:
        """The next body stops after `after_chunks` chunks until the test opens the returned gate."""
        gate = Gate()
        self._hold = (after_chunks, gate)
        return gate

    def answer(self, request: Request) -> Reply:
        if request.path != PATH:
            return Reply(404, {"error": True, "message": "Not found"})
        validators = {"ETag": self.etag, "Last-Modified": self.last_modified}
        if self._not_modified(request.headers):
            self.answers.append(304)
            return Reply(304, b"", validators)
        self.answers.append(200)
        gzip = "gzip" in request.headers.get("accept-encoding", "")
        headers = {**validators, "Content-Type": "text/csv; charset=utf-8",
                   "Content-Disposition": "attachment; filename=Motor_Vehicle_Collisions_-_Crashes.csv"}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        cut, self._cut_after = self._cut_after, None
        hold, self._hold = self._hold, None
        body = self._body(self.version, self.rows, gzip, cut, hold)
        if self.content_length:
            return Reply(200, b"".join(body), headers)
        return Reply(200, headers=headers, chunks=body)

    def _not_modified(self, headers: Dict[str, str]) -> bool:
        if "if-none-match" in headers:
            tags = {tag.strip().removeprefix("W/") for tag in headers["if-none-match"].split(",")}
            return "*" in tags or self.etag.removeprefix("W/") in tags
        try:
            since = email.utils.parsedate_to_datetime(headers["if-modified-since"])
        except (KeyError, TypeError, ValueError):
            return False
        return email.utils.parsedate_to_datetime(self.last_modified) <= since

    def _body(self, version: int, rows: int, gzip: bool, cut: Optional[int],
              hold: Optional[Tuple[int, Gate]]) -> Iterator[bytes]:
        compressor = zlib.compressobj(wbits=31) if gzip else None
        sent = 0
        for number, chunk in enumerate(self._csv(version, rows)):
            if hold and number == hold[0]:
                yield from hold[1]
            if compressor:
                chunk = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
            if cut is not None and sent + len(chunk) > cut:
                self.body_bytes += cut - sent
                yield chunk[:cut - sent]
                raise BodyCut("the fake cut the body off")
            sent += len(chunk)
            self.body_bytes += len(chunk)
            yield chunk
        if compressor:
            yield compressor.flush()

    def _csv(self, version: int, rows: int) -> Iterator[bytes]:
        """The file in chunks of about `chunk_bytes`, generated as it is sent."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="")  # each row's CRLF is written before the next one
        if self.encoding == "utf-8":
            buffer.write("\ufeff")
        writer.writerow(self.header)
        for index in range(rows):
            buffer.write("\r\n")
            writer.writerow([*crash(index, version).values(), *[f"new {index}"] * (len(self.header) - len(HEADER))])
            if buffer.tell() >= self.chunk_bytes:
                yield buffer.getvalue().encode(self.encoding)
                buffer.seek(0)
                buffer.truncate()
        if self.final_line_break:
            buffer.write("\r\n")
        yield buffer.getvalue().encode(self.encoding)
