"""`make demo`: the Jaffle Shop replica on 127.0.0.1, a full load into ./foundation.duckdb, then one new day, then
the dbt marts over it.

Runs the real `foundation run` and `foundation dbt build` commands against the replica; works offline.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from data_foundation.dbt.settings import find_dbt_project
from data_foundation.load.destinations import resolve_target
from jaffle_replica import JaffleReplica

console = Console()


def _foundation(*args: str) -> None:
    command = [sys.executable, "-m", "data_foundation.cli", *args]
    console.print(f"\n[bold]$ foundation {' '.join(args)}[/]")
    subprocess.run(command, check=True)


def _orders_requests(replica: JaffleReplica) -> str:
    pages = [q for _, path, q in replica.requests if path == "/api/v1/orders"]
    starts = sorted({q.get("start_date", "-") for q in pages})
    return f"{len(pages)} page(s) of /orders requested (start_date: {', '.join(starts)})"


def main() -> int:
    database = Path(os.environ.get("FOUNDATION_DUCKDB_FILE", "foundation.duckdb"))
    with JaffleReplica() as replica:
        os.environ["SOURCES__JAFFLE_SHOP__BASE_URL"] = replica.base_url
        os.environ["FOUNDATION_DUCKDB_FILE"] = str(database)
        console.print(f"Jaffle Shop replica serving {replica.row_counts()['orders']:,} orders at {replica.base_url}")
        _foundation("validate")
        _foundation("run", "jaffle_shop", "--full-refresh")
        console.print(_orders_requests(replica))

        added = replica.add_day()
        console.print(f"\nThe replica now has one more day: {added['date']} with {added['orders']} orders "
                      f"and {added['items']} items.")
        replica.clear_requests()
        _foundation("run", "jaffle_shop")
        console.print(_orders_requests(replica))
    _dbt_build()
    target = resolve_target()
    dataset = target.dataset_name("jaffle_shop")
    _print_marts(database, dataset, f"{target.dataset_name(find_dbt_project().schema_name)}_marts")
    console.print(f"\nLoaded into dataset `{dataset}` of {database.resolve()} (target `dev`). Query it with:")
    # one line, never wrapped, so it can be pasted as it is
    console.print(query_command(database, dataset), soft_wrap=True, markup=False, highlight=False)
    return 0


def _dbt_build() -> None:
    """`foundation dbt build --select source:jaffle_shop+`: the staging views, the marts and the dbt tests of what the
    demo loaded (the other sources' tests need their tables); dbt's summary line, or all of its output when it
    fails."""
    console.print("\n[bold]$ foundation dbt build --select source:jaffle_shop+[/]")
    done = subprocess.run([sys.executable, "-m", "data_foundation.cli", "dbt", "build", "--select",
                           "source:jaffle_shop+"], capture_output=True, text=True)
    if done.returncode != 0:
        console.print(done.stdout + done.stderr, markup=False, highlight=False)
        raise SystemExit(done.returncode)
    summary = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in done.stdout.splitlines() if "PASS=" in line]
    console.print(summary[-1].split("  ", 1)[-1].strip() if summary else "dbt build finished", markup=False)


def _print_marts(database: Path, dataset: str, marts: str) -> None:
    with duckdb.connect(str(database), read_only=True) as con:
        raw, mart = (con.sql(f"SELECT COUNT(*) FROM {schema}.orders").fetchall()[0][0] for schema in (dataset, marts))
        top = con.sql(f"SELECT customer_name, count_lifetime_orders, lifetime_spend, first_ordered_at::DATE, "
                      f"last_ordered_at::DATE FROM {marts}.customers ORDER BY lifetime_spend DESC LIMIT 5").fetchall()
    console.print(f"\nMart `{marts}.orders`: {mart:,} orders, as many as the raw `{dataset}.orders` ({raw:,}).")
    table = Table("customer", "orders", "lifetime spend", "first order", "last order",
                  title=f"Top customers by lifetime value ({marts}.customers)")
    for name, orders, spend, first, last in top:
        table.add_row(name, str(orders), f"${spend:,.2f}", str(first), str(last))
    console.print(table)


def query_command(database: Path, dataset: str) -> str:
    """A shell command that prints the orders loaded into `dataset` of `database`."""
    sql = f"SELECT COUNT(*) AS orders FROM {dataset}.orders"
    code = f"import duckdb; print(duckdb.connect('{database}', read_only=True).sql('{sql}'))"
    return f'.venv/bin/python -c "{code}"'


if __name__ == "__main__":
    sys.exit(main())
