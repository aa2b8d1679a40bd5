"""Business invariants, checked against the databases after the consumers have drained.

A broken invariant means the shop lost money, stock or a shipment: the simulation reports it
loudly and exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecomctl.adapters.postgres.database import Database


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str


_PAID = "('paid', 'shipped', 'delivered')"

_CHECKS: list[tuple[str, str, str]] = [
    (
        "no oversold stock",
        """SELECT count(*) FROM inventory i
           LEFT JOIN (SELECT product_id, sum(quantity) AS held FROM inventory_reservations
                      WHERE status = 'reserved' GROUP BY product_id) r USING (product_id)
           WHERE i.on_hand < 0 OR i.reserved < 0 OR i.reserved > i.on_hand
              OR i.reserved <> coalesce(r.held, 0)""",
        "products with negative stock, more reserved than on hand, or reserved units not "
        "matching open reservations",
    ),
    (
        "money conserved",
        f"""SELECT count(*) FROM orders o
            LEFT JOIN (SELECT order_id, sum(amount) AS captured, count(*) AS captures
                       FROM payments WHERE status = 'captured' GROUP BY order_id) p
              ON p.order_id = o.id
            WHERE (o.status IN {_PAID} AND (p.captures IS DISTINCT FROM 1
                                            OR p.captured <> o.total))
               OR (o.status NOT IN {_PAID} AND p.captures IS NOT NULL)""",
        "orders whose captured payments differ from their total (paid orders need exactly one "
        "capture of the exact total, others none)",
    ),
    (
        "one shipment per paid order",
        f"""SELECT count(*) FROM orders o
            LEFT JOIN (SELECT order_id, count(*) AS n FROM shipments GROUP BY order_id) s
              ON s.order_id = o.id
            WHERE (o.status IN {_PAID} AND s.n IS DISTINCT FROM 1)
               OR (o.status NOT IN {_PAID} AND s.n IS NOT NULL)""",
        "paid orders without exactly one shipment, or unpaid orders with one",
    ),
]

_TOTALS = f"""
SELECT (SELECT coalesce(sum(amount), 0) FROM payments WHERE status = 'captured') AS captured,
       (SELECT coalesce(sum(total), 0) FROM orders WHERE status IN {_PAID}) AS paid_total
"""


async def check_invariants(db: Database) -> list[InvariantResult]:
    results = []
    async with db.connection() as conn:
        for name, sql, meaning in _CHECKS:
            bad = int(await conn.fetchval(sql))
            results.append(InvariantResult(name, bad == 0, f"{bad} {meaning}" if bad else "ok"))
        totals = await conn.fetchrow(_TOTALS)
    captured, paid = totals["captured"], totals["paid_total"]
    results.append(InvariantResult(
        "captured equals paid totals", captured == paid,
        f"captured {captured} vs paid orders {paid}",
    ))
    return results
