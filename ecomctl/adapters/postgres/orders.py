"""Orders and their lines, and payment attempts: SQL only, on the connection of the unit of
work that owns the transaction (``unit_of_work.PostgresUnitOfWork``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

import asyncpg

from ecomctl.adapters.postgres.inventory import settle_stock
from ecomctl.adapters.postgres.outbox import event_parameters, events_cte
from ecomctl.domain.models import Order, OrderLine, OrderStatus, PaymentAttempt
from ecomctl.services.ports.orders import PaymentClaim, Settlement

_ORDER_COLUMNS = "id, user_id, status, total, currency, created_at, expires_at, cart_revision"
_UNSETTLED = "('payment_pending', 'payment_unknown')"

# Lines come along as arrays, so one statement reads orders with their items.
_WITH_LINES = f"""
SELECT {', '.join('o.' + c for c in _ORDER_COLUMNS.split(', '))},
       array_agg(i.product_id ORDER BY i.product_id) AS product_ids,
       array_agg(i.quantity ORDER BY i.product_id) AS quantities,
       array_agg(i.unit_price ORDER BY i.product_id) AS unit_prices
FROM orders o JOIN order_items i ON i.order_id = o.id
"""

# A move ends the payment's claim; a quiet period (after unanswered charges) is a lease
# with no holder: nobody may claim the payment until it lapses.
_MOVE = """
UPDATE orders SET status = $3, updated_at = now(),
                  expires_at = CASE WHEN $3 = 'pending' THEN expires_at END,
                  payment_holder = NULL,
                  payment_lease_until = CASE WHEN $7::float8 > 0
                      THEN clock_timestamp() + make_interval(secs => $7) END
WHERE id = $1 AND status = ANY($2::text[])
  AND ($4::bigint IS NULL OR user_id = $4)
  AND (NOT $5 OR expires_at IS NULL OR expires_at > now())
  AND ($6::uuid IS NULL OR payment_holder = $6)
RETURNING id
"""

# A settling move and its settlement in one statement, written only if the order moved
# (``moved``): the order's row is locked first, then its reservations and their stock rows in
# product-id order, as in two statements; the attempts are numbered after the order's
# earlier ones (a retried checkout, the reconciler); the events go to the outbox.
_SETTLING_MOVE = f"""
WITH moved AS ({_MOVE.strip()}),
{settle_stock("$1", "$8", "EXISTS (SELECT 1 FROM moved)")},
attempts AS (
    INSERT INTO payments (order_id, idempotency_key, attempt, status, amount, currency,
                          gateway_ref, error)
    SELECT moved.id, $9, base.n + a.attempt, a.status, a.amount, $10, a.ref, a.error
    FROM moved,
         unnest($11::int[], $12::text[], $13::numeric[], $14::text[], $15::text[])
             AS a(attempt, status, amount, ref, error),
         (SELECT coalesce(max(attempt), 0) AS n FROM payments WHERE order_id = $1) base
), events AS (
    {events_cte(16, "moved")}
)
SELECT count(*) AS moved FROM moved
"""

# Pending: only while its hold lasts; unsettled: only once its lease has lapsed ($6: force).
_CLAIM = """
UPDATE orders SET status = CASE WHEN $7 THEN status ELSE 'payment_pending' END,
                  updated_at = now(), expires_at = NULL,
                  payment_holder = $3,
                  payment_lease_until = clock_timestamp() + make_interval(secs => $4),
                  payment_claims = payment_claims + 1
WHERE id = $1 AND status = ANY($2::text[]) AND ($5::bigint IS NULL OR user_id = $5)
  AND CASE WHEN status = 'pending' THEN expires_at IS NULL OR expires_at > now()
           ELSE $6 OR payment_lease_until IS NULL OR payment_lease_until <= clock_timestamp()
      END
RETURNING status, payment_claims
"""

_CLAIM_REFUSED = """
SELECT status, user_id,
       greatest(extract(epoch FROM payment_lease_until - clock_timestamp()), 0)::float8
           AS lease_left_s
