"""Every command the README and docs/ show is run here, for real, and must do what the docs say.

Collected: every line of a fenced block tagged `bash`, `sh`, `shell` or `console` (in `console` blocks the `$ ` lines;
the other lines are sample output, which must appear in the command's output, `...` standing for anything), and
inline code spans in the prose that are complete commands (`foundation ...`, `dagster ...`, `make ...`,
`.venv/bin/...`, without placeholders such as `NAME`, `<source>`, `[SELECTOR]...` or `...`). Every other fenced block
carries a tag (`text` for sample output, `yaml`, `sql`, `python`), so nothing is ambiguous.

`LANES` says how each command is run and what it must show; a command shown but not there, or there but no longer
shown, fails `test_every_shown_command_is_run`. All run once per module, in one sandbox: a working directory with a
copy of the sources root the docs assume (the shipped sources of `dlthub/`), `examples/`, the partitioned test
fixture, `.venv` (a link to this virtualenv) and `foundation.toml`, its own `FOUNDATION_PIPELINES_DIR` and
`DAGSTER_HOME`, and the Jaffle Shop replica at `SOURCES__JAFFLE_SHOP__BASE_URL`; the other shipped sources' commands
run against the fakes of their APIs (`tests/fakes/`, lane `sources`). Lanes run side by side, the commands of a lane
in order, each lane into its own DuckDB file (DuckDB has one writer); `walkthrough` follows the README from `make
demo` on, in `./foundation.duckdb`. An `export` line applies to the later commands of its block. Servers are
started in their own process group, checked (an HTTP answer, a log line), then stopped. `make demo` is run as what it
runs (`python -m jaffle_replica.demo`); `make test` is what CI runs (`.ci/run`), not run from the suite itself.
"""

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import duckdb
import pytest

from conftest import (EXAMPLES_ROOT, FULL_JAFFLE, REPO, SHIPPED_SOURCES, copy_dbt_project, copy_source,
                      make_dg_project, query, table_counts)
from data_foundation.config.loading import load_project
from data_foundation.dbt.environment import dbt_environment
from data_foundation.dbt.invoke import prepare_manifest
from data_foundation.load.destinations import create_target
from fakes import google_ads_api

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_TAGS = {"bash", "sh", "shell", "console"}
INLINE_PREFIXES = ("foundation ", "dagster ", "dg ", "make ", ".venv/bin/")
USER = "tester"

# --- what the docs show ------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<tag>[^`\s]*)\s*$")
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# a syntax summary: brackets, <...>, {...}, |, an ellipsis, or an upper-case placeholder word (NAME, DIR, ...)
_PLACEHOLDER = re.compile(r"[\[\]<>{}|…]|\.\.\.|(?<![\w$=/.-])[A-Z][A-Z0-9_]+(?![\w=])")


@dataclass
class Shown:
    text: str  # continuations joined, `$ ` prompt and trailing comment removed
    where: str  # file:line
    block: Optional[str] = None  # file:line of its fenced block; None for an inline code span
    output: List[str] = field(default_factory=list)  # the sample output after it in a console block

    @property
    def key(self) -> str:
        return normalize(self.text)


@dataclass
class Block:
    tag: str
    where: str
    lines: List[Tuple[int, str]]

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def normalize(command: str) -> str:
    """One key per command: whitespace collapsed, `.venv/bin/` before `foundation`/`dagster` dropped (the same
    programs), a trailing `&` dropped (the test starts servers in the background anyway)."""
    text = " ".join(command.split())
    text = re.sub(r"(^|(?<=\s))\.venv/bin/(?=(foundation|dagster)\b)", "", text)
    return re.sub(r"\s*&$", "", text)


