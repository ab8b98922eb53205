"""Time to build Dagster definitions for 1, 100 and 500 generated sources: `build_definitions` vs bare `@dlt_assets`.

Each sources root holds N source folders (`__init__.py`, `data.py` with 3 generator functions, `sources.yaml`
with 2 or 3 merge resources with primary keys and a source-level daily `on_schedule` automation plus freshness,
as in examples/my_api). Two variants build definitions for the same root:

  ours  `build_definitions(root, target)`: load_project (YAML parsing, validation, import of every data.py),
        one multi-asset per source, the API upstream assets, the asset checks and the automation sensor
  bare  hand-written dagster-dlt: per source, import data.py, `dlt.source` of `dlt.resource(fn, name=...,
        primary_key=..., write_disposition="merge")`, `dlt.pipeline(...)`, `@dlt_assets(...)`; then
        `dg.Definitions(assets=..., resources={"dlt": DagsterDltResource()})`

Every measurement runs in a fresh subprocess (imports of dagster, dlt and data_foundation done before the clock
starts; bytecode writing off so every data.py is compiled each time), variants alternate, and each phase's
median over --repeat runs is reported:

  build    from the sources root on disk to the `dg.Definitions` object
  load     `defs.resolve_asset_graph()` then `defs.get_repository_def()`: what a code location does on load
  snap     `RepositorySnap.from_def(repo)`: the snapshot the webserver receives (informative, not in the ratio)

The ratio is ours/bare of the wall seconds of build + load (same scope on both sides); the CPU seconds of the
same span are shown too (less sensitive to other load on a shared machine, though not immune to it).
Floors (issue): ratio <= 1.3 at every N, and ours build + load <= 5 s at 500 sources. Exit status 1 when a
floor fails.

    .venv/bin/python bench/dagster_defs.py                     # N = 1, 100, 500; 3 runs per variant
    .venv/bin/python bench/dagster_defs.py --sizes 500 --repeat 5 --markdown
    .venv/bin/python bench/dagster_defs.py --sizes 500 --repeat 1 --profile /tmp/defs-prof   # cProfile of build + load
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from _common import memory_gb

VARIANTS = ("ours", "bare")
PHASES = ("build", "load", "snap")
RATIO_FLOOR = 1.3
SECONDS_FLOOR = 5.0  # ours, build + load, at FLOOR_SIZE sources
FLOOR_SIZE = 500

# Three tables a source may have; sources alternate between 3 and 2 of them.
TABLES = [
    ("customers", "fetch_customers", ["id"]),
    ("orders", "fetch_orders", "id"),
    ("order_lines", "fetch_order_lines", ["order_id", "line"]),
]

DATA_PY = '''\
"""Generated source `{source}`: customers, orders and order lines, shaped like a paginated API."""

import datetime as dt

BASE = dt.date(2024, 1, 1)


def fetch_customers(total=100, page_size=50):
    """Customers of `{source}`, one page at a time."""
    for start in range(0, total, page_size):
        yield [{{"id": i, "name": f"customer {{i}}"}} for i in range(start, min(start + page_size, total))]


def fetch_orders(total=200):
    """Orders of `{source}`."""
    for i in range(total):
        yield {{"id": i, "customer_id": i % 100, "ordered_on": (BASE + dt.timedelta(days=i % 365)).isoformat()}}


def fetch_order_lines(total=400):
    """Order lines of `{source}`: two per order."""
    for i in range(total):
        yield {{"order_id": i // 2, "line": i % 2, "amount": round(i * 1.5, 2)}}
'''

RESOURCE_YAML = '''\
    {source}.{table}:
        entry: data.{function}
        write_disposition: merge
        primary_key: {primary_key}
'''

SOURCE_YAML = '''\
sources:
    {source}:
        resources:
{members}
        meta:
            dagster:
                automation_condition: on_schedule
                automation_condition_config:
                    cron_schedule: "{cron}"
                    cron_timezone: utc
                freshness_lower_bound_delta_seconds: 108000
'''

# The hand-written equivalent, as a dagster-dlt user writes it: what to load is a literal in the module.
BARE_PY = '''\
"""Hand-written dagster-dlt definitions for the generated sources (no data_foundation)."""

import importlib.util
import sys

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

SOURCES = {sources!r}


def _import(root, name):
    spec = importlib.util.spec_from_file_location(f"bare_sources.{{name}}.data", f"{{root}}/{{name}}/data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def source_assets(root, name, tables, destination, pipelines_dir):
    data = _import(root, name)
    resources = [dlt.resource(getattr(data, function), name=table, primary_key=primary_key,
                              write_disposition="merge") for table, function, primary_key in tables]
    source = dlt.source(lambda: resources, name=name)()
    pipeline = dlt.pipeline(pipeline_name=f"bare_{{name}}", destination=destination, dataset_name=name,
                            pipelines_dir=pipelines_dir)

    @dlt_assets(dlt_source=source, dlt_pipeline=pipeline, name=name, group_name=name)
    def _assets(context: dg.AssetExecutionContext, dlt: DagsterDltResource):
        yield from dlt.run(context=context)

    return _assets


def build(root, duckdb_file, pipelines_dir):
    destination = dlt.destinations.duckdb(duckdb_file)
    assets = [source_assets(root, name, tables, destination, pipelines_dir) for name, tables in SOURCES.items()]
    return dg.Definitions(assets=assets, resources={{"dlt": DagsterDltResource()}})
'''


def write_root(folder: Path, sources: int) -> Path:
    """A sources root with `sources` generated source folders, plus bare_defs.py next to it."""
    root = folder / "root"
    root.mkdir(parents=True)
    bare: Dict[str, list] = {}
    for index in range(sources):
        name = f"src_{index:04d}"
        tables = TABLES if index % 2 == 0 else TABLES[:2]
        (root / name).mkdir()
        (root / name / "__init__.py").write_text("")
        (root / name / "data.py").write_text(DATA_PY.format(source=name))
        resources = "".join(RESOURCE_YAML.format(source=name, table=t, function=f, primary_key=json.dumps(pk))
                            for t, f, pk in tables)
        members = "\n".join(f"        - {name}.{t}" for t, _, _ in tables)
        cron = f"{index % 60} {index % 24} * * *"  # daily, at a different minute and hour per source
        (root / name / "sources.yaml").write_text(
            "resources:\n" + resources + SOURCE_YAML.format(source=name, members=members, cron=cron))
        bare[name] = [(t, f, pk) for t, f, pk in tables]
    (folder / "bare_defs.py").write_text(BARE_PY.format(sources=bare))
    return root


# ---------------------------------------------------------------- child: one measurement in a fresh interpreter

def child(variant: str, folder: Path, run_dir: Path, profile: Optional[str]) -> None:
    import dagster as dg  # noqa: F401  (imports are outside the clock, on both sides)
    import dlt  # noqa: F401
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_dlt import DagsterDltResource, dlt_assets  # noqa: F401

    root = folder / "root"
    duckdb_file = str(run_dir / "warehouse.duckdb")
    pipelines_dir = str(run_dir / "pipelines")
    if variant == "ours":
        from data_foundation.dagster import build_definitions
        from data_foundation.load.destinations import create_target

        os.environ["FOUNDATION_PIPELINES_DIR"] = pipelines_dir

        def build():
            return build_definitions(root, create_target("duckdb", duckdb_file))
    else:
        sys.path.insert(0, str(folder))

        def build():
            import bare_defs  # the hand-written module, with its literal list of sources, is part of the work

            return bare_defs.build(str(root), duckdb_file, pipelines_dir)

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    defs = build()
    built = time.perf_counter()
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    snapshot = RepositorySnap.from_def(repository)
    snapped = time.perf_counter()
    print(json.dumps({"build": built - started, "load": loaded - built, "snap": snapped - loaded,
                      "cpu": cpu_loaded - cpu_started,
                      "assets": len(graph.get_all_asset_keys()),
                      "materializable": len(graph.materializable_asset_keys),
                      "snap_assets": len(snapshot.asset_nodes)}))


# ---------------------------------------------------------------- parent: generate, measure, report

def measure(variant: str, folder: Path, work: Path, run: int, profile_dir: Optional[str], size: int) -> Dict:
    run_dir = work / f"{variant}-{size}-{run}"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOUNDATION_", "DESTINATION__", "SOURCES__"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", RUNTIME__LOG_LEVEL="WARNING", DAGSTER_HOME=str(run_dir))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(folder), str(run_dir)]
    if profile_dir:
        command += ["--profile-file", str(Path(profile_dir).resolve() / f"{variant}-{size}.prof")]
    result = subprocess.run(command, env=env, cwd=run_dir, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"{variant} at N={size} failed:\n{result.stderr[-3000:]}")
    shutil.rmtree(run_dir, ignore_errors=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    if args.child:
        variant, folder, run_dir = args.child
        child(variant, Path(folder), Path(run_dir), args.profile_file)
        return 0
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="foundation-dagster-defs-"))
    args.load_before = os.getloadavg()
    rows = []
    try:
        for size in args.sizes:
            folder = work / f"n{size}"
            root = write_root(folder, size)
            print(f"N={size}: {sum(1 for _ in root.glob('*/sources.yaml'))} source folders in {root}",
                  file=sys.stderr, flush=True)
            runs: Dict[str, List[Dict]] = {v: [] for v in VARIANTS}
            for run in range(args.repeat):
                order = VARIANTS if run % 2 == 0 else VARIANTS[::-1]  # alternate who goes first
                for variant in order:
                    runs[variant].append(measure(variant, folder, work, run, args.profile, size))
                    last = runs[variant][-1]
                    print(f"  {variant:4} run {run + 1}: build {last['build']:.2f} s, load {last['load']:.2f} s, "
                          f"CPU {last['cpu']:.2f} s, snap {last['snap']:.2f} s ({last['assets']} assets)",
                          file=sys.stderr, flush=True)
            rows.append(_summary(size, runs))
        ok = _report(rows, args)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _summary(size: int, runs: Dict[str, List[Dict]]) -> Dict:
    row: Dict = {"sources": size}
    for variant, results in runs.items():
        for phase in PHASES:
            row[f"{variant}_{phase}"] = statistics.median(r[phase] for r in results)
        row[f"{variant}_total"] = statistics.median(r["build"] + r["load"] for r in results)
        row[f"{variant}_cpu"] = statistics.median(r["cpu"] for r in results)
        row[f"{variant}_assets"] = results[0]["assets"]
        row[f"{variant}_materializable"] = results[0]["materializable"]
    row["ratio"] = row["ours_total"] / row["bare_total"]
    row["cpu_ratio"] = row["ours_cpu"] / row["bare_cpu"]
    return row


COLUMNS = ("N", "ours s", "bare s", "ratio", "ours CPU s", "bare CPU s", "CPU ratio", "ours build+load",
           "bare build+load", "snap ours/bare", "assets ours/bare")


def _cells(row: Dict) -> List[str]:
    return [str(row["sources"]), f"{row['ours_total']:.2f}", f"{row['bare_total']:.2f}", f"{row['ratio']:.2f}",
            f"{row['ours_cpu']:.2f}", f"{row['bare_cpu']:.2f}", f"{row['cpu_ratio']:.2f}",
            f"{row['ours_build']:.2f}+{row['ours_load']:.2f}", f"{row['bare_build']:.2f}+{row['bare_load']:.2f}",
            f"{row['ours_snap']:.2f}/{row['bare_snap']:.2f}", f"{row['ours_assets']}/{row['bare_assets']}"]


def _report(rows: List[Dict], args: argparse.Namespace) -> bool:
    import dagster
    import dagster_dlt
    import dlt

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"(nproc {len(os.sched_getaffinity(0))}), {memory_gb():.1f} GB RAM, Python {platform.python_version()}, "
          f"dagster {dagster.__version__}, dagster-dlt {dagster_dlt.__version__}, dlt {dlt.__version__}")
    print(f"load average (1/5/15 min) {_load(args.load_before)} before, {_load(os.getloadavg())} after")
    print(f"median of {args.repeat} run(s) per variant, each in a fresh subprocess"
          + ("; NOTE: run under cProfile, timings are inflated" if args.profile else ""))
    widths = [max(len(c) + 2, 7) for c in COLUMNS]
    header = "".join(c.rjust(w) for c, w in zip(COLUMNS, widths))
    print(header)
    print("-" * len(header))
    for row in rows:
        print("".join(c.rjust(w) for c, w in zip(_cells(row), widths)))
    print("ours s / bare s: wall seconds of build + load (sources root on disk -> Definitions, then "
          "resolve_asset_graph + get_repository_def); ratio = ours s / bare s (the floors use these); CPU s: the "
          "child's process time over the same span; snap (RepositorySnap.from_def) is informative only")
    print("ours also builds what bare does not: an upstream API asset per table, 2 asset checks per table, "
          "automation conditions, freshness policies and the automation sensor")
    ok = True
    print()
    for row in rows:
        passed = row["ratio"] <= RATIO_FLOOR
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        print(f"N={row['sources']:<4} ratio {row['ratio']:.2f}   floor <= {RATIO_FLOOR}: {verdict}")
    big = next((r for r in rows if r["sources"] == FLOOR_SIZE), None)
    if big is not None:
        passed = big["ours_total"] <= SECONDS_FLOOR
        ok &= passed
        print(f"N={FLOOR_SIZE}  ours {big['ours_total']:.2f} s   floor <= {SECONDS_FLOOR:.0f} s: "
              f"{'PASS' if passed else 'FAIL'}")
    else:
        print(f"N={FLOOR_SIZE} not measured: the seconds floor is not checked")
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    if args.markdown:
        print("\n| " + " | ".join(COLUMNS) + " |\n|" + "---:|" * len(COLUMNS))
        for row in rows:
            print("| " + " | ".join(_cells(row)) + " |")
    return ok


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,100,500", help="comma-separated numbers of sources (default 1,100,500)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per variant and size (default 3)")
    parser.add_argument("--profile", metavar="DIR", help="cProfile build + load, write DIR/<variant>-<N>.prof")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--json", metavar="FILE", help="also write the medians as JSON")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "FOLDER", "RUN_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        if args.repeat < 1 or not args.sizes or min(args.sizes) < 1:
            parser.error("--sizes and --repeat take positive numbers")
    return args


if __name__ == "__main__":
    sys.exit(main())
