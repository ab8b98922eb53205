"""Dagster definitions with the dbt project vs without it: the cost the dbt half adds to every code-location load.

A temporary working directory holds a copy of the Jaffle Shop source (`dlthub/jaffle_shop`), a copy of the dbt
project with its sources.yml generated and its manifest prepared (as `make` does), and two config files:
`with.toml` (a `[dbt]` table) and `without.toml` (none). Each measurement is a fresh subprocess in that directory
with `foundation.toml` pointing at one of them, variants alternating, and reports the median over --repeat runs of:

  process   `python -c "import data_foundation.definitions; defs.resolve_asset_graph(); defs.get_repository_def()"`:
            interpreter start, imports (dagster-dbt imports dbt-core), validation of the sources, the definitions
            and their load, as a code server pays them
  validate  `dagster definitions validate -m data_foundation.definitions`: the same through Dagster's own CLI

ratio = with / without; the floor (issue) is ratio <= 1.5 for `process`. For scale it also times one `dbt parse`
(what a load would cost on top if the definitions parsed the project every time, as `prepare_if_dev` does under
`dagster dev`). Exit status 1 when the floor fails or a variant fails to load.

    .venv/bin/python bench/dbt_defs.py                 # 5 runs per variant
    .venv/bin/python bench/dbt_defs.py --repeat 9 --markdown
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
FLOOR = 1.5
LOAD = ("import data_foundation.definitions as m; m.defs.resolve_asset_graph(); m.defs.get_repository_def(); "
        "print(len(m.defs.resolve_asset_graph().get_all_asset_keys()))")


def _sandbox(base: Path) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from data_foundation.config.loading import load_project
    from data_foundation.dbt.environment import dbt_environment
    from data_foundation.dbt.invoke import prepare_manifest
    from data_foundation.dbt.settings import DbtSettings
    from data_foundation.dbt.sources_yml import write_sources
    from data_foundation.load.destinations import create_target

    shutil.copytree(REPO / "dlthub" / "jaffle_shop", base / "dlthub" / "jaffle_shop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "dbt", base / "dbt", ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    settings = DbtSettings.at(base / "dbt")
    project = load_project(base / "dlthub")
    write_sources(project, settings)
    prepare_manifest(settings, dbt_environment(project, create_target("duckdb", str(base / "w.duckdb")), settings),
                     force=True)
    (base / "with.toml").write_text('[dbt]\nproject_dir = "dbt"\n')
    (base / "without.toml").write_text("")


def _time(command: List[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def _parse_seconds(base: Path) -> float:
    from data_foundation.config.loading import load_project
    from data_foundation.dbt.environment import dbt_environment
    from data_foundation.dbt.invoke import run_dbt
    from data_foundation.dbt.settings import DbtSettings
    from data_foundation.load.destinations import create_target

    settings = DbtSettings.at(base / "dbt")
    env = dbt_environment(load_project(base / "dlthub"), create_target("duckdb", str(base / "w.duckdb")), settings)
    started = time.perf_counter()
    run_dbt(["parse", "--quiet", "--no-partial-parse", "--target-path", str(base / "parse_target")], settings, env,
            capture=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-dbt-defs-"))
    try:
        _sandbox(base)
        commands = {"process": [sys.executable, "-c", LOAD],
                    "validate": [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
                                 "data_foundation.definitions"]}
        times: Dict[str, Dict[str, List[float]]] = {k: {"with": [], "without": []} for k in commands}
        for _ in range(args.repeat):
            for variant in ("without", "with"):
                shutil.copy(base / f"{variant}.toml", base / "foundation.toml")
                for name, command in commands.items():
                    times[name][variant].append(_time(command, base))
        parse = _parse_seconds(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    failed = False
    for name in commands:
        without, with_ = (statistics.median(times[name][v]) for v in ("without", "with"))
        ratio = with_ / without
        failed |= name == "process" and ratio > FLOOR
        rows.append((name, without, with_, ratio))
    if args.markdown:
        print("| measure | without dbt | with dbt | ratio |\n| --- | --- | --- | --- |")
        for name, without, with_, ratio in rows:
            print(f"| {name} | {without:.2f} s | {with_:.2f} s | {ratio:.2f} |")
    else:
        for name, without, with_, ratio in rows:
            print(f"{name:9} without {without:5.2f} s   with {with_:5.2f} s   ratio {ratio:.2f}")
    print(f"(median of {args.repeat}; one full `dbt parse` of the project takes {parse:.1f} s; floor: process ratio "
          f"<= {FLOOR}: {'FAIL' if failed else 'ok'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
