"""The composition root: builds every adapter from the settings and wires the services.

``running_stack()`` is what the CLI, the gateway and the tests use. Tests and simulations
pass their own pieces through ``StackOptions`` (a payment simulator config, an exporter...).
Nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ecomctl.config import Settings
from ecomctl.domain.events import (
    ORDER_EVENTS,
    PAYMENT_EVENTS,
    PRODUCT_EVENTS,
    SHIPMENT_EVENTS,
    TOPICS,
)
from ecomctl.domain.flags import FaultFlags
from ecomctl.domain.models import ShipmentStatus
from ecomctl.heap import frozen_heap
from ecomctl.services.shop import ShopServices
from ecomctl.telemetry.setup import Telemetry

_log = logging.getLogger("ecomctl.housekeeping")

if TYPE_CHECKING:
    import redis.asyncio as redis
    from argon2 import PasswordHasher

    from ecomctl.adapters.cache import TieredCache
    from ecomctl.adapters.kafka.consumer import EventConsumer
    from ecomctl.adapters.kafka.relay import OutboxRelay
    from ecomctl.adapters.payment_ledger import GatewayLedger
    from ecomctl.adapters.postgres.database import Database
    from ecomctl.adapters.rate_limit import RedisRateLimiter
    from ecomctl.adapters.search import ProductSearchIndex
    from ecomctl.domain.models import Product
    from ecomctl.services.shipment import ShipmentService
    from ecomctl.simulators.payment_gateway import RunningGateway, SimulatorConfig


REDIS_POOL_SIZE = 128
CARRIER_BATCH = 10  # shipments per carrier transaction
HOUSEKEEPING_BATCH = 100  # expired orders per sweeper transaction
IDEMPOTENCY_PURGE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class CarrierTiming:
    """How long the simulated carrier waits before each status update."""

    in_transit_after_s: float = 2.0
    delivered_after_s: float = 5.0
    poll_interval_s: float = 0.5


@dataclass(frozen=True)
class StackOptions:
    payment_gateway_url: str | None = None
    """A running payment gateway; None starts the simulator in-process."""
    simulator: SimulatorConfig | None = None
    payment_timeout_s: float = 2.0
    workers: bool = True
    """Run the outbox relay, the Kafka consumers and the carrier in this process."""
    carrier: CarrierTiming | None = field(default_factory=CarrierTiming)
    db_pool_size: int = 20
    password_hasher: PasswordHasher | None = None
    search_alias: str | None = None
    """The product index alias; None: the settings' (``ECOMCTL_SEARCH_ALIAS``)."""
    telemetry: Telemetry | None = None
    """Telemetry to use; None builds one exporting over OTLP to the configured endpoint."""
    flags: FaultFlags = field(default_factory=FaultFlags)
    """Fault switches the services read on every call (simulations flip them)."""
    housekeeping_interval_s: float = 1.0
    """How often the events role expires Pending orders and reconciles payments."""


@dataclass
class ShopStack:
    settings: Settings
    telemetry: Telemetry
    db: Database
    redis: redis.Redis
    services: ShopServices
    relay: OutboxRelay | None
    consumers: list[EventConsumer]
    payment_gateway: RunningGateway | None
    flags: FaultFlags
    product_cache: TieredCache[Product]
    search_index: ProductSearchIndex
    rate_limiter: RedisRateLimiter | None = None
    """Per-client-address limits the gateway applies (login, register)."""
    payment_gateway_url: str | None = None
    """The payment gateway's address (the simulator's, when it runs in-process)."""
    fault_log: list[dict[str, Any]] = field(default_factory=list)
    """What faults did while they were applied (the chaos schedule's outages)."""

    async def readiness(self) -> dict[str, bool]:
        """Cheap checks of the backends a request needs (``/readyz``), through the stack's
        own pools and clients: a probe opens no connection of its own."""

        async def postgres() -> None:
            from ecomctl.adapters.postgres.operations import answers as pool_answers

            await pool_answers(self.db)

        async def answers(check: Callable[[], Awaitable[object]]) -> bool:
            try:
                await asyncio.wait_for(check(), 1.0)
            except Exception:  # any failure means "not ready", which is the answer
                return False
            return True

        pg, rd, es = await asyncio.gather(
            answers(postgres), answers(self.redis.ping), answers(self.search_index.count)
        )
        return {"postgres": pg, "redis": rd, "elasticsearch": es}

    async def payment_ledger(self) -> GatewayLedger | None:
        """The payment gateway's books (the in-process simulator's, or the configured
        gateway's ``GET /v1/ledger``); None when the gateway keeps none."""
        from ecomctl.adapters.payment_ledger import GatewayLedger, fetch_ledger

        if self.payment_gateway is not None:
            simulator = self.payment_gateway.simulator
            return GatewayLedger(simulator.started_at, simulator.ledger(),
                                 simulator.refunds())
        return await fetch_ledger(self.payment_gateway_url) if self.payment_gateway_url else None

    async def drain(self, timeout_s: float = 30.0) -> list[str]:
        """Publish every outbox row and wait (``timeout_s`` in all) until each consumer has
        processed it; returns the names of the consumers that did not catch up."""
        if self.relay is None:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # No checkout is in flight any more: settle unknown payments now, so their events
        # are part of what is drained.
        await self.services.reconciler.reconcile(now=True)
        await self.relay.drain(timeout_s)
        remaining = max(1.0, deadline - loop.time())
        idle = await asyncio.gather(*(c.wait_until_idle(remaining) for c in self.consumers))
        return [c.name for c, done in zip(self.consumers, idle, strict=True) if not done]


