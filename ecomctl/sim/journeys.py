"""The simulator's side of the shared journeys (``ecomctl.journeys.shopper``): each one run
by a shopper's asyncio client, the ``--weights`` option, and the weighted pick."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping

from ecomctl.errors import ConfigError
from ecomctl.journeys import shopper
from ecomctl.journeys.shopper import DEFAULT_WEIGHTS, CatalogueSample, JourneyOutcome
from ecomctl.sim.client import ShopClient

Journey = Callable[[ShopClient, random.Random, CatalogueSample, JourneyOutcome], Awaitable[None]]


def _driven(journey: shopper.Journey) -> Journey:
    async def run(client: ShopClient, rng: random.Random, cat: CatalogueSample,
                  outcome: JourneyOutcome) -> None:
        await client.run(journey(client.session, rng, cat, outcome))

    return run


JOURNEYS: dict[str, Journey] = {name: _driven(j) for name, j in shopper.JOURNEYS.items()}


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
