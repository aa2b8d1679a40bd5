"""Outbox relay -> Kafka -> idempotent consumer, on the real PostgreSQL and Kafka.

Isolation: other sessions may run an outbox relay against the same database at any time,
and an unfiltered relay would publish this module's rows. So the module writes to a private
copy of the ``outbox`` table, in its own schema put first on the pool's ``search_path`` (same
SQL, same real PostgreSQL); ``processed_events`` stays shared, under unique consumer names.
Every test uses its own topics and removes its rows and topics afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ecomctl.adapters.kafka import (
    ConsumedEvent,
    EventConsumer,
    OutboxRelay,
    ensure_topics,
)
from ecomctl.adapters.postgres.analytics import PostgresAnalytics
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.migrations import MigrationReport
from ecomctl.adapters.postgres.outbox import add_events
from ecomctl.config import Settings
from ecomctl.domain.events import DomainEvent, new_event
from ecomctl.errors import InvalidTransition
from ecomctl.services.consumers import AnalyticsCounter
from ecomctl.telemetry.spans import ServiceTracer
from tests.kafka_scratch import KafkaScratch, consuming, processed_rows

IDLE_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
async def outbox_schema(settings: Settings, migrated: MigrationReport) -> AsyncIterator[str]:
    schema = f"it_outbox_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            f"CREATE SCHEMA {schema}; "
            f"CREATE TABLE {schema}.outbox (LIKE public.outbox INCLUDING ALL)"
        )
    finally:
        await conn.close()
    yield schema
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


async def private_outbox_db(settings: Settings, schema: str, max_size: int = 8) -> Database:
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=max_size,
        server_settings={"search_path": f"{schema}, public"},
    )
    return Database(pool)


@pytest.fixture(scope="module")
async def db(settings: Settings, outbox_schema: str) -> AsyncIterator[Database]:
    """Replaces the shared ``db`` (conftest.py) here: the relays under test must see only
    this module's outbox, not the rows the running shop and other tests write."""
    database = await private_outbox_db(settings, outbox_schema)
    yield database
    await database.close()


@pytest.fixture(scope="module")
def bootstrap(settings: Settings) -> str:
    return ",".join(settings.kafka_bootstrap_servers)


@pytest.fixture
async def scratch(db: Database, bootstrap: str) -> AsyncIterator[KafkaScratch]:
    scratch = KafkaScratch(bootstrap, "it-order-events", partitions=3)
    yield scratch
    await scratch.clean_up(db)


class Recorder:
    """A handler that remembers what it was given."""

    def __init__(self) -> None:
        self.events: list[ConsumedEvent] = []

    async def __call__(self, event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        self.events.append(event)


async def write_events(
    db: Database, topic: str, count: int, aggregates: int = 10
) -> list[DomainEvent]:
    events = [
        new_event("order.placed", topic, "order", f"o-{i % aggregates}", seq=i)
        for i in range(count)
    ]
    async with db.transaction() as conn:
        await add_events(conn, events)
    return events


async def unpublished(db: Database, topic: str) -> int:
    async with db.connection() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND published_at IS NULL", topic
        )
    return int(count)