@asynccontextmanager
async def running_stack(
    settings: Settings | None = None, options: StackOptions | None = None
) -> AsyncIterator[ShopStack]:
    """Build the whole shop on the configured backends, run its workers, tear it down."""
    settings = settings or Settings.from_env()
    options = options or StackOptions()
    async with AsyncExitStack() as stack:
        telemetry = options.telemetry or Telemetry(settings)
        if options.telemetry is None:
            stack.callback(telemetry.shutdown)
        telemetry.activate()
        shop = await stack.enter_async_context(_build(settings, options, telemetry))
        stack.enter_context(frozen_heap())
        yield shop


@asynccontextmanager
async def _build(
    settings: Settings, options: StackOptions, telemetry: Telemetry
) -> AsyncIterator[ShopStack]:
    from aiokafka import AIOKafkaProducer

    from ecomctl.adapters.cache import fast_fail_redis
    from ecomctl.adapters.kafka.consumer import EventConsumer
    from ecomctl.adapters.kafka.dlq import DLQ_PARTITIONS, DeadLetterWriter, shop_dlq_topics
    from ecomctl.adapters.kafka.relay import OutboxRelay
    from ecomctl.adapters.kafka.topics import ensure_topics
    from ecomctl.adapters.payment_gateway import PaymentGatewayClient
    from ecomctl.adapters.postgres.analytics import PostgresAnalytics
    from ecomctl.adapters.postgres.database import Database
    from ecomctl.adapters.postgres.idempotency import PostgresIdempotencyStore
    from ecomctl.adapters.postgres.products import ProductRepository
    from ecomctl.adapters.postgres.recommendations import PostgresPurchaseHistory
    from ecomctl.adapters.postgres.unit_of_work import postgres_units, unit_in
    from ecomctl.adapters.postgres.users import UserRepository
    from ecomctl.adapters.product_cache import product_cache
    from ecomctl.adapters.rate_limit import RedisRateLimiter
    from ecomctl.adapters.recommendation_cache import RedisRecommendationCache
    from ecomctl.adapters.redis_pool import redis_client
    from ecomctl.adapters.redis_store import CartStore, LoginThrottle, SessionStore
    from ecomctl.adapters.search import ProductSearchIndex
    from ecomctl.services import consumers as handlers
    from ecomctl.services.cart import CartService
    from ecomctl.services.checkout import CheckoutService
    from ecomctl.services.idempotency import IdempotencyService
    from ecomctl.services.inventory import InventoryService
    from ecomctl.services.order import OrderPolicy, OrderService, PaymentLease
    from ecomctl.services.payment import PaymentService
    from ecomctl.services.product import ProductService
    from ecomctl.services.recommendation import RecommendationService
    from ecomctl.services.reconciliation import PaymentReconciler
    from ecomctl.services.search import SearchService
    from ecomctl.services.shipment import ShipmentService
    from ecomctl.services.user import UserService
    from ecomctl.simulators.payment_gateway import run_payment_gateway

    metrics = telemetry.metrics
    tracer = telemetry.tracer
    bootstrap = ",".join(settings.kafka_bootstrap_servers)
    async with AsyncExitStack() as stack:
        db = await Database.connect(settings.database_url, max_size=options.db_pool_size,
                                    acquire_timeout_s=settings.push_back.db_acquire_timeout_s,
                                    on_wait=metrics.waited("postgres_pool"))
        stack.push_async_callback(db.close)
        # Sessions and carts are the source of truth: a few quick retries ride out a restart
        # (the pool's connections all died), then 503. A blocking pool: a burst of requests
        # waits for a connection instead of failing.
        redis = redis_client(settings.redis_url, max_connections=REDIS_POOL_SIZE,
                             timeout_s=2, retries=3)
        stack.push_async_callback(redis.aclose)
        # The caches' own Redis (it evicts); the rate limits' fail fast on the main one.
        cache_redis = fast_fail_redis(settings.redis_cache_url)
        stack.push_async_callback(cache_redis.aclose)
        limits_redis = fast_fail_redis(settings.redis_url)
        stack.push_async_callback(limits_redis.aclose)

        gateway_url = options.payment_gateway_url
        running_gateway = None
        if gateway_url is None:
            running_gateway = await stack.enter_async_context(
                run_payment_gateway(options.simulator)
            )
            gateway_url = running_gateway.url
        payment_client = PaymentGatewayClient(gateway_url, timeout_s=options.payment_timeout_s)
        stack.push_async_callback(payment_client.aclose)

        search_index = ProductSearchIndex.from_url(
            settings.elasticsearch_url, alias=options.search_alias or settings.search_alias
        )
        stack.push_async_callback(search_index.close)
        await search_index.ensure_index()

        products_repo = ProductRepository(db)
        cache = product_cache(cache_redis, metrics=metrics)
        await cache.start()
        stack.push_async_callback(cache.stop)
        flags = options.flags
        products = ProductService(products_repo, cache, tracer("product"), flags)
        inventory = InventoryService(tracer("inventory"), flags)
        units = postgres_units(db)
        payments = PaymentService(payment_client, tracer("payment"), metrics)
        orders = OrderService(units, inventory, tracer("order"), metrics, policy=OrderPolicy(
            timedelta(seconds=settings.pending_order_ttl_s), settings.max_pending_orders,
            PaymentLease.covering(options.payment_timeout_s, payments.max_attempts,
                                  payments.retry_delay_s),
        ))
        carts = CartService(CartStore(redis), products.get, tracer("cart"))
        shipments = ShipmentService(units, orders, tracer("shipment"), flags)
        search = SearchService(search_index, tracer("search"))
        services = ShopServices(
            users=UserService(
                UserRepository(db), SessionStore(redis), LoginThrottle(redis), tracer("user"),
                options.password_hasher, max_waiting_hashes=settings.push_back.hash_queue,
                on_hash_wait=metrics.waited("password_hash"),
            ),
            products=products,
            carts=carts,
            inventory=inventory,
            orders=orders,
            payments=payments,
            checkout=CheckoutService(
                units, carts, products, orders, payments, tracer("checkout"),
                metrics,
            ),
            shipments=shipments,
            recommendations=RecommendationService(
                PostgresPurchaseHistory(db), RedisRecommendationCache(cache_redis),
                tracer("recommendation"), metrics,
            ),
            search=search,
            reconciler=PaymentReconciler(units, orders, payments, carts,
                                         tracer("payment")),
            idempotency=IdempotencyService(PostgresIdempotencyStore(db)),
        )

        relay: OutboxRelay | None = None
        consumers: list[EventConsumer] = []
        if options.workers:
            prefix = settings.kafka_topic_prefix

            def on_kafka(*topics: str) -> list[str]:
                return [prefix + topic for topic in topics]

            await ensure_topics(bootstrap, on_kafka(*TOPICS))
            await ensure_topics(bootstrap, shop_dlq_topics(prefix), DLQ_PARTITIONS)
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                linger_ms=5, client_id="ecomctl-outbox-relay",
            )
            await producer.start()
            stack.push_async_callback(producer.stop)
            relay = OutboxRelay(
                db, producer, tracer=tracer("outbox"), metrics=metrics, topics=TOPICS,
                topic_prefix=prefix,
            )
            # Records a consumer gives up on go to <topic>.dlq through the relay's producer
            # (acks=all, idempotent): durable before the consumer commits past them.
            failures: dict[str, Any] = {
                "dead_letters": DeadLetterWriter(bootstrap, producer=producer),
                "max_attempts": settings.consumer_max_attempts,
                "retry_backoff_s": settings.consumer_retry_backoff_s,
                "max_backoff_s": settings.consumer_max_backoff_s,
            }
            consumers = [
                EventConsumer("shipment", on_kafka(ORDER_EVENTS),
                              handlers.ShipmentCreator(shipments, unit_in),
                              bootstrap=bootstrap, db=db, tracer=tracer("shipment"),
                              metrics=metrics, **failures),
                EventConsumer("search-indexer", on_kafka(PRODUCT_EVENTS),
                              handlers.SearchIndexer(products_repo, search),
                              bootstrap=bootstrap, db=db, tracer=tracer("search"),
                              metrics=metrics, **failures),
                EventConsumer("analytics",
                              on_kafka(ORDER_EVENTS, PAYMENT_EVENTS, SHIPMENT_EVENTS),
                              handlers.AnalyticsCounter(PostgresAnalytics()),
                              bootstrap=bootstrap, db=db,
                              tracer=tracer("analytics"), metrics=metrics, **failures),
            ]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(relay.run(stop), name="outbox-relay")]
            for consumer in consumers:
                await consumer.start()
                stack.push_async_callback(consumer.stop)
                consumer.start_background()
            if options.carrier is not None:
                tasks.append(asyncio.create_task(
                    _run_carrier(shipments, options.carrier, stop), name="carrier"
                ))
            tasks.append(asyncio.create_task(
                _run_housekeeping(services, options.housekeeping_interval_s, stop),
                name="housekeeping",
            ))
            stack.push_async_callback(_stop_tasks, stop, tasks)

        await services.users.prepare()
        # On the fast-failing client: with Redis down the limiter lets requests through.
        limiter = RedisRateLimiter(limits_redis, {"login": settings.push_back.login,
                                                 "register": settings.push_back.register})
        yield ShopStack(settings, telemetry, db, redis, services, relay, consumers,
                        running_gateway, flags, cache, search_index, limiter, gateway_url)