def _strip_comment(line: str) -> str:
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def _name(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def read_blocks(path: Path) -> Tuple[List[Block], List[Tuple[int, str]]]:
    """The fenced blocks of a markdown file (indented ones too), and its prose lines."""
    blocks: List[Block] = []
    prose: List[Tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            prose.append((index + 1, lines[index]))
            index += 1
            continue
        fence, indent, start, body = opening["fence"], len(opening["indent"]), index + 1, []
        index += 1
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) \
                    and not closing["tag"]:
                break
            line = lines[index]
            body.append((index + 1, line[indent:] if not line[:indent].strip() else line.lstrip()))
            index += 1
        blocks.append(Block(opening["tag"].lower(), f"{_name(path)}:{start}", body))
        index += 1
    return blocks, prose


def _block_commands(block: Block, name: str) -> List[Shown]:
    found: List[Shown] = []
    lines, index = block.lines, 0
    while index < len(lines):
        number, line = lines[index]
        index += 1
        if block.tag == "console":
            if not line.startswith("$ "):
                if found and line.strip():
                    found[-1].output.append(line)
                continue
            line = line[2:]
        text = _strip_comment(line).strip()
        while text.endswith("\\") and index < len(lines):
            text = text[:-1].rstrip() + " " + _strip_comment(lines[index][1]).strip()
            index += 1
        if text:
            found.append(Shown(text, f"{name}:{number}", block.where))
    return found


def collect(path: Path) -> List[Shown]:
    blocks, prose = read_blocks(path)
    shown = [c for b in blocks if b.tag in SHELL_TAGS for c in _block_commands(b, _name(path))]
    for number, line in prose:
        for span in _SPAN.findall(line):
            span = span.strip()
            if span.startswith(INLINE_PREFIXES) and not _PLACEHOLDER.search(span):
                shown.append(Shown(span, f"{_name(path)}:{number}"))
    return shown


def shown_commands() -> Dict[str, List[Shown]]:
    found: Dict[str, List[Shown]] = {}
    for path in DOCS:
        for command in collect(path):
            found.setdefault(command.key, []).append(command)
    return found


def doc_block(path: Path, tag: str, needle: str) -> str:
    return next(b.text for b in read_blocks(path)[0] if b.tag == tag and needle in b.text)


# --- running them ------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flat(text: str) -> str:
    return " ".join(text.split())


def http_json(url: str, query: Optional[str] = None) -> object:
    data = json.dumps({"query": query}).encode() if query else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def graphql(port: int, query: str) -> dict:
    return http_json(f"http://127.0.0.1:{port}/graphql", query)["data"]


@dataclass
class Result:
    command: str  # as run
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Background:
    command: str
    process: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Ctrl-C to the process group, then SIGKILL to whatever is left of it (dagster's children)."""
        for sig, grace in ((signal.SIGINT, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(grace)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Spec:
    """How one documented command is run, and what it must do."""

    code: int = 0  # expected exit code
    shows: Tuple[str, ...] = ()  # pieces of the output (whitespace flattened; `{sandbox}` filled in)
    ready: Optional[Callable[["Lane", Background], None]] = None  # a server: started, then this checks it serves
    keep: bool = False  # a server the lane's next commands use: stopped when the lane ends, not once ready
    subs: Tuple[Tuple[str, str], ...] = ()  # text replaced before running: a free port, the sandbox for /srv
    env: Dict[str, str] = field(default_factory=dict)  # on top of the lane's
    cwd: str = ""  # relative to the sandbox; `{repo}` for the repository
    run_as: Optional[Callable[["Lane", str], "Result"]] = None  # how a make target is run
    check: Optional[Callable[["Lane", "Result"], None]] = None  # more assertions
    waits: Tuple[str, ...] = ()  # sandbox events to wait for first (steps of other lanes)
    done: str = ""  # a sandbox event to set after it (also when it failed or did not run)


class Sandbox:
    """The working directory the docs assume, shared by the lanes."""

    def __init__(self, path: Path, replica_url: str):
        self.path = path
        (path / ".venv").symlink_to(REPO / ".venv")
        ignore = shutil.ignore_patterns("__pycache__")
        copy_source(path / "dlthub", *SHIPPED_SOURCES)
        shutil.copytree(EXAMPLES_ROOT, path / "examples", ignore=ignore)
        partitioned = Path("tests", "cases", "valid", "partitioned")
        shutil.copytree(REPO / partitioned, path / partitioned, ignore=ignore)
        shutil.copy(REPO / "foundation.toml", path / "foundation.toml")
        # the checkout is a dg project (`[tool.dg]`, the package under src/); `platform/` a dg project of a user's own
        shutil.copy(REPO / "pyproject.toml", path / "pyproject.toml")
        (path / "src").symlink_to(REPO / "src")
        make_dg_project(path / "platform")
        (path / "platform" / ".dagster_home").mkdir()
        # foundation.toml's [dbt]: sources.yml of this root, and the manifest, as make prepares them
        settings = copy_dbt_project(path / "dbt", path / "dlthub")
        prepare_manifest(settings, dbt_environment(load_project(path / "dlthub"),
                                                   create_target("duckdb", str(path / "parse.duckdb")), settings))
        shutil.copytree(path / "dlthub", path / "scaffold" / "dlthub")  # `foundation new` writes here
        shutil.copytree(path / "dlthub", path / "srv" / "app" / "dlthub")  # docs/production.md's VM: /srv/...
        (path / "srv" / "dagster").mkdir()
        (path / "logs").mkdir()
        self.ports = {"jaffle": free_port(), "dagster": free_port(), "webserver": free_port(), "dg": free_port()}
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(
            ("FOUNDATION_", "SOURCES__", "DESTINATION__", "DAGSTER_", "DATA_FOUNDATION__", "KEY_PASSPHRASE"))}
        self.env = {
            **inherited,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{inherited.get('PATH', '')}",
            "FOUNDATION_PIPELINES_DIR": str(path / "pipelines"),
            "FOUNDATION_USER": USER,
            "DAGSTER_HOME": str(path / ".dagster_home"),  # the default of `foundation dagster`, made explicit
            "SOURCES__JAFFLE_SHOP__BASE_URL": replica_url,
            "RUNTIME__LOG_LEVEL": "WARNING",
            "RUNTIME__DLTHUB_TELEMETRY": "false",
        }
        self.events: Dict[str, threading.Event] = {}
        self.demo_added = 0  # orders of the day `make demo` added
        self.timings: Dict[str, float] = {}
        self._logs = iter(range(1, 1000))
        self._lock = threading.Lock()
        threading.Thread(target=self._create_dagster_instance, daemon=True).start()

    def _create_dagster_instance(self) -> None:
        """./.dagster_home as an earlier `foundation dagster` leaves it (sets the event `dagster_home`)."""
        try:
            import dagster as dg

            (self.path / ".dagster_home").mkdir()
            with dg.DagsterInstance.from_config(str(self.path / ".dagster_home")) as instance:
                instance.get_runs_count()
        finally:
            self.event("dagster_home").set()

    def event(self, name: str) -> threading.Event:
        with self._lock:
            return self.events.setdefault(name, threading.Event())

    def log_file(self) -> Path:
        with self._lock:
            return self.path / "logs" / f"{next(self._logs):02d}.log"


class Lane:
    def __init__(self, sandbox: Sandbox, shown: Dict[str, List[Shown]], duckdb_file: str):
        self.sandbox, self.shown = sandbox, shown
        self.env = {**sandbox.env, "FOUNDATION_DUCKDB_FILE": str(sandbox.path / duckdb_file)}
        self.exports: Dict[Optional[str], Dict[str, str]] = {}  # per block: what its `export` lines set
        self.background: List[Background] = []

    @property
    def path(self) -> Path:
        return self.sandbox.path

    @property
    def duckdb_file(self) -> Path:
        return Path(self.env["FOUNDATION_DUCKDB_FILE"])

    def fill(self, text: str) -> str:
        text = text.replace("{sandbox}", str(self.path)).replace("{repo}", str(REPO))
        return re.sub(r"\{port:(\w+)\}", lambda m: str(self.sandbox.ports[m[1]]), text)

    def shell(self, command: str, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None) -> Result:
        done = subprocess.run(["bash", "-c", command], cwd=cwd or self.path, env=env or self.env,
                              capture_output=True, text=True, timeout=600)
        return Result(command, done.returncode, done.stdout, done.stderr)

    def run(self, key: str, spec: Spec) -> None:
        shown = self.shown[key][0]
        command = re.sub(r"\s*&$", "", shown.text)
        for old, new in spec.subs:
            assert old in command, f"substitution `{old}` not in `{command}`"
            command = command.replace(old, self.fill(new))
        env = {**self.env, **self.exports.get(shown.block, {}), **{k: self.fill(v) for k, v in spec.env.items()}}
        cwd = Path(self.fill(spec.cwd)) if spec.cwd.startswith("{") else self.path / spec.cwd
        if command.startswith("export "):
            result = self._export(shown, command, env, cwd)
        elif spec.ready is not None:
            log = self.sandbox.log_file()
            with open(log, "w") as handle:
                process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=handle,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            self.background.append(Background(command, process, log))
            spec.ready(self, self.background[-1])
            if not spec.keep:
                self.background.pop().stop()
            return
        else:
            result = spec.run_as(self, command) if spec.run_as else self.shell(command, env, cwd)
        where = f"`{command}` (exit {result.code}):\n{result.output[-4000:]}"
        assert result.code == spec.code, f"expected exit {spec.code}, got {where}"
        assert "Traceback" not in result.output, f"a traceback from {where}"
        for piece in spec.shows:
            assert flat(self.fill(piece)) in flat(result.output), f"`{piece}` not in the output of {where}"
        for sample in self.shown[key]:
            if sample.output:
                assert_sample_output(sample.output, result.output, f"{where}\n(sample at {sample.where})")
        if spec.check is not None:
            spec.check(self, result)

    def _export(self, shown: Shown, command: str, env: Dict[str, str], cwd: Path) -> Result:
        """Run the `export` line as bash does; its variables apply to the later commands of its block."""
        result = self.shell(f"{command} && env -0", env, cwd)
        assert result.code == 0, f"`{command}` failed: {result.stderr}"
        values = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
        names = re.findall(r"(?:^|\s)(\w+)=", command.removeprefix("export"))
        block = self.exports.setdefault(shown.block, {})
        block.update({name: values[name] for name in names})
        return Result(command, 0, json.dumps({name: values[name] for name in names}), "")

    def stop(self) -> None:
        for started in reversed(self.background):
            started.stop()


def assert_sample_output(sample: List[str], output: str, where: str) -> None:
    """The sample output lines of a console block appear in the output, in order; `...` stands for anything."""
    text, position = flat(output), 0
    for line in sample:
        pattern = ".*?".join(re.escape(flat(piece)) for piece in flat(line).split("...")).strip()
        if pattern in ("", ".*?"):
            continue
        found = re.compile(pattern).search(text, position)
        assert found, f"sample output line `{line}` not in the output of {where}"
        position = found.end()


def wait_for(condition: Callable[[], object], what: str, started: Background, timeout: float = 180) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise AssertionError(f"`{started.command}` exited ({started.process.returncode}) before {what}:\n"
                                 f"{started.text()[-3000:]}")
        try:
            value = condition()
            if value:
                return value
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"`{started.command}`: no {what} within {timeout:.0f} s:\n{started.text()[-3000:]}")


def asset_kinds(port: int) -> Dict[str, List[str]]:
    nodes = graphql(port, "{ assetNodes { assetKey { path } kinds } }")["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n["kinds"] for n in nodes}


# --- what each command must do -----------------------------------------------------------------------------------

def run_demo(lane: Lane, command: str) -> Result:
    """`make demo` is `$(BIN)/python -m jaffle_replica.demo` after the install step: that module is run."""
    assert re.search(r"^demo: install \$\(MANIFEST\)\n\t\$\(BIN\)/python -m jaffle_replica\.demo$",
                     (REPO / "Makefile").read_text(), re.M)
    done = subprocess.run([sys.executable, "-m", "jaffle_replica.demo"], cwd=lane.path, env=lane.env,
                          capture_output=True, text=True, timeout=600)
    return Result("python -m jaffle_replica.demo", done.returncode, done.stdout, done.stderr)


def check_demo(lane: Lane, result: Result) -> None:
    added = int(re.search(r"one more day: \S+ with (\d+) orders", result.stdout)[1])
    lane.sandbox.demo_added = added
    assert table_counts(lane.duckdb_file, f"jaffle_shop_{USER}")["orders"] == FULL_JAFFLE["orders"] + added
    # the marts, built by dbt over the loaded data: every dbt test passed, as many orders as the raw table
    assert re.search(r"^Done\. PASS=\d+ WARN=0 ERROR=0 SKIP=0", result.stdout, re.M), result.stdout[-3000:]
    marts = table_counts(lane.duckdb_file, f"dbt_{USER}_marts")
    assert marts["orders"] == FULL_JAFFLE["orders"] + added and marts["customers"] == FULL_JAFFLE["customers"]
    top = query(lane.duckdb_file, f"SELECT customer_name FROM dbt_{USER}_marts.customers "
                                  "ORDER BY lifetime_spend DESC LIMIT 1")[0][0]
    assert f"Top customers by lifetime value (dbt_{USER}_marts.customers)" in flat(result.stdout) and top in \
        result.stdout
    command = result.stdout.rstrip().splitlines()[-1]  # a one-line command to paste as it is
    assert command.startswith(".venv/bin/python -c "), result.stdout[-1000:]
    pasted = lane.shell(command)
    assert pasted.code == 0 and f"{FULL_JAFFLE['orders'] + added}" in pasted.stdout, pasted.output


def check_marts(lane: Lane, result: Result) -> None:
    """README: the marts of the full reload, as many orders and order items as the raw tables."""
    marts = table_counts(lane.duckdb_file, f"dbt_{USER}_marts")
    assert (marts["orders"], marts["order_items"]) == (FULL_JAFFLE["orders"], FULL_JAFFLE["items"]) == (61_948, 90_900)
    assert table_counts(lane.duckdb_file, f"dbt_{USER}_staging") == {
        "stg_customers": 935, "stg_orders": 61_948, "stg_order_items": 90_900, "stg_products": 10,
        "stg_locations": 6, "stg_supplies": 65}


def check_mismatch_after_demo(lane: Lane, result: Result) -> None:
    """README: after `make demo` a plain run against a fresh replica finds the demo's extra orders, exit 1."""
    text, added, orders = flat(result.output), lane.sandbox.demo_added, FULL_JAFFLE["orders"]
    assert "Reconciliation mismatch" in text
    assert re.search(rf"jaffle_shop │ orders │ {orders + added:,} │ {orders:,} │ \+{added}\b", text), text[-3000:]
    assert "Error: the loaded row counts of jaffle_shop differ from what the source reports" in text
    assert f"finds {added} orders more" in flat((REPO / "README.md").read_text())  # the number the README gives


def jaffle_api_ready(lane: Lane, started: Background) -> None:
    url = f"http://127.0.0.1:{lane.sandbox.ports['jaffle']}/api/v1/row-counts"
    rows = wait_for(lambda: http_json(url), "answer on /row-counts", started)
    assert {row["table_name"]: row["row_count"] for row in rows} == FULL_JAFFLE  # the list the README describes


def check_replica_export(lane: Lane, result: Result) -> None:
    url = json.loads(result.stdout)["SOURCES__JAFFLE_SHOP__BASE_URL"]
    assert url == f"http://127.0.0.1:{lane.sandbox.ports['jaffle']}/api/v1"


def check_full_refresh(lane: Lane, result: Result) -> None:
    assert table_counts(lane.duckdb_file, f"jaffle_shop_{USER}") == FULL_JAFFLE


def check_status_json(lane: Lane, result: Result) -> None:
    """docs/operations.md: one JSON document on stdout; the orders' load as the table shows it; `ok` as the exit code."""
    document = json.loads(result.stdout)
    assert document["ok"] is (result.code == 0) and document["target"] == "dev"
    by_table = {(s["source"], t["table"]): t for s in document["sources"] for t in s["tables"]}
    orders = by_table[("jaffle_shop", "orders")]
    assert (orders["rows"], orders["freshness"]["state"]) == (FULL_JAFFLE["orders"], "fresh")
    assert orders["cursor"]["last_value"] == "2017-08-31T18:46:00"
    if result.command.split()[-2:] == ["status", "--json"]:  # every source: those never loaded say so
        assert by_table[("open_data", "crashes")]["freshness"]["state"] == "never_loaded"


def check_materialize(lane: Lane, result: Result) -> None:
    assert table_counts(lane.duckdb_file, f"jaffle_shop_{USER}") == {"stores": FULL_JAFFLE["stores"]}
    assert "default_limit: 1" in (lane.path / ".dagster_home" / "dagster.yaml").read_text()


def foundation_dagster_ready(lane: Lane, started: Background) -> None:
    """The UI serves the sources root and shows the runs made from the command line in its instance (other lanes):
    `foundation materialize`, and the partition backfill of docs/production.md."""
    port = lane.sandbox.ports["dagster"]
    kinds = wait_for(lambda: "jaffle_shop/orders" in asset_kinds(port) and asset_kinds(port), "Dagster UI", started)
    assert {f"jaffle_shop/{table}" for table in FULL_JAFFLE} <= set(kinds) and "duckdb" in kinds["jaffle_shop/orders"]
    assert f"DAGSTER_HOME={lane.path / '.dagster_home'}" in started.text()
    query = '{ assetNodes(assetKeys: [{path: ["jaffle_shop", "stores"]}]) { assetMaterializations { runId } } }'
    assert graphql(port, query)["assetNodes"][0]["assetMaterializations"], "the UI shows no materialization"
    runs = graphql(port, "{ runsOrError { ... on Runs { results { status tags { key value } } } } }")
    backfills = [r["status"] for r in runs["runsOrError"]["results"]
                 if {"key": "dagster/asset_partition_range_start", "value": "2024-01-01"} in r["tags"]]
    assert backfills == ["SUCCESS"], runs


def check_backfill(lane: Lane, result: Result) -> None:
    assert table_counts(lane.duckdb_file, f"events_{USER}") == {"daily": 6}  # 3 days of 2 events, in one run
    assert "RUN_SUCCESS" in result.output


def check_vm_export(lane: Lane, result: Result) -> None:
    values = json.loads(result.stdout)
    assert values["DAGSTER_HOME"] == str(lane.path / "srv" / "dagster") and values["FOUNDATION_TARGET"] == "prod"
    # the dagster.yaml docs/production.md says to write first
    config = doc_block(REPO / "docs" / "production.md", "yaml", "default_limit")
    (lane.path / "srv" / "dagster" / "dagster.yaml").write_text(config + "\n")


def daemon_ready(lane: Lane, started: Background) -> None:
    wait_for(lambda: "Finished auto-materialization tick for foundation_automation" in started.text(),
             "tick of the foundation_automation sensor", started)


def webserver_ready(lane: Lane, started: Background) -> None:
    port = lane.sandbox.ports["webserver"]
    kinds = wait_for(lambda: asset_kinds(port).get("jaffle_shop/orders"), "Dagster UI", started)
    assert "snowflake" in kinds  # FOUNDATION_TARGET=prod reached the code location


def check_concurrency(lane: Lane, result: Result) -> None:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(lane.path / "srv" / "dagster")) as instance:
        assert instance.event_log_storage.get_concurrency_info("foundation_snowflake").slot_count == 4


def check_backfill_pool(lane: Lane, result: Result) -> None:
    """docs/backfills.md: the pool limit is set in the instance of `foundation dagster` (./.dagster_home)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(lane.path / ".dagster_home")) as instance:
        assert instance.event_log_storage.get_concurrency_info("events_backfill").slot_count == 4


def check_key_pair(lane: Lane, result: Result) -> None:
    for name, value in json.loads(result.stdout).items():
        if name.endswith("PRIVATE_KEY"):
            assert value.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"), value[:40]
        else:
            assert value == "a long random passphrase"


def check_public_key(lane: Lane, result: Result) -> None:  # the passphrase opened the key
    assert (lane.path / "rsa_key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def check_component_scaffold(lane: Lane, result: Result) -> None:
    ingestion = lane.path / "platform" / "platform_x" / "defs" / "ingestion"
    assert (ingestion / "defs.yaml").read_text() == "type: data_foundation.SourcesComponent\n\nattributes:\n  root: .\n"
    assert sorted(p.name for p in (ingestion / "example_api").iterdir()) == ["__init__.py", "data.py", "sources.yaml"]


def check_component_run(lane: Lane, result: Result) -> None:
    assert table_counts(lane.duckdb_file, f"example_api_{USER}") == {"items": 300}


def component_dev_ready(lane: Lane, started: Background) -> None:
    port = lane.sandbox.ports["dg"]
    kinds = wait_for(lambda: asset_kinds(port).get("example_api/items"), "Dagster UI", started)
    assert set(kinds) == {"api", "dlt", "duckdb"}


def check_schema_file(lane: Lane, result: Result) -> None:
    assert (lane.path / "schema" / "sources.schema.json").read_text() == (
        REPO / "schema" / "sources.schema.json").read_text()


def check_scaffold(lane: Lane, result: Result) -> None:
    root = lane.path / "scaffold" / "dlthub"
    assert sorted(p.name for p in (root / "my_source").iterdir()) == ["__init__.py", "data.py", "sources.yaml"]
    validated = lane.shell("foundation validate", cwd=root.parent)
    assert validated.code == 0, validated.output
    assert "OK 6 source(s), 16 resource(s) valid in dlthub." in flat(validated.stdout)


def last_load_query(lane: Lane) -> None:
    """docs/production.md's `_dlt_loads` query is for the prod target: dataset `jaffle_shop` in database `RAW`. It
    runs on a DuckDB file `raw.duckdb` (catalog `raw`) loaded with `--destination duckdb`, which names datasets as
    prod does (no suffix)."""
    sql = doc_block(REPO / "docs" / "production.md", "sql", "_dlt_loads")
    loaded = lane.shell("foundation run jaffle_shop.stores --destination duckdb --duckdb-file raw.duckdb")
    assert loaded.code == 0, loaded.output
    with duckdb.connect(str(lane.path / "raw.duckdb"), read_only=True) as con:
        rows = con.sql(sql).fetchall()
    assert [(name, loads) for name, _, loads in rows] == [("jaffle_shop", 1)]


DOCTOR_PROD = ("✗ destination credentials: snowflake: missing host", "→ set DESTINATION__SNOWFLAKE__CREDENTIALS__HOST",
               "– destination reachable: skipped: the credentials do not resolve")
# lane `sources`: the shipped sources pointed at the fakes of their APIs (`fake_apis`), with the secrets they need
FAKE_ENV = {
    "SOURCES__EXCHANGE_RATE__BASE_URL": "http://127.0.0.1:{port:frankfurter}/v1",
    "SOURCES__OPEN_DATA__URL": "http://127.0.0.1:{port:open_data}/api/views/h9gi-nx95/rows.csv?accessType=DOWNLOAD",
    "SOURCES__FACEBOOK_ADS__BASE_URL": "http://127.0.0.1:{port:graph}",
    "SOURCES__FACEBOOK_ADS__ACCESS_TOKEN": "EAAJdocsFakeToken7Qw2",
    "SOURCES__FACEBOOK_ADS__ACCOUNT_ID": "act_1234567890",
    "SOURCES__GOOGLE_ADS__BASE_URL": "http://127.0.0.1:{port:google_ads}",
    "SOURCES__GOOGLE_ADS__TOKEN_URL": "http://127.0.0.1:{port:google_ads}/token",
    # the credentials the fake accepts
    "SOURCES__GOOGLE_ADS__CLIENT_ID": google_ads_api.CLIENT_ID,
    "SOURCES__GOOGLE_ADS__CLIENT_SECRET": google_ads_api.CLIENT_SECRET,
    "SOURCES__GOOGLE_ADS__REFRESH_TOKEN": google_ads_api.REFRESH_TOKEN,
    "SOURCES__GOOGLE_ADS__DEVELOPER_TOKEN": google_ads_api.DEVELOPER_TOKEN,
    "SOURCES__GOOGLE_ADS__CUSTOMER_ID": "123-456-7890",
    "SOURCES__GOOGLE_ADS__LOGIN_CUSTOMER_ID": "987-654-3210",
}
DG_HOME = {"DAGSTER_HOME": "{sandbox}/platform/.dagster_home"}  # not the instance of `foundation dagster`
BACKFILL = ("foundation materialize events.daily --root tests/cases/valid/partitioned --partition-range "
            "2024-01-01...2024-01-03")
Step = Tuple[str, Spec]

# lane -> (its DuckDB file, its commands in order). `foundation dagster`, `foundation materialize` and the backfill
# share ./.dagster_home, created before (as by an earlier `foundation dagster`: docs/production.md says the backfill
# needs it, and processes creating one instance at once can collide); the UI starts once both runs are done.
# Commands that need Snowflake run without credentials and must fail the documented, readable way.
LANES: Dict[str, Tuple[str, List[Step]]] = {
    "walkthrough": ("foundation.duckdb", [
        ("make demo", Spec(run_as=run_demo, check=check_demo, shows=(
            "$ foundation validate", "Reconciliation for jaffle_shop: all match", "1 page(s) of /orders requested"))),
        ("foundation run jaffle_shop", Spec(code=1, check=check_mismatch_after_demo)),
        ("jaffle-api --port 8000", Spec(subs=(("8000", "{port:jaffle}"),), ready=jaffle_api_ready,
                                                   keep=True)),
        ("export SOURCES__JAFFLE_SHOP__BASE_URL=http://127.0.0.1:8000/api/v1", Spec(
            subs=(("8000", "{port:jaffle}"),), check=check_replica_export)),
        ("foundation run jaffle_shop --full-refresh", Spec(check=check_full_refresh, shows=(
            "Reconciliation for jaffle_shop: all match (customers 935, items 90,900, orders 61,948",))),
        ("foundation dbt build --select source:jaffle_shop+", Spec(check=check_marts, shows=(
            "dbt build against target `dev` (duckdb)", "ERROR=0 SKIP=0"))),
        ("foundation dbt source freshness --select source:jaffle_shop", Spec(shows=(
            "PASS freshness of jaffle_shop.orders",))),
    ]),
    "dagster": ("dagster.duckdb", [
        ("foundation dagster", Spec(subs=(("foundation dagster", "foundation dagster --port {port:dagster}"),),
                                    ready=foundation_dagster_ready, waits=("materialize", "backfill"))),
    ]),
    "materialize": ("dagster.duckdb", [
        ("foundation materialize jaffle_shop.stores", Spec(check=check_materialize, done="materialize",
                                                           waits=("dagster_home",), shows=(
            "Materializing jaffle_shop/stores (DAGSTER_HOME={sandbox}/.dagster_home)", "RUN_SUCCESS",
            "Asset check 'row_count_matches_source' on 'jaffle_shop/stores' passed"))),
    ]),
    "backfill": ("backfill.duckdb", [
        (BACKFILL, Spec(check=check_backfill, done="backfill", waits=("dagster_home",))),
    ]),
    "pools": ("pools.duckdb", [
        ("dagster instance concurrency set events_backfill 4", Spec(check=check_backfill_pool,
                                                                    waits=("dagster_home",))),
    ]),
    "sources": ("sources.duckdb", [
        ("foundation run exchange_rate", Spec(env=FAKE_ENV, shows=("Done:",))),
        ("foundation run open_data", Spec(env=FAKE_ENV, shows=("Done:",))),
        ("foundation run facebook_ads", Spec(env=FAKE_ENV, shows=("Done:",))),
        ("foundation run google_ads", Spec(env=FAKE_ENV, shows=("Done:",))),
    ]),
    "vm": ("vm.duckdb", [
        ("export DAGSTER_HOME=/srv/dagster FOUNDATION_TARGET=prod FOUNDATION_SOURCES_ROOT=/srv/app/dlthub", Spec(
            subs=(("/srv/", "{sandbox}/srv/"),), check=check_vm_export)),
        ("dagster instance migrate", Spec()),
        ("dagster-daemon run -m data_foundation.definitions", Spec(ready=daemon_ready)),
        ("dagster-webserver -m data_foundation.definitions -h 127.0.0.1 -p 3000", Spec(
            subs=(("-p 3000", "-p {port:webserver}"),), ready=webserver_ready)),
        ("dagster instance concurrency set foundation_snowflake 4", Spec(
            env={"DAGSTER_HOME": "{sandbox}/srv/dagster"}, check=check_concurrency)),  # the daemon's instance
        ("foundation doctor --target prod", Spec(code=1, shows=DOCTOR_PROD)),
        ("foundation dbt build --target prod", Spec(code=1, shows=(
            "dbt-snowflake is not installed, and the `prod` output of profiles.yml needs it: "
            "pip install -e '.[snowflake]'",))),
        ("foundation run --target prod", Spec(code=1, shows=(
            "destination `snowflake` is missing credentials: host (and usually needs username, password, warehouse, "
            "role). Set DESTINATION__SNOWFLAKE__CREDENTIALS__HOST",))),
        ("export KEY_PASSPHRASE='a long random passphrase'", Spec()),
        ("openssl genrsa 2048 | openssl pkcs8 -topk8 -v2 aes-256-cbc -inform PEM -passout env:KEY_PASSPHRASE "
         "-out rsa_key.p8", Spec()),
        ("openssl rsa -in rsa_key.p8 -passin env:KEY_PASSPHRASE -pubout -out rsa_key.pub",
         Spec(check=check_public_key)),
        ("export DESTINATION__SNOWFLAKE__CREDENTIALS__HOST=myorg-myaccount", Spec()),
        ("export DESTINATION__SNOWFLAKE__CREDENTIALS__USERNAME=LOADER", Spec()),
        ("export DESTINATION__SNOWFLAKE__CREDENTIALS__WAREHOUSE=LOADING", Spec()),
        ("export DESTINATION__SNOWFLAKE__CREDENTIALS__ROLE=LOADER", Spec()),
        ('export DESTINATION__SNOWFLAKE__CREDENTIALS__PRIVATE_KEY="$(cat rsa_key.p8)"', Spec(check=check_key_pair)),
        ('export DESTINATION__SNOWFLAKE__CREDENTIALS__PRIVATE_KEY_PASSPHRASE="$KEY_PASSPHRASE"',
         Spec(check=check_key_pair)),
    ]),
    # README's dg project of a user's own (`platform/`): the component scaffolded, checked, listed, run and served
    "component": ("component.duckdb", [
        ("dg scaffold defs data_foundation.SourcesComponent ingestion", Spec(cwd="platform", env=DG_HOME,
                                                                            check=check_component_scaffold)),
        ("dg list components", Spec(cwd="platform", env={**DG_HOME, "COLUMNS": "200"}, shows=(
            "│ data_foundation.SourcesComponent ", "│ dagster_dlt.DltLoadCollectionComponent "))),
        ("dg check defs", Spec(cwd="platform", env=DG_HOME, shows=("All definitions loaded successfully.",))),
        ("dg list defs", Spec(cwd="platform", env={**DG_HOME, "COLUMNS": "200"}, shows=(
            "│ example_api/items ", "│ example_api/src/items ", "foundation_automation"))),
        ("dg launch --assets example_api/items", Spec(cwd="platform", env=DG_HOME, check=check_component_run, shows=(
            "RUN_SUCCESS", "Asset check 'primary_key_unique_not_null' on 'example_api/items' passed"))),
        ("dg dev", Spec(cwd="platform", env=DG_HOME, subs=(("dg dev", "dg dev -p {port:dg}"),),
                        ready=component_dev_ready)),
    ]),
    "cli": ("cli.duckdb", [
        ("foundation --version", Spec(shows=("foundation (data-foundation) ",))),
        ("foundation validate", Spec(shows=("OK 5 source(s), 15 resource(s) valid in dlthub.",))),
        ("foundation list", Spec(shows=(
            "│ jaffle_shop │ orders │ data.fetch_orders │ merge │ id │ ordered_at │ 0 6 * * * UTC │ 30 h │",))),
        ("foundation list --root examples --debug", Spec(shows=("│ my_api │ users │ data.fetch_users │ append │",))),
        ("foundation --root examples run", Spec(shows=(
            f"Loading my_api (users, transactions) into duckdb dataset `my_api_{USER}`", "Done: 1,250 rows loaded"))),
        ("foundation doctor", Spec(code=1, shows=(
            "✓ destination reachable: DuckDB file", "✓ dbt project: dbt/, profile output `dev`, sources.yml up to date",
            "→ set SOURCES__FACEBOOK_ADS__ACCESS_TOKEN", "→ set SOURCES__GOOGLE_ADS__REFRESH_TOKEN"))),
        (".venv/bin/dg check defs", Spec(shows=("All definitions loaded successfully.",))),
        (".venv/bin/dg list defs", Spec(env={"COLUMNS": "200"}, shows=(
            "│ jaffle_shop/orders ", "│ staging/stg_orders ", "foundation_automation"))),
        ("foundation schema --output schema/sources.schema.json", Spec(
            shows=("wrote schema/sources.schema.json",), check=check_schema_file)),
        (".venv/bin/python -m pytest tests/jaffle/test_contract.py -q", Spec(cwd="{repo}", shows=(" passed",))),
        ("foundation run jaffle_shop.orders --full-refresh", Spec(shows=(
            "Reconciliation for jaffle_shop: all match (orders 61,948)",))),
        # docs/operations.md: status, plan and state after that load of the orders alone
        ("foundation status", Spec(code=1, shows=(
            "│ jaffle_shop │ orders │", "│ 61,948 │", "│ ordered_at = 2017-08-31T18:46:00 │ fresh │",
            "│ open_data │ crashes │", "never loaded", "0 source(s) failing"))),
        ("foundation status --json", Spec(code=1, check=check_status_json)),
        ("foundation status jaffle_shop.orders --json", Spec(check=check_status_json)),
        ("foundation plan jaffle_shop.orders", Spec(shows=("│ merge │ id │ ordered_at │", "(last_value)",
                                                           "drops orders", "on cron 0 6 * *"))),
        ("foundation state show jaffle_shop", Spec(shows=(
            f"jaffle_shop: pipeline foundation_jaffle_shop, dataset `jaffle_shop_{USER}` in duckdb",
            "│ orders │ ordered_at │ 2017-08-31T18:46:00 │ 2016-09-01T00:00:00 │"))),
        ("foundation state reset jaffle_shop.orders --to 2017-06-01 --dry-run", Spec(shows=(
            "jaffle_shop.orders (ordered_at): 2017-08-31T18:46:00 -> 2017-06-01", "Dry run: nothing changed."))),
        ("foundation state reset jaffle_shop.orders --to 2017-06-01 --yes", Spec(shows=(
            "Reset: state version 2 saved in `jaffle_shop_tester._dlt_pipeline_state`",))),
        ("foundation run jaffle_shop.orders", Spec(shows=(
            "Done: 25,749 rows loaded", "Reconciliation for jaffle_shop: all match (orders 61,948)"))),
        # no database: off the walkthrough's critical path
        ("foundation dbt sources --check", Spec(shows=("dbt/models/sources.yml matches the sources.",))),
        ("foundation dbt sources", Spec(shows=("dbt/models/sources.yml is up to date (5 source(s), 15 table(s))",))),
        ("foundation new my_source", Spec(cwd="scaffold", shows=("created dlthub/my_source/sources.yaml",),
                                          check=check_scaffold)),
    ]),
}
EXTRA = {"cli": last_load_query}  # after the lane's commands: a documented query, not a command
NOT_RUN = {"make test": "what CI runs (.ci/run): the suite that runs this test",
           "foundation dbt prepare": "run by make (the Makefile's manifest rule) before `make demo` and `make test`; "
                                     "the sandbox's manifest is prepared the same way"}
COMMANDS: Dict[str, Spec] = {key: spec for _, steps in LANES.values() for key, spec in steps}


def _outcome(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc))


def run_lane(name: str, sandbox: Sandbox, shown: Dict[str, List[Shown]], outcomes: Dict[str, Optional[str]]) -> None:
    duckdb_file, steps = LANES[name]
    lane, failed = Lane(sandbox, shown, duckdb_file), None
    try:
        for key, spec in steps:
            started = time.monotonic()
            try:
                assert failed is None, f"not run: `{failed}` failed before it in lane `{name}`"
                for event in spec.waits:
                    assert sandbox.event(event).wait(600), f"no `{event}` in 600 s"
                lane.run(key, spec)
                outcomes[key] = None
            except Exception as exc:  # reported by the command's own test
                failed = failed or key
                outcomes[key] = _outcome(exc)
            finally:
                if spec.done:
                    sandbox.event(spec.done).set()
            sandbox.timings[key] = time.monotonic() - started
        if name in EXTRA:
            try:
                EXTRA[name](lane)
                outcomes[EXTRA[name].__name__] = None
            except Exception as exc:
                outcomes[EXTRA[name].__name__] = _outcome(exc)
    finally:
        lane.stop()


# --- tests -------------------------------------------------------------------------------------------------------

def test_fenced_blocks_are_tagged():
    """A block without a tag could be commands or output: every block says which (`bash`, `console`, `text`, ...)."""
    untagged = [b.where for path in DOCS for b in read_blocks(path)[0] if not b.tag]
    assert not untagged, f"fenced blocks without a language tag (`text` for sample output): {untagged}"


def test_every_shown_command_is_run():
    shown = shown_commands()
    unknown = {key: [c.where for c in found] for key, found in shown.items() if key not in {**COMMANDS, **NOT_RUN}}
    assert not unknown, ("commands shown in the docs that tests/test_docs.py does not run; add them to LANES (or "
                         "write syntax with placeholders, or a `text` block for output):\n"
                         + "\n".join(f"  {key}   ({', '.join(where)})" for key, where in unknown.items()))
    stale = sorted(key for key in {**COMMANDS, **NOT_RUN} if key not in shown)
    assert not stale, f"commands in LANES that the docs no longer show: {stale}"
    assert len(COMMANDS) == sum(len(steps) for _, steps in LANES.values()), "a command is in two lanes"


def test_the_docs_show_no_superseded_dagster_command():
    """Dagster marks the commands `dg` replaces as superseded (and warns on every run): none is shown."""
    import click
    from dagster._annotations import is_superseded
    from dagster._cli import cli

    def commands(group: click.Group, path: str) -> Iterator[Tuple[str, click.Command]]:
        context = click.Context(group)
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            if isinstance(command, click.Group):
                yield from commands(command, f"{path} {name}")
            else:
                yield f"{path} {name}", command

    superseded = [name for name, command in commands(cli, "dagster") if is_superseded(command.callback)]
    assert "dagster definitions validate" in superseded and "dagster asset materialize" in superseded
    shown = [key for key in shown_commands() if key.startswith(tuple(superseded))]
    assert not shown, f"superseded Dagster commands in the docs (use dg): {shown}"


def test_collection_follows_the_conventions(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Run `foundation run jaffle_shop`, not `foundation run [SELECTOR]...`, `foundation new NAME`, "
        "`foundation_automation` or `dagster asset materialize -m x ...`.\n\n"
        "```bash\n# a comment\nfoundation validate   # trailing comment\nfoundation run a \\\n    --debug &\n"
        ".venv/bin/foundation list\n```\n\n"
        "- item\n\n  ```console\n  $ foundation doctor\n  ✓ Python: ...\n  ```\n\n"
        "```text\nfoundation not-a-command\n```\n")
    found = collect(page)
    assert [c.key for c in found] == ["foundation validate", "foundation run a --debug", "foundation list",
                                      "foundation doctor", "foundation run jaffle_shop"]
    assert found[3].output == ["✓ Python: ..."]


def test_commands_not_run_here_are_what_ci_runs():
    """`make test` is what CI runs: the manifest, the sources.yml check, the suite; the manifest rule is the one
    place `foundation dbt prepare` runs."""
    makefile = (REPO / "Makefile").read_text()
    assert list(NOT_RUN) == ["make test", "foundation dbt prepare"]
    assert re.search(r"^test: install \$\(MANIFEST\)\n\t\$\(BIN\)/foundation dbt sources --check\n"
                     r"\t\$\(BIN\)/python -m pytest$", makefile, re.M)
    assert re.search(r"^\$\(MANIFEST\): .*\n\t\$\(BIN\)/foundation dbt prepare$", makefile, re.M)
    assert (REPO / ".ci" / "run").read_text().rstrip().endswith("\nmake test")


def test_readme_example_is_the_examples_folder():
    """The README's `my_api` example is the folder that `foundation --root examples run` loads."""
    readme = REPO / "README.md"
    assert doc_block(readme, "python", "def fetch_users") in (EXAMPLES_ROOT / "my_api" / "data.py").read_text()
    assert doc_block(readme, "yaml", "my_api.users") == (EXAMPLES_ROOT / "my_api" / "sources.yaml").read_text().strip()


@contextlib.contextmanager
def fake_apis() -> Iterator[Dict[str, int]]:
    """The APIs of the shipped sources other than the Jaffle Shop, faked (`tests/fakes/`); name -> port."""
    from fakes.frankfurter import Frankfurter
    from fakes.graph_api import GraphAPI
    from fakes.open_data import OpenDataPortal

    apis = {"frankfurter": Frankfurter(today=dt.datetime.now(dt.timezone.utc).date()), "open_data": OpenDataPortal(),
            "graph": GraphAPI(token=FAKE_ENV["SOURCES__FACEBOOK_ADS__ACCESS_TOKEN"]),
            "google_ads": google_ads_api.GoogleAdsAPI()}
    with contextlib.ExitStack() as stack:
        for api in apis.values():
            stack.enter_context(api)
        yield {name: int(api.url.rsplit(":", 1)[1]) for name, api in apis.items()}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Dict[str, Optional[str]]:
    """Every documented command run once, the lanes side by side: command -> None, or what went wrong."""
    from jaffle_replica import JaffleReplica

    shown, results = shown_commands(), {}
    with JaffleReplica() as replica, fake_apis() as fakes:
        sandbox = Sandbox(tmp_path_factory.mktemp("docs_sandbox"), replica.base_url)
        sandbox.ports.update(fakes)
        started = time.monotonic()
        with ThreadPoolExecutor(len(LANES)) as pool:
            for future in [pool.submit(run_lane, name, sandbox, shown, results) for name in LANES]:
                future.result()
    timings = "\n".join(f"  {seconds:5.1f} s  {key[:90]}" for key, seconds in sandbox.timings.items())
    print(f"\ndocumented commands run in {time.monotonic() - started:.0f} s:\n{timings}")
    return results


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda key: key[:60])
def test_documented_command(command, outcomes):
    assert command in outcomes, f"`{command}` was not run"
    assert outcomes[command] is None, outcomes[command]


def test_production_last_load_query(outcomes):
    assert outcomes.get("last_load_query", "not run") is None, outcomes.get("last_load_query")
