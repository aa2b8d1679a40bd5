"""The seeded tables, their columns in COPY order and the kind of each column, and a batch of
rows for one of them."""

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

# The kind of each column, as the generator's raw rows carry it (see binary_copy.py):
# int8, int4, bool, text; uuid as a 128-bit int; ts as whole seconds since the Unix epoch
# (UTC); money as an int of cents (NUMERIC(12,2)). Any column may be None (NULL).
TABLE_KINDS: dict[str, tuple[str, ...]] = {
    "users": ("int8", "text", "text", "text", "ts"),
    "categories": ("int8", "text", "text", "int8"),
    "products": ("int8", "text", "text", "text", "int8", "money", "text", "bool", "int4",
                 "ts"),
    "orders": ("uuid", "int8", "text", "money", "text", "ts", "ts"),
    "order_items": ("uuid", "int8", "int4", "money"),
    "inventory_reservations": ("uuid", "int8", "int4", "text", "ts"),
    "payments": ("int8", "uuid", "text", "int4", "text", "money", "text", "text", "text",
                 "ts"),
    "shipments": ("int8", "uuid", "text", "text", "text", "ts", "ts"),
    "inventory": ("int8", "int4", "int4", "int4"),
}


@dataclass(frozen=True)
class Batch:
    """Rows for one table, in ``TABLE_COLUMNS[table]`` order."""

    table: str
    rows: list[Row]


@dataclass(frozen=True)
class EncodedBatch:
    """Rows for one table already in PostgreSQL's binary COPY format (the tuples only, no
    header or trailer: see ``binary_copy``), with what it took to build them."""

    table: str
    data: bytes
    rows: int
    build_s: float = 0.0
