"""Failure alerting: a failed Dagster run is posted to a webhook (a real HTTP receiver on 127.0.0.1)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from data_foundation.dagster import build_definitions
from data_foundation.dagster.alerts import WEBHOOK_ENV, build_failure_alert_sensor
from data_foundation.load.destinations import create_target


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/XXXX", received
    server.shutdown()


def _failing_root(tmp_path):
    root = tmp_path / "root" / "broken"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "data.py").write_text("def rows():\n    yield [{'id': 1}]\n    raise RuntimeError('upstream said no')\n")
    (root / "sources.yaml").write_text("resources:\n  broken.things:\n    entry: data.rows\n")
    return root.parent


def test_failed_run_is_posted_to_the_webhook(tmp_path, receiver, monkeypatch):
    url, received = receiver
    defs = build_definitions(_failing_root(tmp_path), create_target("duckdb", str(tmp_path / "w.duckdb")))
    assert "foundation_failure_alert" in {s.name for s in defs.sensors}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources, instance=instance,
                            raise_on_error=False)
    assert not result.success

    monkeypatch.setenv(WEBHOOK_ENV, url)
    sensor = build_failure_alert_sensor()
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event()).for_run_failure()
    sensor(context)

    assert len(received) == 1
    text = received[0]["text"]
    assert result.dagster_run.run_id in text
    assert "broken" in text and "upstream said no" in text


def test_without_a_webhook_the_sensor_skips(tmp_path, monkeypatch):
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    defs = build_definitions(_failing_root(tmp_path), create_target("duckdb", str(tmp_path / "w.duckdb")))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*defs.assets], resources=defs.resources, instance=instance, raise_on_error=False)
    sensor = build_failure_alert_sensor()
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event()).for_run_failure()
    skipped = sensor(context)
    assert isinstance(skipped, dg.SkipReason) and WEBHOOK_ENV in skipped.skip_message


def test_a_components_alert_reports_the_runs_of_its_own_assets(tmp_path, receiver, monkeypatch):
    """Named definitions (a component's, next to others in one code location) alert on their own assets' runs only:
    every failure sensor of the location sees every failed run."""
    url, received = receiver
    defs = build_definitions(_failing_root(tmp_path), create_target("duckdb", str(tmp_path / "w.duckdb")),
                             name="ingestion")
    assert {s.name for s in defs.sensors} == {"foundation_automation_ingestion", "foundation_failure_alert_ingestion"}
    assert [c.node_def.name for c in defs.asset_checks] == ["foundation_checks_ingestion"]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*defs.assets], resources=defs.resources, instance=instance, raise_on_error=False)
    assert not result.success
    # a run of the UI or `dg launch` records the assets it selected (an in-process one records none)
    run = result.dagster_run._replace(asset_selection=frozenset({dg.AssetKey(["broken", "things"])}))
    monkeypatch.setenv(WEBHOOK_ENV, url)
    own = next(s for s in defs.sensors if s.name == "foundation_failure_alert_ingestion")
    others = build_failure_alert_sensor(name="other_alert", assets=[dg.AssetKey(["elsewhere", "table"])])
    skipped = []
    for sensor in (others, own):
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
            dagster_event=result.get_run_failure_event()).for_run_failure()
        skipped.append(sensor(context))
    assert isinstance(skipped[0], dg.SkipReason) and skipped[1] is None
    assert len(received) == 1 and "upstream said no" in received[0]["text"]

    checks_only = run._replace(asset_selection=frozenset(), asset_check_selection=frozenset(
        {dg.AssetCheckKey(dg.AssetKey(["broken", "things"]), "schema_unchanged")}))  # a run of its checks alone
    for sensor in (others, own):
        sensor(dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=checks_only,
            dagster_event=result.get_run_failure_event()).for_run_failure())
    assert len(received) == 2  # the component's own sensor only
