"""A local HTTP server answering with the real Jaffle Shop service's recorded responses (tests/jaffle/recorded).

A request is answered by the recording of the same path and query; a list endpoint whose first page was recorded
whole (no `Link`, no filter: products, stores, supplies) also answers other page sizes (the connector asks for
`page_size=1000`). Anything else is a 404, so a test sees exactly what the real service said, nothing the replica
adds.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

RECORDING = Path(__file__).parent / "jaffle" / "recorded" / "responses.json"


def recorded_responses() -> Dict[str, Dict[str, Any]]:
    """Recorded responses by request path (with query)."""
    return {r["request"]["path"]: r for r in json.loads(RECORDING.read_text())["responses"]}


class _Handler(BaseHTTPRequestHandler):
    server: "RecordedApi"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        recorded = self.server.answer(self.path)
        if recorded is None:
            status, headers, body = 404, {"content-type": "application/json"}, b'{"detail": "Not Found"}'
        else:
            status, headers = recorded["status"], recorded["headers"]
            body = recorded["body"]
            body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RecordedApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.responses = recorded_responses()
        self.overrides: Dict[str, Tuple[int, Any]] = {}  # path -> (status, body), to break an endpoint on purpose

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1"

    def answer(self, path: str) -> Optional[Dict[str, Any]]:
        bare = urlsplit(path).path
        if bare in self.overrides:
            status, body = self.overrides[bare]
            return {"status": status, "headers": {"content-type": "application/json"}, "body": body}
        if path in self.responses:
            return self.responses[path]
        for recorded_path, recorded in self.responses.items():
            parts = urlsplit(recorded_path)
            whole = {k for k, _ in parse_qsl(parts.query)} <= {"page_size"}  # the first page, no filter
            complete = whole and "link" not in recorded["headers"] and isinstance(recorded["body"], list)
            if parts.path == bare and complete and recorded["status"] == 200:
                return recorded
        return None


def serve() -> Iterator[RecordedApi]:
    server = RecordedApi()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
