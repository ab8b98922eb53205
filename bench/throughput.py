"""Throughput of `foundation run` vs hand-written dlt pipelines, on rows from a dict-page generator.

Every variant loads the same N rows (pages of 10k dicts) into a fresh DuckDB file, each in its own subprocess so
wall time and peak RSS are clean:

  foundation   `python -m data_foundation.cli --root ROOT run --duckdb-file FILE bench`, as a user runs it (default
               settings: no `arrow:` key), with its own FOUNDATION_PIPELINES_DIR
  defaults     `dlt.pipeline(destination=duckdb(FILE)).run(pages(...))`: dlt defaults (insert_values)
  parquet      the same with `loader_file_format="parquet"` (hand-written dlt + parquet)
  arrow        the same generator's data yielded as `pyarrow.Table`s built in the generator (a template table made
               once, its `id` column replaced per page): dlt's Arrow ceiling
  from_pylist  hand-written dlt, each dict page converted with `pyarrow.Table.from_pylist` before it is yielded
  (the hand-written ones only add a pipeline name, dataset name and a temporary pipelines_dir)

Shapes (`--shape flat,mix`):
  flat  8 flat columns: int id, three strings, a float, an int, a bool, an ISO timestamp string
  mix   6 flat columns (id, user_name, country, amount, is_active, created_at), a nested object `address` (street,
        city, zip: flattened into the root table by dlt), a list `lines` of 0-3 objects {sku, qty} (child table
        `events__lines`) and a list `labels` of 0-2 strings (child table `events__labels`)

Data generation is the same for every variant and cheap: data.py builds one template page per shape and page size
once (at the first page) and every page is fresh copies of the template's rows with only `id` rebuilt (`{**row,
"id": i}`; for mix the nested object and the lists are copied too, so a variant that mutates rows never sees
another page's changes). `arrow` builds one template table and replaces its `id` column per page. Values other than
`id` repeat every page (10k distinct rows).

Wall seconds cover the whole subprocess (interpreter start and imports included: what a user waits for) and give
rows/s and the floors. Steady-state rows/s exclude the fixed per-process cost (interpreter, imports, pipeline
set-up, ~1.5-2 s): every variant also runs on half its rows, and steady rows/s = (N - N/2) / (wall(N) -
wall(N/2)), the marginal rate of the second half (`--no-steady` skips the half runs). "run s" is the load as
timed inside the child, "cpu s" its user+system CPU, extract / normalize / load seconds come from dlt's trace.
Peak RSS is the child's `ru_maxrss` from `wait4`, or the polled RSS sum of its process tree when that is higher.
Every DuckDB file is opened afterwards: the root table `events` must hold exactly N rows and, for the dict
variants on `mix`, the child tables `events__lines` and `events__labels` exactly the expected rows (`arrow` and
`from_pylist` keep nested data in struct / list columns: no child tables).

Floors (issue): foundation rows/s >= 30x dlt defaults on flat, >= 20x on mix (whole-process wall time and
steady-state both shown and checked); foundation peak RSS <= 400 MB. Exit status 1 when a floor or a variant fails.
dlt defaults need ~50 s at 300k flat rows on 2 CPUs: `--baseline-rows` runs that variant on fewer rows and the
ratios compare rows/s.

The machine may be shared: wall times move with others' work (see "load avg"); CPU seconds move much less,
and `--repeat N` runs the variants interleaved N times and keeps each one's fastest run per size.

    .venv/bin/python bench/throughput.py                                    # 300k flat rows, every variant
    .venv/bin/python bench/throughput.py --shape flat,mix --baseline-rows 100000
    .venv/bin/python bench/throughput.py --variants foundation --env NORMALIZE__WORKERS=2   # try a dlt knob
    .venv/bin/python bench/throughput.py --rows 200000 --profile /tmp/prof  # cProfile dumps (slower runs)
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from _common import dlt_steps, memory_gb

SOURCE = "bench"
TABLE = "events"
CHILD_TABLES = (f"{TABLE}__lines", f"{TABLE}__labels")  # dlt's child tables of the mix shape
VARIANTS = ("foundation", "defaults", "parquet", "arrow", "from_pylist")
DICT_VARIANTS = ("foundation", "defaults", "parquet")  # dlt normalizes dicts: nested lists become child tables
SHAPES = ("flat", "mix")
RSS_FLOOR_MB = 400.0
SPEEDUP_FLOORS = {"flat": 30.0, "mix": 20.0}  # foundation rows/s / dlt defaults rows/s
PARQUET_TOLERANCE = 0.20  # foundation may be this much slower than the hand-written parquet pipeline

DATA_PY = '''\
"""Benchmark source: N rows as pages of dicts, shaped like a paginated API (see bench/throughput.py).

