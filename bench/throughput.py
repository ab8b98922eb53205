"""Throughput of `foundation run` vs hand-written dlt pipelines, on flat rows from a dict-page generator.

Three variants load the same N rows (pages of 10k dicts, 8 flat columns) into a fresh DuckDB file each,
every one in its own subprocess so wall time and peak RSS are clean:

  foundation  `python -m data_foundation.cli --root ROOT run --duckdb-file FILE bench`, as a user runs it,
              with its own FOUNDATION_PIPELINES_DIR
  defaults    `dlt.pipeline(destination=duckdb(FILE)).run(pages(...))`: dlt defaults (insert_values)
  parquet     the same with `loader_file_format="parquet"`
  (the hand-written ones only add a pipeline name, dataset name and a temporary pipelines_dir)

Wall seconds cover the whole subprocess (interpreter start and imports included: what a user waits for) and
give rows/s and the floors; "run s" is the load as timed inside the child, "cpu s" its user+system CPU, and the
extract / normalize / load seconds come from dlt's trace. Peak RSS is the child's `ru_maxrss` from `wait4`, or
the polled RSS sum of its process tree when that is higher (workers forked by NORMALIZE__WORKERS > 1). Every
DuckDB file is opened afterwards and must hold exactly N rows, so no variant can pass by loading nothing.

Floors (issue): foundation rows/s >= 10x dlt defaults; foundation peak RSS <= 400 MB. The exit status is 1
when a floor fails or a variant fails. dlt defaults need ~12-20 min and ~6 GB at 1M rows on 2 CPUs:
`--baseline-rows` runs that variant on fewer rows and the ratios compare rows/s.

The machine may be shared: wall times move with others' work (see "load avg"); CPU seconds move much less,
and `--repeat N` runs the variants interleaved N times and keeps each one's fastest run.

    .venv/bin/python bench/throughput.py                                   # 1M rows, all three variants
    .venv/bin/python bench/throughput.py --baseline-rows 200000 --repeat 2 # defaults on 200k rows
    .venv/bin/python bench/throughput.py --variants foundation --env NORMALIZE__WORKERS=2  # try a dlt knob
    .venv/bin/python bench/throughput.py --rows 200000 --profile /tmp/prof # cProfile dumps (slower runs)
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
from typing import Dict, List, Optional

from _common import dlt_steps, memory_gb

SOURCE = "bench"
TABLE = "events"
VARIANTS = ("foundation", "defaults", "parquet")
RSS_FLOOR_MB = 400.0
SPEEDUP_FLOOR = 10.0
PARQUET_TOLERANCE = 0.20  # foundation may be this much slower than the hand-written parquet pipeline

DATA_PY = '''\
"""Benchmark source: N flat rows as pages of dicts, shaped like a paginated API."""

import datetime as dt

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "PL", "ES", "IT"]


def pages(total=1_000_000, page_size=10_000):
    """Events, one page (a list of dicts) at a time."""
    for start in range(0, total, page_size):
        yield [{"id": i,
                "user_name": f"user {i % 50_000}",
                "email": f"user{i % 50_000}@example.com",
                "country": COUNTRIES[i % 8],
                "amount": round((i * 7919 % 100_000) / 100, 2),
                "quantity": i % 17,
                "is_active": i % 3 == 0,
                "created_at": (BASE + dt.timedelta(seconds=i)).isoformat()}
               for i in range(start, min(start + page_size, total))]
'''

SOURCES_YAML = '''\
resources:
    {source}.{table}:
        entry: data.pages
        keyword_arguments: {{total: {rows}, page_size: {page_size}}}
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

data_py, duckdb_file, pipelines_dir, rows, page_size, file_format = sys.argv[1:7]
spec = importlib.util.spec_from_file_location("bench_data", data_py)
data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(data)

started = time.perf_counter()
pipeline = dlt.pipeline(pipeline_name="hand_written", destination=dlt.destinations.duckdb(duckdb_file),
                        dataset_name="{source}", pipelines_dir=pipelines_dir)
kwargs = {{}} if file_format == "default" else {{"loader_file_format": file_format}}
pipeline.run(data.pages(total=int(rows), page_size=int(page_size)), table_name="{table}", **kwargs)
print(json.dumps({{"run_seconds": time.perf_counter() - started}}))
'''.format(source=SOURCE, table=TABLE)


@dataclass
class Result:
    variant: str
    rows: int
    seconds: float = 0.0  # wall time of the subprocess
    run_seconds: Optional[float] = None  # time spent loading, as reported by the child
    cpu_seconds: float = 0.0  # user + system CPU of the subprocess (and its waited-for children)
    peak_rss_mb: float = 0.0
    load_average: float = 0.0  # 1-minute load average when the variant finished (others' work on the machine)
    loaded: Optional[int] = None
    error: Optional[str] = None
    columns: Dict[str, str] = field(default_factory=dict)
    steps: Dict[str, float] = field(default_factory=dict)  # extract / normalize / load seconds, from dlt's trace
    all_seconds: List[float] = field(default_factory=list)  # wall time of every run when --repeat > 1

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds and not self.error else 0.0

    @property
    def rows_per_cpu_s(self) -> float:
        return self.rows / self.cpu_seconds if self.cpu_seconds and not self.error else 0.0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    work = Path(tempfile.mkdtemp(prefix="foundation-throughput-"))
    try:
        root = _write_root(work, args.rows, args.page_size, args.arrow)
        baseline_root = _write_root(work / "baseline", args.baseline_rows, args.page_size)
        extra_env = dict(kv.split("=", 1) for kv in args.env)
        runs: Dict[str, List[Result]] = {variant: [] for variant in args.variants}
        for attempt in range(1, args.repeat + 1):  # interleaved, so a busy spell on the machine hits every variant
            for variant in args.variants:
                rows = args.baseline_rows if variant == "defaults" else args.rows
                data_root = baseline_root if variant == "defaults" else root
                print(f"running {variant} ({rows:,} rows, run {attempt}/{args.repeat}) ...", file=sys.stderr,
                      flush=True)
                result = _run_variant(variant, rows, data_root, work / f"{variant}-{attempt}", args, extra_env)
                print(f"  {_one_line(result)}", file=sys.stderr, flush=True)
                runs[variant].append(result)
        results = [_best(variant_runs) for variant_runs in runs.values()]
        ok = _report(results, args)
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(r) | {"rows_per_s": r.rows_per_s} for r in results],
                                                  indent=2))
        return 0 if ok else 1
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


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for every variant (default 1,000,000)")
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="rows for the dlt-defaults variant only (default: --rows); rows/s are compared")
    parser.add_argument("--page-size", type=int, default=10_000, help="rows per yielded page (default 10,000)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for every variant, e.g. DATA_WRITER__BUFFER_MAX_ITEMS=100000")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every variant this many times, interleaved; report the fastest run and the "
                             "highest peak RSS (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a variant is killed")
    parser.add_argument("--rss-limit-mb", type=float, default=12_000,
                        help="kill a variant whose RSS goes above this (protects the machine; default 12000)")
    parser.add_argument("--profile", metavar="DIR",
                        help="run each variant under cProfile, writing DIR/<variant>-<run>.prof (timings inflate)")
    parser.add_argument("--arrow", action="store_true",
                        help="the foundation variant's resource sets `arrow: true` (pages become Arrow tables)")
    parser.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (DuckDB files, logs)")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
    args.baseline_rows = args.baseline_rows or args.rows
    if any("=" not in kv for kv in args.env):
        parser.error("--env takes KEY=VALUE")
    return args


# `--arrow`: the resource opts into Arrow pages; the timestamp hint gives the same column types as the dict path
ARROW_YAML = """\
        arrow: true
        columns: {created_at: {data_type: timestamp, timezone: true}}
