"""A checksum per shop table, to show that two seeds with the same plan wrote the same data.

Each table's rows are rendered as text (``t::text``) in primary-key order and hashed with
md5 on the server. Time zone and date style are pinned for the transaction, since they
change how timestamps render.
"""

from __future__ import annotations

from ecomctl.adapters.postgres.database import Database

# Each shop table and its primary key (the order rows are hashed in).
PRIMARY_KEYS: dict[str, str] = {
    "users": "id",
    "categories": "id",
    "products": "id",
    "inventory": "product_id",
    "orders": "id",
    "order_items": "order_id, product_id",
    "inventory_reservations": "order_id, product_id",
    "payments": "id",
    "shipments": "id",
    "outbox": "id",
    "processed_events": "consumer, event_id",
    "analytics_counters": "name",
}


async def table_checksums(db: Database) -> dict[str, str]:
    """md5 of every shop table's rows in primary-key order (md5 of '' for an empty table)."""
    checksums: dict[str, str] = {}
    async with db.transaction() as conn:
        await conn.execute("SET LOCAL TimeZone = 'UTC'")
        await conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        await conn.execute("SET LOCAL extra_float_digits = 1")
        for table, key in PRIMARY_KEYS.items():
            order = ", ".join(f"t.{column.strip()}" for column in key.split(","))
            checksums[table] = await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) "
                f"FROM {table} t"
            )
    return checksums
