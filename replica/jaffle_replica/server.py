"""A local, stdlib-only replica of the public Jaffle Shop API (https://jaffle-shop.dlthub.com).

Behaviour copied from the real service (FastAPI over DuckDB):

* ``GET /api/v1/{customers,orders,items,products,supplies,stores}``: pages of ``page_size``
  (default 100, no maximum) selected by ``page`` (default 1).  While more rows exist the
  response carries ``Link: </api/v1/orders?page_size=100&page=2>; rel="next"`` (relative URL,
  the client's other query parameters kept, ``page`` set to ``page + 1``).  A page past the end is
  ``[]`` without a Link; ``page_size=0`` is ``[]`` *with* a next link (endless loop, as the real
  service); a negative offset (``page < 1``) is a 500; a non-integer ``page``/``page_size`` is a
  FastAPI-style 422.
* ``GET /api/v1/orders`` also takes ``start_date`` / ``end_date`` (inclusive, compared with the
  date part of ``ordered_at``; a full ISO datetime is accepted and its date part used).
* ``GET /api/v1/<entity>/<id>`` (``<sku>`` for products): one object, or a 404
  ``{"detail": "Not Found"}``.
* ``GET /api/v1/row-counts``: ``[{"table_name": "customers", "row_count": 935}, ...]``;
  ``GET /ping``, ``GET /``.

Test controls (Python API on :class:`JaffleReplica`, and HTTP under ``/_control/``):
``POST /_control/add_day[?orders=N]``, ``POST /_control/latency?ms=50``,
``POST /_control/fault?status=503&count=1&after=0&path_prefix=/api/v1/&retry_after=1&drop=0``,
``POST /_control/clear_faults``, ``POST /_control/reset``, ``GET /_control/requests``,
``GET /_control/state``, ``POST /_control/cpu?per_order_ms=1.3`` (see below), and for schema drift
``POST /_control/field?entity=stores&name=manager&value="Ann"`` (``value`` is JSON: adds or
overrides a top-level field in every row of the entity served from then on) and
``POST /_control/clear_fields[?entity=stores]``.

CPU-bound mode (``cpu_per_order_ms``, ``jaffle-api --cpu-per-order-ms 1.3``, ``POST /_control/cpu?per_order_ms=``;
off, 0, by default): the real service runs one item query per order it serves, on one worker, and needs ~80 s for
all 61,948 orders at page_size 100 (about 1.3 ms per order). In this mode every order in a response (a page of
``/orders`` or one ``/orders/<id>``) costs ``cpu_per_order_ms`` of busy CPU in the replica, spent under one lock
per replica: concurrent requests queue for it as they would for a single worker, so fetching pages in parallel
cannot make the server faster than ``orders x cpu_per_order_ms``.  The cost is paid after ``latency_ms`` and any
fault, before the response is sent.  Other endpoints cost nothing extra.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .dataset import ENTITIES, Dataset, _serialise, day_range, fast_uuid5, load_dataset, row_key

__all__ = ["Fault", "JaffleReplica", "serve"]

API_PREFIX = "/api/v1"
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_INT_MSG = "Input should be a valid integer, unable to parse string as an integer"


# --------------------------------------------------------------------------------------------
# mutable per-replica state (immutable snapshots, swapped atomically)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _State:
    dataset: Dataset
    rows: dict[str, list[bytes]]
    order_days: list[str]
    day_starts: list[int]
    #: rows added by add_day: entity -> key -> row
    extra: dict[str, dict[str, bytes]]
    #: set_field: entity -> field -> JSON value, applied to every row as it is served
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, entity: str, key: str) -> bytes | None:
        row = self.dataset.get(entity, key)
        if row is None:
            extra = self.extra.get(entity)
            if extra:
                row = extra.get(key)
        return row if row is None else self.serve(entity, [row])[0]

    def serve(self, entity: str, rows: list[bytes]) -> list[bytes]:
        """``rows`` as served: with the fields set by ``set_field`` (the stored bytes stay untouched)."""
        fields = self.fields.get(entity)
        if not fields:
            return rows
        return [_json({**json.loads(row), **fields}) for row in rows]

    def counts(self) -> dict[str, int]:
        return {name: len(self.rows[name]) for name in ENTITIES}


@dataclass
class Fault:
    """A queued failure: the next ``count`` requests matching ``path_prefix`` after skipping
    ``after`` of them fail with ``status`` (or, with ``drop``, a 200 cut off mid-body)."""

    status: int = 503
    count: int = 1
    after: int = 0
    path_prefix: str = "/api/v1/"
    retry_after: int | float | str | None = None
    drop: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "count": self.count,
            "after": self.after,
            "path_prefix": self.path_prefix,
            "retry_after": self.retry_after,
            "drop": self.drop,
        }


class _ValidationError(Exception):
    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(errors)
        self.errors = errors


class _ServerError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# the replica
# --------------------------------------------------------------------------------------------
class JaffleReplica:
    """In-process Jaffle Shop API replica.

    >>> with JaffleReplica() as api:                      # doctest: +SKIP
    ...     urllib.request.urlopen(api.base_url + "/orders?page_size=10")
    """

    def __init__(
        self,
        scale: int = 1,
        latency_ms: float = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        cpu_per_order_ms: float = 0,
    ) -> None:
        self.scale = scale
        self.latency_ms = latency_ms
        #: CPU-bound mode: busy CPU per order served, one request at a time (0: off)
        self.cpu_per_order_ms = cpu_per_order_ms
        self._worker = threading.Lock()  # the "single worker" the CPU-bound mode queues requests on
        self.host = host
        self._requested_port = port
        self._lock = threading.RLock()
        self._requests: list[tuple[str, str, dict[str, str]]] = []
        self._faults: list[Fault] = []
        self._state: _State | None = None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- data -------------------------------------------------------------------------------
    @property
    def dataset(self) -> Dataset:
        return self.state.dataset

    @property
    def state(self) -> _State:
        st = self._state
        if st is None:
            with self._lock:
                if self._state is None:
                    ds = load_dataset(self.scale)
                    self._state = _State(ds, ds.rows, ds.order_days, ds.day_starts, {})
                st = self._state
        return st

    def row_counts(self) -> dict[str, int]:
        """Current row counts (reflecting ``scale`` and added days), as ``/api/v1/row-counts``."""
        return self.state.counts()

    def add_day(self, orders: int | None = None) -> dict[str, Any]:
        """Append one day of orders after the current last day (the first call adds 2017-09-01).

        The day copies the orders of the dataset's first day (``orders=N``: ``N`` of them,
        cycling) with ids ``uuid5(NAMESPACE, f"{day}:{original_id}")`` (``f"{day}:{cycle}:{id}"``
        from the second cycle on), ``ordered_at`` moved to the new day (time kept), and new items
        with ids derived the same way.  Returns ``{"date", "orders", "items"}``.
        """
        with self._lock:
            st = self.state
            ds = st.dataset
            day = (_dt.date.fromisoformat(st.order_days[-1]) + _dt.timedelta(days=1)).isoformat()
            source = ds.first_day
            n = len(source) if orders is None else int(orders)
            if n < 0:
                raise ValueError("orders must be >= 0")
            new_orders: list[bytes] = []
            new_items: list[bytes] = []
            for i in range(n):
                src = source[i % len(source)]
                cycle = i // len(source)
                tag = f"{day}:" if cycle == 0 else f"{day}:{cycle}:"
                oid = fast_uuid5(tag + src.id)
                its = [(fast_uuid5(tag + iid), sku) for iid, sku in src.items]
                at = day + src.ordered_at[10:]
                o_json, i_json = _serialise(
                    oid, src.customer_id, at, src.store_id, src.subtotal, src.tax_paid,
                    src.order_total, its,
                )
                new_orders.append(o_json)
                new_items.extend(i_json)
            rows = dict(st.rows)
            rows["orders"] = st.rows["orders"] + new_orders
            rows["items"] = st.rows["items"] + new_items
            extra = {k: dict(v) for k, v in st.extra.items()}
            extra.setdefault("orders", {}).update((row_key(r), r) for r in new_orders)
            extra.setdefault("items", {}).update((row_key(r), r) for r in new_items)
            self._state = _State(
                ds,
                rows,
                st.order_days + [day],
                st.day_starts + [len(rows["orders"])],
                extra,
                st.fields,
            )
            return {"date": day, "orders": len(new_orders), "items": len(new_items)}

    def set_field(self, entity: str, name: str, value: Any) -> dict[str, Any]:
        """Schema drift: from now on every row of ``entity`` is served with field ``name`` set to
        ``value`` (added at the end when new, replaced in place when the row has it; any JSON
        value).  Applies to the list endpoint and single objects, days added later included; an
        order's embedded ``items`` are not touched.  Returns the entity's fields set so far."""
        if entity not in ENTITIES:
            raise ValueError(f"unknown entity {entity!r}; one of {', '.join(ENTITIES)}")
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        _json(value)  # must be JSON-serialisable
        with self._lock:
            st = self.state
            fields = {k: dict(v) for k, v in st.fields.items()}
            fields.setdefault(entity, {})[name] = value
            self._state = replace(st, fields=fields)
            return dict(fields[entity])

    def clear_fields(self, entity: str | None = None) -> None:
        """Undo ``set_field`` for ``entity`` (all entities when None)."""
        with self._lock:
            st = self.state
            fields = {k: v for k, v in st.fields.items() if entity is not None and k != entity}
            self._state = replace(st, fields=fields)

    # -- CPU-bound mode ---------------------------------------------------------------------
    def _spend_cpu(self, orders: int) -> None:
        """Busy CPU for ``orders`` orders served, one request at a time (the real service's single worker)."""
        per_order = self.cpu_per_order_ms
        if not per_order or orders <= 0:
            return
        seconds = orders * per_order / 1000.0
        with self._worker:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                pass

    # -- faults / latency / request log ------------------------------------------------------
    def inject_fault(
        self,
        status: int = 503,
        count: int = 1,
        after: int = 0,
        path_prefix: str = "/api/v1/",
        retry_after: int | float | str | None = None,
        drop: bool = False,
    ) -> Fault:
        """Queue a fault; faults are consumed in the order they were queued (per request, the
        first queued fault whose ``path_prefix`` matches decides)."""
        fault = Fault(int(status), int(count), int(after), path_prefix, retry_after, bool(drop))
        if fault.count > 0:
            with self._lock:
                self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return [Fault(**f.as_dict()) for f in self._faults]

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(method, path, query)`` of every non-control request so far (a snapshot copy)."""
        with self._lock:
            return list(self._requests)

    def _log(self, method: str, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self._requests.append((method, path, query))

    def count_requests(self, path_prefix: str = "/api/v1/") -> int:
        with self._lock:
            return sum(1 for _, p, _ in self._requests if p.startswith(path_prefix))

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Clear queued faults and the request log."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    # -- server lifecycle --------------------------------------------------------------------
    def _bind(self) -> _Server:
        if self._httpd is not None:
            raise RuntimeError("replica already started")
        self.state  # load the dataset before accepting connections
        httpd = _Server((self.host, self._requested_port), _Handler)
        httpd.replica = self
        self._httpd = httpd
        return httpd

    def start(self) -> JaffleReplica:
        """Serve in a daemon thread (``port=0`` picks a free port); returns ``self``."""
        httpd = self._bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"jaffle-replica-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._thread is not None:
            httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        httpd.close_connections()
        httpd.server_close()

    def __enter__(self) -> JaffleReplica:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("replica not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"JaffleReplica(scale={self.scale}, {where})"


def serve(
    port: int = 8000,
    scale: int = 1,
    latency_ms: float = 0,
    host: str = "127.0.0.1",
    cpu_per_order_ms: float = 0,
) -> None:
    """Run a replica in the foreground until Ctrl-C."""
    replica = JaffleReplica(
        scale=scale, latency_ms=latency_ms, host=host, port=port, cpu_per_order_ms=cpu_per_order_ms
    )
    httpd = replica._bind()
    print(
        f"Jaffle Shop replica on {replica.base_url} (orders: {replica.row_counts()['orders']})",
        flush=True,
    )
    try:
        httpd.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        replica.stop()


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    replica: JaffleReplica

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can block on DNS
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down open (keep-alive) connections so no handler thread keeps serving."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _parse_date(value: str) -> str:
    """ISO date (``YYYY-MM-DD``) of a date or datetime string; raises ``_ServerError``."""
    head = value.strip()[:10]
    rest = value.strip()[10:]
    try:
        day = _dt.date.fromisoformat(head)
    except ValueError:
        raise _ServerError(f"invalid date {value!r}") from None
    if rest and rest[0] not in "T ":
        raise _ServerError(f"invalid date {value!r}")
    return day.isoformat()


def _int_param(query: dict[str, str], name: str, default: int, errors: list) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _INT_RE.match(raw):
        errors.append(
            {"type": "int_parsing", "loc": ["query", name], "msg": _INT_MSG, "input": raw}
        )
        return default
    return int(raw)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    # -- response helpers --------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        drop: bool = False,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_phrase(status)}",
            f"date: {self.date_time_string()}",
            "server: uvicorn",
            f"content-length: {len(body)}",
            f"content-type: {content_type}",
        ]
        for k, v in headers or ():
            lines.append(f"{k}: {v}")
        if drop or self.close_connection:
            lines.append("connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = head + (body[: len(body) // 2] if drop else body)
        try:
            self.wfile.write(payload)
            if drop:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True

    def _send_json(self, status: int, obj: Any, **kw: Any) -> None:
        self._send(status, _json(obj), **kw)

    def _drain_body(self) -> None:
        length = self.headers.get("Content-Length")
        if length:
            try:
                n = int(length)
            except ValueError:
                n = 0
            while n > 0:
                chunk = self.rfile.read(min(n, 65536))
                if not chunk:
                    break
                n -= len(chunk)

    # -- dispatch ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._drain_body()
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._drain_body()
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        replica = self.server.replica
        parts = urlsplit(self.path)
        path = unquote(parts.path) or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path.startswith("/_control/"):
            try:
                self._control(method, path, query)
            except (ValueError, KeyError, TypeError) as exc:
                self._send_json(400, {"detail": str(exc)})
            return

        replica._log(method, path, query)
        latency = replica.latency_ms
        if latency:
            time.sleep(latency / 1000.0)
        fault = replica._take_fault(path)
        if fault is not None and not fault.drop:
            headers = []
            if fault.retry_after is not None:
                headers.append(("retry-after", str(fault.retry_after)))
            detail = _phrase(fault.status)
            self._send_json(fault.status, {"detail": detail}, headers=headers)
            return
        drop = fault is not None and fault.drop

        if method != "GET":
            if _route_exists(path):
                self._send_json(405, {"detail": "Method Not Allowed"}, drop=drop)
            else:
                self._send_json(404, {"detail": "Not Found"}, drop=drop)
            return
        try:
            status, body, headers, orders = _api_counted(replica.state, path, query)
            replica._spend_cpu(orders)
        except _ValidationError as exc:
            self._send_json(422, {"detail": exc.errors}, drop=drop)
            return
        except Exception:  # noqa: BLE001 - the real service answers 500 text/plain
            self._send(
                500, b"Internal Server Error", content_type="text/plain; charset=utf-8", drop=drop
            )
            return
        self._send(status, body, headers=headers, drop=drop)

    def _control(self, method: str, path: str, query: dict[str, str]) -> None:
        replica = self.server.replica
        name = path[len("/_control/") :].strip("/")
        posts = {"add_day", "latency", "cpu", "fault", "clear_faults", "reset", "field", "clear_fields"}
        gets = {"requests", "state", "faults"}
        if name not in posts | gets:
            self._send_json(404, {"detail": "Not Found"})
            return
        if (name in posts and method != "POST") or (name in gets and method != "GET"):
            self._send_json(405, {"detail": "Method Not Allowed"})
            return
        if name == "add_day":
            n = query.get("orders")
            self._send_json(200, replica.add_day(int(n) if n not in (None, "") else None))
        elif name == "latency":
            replica.latency_ms = float(query.get("ms", "0"))
            ms = replica.latency_ms
            self._send_json(200, {"latency_ms": int(ms) if ms == int(ms) else ms})
        elif name == "cpu":
            ms = float(query.get("per_order_ms", "0"))
            if ms < 0:
                raise ValueError("per_order_ms must be >= 0")
            replica.cpu_per_order_ms = ms
            self._send_json(200, {"cpu_per_order_ms": int(ms) if ms == int(ms) else ms})
        elif name == "fault":
            retry_after = query.get("retry_after")
            fault = replica.inject_fault(
                status=int(query.get("status", "503")),
                count=int(query.get("count", "1")),
                after=int(query.get("after", "0")),
                path_prefix=query.get("path_prefix", "/api/v1/"),
                retry_after=retry_after if retry_after not in (None, "") else None,
                drop=query.get("drop", "0").strip().lower() in ("1", "true", "yes", "on"),
            )
            self._send_json(200, {"queued": fault.as_dict(), "faults": len(replica.faults)})
        elif name == "field":
            entity = query["entity"]
            fields = replica.set_field(entity, query["name"], json.loads(query["value"]))
            self._send_json(200, {"entity": entity, "fields": fields})
        elif name == "clear_fields":
            replica.clear_fields(query.get("entity") or None)
            self._send_json(200, {"fields": replica.state.fields})
        elif name == "clear_faults":
            replica.clear_faults()
            self._send_json(200, {"faults": 0})
        elif name == "reset":
            replica.reset()
            self._send_json(200, {"reset": True})
        elif name == "requests":
            reqs = [{"method": m, "path": p, "query": q} for m, p, q in replica.requests]
            self._send_json(200, reqs)
        elif name == "faults":
            self._send_json(200, [f.as_dict() for f in replica.faults])
        elif name == "state":
            self._send_json(
                200,
                {
                    "scale": replica.scale,
                    "latency_ms": replica.latency_ms,
                    "cpu_per_order_ms": replica.cpu_per_order_ms,
                    "row_counts": replica.row_counts(),
                    "last_day": replica.state.order_days[-1],
                    "faults": [f.as_dict() for f in replica.faults],
                    "requests": len(replica.requests),
                    "fields": replica.state.fields,
                },
            )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _route_exists(path: str) -> bool:
    if path in ("/", "/ping", API_PREFIX + "/row-counts"):
        return True
    if not path.startswith(API_PREFIX + "/"):
        return False
    segs = path[len(API_PREFIX) + 1 :].split("/")
    return segs[0] in ENTITIES and len(segs) <= 2


_ROOT = _json({"message": "Welcome to the Jaffle Shop API (local replica)"})
_PONG = _json({"message": "pong"})
_NOT_FOUND = _json({"detail": "Not Found"})


def _api(
    st: _State, path: str, query: dict[str, str], raw_query: str
) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and extra headers of a GET on the API."""
    return _api_counted(st, path, query)[:3]


def _api_counted(
    st: _State, path: str, query: dict[str, str]
) -> tuple[int, bytes, list[tuple[str, str]], int]:
    """Status, body and extra headers of a GET on the API, and the number of orders in the body (for the
    CPU-bound mode: rows of ``/orders``, 1 for ``/orders/<id>``, 0 for anything else)."""
    if path == "/":
        return 200, _ROOT, [], 0
    if path == "/ping":
        return 200, _PONG, [], 0
    if not path.startswith(API_PREFIX + "/"):
        return 404, _NOT_FOUND, [], 0
    rest = path[len(API_PREFIX) + 1 :]
    if rest.endswith("/") and rest.count("/") == 1:
        rest = rest[:-1]  # /api/v1/orders/ == /api/v1/orders
    if rest == "row-counts":  # a list of {table_name, row_count}, as the real service answers
        counts = [{"table_name": name, "row_count": count} for name, count in st.counts().items()]
        return 200, _json(counts), [], 0
    entity, _, key = rest.partition("/")
    if entity not in ENTITIES or "/" in key:
        return 404, _NOT_FOUND, [], 0
    if key:
        row = st.get(entity, key)
        orders = int(entity == "orders")
        return (200, row, [], orders) if row is not None else (404, _NOT_FOUND, [], 0)

    errors: list[dict[str, Any]] = []
    page = _int_param(query, "page", 1, errors)
    page_size = _int_param(query, "page_size", 100, errors)
    if errors:
        raise _ValidationError(errors)

    rows = st.rows[entity]
    lo, hi = 0, len(rows)
    if entity == "orders":
        start = query.get("start_date") or None
        end = query.get("end_date") or None
        if start or end:
            lo, hi = day_range(
                st.order_days,
                st.day_starts,
                _parse_date(start) if start else None,
                _parse_date(end) if end else None,
            )
    count = hi - lo
    offset = (page - 1) * page_size
    last = offset + page_size
    headers: list[tuple[str, str]] = []
    if last < count:
        params = dict(query)
        params["page"] = str(page + 1)
        headers.append(("link", f'<{API_PREFIX}/{entity}?{urlencode(params)}>; rel="next"'))
    if offset < 0 or page_size < 0:
        # DuckDB rejects a negative LIMIT/OFFSET: the real service answers 500
        raise _ServerError("negative LIMIT/OFFSET")
    a = lo + offset
    b = min(a + page_size, hi)
    if a >= b:
        return 200, b"[]", headers, 0
    served = b"[" + b",".join(st.serve(entity, rows[a:b])) + b"]"
    return 200, served, headers, b - a if entity == "orders" else 0