FROM orders WHERE id = $1
"""

_RELEASE = f"""
UPDATE orders SET payment_holder = NULL, payment_lease_until = clock_timestamp()
WHERE id = $1 AND payment_holder = $2 AND status IN {_UNSETTLED}
"""

# Claimed for retry_in_s ($2) in the same statement, so two reconcilers never share one.
_FOLLOW_UP_DUE = """
WITH due AS (
    SELECT id FROM orders
    WHERE payment_followup_at IS NOT NULL AND ($3 OR payment_followup_at <= clock_timestamp())
    ORDER BY payment_followup_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE orders o SET payment_followup_at = clock_timestamp() + make_interval(secs => $2)
FROM due WHERE o.id = due.id
RETURNING o.id
"""


class PostgresOrders:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, order_id: UUID) -> Order | None:
        row = await self._conn.fetchrow(_WITH_LINES + " WHERE o.id = $1 GROUP BY o.id", order_id)
        return _order(row) if row else None

    async def move(
        self, order_id: UUID, sources: frozenset[OrderStatus], target: OrderStatus,
        *, user_id: int | None = None, unexpired: bool = False, holder: UUID | None = None,
        quiet_s: float = 0.0, settlement: Settlement | None = None,
    ) -> bool:
        move = (order_id, sorted(s.value for s in sources), target.value, user_id, unexpired,
                holder, quiet_s)
        if settlement is None:
            return await self._conn.fetchval(_MOVE, *move) is not None
        attempts = settlement.attempts
        return bool(await self._conn.fetchval(
            _SETTLING_MOVE, *move, settlement.stock, settlement.idempotency_key,
            settlement.currency,
            [a.attempt for a in attempts], [a.status.value for a in attempts],
            [a.amount for a in attempts], [a.gateway_ref for a in attempts],
            [a.error for a in attempts], *event_parameters(settlement.events),
        ))

    async def claim_payment(
        self, order_id: UUID, sources: frozenset[OrderStatus], holder: UUID, lease_s: float,
        *, user_id: int | None = None, force: bool = False, keep_status: bool = False,
    ) -> PaymentClaim:
        row = await self._conn.fetchrow(
            _CLAIM, order_id, sorted(s.value for s in sources), holder, lease_s, user_id, force,
            keep_status,
        )
        if row is not None:
            return PaymentClaim(True, OrderStatus(row["status"]),
                                resumed=row["payment_claims"] > 1)
        # A fresh snapshot: the claim's own may predate a rival's commit that stopped it.
        row = await self._conn.fetchrow(_CLAIM_REFUSED, order_id)
        if row is None:
            return PaymentClaim(False)
        return PaymentClaim(False, OrderStatus(row["status"]), lease_left_s=row["lease_left_s"]
                            or 0.0, user_id=row["user_id"])

    async def release_payment(self, order_id: UUID, holder: UUID) -> None:
        await self._conn.execute(_RELEASE, order_id, holder)

    async def lock_user_orders(self, user_id: int) -> None:
        # Two-key form: (class, user) keeps clear of the single-key locks of seed/migrations.
        await self._conn.execute("SELECT pg_advisory_xact_lock(1, $1::int)", user_id)

    async def open_orders(self, user_id: int, cart_revision: str | None = None) -> list[Order]:
        rows = await self._conn.fetch(
            _WITH_LINES + " WHERE o.user_id = $1 "
            f"AND (o.status IN {_UNSETTLED} "
            "OR (o.status = 'pending' AND o.expires_at > now()) "
            "OR (o.cart_revision = $2 AND o.status <> 'cancelled')) "
            "GROUP BY o.id ORDER BY o.created_at, o.id",
            user_id, cart_revision,
        )
        return [_order(r) for r in rows]

    async def list_for_user(
        self, user_id: int, limit: int, offset: int
    ) -> tuple[list[Order], int]:
        rows = await self._conn.fetch(
            _WITH_LINES.replace("SELECT ", "SELECT count(*) OVER () AS total_count, ", 1)
            + " WHERE o.user_id = $1 GROUP BY o.id "
            "ORDER BY o.created_at DESC, o.id LIMIT $2 OFFSET $3",
            user_id, limit, offset,
        )
        if rows:
            return [_order(r) for r in rows], int(rows[0]["total_count"])
        total = await self._conn.fetchval("SELECT count(*) FROM orders WHERE user_id = $1",
                                          user_id)
        return [], int(total)

    async def expired_pending(self, limit: int) -> list[Order]:
        return await self._locked(
            "status = 'pending' AND expires_at <= now() ORDER BY expires_at", limit
        )

    async def unsettled(self, limit: int, *, force: bool = False) -> list[Order]:
        rows = await self._conn.fetch(
            _WITH_LINES + f" WHERE o.status IN {_UNSETTLED} AND ($2 OR o.payment_lease_until "
            "IS NULL OR o.payment_lease_until <= clock_timestamp()) "
            "GROUP BY o.id ORDER BY o.payment_lease_until NULLS FIRST LIMIT $1",
            limit, force,
        )
        return [_order(r) for r in rows]

    async def follow_up_due(self, limit: int, retry_in_s: float, *, force: bool = False
                            ) -> list[Order]:
        ids = await self._conn.fetch(_FOLLOW_UP_DUE, limit, retry_in_s, force)
        return await self._with_lines([r["id"] for r in ids])

    async def any_follow_up_due(self) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE payment_followup_at <= clock_timestamp())"
        ))

    async def follow_up(self, order_id: UUID, after_s: float | None) -> None:
        await self._conn.execute(
            "UPDATE orders SET payment_followup_at = clock_timestamp() "
            "+ make_interval(secs => $2::float8) WHERE id = $1", order_id, after_s,
        )

    async def _locked(self, where: str, limit: int, *params: object) -> list[Order]:
        """Orders matching ``where`` (its parameters from $2 on), locked, skipping rows that
        another transaction holds."""
        ids = await self._conn.fetch(
            f"SELECT id FROM orders WHERE {where} LIMIT $1 FOR UPDATE SKIP LOCKED", limit, *params
        )
        return await self._with_lines([r["id"] for r in ids])

    async def _with_lines(self, ids: list[UUID]) -> list[Order]:
        if not ids:
            return []
        rows = await self._conn.fetch(_WITH_LINES + " WHERE o.id = ANY($1::uuid[]) GROUP BY o.id",
                                      ids)
        return [_order(r) for r in rows]


class PostgresPayments:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add_attempts(
        self, attempts: Sequence[PaymentAttempt], idempotency_key: str, currency: str
    ) -> None:
        if not attempts:
            return
        # Numbered after the order's earlier attempts (a retried checkout, the reconciler).
        await self._conn.execute(
            """
            INSERT INTO payments (order_id, idempotency_key, attempt, status, amount, currency,
                                  gateway_ref, error)
            SELECT $1, $2, base.n + a.attempt, a.status, a.amount, $3, a.ref, a.error
            FROM unnest($4::int[], $5::text[], $6::numeric[], $7::text[], $8::text[])
                 AS a(attempt, status, amount, ref, error),
                 (SELECT coalesce(max(attempt), 0) AS n FROM payments WHERE order_id = $1) base
            """,
            attempts[0].order_id, idempotency_key, currency,
            [a.attempt for a in attempts], [a.status.value for a in attempts],
            [a.amount for a in attempts], [a.gateway_ref for a in attempts],
            [a.error for a in attempts],
        )

    async def captured_amount(self, order_id: UUID) -> Decimal | None:
        return await self._amount(order_id, "captured")

    async def refunded_amount(self, order_id: UUID) -> Decimal | None:
        return await self._amount(order_id, "refunded")

    async def _amount(self, order_id: UUID, status: str) -> Decimal | None:
        value = await self._conn.fetchval(
            "SELECT amount FROM payments WHERE order_id = $1 AND status = $2", order_id, status
        )
        return Decimal(value) if value is not None else None


def _order(row: asyncpg.Record) -> Order:
    lines = tuple(
        OrderLine(pid, qty, price)
        for pid, qty, price in zip(row["product_ids"], row["quantities"], row["unit_prices"],
                                   strict=True)
    )
    return Order(
        id=row["id"], user_id=row["user_id"], status=OrderStatus(row["status"]), lines=lines,
        total=row["total"], currency=row["currency"].strip(), created_at=row["created_at"],
        expires_at=row["expires_at"], cart_revision=row["cart_revision"],
    )
