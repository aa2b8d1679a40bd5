"""Charge requests: the validated body of ``POST /v1/charges``, its parser and the amount
parser refunds share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ecomctl.domain.money import MAX_AMOUNT, money
from ecomctl.errors import ValidationFailed

MAX_ORDER_ID_LENGTH = 128

# Plain digits with at most two decimals: no exponent, sign, NaN or thousands separator.
_AMOUNT_RE = re.compile(r"(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")


@dataclass(frozen=True)
class ChargeRequest:
    """A validated charge request; equal requests are what an idempotent replay must match."""

    order_id: str
    amount: Decimal
    currency: str


def parse_charge_request(payload: object) -> ChargeRequest:
    """Validate a decoded JSON body; raise ValidationFailed saying which field is wrong."""
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object")
    expected = {"order_id", "amount", "currency"}
    missing = sorted(expected - payload.keys())
    if missing:
        raise ValidationFailed(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(payload.keys() - expected)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}")
    order_id, amount, currency = payload["order_id"], payload["amount"], payload["currency"]
    if not isinstance(order_id, str) or not 0 < len(order_id) <= MAX_ORDER_ID_LENGTH:
        raise ValidationFailed(f"order_id must be a string of 1 to {MAX_ORDER_ID_LENGTH} chars")
    value = parse_amount(amount)
    if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency):
        raise ValidationFailed("currency must be a 3-letter ISO 4217 code")
    return ChargeRequest(order_id=order_id, amount=value, currency=currency.upper())


def parse_amount(amount: object) -> Decimal:
    """A positive amount of money from its JSON form, a decimal string."""
    if not isinstance(amount, str):
        # A JSON number would be read as a float: money travels as a decimal string.
        raise ValidationFailed('amount must be a decimal string such as "12.34"')
    if not _AMOUNT_RE.fullmatch(amount):
        raise ValidationFailed(f'amount must look like "12.34" (at most 2 decimals): {amount!r}')
    value = Decimal(amount)
    if value <= 0 or value > MAX_AMOUNT:
        raise ValidationFailed(f"amount must be greater than 0 and at most {MAX_AMOUNT}")
    return money(value)
