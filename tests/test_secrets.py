"""Secrets never reach output, logs or files, whatever the exception looks like: a data.py that fails with two
resolved secrets in its message (one from an environment variable, one from `.dlt/secrets.toml` under a name no
pattern knows), prints and logs them. Unit tests of the masking itself are in test_masking.py."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import List

import dagster as dg
import pytest

from conftest import write_source
from data_foundation.dagster import build_definitions
from data_foundation.load.destinations import create_target

# values no pattern could recognise: only masking by value can hide them
ENV_SECRET = "zq8-env-7Hk2mW"
TOML_SECRET = "pv4-toml-Lx9rTe"

DATA_PY = '''
import logging

import dlt


def fetch():
    """Calls an API with two secrets and fails, printing and logging them the way real code does."""
    key = dlt.secrets.get("sources.leaky.api_key")        # env SOURCES__LEAKY__API_KEY
    client = dlt.secrets.get("sources.leaky.client_ref")  # .dlt/secrets.toml: a name no pattern knows
    print(f"calling the API as {client}")
    logging.getLogger("leaky").warning("retrying with client %s", client)
    yield [{"id": 1}]
    raise RuntimeError(
        f"GET https://api.example.com/v1/things?key={key}&page=2 failed (401); "
        f"headers {{'Authorization': 'Bearer {key}'}}; config {{'password': '{client}'}}; "
        f"the account {client} is locked"
    )
'''

SOURCES_YAML = '''
resources:
  leaky.things:
    entry: data.fetch
'''


@pytest.fixture
def leaky(tmp_path: Path, monkeypatch) -> Path:
    """A sources root whose data.py raises with secrets in the message; the working directory holds
    .dlt/secrets.toml with the second secret."""
    root = write_source(tmp_path / "sources", "leaky", DATA_PY, SOURCES_YAML)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(f'[sources.leaky]\nclient_ref = "{TOML_SECRET}"\n')
    monkeypatch.setenv("SOURCES__LEAKY__API_KEY", ENV_SECRET)
    monkeypatch.chdir(tmp_path)
    return root


def _files_text(folder: Path) -> str:
    """Everything under `folder`, pickles unpickled and printed too (dlt's trace.pickle)."""
    chunks: List[str] = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            chunks.append(data.decode("utf-8", errors="replace"))
            if path.suffix == ".pickle":
                chunks.append(repr(pickle.loads(data)))
    return "\n".join(chunks)


def _leaked(text: str) -> List[str]:
    return [s for s in (ENV_SECRET, TOML_SECRET) if s in text]


# ---------------------------------------------------------------------------------------------------------------
# end to end
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("debug", [False, True])
def test_cli_output_and_files_hold_no_secret(leaky, tmp_path, debug):
    command = [sys.executable, "-m", "data_foundation.cli", "--root", str(leaky), "run", "leaky",
               "--duckdb-file", "w.duckdb", *(["--debug"] if debug else [])]
    result = subprocess.run(command, cwd=tmp_path, env={**os.environ, "RUNTIME__LOG_LEVEL": "INFO", "COLUMNS": "200"},
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    flat = " ".join(output.split())
    assert result.returncode == 1
    assert "Error: source `leaky` failed in step `extract`" in flat
    assert "?key=***&page=2" in flat and "the account *** is locked" in flat  # the message is still useful
    if debug:
        assert "Traceback" in output
    assert _leaked(output) == []
    pipelines = Path(os.environ["FOUNDATION_PIPELINES_DIR"])
    text = _files_text(pipelines)
    assert "trace.pickle" in "".join(str(p) for p in pipelines.rglob("*"))  # dlt did save its trace
    assert _leaked(text) == []


def test_dagster_event_log_holds_no_secret(leaky, tmp_path, monkeypatch):
    # in this process dlt read its secrets.toml long ago, from another folder: the second secret comes from an
    # environment variable whose name says nothing (only dlt's resolution tells it is a secret)
    monkeypatch.setenv("SOURCES__LEAKY__CLIENT_REF", TOML_SECRET)
    defs = build_definitions(leaky, create_target("duckdb", str(tmp_path / "w.duckdb")))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*defs.assets], resources=defs.resources, instance=instance, raise_on_error=False)
    assert not result.success
    records = instance.all_logs(result.run_id)
    text = "\n".join(json.dumps(dg.serialize_value(r.dagster_event) if r.dagster_event else None) + r.user_message
                     for r in records)
    assert "the account *** is locked" in text
    assert _leaked(text) == []
    assert _leaked(_files_text(Path(os.environ["FOUNDATION_PIPELINES_DIR"]))) == []
