"""Jaffle Shop: `foundation run jaffle_shop` against the bare HTTP download of the same pages from the replica.

For every replica setting (per-request latency x CPU per order x page size) the benchmark starts its own replica,
`jaffle-api --port 0` in a subprocess, latency set with `POST /_control/latency?ms=L` and the CPU-bound mode with
`POST /_control/cpu?per_order_ms=C` (a subprocess, so the replica's request handling does not compete with the
measured process for one GIL; on a 2-core machine it still competes for CPU), and measures:

  download     requests.Session fetching every page of the 5 paginated endpoints the source reads
               (customers, orders, products, stores, supplies) with the same page_size, following the Link
               headers and json-decoding each page, in this process (sequentially, like a plain script);
  full load    `foundation --root dlthub run --duckdb-file NEW.duckdb jaffle_shop` (default target) as a CLI
               subprocess with its own FOUNDATION_PIPELINES_DIR (wall time of the subprocess: interpreter start
               and imports included, what a user waits for); the DuckDB row counts must equal /row-counts;
  incremental  the same command again with no new data (`--rerun-repeat N` times, median), then after
               `POST /_control/add_day` (one more day of orders), each verified against /row-counts, as time and % of
               the full load;
  anchor       (`--anchor`) a hand-written dlt pipeline: `rest_api_source` over the same 5 endpoints
               (HeaderLinkPaginator, the same page_size, orders merged with an incremental `start_date` on
               `ordered_at`, items as dlt's child table `orders__items`), `loader_file_format="parquet"`, to a new
               DuckDB file; a subprocess timed like the full load (row counts checked), run before the full loads,
               then re-run with no new data the same way.

Peak RSS is the `foundation run` subprocess's `ru_maxrss` (from `wait4`). ratio = full load / download; the floor is
`--floor` (default 1.3) for every setting. The exit status is 1 when a setting fails the floor, a run fails or a row
count does not match.

CPU-bound mode (`--cpu-per-order-ms prod` = 1.3 ms = 80 s / 61,948 orders): the replica spends that much busy CPU per
order it serves, one request at a time (the real service's single worker running one item query per order), so
fetching pages concurrently cannot beat ~80 s for the orders, at any page size. With it the replica's latency stays 0.

Production-like latency (`--latency-ms prod`, 129 ms): the real service takes ~80 s to serve all 61,948 orders
(it runs one item query per order) at its default page_size of 100, i.e. ceil(61,948 / 100) = 620 requests:
80,000 ms / 620 = 129 ms per request (the replica's own ~2 ms per 100-order page comes on top: ~81 s for the
orders, ~84 s for all 5 endpoints). The replica's latency is per request while the real service's cost is per
order: at page_size 1000 the replica with 129 ms serves the orders in ~8 s where the real service would still
need ~80 s, so 129 ms @ 1000 is the harsh case for the ratio and 129 ms @ 100 the realistic one.

    .venv/bin/python bench/jaffle.py --markdown       # latency 0 and prod x page_size 1000 and 100 (~6 min)
    .venv/bin/python bench/jaffle.py --latency-ms 0 --cpu-per-order-ms prod --page-size 1000 --anchor  # ~4 min
    .venv/bin/python bench/jaffle.py --quick          # latency 0, page_size 1000, no new-day re-run (~30 s)
    .venv/bin/python bench/jaffle.py --latency-ms 0,50 --page-size 500 --repeat 3
    .venv/bin/python bench/jaffle.py --quick --env NORMALIZE__WORKERS=2 --profile /tmp/prof   # try a dlt knob
    .venv/bin/python bench/jaffle.py --quick --root /tmp/copy_of_dlthub    # compare a changed copy of the source
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urljoin

from _common import dlt_steps, memory_gb

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "dlthub"
SOURCE = "jaffle_shop"
PIPELINE = f"foundation_{SOURCE}"
ENDPOINTS = ("customers", "orders", "products", "stores", "supplies")  # what the source paginates
TABLES = ("customers", "orders", "items", "products", "stores", "supplies")  # what it loads (items: embedded)
RATIO_FLOOR = 1.3
ANCHOR_PIPELINE = "hand_written_jaffle"
ANCHOR_TABLES = {"customers": "customers", "orders": "orders", "orders__items": "items", "products": "products",
                 "stores": "stores", "supplies": "supplies"}  # anchor table -> /row-counts name
REAL_SERVICE_SECONDS = 80.0  # the real service serving all orders at its default page_size
REAL_ORDERS = 61_948
API_DEFAULT_PAGE_SIZE = 100
PROD_LATENCY_MS = round(REAL_SERVICE_SECONDS * 1000 / math.ceil(REAL_ORDERS / API_DEFAULT_PAGE_SIZE))  # 129
SOURCE_PAGE_SIZE = 1000  # dlthub/jaffle_shop/data.py default
PROD_CPU_PER_ORDER_MS = round(REAL_SERVICE_SECONDS * 1000 / REAL_ORDERS, 2)  # 1.29: the real service's cost per order

# The anchor: what a dlt user writes for this API without foundation (dlt's REST API source, parquet, DuckDB).
ANCHOR_SCRIPT = '''\
import json, sys, time
import dlt
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator
from dlt.sources.rest_api import rest_api_source

base_url, duckdb_file, pipelines_dir, page_size = sys.argv[1:5]
started = time.perf_counter()
source = rest_api_source({
    "client": {"base_url": base_url + "/", "paginator": HeaderLinkPaginator()},
    "resource_defaults": {"write_disposition": "merge", "primary_key": "id",
                          "endpoint": {"params": {"page_size": int(page_size)}}},
    "resources": [
        "customers",
        {"name": "orders", "endpoint": {"path": "orders", "params": {"start_date": {
            "type": "incremental", "cursor_path": "ordered_at", "initial_value": "2016-09-01T00:00:00"}}}},
        {"name": "products", "primary_key": "sku"},
        "stores",
        {"name": "supplies", "primary_key": ["id", "sku"]},
    ],
})
pipeline = dlt.pipeline(pipeline_name="%s", destination=dlt.destinations.duckdb(duckdb_file),
                        dataset_name="jaffle_shop", pipelines_dir=pipelines_dir)
pipeline.run(source, loader_file_format="parquet")
print(json.dumps({"run_seconds": time.perf_counter() - started}))
''' % ANCHOR_PIPELINE


@dataclass
class Run:
    """One `foundation run` subprocess."""

    seconds: float = 0.0  # wall time of the subprocess
    run_seconds: Optional[float] = None  # "Done: ... in X s" (the CLI's own timer, imports excluded)
    cpu_seconds: float = 0.0  # user + sys of the subprocess and its waited-for children
    peak_rss_mb: float = 0.0  # ru_maxrss of the subprocess (and its waited-for children), from wait4
    steps: Dict[str, float] = field(default_factory=dict)
    rows: Dict[str, int] = field(default_factory=dict)
    expected: Dict[str, int] = field(default_factory=dict)
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _median(runs: List[Run]) -> Optional[Run]:
    """The (lower) median run by wall time; a failed run when any failed; None when there is none."""
    failed = [r for r in runs if not r.ok]
    if failed:
        return failed[0]
    good = sorted(runs, key=lambda r: r.seconds)
    return good[(len(good) - 1) // 2] if good else None


@dataclass
class Setting:
    latency_ms: float
    page_size: int
    cpu_per_order_ms: float = 0.0  # the replica's CPU-bound mode (0: off)
    floor: float = RATIO_FLOOR  # full load / download must be <= this
    downloads: List[float] = field(default_factory=list)  # seconds, one per repetition
    pages: int = 0
    rows_downloaded: int = 0
    fulls: List[Run] = field(default_factory=list)
    reruns: List[Run] = field(default_factory=list)  # no new data
    anchor: Optional[Run] = None  # hand-written rest_api_source full load
    anchor_reruns: List[Run] = field(default_factory=list)  # ... and its re-runs with no new data
    new_day: Optional[Run] = None  # after add_day
    added: Dict[str, object] = field(default_factory=dict)
    loadavg: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # when the setting started
    error: Optional[str] = None

    @property
    def label(self) -> str:
        cpu = f" + {self.cpu_per_order_ms:g} ms/order CPU" if self.cpu_per_order_ms else ""
        return f"{self.latency_ms:g} ms{cpu} @ {self.page_size}"

    @property
    def rerun(self) -> Optional[Run]:
        return _median(self.reruns)

    @property
    def anchor_rerun(self) -> Optional[Run]:
        return _median(self.anchor_reruns)

    @property
    def download(self) -> Optional[float]:
        return statistics.median_low(self.downloads) if self.downloads else None

    @property
    def full(self) -> Optional[Run]:
        """The (lower) median full load by wall time; None unless every repetition succeeded."""
        good = sorted((r for r in self.fulls if r.ok), key=lambda r: r.seconds)
        return good[(len(good) - 1) // 2] if good and len(good) == len(self.fulls) else None

    @property
    def ratio(self) -> Optional[float]:
        return self.full.seconds / self.download if self.full and self.download else None

    @property
    def passed(self) -> bool:
        runs = [*self.fulls, *self.reruns, self.new_day, self.anchor, *self.anchor_reruns]
        return (self.error is None and self.ratio is not None and self.ratio <= self.floor
                and all(r is None or r.ok for r in runs))


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    work = Path(tempfile.mkdtemp(prefix="foundation-jaffle-bench-"))
    settings = [Setting(latency, page_size, cpu, args.floor) for latency in args.latency_ms
                for cpu in args.cpu_per_order_ms for page_size in args.page_size]
    try:
        for index, setting in enumerate(settings):
            print(f"[{index + 1}/{len(settings)}] replica {setting.label} ...", file=sys.stderr, flush=True)
            measure(setting, work / f"setting{index}", args)
        ok = _report(settings, args)
        if args.json:
            Path(args.json).write_text(json.dumps([_as_dict(s) for s in settings], indent=2))
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", default="0,prod",
                        help=f"comma-separated replica latencies per request in ms; `prod` = {PROD_LATENCY_MS} "
                             f"(default 0,prod)")
    parser.add_argument("--cpu-per-order-ms", default="0",
                        help=f"comma-separated CPU-bound modes of the replica (busy ms per order served, one request "
                             f"at a time); `prod` = {PROD_CPU_PER_ORDER_MS} (the real service); default 0 (off)")
    parser.add_argument("--page-size", default=f"{SOURCE_PAGE_SIZE},{API_DEFAULT_PAGE_SIZE}",
                        help=f"comma-separated page sizes, for the download and the load "
                             f"(SOURCES__JAFFLE_SHOP__PAGE_SIZE); default {SOURCE_PAGE_SIZE} (the source's) and "
                             f"{API_DEFAULT_PAGE_SIZE} (the API's). Every latency is run with every page size")
    parser.add_argument("--repeat", type=int, default=1,
                        help="download and full load repetitions per setting; the medians are reported (default 1)")
    parser.add_argument("--anchor", action="store_true",
                        help="also time a hand-written dlt `rest_api_source` + parquet full load and no-op re-run")
    parser.add_argument("--rerun-repeat", type=int, default=1,
                        help="re-runs with no new data (and anchor re-runs) per setting; the median (default 1)")
    parser.add_argument("--floor", type=float, default=RATIO_FLOOR,
                        help=f"full load / download must be <= this (default {RATIO_FLOOR})")
    parser.add_argument("--quick", action="store_true",
                        help=f"latency 0 and page_size {SOURCE_PAGE_SIZE} only (unless given), no re-run after a "
                             "new day")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="sources root holding jaffle_shop/ (default dlthub/; e.g. a copy to compare a change)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the `foundation run` subprocesses, e.g. NORMALIZE__WORKERS=2")
    parser.add_argument("--profile", metavar="DIR",
                        help="run the full loads under cProfile, writing DIR/<latency>ms_<page_size>.prof "
                             "(timings inflated)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before a `foundation run` is killed")
    parser.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (DuckDB files, logs)")
    args = parser.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    if args.quick and not any(a == "--latency-ms" or a.startswith("--latency-ms=") for a in given):
        args.latency_ms = "0"
    if args.quick and not any(a == "--page-size" or a.startswith("--page-size=") for a in given):
        args.page_size = str(SOURCE_PAGE_SIZE)
    try:
        args.latency_ms = [float(PROD_LATENCY_MS if v.strip() == "prod" else v) for v in args.latency_ms.split(",")
                           if v.strip()]
        args.page_size = [int(v) for v in args.page_size.split(",") if v.strip()]
        args.cpu_per_order_ms = [float(PROD_CPU_PER_ORDER_MS if v.strip() == "prod" else v)
                                 for v in args.cpu_per_order_ms.split(",") if v.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if not args.cpu_per_order_ms or min(args.cpu_per_order_ms) < 0:
        parser.error("--cpu-per-order-ms needs values >= 0")
    args.rerun_repeat = max(1, args.rerun_repeat)
    if not args.latency_ms or not args.page_size or min(args.latency_ms) < 0 or min(args.page_size) < 1:
        parser.error("--latency-ms needs values >= 0 and --page-size values >= 1")
    if any("=" not in kv for kv in args.env):
        parser.error("--env takes KEY=VALUE")
    args.repeat = max(1, args.repeat)
    return args


# ------------------------------------------------------------------------------------------------------------------
# one setting: replica subprocess, download, full load(s), incremental re-runs
# ------------------------------------------------------------------------------------------------------------------
def measure(setting: Setting, folder: Path, args: argparse.Namespace) -> None:
    """Measure one setting (errors end up in `setting.error` and the runs). `args` needs: root, env, profile, timeout,
    repeat, rerun_repeat, quick, anchor."""
    try:
        _measure(setting, folder, args)
    except Exception as exc:  # noqa: BLE001 - report and go on with the next setting
        setting.error = f"{type(exc).__name__}: {exc}"
        print(f"  FAILED: {setting.error}", file=sys.stderr, flush=True)


def _measure(setting: Setting, folder: Path, args: argparse.Namespace) -> None:
    import requests

    folder.mkdir(parents=True)
    setting.loadavg = os.getloadavg()
    with _Replica(setting.latency_ms, folder, setting.cpu_per_order_ms) as replica:
        for _ in range(args.repeat):
            seconds, pages, rows = _download(replica.base_url, setting.page_size)
            setting.downloads.append(seconds)
            setting.pages, setting.rows_downloaded = pages, rows
        print(f"  download: {setting.download:.2f} s ({setting.pages} pages, {setting.rows_downloaded:,} rows)",
              file=sys.stderr, flush=True)

        def expected() -> Dict[str, int]:
            response = requests.get(f"{replica.base_url}/row-counts", timeout=30)
            response.raise_for_status()
            return {row["table_name"]: int(row["row_count"]) for row in response.json() if row["table_name"] in TABLES}

        if args.anchor:  # before the full loads: the replica serves the same data to both
            anchor_folder = folder / "anchor"
            setting.anchor = _anchor_run(replica.base_url, setting.page_size, anchor_folder, args)
            setting.anchor.expected = expected()
            _check(setting.anchor)
            print(f"  anchor (rest_api_source + parquet) full load: {_one_line(setting.anchor)}", file=sys.stderr,
                  flush=True)
            if setting.anchor.ok:
                for _ in range(args.rerun_repeat):
                    run = _anchor_run(replica.base_url, setting.page_size, anchor_folder, args)
                    run.expected = expected()
                    _check(run)
                    setting.anchor_reruns.append(run)
                    print(f"  anchor re-run, no new data: {_one_line(run)}", file=sys.stderr, flush=True)

        profile = Path(args.profile).resolve() / f"{setting.latency_ms:g}ms_{setting.page_size}.prof" \
            if args.profile else None
        for repetition in range(args.repeat):
            run_folder = folder / f"full{repetition}"
            run = _foundation_run(replica.base_url, setting.page_size, run_folder, args, profile)
            run.expected = expected()
            _check(run)
            setting.fulls.append(run)
            print(f"  full load: {_one_line(run)}", file=sys.stderr, flush=True)
        if not setting.full:
            return
        last = folder / f"full{args.repeat - 1}"  # re-run on the last full load's database and state
        for _ in range(args.rerun_repeat):
            run = _foundation_run(replica.base_url, setting.page_size, last, args)
            run.expected = expected()
            _check(run)
            setting.reruns.append(run)
            print(f"  re-run, no new data: {_one_line(run)}", file=sys.stderr, flush=True)
        if args.quick:
            return
        response = requests.post(f"{replica.url}/_control/add_day", timeout=30)
        response.raise_for_status()
        setting.added = response.json()
        setting.new_day = _foundation_run(replica.base_url, setting.page_size, last, args)
        setting.new_day.expected = expected()
        _check(setting.new_day)
        print(f"  re-run after add_day ({setting.added.get('orders')} orders): {_one_line(setting.new_day)}",
              file=sys.stderr, flush=True)


class _Replica:
    """`jaffle-api --port 0` in a subprocess; the URL is read from its first line of output."""

    def __init__(self, latency_ms: float, folder: Path, cpu_per_order_ms: float = 0.0) -> None:
        self.latency_ms, self.folder, self.cpu_per_order_ms = latency_ms, folder, cpu_per_order_ms
        self.process: Optional[subprocess.Popen] = None
        self.url = ""

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/v1"

    def __enter__(self) -> "_Replica":
        import requests

        # the CLI's --latency-ms takes whole ms: start with 0 and set the exact value through the control API
        command = [str(Path(sys.executable).with_name("jaffle-api")), "--port", "0"]
        self.log = open(self.folder / "replica.log", "w+")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = self.process.stdout.readline()  # "Jaffle Shop replica on http://127.0.0.1:PORT/api/v1 (orders: N)"
        match = re.search(r"(http://[^\s/]+)/api/v1", line)
        if not match:
            self.__exit__()
            raise RuntimeError(f"replica did not start: {line!r} {self._log_tail()}")
        self.url = match.group(1)
        response = requests.post(f"{self.url}/_control/latency", params={"ms": self.latency_ms}, timeout=30)
        response.raise_for_status()
        if self.cpu_per_order_ms:
            response = requests.post(f"{self.url}/_control/cpu", params={"per_order_ms": self.cpu_per_order_ms},
                                     timeout=30)
            response.raise_for_status()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # `serve` stops on Ctrl-C
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def _log_tail(self) -> str:
        self.log.flush()
        return (self.folder / "replica.log").read_text(errors="replace")[-2000:]


def _download(base_url: str, page_size: int) -> Tuple[float, int, int]:
    """Seconds to fetch and json-decode every page of the paginated endpoints; pages and rows seen."""
    import requests

    pages = rows = 0
    with requests.Session() as session:
        started = time.perf_counter()
        for endpoint in ENDPOINTS:
            url: Optional[str] = f"{base_url}/{endpoint}"
            params: Optional[Dict[str, int]] = {"page_size": page_size}
            while url:
                response = session.get(url, params=params, timeout=60)
                response.raise_for_status()
                rows += len(response.json())
                pages += 1
                params = None  # the next link carries page_size and page
                link = response.links.get("next", {}).get("url")
                url = urljoin(response.url, link) if link else None
        return time.perf_counter() - started, pages, rows


def _foundation_run(base_url: str, page_size: int, folder: Path, args: argparse.Namespace,
                    profile: Optional[Path] = None) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOUNDATION_", "SOURCES__", "DESTINATION__"))}
    env.update({"FOUNDATION_PIPELINES_DIR": str(folder / "pipelines"),
                "SOURCES__JAFFLE_SHOP__BASE_URL": base_url,
                "SOURCES__JAFFLE_SHOP__PAGE_SIZE": str(page_size),
                "RUNTIME__LOG_LEVEL": "WARNING"})
    env.update(dict(kv.split("=", 1) for kv in args.env))
    python = [sys.executable]
    if profile:
        profile.parent.mkdir(parents=True, exist_ok=True)
        python += ["-m", "cProfile", "-o", str(profile)]
    command = python + ["-m", "data_foundation.cli", "--root", str(args.root.resolve()), "run", "--duckdb-file",
                        str(folder / "jaffle.duckdb"), SOURCE]
    run, output, errors = _timed(command, env, folder, args.timeout)
    if not run.error:
        match = re.search(r"rows loaded in ([0-9.]+) s", output)
        run.run_seconds = float(match.group(1)) if match else None
        # the default target may add a personal suffix to the dataset: take the name the CLI reports
        dataset = re.search(r"dataset `([^`]+)`", errors)
        run.rows = _count(folder / "jaffle.duckdb", dataset.group(1) if dataset else SOURCE)
        run.steps = dlt_steps(PIPELINE, folder / "pipelines")
    return run


def _timed(command: List[str], env: Dict[str, str], folder: Path, timeout: float) -> Tuple[Run, str, str]:
    """`command` in a subprocess in `folder`, timed (wall, CPU, peak RSS); its stdout and stderr (kept in numbered
    files there); `run.error` set when it was killed or failed."""
    run = Run()
    calls = len(list(folder.glob("stdout*.txt")))
    stdout, stderr = folder / f"stdout{calls}.txt", folder / f"stderr{calls}.txt"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=folder)
        status, rusage, killed = _wait(process.pid, timeout)
        run.seconds = time.perf_counter() - started
    run.cpu_seconds = rusage.ru_utime + rusage.ru_stime if rusage else 0.0
    run.peak_rss_mb = rusage.ru_maxrss / 1024 if rusage else 0.0
    output, errors = stdout.read_text(errors="replace"), stderr.read_text(errors="replace")
    if killed:
        run.error = killed
    elif not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        tail = "\n".join((output + errors).strip().splitlines()[-15:])
        run.error = f"exit status {status}:\n{textwrap.indent(tail, '    ')}"
    return run, output, errors


def _anchor_run(base_url: str, page_size: int, folder: Path, args: argparse.Namespace) -> Run:
    """The hand-written `rest_api_source` + parquet pipeline in a subprocess (re-run: the same folder again)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "hand_written.py"
    script.write_text(ANCHOR_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOUNDATION_", "SOURCES__", "DESTINATION__"))}
    env.update({"RUNTIME__LOG_LEVEL": "WARNING"})
    command = [sys.executable, str(script), base_url, str(folder / "anchor.duckdb"), str(folder / "pipelines"),
               str(page_size)]
    run, output, errors = _timed(command, env, folder, args.timeout)
    if not run.error:
        line = next((x for x in reversed(output.strip().splitlines()) if x.startswith("{")), "{}")
        run.run_seconds = json.loads(line).get("run_seconds")
        counts = _count(folder / "anchor.duckdb", SOURCE)
        run.rows = {ANCHOR_TABLES[t]: n for t, n in counts.items() if t in ANCHOR_TABLES}
        run.steps = dlt_steps(ANCHOR_PIPELINE, folder / "pipelines")
    return run


def _check(run: Run) -> None:
    if run.ok and run.rows != run.expected:
        run.error = f"DuckDB row counts {run.rows} != /row-counts {run.expected}"


def _wait(pid: int, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        waited, status, rusage = os.wait4(pid, os.WNOHANG)
        if waited == pid:
            return status, rusage, None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            return status, rusage, f"killed: still running after --timeout {timeout:,.0f} s"
        time.sleep(0.02)


def _count(duckdb_file: Path, dataset: str) -> Dict[str, int]:
    import duckdb

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE '\\_dlt%' "
            "ESCAPE '\\'", [dataset]).fetchall()]
        return {t: int(con.execute(f'SELECT COUNT(*) FROM "{dataset}"."{t}"').fetchone()[0]) for t in tables}


