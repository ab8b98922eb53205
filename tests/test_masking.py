"""`mask_secrets`: secrets masked by value (registered values, environment variables named like secrets) and by pattern
(`key=`, `Bearer`, `'password': ...`, URL credentials), prose about secrets left alone; dlt's trace scrubbed; alerts
posted masked. The end-to-end proofs (CLI output, dlt's files, Dagster's event log) are in test_secrets.py."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import List, NamedTuple

import pytest

from data_foundation.dagster.alerts import post_alert
from data_foundation.masking import mask_secrets, register_secret, scrub


@pytest.mark.parametrize("text, masked", [
    ("GET https://api.example.com/v1?key=abc123def&page=2", "GET https://api.example.com/v1?key=***&page=2"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "Authorization: Bearer ***"),
    ("{'password': 'hunter22', 'user': 'bob'}", "{'password': '***', 'user': 'bob'}"),
    ('{"api_key": "k-123456", "page": 1}', '{"api_key": "***", "page": 1}'),
    ("postgresql://loader:s3cr3t-pw@db.internal:5432/raw", "postgresql://loader:***@db.internal:5432/raw"),
    ("DB_PASSWORD=hunter22; token = abcdefgh; password: 'x1234567'", "DB_PASSWORD=***; token = ***; password: '***'"),
    ("sources.my_api.api_key: set (env SOURCES__MY_API__API_KEY)",  # prose about a key, no value
     "sources.my_api.api_key: set (env SOURCES__MY_API__API_KEY)"),
    ("set SOURCES__X__API_KEY, or `api_key = ...` in .dlt/secrets.toml",
     "set SOURCES__X__API_KEY, or `api_key = ...` in .dlt/secrets.toml"),
    ("missing credentials: database, password", "missing credentials: database, password"),  # words stay
])
def test_patterns(text, masked):
    assert mask_secrets(text) == masked


def test_known_values_are_masked_wherever_they_appear(monkeypatch):
    register_secret("Opaque-Value-93xk")
    assert mask_secrets("the account Opaque-Value-93xk is locked") == "the account *** is locked"
    monkeypatch.setenv("SOURCES__X__CLIENT_SECRET", "env-value-55qp")
    assert mask_secrets("rejected env-value-55qp!") == "rejected ***!"
    monkeypatch.setenv("SOURCES__X__PAGE_SIZE", "1000-not-secret")
    assert mask_secrets("page size 1000-not-secret") == "page size 1000-not-secret"  # not named like a secret


class _Step(NamedTuple):  # dlt's trace is named tuples, lists and dicts of strings
    message: str
    frames: List[str]


def test_traces_are_scrubbed_without_copying_what_is_clean():
    register_secret("trace-secret-4471")
    clean = _Step("ok", ["frame"])
    trace = {"steps": [clean, _Step("failed with trace-secret-4471", ["trace-secret-4471 in a frame"])]}
    scrubbed = scrub(trace)
    assert scrubbed["steps"][1] == _Step("failed with ***", ["*** in a frame"])
    assert scrubbed["steps"][0] is clean and isinstance(scrubbed["steps"][1], _Step)
    assert scrub(clean) is clean


def test_alert_posts_no_secret(monkeypatch):
    register_secret("alert-secret-0042")
    received: List[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    post_alert(f"http://127.0.0.1:{server.server_address[1]}/hook", "run failed: locked alert-secret-0042")
    server.server_close()
    assert json.loads(received[0]) == {"text": "run failed: locked ***"}


@pytest.mark.parametrize("name, secret", [
    ("DESTINATION__SNOWFLAKE__CREDENTIALS__PASSWORD", True), ("private_key_passphrase", True), ("api_key", True),
    ("SOURCES__SHOP__AUTH", True), ("DATA_FOUNDATION__PII_SALT", True), ("refresh_token", True),
    ("authenticator", False), ("host", False), ("warehouse", False), ("role", False)])
def test_one_rule_says_which_names_hold_secrets(name, secret):
    """Targets, working-folder names, the doctor and the log mask all ask `is_secret_name`."""
    from data_foundation.load.targets import TargetSpec
    from data_foundation.masking import is_secret_name

    assert is_secret_name(name) is secret
    if name.islower():  # a credentials key in foundation.toml: refused exactly when it is a secret
        try:
            TargetSpec(destination="snowflake", credentials={name: "x"})
            refused = False
        except ValueError:
            refused = True
        assert refused is secret