One template page per (shape, page size) is built once; each page is fresh copies of its rows, only `id` rebuilt.
"""

import datetime as dt

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "PL", "ES", "IT"]
CITIES = ["Berlin", "Paris", "Austin", "Leeds", "Delft", "Gdansk", "Bilbao", "Turin"]
LABELS = ["new", "vip", "promo", "returning", "mobile"]
_TEMPLATES = {}


def _flat(i):
    return {"id": i,
            "user_name": f"user {i % 50_000}",
            "email": f"user{i % 50_000}@example.com",
            "country": COUNTRIES[i % 8],
            "amount": round((i * 7919 % 100_000) / 100, 2),
            "quantity": i % 17,
            "is_active": i % 3 == 0,
            "created_at": (BASE + dt.timedelta(seconds=i)).isoformat()}


def _mix(i):
    return {"id": i,
            "user_name": f"user {i % 50_000}",
            "country": COUNTRIES[i % 8],
            "amount": round((i * 7919 % 100_000) / 100, 2),
            "is_active": i % 3 == 0,
            "created_at": (BASE + dt.timedelta(seconds=i)).isoformat(),
            "address": {"street": f"{i % 997} Main St", "city": CITIES[i % 8], "zip": f"{10000 + i % 89999}"},
            "lines": [{"sku": f"SKU-{(i + k) % 50:03d}", "qty": 1 + (i + k) % 5} for k in range(i % 4)],
            "labels": [LABELS[(i + k) % 5] for k in range(i % 3)]}


def template(shape, page_size):
    """The rows of one page (ids 0..page_size-1), built once."""
    key = (shape, page_size)
    if key not in _TEMPLATES:
        make = {"flat": _flat, "mix": _mix}[shape]
        _TEMPLATES[key] = [make(i) for i in range(page_size)]
    return _TEMPLATES[key]


def pages(total=300_000, page_size=10_000, shape="flat"):
    """Rows, one page (a list of fresh dicts) at a time."""
    rows = template(shape, page_size)
    for start in range(0, total, page_size):
        ids = range(start, min(start + page_size, total))
        if shape == "flat":
            yield [{**row, "id": i} for i, row in zip(ids, rows)]
        else:
            yield [{**row, "id": i, "address": {**row["address"]}, "lines": [{**line} for line in row["lines"]],
                    "labels": [*row["labels"]]} for i, row in zip(ids, rows)]


def tables(total=300_000, page_size=10_000, shape="flat"):
    """The same rows as pyarrow tables: a template table built once, its `id` column replaced per page."""
    import pyarrow as pa

    rows = template(shape, page_size)
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    columns["created_at"] = [dt.datetime.fromisoformat(value) for value in columns["created_at"]]
    base = pa.table(columns)
    base = base.set_column(base.schema.get_field_index("created_at"), "created_at",
                           base["created_at"].cast(pa.timestamp("us", tz="UTC")))
    for start in range(0, total, page_size):
        size = min(page_size, total - start)
        yield base.slice(0, size).set_column(0, "id", pa.array(range(start, start + size), pa.int64()))


def expected(total=300_000, page_size=10_000, shape="flat"):
    """Rows per table dlt's normalizer makes from `pages(...)`: the root table, and for mix its child tables."""
    counts = {"events": total}
    if shape == "mix":
        rows = template(shape, page_size)
        full, rest = divmod(total, page_size)
        for child in ("lines", "labels"):
            lengths = [len(row[child]) for row in rows]
            counts[f"events__{child}"] = full * sum(lengths) + sum(lengths[:rest])
    return counts
