"""The Jaffle Shop source into a real PostgreSQL server: the same counts and types as DuckDB, and the same dbt project
builds its marts there. A month of orders: the late source on a replica serving only those (conftest's `late_api`),
so the reconciliation compares with what the API has."""

import datetime as dt

from conftest import FULL_JAFFLE, copy_dbt_project
from data_foundation.load.destinations import resolve_target
from data_foundation.config.loading import load_project
from data_foundation.load.reconcile import reconcile
from data_foundation.load.running import run_source
from test_cli import foundation


def test_jaffle_shop_loads_into_postgres_like_duckdb_and_its_marts_build_there(postgres, late_api, late_jaffle_root,
                                                                                tmp_path, monkeypatch):
    late = late_api.row_counts()
    (tmp_path / "foundation.toml").write_text(
        "[dbt]\nproject_dir = \"dbt\"\n"
        "[targets.warehouse]\ndestination = \"postgres\"\ndataset_prefix = \"raw_\"\n"
        f"credentials = {{ host = \"{postgres.host}\", port = {postgres.port}, username = \"{postgres.username}\", "
        f"database = \"{postgres.database}\" }}\n")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", postgres.password)  # secrets via dlt only
    target = resolve_target("warehouse", config_dir=tmp_path)
    source = load_project(late_jaffle_root).sources["jaffle_shop"]

    run = run_source(source, target)
    assert run.rows_total == late and reconcile(source, run.rows_total).ok
    late_api.add_day(orders=7)
    run = run_source(source, target)
    assert run.rows_loaded["orders"] == 7

    with postgres.connect() as con, con.cursor() as cur:
        counts = {}
        for table in late:
            cur.execute(f"SELECT COUNT(*) FROM raw_jaffle_shop.{table}")
            counts[table] = cur.fetchone()[0]
        cur.execute("SELECT order_total, ordered_at FROM raw_jaffle_shop.orders "
                    "WHERE id = 'e6273b98-0975-411f-aa71-5f98a82dd908'")
        total, ordered_at = cur.fetchone()
        cur.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw_jaffle_shop' "
                    "AND table_name = 'orders' AND column_name IN ('order_total', 'ordered_at') ORDER BY column_name")
        types = [r[0] for r in cur.fetchall()]
    assert counts == {**late, "orders": late["orders"] + 7, "items": counts["items"]}
    assert counts["items"] > late["items"]
    assert total == 636 and ordered_at == dt.datetime(2017, 8, 1, 12, 8, tzinfo=dt.timezone.utc)
    assert types == ["bigint", "timestamp with time zone"]

    # the shipped dbt project, unchanged, on the same server: profiles.yml's `postgres` output (the target is named
    # `warehouse`), credentials from dlt's providers, the password never printed
    copy_dbt_project(tmp_path / "dbt", late_jaffle_root)
    built = foundation("dbt", "build", "--target", "warehouse", "--root", str(late_jaffle_root), cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    assert "ERROR=0" in built.stdout and postgres.password not in built.stdout + built.stderr
    with postgres.connect() as con, con.cursor() as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM raw_dbt_marts.orders), "
                    "(SELECT COUNT(*) FROM raw_dbt_marts.order_items), (SELECT COUNT(*) FROM raw_dbt_marts.customers), "
                    "(SELECT SUM(lifetime_spend) FROM raw_dbt_marts.customers), "
                    "(SELECT SUM(order_total) FROM raw_jaffle_shop.orders)")
        orders, items, customers, spend, cents = cur.fetchone()
    assert (orders, items, customers) == (counts["orders"], counts["items"], FULL_JAFFLE["customers"])
    assert spend * 100 == cents
