"""`make demo`: the Jaffle Shop replica on 127.0.0.1, a full load into ./foundation.duckdb, then one new day.

Runs the real `foundation run` command against the replica; works offline.
"""

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

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
    dataset = resolve_target().dataset_name("jaffle_shop")
    console.print(f"\nLoaded into dataset `{dataset}` of {database.resolve()} (target `dev`). Query it with:")
    # one line, never wrapped, so it can be pasted as it is
    console.print(query_command(database, dataset), soft_wrap=True, markup=False, highlight=False)
    return 0


def query_command(database: Path, dataset: str) -> str:
    """A shell command that prints the orders loaded into `dataset` of `database`."""
    sql = f"SELECT COUNT(*) AS orders FROM {dataset}.orders"
    code = f"import duckdb; print(duckdb.connect('{database}', read_only=True).sql('{sql}'))"
    return f'.venv/bin/python -c "{code}"'


if __name__ == "__main__":
    sys.exit(main())
