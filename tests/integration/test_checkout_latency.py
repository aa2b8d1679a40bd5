"""200 sequential in-process checkouts: every one is paid, and the latency distribution is
recorded (as JUnit properties) for the record, not asserted against a wall-clock budget."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from ecomctl.bootstrap import ShopStack
from tests.shopdata import make_catalogue, make_users

CHECKOUTS = 200


async def test_200_sequential_checkouts(
    shop: ShopStack, record_property: Callable[[str, object], None]
) -> None:
    catalogue = await make_catalogue(shop, 3, stock=CHECKOUTS)
    users = await make_users(shop, CHECKOUTS)
    latencies_ms = []
    for i, user in enumerate(users):
        await shop.services.carts.add_item(user.id, catalogue.ids[i % 3], 1)
        started = time.perf_counter()
        result = await shop.services.checkout.checkout(user.id)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        assert result.succeeded, result
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    record_property("checkout_p50_ms", round(cuts[49], 2))
    record_property("checkout_p95_ms", round(cuts[94], 2))
    record_property("checkout_max_ms", round(max(latencies_ms), 2))
    assert len(latencies_ms) == CHECKOUTS and cuts[49] <= cuts[94]