"""


def _write_root(work: Path, rows: int, page_size: int, arrow: bool = False) -> Path:
    """A sources root with one source folder `bench` (data.py + sources.yaml) yielding `rows` rows."""
    folder = work / "root" / SOURCE
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text(DATA_PY)
    (folder / "sources.yaml").write_text(SOURCES_YAML.format(source=SOURCE, table=TABLE, rows=rows,
                                                             page_size=page_size, arrow=ARROW_YAML if arrow else ""))
    return work / "root"


def _run_variant(variant: str, rows: int, root: Path, folder: Path, args: argparse.Namespace,
                 extra_env: Dict[str, str]) -> Result:
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
        env["FOUNDATION_PIPELINES_DIR"] = str(pipelines_dir)
        command = python + ["-m", "data_foundation.cli", "--root", str(root), "run", "--duckdb-file",
                            str(duckdb_file), SOURCE]
    else:
        script = folder / "hand_written.py"
        script.write_text(HAND_WRITTEN)
        command = python + [str(script), str(root / SOURCE / "data.py"), str(duckdb_file), str(pipelines_dir),
                            str(rows), str(args.page_size), "default" if variant == "defaults" else "parquet"]
    result = Result(variant, rows)
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
        if result.loaded != rows:
            result.error = f"DuckDB holds {result.loaded} rows in table `{TABLE}`, expected {rows}"
    return result


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
    """Rows and column types of the `events` table, wherever its dataset is (`bench`, or `bench_<user>` when the
    CLI's default target adds a per-developer suffix)."""
    import duckdb

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        schemas = [row[0] for row in con.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = ? AND table_schema LIKE ? "
            "AND table_schema NOT LIKE '%\\_staging' ESCAPE '\\'", [TABLE, f"%{SOURCE}%"]).fetchall()]
        if len(schemas) != 1:
            return 0, {}
        count = con.execute(f'SELECT COUNT(*) FROM "{schemas[0]}"."{TABLE}"').fetchone()[0]
        columns = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY ordinal_position", [schemas[0], TABLE]).fetchall())
    return int(count), columns


def _one_line(r: Result) -> str:
    if r.error:
        return f"FAILED after {r.seconds:.1f} s, peak RSS {r.peak_rss_mb:,.0f} MB: {r.error}"
    return (f"{r.seconds:.1f} s ({r.cpu_seconds:.1f} s CPU), {r.rows_per_s:,.0f} rows/s, "
            f"peak RSS {r.peak_rss_mb:,.0f} MB, {r.loaded:,} rows verified, load avg {r.load_average:.1f}")


