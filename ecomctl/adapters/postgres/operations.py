"""Questions the tools around the shop ask its database: the chaos fault (its connections,
whether its outbox caught up), the load runner and the simulator (what there is to buy)."""

from __future__ import annotations

import datetime as dt

from ecomctl.adapters.postgres.database import APPLICATION_NAME, Database

# The shop's connections carry APPLICATION_NAME (database.py): an outage hits the shop, not a
# test or a psql session that happens to share the database. The connection running this is
# spared by pg_backend_pid().
_TERMINATE_SHOP_CONNECTIONS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND application_name = $1
"""


async def terminate_shop_connections(db: Database) -> int:
    """End every connection the shop holds but the one asking; how many were ended."""
    async with db.connection() as conn:
        return int(await conn.fetchval(_TERMINATE_SHOP_CONNECTIONS, APPLICATION_NAME))


async def unpublished_events(db: Database, since: dt.datetime, until: dt.datetime) -> int:
    """Outbox rows written between ``since`` and ``until`` that are not on Kafka yet."""
    async with db.connection() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL "
            "AND created_at BETWEEN $1 AND $2", since, until,
        ))


async def active_product_count(db: Database) -> int:
    async with db.connection() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM products WHERE active"))


async def in_stock_products(db: Database) -> list[tuple[int, str, str]]:
    """(id, name, category slug) of every active product with stock to sell, by id."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT p.id, p.name, c.slug FROM products p "
            "JOIN categories c ON c.id = p.category_id "
            "JOIN inventory i ON i.product_id = p.id "
            "WHERE p.active AND i.on_hand - i.reserved > 0 ORDER BY p.id"
        )
    return [(r["id"], r["name"], r["slug"]) for r in rows]


async def forget_consumer(db: Database, consumer: str) -> None:
    """Delete a (scratch) consumer group's ``processed_events`` records."""
    async with db.connection() as conn:
        await conn.execute("DELETE FROM processed_events WHERE consumer = $1", consumer)


async def answers(db: Database) -> bool:
    """The pool serves a query (after an outage, once it has replaced its dead connections)."""
    async with db.connection() as conn:
        return bool(await conn.fetchval("SELECT 1"))