'''

SOURCES_YAML = '''\
resources:
    {source}.{table}:
        entry: data.pages
        keyword_arguments: {{total: {rows}, page_size: {page_size}, shape: {shape}}}
        write_disposition: append
{arrow}sources:
    {source}:
        resources:
        - {source}.{table}
'''

# The hand-written pipeline: what a dlt user writes without foundation. Same generator, same table name.
HAND_WRITTEN = '''\
import importlib.util, json, sys, time
import dlt

data_py, duckdb_file, pipelines_dir, rows, page_size, shape, mode = sys.argv[1:8]
spec = importlib.util.spec_from_file_location("bench_data", data_py)
data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(data)

started = time.perf_counter()
pipeline = dlt.pipeline(pipeline_name="hand_written", destination=dlt.destinations.duckdb(duckdb_file),
                        dataset_name="{source}", pipelines_dir=pipelines_dir)
total, size = int(rows), int(page_size)
if mode == "arrow":  # Arrow tables built in the generator: dlt's Arrow path
    items = data.tables(total=total, page_size=size, shape=shape)
elif mode == "from_pylist":  # each dict page converted before dlt sees it
    import pyarrow as pa
    items = (pa.Table.from_pylist(page) for page in data.pages(total=total, page_size=size, shape=shape))
else:
    items = data.pages(total=total, page_size=size, shape=shape)
