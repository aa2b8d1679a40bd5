"""Orders, their lines, payment attempts: SQL only, inside transactions the services own."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

import asyncpg

from ecomctl.domain.models import Order, OrderLine, OrderStatus, PaymentAttempt

_INSERT_ITEMS = """
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT $1, product_id, qty, price
FROM unnest($2::bigint[], $3::int[], $4::numeric[]) AS r(product_id, qty, price)
"""

_ORDER_COLUMNS = "id, user_id, status, total, currency, created_at"


async def insert_order(
    conn: asyncpg.Connection,
    order_id: UUID,
    user_id: int,
    lines: Sequence[OrderLine],
    total: Decimal,
    currency: str,
) -> None:
    await conn.execute(
        "INSERT INTO orders (id, user_id, status, total, currency) VALUES ($1, $2, $3, $4, $5)",
        order_id, user_id, OrderStatus.PENDING.value, total, currency,
    )
    await conn.execute(
        _INSERT_ITEMS,
        order_id,
        [line.product_id for line in lines],
        [line.quantity for line in lines],
        [line.unit_price for line in lines],
    )


async def lock_order(conn: asyncpg.Connection, order_id: UUID) -> Order | None:
    """The order with its row locked for a status change in this transaction."""
    row = await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id
    )
    return await _with_lines(conn, row) if row else None


async def set_status(conn: asyncpg.Connection, order_id: UUID, status: OrderStatus) -> None:
    await conn.execute(
        "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1", order_id, status.value
    )


async def get_order(conn: asyncpg.Connection, order_id: UUID) -> Order | None:
    row = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
    return await _with_lines(conn, row) if row else None


async def list_orders(
    conn: asyncpg.Connection, user_id: int, limit: int, offset: int
) -> tuple[list[Order], int]:
    rows = await conn.fetch(
        f"SELECT {_ORDER_COLUMNS}, count(*) OVER () AS total_count FROM orders "
        "WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
        user_id, limit, offset,
    )
    if not rows:
        total = await conn.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", user_id)
        return [], int(total)
    items = await conn.fetch(
        "SELECT order_id, product_id, quantity, unit_price FROM order_items "
        "WHERE order_id = ANY($1::uuid[]) ORDER BY product_id",
        [r["id"] for r in rows],
    )
    by_order: dict[UUID, list[OrderLine]] = {}
    for item in items:
        by_order.setdefault(item["order_id"], []).append(_line(item))
    orders = [_order(r, by_order.get(r["id"], [])) for r in rows]
    return orders, int(rows[0]["total_count"])


async def insert_payment_attempt(conn: asyncpg.Connection, attempt: PaymentAttempt,
                                 idempotency_key: str, currency: str) -> None:
    await conn.execute(
        "INSERT INTO payments (order_id, idempotency_key, attempt, status, amount, currency, "
        "gateway_ref, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        attempt.order_id, idempotency_key, attempt.attempt, attempt.status.value,
        attempt.amount, currency, attempt.gateway_ref, attempt.error,
    )


async def payment_attempt_count(conn: asyncpg.Connection, order_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM payments WHERE order_id = $1", order_id))


async def _with_lines(conn: asyncpg.Connection, row: asyncpg.Record) -> Order:
    items = await conn.fetch(
        "SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = $1 "
        "ORDER BY product_id",
        row["id"],
    )
    return _order(row, [_line(i) for i in items])


def _line(row: asyncpg.Record) -> OrderLine:
    return OrderLine(row["product_id"], row["quantity"], row["unit_price"])


def _order(row: asyncpg.Record, lines: Sequence[OrderLine]) -> Order:
    return Order(
        id=row["id"], user_id=row["user_id"], status=OrderStatus(row["status"]),
        lines=tuple(lines), total=row["total"], currency=row["currency"].strip(),
        created_at=row["created_at"],
    )
