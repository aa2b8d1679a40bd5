"""Shopper journeys and their default weights.

The weights follow the OpenTelemetry Demo's load generator (browse 10 + index 1,
recommendations 3, view cart 3 + add to cart 2, checkout 1 + multi-item checkout 1), plus a
search journey, which that demo does not have.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from ecomctl.errors import ConfigError
from ecomctl.sim.client import CheckoutOutcome, ShopClient, StepFailed, cause_of

DEFAULT_WEIGHTS: dict[str, int] = {
    "browse": 11,
    "search": 3,
    "recommendations": 3,
    "cart": 5,
    "checkout": 2,
    # Off unless asked for (--weights pay-order=N): place an order, then pay it twice at once.
    "pay-order": 0,
}


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


Journey = Callable[[ShopClient, random.Random, CatalogueSample, JourneyOutcome], Awaitable[None]]


async def browse(
    c: ShopClient, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
) -> None:
    listed = await c.view_category(rng.choice(cat.categories))
    for product_id in rng.sample(listed, min(len(listed), rng.randint(1, 3))):
        await c.view_product(product_id)


async def search(
    c: ShopClient, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
) -> None:
    found = await c.search(rng.choice(cat.search_words))
    if found:
        await c.view_product(found[0])


async def recommendations(
    c: ShopClient, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome
) -> None:
    product_id = rng.choice(cat.product_ids)
    await c.view_product(product_id)
    await c.recommendations(product_id)


MAX_BROWSING_CART_LINES = 8


async def cart(c: ShopClient, rng: random.Random, cat: CatalogueSample, _: JourneyOutcome) -> None:
    await c.add_to_cart(rng.choice(cat.product_ids), rng.randint(1, 2))
    if await c.view_cart() > MAX_BROWSING_CART_LINES:
        await c.clear_cart()  # a shopper who only browses eventually empties the basket


async def checkout(
    c: ShopClient, rng: random.Random, cat: CatalogueSample, outcome: JourneyOutcome
) -> None:
    for product_id in rng.sample(list(cat.product_ids), rng.randint(1, 3)):
        await c.add_to_cart(product_id, rng.randint(1, 2))
    try:
        result = await c.checkout()
    except Exception as exc:
        if cause_of(exc) == "out_of_stock":
            await c.clear_cart()  # the shopper gives up on what cannot be bought
        raise
    outcome.checkout = result.outcome


async def pay_order(
    c: ShopClient, rng: random.Random, cat: CatalogueSample, outcome: JourneyOutcome
) -> None:
    """Place an order from the cart, then pay it with a double-click: two payments of the
    same order at once. Exactly one may go through; the other must be refused (409: being
    paid by the first, or paid already)."""
    for product_id in rng.sample(list(cat.product_ids), rng.randint(1, 3)):
        await c.add_to_cart(product_id, rng.randint(1, 2))
    try:
        order_id = await c.place_order()
    finally:
        await c.clear_cart()  # placed (or unsellable): the cart's job is done
    results = await asyncio.gather(c.pay_order(order_id), c.pay_order(order_id),
                                   return_exceptions=True)
    paid = [r for r in results if isinstance(r, CheckoutOutcome)]
    refused = [r for r in results if isinstance(r, BaseException)]
    if len(paid) != 1:
        raise refused[0] if not paid else StepFailed("paid_twice", str(order_id))
    if cause_of(refused[0]) not in ("checkout_in_progress", "invalid_transition",
                                    "order_expired"):
        raise refused[0]
    outcome.checkout = paid[0].outcome


JOURNEYS: dict[str, Journey] = {
    "browse": browse,
    "search": search,
    "recommendations": recommendations,
    "cart": cart,
    "checkout": checkout,
    "pay-order": pay_order,
}


def parse_weights(spec: str | None) -> dict[str, int]:
    """``browse=10,checkout=5`` over the defaults; unknown names and negatives are refused."""
    weights = dict(DEFAULT_WEIGHTS)
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        name, sep, value = item.partition("=")
        if not sep or name not in JOURNEYS or not value.isdigit():
            raise ConfigError(
                f"--weights: {item!r} is not NAME=INT with NAME in {', '.join(JOURNEYS)}"
            )
        weights[name] = int(value)
    if not any(weights.values()):
        raise ConfigError("--weights: at least one journey needs a positive weight")
    return weights


def pick(rng: random.Random, weights: Mapping[str, int]) -> str:
    names = [n for n, w in weights.items() if w > 0]
    return rng.choices(names, weights=[weights[n] for n in names])[0]