# ------------------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------------------
def _one_line(run: Run) -> str:
    if not run.ok:
        return f"FAILED after {run.seconds:.1f} s: {run.error}"
    steps = ", ".join(f"{k} {v:.1f}" for k, v in run.steps.items())
    return f"{run.seconds:.2f} s (CPU {run.cpu_seconds:.1f} s; {steps}), {sum(run.rows.values()):,} rows verified"


COLUMNS = ("setting", "download s", "full load s", "ratio", "floor", "re-run s", "% of full", "new day s",
           "% of full ", "extract/normalize/load s", "full CPU s", "peak RSS MB", "anchor s", "anchor ratio",
           "anchor re-run s")


def _cells(s: Setting) -> List[str]:
    full, download = s.full, s.download

    def seconds(value: Optional[float], digits: int = 1) -> str:
        return f"{value:.{digits}f}" if value is not None else "-"

    def incremental(run: Optional[Run]) -> Tuple[str, str]:
        if run is None:
            return "-", "-"
        if not run.ok:
            return "FAILED", "-"
        return seconds(run.seconds), f"{100 * run.seconds / full.seconds:.0f}%" if full else "-"

    rerun, new_day = incremental(s.rerun), incremental(s.new_day)
    steps = "/".join(seconds(full.steps.get(k)) for k in ("extract", "normalize", "load")) if full else "-"
    anchor, anchor_rerun = s.anchor, s.anchor_rerun

    def run_seconds(run: Optional[Run]) -> str:
        return "-" if run is None else seconds(run.seconds, 2) if run.ok else "FAILED"

    return [s.label, seconds(download, 2), seconds(full.seconds) if full else "FAILED",
            f"{s.ratio:.2f}" if s.ratio else "-", ("PASS" if s.passed else "FAIL") + f" (<= {s.floor:g})",
            *rerun, *new_day, steps, seconds(full.cpu_seconds) if full else "-",
            f"{max(r.peak_rss_mb for r in s.fulls):.0f}" if full else "-", run_seconds(anchor),
            f"{anchor.seconds / download:.2f}" if anchor and anchor.ok and download else "-", run_seconds(anchor_rerun)]


