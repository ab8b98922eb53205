"""A local HTTP server on 127.0.0.1 that answers like a real API: the base of the fakes in this package.

A fake subclasses `FakeAPI` and implements `answer(request) -> Reply` from the real API's documented behaviour. The
base records every request (`requests`), serves queued faults before the real answer (`fail`), and can stream a
reply's body in chunks (`Reply.chunks`), holding it at a gate the test opens (`Gate`), so a test sees what a client
did before the whole body was sent.

Example:
    >>> class Echo(FakeAPI):
    ...     def answer(self, request):
    ...         return Reply(200, {"path": request.path})
    >>> with Echo() as api:
    ...     requests.get(api.url + "/x").json()
    {'path': '/x'}
"""

import dataclasses
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeAPI", "Gate", "Reply", "Request"]


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Dict[str, str]  # the last value of each query parameter
    headers: Dict[str, str]  # names lower-cased
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> Dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: Union[bytes, str, Any] = b""  # bytes and str are sent as they are, anything else as JSON
    headers: Dict[str, str] = dataclasses.field(default_factory=dict)
    chunks: Optional[Iterable[bytes]] = None  # a body streamed with chunked transfer encoding (instead of `body`)
    drop: bool = False  # close the connection without answering

    def payload(self) -> Tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class Gate:
    """Holds a streamed body at a point until the test opens it: `yield from gate` inside `Reply.chunks`."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self.reached = threading.Event()

    def open(self) -> None:
        self._open.set()

    def __iter__(self):
        self.reached.set()
        if not self._open.wait(30):
            raise TimeoutError("the test never opened the gate")
        return iter(())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a retried streamed response is dropped unread) is not an error of the fake."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAPI:
    """Base of the fakes: `answer(request)` is the API, this class the server, request log and fault queue."""

    def __init__(self) -> None:
        self.requests: List[Request] = []
        self._faults: List[Tuple[str, Reply]] = []
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def fail(self, path_prefix: str, *replies: Reply) -> None:
        """Serve `replies` in order, one per request whose path starts with `path_prefix`, before real answers."""
        with self._lock:
            self._faults.extend((path_prefix, reply) for reply in replies)

    def count(self, path_prefix: str = "/", method: Optional[str] = None) -> int:
        return len(self.requests_to(path_prefix, method))

    def requests_to(self, path_prefix: str = "/", method: Optional[str] = None) -> List[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix) and method in (None, r.method)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeAPI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in separate writes: without TCP_NODELAY Nagle's algorithm holds the body
            # until the client's delayed ACK, ~40 ms per request
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep stderr quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take_fault(self, path: str) -> Optional[Reply]:
        with self._lock:
            for index, (prefix, reply) in enumerate(self._faults):
                if path.startswith(prefix):
                    del self._faults[index]
                    return reply
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(handler.command, split.path, {k: v[-1] for k, v in parse_qs(split.query).items()},
                          {k.lower(): v for k, v in handler.headers.items()}, handler.rfile.read(length))
        with self._lock:
            self.requests.append(request)
        reply = self._take_fault(request.path) or self.answer(request)
        if reply.drop:
            handler.close_connection = True
            handler.connection.close()
            return
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.chunks is not None:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in reply.chunks:
                if chunk:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            return
        body, content_type = reply.payload()
        if "content-type" not in {name.lower() for name in reply.headers}:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if request.method != "HEAD" and reply.status not in (204, 304):
            handler.wfile.write(body)