async def _stop_tasks(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    for task in tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def _run_housekeeping(
    services: ShopServices, interval_s: float, stop: asyncio.Event
) -> None:
    """The events role's sweepers: expire Pending orders past their hold, reconcile payments
    whose outcome is unknown, forget old idempotency keys. Idle rounds are untraced."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from ecomctl.errors import InfraError

    purged_at = 0.0
    while not stop.is_set():
        try:
            with suppress_instrumentation():
                expired_due = await services.orders.any_expired()
                unsettled_due = await services.reconciler.any_due()
            while expired_due and not stop.is_set():
                expired_due = await services.orders.expire_due(HOUSEKEEPING_BATCH) >= (
                    HOUSEKEEPING_BATCH)
            if unsettled_due:
                await services.reconciler.reconcile()
            if time.monotonic() - purged_at > IDEMPOTENCY_PURGE_INTERVAL_S:
                with suppress_instrumentation():
                    await services.idempotency.purge()
                purged_at = time.monotonic()
        except InfraError:
            pass  # a backend outage: try again next round
        except Exception:
            # Anything else (a bug, a driver error nobody translated) must not stop expiry,
            # reconciliation and the purge for good, silently: say it, try again next round.
            _log.exception("housekeeping round failed; trying again in %gs", interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _run_carrier(
    shipments: ShipmentService, timing: CarrierTiming, stop: asyncio.Event
) -> None:
    """The simulated carrier: picks up created shipments, then delivers them."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from ecomctl.errors import InfraError

    steps = ((ShipmentStatus.CREATED, timing.in_transit_after_s),
             (ShipmentStatus.IN_TRANSIT, timing.delivered_after_s))
    while not stop.is_set():
        for status, wait_s in steps:
            try:
                with suppress_instrumentation():
                    due = await shipments.any_due(status, wait_s)
                # Small transactions, repeated while full: the events they write are
                # stamped with the transaction's start, so a long one would show as lag.
                while due and not stop.is_set():
                    moved = await shipments.advance_due(status, wait_s, CARRIER_BATCH)
                    due = moved >= CARRIER_BATCH
            except InfraError:
                pass  # a backend outage: the carrier simply tries again next round
            except Exception:
                _log.exception("carrier round failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timing.poll_interval_s)
