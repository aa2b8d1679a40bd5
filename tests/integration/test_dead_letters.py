"""Dead letters on the real Kafka, PostgreSQL and Elasticsearch: what a consumer gives up on
lands on ``<topic>.dlq`` without stalling its partition, and ``ecomctl events dlq`` lists and
replays it (the CLI is run as a user runs it, in a subprocess).

Every test has its own topics (uuid names), consumer names and index alias, and removes them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ecomctl.adapters.kafka.consumer import EventConsumer
from ecomctl.adapters.kafka.dlq import dlq_topic, read_dead_letters, replay_dead_letters
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.products import ProductRepository
from ecomctl.adapters.search import ProductSearchIndex
from ecomctl.config import Settings
from ecomctl.domain.events import ConsumedEvent
from ecomctl.errors import ValidationFailed
from ecomctl.services.consumers import SearchIndexer
from ecomctl.services.search import SearchService
from ecomctl.telemetry.spans import ServiceTracer
from tests.cli_runner import CliResult, run_ecomctl
from tests.kafka_scratch import KafkaScratch, consuming, processed_rows

IDLE_TIMEOUT_S = 20.0
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
async def scratch(settings: Settings, db: Database) -> AsyncIterator[KafkaScratch]:
    scratch = KafkaScratch(",".join(settings.kafka_bootstrap_servers), "it-dlq")
    yield scratch
    await scratch.clean_up(db)


def envelope(event_id: uuid.UUID, event_type: str = "order.placed",
             aggregate_id: str = "o-1") -> bytes:
    return json.dumps({
        "event_id": str(event_id), "event_type": event_type, "aggregate_type": "order",
        "aggregate_id": aggregate_id, "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {},
    }).encode()


def consumer_for(scratch: KafkaScratch, topic: str, handler: Any, db: Database,
                 **options: Any) -> EventConsumer:
    options = {"max_attempts": 3, "retry_backoff_s": 0.01, "max_backoff_s": 0.05, **options}
    return EventConsumer(scratch.consumer_name(), [topic], handler,
                         bootstrap=scratch.bootstrap, db=db, **options)


async def records_on(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        end: dict[TopicPartition, int] = await consumer.end_offsets([tp])
        begin: dict[TopicPartition, int] = await consumer.beginning_offsets([tp])
    finally:
        await consumer.stop()
    return end[tp] - begin[tp]


def ecomctl(*args: str) -> CliResult:
    """The CLI as a user runs it (the shop's topics without a prefix, like these tests')."""
    return run_ecomctl(*args, env={"ECOMCTL_KAFKA_TOPIC_PREFIX": "", "COLUMNS": "240"},
                       timeout=60)


def ecomctl_json(*args: str) -> dict[str, Any]:
    done = ecomctl(*args, "--json")
    assert done.exit_code == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- poison records ------------------------------------------------------------------------


async def test_an_undecodable_record_is_dead_lettered_at_once_and_the_partition_goes_on(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    before, after = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    await producer.send(topic, envelope(before), key=b"o-1")
    await producer.send(topic, b"\xffnot json", key=b"o-1", headers=[("traceparent",
                                                                       TRACEPARENT.encode())])
    for event_id in after:
        await producer.send(topic, envelope(event_id), key=b"o-1")
    await producer.flush()
    handled: list[uuid.UUID] = []

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        handled.append(event.event_id)

    consumer = consumer_for(scratch, topic, handler, db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert handled == [before, *after]  # the ones after the poison too, each once
    assert await processed_rows(db, consumer.name) == {before, *after}
    assert consumer.stats.malformed == 1 and consumer.stats.dead_lettered == 1
    assert consumer.stats.dead_lettered_by_topic == {topic: 1}
    [letter] = await read_dead_letters(scratch.bootstrap, [dlq_topic(topic)])
    row = letter.to_dict()
    assert (letter.key, letter.value) == (b"o-1", b"\xffnot json")
    assert row["error_type"] == "MalformedEvent" and row["retryable"] is False
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (topic, 0, 1)
    assert row["group"] == consumer.group_id and row["attempts"] == 1
    assert row["traceparent"] == TRACEPARENT  # the writer's trace continues


async def test_a_non_retryable_failure_in_a_batch_is_dead_lettered_once_the_rest_once_each(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    ids = [uuid.uuid4() for _ in range(10)]
    poison = ids[4]
    for event_id in ids:
        await producer.send(topic, envelope(event_id), key=b"o-1")
    await producer.flush()
    counter = f"it.dlq.{uuid.uuid4().hex[:10]}"
    scratch.counters.append(counter)
    calls: Counter[uuid.UUID] = Counter()

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        calls[event.event_id] += 1
        # A side effect in the event's transaction: a rolled-back batch leaves none.
        await conn.execute(
            "INSERT INTO analytics_counters (name, value) VALUES ($1, 1) ON CONFLICT (name) "
            "DO UPDATE SET value = analytics_counters.value + 1", counter)
        if event.event_id == poison:
            raise ValidationFailed("quantity must be positive")

    consumer = consumer_for(scratch, topic, handler, db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    # Its failure in the poll's batch was its one attempt: a rule says no again, no retry.
    assert calls[poison] == 1
    # The batch rolled back; its other events then went one by one, each committed once.
    assert consumer.stats.dead_lettered == 1 and consumer.stats.retries == 0
    assert await processed_rows(db, consumer.name) == set(ids) - {poison}
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT value FROM analytics_counters WHERE name = $1",
                                   counter) == 9
    [letter] = await read_dead_letters(scratch.bootstrap, [dlq_topic(topic)])
    assert letter.to_dict()["error_type"] == "ValidationFailed"
    assert letter.event_id == str(poison) and letter.to_dict()["attempts"] == 1


# -- retryable failures --------------------------------------------------------------------


class CarrierBusy(Exception):
    """A third party's passing refusal: worth retrying. (Not an OSError or TimeoutError:
    raised inside the transaction, the database adapter takes those for PostgreSQL's.)"""


