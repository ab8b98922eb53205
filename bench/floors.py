"""Every floor of the performance issue in one run, printed as ONE markdown table of ratios measured side by side.

Rows (each measured in this run, on this machine, next to its anchor):

  throughput    `bench/throughput.py` on `--rows` dict rows (pages of 10k), shapes flat and mix (nested object +
                lists -> child tables): `foundation run` (default settings, no `arrow:` key) rows/s vs a hand-written
                dlt pipeline with dlt's defaults (insert_values, on `--baseline-rows`: rows/s are compared), by
                whole-process wall time and by steady-state rate (N vs N/2 runs: the fixed per-process cost
                excluded). Floors: >= 30x flat, >= 20x mix. Anchors (info rows, vs the same defaults): hand-written
                dlt + parquet, Arrow tables yielded straight to dlt, `pyarrow.Table.from_pylist` per page.
  CPU-bound     `bench/jaffle.py` with the replica in CPU-bound mode (`--cpu-per-order-ms`, default 1.29 ms of busy
                CPU per order served, one request at a time: the real service's single worker with one item query
                per order, ~80 s for all orders), latency 0, at each `--cpu-page-size` (default 100, the API's
                default, and 1000, the source's): full load (`foundation run jaffle_shop`, whole process) / bare
                sequential download of every page (requests.Session, same page_size). Floor <= 1.03. Anchor: a
                hand-written dlt `rest_api_source` (HeaderLinkPaginator) + parquet full load, same page_size.
  latency-bound the replica with `--latency-ms` (default 400) per request, no CPU mode, page_size
                `--latency-page-size` (default 1000, the source's): full load / bare download. Floor <= 0.6.
  re-run        `foundation run jaffle_shop` again with no new data (whole process; median of `--rerun-repeat`,
                in the CPU-bound setting at the first page size of `--rerun-page-size`, default 1000). Floor <= 1.2 s.
                Anchor: the hand-written dlt pipeline's no-op re-run.
  peak RSS      the highest `ru_maxrss` (wait4) of the Jaffle Shop full loads above. Floor <= 250 MB.

Prints the machine, the commit (`git rev-parse --short HEAD`, and whether src/ or dlthub/ had uncommitted changes),
the 1-minute load average at start and end, then the table. Exit status 1 when a floor fails or a run fails.
On a quiet 2-core machine the defaults take about 13 minutes (the CPU-bound settings ~4 min each: the replica
needs ~80 s per pass, and each setting makes three passes: download, anchor, full load).

    .venv/bin/python bench/floors.py                      # everything, default sizes
    .venv/bin/python bench/floors.py --json /tmp/floors.json
    # smoke test (minutes, numbers meaningless): tiny sizes, cheap replica modes
    .venv/bin/python bench/floors.py --rows 20000 --baseline-rows 10000 --tp-page-size 2000 \\
        --cpu-per-order-ms 0.02 --cpu-page-size 1000 --latency-ms 20 --rerun-repeat 1
"""

import argparse
import json
import os
import platform
import statistics
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import jaffle
import throughput
from _common import memory_gb