async def eventually(
    probe: Callable[[], Awaitable[int]], expected: int, timeout_s: float = 10.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (value := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value}, not {expected}"
        await asyncio.sleep(0.05)


def envelope(event_id: uuid.UUID, seq: int = 0, aggregate_id: str = "o-1",
             event_type: str = "order.placed", payload: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        {
            "event_id": str(event_id),
            "event_type": event_type,
            "aggregate_type": "order",
            "aggregate_id": aggregate_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "payload": payload if payload is not None else {"seq": seq},
        }
    ).encode()


async def test_hundred_events_are_consumed_exactly_once_in_aggregate_order(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    assert await ensure_topics(scratch.bootstrap, [topic]) == []  # idempotent
    events = await write_events(db, topic, 100)
    elsewhere = f"it-order-events-{uuid.uuid4().hex[:12]}"  # never created on Kafka
    scratch.topics.append(elsewhere)
    await write_events(db, elsewhere, 5)

    relay = OutboxRelay(db, producer, topics=[topic])
    await relay.drain(timeout_s=15)
    assert relay.stats.published == 100 and relay.stats.failures == 0
    assert await unpublished(db, topic) == 0
    assert await unpublished(db, elsewhere) == 5  # the topics filter

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(name, [topic], recorder, bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    seen = Counter(e.event_id for e in recorder.events)
    assert set(seen) == {e.event_id for e in events}
    assert max(seen.values()) == 1
    assert consumer.stats.processed == 100 and consumer.stats.duplicates == 0
    assert await processed_rows(db, name) == {e.event_id for e in events}

    # Key = aggregate id: one order's events share a partition and arrive in order.
    by_aggregate: dict[str, list[int]] = {}
    partitions: dict[str, set[int]] = {}
    for event in recorder.events:
        by_aggregate.setdefault(event.aggregate_id, []).append(event.payload["seq"])
        partitions.setdefault(event.aggregate_id, set()).add(event.partition)
    assert all(seqs == sorted(seqs) for seqs in by_aggregate.values())
    assert all(len(p) == 1 for p in partitions.values())

    first = recorder.events[0]
    assert first.header("event_id") == str(first.event_id).encode()
    assert first.header("event_type") == b"order.placed"
    assert first.aggregate_type == "order" and first.topic == topic
    assert first.occurred_at.tzinfo is not None and first.publish_lag_s >= 0


async def test_relay_restarted_and_crashing_after_ack_still_gives_exactly_once(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    events = await write_events(db, topic, 100)

    first = OutboxRelay(db, producer, batch_size=30, topics=[topic])
    assert await first.run_once() == 30
    assert await first.run_once() == 30
    assert await unpublished(db, topic) == 40

    # A relay that dies after the broker acked but before marking the rows published: the
    # 30 messages are on Kafka, the rows stay unpublished and will be sent again.
    class AckThenCrash(AIOKafkaProducer):  # type: ignore[misc]
        async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            acked = await super().send(*args, **kwargs)

            async def crash_after_ack() -> Any:
                await acked
                raise RuntimeError("relay crashed after the ack")

            return asyncio.ensure_future(crash_after_ack())

    crashing_producer = AckThenCrash(bootstrap_servers=scratch.bootstrap, acks="all")
    await crashing_producer.start()
    try:
        crashing = OutboxRelay(db, crashing_producer, batch_size=30, topics=[topic])
        with pytest.raises(RuntimeError, match="after the ack"):
            await crashing.run_once()
    finally:
        await crashing_producer.stop()
    assert await unpublished(db, topic) == 40

    restarted = OutboxRelay(db, producer, batch_size=30, topics=[topic])
    await restarted.drain(timeout_s=15)
    assert restarted.stats.published == 40
    assert await unpublished(db, topic) == 0

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(name, [topic], recorder, bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    seen = Counter(e.event_id for e in recorder.events)
    assert set(seen) == {e.event_id for e in events} and max(seen.values()) == 1
    assert consumer.stats.processed == 100
    assert consumer.stats.duplicates == 30  # the crashed batch, delivered twice
    assert await processed_rows(db, name) == {e.event_id for e in events}


async def test_two_concurrent_relays_never_publish_the_same_row(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    events = await write_events(db, topic, 200)

    relays = [OutboxRelay(db, producer, batch_size=20, topics=[topic]) for _ in range(2)]
    await asyncio.gather(*(relay.drain(timeout_s=15) for relay in relays))
    assert all(relay.stats.published > 0 for relay in relays)  # both really worked
    assert sum(relay.stats.published for relay in relays) == 200

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(name, [topic], recorder, bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
    # SKIP LOCKED: 200 rows, 200 messages on Kafka, not one of them sent twice.
    assert consumer.stats.processed == 200 and consumer.stats.duplicates == 0
    assert {e.event_id for e in recorder.events} == {e.event_id for e in events}


async def test_relay_loop_survives_kafka_and_postgres_failures(
    db: Database, settings: Settings, outbox_schema: str, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()

    class FlakyProducer(AIOKafkaProducer):  # type: ignore[misc]
        """A real producer with injected faults: the first sends fail as if the broker were
        unreachable; ``kill_pid`` terminates that PostgreSQL backend during a send."""

        failures_left = 2
        kill_pid: int | None = None

        async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            if self.failures_left:
                self.failures_left -= 1
                raise KafkaConnectionError("broker unreachable (injected)")
            if self.kill_pid is not None:
                pid, self.kill_pid = self.kill_pid, None
                async with db.connection() as conn:
                    assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            sent: asyncio.Future[Any] = await super().send(*args, **kwargs)
            return sent

    relay_db = await private_outbox_db(settings, outbox_schema, max_size=1)
    flaky = FlakyProducer(bootstrap_servers=scratch.bootstrap, acks="all")
    await flaky.start()
    relay = OutboxRelay(relay_db, flaky, topics=[topic], max_backoff_s=0.2)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(relay.run(stop))
    try:
        await write_events(db, topic, 10)
        await eventually(lambda: unpublished(db, topic), 0)
        assert relay.stats.failures == 2
        assert relay.stats.last_error is not None and "injected" in relay.stats.last_error

        # PostgreSQL drops the relay's connection in the middle of a batch: the batch rolls
        # back, is published again on a fresh connection, and the loop carries on.
        async with relay_db.connection() as conn:
            flaky.kill_pid = conn.get_server_pid()
        await write_events(db, topic, 10)
        await eventually(lambda: unpublished(db, topic), 0)
        assert flaky.kill_pid is None
        assert relay.stats.failures == 3
        assert "postgres" in relay.stats.last_error
        assert relay.stats.published == 20
        assert not loop_task.done()
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 5)  # run() returns cleanly, it never raised
        await flaky.stop()
        await relay_db.close()


async def test_duplicate_kafka_delivery_is_processed_once(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    event_id = uuid.uuid4()
    for _ in range(2):
        await producer.send_and_wait(topic, envelope(event_id), key=b"o-1")

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(name, [topic], recorder, bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert [e.event_id for e in recorder.events] == [event_id]
    assert consumer.stats.processed == 1 and consumer.stats.duplicates == 1
    assert await processed_rows(db, name) == {event_id}


async def test_consumer_span_continues_the_trace_that_wrote_the_event(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("it-outbox")
    topic = await scratch.topic()
    event = new_event("order.placed", topic, "order", "o-traced", seq=1)

    with ServiceTracer("order", tracer).span("order.place") as write_span:
        async with db.transaction() as conn:
            await add_events(conn, [event])
    written = write_span.get_span_context()

    relay = OutboxRelay(db, producer, topics=[topic], tracer=ServiceTracer("outbox", tracer))
    await relay.drain(timeout_s=15)

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(
        name, [topic], recorder, bootstrap=scratch.bootstrap, db=db,
        tracer=ServiceTracer("shipment", tracer),
    )
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
    assert [e.event_id for e in recorder.events] == [event.event_id]
    assert recorder.events[0].header("traceparent") is not None

    spans = exporter.get_finished_spans()
    [process] = [s for s in spans if s.name == f"process {topic}"]
    assert process.kind == SpanKind.CONSUMER
    assert process.context is not None and process.parent is not None
    assert process.context.trace_id == written.trace_id
    assert process.parent.span_id == written.span_id
    attributes = dict(process.attributes or {})
    received = recorder.events[0]
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.name"] == topic
    assert attributes["messaging.consumer.group.name"] == name
    assert attributes["messaging.message.id"] == str(event.event_id)
    assert attributes["messaging.kafka.offset"] == received.offset
    assert "messaging.kafka.message.offset" not in attributes  # deprecated name
    assert attributes["messaging.destination.partition.id"] == str(received.partition)

    # The relay's batch span is its own trace, linked to the trace that wrote the event.
    [publish] = [s for s in spans if s.name == "outbox.publish"]
    assert publish.parent is None and publish.context is not None
    assert publish.context.trace_id != written.trace_id
    assert dict(publish.attributes or {})["messaging.batch.message_count"] == 1
    assert [link.context.span_id for link in publish.links] == [written.span_id]


async def test_malformed_messages_are_counted_and_skipped(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    good = uuid.uuid4()
    await producer.send_and_wait(topic, b"not json at all", key=b"o-1")
    await producer.send_and_wait(topic, b'{"event_id": "not-a-uuid"}', key=b"o-1")
    await producer.send_and_wait(topic, envelope(good), key=b"o-1")

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(name, [topic], recorder, bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert consumer.stats.malformed == 2
    assert consumer.stats.processed == 1
    assert [e.event_id for e in recorder.events] == [good]
    assert await processed_rows(db, name) == {good}


async def test_failing_handler_is_retried_then_skipped_without_blocking_the_partition(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    poison, good = uuid.uuid4(), uuid.uuid4()
    await producer.send_and_wait(topic, envelope(poison, seq=1), key=b"o-1")
    await producer.send_and_wait(topic, envelope(good, seq=2), key=b"o-1")

    attempts: Counter[uuid.UUID] = Counter()
    handled: list[uuid.UUID] = []

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        attempts[event.event_id] += 1
        # Proves the handler shares the dedupe row's transaction: it sees the row...
        assert await conn.fetchval(
            "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2",
            name, event.event_id,
        ) == 1
        if event.event_id == poison:
            raise RuntimeError("handler bug")  # ...and the rollback removes it again
        handled.append(event.event_id)

    name = scratch.consumer_name()
    consumer = EventConsumer(
        name, [topic], handler, bootstrap=scratch.bootstrap, db=db,
        max_attempts=3, retry_backoff_s=0.01,
    )
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert attempts[poison] == 3
    assert consumer.stats.failed == 1 and consumer.stats.retries == 2
    assert handled == [good] and consumer.stats.processed == 1
    assert await processed_rows(db, name) == {good}
    assert consumer.stats.last_error is not None and "handler bug" in consumer.stats.last_error


async def test_a_backlog_is_processed_in_few_transactions_each_event_once(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    ids = [uuid.uuid4() for _ in range(60)]
    for seq, event_id in enumerate(ids):
        await producer.send(topic, envelope(event_id, seq=seq), key=b"o-1")
    await producer.send_and_wait(topic, envelope(ids[7], seq=7), key=b"o-1")  # a redelivery
    await producer.flush()

    name = scratch.consumer_name()
    recorder = Recorder()
    consumer = EventConsumer(name, [topic], recorder, bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert [e.event_id for e in recorder.events] == ids  # once each, in partition order
    assert consumer.stats.processed == 60 and consumer.stats.duplicates == 1
    async with db.connection() as conn:
        # Rows written by one transaction share its xmin: a poll's batch is one commit.
        transactions = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM processed_events WHERE consumer = $1", name
        )
    assert 1 <= transactions <= 6, transactions


async def test_stopping_right_after_processing_leaves_every_offset_committed(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    """A poll's offset commit runs while the next poll is processed: stop() must still
    leave every processed record committed, or a restart would process a poll again."""
    topic = await scratch.topic(partitions=3)
    kind = f"it.{uuid.uuid4().hex[:8]}"  # its own analytics counter, removed below
    for seq in range(300):
        await producer.send(topic, envelope(uuid.uuid4(), seq=seq, event_type=kind),
                            key=f"o-{seq}".encode())
    await producer.flush()

    name = scratch.consumer_name()
    consumer = EventConsumer(name, [topic], AnalyticsCounter(PostgresAnalytics()),
                             bootstrap=scratch.bootstrap, db=db, max_poll_records=50)
    async with consuming(consumer):
        async with asyncio.timeout(IDLE_TIMEOUT_S):
            while consumer.stats.processed < 300:
                await asyncio.sleep(0)
    # Stopped at once, not idle: stop() itself must settle the commit still in flight.

    reader = AIOKafkaConsumer(bootstrap_servers=scratch.bootstrap, group_id=name,
                              enable_auto_commit=False)
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        ends = await reader.end_offsets(partitions)
        committed = {tp: await reader.committed(tp) for tp in partitions}
    finally:
        await reader.stop()
    async with db.connection() as conn:
        counted = await conn.fetchval(
            "DELETE FROM analytics_counters WHERE name = $1 RETURNING value", f"events.{kind}")
    assert committed == ends and sum(ends.values()) == 300 and counted == 300


async def test_analytics_folds_a_batch_into_one_upsert_with_the_same_totals(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    kind, currency = f"it.{uuid.uuid4().hex[:8]}", f"T{uuid.uuid4().hex[:6]}"
    ids = [uuid.uuid4() for _ in range(30)]
    for seq, event_id in enumerate(ids):
        await producer.send(topic, envelope(event_id, seq=seq, event_type=kind), key=b"o-1")
    amounts = ["10.05", "0.99", "120.00"]
    for amount in amounts:
        await producer.send(topic, envelope(uuid.uuid4(), event_type="payment.captured",
                                            payload={"amount": amount, "currency": currency}),
                            key=b"o-2")
    await producer.send_and_wait(topic, envelope(ids[3], seq=3, event_type=kind), key=b"o-1")

    name = scratch.consumer_name()
    consumer = EventConsumer(name, [topic], AnalyticsCounter(PostgresAnalytics()),
                             bootstrap=scratch.bootstrap, db=db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert consumer.stats.processed == 33 and consumer.stats.duplicates == 1
    async with db.connection() as conn:
        # Batched: the 33 events were claimed in a few transactions, not one each.
        transactions = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM processed_events WHERE consumer = $1", name
        )
        assert 1 <= transactions <= 6, transactions
        counters = dict(await conn.fetch(
            "SELECT name, value FROM analytics_counters WHERE name = ANY($1::text[])",
            [f"events.{kind}", f"revenue_cents.{currency}"]))
        await conn.execute("DELETE FROM analytics_counters WHERE name = ANY($1::text[])",
                           list(counters))
    assert counters == {f"events.{kind}": 30, f"revenue_cents.{currency}": 1005 + 99 + 12000}


async def test_analytics_claims_and_counts_a_poll_in_one_statement_each_event_once(
    db: Database,
) -> None:
    """The analytics consumer's batch path: no transaction of its own, one statement per
    call, and an event seen again (a redelivery in a later poll) adds nothing."""
    store, consumer = PostgresAnalytics(), f"it-{uuid.uuid4().hex[:8]}"
    counter = f"events.it.{uuid.uuid4().hex[:8]}"
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query)

    async with db.connection() as conn:
        conn.add_query_logger(log)
        first = await store.add_new(conn, consumer, [a, b], [(a, counter, 1), (b, counter, 1)])
        again = await store.add_new(conn, consumer, [a, c], [(a, counter, 1), (c, counter, 1)])
        await asyncio.sleep(0)  # asyncpg calls query loggers with call_soon
        conn.remove_query_logger(log)
        value = await conn.fetchval("SELECT value FROM analytics_counters WHERE name = $1",
                                    counter)
        await conn.execute("DELETE FROM analytics_counters WHERE name = $1", counter)
        await conn.execute("DELETE FROM processed_events WHERE consumer = $1", consumer)
    assert first == {a, b} and again == {c} and value == 3
    # (asyncpg's one-off type introspection aside) two statements, no BEGIN/COMMIT
    work = [q for q in sent if "pg_catalog" not in q and "current_setting" not in q]
    assert len(work) == 2 and all("WITH claimed AS" in q for q in work), work


async def test_a_failing_handler_in_a_batch_costs_the_others_a_retry_not_their_event(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    ids = [uuid.uuid4() for _ in range(10)]
    poison = ids[5]
    for seq, event_id in enumerate(ids):
        await producer.send(topic, envelope(event_id, seq=seq), key=b"o-1")
    await producer.flush()
    attempts: Counter[uuid.UUID] = Counter()

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        attempts[event.event_id] += 1
        await conn.execute("SELECT 1")
        if event.event_id == poison:
            raise RuntimeError("handler bug")

    name = scratch.consumer_name()
    consumer = EventConsumer(name, [topic], handler, bootstrap=scratch.bootstrap, db=db,
                             max_attempts=3, retry_backoff_s=0.01)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    # The batch's failure was the poison's first attempt; two more followed, record by record.
    assert attempts[poison] == 3 and consumer.stats.failed == 1
    assert consumer.stats.processed == 9
    assert await processed_rows(db, name) == set(ids) - {poison}


async def test_database_dropping_the_connection_is_retried_not_counted_as_poison(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    event_id = uuid.uuid4()
    await producer.send_and_wait(topic, envelope(event_id), key=b"o-1")
    calls = 0

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # PostgreSQL kills the session in the middle of the transaction
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    name = scratch.consumer_name()
    # One attempt only: were the lost connection taken for a bad message, it would be dropped.
    consumer = EventConsumer(
        name, [topic], handler, bootstrap=scratch.bootstrap, db=db,
        max_attempts=1, retry_backoff_s=0.01,
    )
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert calls == 2
    assert consumer.stats.infra_retries == 1 and consumer.stats.failed == 0
    assert consumer.stats.processed == 1
    assert await processed_rows(db, name) == {event_id}


async def test_business_rejection_is_not_retried(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic(partitions=1)
    await producer.send_and_wait(topic, envelope(uuid.uuid4()), key=b"o-1")
    calls = 0

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        raise InvalidTransition("cancelled", "shipped")

    consumer = EventConsumer(
        scratch.consumer_name(), [topic], handler, bootstrap=scratch.bootstrap, db=db,
        max_attempts=3, retry_backoff_s=0.01,
    )
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
    assert calls == 1 and consumer.stats.failed == 1 and consumer.stats.retries == 0
