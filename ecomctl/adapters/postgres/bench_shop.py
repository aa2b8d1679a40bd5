"""What ``ecomctl bench`` reads and changes in its scratch shop: the products its gateway
rows request; for the checkout floor (``ecomctl.bench.checkout_floor``) the seeded users' id
range, the listed products numbered by slot (pgbench picks products through that table),
products with stock to capture a checkout on, and stock topped up so that a run never
sells out."""

from __future__ import annotations

from typing import Any

from ecomctl.adapters.postgres.database import connect_single

LISTED_TABLE = "ecomctl_bench_listed"
"""slot -> product id, made by ``number_listed_products``."""

_LISTED = ("FROM products p JOIN inventory i ON i.product_id = p.id WHERE p.active")


async def user_id_range(conn: Any) -> tuple[int | None, int | None, int]:
    """(lowest id, highest id, how many users); ``conn``: a connection or a pool."""
    row = await conn.fetchrow("SELECT min(id) AS first, max(id) AS last, count(*) FROM users")
    return row["first"], row["last"], int(row["count"])


async def number_listed_products(conn: Any) -> None:
    """(Re)make ``LISTED_TABLE``: the listed products numbered 1..n in id order."""
    await conn.execute(
        f"DROP TABLE IF EXISTS {LISTED_TABLE}; "
        f"CREATE TABLE {LISTED_TABLE} AS SELECT row_number() OVER (ORDER BY p.id) AS slot, "
        f"p.id AS product_id {_LISTED}; ALTER TABLE {LISTED_TABLE} ADD PRIMARY KEY (slot)"
    )


async def count_listed_products(conn: Any) -> int:
    return int(await conn.fetchval(f"SELECT count(*) {_LISTED}"))


async def stocked_products(conn: Any, at_least: int, limit: int) -> list[int]:
    """The first ``limit`` listed products (by id) with ``at_least`` units free."""
    rows = await conn.fetch(
        "SELECT i.product_id FROM inventory i JOIN products p ON p.id = i.product_id "
        "WHERE p.active AND i.on_hand - i.reserved >= $1 ORDER BY i.product_id LIMIT $2",
        at_least, limit,
    )
    return [int(r["product_id"]) for r in rows]


async def listed_product_ids(database_url: str, limit: int) -> list[int]:
    """The first ``limit`` listed products by id (what the gateway rows request)."""
    conn = await connect_single(database_url)
    try:
        rows = await conn.fetch("SELECT id FROM products WHERE active ORDER BY id LIMIT $1",
                                limit)
    finally:
        await conn.close()
    return [int(r["id"]) for r in rows]


async def top_up_stock(database_url: str, available: int) -> None:
    """Give every product at least ``available`` free units."""
    conn = await connect_single(database_url)
    try:
        await conn.execute(
            "UPDATE inventory SET on_hand = reserved + $1 WHERE on_hand - reserved < $1",
            available,
        )
    finally:
        await conn.close()
