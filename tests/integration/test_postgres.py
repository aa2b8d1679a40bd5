from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.migrations import MigrationReport
from ecomctl.config import Settings


async def test_row_written_and_read_back_with_exact_money(
    settings: Settings, migrated: MigrationReport
) -> None:
    slug = f"it-{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            category_id = await conn.fetchval(
                "INSERT INTO categories (slug, name) VALUES ($1, $2) RETURNING id", slug, "IT"
            )
            product_id = await conn.fetchval(
                "INSERT INTO products (sku, name, category_id, price) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                slug, "Integration mug", category_id, Decimal("19.99"),
            )
        row = await conn.fetchrow(
            "SELECT p.name, p.price, c.slug FROM products p JOIN categories c "
            "ON c.id = p.category_id WHERE p.id = $1",
            product_id,
        )
        assert row is not None
        assert row["name"] == "Integration mug"
        assert row["price"] == Decimal("19.99") and isinstance(row["price"], Decimal)
        assert row["slug"] == slug
    finally:
        await conn.execute("DELETE FROM products WHERE sku = $1", slug)
        await conn.execute("DELETE FROM categories WHERE slug = $1", slug)
        await conn.close()


async def test_stock_constraints_hold_in_the_database(
    settings: Settings, migrated: MigrationReport
) -> None:
    """The schema refuses reserved > on_hand even if application code got it wrong."""
    slug = f"it-{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        category_id = await conn.fetchval(
            "INSERT INTO categories (slug, name) VALUES ($1, 'IT') RETURNING id", slug
        )
        product_id = await conn.fetchval(
            "INSERT INTO products (sku, name, category_id, price) VALUES ($1, 'x', $2, 1) "
            "RETURNING id",
            slug, category_id,
        )
        await conn.execute("INSERT INTO inventory (product_id, on_hand) VALUES ($1, 2)", product_id)
        try:
            await conn.execute(
                "UPDATE inventory SET reserved = 3 WHERE product_id = $1", product_id
            )
        except asyncpg.CheckViolationError as exc:
            assert exc.constraint_name == "inventory_reserved_le_on_hand"
        else:
            raise AssertionError("reserving more than on hand was accepted")
    finally:
        await conn.execute(
            "DELETE FROM inventory WHERE product_id IN (SELECT id FROM products WHERE sku = $1)",
            slug,
        )
        await conn.execute("DELETE FROM products WHERE sku = $1", slug)
        await conn.execute("DELETE FROM categories WHERE slug = $1", slug)
        await conn.close()


async def test_the_pool_sends_no_reset_query_and_still_rolls_back_an_open_transaction(
    settings: Settings, migrated: MigrationReport
) -> None:
    db = await Database.connect(settings.database_url, min_size=1, max_size=1)
    sent: list[str] = []
    try:
        async with db.connection() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
            await conn.execute("SELECT 1")
        # A transaction the caller left open (a cancelled operation) is rolled back on
        # release, so the next user of the connection is not inside it.
        async with db.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
        async with db.connection() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
            await asyncio.sleep(0)  # asyncpg calls query loggers with call_soon
    finally:
        await db.close()
    assert sent[0] == "SELECT 1"
    assert not any("RESET ALL" in q or "pg_advisory_unlock_all" in q for q in sent), sent
    assert "ROLLBACK" in sent, sent
