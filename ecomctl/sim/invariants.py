"""Business invariants, checked against the databases after the consumers have drained.

A broken invariant means the shop lost money, stock or a shipment: the simulation reports it
loudly and exits non-zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from ecomctl.adapters.payment_ledger import GatewayLedger
from ecomctl.adapters.postgres.database import Database

LEDGER_INVARIANT = "gateway ledger equals database"
REFUND_INVARIANT = "no capture on a cancelled order without its refund"


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str


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
        "orders whose payments differ from their total (a paid order needs exactly one "
        "capture of the exact total and no refund, any other order none or one refunded)",
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


async def check_invariants(
    db: Database, ledger: GatewayLedger | None = None
) -> list[InvariantResult]:
    """Every invariant; with the gateway's ``ledger``, also that its books equal ours."""
    results = []
    async with db.connection() as conn:
        for name, sql, meaning in _CHECKS:
            bad = int(await conn.fetchval(sql))
            results.append(InvariantResult(name, bad == 0, f"{bad} {meaning}" if bad else "ok"))
        totals = await conn.fetchrow(_TOTALS)
        unrefunded = int(await conn.fetchval(_UNREFUNDED))
        unsettled = int(await conn.fetchval(_UNSETTLED))
        orders = None
        if ledger is not None:
            ids = list(ledger.net_by_order())
            orders = await conn.fetch(_LEDGER_ORDERS, ids, ledger.since)
    captured, paid = totals["captured"], totals["paid_total"]
    results.append(InvariantResult(
        "captured equals paid totals", captured == paid,
        f"captured less refunded {captured} vs paid orders {paid}",
    ))
    results.append(InvariantResult(
        "every payment settled", unsettled == 0,
        f"{unsettled} orders still payment_pending/payment_unknown" if unsettled else "ok",
    ))
    books = None
    if ledger is not None and orders is not None:
        books = {r["id"]: OrderBooks(r["status"], Decimal(r["total"]), Decimal(r["refunded"]))
                 for r in orders}
        results.append(ledger_matches(ledger, books))
    results.append(refunds_cover_captures(unrefunded, ledger, books))
    return results


def ledger_matches(ledger: GatewayLedger, orders: Mapping[UUID, OrderBooks]
                   ) -> InvariantResult:
    """The gateway's books and ours agree, order by order: what the gateway kept (captures
    less refunds) is the total of a Paid order and nothing of any other, every order is
    captured at most once, and every refund is in both books for the same amount.
    ``orders``: the orders the gateway holds money or refunds for, and those paid or
    refunded since the ledger opened."""
    per_order = Counter(UUID(str(c["order_id"])) for c in ledger.captures)
    refunded: dict[UUID, Decimal] = {}
    for entry in ledger.refunds:
        order = UUID(str(entry["order_id"]))
        refunded[order] = refunded.get(order, Decimal("0")) + Decimal(str(entry["amount"]))
    net = ledger.net_by_order()
    problems: list[str] = []
    twice = [o for o, n in per_order.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} orders captured more than once")
    unknown = [o for o in net if o not in orders]
    if unknown:
        problems.append(f"{len(unknown)} orders the gateway took money for are not ours "
                        f"(e.g. {unknown[0]})")
    wrong = [o for o, books in orders.items()
             if net.get(o, Decimal("0")) != (books.total if books.paid else Decimal("0"))]
    if wrong:
        example = orders[wrong[0]]
        problems.append(f"{len(wrong)} orders where the gateway kept another amount than "
                        f"ours (e.g. {wrong[0]}: {example.status}, total {example.total}, "
                        f"the gateway kept {net.get(wrong[0], Decimal('0'))})")
    unrecorded = [o for o, books in orders.items()
                  if refunded.get(o, Decimal("0")) != books.refunded]
    if unrecorded:
        problems.append(f"{len(unrecorded)} orders whose refunds differ between the books")
    detail = "; ".join(problems) or (
        f"ok: {len(ledger.captures)} captures, "
        f"{sum(Decimal(str(c['amount'])) for c in ledger.captures)} captured, "
        f"{len(ledger.refunds)} refunds, "
        f"{sum(Decimal(str(r['amount'])) for r in ledger.refunds)} refunded")
    return InvariantResult(LEDGER_INVARIANT, not problems, detail)


def refunds_cover_captures(
    unrefunded: int, ledger: GatewayLedger | None = None,
    orders: Mapping[UUID, OrderBooks] | None = None,
) -> InvariantResult:
    """No capture stands for an order that is not paid (a charge that landed after its
    order had been cancelled is refunded in full): in our books (``unrefunded`` cancelled
    orders with a capture and no full refund) and, with its ledger, at the gateway."""
    problems = []
    if unrefunded:
        problems.append(f"{unrefunded} cancelled orders whose recorded capture is not "
                        "refunded in full")
    if ledger is not None and orders is not None:
        standing = [o for o, kept in ledger.net_by_order().items()
                    if kept != 0 and not (o in orders and orders[o].paid)]
        if standing:
            problems.append(f"{len(standing)} captures kept by the gateway for orders that "
                            f"are not paid (e.g. {standing[0]})")
    if problems:
        return InvariantResult(REFUND_INVARIANT, False, "; ".join(problems))
    given_back = len(ledger.refunds) if ledger is not None else None
    return InvariantResult(REFUND_INVARIANT, True,
                           f"ok: {given_back} captures given back" if given_back
                           else "ok: no capture on an unpaid order")
