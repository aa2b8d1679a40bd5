"""The fault catalogue: what can go wrong in the shop, and how each fault is undone.

``--fault NAME[=VALUE]`` on ``checkout simulate`` and ``load run``, a window of
``--fault-schedule``, and a flag in the flag file a running ``ecomctl serve`` watches
(``ecomctl faults set``) all name faults from this one table.

Each fault acts where the failure would come from in production: the payment gateway
simulator (declines, outage, slowness), the cache tier's Redis connection, the search
cluster's connection, the outbox relay's broker connection, the catalogue service (one
failing product), the database (a slow statement inside checkout) or the carrier; ``chaos``
kills the real backends themselves (see ``ecomctl.faults.chaos``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ecomctl.errors import ConfigError
from ecomctl.ratios import parse_ratio

if TYPE_CHECKING:
    from ecomctl.bootstrap import ShopStack

Undo = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class FaultSpec:
    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value}"


class Role(StrEnum):
    """Which process of a shop split into roles (``serve --workers``) a fault acts in."""

    API = "api"
    """The services behind the HTTP API (checkout, catalogue, the payment client)."""
    EVENTS = "events"
    """The outbox relay, the consumers and the carrier."""
    PAYMENT_GATEWAY = "payment-gateway"
    """The payment gateway simulator (in-process, or ``serve payment-gateway``)."""


@dataclass(frozen=True)
class FaultKind:
    summary: str
    value_help: str | None
    default: str | None
    apply: Callable[[ShopStack, str | None], Awaitable[Undo]]
    parse: Callable[[str], Any] = field(default=str)
    role: Role = Role.API
    simulator_changes: Callable[[str | None], dict[str, Any]] | None = None
    """For the simulator's faults: the config changes, so that ``serve payment-gateway``
    (no ShopStack) applies them too."""

    @property
    def flag_type(self) -> str:
        """The flagd variant type: ``boolean`` (no value), ``number`` or ``string``."""
        if self.value_help is None:
            return "boolean"
        return "string" if self.parse is _product_ids else "number"


def _rate(text: str) -> float:
    """A share: ``30%`` or ``0.3`` (``ecomctl.ratios``, as every rate of the CLI)."""
    return parse_ratio(text, maximum=1.0)


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


def change_simulator(simulator: Any, changes: dict[str, Any]) -> Undo:
    """Apply config ``changes`` to a payment gateway simulator; the undo restores it."""
    before = simulator.config.to_dict()
    simulator.update_config(**changes)

    async def undo() -> None:
        simulator.update_config(**before)

    return undo


def _decline_changes(value: str | None) -> dict[str, Any]:
    return {"decline_rate": _rate(value or "0.3")}


def _slow_changes(value: str | None) -> dict[str, Any]:
    return {"latency_mean_ms": _ms(value or "1500")}


def _timeout_after_capture_changes(value: str | None) -> dict[str, Any]:
    # The gateway captures, then the answer is lost, for the retries too: the order is left
    # PaymentUnknown and only the reconciler's lookup settles it.
    return {"timeout_rate": _rate(value or "0.2"), "timeout_capture_rate": 1.0,
            "replay_timeout_rate": 1.0}


def _on_simulator(changes: Callable[[str | None], dict[str, Any]]) -> Callable[
        [ShopStack, str | None], Awaitable[Undo]]:
    async def apply(shop: ShopStack, value: str | None) -> Undo:
        return change_simulator(_simulator(shop), changes(value))

    return apply


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
    from ecomctl.adapters.search import unreachable_client

    dead = unreachable_client()
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
    from ecomctl.faults.chaos import Chaos

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
    "payment-decline": FaultKind(
        "the gateway declines this share of charges", "RATE", "0.3",
        _on_simulator(_decline_changes), _rate, Role.PAYMENT_GATEWAY, _decline_changes),
    "payment-timeout-after-capture": FaultKind(
        "the gateway captures this share of charges but its answer (and the retry's) is lost",
        "RATE", "0.2", _on_simulator(_timeout_after_capture_changes), _rate,
        Role.PAYMENT_GATEWAY, _timeout_after_capture_changes),
    "payment-unreachable": FaultKind("the payment gateway cannot be reached", None, None,
                                     payment_unreachable),
    "payment-slow": FaultKind(
        "the gateway answers after this mean latency", "MS", "1500",
        _on_simulator(_slow_changes), _ms, Role.PAYMENT_GATEWAY, _slow_changes),
    "cache-down": FaultKind("the cache tier's Redis is unreachable (L1 and database only)",
                            None, None, cache_down),
    "kafka-down": FaultKind("the outbox relay cannot reach the broker; events wait, "
                            "consumers lag until it is back", None, None, kafka_down,
                            role=Role.EVENTS),
    "product-failure": FaultKind("the catalogue fails for these products", "ID[+ID]", None,
                                 product_failure, _product_ids),
    "search-down": FaultKind("the search cluster is unreachable", None, None, search_down),
    "db-slow": FaultKind("a slow statement in checkout's transaction", "MS", "200", db_slow,
                         _ms),
    "chaos": FaultKind("kill -9 Kafka, then Redis (each down SECONDS, then `stack up`), then "
                       "terminate PostgreSQL's connections three times; each outage and its "
                       "recovery time go into the result", "SECONDS", "5", chaos, _seconds,
                       Role.EVENTS),
    "shipping-slow": FaultKind("the carrier takes this long to book a shipment", "MS", "500",
                               shipping_slow, _ms, Role.EVENTS),
}


def parse_fault(text: str, option: str = "--fault") -> FaultSpec:
    name, sep, value = text.strip().partition("=")
    kind = FAULTS.get(name)
    if kind is None:
        raise ConfigError(f"{option} {text!r}: unknown fault; choose from {', '.join(FAULTS)}")
    if sep and kind.value_help is None:
        raise ConfigError(f"{option} {name} takes no value")
    if not sep and kind.value_help is not None and kind.default is None:
        raise ConfigError(f"{option} {name} needs a value: {name}={kind.value_help}")
    if sep:
        try:
            parsed = kind.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{option} {text!r}: expected {kind.value_help} ({exc})") from exc
        if kind.parse is _rate:  # 30% is kept as 0.3: the flag file holds a number
            value = format(parsed, ".15g")
    return FaultSpec(name, value if sep else kind.default)


def roles_faults(faults: list[FaultSpec], roles: frozenset[Role]) -> list[FaultSpec]:
    """The faults that act in a process running ``roles``."""
    return [f for f in faults if FAULTS[f.name].role in roles]


async def apply_faults(shop: ShopStack, faults: list[FaultSpec]) -> list[Undo]:
    undos = []
    for fault in faults:
        undos.append(await FAULTS[fault.name].apply(shop, fault.value))
    return undos
