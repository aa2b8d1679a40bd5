"""``--fault NAME[=VALUE]``: what can go wrong during a simulation, and how it is undone.

Each fault acts where the failure would come from in production: the payment gateway
simulator (declines, outage, slowness), the cache tier's Redis connection, the search
cluster's connection, the outbox relay's broker connection, the catalogue service (one
failing product), the database (a slow statement inside checkout) or the carrier; ``chaos``
kills the real backends themselves (see ``ecomctl.sim.chaos``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ecomctl.bootstrap import ShopStack
from ecomctl.errors import ConfigError

Undo = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class FaultSpec:
    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value}"


@dataclass(frozen=True)
class FaultKind:
    summary: str
    value_help: str | None
    default: str | None
    apply: Callable[[ShopStack, str | None], Awaitable[Undo]]
    parse: Callable[[str], Any] = field(default=str)


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("a rate between 0 and 1")
    return value


def _ms(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 60_000:
        raise ValueError("milliseconds between 0 and 60000")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 300:
        raise ValueError("between 0 and 300 seconds")
    return value


def _product_ids(text: str) -> frozenset[int]:
    ids = frozenset(int(part) for part in text.split("+") if part.strip())
    if not ids or min(ids) < 1:
        raise ValueError("product ids like 12 or 12+40")
    return ids


def _simulator(shop: ShopStack) -> Any:
    if shop.payment_gateway is None:
        raise ConfigError("payment faults need the in-process payment gateway simulator")
    return shop.payment_gateway.simulator


async def _payment_config(shop: ShopStack, **changes: Any) -> Undo:
    simulator = _simulator(shop)
    before = simulator.config.to_dict()
    simulator.update_config(**changes)

    async def undo() -> None:
        simulator.update_config(**before)

    return undo


async def payment_decline(shop: ShopStack, value: str | None) -> Undo:
    return await _payment_config(shop, decline_rate=_rate(value or "0.3"))


async def payment_slow(shop: ShopStack, value: str | None) -> Undo:
    return await _payment_config(shop, latency_mean_ms=_ms(value or "1500"))


async def payment_timeout_after_capture(shop: ShopStack, value: str | None) -> Undo:
    # The gateway captures, then the answer is lost, for the retries too: the order is left
    # PaymentUnknown and only the reconciler's lookup settles it.
    return await _payment_config(shop, timeout_rate=_rate(value or "0.2"),
                                 timeout_capture_rate=1.0, replay_timeout_rate=1.0)


async def payment_unreachable(shop: ShopStack, value: str | None) -> Undo:
    from ecomctl.adapters.payment_gateway import PaymentGatewayClient

    dead = PaymentGatewayClient("http://127.0.0.1:1", timeout_s=1.0)
    previous = shop.services.payments.use_gateway(dead)

    async def undo() -> None:
        shop.services.payments.use_gateway(previous)
        await dead.aclose()

    return undo


async def cache_down(shop: ShopStack, value: str | None) -> Undo:
    from ecomctl.adapters.cache import fast_fail_redis

    dead = fast_fail_redis("redis://127.0.0.1:1/0")
    previous = shop.product_cache.use_redis(dead)

    async def undo() -> None:
        shop.product_cache.use_redis(previous)
        await dead.aclose()

    return undo


async def search_down(shop: ShopStack, value: str | None) -> Undo:
    from elasticsearch import AsyncElasticsearch

    dead = AsyncElasticsearch("http://127.0.0.1:1", request_timeout=1, max_retries=0)
    previous = shop.search_index.use_client(dead)

    async def undo() -> None:
        shop.search_index.use_client(previous)
        await dead.close()

    return undo


async def kafka_down(shop: ShopStack, value: str | None) -> Undo:
    if shop.relay is None:
        raise ConfigError("kafka-down needs the stack's workers (outbox relay) in-process")
    relay = shop.relay
    relay.paused = True

    async def undo() -> None:
        relay.paused = False

    return undo


async def _flag(shop: ShopStack, name: str, value: Any) -> Undo:
    before = getattr(shop.flags, name)
    setattr(shop.flags, name, value)

    async def undo() -> None:
        setattr(shop.flags, name, before)

    return undo


async def product_failure(shop: ShopStack, value: str | None) -> Undo:
    if value is None:
        raise ConfigError("product-failure needs product ids: --fault product-failure=ID[+ID]")
    return await _flag(shop, "failing_product_ids", _product_ids(value))


async def db_slow(shop: ShopStack, value: str | None) -> Undo:
    return await _flag(shop, "slow_query_ms", _ms(value or "200"))


async def shipping_slow(shop: ShopStack, value: str | None) -> Undo:
    return await _flag(shop, "shipping_delay_ms", _ms(value or "500"))


async def chaos(shop: ShopStack, value: str | None) -> Undo:
    from ecomctl.sim.chaos import Chaos

    schedule = Chaos(shop, float(_seconds(value or "5")))
    stop = asyncio.Event()
    task = asyncio.create_task(schedule.run(stop), name="chaos")

    async def undo() -> None:
        stop.set()
        try:
            await task  # an outage in progress still ends with its backend restarted
        finally:
            shop.fault_log.extend(schedule.log)

    return undo


FAULTS: dict[str, FaultKind] = {
    "payment-decline": FaultKind("the gateway declines this share of charges", "RATE", "0.3",
                                 payment_decline, _rate),
    "payment-timeout-after-capture": FaultKind(
        "the gateway captures this share of charges but its answer (and the retry's) is lost",
        "RATE", "0.2", payment_timeout_after_capture, _rate),
    "payment-unreachable": FaultKind("the payment gateway cannot be reached", None, None,
                                     payment_unreachable),
    "payment-slow": FaultKind("the gateway answers after this mean latency", "MS", "1500",
                              payment_slow, _ms),
    "cache-down": FaultKind("the cache tier's Redis is unreachable (L1 and database only)",
                            None, None, cache_down),
    "kafka-down": FaultKind("the outbox relay cannot reach the broker; events wait, "
                            "consumers lag until it is back", None, None, kafka_down),
    "product-failure": FaultKind("the catalogue fails for these products", "ID[+ID]", None,
                                 product_failure, _product_ids),
    "search-down": FaultKind("the search cluster is unreachable", None, None, search_down),
    "db-slow": FaultKind("a slow statement in checkout's transaction", "MS", "200", db_slow,
                         _ms),
    "chaos": FaultKind("kill -9 Kafka, then Redis (each down SECONDS, then `stack up`), then "
                       "terminate PostgreSQL's connections three times; each outage and its "
                       "recovery time go into the result", "SECONDS", "5", chaos, _seconds),
    "shipping-slow": FaultKind("the carrier takes this long to book a shipment", "MS", "500",
                               shipping_slow, _ms),
}


def parse_fault(text: str) -> FaultSpec:
    name, sep, value = text.partition("=")
    kind = FAULTS.get(name)
    if kind is None:
        raise ConfigError(f"--fault {text!r}: unknown fault; choose from {', '.join(FAULTS)}")
    if sep and kind.value_help is None:
        raise ConfigError(f"--fault {name} takes no value")
    if sep:
        try:
            kind.parse(value)
        except ValueError as exc:
            raise ConfigError(f"--fault {text!r}: expected {kind.value_help} ({exc})") from exc
    return FaultSpec(name, value if sep else kind.default)


async def apply_faults(shop: ShopStack, faults: list[FaultSpec]) -> list[Undo]:
    undos = []
    for fault in faults:
        undos.append(await FAULTS[fault.name].apply(shop, fault.value))
    return undos
