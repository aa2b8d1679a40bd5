"""The shop's books as the business invariants read them (``ecomctl.sim.invariants``): rows
that break a rule, counted; totals of money; the orders a payment gateway's ledger names."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from ecomctl.adapters.postgres.database import Database


@dataclass(frozen=True)
class OrderBooks:
    """One order as our database records its money."""

    status: str
    total: Decimal
    refunded: Decimal = Decimal("0")

    @property
    def paid(self) -> bool:
        return self.status in PAID_STATUSES


PAID_STATUSES = ("paid", "shipped", "delivered")
_PAID = "('paid', 'shipped', 'delivered')"

# The invariants these count the violations of (``ecomctl.sim.invariants`` words them).
NO_OVERSOLD_STOCK = "no oversold stock"
MONEY_CONSERVED = "money conserved"
ONE_SHIPMENT_PER_PAID_ORDER = "one shipment per paid order"

_VIOLATION_COUNTS = {
    NO_OVERSOLD_STOCK:
        """SELECT count(*) FROM inventory i
           LEFT JOIN (SELECT product_id, sum(quantity) AS held FROM inventory_reservations
                      WHERE status = 'reserved' GROUP BY product_id) r USING (product_id)
           WHERE i.on_hand < 0 OR i.reserved < 0 OR i.reserved > i.on_hand
              OR i.reserved <> coalesce(r.held, 0)""",
    MONEY_CONSERVED:
        f"""SELECT count(*) FROM orders o
            LEFT JOIN (SELECT order_id,
                              sum(amount) FILTER (WHERE status = 'captured') AS captured,
                              count(*) FILTER (WHERE status = 'captured') AS captures,
                              coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0)
                                  AS refunded
                       FROM payments WHERE status IN ('captured', 'refunded')
                       GROUP BY order_id) p
              ON p.order_id = o.id
            WHERE (o.status IN {_PAID} AND (p.captures IS DISTINCT FROM 1
                                            OR p.captured <> o.total OR p.refunded <> 0))
               OR (o.status NOT IN {_PAID} AND p.order_id IS NOT NULL
                   AND p.captured IS DISTINCT FROM p.refunded)""",
    ONE_SHIPMENT_PER_PAID_ORDER:
        f"""SELECT count(*) FROM orders o
            LEFT JOIN (SELECT order_id, count(*) AS n FROM shipments GROUP BY order_id) s
              ON s.order_id = o.id
            WHERE (o.status IN {_PAID} AND s.n IS DISTINCT FROM 1)
               OR (o.status NOT IN {_PAID} AND s.n IS NOT NULL)""",
}
"""Each invariant's check: how many rows break it (0 when it holds)."""


# Captures we recorded on cancelled orders (a charge that landed late) not refunded in full.
_UNREFUNDED = """
SELECT count(*) FROM orders o
JOIN payments c ON c.order_id = o.id AND c.status = 'captured'
LEFT JOIN payments r ON r.order_id = o.id AND r.status = 'refunded'
WHERE o.status = 'cancelled' AND r.amount IS DISTINCT FROM c.amount
"""

_TOTALS = f"""
SELECT (SELECT coalesce(sum(amount) FILTER (WHERE status = 'captured'), 0)
               - coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0)
        FROM payments) AS captured,
       (SELECT coalesce(sum(total), 0) FROM orders WHERE status IN {_PAID}) AS paid_total
"""


# Orders the gateway holds money or refunds for, and the orders paid or refunded since the
# ledger opened, with what we recorded as refunded.
_LEDGER_ORDERS = """
SELECT o.id, o.status, o.total,
       coalesce((SELECT sum(amount) FROM payments r
                 WHERE r.order_id = o.id AND r.status = 'refunded'), 0) AS refunded
FROM orders o
WHERE o.id = ANY($1::uuid[])
   OR EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.created_at >= $2
                AND (p.status = 'refunded'
                     OR (p.status = 'captured' AND o.status IN ('paid', 'shipped',
                                                                'delivered'))))
"""

_UNSETTLED = """
SELECT count(*) FROM orders WHERE status IN ('payment_pending', 'payment_unknown')
"""


@dataclass(frozen=True)
class Books:
    violations: dict[str, int]
    """Invariant name -> rows that break it."""
    captured: Decimal
    """Captured less refunded, over every payment."""
    paid_total: Decimal
    """The totals of every paid order."""
    unrefunded: int
    """Cancelled orders with a capture and no full refund."""
    unsettled: int
    """Orders still payment_pending or payment_unknown."""
    ledger_orders: dict[UUID, OrderBooks] | None
    """With a ledger: the orders it names and those paid or refunded since it opened."""


async def read_books(db: Database, ledger_order_ids: list[UUID] | None,
                     ledger_since: dt.datetime | None) -> Books:
    """Everything the invariants check, read on one connection."""
    async with db.connection() as conn:
        violations = {name: int(await conn.fetchval(sql))
                      for name, sql in _VIOLATION_COUNTS.items()}
        totals = await conn.fetchrow(_TOTALS)
        unrefunded = int(await conn.fetchval(_UNREFUNDED))
        unsettled = int(await conn.fetchval(_UNSETTLED))
        orders = None
        if ledger_order_ids is not None:
            rows = await conn.fetch(_LEDGER_ORDERS, ledger_order_ids, ledger_since)
            orders = {r["id"]: OrderBooks(r["status"], Decimal(r["total"]),
                                          Decimal(r["refunded"])) for r in rows}
    return Books(violations, Decimal(totals["captured"]), Decimal(totals["paid_total"]),
                 unrefunded, unsettled, orders)
