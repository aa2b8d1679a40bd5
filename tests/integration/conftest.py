"""Integration tests talk to the real backends (``ecomctl stack up`` or compose.yaml).

There is no skipping here: a backend that is down makes its tests fail, loudly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.adapters.cache import fast_fail_redis
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.migrations import MigrationReport, load_migrations, migrate
from ecomctl.bootstrap import CarrierTiming, ShopStack, StackOptions, running_stack
from ecomctl.config import Settings
from ecomctl.gateway.server import running_gateway
from ecomctl.resources import fixtures_dir
from ecomctl.services.user import seeding_hasher
from ecomctl.simulators.payment_gateway import SimulatorConfig
from ecomctl.telemetry.setup import Telemetry
from tests.kafka_scratch import KafkaScratch


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def migrated(settings: Settings) -> MigrationReport:
    return await migrate(settings.database_url, load_migrations(fixtures_dir() / "migrations"))


@pytest.fixture(scope="module")
async def db(settings: Settings, migrated: MigrationReport) -> AsyncIterator[Database]:
    """A small pool on the migrated shop database, for tests that query it or build
    repositories and consumers on it. One per module: each test removes the rows it wrote,
    so the tests of a module can share it."""
    database = await Database.connect(settings.database_url, min_size=1, max_size=6)
    yield database
    await database.close()


@pytest.fixture
async def producer(scratch: KafkaScratch) -> AsyncIterator[AIOKafkaProducer]:
    """A Kafka producer on the topics of the module's own ``scratch`` fixture. Per test, and
    stopped before ``scratch`` deletes the topics: a live producer keeps refreshing their
    metadata, which on this broker (auto-create on) re-creates them."""
    kafka = AIOKafkaProducer(bootstrap_servers=scratch.bootstrap, acks="all")
    await kafka.start()
    yield kafka
    await kafka.stop()


@pytest.fixture(scope="package")
def spans() -> InMemorySpanExporter:
    """Every span the test stack finishes (beside the OTLP export to Jaeger)."""
    return InMemorySpanExporter()


@pytest.fixture(scope="package")
async def shop(
    settings: Settings, migrated: MigrationReport, spans: InMemorySpanExporter
) -> AsyncIterator[ShopStack]:
    """The whole shop on the real backends, shared by the integration tests that need it
    (and stopped before the end-to-end tests, which restart backends).

    The payment simulator answers fast by default; tests that inject faults restore it.
    """
    telemetry = Telemetry(settings, span_processors=[SimpleSpanProcessor(spans)])
    options = StackOptions(
        simulator=SimulatorConfig(latency_mean_ms=5, latency_jitter_ms=1, timeout_delay_s=2),
        payment_timeout_s=0.5,
        password_hasher=seeding_hasher(),
        carrier=CarrierTiming(in_transit_after_s=3600, delivered_after_s=3600),
        telemetry=telemetry,
    )
    async with running_stack(settings, options) as stack:
        yield stack
    telemetry.shutdown()


@pytest.fixture(scope="package")
async def gateway_url(shop: ShopStack) -> AsyncIterator[str]:
    async with running_gateway(shop) as address:
        yield address.url


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the test shop's gateway."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
async def redis_client(settings: Settings) -> AsyncIterator[redis.Redis]:
    """A plain client on the real Redis, for tests that build stores themselves."""
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def cache_redis(settings: Settings) -> AsyncIterator[redis.Redis]:
    """A client set up as the shop's caches set theirs (short timeouts, one retry), for
    tests of a cache on the real Redis: an outage is a quick error, not seconds of retries."""
    client = fast_fail_redis(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """A fresh in-memory span exporter for tests that build their own tracer provider."""
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()
