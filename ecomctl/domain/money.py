"""Money is ``Decimal`` rounded to cents, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from ecomctl.errors import ValidationFailed

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # NUMERIC(12,2)


def money(value: Decimal | str | int) -> Decimal:
    """A validated amount in cents. Floats are refused: they cannot hold 0.10 exactly."""
    if isinstance(value, (float, bool)):
        raise ValidationFailed(f"money must be a Decimal or a string, not {type(value).__name__}")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValidationFailed(f"not a finite amount: {value!r}")
    if amount < 0 or amount > MAX_AMOUNT:
        raise ValidationFailed(f"amount out of range: {value!r}")
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
