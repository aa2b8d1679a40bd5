"""The seeded tables, their columns in COPY order, and a batch of rows for one of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Row = tuple[Any, ...]

# Column order of each table's rows, in an order that satisfies the foreign keys.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id", "email", "full_name", "password_hash", "created_at"),
    "categories": ("id", "slug", "name", "parent_id"),
    "products": ("id", "sku", "name", "description", "category_id", "price", "currency",
                 "active", "version", "updated_at"),
    "orders": ("id", "user_id", "status", "total", "currency", "created_at", "updated_at"),
    "order_items": ("order_id", "product_id", "quantity", "unit_price"),
    "inventory_reservations": ("order_id", "product_id", "quantity", "status", "updated_at"),
    "payments": ("id", "order_id", "idempotency_key", "attempt", "status", "amount",
                 "currency", "gateway_ref", "error", "created_at"),
    "shipments": ("id", "order_id", "tracking_number", "carrier", "status", "created_at",
                  "updated_at"),
    "inventory": ("product_id", "on_hand", "reserved", "sold"),
}
SEEDED_TABLES = tuple(TABLE_COLUMNS)


@dataclass(frozen=True)
class Batch:
    """Rows for one table, in ``TABLE_COLUMNS[table]`` order."""

    table: str
    rows: list[Row]
