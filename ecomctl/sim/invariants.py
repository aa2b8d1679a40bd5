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
from ecomctl.adapters.postgres.books import (
    MONEY_CONSERVED,
    NO_OVERSOLD_STOCK,
    ONE_SHIPMENT_PER_PAID_ORDER,
    PAID_STATUSES,
    OrderBooks,
    read_books,
)
from ecomctl.adapters.postgres.database import Database

__all__ = ["PAID_STATUSES", "InvariantResult", "OrderBooks", "check_invariants",
           "ledger_matches", "refunds_cover_captures"]

LEDGER_INVARIANT = "gateway ledger equals database"
REFUND_INVARIANT = "no capture on a cancelled order without its refund"


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str


# name -> what a non-zero count of the books' check (adapters/postgres/books) means
_MEANINGS = {
    NO_OVERSOLD_STOCK: "products with negative stock, more reserved than on hand, or "
                       "reserved units not matching open reservations",
    MONEY_CONSERVED: "orders whose payments differ from their total (a paid order needs "
                     "exactly one capture of the exact total and no refund, any other order "
                     "none or one refunded)",
    ONE_SHIPMENT_PER_PAID_ORDER: "paid orders without exactly one shipment, or unpaid "
                                 "orders with one",
}


async def check_invariants(
    db: Database, ledger: GatewayLedger | None = None
) -> list[InvariantResult]:
    """Every invariant; with the gateway's ``ledger``, also that its books equal ours."""
    books = await read_books(db, list(ledger.net_by_order()) if ledger else None,
                             ledger.since if ledger else None)
    results = []
    for name, meaning in _MEANINGS.items():
        bad = books.violations[name]
        results.append(InvariantResult(name, bad == 0, f"{bad} {meaning}" if bad else "ok"))
    captured, paid, unsettled = books.captured, books.paid_total, books.unsettled
    results.append(InvariantResult(
        "captured equals paid totals", captured == paid,
        f"captured less refunded {captured} vs paid orders {paid}",
    ))
    results.append(InvariantResult(
        "every payment settled", unsettled == 0,
        f"{unsettled} orders still payment_pending/payment_unknown" if unsettled else "ok",
    ))
    if ledger is not None and books.ledger_orders is not None:
        results.append(ledger_matches(ledger, books.ledger_orders))
    results.append(refunds_cover_captures(books.unrefunded, ledger, books.ledger_orders))
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