COLUMNS = ("variant", "rows", "wall s", "run s", "cpu s", "extract s", "normalize s", "load s", "rows/s",
           "rows/cpu-s", "peak RSS MB", "load avg")


def _cells(r: Result) -> List[str]:
    def seconds(value: Optional[float]) -> str:
        return f"{value:.1f}" if value is not None else "-"

    return [r.variant, f"{r.rows:,}", seconds(r.seconds), seconds(r.run_seconds),
            seconds(r.cpu_seconds), *(seconds(r.steps.get(step)) for step in ("extract", "normalize", "load")),
            f"{r.rows_per_s:,.0f}" if not r.error else "FAILED",
            f"{r.rows_per_cpu_s:,.0f}" if not r.error else "FAILED", f"{r.peak_rss_mb:,.0f}", f"{r.load_average:.1f}"]


def _report(results: List[Result], args: argparse.Namespace) -> bool:
    import dlt
    import duckdb

    by = {r.variant: r for r in results}
    print(f"\nmachine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {memory_gb():.1f} GB RAM, "
          f"Python {platform.python_version()}, dlt {dlt.__version__}, duckdb {duckdb.__version__}")
    print(f"data-foundation: {_revision()}")
    if args.env:
        print(f"extra env: {' '.join(args.env)}")
    if args.profile:
        print("NOTE: run under cProfile: timings are inflated")
    widths = [12] + [max(len(c) + 2, 9) for c in COLUMNS[1:]]
    header = "".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(COLUMNS, widths)))
    print(header)
    print("-" * len(header))
    for r in results:
        print("".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(_cells(r), widths))))
    print("wall s: whole subprocess (interpreter start and imports included), used for rows/s and the floors; "
          "run s: the load as timed by the child;\ncpu s: user+system CPU of the subprocess (less sensitive to other "
          "work on the machine); load avg: 1-minute load average when the variant ended")
    for r in results:
        if r.error:
            print(f"{r.variant} FAILED: {r.error}")
    if args.repeat > 1:
        print(f"--repeat {args.repeat}: fastest of " + "; ".join(f"{r.variant} {r.all_seconds}" for r in results
                                                                 if r.all_seconds) + " s; peak RSS is the highest")
    if "defaults" in by and by["defaults"].rows != args.rows:
        print(f"NOTE: the dlt-defaults variant loaded {by['defaults'].rows:,} rows (--baseline-rows), the others "
              f"{args.rows:,}: ratios compare rows/s.")
    schemas = {r.variant: r.columns for r in results if r.columns}
    if len({json.dumps(c, sort_keys=True) for c in schemas.values()}) > 1:
        print(f"WARNING: the variants produced different column types: {schemas}")

    ok = not any(r.error for r in results)
    foundation = by.get("foundation")
    print()
    if foundation is None or foundation.error:
        print("verdict: FAIL (foundation variant not run or failed)")
        return False
    defaults = by.get("defaults")
    if defaults is not None and not defaults.error:
        ratio = foundation.rows_per_s / defaults.rows_per_s
        passed = ratio >= SPEEDUP_FLOOR
        print(f"foundation / dlt defaults         rows/s: {ratio:6.2f}x   floor >= {SPEEDUP_FLOOR:.0f}x: "
              f"{'PASS' if passed else 'FAIL'}   (rows/cpu-s: "
              f"{foundation.rows_per_cpu_s / defaults.rows_per_cpu_s:.2f}x)")
    else:
        print("foundation / dlt defaults         rows/s:    n/a   (defaults variant not run or failed): FAIL")
        passed = False
    ok &= passed
    parquet = by.get("parquet")
    if parquet is not None and not parquet.error:
        ratio = foundation.rows_per_s / parquet.rows_per_s
        note = (f"   more than {PARQUET_TOLERANCE:.0%} slower than the hand-written parquet pipeline"
                if ratio < 1 - PARQUET_TOLERANCE else f"   (within {PARQUET_TOLERANCE:.0%} or faster)")
        print(f"foundation / hand-written parquet rows/s: {ratio:6.2f}x{note}   (rows/cpu-s: "
              f"{foundation.rows_per_cpu_s / parquet.rows_per_cpu_s:.2f}x)")
    rss_ok = foundation.peak_rss_mb <= RSS_FLOOR_MB
    print(f"foundation peak RSS: {foundation.peak_rss_mb:,.0f} MB   floor <= {RSS_FLOOR_MB:.0f} MB: "
          f"{'PASS' if rss_ok else 'FAIL'}")
    ok &= rss_ok
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    if args.markdown:
        print("\n| " + " | ".join(COLUMNS) + " |\n|---|" + "---:|" * (len(COLUMNS) - 1))
        for r in results:
            print("| " + " | ".join(_cells(r)) + " |")
    return ok


def _revision() -> str:
    """The commit measured, and whether src/ had uncommitted changes (the tree may be shared)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{commit}{' + uncommitted changes in src/' if dirty else ''}"


if __name__ == "__main__":
    sys.exit(main())
