"""Business invariants, checked against the databases after the consumers have drained.

A broken invariant means the shop lost money, stock or a shipment: the simulation reports it
loudly and exits non-zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ecomctl.adapters.postgres.database import Database
from ecomctl.errors import BackendUnavailable

LEDGER_INVARIANT = "gateway ledger equals database"


@dataclass(frozen=True)
class GatewayLedger:
    """The payment gateway's books: every capture since ``since`` (``GET /v1/ledger``)."""

    since: datetime
    captures: Sequence[Mapping[str, Any]]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> GatewayLedger:
        return cls(datetime.fromisoformat(body["since"]), list(body["captures"]))

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "captures": list(self.captures)}


async def fetch_ledger(gateway_url: str) -> GatewayLedger:
    """``GET /v1/ledger`` of a running payment gateway (simulator)."""
    import httpx

    try:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
            response = await client.get("/v1/ledger")
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise BackendUnavailable("payment-gateway", f"cannot read its ledger: {exc}") from exc
    return GatewayLedger.from_json(response.json())


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


# Orders the gateway captured for, and the orders paid since the ledger opened.
_LEDGER_ORDERS = f"""
SELECT o.id, o.status IN {_PAID} AS paid, o.total
FROM orders o
WHERE o.id = ANY($1::uuid[])
   OR (o.status IN {_PAID} AND EXISTS (
         SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status = 'captured'
                                    AND p.created_at >= $2))
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
        unsettled = int(await conn.fetchval(_UNSETTLED))
        orders = None
        if ledger is not None:
            ids = [UUID(str(c["order_id"])) for c in ledger.captures]
            orders = await conn.fetch(_LEDGER_ORDERS, ids, ledger.since)
    captured, paid = totals["captured"], totals["paid_total"]
    results.append(InvariantResult(
        "captured equals paid totals", captured == paid,
        f"captured {captured} vs paid orders {paid}",
    ))
    results.append(InvariantResult(
        "every payment settled", unsettled == 0,
        f"{unsettled} orders still payment_pending/payment_unknown" if unsettled else "ok",
    ))
    if ledger is not None and orders is not None:
        results.append(ledger_matches(ledger, {
            r["id"]: (bool(r["paid"]), Decimal(r["total"])) for r in orders
        }))
    return results


def ledger_matches(
    ledger: GatewayLedger, orders: Mapping[UUID, tuple[bool, Decimal]]
) -> InvariantResult:
    """Every capture at the gateway belongs to exactly one Paid order, for its total to the
    cent, and no order paid since the ledger opened lacks a capture. ``orders``: id ->
    (paid, total) for the captured orders and the orders paid meanwhile."""
    per_order = Counter(UUID(str(c["order_id"])) for c in ledger.captures)
    problems: list[str] = []
    twice = [o for o, n in per_order.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} orders captured more than once")
    unpaid = [o for o in per_order if not orders.get(o, (False, None))[0]]
    if unpaid:
        problems.append(f"{len(unpaid)} captures for orders that are not paid "
                        f"(e.g. {unpaid[0]})")
    wrong = [c for c in ledger.captures
             if (o := orders.get(UUID(str(c["order_id"])))) and o[0]
             and Decimal(str(c["amount"])) != o[1]]
    if wrong:
        problems.append(f"{len(wrong)} captures differ from their order's total")
    uncaptured = [o for o, (paid, _) in orders.items() if paid and o not in per_order]
    if uncaptured:
        problems.append(f"{len(uncaptured)} paid orders without a capture at the gateway")
    detail = "; ".join(problems) or (
        f"ok: {len(ledger.captures)} captures, "
        f"{sum(Decimal(str(c['amount'])) for c in ledger.captures)} captured")
    return InvariantResult(LEDGER_INVARIANT, not problems, detail)
