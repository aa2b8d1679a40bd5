"""The two books of money (the gateway's ledger and our database) compared order by order,
refunds counted: ``gateway ledger equals database`` and ``no capture on a cancelled order
without its refund`` (sim/invariants)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from ecomctl.adapters.payment_ledger import GatewayLedger
from ecomctl.sim.invariants import (
    OrderBooks,
    ledger_matches,
    refunds_cover_captures,
)

PAID, CANCELLED = uuid4(), uuid4()
SINCE = datetime(2026, 12, 1, tzinfo=UTC)


def _capture(order: UUID, amount: str = "12.50", charge: str | None = None) -> dict[str, str]:
    return {"id": charge or f"ch_{order.hex[:6]}", "order_id": str(order), "amount": amount,
            "currency": "USD"}


def _refund(order: UUID, amount: str = "12.50") -> dict[str, str]:
    return {"id": f"re_{order.hex[:6]}", "charge": f"ch_{order.hex[:6]}",
            "order_id": str(order), "amount": amount, "currency": "USD"}


def _books(cancelled_refunded: str = "12.50") -> dict[UUID, OrderBooks]:
    return {PAID: OrderBooks("delivered", Decimal("12.50")),
            CANCELLED: OrderBooks("cancelled", Decimal("12.50"), Decimal(cancelled_refunded))}


def test_a_capture_refunded_on_a_cancelled_order_balances_both_books() -> None:
    ledger = GatewayLedger(SINCE, [_capture(PAID), _capture(CANCELLED)], [_refund(CANCELLED)])
    books = _books()
    assert ledger.net_by_order() == {PAID: Decimal("12.50"), CANCELLED: Decimal("0.00")}

    same = ledger_matches(ledger, books)
    covered = refunds_cover_captures(0, ledger, books)

    assert same.ok, same.detail
    assert "2 captures, 25.00 captured, 1 refunds, 12.50 refunded" in same.detail
    assert covered.ok and covered.detail == "ok: 1 captures given back"


def test_a_capture_standing_on_a_cancelled_order_breaks_both() -> None:
    ledger = GatewayLedger(SINCE, [_capture(PAID), _capture(CANCELLED)])

    same = ledger_matches(ledger, _books(cancelled_refunded="0"))
    covered = refunds_cover_captures(0, ledger, _books(cancelled_refunded="0"))

    assert not same.ok and "gateway kept 12.50" in same.detail
    assert not covered.ok and f"e.g. {CANCELLED}" in covered.detail


def test_refunds_must_agree_between_the_books() -> None:
    # The gateway refunded; our database never recorded it.
    ledger = GatewayLedger(SINCE, [_capture(PAID), _capture(CANCELLED)], [_refund(CANCELLED)])
    unrecorded = ledger_matches(ledger, _books(cancelled_refunded="0"))
    assert not unrecorded.ok and "refunds differ between the books" in unrecorded.detail
    # A refund of a paid order's capture leaves it paid for nothing.
    refunded_paid = GatewayLedger(SINCE, [_capture(PAID)], [_refund(PAID)])
    broken = ledger_matches(refunded_paid, {PAID: OrderBooks("paid", Decimal("12.50"))})
    assert not broken.ok and "gateway kept 0" in broken.detail


def test_twice_captured_partially_refunded_or_unknown_orders_are_named() -> None:
    twice = GatewayLedger(SINCE, [_capture(PAID), _capture(PAID, charge="ch_again")])
    assert "captured more than once" in ledger_matches(twice, _books()).detail
    partial = GatewayLedger(SINCE, [_capture(CANCELLED)], [_refund(CANCELLED, "2.50")])
    assert not refunds_cover_captures(0, partial, _books("2.50")).ok
    stranger = uuid4()
    unknown = GatewayLedger(SINCE, [_capture(stranger)])
    assert "not ours" in ledger_matches(unknown, _books()).detail
    assert not refunds_cover_captures(0, unknown, _books()).ok


def test_without_a_ledger_our_own_books_still_answer() -> None:
    assert refunds_cover_captures(0).ok
    unrefunded = refunds_cover_captures(2)
    assert not unrefunded.ok and unrefunded.detail.startswith("2 cancelled orders")


def test_an_older_ledger_document_without_refunds_still_reads() -> None:
    body = {"since": SINCE.isoformat(), "captures": [_capture(PAID)]}
    ledger = GatewayLedger.from_json(body)
    assert ledger.refunds == [] and ledger.to_json()["refunds"] == []
