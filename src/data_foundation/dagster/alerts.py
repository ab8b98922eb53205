"""Failure alerting: a run-failure sensor posting a Slack-compatible message to a webhook from config."""

import json
import os
import urllib.request
from typing import Any, Optional, Sequence

import dagster as dg

from data_foundation.errors import mask_secrets

__all__ = ["WEBHOOK_ENV", "build_failure_alert_sensor", "post_alert"]

# A secret (Slack webhook URLs carry a token): set it in the environment or a secrets manager, never in YAML.
WEBHOOK_ENV = "FOUNDATION_ALERT_WEBHOOK_URL"


def post_alert(url: str, text: str, timeout: float = 10.0) -> int:
    """POST `{"text": ...}` (Slack's incoming-webhook shape) to `url`; returns the HTTP status."""
    body = json.dumps({"text": mask_secrets(text)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def _root_cause(error: Any) -> str:
    """The innermost error of Dagster's wrapped chain: what actually went wrong (e.g. the HTTP status and URL)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip()


def build_failure_alert_sensor(webhook_url: Optional[str] = None, name: str = "foundation_failure_alert",
                               assets: Optional[Sequence[dg.AssetKey]] = None) -> dg.SensorDefinition:
    """A sensor that posts every failed run (job, run id, failed step and error) to the webhook; with `assets`, only
    the runs that selected one of them or one of their checks, and runs of whole jobs (a component's sensor, next to
    other components' in the code location).

    The URL is read when the sensor fires: `webhook_url`, else `$FOUNDATION_ALERT_WEBHOOK_URL`; without one the
    sensor skips.
    """
    watched = set(assets) if assets is not None else None

    @dg.run_failure_sensor(name=name, default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=False)
    def _alert(context: dg.RunFailureSensorContext) -> Optional[dg.SkipReason]:
        run = context.dagster_run
        selected = {*(run.asset_selection or ()), *(check.asset_key for check in run.asset_check_selection or ())}
        if watched is not None and selected and not watched & selected:
            return dg.SkipReason("the run selected none of these assets")  # (no selection: a whole job, alerted)
        url = webhook_url or os.environ.get(WEBHOOK_ENV)
        if not url:
            return dg.SkipReason(f"no webhook configured: set {WEBHOOK_ENV}")
        error = context.failure_event.message or "run failed"
        steps = ", ".join(sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})) or "-"
        text = (f":red_circle: data-foundation run failed: job `{run.job_name}`, run `{run.run_id}`\n"
                f"steps: {steps}\n{error}")
        for event in context.get_step_failure_events()[:3]:
            if event.step_failure_data and event.step_failure_data.error:
                text += f"\n{event.step_key}: {_root_cause(event.step_failure_data.error)[:500]}"
        post_alert(url, text)
        return None

    return _alert