async def test_a_transient_failure_is_retried_and_processed_once_not_dead_lettered(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    event_id = uuid.uuid4()
    await producer.send_and_wait(topic, envelope(event_id), key=b"o-1")
    calls = 0

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise CarrierBusy("the carrier did not answer")

    consumer = consumer_for(scratch, topic, handler, db, max_attempts=3)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert calls == 3 and consumer.stats.retries == 2
    assert consumer.stats.processed == 1 and consumer.stats.dead_lettered == 0
    assert await processed_rows(db, consumer.name) == {event_id}
    assert await read_dead_letters(scratch.bootstrap, [dlq_topic(topic)]) == []


async def test_a_failure_that_never_ends_is_dead_lettered_after_n_attempts_with_its_headers(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    stuck, next_one = uuid.uuid4(), uuid.uuid4()
    original_headers = [("traceparent", TRACEPARENT.encode()), ("event_type", b"order.placed")]
    # A copy: once tracing is on, aiokafka's instrumentation appends its own traceparent to
    # the list it is given.
    await producer.send(topic, envelope(stuck), key=b"o-7", headers=list(original_headers))
    await producer.send(topic, envelope(next_one), key=b"o-7")
    await producer.flush()
    calls: Counter[uuid.UUID] = Counter()

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        calls[event.event_id] += 1
        if event.event_id == stuck:
            raise CarrierBusy("the carrier is busy")

    started = datetime.now(UTC)
    consumer = consumer_for(scratch, topic, handler, db, max_attempts=4)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert calls[stuck] == 4 and calls[next_one] >= 1
    assert consumer.stats.dead_lettered == 1 and consumer.stats.failed == 1
    assert await processed_rows(db, consumer.name) == {next_one}
    [letter] = await read_dead_letters(scratch.bootstrap, [dlq_topic(topic)])
    row = letter.to_dict()
    assert letter.key == b"o-7"
    assert json.loads(letter.value or b"")["event_id"] == str(stuck)
    assert letter.headers[:2] == tuple(original_headers)  # the original headers, first
    assert row["error_type"] == "CarrierBusy"
    assert row["error_message"] == "the carrier is busy"
    assert row["retryable"] is True and row["attempts"] == 4
    assert row["traceparent"] == TRACEPARENT
    assert row["group"] == consumer.group_id and row["source_offset"] == 0
    first_failure = datetime.fromisoformat(row["first_failure"])
    assert started <= first_failure <= datetime.fromisoformat(row["dead_lettered_at"])


async def test_a_handler_whose_own_call_times_out_spends_its_attempts_then_dead_letters(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    """A TimeoutError of the handler's own (its call to a third party), raised while its
    PostgreSQL connection is fine, is the handler's failure: it spends attempts and reaches
    the dead-letter topic. (It used to read as "PostgreSQL unavailable", retried for ever.)"""
    topic = await scratch.topic()
    slow = uuid.uuid4()
    await producer.send_and_wait(topic, envelope(slow), key=b"o-9")
    calls: Counter[uuid.UUID] = Counter()

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        calls[event.event_id] += 1
        assert await conn.fetchval("SELECT 1") == 1  # the database answers
        await asyncio.wait_for(asyncio.sleep(1), timeout=0.01)  # the third party does not

    consumer = consumer_for(scratch, topic, handler, db, max_attempts=3)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)

    assert calls[slow] == 3 and consumer.stats.infra_retries == 0
    assert consumer.stats.dead_lettered == 1
    [letter] = await read_dead_letters(scratch.bootstrap, [dlq_topic(topic)])
    row = letter.to_dict()
    assert row["error_type"] == "TimeoutError" and row["attempts"] == 3


# -- replay ---------------------------------------------------------------------------------


@pytest.fixture
async def product(db: Database) -> AsyncIterator[int]:
    slug = f"t-dlq-{uuid.uuid4().hex[:10]}"
    async with db.transaction() as conn:
        category = await conn.fetchval(
            "INSERT INTO categories (slug, name) VALUES ($1, $2) RETURNING id", slug, slug)
        product_id: int = await conn.fetchval(
            "INSERT INTO products (sku, name, description, category_id, price) "
            "VALUES ($1, $2, 'a dead letter test', $3, 12.50) RETURNING id",
            f"{slug}-1", f"{slug} kettle", category)
    yield product_id
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM products WHERE id = $1", product_id)
        await conn.execute("DELETE FROM categories WHERE id = $1", category)


@pytest.fixture
async def search_index(settings: Settings) -> AsyncIterator[ProductSearchIndex]:
    index = ProductSearchIndex.from_url(settings.elasticsearch_url,
                                        alias=f"it-dlq-{uuid.uuid4().hex[:10]}")
    yield index
    await index._client.indices.delete(index=index.index_name, ignore_unavailable=True)
    await index.close()


async def test_an_elasticsearch_rejection_is_dead_lettered_then_replayed_once_after_the_fix(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch, product: int,
    search_index: ProductSearchIndex,
) -> None:
    # The cause: an index whose mapping refuses every field but product_id (HTTP 400).
    await search_index._client.indices.create(
        index=search_index.index_name, aliases={search_index.alias: {}},
        mappings={"dynamic": "strict", "properties": {"product_id": {"type": "long"}}})
    topic = await scratch.topic()
    changed, unrelated = uuid.uuid4(), uuid.uuid4()
    await producer.send(topic, envelope(changed, "product.changed", str(product)),
                        key=str(product).encode(),
                        headers=[("traceparent", TRACEPARENT.encode())])
    await producer.send(topic, envelope(unrelated, "product.viewed", str(product)),
                        key=str(product).encode())
    await producer.flush()
    indexer = SearchIndexer(ProductRepository(db), SearchService(search_index,
                                                                 ServiceTracer("search")))
    consumer = consumer_for(scratch, topic, indexer, db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)  # no stall on the 4xx
        assert consumer.stats.dead_lettered == 1 and consumer.stats.retries == 0
        assert await processed_rows(db, consumer.name) == {unrelated}

        listed = ecomctl_json("events", "dlq", "list", "--topic", topic)
        [row] = listed["dead_letters"]
        assert row["error_type"] == "RequestRejected" and row["retryable"] is False
        assert "strict_dynamic_mapping_exception" in row["error_message"]
        assert row["event_id"] == str(changed) and row["event_type"] == "product.changed"
        assert (row["source_topic"], row["source_offset"], row["replayed"]) == (topic, 0, False)
        assert row["traceparent"] == TRACEPARENT

        await search_index.recreate()  # the fix: the index with its real mapping
        replayed = ecomctl_json("events", "dlq", "replay", "--topic", topic,
                                "--offset", str(row["offset"]))
        assert [r["event_id"] for r in replayed["replayed"]] == [str(changed)]
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
        assert await processed_rows(db, consumer.name) == {changed, unrelated}
        await search_index.refresh()
        assert await search_index.count() == 1

        again = ecomctl_json("events", "dlq", "replay", "--topic", topic, "--all")
        assert again["replayed"] == [] and len(again["already_replayed"]) == 1
        assert await records_on(scratch.bootstrap, topic) == 3  # 2 + one replay, not two
        assert consumer.stats.dead_lettered == 1

    [after] = ecomctl_json("events", "dlq", "list", "--topic", dlq_topic(topic))["dead_letters"]
    assert after["replayed"] is True
    table = ecomctl("events", "dlq", "list", "--topic", topic)
    assert table.exit_code == 0 and "RequestRejected" in table.stdout, table.stdout
    missing = ecomctl("events", "dlq", "replay", "--topic", topic, "--offset", "99")
    assert missing.exit_code == 2 and "99" in missing.stderr


async def test_a_replayed_event_that_was_processed_meanwhile_is_absorbed(
    db: Database, producer: AIOKafkaProducer, scratch: KafkaScratch
) -> None:
    topic = await scratch.topic()
    event_id = uuid.uuid4()
    await producer.send_and_wait(topic, envelope(event_id), key=b"o-1")
    calls = 0

    async def handler(event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValidationFailed("refused the first time only")

    consumer = consumer_for(scratch, topic, handler, db)
    async with consuming(consumer):
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
        assert consumer.stats.dead_lettered == 1
        # The same event comes again (the outbox relay's redelivery) and is processed...
        await producer.send_and_wait(topic, envelope(event_id), key=b"o-1")
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
        assert calls == 2 and consumer.stats.processed == 1
        # ...so replaying its dead letter changes nothing.
        report = await replay_dead_letters(scratch.bootstrap, dlq_topic(topic))
        assert len(report.replayed) == 1
        assert await consumer.wait_until_idle(IDLE_TIMEOUT_S)
    assert calls == 2 and consumer.stats.duplicates == 1 and consumer.stats.processed == 1
    assert await processed_rows(db, consumer.name) == {event_id}
