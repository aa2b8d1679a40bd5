"""What a shopper can do, one step each, over the session: the pieces journeys are made of."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from ecomctl.backoff import jittered
from ecomctl.journeys import routes
from ecomctl.journeys.protocol import Request, Step, StepFailed, Wait, check
from ecomctl.journeys.session import Session

CHECKOUT_TRIES = 5
# A checkout is retried (same Idempotency-Key) when its answer was lost or its key or claim
# is busy, after the Retry-After the server asked for (else half a second more each time): a
# first attempt may still be waiting on the gateway, or hold the payment's claim. A push-back
# (429, 503 with Retry-After) is the session's to wait out, as for every request.
RETRYABLE_CHECKOUT = frozenset({"http_unreachable", "idempotency_conflict",
                                "checkout_in_progress"})
# The shop's correct answers to a checkout: declined (402), sold out or busy (409).
_CHECKOUT_ANSWERS = frozenset({402, 409})


@dataclass(frozen=True)
class CheckoutOutcome:
    order_id: UUID | None
    outcome: str  # paid, payment_declined, payment_unknown
    total: Decimal


def view_category(s: Session, slug: str) -> Step[list[int]]:
    body = yield from s.call(Request(routes.CATEGORY, query={"category": slug, "page_size": 20}))
    return [int(item["id"]) for item in body["items"]]


def view_product(s: Session, product_id: int) -> Step[None]:
    yield from s.call(Request(routes.PRODUCT, {"product_id": product_id}))


def search(s: Session, text: str) -> Step[list[int]]:
    body = yield from s.call(Request(routes.SEARCH, query={"q": text, "page_size": 10}))
    return [int(item["product_id"]) for item in body["items"]]


def recommendations(s: Session, product_id: int) -> Step[list[int]]:
    body = yield from s.call(Request(routes.RECOMMENDATIONS,
                                     query={"product_id": product_id, "limit": 5}))
    return [int(i) for i in body["product_ids"]]


def add_to_cart(s: Session, product_id: int, quantity: int) -> Step[None]:
    yield from s.call(Request(routes.CART_ADD,
                              json={"product_id": product_id, "quantity": quantity}))


def view_cart(s: Session) -> Step[list[int]]:
    """The products in the cart, one per line."""
    body = yield from s.call(Request(routes.CART))
    return [int(line["product_id"]) for line in body["lines"]]


def remove_from_cart(s: Session, product_ids: list[int]) -> Step[None]:
    for product_id in product_ids:
        yield from s.call(Request(routes.CART_REMOVE, {"product_id": product_id}))


def clear_cart(s: Session) -> Step[None]:
    yield from remove_from_cart(s, (yield from view_cart(s)))


def checkout(s: Session) -> Step[CheckoutOutcome]:
    # One key per checkout intent: when the answer is lost (connection dropped) or held back
    # (a 503, the first attempt still running), the retry cannot order or charge twice. Only
    # answers from the wire (StepFailed) are retried here: an in-process call loses none.
    request = Request(routes.CHECKOUT, headers={"Idempotency-Key": str(uuid4())},
                      answers=_CHECKOUT_ANSWERS)
    for attempt in range(1, CHECKOUT_TRIES + 1):
        try:
            body = yield from s.call(request)
        except StepFailed as exc:
            if exc.cause not in RETRYABLE_CHECKOUT or attempt == CHECKOUT_TRIES:
                raise
            yield Wait(exc.retry_after_s if exc.retry_after_s is not None
                       else jittered(0.5 * attempt))
            continue
        return _checkout_outcome(body)
    raise AssertionError("unreachable: the last attempt returns or raises")


def place_order(s: Session) -> Step[UUID]:
    body = yield from s.call(Request(routes.PLACE_ORDER))
    return UUID(str(body["id"]))


def pay_twice(s: Session, order_id: UUID) -> Step[list[CheckoutOutcome | Exception]]:
    """Two payments of the order at once (a double-click), each paid or refused. No
    Idempotency-Key on purpose: the order's claim alone must let only one through."""
    request = Request(routes.CHECKOUT, json={"order_id": str(order_id)},
                      answers=_CHECKOUT_ANSWERS)
    results: list[CheckoutOutcome | Exception] = []
    for response in (yield from s.together(request, request)):
        try:
            results.append(_checkout_outcome(check(request, response)))
        except Exception as exc:  # one of the two is meant to be refused
            results.append(exc)
    return results


def _checkout_outcome(body: Any) -> CheckoutOutcome:
    order_id = body.get("order_id")
    return CheckoutOutcome(UUID(str(order_id)) if order_id else None, str(body["outcome"]),
                           Decimal(str(body["total"])))
