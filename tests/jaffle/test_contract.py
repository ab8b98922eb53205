"""The replica answers every request recorded from the real Jaffle Shop service the same way.

`recorded/responses.json` (a copy of the platform team's recording of the real service's code) holds the answers
(status, `Link` and `content-type` headers, body) to 21 requests. Where it and the replica disagree, the recording is
right: each recorded request is replayed against the replica and compared on status, headers, the body's shape and
value types, and, for the small answers, the whole body.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jaffle_replica import JaffleReplica

RECORDING = Path(__file__).parent / "recorded" / "responses.json"
# Above this many rows a body is compared by shape and value types only (a sample of rows by value).
SMALL = 100
RESPONSES: list[dict[str, Any]] = json.loads(RECORDING.read_text())["responses"]


@pytest.fixture(scope="module")
def api():
    with JaffleReplica() as replica:
        yield replica


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    """Status, lower-cased headers and body (JSON when it parses, else text) of a GET; errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode()
    return status, {k.lower(): v for k, v in headers.items()}, body


def _shape(value: Any) -> Any:
    """The JSON type structure of `value`: objects by key, lists by the union of their items' shapes."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in value:
            shape = _shape(item)
            if shape not in shapes:
                shapes.append(shape)
        return ["list", shapes]
    return type(value).__name__


def test_the_recording_has_21_requests():
    assert len(RESPONSES) == 21


@pytest.mark.parametrize("recorded", RESPONSES, ids=[r["request"]["path"] for r in RESPONSES])
def test_replica_answers_like_the_real_service(api, recorded):
    status, headers, body = _get(api.url + recorded["request"]["path"])
    want = recorded["body"]

    assert status == recorded["status"]
    assert headers.get("link") == recorded["headers"].get("link")
    assert headers.get("content-type") == recorded["headers"].get("content-type")
    assert _shape(body) == _shape(want)
    if not isinstance(want, list) or len(want) <= SMALL:
        assert body == want
    else:
        assert body[:3] == want[:3] and body[-1] == want[-1]


def test_row_counts_is_a_list_of_table_name_and_row_count():
    """The answer that a mapping-shaped replica got wrong: the connector's reconciliation depends on it."""
    with JaffleReplica() as api:
        _, _, body = _get(api.base_url + "/row-counts")
        assert body == [{"table_name": name, "row_count": count} for name, count in api.row_counts().items()]
        api.add_day(orders=3)
        _, _, after = _get(api.base_url + "/row-counts")
    assert {row["table_name"]: row["row_count"] for row in after}["orders"] == 61_948 + 3