kwargs = {{"loader_file_format": "parquet"}} if mode == "parquet" else {{}}
pipeline.run(items, table_name="{table}", **kwargs)
print(json.dumps({{"run_seconds": time.perf_counter() - started}}))
'''.format(source=SOURCE, table=TABLE)


def load_data_module() -> Any:
    """DATA_PY as a module in this process (for the expected row counts)."""
    import types

    module = types.ModuleType("bench_data")
    exec(compile(DATA_PY, "bench_data", "exec"), module.__dict__)
    return module


@dataclass
class Result:
    variant: str
    shape: str
    rows: int
    seconds: float = 0.0  # wall time of the subprocess
    run_seconds: Optional[float] = None  # time spent loading, as reported by the child
    cpu_seconds: float = 0.0  # user + system CPU of the subprocess (and its waited-for children)
    peak_rss_mb: float = 0.0
    load_average: float = 0.0  # 1-minute load average when the variant finished (others' work on the machine)
    loaded: Dict[str, int] = field(default_factory=dict)  # rows per table found in DuckDB
    error: Optional[str] = None
    columns: Dict[str, str] = field(default_factory=dict)
    steps: Dict[str, float] = field(default_factory=dict)  # extract / normalize / load seconds, from dlt's trace
    all_seconds: List[float] = field(default_factory=list)  # wall time of every run when --repeat > 1
    half: Optional["Result"] = None  # the same variant on half the rows (steady-state rate)

    @property
    def label(self) -> str:
        return f"{self.variant}/{self.shape}"

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds and not self.error else 0.0

    @property
    def rows_per_cpu_s(self) -> float:
        return self.rows / self.cpu_seconds if self.cpu_seconds and not self.error else 0.0

    @property
    def steady_rows_per_cpu_s(self) -> Optional[float]:
        """The same from CPU seconds: (N - N/2) / (cpu(N) - cpu(N/2)); moves less when the machine is busy."""
        half = self.half
        if self.error or half is None or half.error or self.cpu_seconds <= half.cpu_seconds:
            return None
        return (self.rows - half.rows) / (self.cpu_seconds - half.cpu_seconds)

    @property
    def fixed_seconds(self) -> Optional[float]:
        """The per-process cost the two sizes imply: wall(N) - N / steady rate."""
        steady = self.steady_rows_per_s
        return self.seconds - self.rows / steady if steady else None

    @property
    def steady_rows_per_s(self) -> Optional[float]:
        """(N - N/2) / (wall(N) - wall(N/2)): rows/s without the fixed per-process cost; None when not measured
        (or when the half run was not faster: too noisy to tell)."""
        half = self.half
        if self.error or half is None or half.error or self.seconds <= half.seconds:
            return None
        return (self.rows - half.rows) / (self.seconds - half.seconds)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    results = measure(args)
    ok = report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps([_as_dict(r) for r in results], indent=2))
    return 0 if ok else 1


def measure(args: argparse.Namespace) -> List[Result]:
    """Every (shape, variant) at its rows (and half of them unless --no-steady), interleaved; the best of each."""
    work = Path(tempfile.mkdtemp(prefix="foundation-throughput-"))
    try:
        data_py = work / "data.py"
        data_py.write_text(DATA_PY)
        extra_env = dict(kv.split("=", 1) for kv in args.env)
        plan = []  # (shape, variant, rows, is_half)
        for shape in args.shape:
            for variant in args.variants:
                rows = args.baseline_rows if variant == "defaults" else args.rows
                plan.append((shape, variant, rows, False))
                if args.steady:
                    plan.append((shape, variant, rows // 2, True))
        runs: Dict[tuple, List[Result]] = {key: [] for key in plan}
        for attempt in range(1, args.repeat + 1):  # interleaved, so a busy spell on the machine hits every variant
            for key in plan:
                shape, variant, rows, is_half = key
                print(f"running {variant} {shape} ({rows:,} rows, run {attempt}/{args.repeat}) ...",
                      file=sys.stderr, flush=True)
                folder = work / f"{shape}-{variant}-{rows}-{attempt}"
                result = _run_variant(variant, shape, rows, data_py, work, folder, args, extra_env)
                print(f"  {_one_line(result)}", file=sys.stderr, flush=True)
                runs[key].append(result)
        results = []
        for (shape, variant, rows, is_half), variant_runs in runs.items():
            if is_half:
                continue
            best = _best(variant_runs)
            half_key = (shape, variant, rows // 2, True)
            if half_key in runs:
                best.half = _best(runs[half_key])
            results.append(best)
        return results
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _best(runs: List[Result]) -> Result:
    """The fastest run, with the highest peak RSS of all runs; a failed run is reported as it is."""
    failed = [r for r in runs if r.error]
    if failed:
        return failed[0]
    best = min(runs, key=lambda r: r.seconds)
    best.peak_rss_mb = max(r.peak_rss_mb for r in runs)
    best.all_seconds = [round(r.seconds, 1) for r in runs]
    return best


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The options (also used by `bench/floors.py`, which passes its own argv)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000, help="rows for every variant (default 300,000)")
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="rows for the dlt-defaults variant only (default: --rows); rows/s are compared")
    parser.add_argument("--page-size", type=int, default=10_000, help="rows per yielded page (default 10,000)")
    parser.add_argument("--shape", default="flat", help=f"comma-separated subset of {SHAPES} (default flat)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--no-steady", dest="steady", action="store_false",
                        help="skip the half-size runs (no steady-state rate)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for every variant, e.g. DATA_WRITER__BUFFER_MAX_ITEMS=100000")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every variant this many times, interleaved; report the fastest run and the "
                             "highest peak RSS (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a variant is killed")
    parser.add_argument("--rss-limit-mb", type=float, default=12_000,
                        help="kill a variant whose RSS goes above this (protects the machine; default 12000)")
    parser.add_argument("--profile", metavar="DIR",
                        help="run each variant under cProfile, writing DIR/<run>.prof (timings inflate)")
    parser.add_argument("--arrow", action="store_true",
                        help="the foundation variant's resource sets `arrow: true` (flat shape only)")
    parser.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (DuckDB files, logs)")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
    args.shape = [s.strip() for s in args.shape.split(",") if s.strip()]
    if set(args.shape) - set(SHAPES) or not args.shape:
        parser.error(f"--shape: choose from {SHAPES}")
    if args.arrow and "mix" in args.shape:
        parser.error("--arrow (`arrow: true`) takes flat pages only")
    args.baseline_rows = args.baseline_rows or args.rows
    if min(args.rows, args.baseline_rows) < 2:
        parser.error("--rows and --baseline-rows must be >= 2")
    if any("=" not in kv for kv in args.env):
        parser.error("--env takes KEY=VALUE")
    args.repeat = max(1, args.repeat)
    return args


# `--arrow`: the resource opts into Arrow pages; the timestamp hint gives the same column types as the dict path
ARROW_YAML = """\
        arrow: true
        columns: {created_at: {data_type: timestamp, timezone: true}}
"""


def _write_root(work: Path, shape: str, rows: int, page_size: int, arrow: bool = False) -> Path:
    """A sources root with one source folder `bench` (data.py + sources.yaml) yielding `rows` rows."""
    root = work / f"root-{shape}-{rows}"
    if root.exists():
        return root
    folder = root / SOURCE
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text(DATA_PY)
    (folder / "sources.yaml").write_text(SOURCES_YAML.format(source=SOURCE, table=TABLE, rows=rows, shape=shape,
                                                             page_size=page_size, arrow=ARROW_YAML if arrow else ""))
    return root


def _run_variant(variant: str, shape: str, rows: int, data_py: Path, work: Path, folder: Path,
                 args: argparse.Namespace, extra_env: Dict[str, str]) -> Result:
    folder.mkdir()
    duckdb_file = folder / f"{variant}.duckdb"
    pipelines_dir = folder / "pipelines"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOUNDATION_", "DESTINATION__"))}
    env.update(extra_env)
    python = [sys.executable]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        python += ["-m", "cProfile", "-o", str(Path(args.profile).resolve() / f"{folder.name}.prof")]
    if variant == "foundation":
        root = _write_root(work, shape, rows, args.page_size, args.arrow)
        env["FOUNDATION_PIPELINES_DIR"] = str(pipelines_dir)
        command = python + ["-m", "data_foundation.cli", "--root", str(root), "run", "--duckdb-file",
                            str(duckdb_file), SOURCE]
    else:
        script = folder / "hand_written.py"
        script.write_text(HAND_WRITTEN)
        mode = "default" if variant == "defaults" else variant
        command = python + [str(script), str(data_py), str(duckdb_file), str(pipelines_dir), str(rows),
                            str(args.page_size), shape, mode]
    result = Result(variant, shape, rows)
    stdout, stderr = folder / "stdout.txt", folder / "stderr.txt"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=folder)
        status, rusage, tree_peak_mb, killed = _wait(process.pid, args.timeout, args.rss_limit_mb)
        result.seconds = time.perf_counter() - started
    # ru_maxrss (KiB on Linux) is exact for one process; the polled tree sum catches forked workers
    result.peak_rss_mb = max(rusage.ru_maxrss / 1024 if rusage else 0.0, tree_peak_mb)
    result.cpu_seconds = rusage.ru_utime + rusage.ru_stime if rusage else 0.0
    result.load_average = os.getloadavg()[0]
    output = stdout.read_text(errors="replace")
    if killed:
        result.error = killed
    elif not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        tail = "\n".join((output + stderr.read_text(errors="replace")).strip().splitlines()[-15:])
        result.error = f"exit status {status}:\n{textwrap.indent(tail, '    ')}"
    else:
        result.run_seconds = _run_seconds(variant, output)
        result.loaded, result.columns = _count(duckdb_file)
        result.steps = dlt_steps("foundation_bench" if variant == "foundation" else "hand_written", pipelines_dir)
        result.error = _check_rows(result, args.page_size)
    return result


def _check_rows(result: Result, page_size: int) -> Optional[str]:
    """The root table holds exactly N rows; for dict variants on mix, the child tables the expected rows."""
    expected = load_data_module().expected(result.rows, page_size, result.shape)
    if result.variant not in DICT_VARIANTS:  # Arrow tables: nested data stays in struct / list columns
        expected = {TABLE: expected[TABLE]}
    found = {table: result.loaded.get(table) for table in expected}
    if found != expected:
        return f"DuckDB holds {found} rows, expected {expected}"
    return None


def _wait(pid: int, timeout: float, rss_limit_mb: float):
    """wait4 the child while polling the RSS of its process tree.

    Returns (status, rusage, peak tree RSS MB, why it was killed or None). `ru_maxrss` is the peak of the single
    largest process; the polled sum covers variants that fork workers (e.g. NORMALIZE__WORKERS > 1). A variant
    whose tree goes above `rss_limit_mb` or runs past `timeout` is killed before it takes the machine down.
    """
    deadline = time.monotonic() + timeout
    killed, peak, children, scanned = None, 0.0, [], 0.0
    while True:
        waited, status, rusage = os.wait4(pid, os.WNOHANG)
        if waited == pid:
            return status, rusage, peak, killed
        if time.monotonic() - scanned > 1.0:  # scanning /proc is the costly part: once a second
            children, scanned = _descendants(pid), time.monotonic()
        rss = sum(_rss_mb(each) for each in [pid, *children])
        peak = max(peak, rss)
        if killed is None:
            if rss > rss_limit_mb:
                killed = f"killed: RSS {rss:,.0f} MB above --rss-limit-mb {rss_limit_mb:,.0f}"
            elif time.monotonic() > deadline:
                killed = f"killed: still running after --timeout {timeout:,.0f} s"
            if killed:
                for child in _descendants(pid):
                    _kill(child)
                _kill(pid)
        time.sleep(0.1)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _descendants(pid: int) -> List[int]:
    parents: Dict[int, List[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        return 0.0


def _run_seconds(variant: str, output: str) -> Optional[float]:
    if variant == "foundation":  # "Done: 1,000,000 rows loaded in 12.3 s."
        match = re.search(r"rows loaded in ([0-9.]+) s", output)
        return float(match.group(1)) if match else None
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line).get("run_seconds")
    return None


def _count(duckdb_file: Path):
    """Rows per table (root and child tables) and the root table's column types, wherever its dataset is (`bench`,
    or `bench_<user>` when the CLI's default target adds a per-developer suffix)."""
    import duckdb

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        schemas = [row[0] for row in con.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = ? AND table_schema LIKE ? "
            "AND table_schema NOT LIKE '%\\_staging' ESCAPE '\\'", [TABLE, f"%{SOURCE}%"]).fetchall()]
        if len(schemas) != 1:
            return {}, {}
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE "
            "'\\_dlt%' ESCAPE '\\'", [schemas[0]]).fetchall()]
        counts = {t: int(con.execute(f'SELECT COUNT(*) FROM "{schemas[0]}"."{t}"').fetchone()[0]) for t in tables}
        columns = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY ordinal_position", [schemas[0], TABLE]).fetchall())
    return counts, columns


def _one_line(r: Result) -> str:
    if r.error:
        return f"FAILED after {r.seconds:.1f} s, peak RSS {r.peak_rss_mb:,.0f} MB: {r.error}"
    tables = ", ".join(f"{t} {n:,}" for t, n in sorted(r.loaded.items()))
    return (f"{r.seconds:.1f} s ({r.cpu_seconds:.1f} s CPU), {r.rows_per_s:,.0f} rows/s, "
            f"peak RSS {r.peak_rss_mb:,.0f} MB, verified: {tables}; load avg {r.load_average:.1f}")


COLUMNS = ("variant", "shape", "rows", "wall s", "rows/s", "half wall s", "steady rows/s", "fixed s", "run s",
           "cpu s", "extract s", "normalize s", "load s", "rows/cpu-s", "steady rows/cpu-s", "peak RSS MB",
           "load avg")


def _cells(r: Result) -> List[str]:
    def seconds(value: Optional[float]) -> str:
        return f"{value:.1f}" if value is not None else "-"

    half = r.half
    steady = r.steady_rows_per_s
    return [r.variant, r.shape, f"{r.rows:,}", seconds(r.seconds), f"{r.rows_per_s:,.0f}" if not r.error else "FAILED",
            seconds(half.seconds) if half and not half.error else ("FAILED" if half else "-"),
            f"{steady:,.0f}" if steady else "-", seconds(r.fixed_seconds), seconds(r.run_seconds),
            seconds(r.cpu_seconds), *(seconds(r.steps.get(step)) for step in ("extract", "normalize", "load")),
            f"{r.rows_per_cpu_s:,.0f}" if not r.error else "FAILED",
            f"{r.steady_rows_per_cpu_s:,.0f}" if r.steady_rows_per_cpu_s else "-", f"{r.peak_rss_mb:,.0f}",
            f"{r.load_average:.1f}"]


def speedups(results: List[Result]) -> List[Dict[str, Any]]:
    """foundation vs dlt defaults per shape, by whole-process wall time and steady state, against the floors."""
    by = {(r.shape, r.variant): r for r in results}
    out = []
    for shape in dict.fromkeys(r.shape for r in results):
        foundation, defaults = by.get((shape, "foundation")), by.get((shape, "defaults"))
        floor = SPEEDUP_FLOORS[shape]
        for basis in ("wall", "steady"):
            def rate(r: Optional[Result]) -> Optional[float]:
                if r is None or r.error:
                    return None
                return r.rows_per_s if basis == "wall" else r.steady_rows_per_s

            measured, anchor = rate(foundation), rate(defaults)
            if basis == "steady" and foundation is not None and foundation.half is None:
                continue  # --no-steady
            ratio = measured / anchor if measured and anchor else None
            out.append({"shape": shape, "basis": basis, "foundation": measured, "defaults": anchor, "ratio": ratio,
                        "floor": floor, "passed": ratio is not None and ratio >= floor})
    return out


def report(results: List[Result], args: argparse.Namespace) -> bool:
    import dlt
    import duckdb

    by = {(r.shape, r.variant): r for r in results}
    print(f"\nmachine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {memory_gb():.1f} GB RAM, "
          f"Python {platform.python_version()}, dlt {dlt.__version__}, duckdb {duckdb.__version__}")
    print(f"data-foundation: {revision()}")
    if args.env:
        print(f"extra env: {' '.join(args.env)}")
    if args.profile:
        print("NOTE: run under cProfile: timings are inflated")
    rows = [_cells(r) for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) + 2 for i, c in enumerate(COLUMNS)]
    header = "".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(COLUMNS, widths)))
    print(header)
    print("-" * len(header))
    for cells in rows:
        print("".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    print("wall s: whole subprocess (interpreter start and imports included), used for rows/s; steady rows/s = "
          "(N - N/2) / (wall s - half wall s),\nthe rate without the fixed per-process cost (fixed s = wall s - N / "
          "steady rows/s; steady rows/cpu-s: the same from CPU seconds);\nrun s: the load as timed by the child; "
          "cpu s: user+system CPU of the subprocess (less sensitive to other work on the machine);\n"
          "load avg: 1-minute load average when the variant ended")
    for r in results:
        if r.error:
            print(f"{r.label} FAILED: {r.error}")
        if r.half is not None and r.half.error:
            print(f"{r.label} half-size run FAILED: {r.half.error}")
    if args.repeat > 1:
        print(f"--repeat {args.repeat}: fastest of " + "; ".join(f"{r.label} {r.all_seconds}" for r in results
                                                                 if r.all_seconds) + " s; peak RSS is the highest")
    if args.baseline_rows != args.rows and "defaults" in args.variants:
        print(f"NOTE: the dlt-defaults variant loaded {args.baseline_rows:,} rows (--baseline-rows), the others "
              f"{args.rows:,}: ratios compare rows/s.")
    for shape in args.shape:
        dict_columns = {r.variant: r.columns for r in results if r.shape == shape and r.columns
                        and r.variant in DICT_VARIANTS}
        if len({json.dumps(c, sort_keys=True) for c in dict_columns.values()}) > 1:
            print(f"WARNING: {shape}: the dict variants produced different column types: {dict_columns}")
        reference = next(iter(dict_columns.values()), None)
        for r in results:
            if r.shape == shape and r.variant not in DICT_VARIANTS and r.columns and reference \
                    and r.columns != reference:
                differ = {c: r.columns.get(c) for c in reference if r.columns.get(c) != reference[c]}
                print(f"note: {r.label} column types differ from the dict variants' (anchor only): {differ}")

    ok = not any(r.error or (r.half is not None and r.half.error) for r in results)
    print()
    for row in speedups(results):
        if row["ratio"] is None:
            print(f"{row['shape']:>5} foundation / dlt defaults rows/s ({row['basis']:>6}):    n/a   (not run or "
                  f"failed): FAIL")
        else:
            print(f"{row['shape']:>5} foundation / dlt defaults rows/s ({row['basis']:>6}): {row['ratio']:6.2f}x   "
                  f"floor >= {row['floor']:.0f}x: {'PASS' if row['passed'] else 'FAIL'}")
        ok &= row["passed"]
    for shape in args.shape:
        foundation = by.get((shape, "foundation"))
        if foundation is None or foundation.error:
            print(f"{shape:>5} foundation variant not run or failed: FAIL")
            ok = False
            continue
        for anchor in ("parquet", "arrow", "from_pylist"):
            other = by.get((shape, anchor))
            if other is not None and not other.error:
                note = ""
                if anchor == "parquet":
                    ratio = foundation.rows_per_s / other.rows_per_s
                    note = (f"   more than {PARQUET_TOLERANCE:.0%} slower than hand-written parquet"
                            if ratio < 1 - PARQUET_TOLERANCE else "")
                print(f"{shape:>5} foundation / {anchor:<11} rows/s: {foundation.rows_per_s / other.rows_per_s:6.2f}x"
                      f" wall" + (f", {foundation.steady_rows_per_s / other.steady_rows_per_s:.2f}x steady"
                                  if foundation.steady_rows_per_s and other.steady_rows_per_s else "") + note)
        rss_ok = foundation.peak_rss_mb <= RSS_FLOOR_MB
        print(f"{shape:>5} foundation peak RSS: {foundation.peak_rss_mb:,.0f} MB   floor <= {RSS_FLOOR_MB:.0f} MB: "
              f"{'PASS' if rss_ok else 'FAIL'}")
        ok &= rss_ok
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    if args.markdown:
        print("\n| " + " | ".join(COLUMNS) + " |\n|---|---|" + "---:|" * (len(COLUMNS) - 2))
        for cells in rows:
            print("| " + " | ".join(cells) + " |")
    return ok


def _as_dict(r: Result) -> Dict[str, Any]:
    return asdict(r) | {"rows_per_s": r.rows_per_s, "steady_rows_per_s": r.steady_rows_per_s,
                        "steady_rows_per_cpu_s": r.steady_rows_per_cpu_s}


def revision() -> str:
    """The commit measured, and whether src/ had uncommitted changes (the tree may be shared)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src", "dlthub"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{commit}{' + uncommitted changes in src/ or dlthub/' if dirty else ''}"


if __name__ == "__main__":
    sys.exit(main())
