"""Shopper journeys and their default weights.

The weights follow the OpenTelemetry Demo's load generator (browse 10 + index 1,
recommendations 3, view cart 3 + add to cart 2, checkout 1 + multi-item checkout 1), plus a
search journey, which that demo does not have.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ecomctl.journeys import steps
from ecomctl.journeys.protocol import Step, StepFailed, cause_of
from ecomctl.journeys.session import Session
from ecomctl.journeys.steps import CheckoutOutcome

DEFAULT_WEIGHTS: dict[str, int] = {
    "browse": 11,
    "search": 3,
    "recommendations": 3,
    "cart": 5,
    "checkout": 2,
    # Off unless asked for (--weights pay-order=N): place an order, then pay it twice at once.
    "pay-order": 0,
}

MAX_BROWSING_CART_LINES = 8
# A second payment of one order is refused with one of these (409: being paid by the first,
# paid already, or expired meanwhile).
_SECOND_PAYMENT_REFUSALS = frozenset({"checkout_in_progress", "invalid_transition",
                                      "order_expired"})


@dataclass(frozen=True)
class CatalogueSample:
    """What shoppers choose from: product ids, category slugs, words to search for."""

    product_ids: Sequence[int]
    categories: Sequence[str]
    search_words: Sequence[str]


@dataclass
class JourneyOutcome:
    """Business results of one journey beside its latency (a checkout's result...)."""

    checkout: str | None = None


Journey = Callable[[Session, random.Random, CatalogueSample, JourneyOutcome], Step[None]]


def browse(s: Session, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
           ) -> Step[None]:
    listed = yield from steps.view_category(s, rng.choice(cat.categories))
    for product_id in rng.sample(listed, min(len(listed), rng.randint(1, 3))):
        yield from steps.view_product(s, product_id)


def search(s: Session, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
           ) -> Step[None]:
    found = yield from steps.search(s, rng.choice(cat.search_words))
    if found:
        yield from steps.view_product(s, found[0])


def recommendations(s: Session, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
                    ) -> Step[None]:
    product_id = rng.choice(cat.product_ids)
    yield from steps.view_product(s, product_id)
    yield from steps.recommendations(s, product_id)


def cart(s: Session, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
         ) -> Step[None]:
    yield from steps.add_to_cart(s, rng.choice(cat.product_ids), rng.randint(1, 2))
    lines = yield from steps.view_cart(s)
    if len(lines) > MAX_BROWSING_CART_LINES:
        # A shopper who only browses eventually empties the basket.
        yield from steps.remove_from_cart(s, lines)


def checkout(s: Session, rng: random.Random, cat: CatalogueSample, outcome: JourneyOutcome
             ) -> Step[None]:
    yield from _fill_cart(s, rng, cat)
    try:
        result = yield from steps.checkout(s)
    except Exception as exc:
        if cause_of(exc) == "out_of_stock":
            yield from steps.clear_cart(s)  # the shopper gives up on what cannot be bought
        raise
    outcome.checkout = result.outcome


def pay_order(s: Session, rng: random.Random, cat: CatalogueSample, outcome: JourneyOutcome
              ) -> Step[None]:
    """Place an order from the cart, then pay it with a double-click: two payments of the
    same order at once. Exactly one may go through; the other must be refused."""
    yield from _fill_cart(s, rng, cat)
    try:
        order_id = yield from steps.place_order(s)
    except Exception:
        yield from steps.clear_cart(s)  # unsellable: the cart's job is done
        raise
    yield from steps.clear_cart(s)  # placed: the cart's job is done
    results = yield from steps.pay_twice(s, order_id)
    paid = [r for r in results if isinstance(r, CheckoutOutcome)]
    refused = [r for r in results if isinstance(r, Exception)]
    if len(paid) != 1:
        raise refused[0] if not paid else StepFailed("paid_twice", str(order_id))
    if cause_of(refused[0]) not in _SECOND_PAYMENT_REFUSALS:
        raise refused[0]
    outcome.checkout = paid[0].outcome


def _fill_cart(s: Session, rng: random.Random, cat: CatalogueSample) -> Step[None]:
    for product_id in rng.sample(list(cat.product_ids), rng.randint(1, 3)):
        yield from steps.add_to_cart(s, product_id, rng.randint(1, 2))


JOURNEYS: dict[str, Journey] = {
    "browse": browse,
    "search": search,
    "recommendations": recommendations,
    "cart": cart,
    "checkout": checkout,
    "pay-order": pay_order,
}