def _report(settings: List[Setting], args: argparse.Namespace) -> bool:
    import dlt
    import duckdb

    print(f"\nmachine: {platform.machine()} {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
          f"{memory_gb():.1f} GB RAM, Python {platform.python_version()}, dlt {dlt.__version__}, "
          f"duckdb {duckdb.__version__}")
    print(f"replica: `jaffle-api` subprocess, one per setting; production-like latency {PROD_LATENCY_MS} ms "
          f"= {REAL_SERVICE_SECONDS:.0f} s / ceil({REAL_ORDERS:,} orders / page_size {API_DEFAULT_PAGE_SIZE}); "
          f"production-like CPU per order {PROD_CPU_PER_ORDER_MS} ms = {REAL_SERVICE_SECONDS:.0f} s / "
          f"{REAL_ORDERS:,} orders")
    if args.root.resolve() != ROOT:
        print(f"sources root: {args.root.resolve()}")
    if args.env:
        print(f"extra env: {' '.join(args.env)}")
    if args.profile:
        print("NOTE: full loads run under cProfile: their timings are inflated")
    if args.repeat > 1:
        print(f"(lower) medians of {args.repeat} repetitions (download and full load)")
    rows = [_cells(s) for s in settings]
    widths = [max(len(c), *(len(r[i]) for r in rows)) + 2 for i, c in enumerate(COLUMNS)]
    header = "".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(COLUMNS, widths)))
    print(header)
    print("-" * len(header))
    for cells in rows:
        print("".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    print("download: requests.Session over every page of customers, orders, products, stores, supplies; full load: "
          "wall time of `foundation run` (interpreter start included); ratio = full load / download; re-run: no new "
          "data (median of --rerun-repeat); new day: after add_day; peak RSS: ru_maxrss of the full load; anchor: "
          "hand-written rest_api_source + parquet, full load and no-op re-run (whole process); load average at the "
          "start of each setting: "
          + ", ".join(f"{s.label}: {s.loadavg[0]:.1f}" for s in settings))
    for s in settings:
        for what, run in [*((f"full load {i + 1}", r) for i, r in enumerate(s.fulls)),
                          *(("re-run", r) for r in s.reruns), ("new-day re-run", s.new_day), ("anchor", s.anchor),
                          *(("anchor re-run", r) for r in s.anchor_reruns)]:
            if run is not None and not run.ok:
                print(f"{s.label} {what} FAILED: {run.error}")
        if s.error:
            print(f"{s.label} FAILED: {s.error}")
    ok = all(s.passed for s in settings)
    print()
    for s in settings:
        ratio = f"{s.ratio:5.2f}" if s.ratio else "  n/a"
        print(f"{s.label:>16}: full load / download = {ratio}   floor <= {s.floor:g}: "
              f"{'PASS' if s.passed else 'FAIL'}")
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    if args.markdown:
        print("\n| " + " | ".join(c.strip() for c in COLUMNS) + " |\n|---|" + "---:|" * (len(COLUMNS) - 1))
        for cells in rows:
            print("| " + " | ".join(cells) + " |")
    return ok


def _as_dict(s: Setting) -> Dict[str, object]:
    return asdict(s) | {"download_median": s.download, "ratio": s.ratio, "passed": s.passed,
                        "rerun_median": s.rerun.seconds if s.rerun else None}


if __name__ == "__main__":
    sys.exit(main())