THROUGHPUT_FLOORS = throughput.SPEEDUP_FLOORS  # flat 30x, mix 20x
CPU_RATIO_FLOOR = 1.03
LATENCY_RATIO_FLOOR = 0.6
RERUN_FLOOR_S = 1.2
RSS_FLOOR_MB = 250.0
SHAPE_NAMES = {"flat": "flat dict pages", "mix": "dict pages with nested objects and lists"}


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    started, load_start = time.perf_counter(), os.getloadavg()
    print(f"floors: {throughput.revision()}, load average at start {_load(load_start)}", file=sys.stderr, flush=True)
    rows: List[Dict[str, Any]] = []
    details: Dict[str, Any] = {}
    if not args.skip_throughput:
        rows += _throughput(args, details)
    if not args.skip_jaffle:
        rows += _jaffle(args, details)
    load_end = os.getloadavg()
    ok = _report(rows, args, load_start, load_end, time.perf_counter() - started)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "details": details, "load_start": load_start,
                                               "load_end": load_end, "revision": throughput.revision()},
                                              indent=2, default=str))
    return 0 if ok else 1


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("throughput")
    group.add_argument("--rows", type=int, default=300_000, help="rows for foundation and the anchors (300,000)")
    group.add_argument("--baseline-rows", type=int, default=100_000,
                       help="rows for dlt defaults (insert_values; default 100,000: ~50 s at 300k); rows/s compared")
    group.add_argument("--tp-page-size", type=int, default=10_000, help="rows per yielded page (10,000)")
    group.add_argument("--shape", default="flat,mix", help="throughput shapes (flat,mix)")
    group.add_argument("--no-steady", dest="steady", action="store_false",
                       help="skip the half-size runs (no steady-state rows)")
    group.add_argument("--no-anchors", dest="anchors", action="store_false",
                       help="throughput: skip the parquet / arrow / from_pylist anchors")
    group = parser.add_argument_group("Jaffle Shop")
    group.add_argument("--cpu-per-order-ms", type=float, default=jaffle.PROD_CPU_PER_ORDER_MS,
                       help=f"the CPU-bound replica's busy ms per order (default {jaffle.PROD_CPU_PER_ORDER_MS})")
    group.add_argument("--cpu-page-size", default=f"{jaffle.API_DEFAULT_PAGE_SIZE},{jaffle.SOURCE_PAGE_SIZE}",
                       help="page sizes of the CPU-bound setting (default 100,1000: the API's and the source's)")
    group.add_argument("--latency-ms", type=float, default=400, help="the latency-bound replica's ms per request")
    group.add_argument("--latency-page-size", default=str(jaffle.SOURCE_PAGE_SIZE),
                       help="page sizes of the latency-bound setting (default 1000, the source's)")
    group.add_argument("--rerun-page-size", type=int, default=jaffle.SOURCE_PAGE_SIZE,
                       help="the CPU-bound setting whose no-op re-runs are the re-run row (default 1000)")
    group.add_argument("--rerun-repeat", type=int, default=3, help="no-op re-runs (and anchor re-runs); median (3)")
    group.add_argument("--no-jaffle-anchor", dest="jaffle_anchor", action="store_false",
                       help="skip the hand-written rest_api_source anchor")
    parser.add_argument("--skip-throughput", action="store_true", help="Jaffle Shop rows only")
    parser.add_argument("--skip-jaffle", action="store_true", help="throughput rows only")
    parser.add_argument("--json", metavar="FILE", help="also write the rows and the raw results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args(argv)
    try:
        args.cpu_page_size = [int(v) for v in args.cpu_page_size.split(",") if v.strip()]
        args.latency_page_size = [int(v) for v in args.latency_page_size.split(",") if v.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if args.rerun_page_size not in args.cpu_page_size:
        args.rerun_page_size = args.cpu_page_size[0]
    return args


# ------------------------------------------------------------------------------------------------------------------
# throughput
# ------------------------------------------------------------------------------------------------------------------
def _throughput(args: argparse.Namespace, details: Dict[str, Any]) -> List[Dict[str, Any]]:
    variants = list(throughput.VARIANTS) if args.anchors else ["foundation", "defaults"]
    argv = ["--rows", str(args.rows), "--baseline-rows", str(args.baseline_rows), "--page-size",
            str(args.tp_page_size), "--shape", args.shape, "--variants", ",".join(variants)]
    if not args.steady:
        argv.append("--no-steady")
    if args.keep:
        argv.append("--keep")
    tp_args = throughput.parse(argv)
    results = throughput.measure(tp_args)
    details["throughput"] = [throughput._as_dict(r) for r in results]
    by = {(r.shape, r.variant): r for r in results}
    rows = []
    for ratio in throughput.speedups(results):
        shape, basis = ratio["shape"], ratio["basis"]
        foundation, defaults = by.get((shape, "foundation")), by.get((shape, "defaults"))
        rows.append(_row(
            f"throughput, {SHAPE_NAMES[shape]}: `foundation run` rows/s vs dlt defaults (insert_values), "
            + ("whole process" if basis == "wall" else "steady state (N vs N/2)"),
            _rate(foundation, basis, "foundation"), _rate(defaults, basis, "dlt defaults"),
            _x(ratio["ratio"]), f">= {ratio['floor']:g}x", ratio["passed"]))
    for shape in tp_args.shape:
        defaults = by.get((shape, "defaults"))
        for variant, name in (("parquet", "hand-written dlt + parquet"), ("arrow", "Arrow tables yielded to dlt"),
                              ("from_pylist", "`pa.Table.from_pylist` per page")):
            anchor = by.get((shape, variant))
            if anchor is None:
                continue
            ratios = [f"{_x(_div(_r(anchor, b), _r(defaults, b)))} {b}" for b in ("wall", "steady")
                      if _div(_r(anchor, b), _r(defaults, b))]
            rows.append(_row(f"anchor, {SHAPE_NAMES[shape]}: {name}",
                             _rate(anchor, "wall", "") + (f"; steady {_r(anchor, 'steady'):,.0f}"
                                                          if _r(anchor, "steady") else ""),
                             _rate(defaults, "wall", "dlt defaults"), ", ".join(ratios) or "-", "-",
                             None if not anchor.error else False))
    return rows


def _r(result: Optional[throughput.Result], basis: str) -> Optional[float]:
    if result is None or result.error:
        return None
    return result.rows_per_s if basis == "wall" else result.steady_rows_per_s


def _rate(result: Optional[throughput.Result], basis: str, name: str) -> str:
    if result is None:
        return f"{name} not run"
    if result.error:
        return f"{name} FAILED".strip()
    value = _r(result, basis)
    rows = f"{result.rows:,}" if basis == "wall" else f"{result.rows:,} vs {result.half.rows:,}" if result.half else ""
    return f"{name} {value:,.0f} rows/s ({rows} rows)".strip() if value else f"{name} n/a (noisy)".strip()


# ------------------------------------------------------------------------------------------------------------------
# Jaffle Shop
# ------------------------------------------------------------------------------------------------------------------
def _jaffle(args: argparse.Namespace, details: Dict[str, Any]) -> List[Dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="foundation-floors-jaffle-"))
    settings: List[jaffle.Setting] = []
    try:
        for page_size in args.cpu_page_size:
            settings.append(jaffle.Setting(0.0, page_size, args.cpu_per_order_ms, CPU_RATIO_FLOOR))
        for page_size in args.latency_page_size:
            settings.append(jaffle.Setting(args.latency_ms, page_size, 0.0, LATENCY_RATIO_FLOOR))
        rerun_setting = next(s for s in settings if s.cpu_per_order_ms and s.page_size == args.rerun_page_size) \
            if args.cpu_page_size else None
        for index, setting in enumerate(settings):
            print(f"[jaffle {index + 1}/{len(settings)}] replica {setting.label} ...", file=sys.stderr, flush=True)
            jaffle_args = jaffle._parse(["--quick", "--latency-ms", "0", "--page-size", "1000",
                                         "--rerun-repeat", str(args.rerun_repeat if setting is rerun_setting else 1)]
                                        + (["--anchor"] if args.jaffle_anchor else []))
            jaffle.measure(setting, work / f"setting{index}", jaffle_args)
        details["jaffle"] = [jaffle._as_dict(s) for s in settings]
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    for s in settings:
        full, download, anchor = s.full, s.download, s.anchor
        kind = (f"CPU-bound replica ({s.cpu_per_order_ms:g} ms CPU per order, 1 worker, latency 0)"
                if s.cpu_per_order_ms else f"replica with {s.latency_ms:g} ms latency per request (latency-bound)")
        anchor_cell = f"bare sequential download {download:.1f} s" if download is not None else "download FAILED"
        if anchor is not None:
            ratio = _x(_div(anchor.seconds, download))
            anchor_cell += "; rest_api_source + parquet " + (f"{anchor.seconds:.1f} s ({ratio})" if anchor.ok
                                                             else "FAILED")
        rows.append(_row(f"Jaffle Shop full load / bare download, {kind}, page_size {s.page_size}",
                         f"full load {full.seconds:.1f} s" if full else f"full load FAILED{_why(s)}", anchor_cell,
                         _x(s.ratio), f"<= {s.floor:g}x", s.passed))
    if rerun_setting is not None:
        rerun, anchor_rerun = rerun_setting.rerun, rerun_setting.anchor_rerun
        measured = _median_of(rerun_setting.reruns)
        anchor_s = _median_of(rerun_setting.anchor_reruns) if rerun_setting.anchor_reruns else None
        rows.append(_row(f"re-run with no new data (whole process), {rerun_setting.label}",
                         f"{measured:.2f} s (median of {len(rerun_setting.reruns)})" if measured else
                         "FAILED" if rerun is not None else "not run",
                         f"hand-written dlt {anchor_s:.2f} s" if anchor_s else
                         ("hand-written dlt FAILED" if anchor_rerun is not None else "-"),
                         _x(_div(measured, anchor_s)), f"<= {RERUN_FLOOR_S:g} s",
                         measured is not None and measured <= RERUN_FLOOR_S))
    fulls = [(r.peak_rss_mb, s) for s in settings for r in s.fulls if r.ok]
    anchors = [s.anchor.peak_rss_mb for s in settings if s.anchor is not None and s.anchor.ok]
    if fulls:
        peak, where = max(fulls, key=lambda pair: pair[0])
        rows.append(_row(f"Jaffle Shop full load peak RSS (ru_maxrss, highest of {len(fulls)} full loads)",
                         f"{peak:.0f} MB ({where.label})",
                         f"rest_api_source + parquet {max(anchors):.0f} MB" if anchors else "-",
                         _x(_div(peak, max(anchors) if anchors else None)), f"<= {RSS_FLOOR_MB:g} MB",
                         peak <= RSS_FLOOR_MB))
    else:
        rows.append(_row("Jaffle Shop full load peak RSS", "no full load succeeded", "-", "-",
                         f"<= {RSS_FLOOR_MB:g} MB", False))
    return rows


def _median_of(runs: List[jaffle.Run]) -> Optional[float]:
    if not runs or not all(r.ok for r in runs):
        return None
    return statistics.median(r.seconds for r in runs)


def _why(s: jaffle.Setting) -> str:
    failed = next((r for r in s.fulls if not r.ok), None)
    error = s.error or (failed.error if failed else None)
    return f" ({error.splitlines()[0][:80]})" if error else ""


# ------------------------------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------------------------------
def _row(what: str, measured: str, anchor: str, ratio: str, floor: str, passed: Optional[bool]) -> Dict[str, Any]:
    return {"what": what, "measured": measured, "anchor": anchor, "ratio": ratio, "floor": floor,
            "verdict": "info" if passed is None else "PASS" if passed else "FAIL"}


def _div(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _x(value: Optional[float]) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def _load(load: Any) -> str:
    return " / ".join(f"{v:.2f}" for v in load) + " (1/5/15 min)"


def _report(rows: List[Dict[str, Any]], args: argparse.Namespace, load_start: Any, load_end: Any,
            seconds: float) -> bool:
    import dlt
    import duckdb

    print(f"\nmachine: {platform.machine()} {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
          f"{memory_gb():.1f} GB RAM, Python {platform.python_version()}, dlt {dlt.__version__}, "
          f"duckdb {duckdb.__version__}")
    print(f"commit: {throughput.revision()}")
    print(f"load average: start {_load(load_start)}, end {_load(load_end)}; took {seconds / 60:.1f} min")
    print()
    print("| what | measured | anchor | ratio | floor | PASS/FAIL |")
    print("|---|---|---|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(str(row[k]).replace("|", "\\|") for k in ("what", "measured", "anchor", "ratio",
                                                                           "floor", "verdict")) + " |")
    ok = all(row["verdict"] != "FAIL" for row in rows) and bool(rows)
    print(f"\nverdict: {'PASS' if ok else 'FAIL'} ({sum(r['verdict'] == 'FAIL' for r in rows)} of "
          f"{sum(r['verdict'] != 'info' for r in rows)} floors failed)")
    return ok


if __name__ == "__main__":
    sys.exit(main())
