"""Refunds: ``POST /v1/refunds`` gives (part of) a captured charge back, as real gateways do.

A refund is idempotent like a charge: the first request with an Idempotency-Key is decided
and kept, a retry with the same key and body gets the same refund replayed, the same key with
another body is refused (409). A charge can never be refunded beyond what it captured.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ecomctl.domain.money import money
from ecomctl.errors import ValidationFailed
from ecomctl.simulators.payment_gateway.requests import parse_amount

MAX_CHARGE_ID_LENGTH = 64


@dataclass(frozen=True)
class RefundRequest:
    """A validated refund request; ``amount`` None gives back all that is left."""

    charge_id: str
    amount: Decimal | None


def parse_refund_request(payload: object) -> RefundRequest:
    """Validate a decoded JSON body; raise ValidationFailed saying which field is wrong."""
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object")
    unknown = sorted(payload.keys() - {"charge", "amount"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}")
    charge = payload.get("charge")
    if not isinstance(charge, str) or not 0 < len(charge) <= MAX_CHARGE_ID_LENGTH:
        raise ValidationFailed(f"charge must be a charge id of 1 to {MAX_CHARGE_ID_LENGTH} "
                               "characters")
    amount = payload.get("amount")
    return RefundRequest(charge, None if amount is None else parse_amount(amount))


@dataclass(frozen=True)
class RefundReply:
    status_code: int
    body: dict[str, str]
    replayed: bool = False


class RefundBook:
    """Every refund decided, by key and in order; ``capture_of`` finds a captured charge
    (its ledger entry: id, order_id, amount, currency) by charge id."""

    def __init__(self, capture_of: Callable[[str], Mapping[str, str] | None]) -> None:
        self._capture_of = capture_of
        self._by_key: dict[str, tuple[RefundRequest, RefundReply]] = {}
        self._refunded: dict[str, Decimal] = {}  # charge id -> amount given back
        self._ledger: list[dict[str, str]] = []

    def decide(self, key: str, request: RefundRequest) -> RefundReply:
        """Replay, conflict, refusal or a new refund, in one synchronous step (atomic on the
        event loop, like a charge's decision)."""
        stored = self._by_key.get(key)
        if stored is not None:
            first, reply = stored
            if first != request:
                return RefundReply(409, _error("idempotency_key_reused", "this "
                                   "Idempotency-Key was used with a different request body"))
            return RefundReply(reply.status_code, reply.body, replayed=True)
        capture = self._capture_of(request.charge_id)
        if capture is None:
            return RefundReply(404, _error("not_found", "no captured charge with this id"))
        left = Decimal(capture["amount"]) - self.refunded(request.charge_id)
        amount = left if request.amount is None else request.amount
        if not Decimal("0") < amount <= left:
            return RefundReply(422, _error("amount_too_large", f"at most {left} of this "
                                                               "charge is left to refund"))
        refund = {
            "id": f"re_{secrets.token_hex(12)}", "status": "succeeded",
            "charge": request.charge_id, "order_id": capture["order_id"],
            "amount": str(money(amount)), "currency": capture["currency"],
            "idempotency_key": key,
        }
        self._refunded[request.charge_id] = self.refunded(request.charge_id) + amount
        self._ledger.append(refund)
        reply = RefundReply(201, refund)
        self._by_key[key] = (request, reply)
        return reply

    def refunded(self, charge_id: str) -> Decimal:
        return self._refunded.get(charge_id, Decimal("0.00"))

    def ledger(self) -> list[dict[str, str]]:
        """Every refund, in order (never forgotten: the books)."""
        return list(self._ledger)

    def stats(self) -> dict[str, Any]:
        return {"refunds": len(self._ledger),
                "refunded_amount": str(sum((Decimal(r["amount"]) for r in self._ledger),
                                           Decimal("0.00")))}


def _error(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}
