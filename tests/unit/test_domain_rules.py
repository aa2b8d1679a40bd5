from __future__ import annotations

import json
from decimal import Decimal
from uuid import uuid4

import pytest

from ecomctl.domain.events import ORDER_EVENTS, new_event
from ecomctl.domain.models import (
    ALLOWED_TRANSITIONS,
    MAX_LINE_QUANTITY,
    OrderLine,
    OrderStatus,
    check_quantity,
    order_total,
    transition,
)
from ecomctl.domain.money import money
from ecomctl.errors import InvalidTransition, ValidationFailed

LEGAL = [
    (OrderStatus.PENDING, OrderStatus.PAYMENT_PENDING),
    (OrderStatus.PENDING, OrderStatus.CANCELLED),
    (OrderStatus.PAYMENT_PENDING, OrderStatus.PAID),
    (OrderStatus.PAYMENT_PENDING, OrderStatus.CANCELLED),
    (OrderStatus.PAYMENT_PENDING, OrderStatus.PAYMENT_UNKNOWN),
    (OrderStatus.PAYMENT_UNKNOWN, OrderStatus.PAID),
    (OrderStatus.PAYMENT_UNKNOWN, OrderStatus.CANCELLED),
    (OrderStatus.PAYMENT_UNKNOWN, OrderStatus.PAYMENT_PENDING),
    (OrderStatus.PAID, OrderStatus.SHIPPED),
    (OrderStatus.PAID, OrderStatus.CANCELLED),
    (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
]


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_transitions(current: OrderStatus, target: OrderStatus) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in OrderStatus for t in OrderStatus if (c, t) not in LEGAL],
)
def test_every_other_transition_is_rejected(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidTransition) as info:
        transition(current, target)
    assert (info.value.current, info.value.target) == (current.value, target.value)


def test_terminal_states_have_no_way_out() -> None:
    assert not ALLOWED_TRANSITIONS[OrderStatus.DELIVERED]
    assert not ALLOWED_TRANSITIONS[OrderStatus.CANCELLED]


def test_order_total_is_exact_in_cents() -> None:
    lines = [
        OrderLine(1, 3, Decimal("0.10")),
        OrderLine(2, 1, Decimal("19.99")),
        OrderLine(3, 7, Decimal("1.01")),
    ]
    assert order_total(lines) == Decimal("27.36")
    assert sum(0.10 for _ in range(3)) != 0.30  # why floats are not money


@pytest.mark.parametrize("value", ["12.345", Decimal("12.345")])
def test_money_rounds_half_even_to_cents(value: str | Decimal) -> None:
    assert money(value) == Decimal("12.34")


@pytest.mark.parametrize("value", [1.5, True, "abc", "NaN", "Infinity", "-1", "1e12"])
def test_money_refuses_floats_and_nonsense(value: object) -> None:
    with pytest.raises(ValidationFailed):
        money(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1, 2.0, "3", True])
def test_quantities_outside_the_limits_are_rejected(quantity: object) -> None:
    with pytest.raises(ValidationFailed):
        check_quantity(quantity)  # type: ignore[arg-type]


def test_quantity_bounds_are_inclusive() -> None:
    assert check_quantity(1) == 1
    assert check_quantity(MAX_LINE_QUANTITY) == MAX_LINE_QUANTITY


def test_events_carry_money_as_strings() -> None:
    order_id = uuid4()
    event = new_event(
        "order.placed", ORDER_EVENTS, "order", order_id,
        total=Decimal("10.50"), lines=[{"unit_price": Decimal("3.50")}], order_id=order_id,
    )
    assert event.aggregate_id == str(order_id)
    encoded = json.loads(json.dumps(event.payload))
    assert encoded == {
        "total": "10.50", "lines": [{"unit_price": "3.50"}], "order_id": str(order_id),
    }
