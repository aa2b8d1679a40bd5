"""The consumer floor: how fast aiokafka alone reads a topic, against ecomctl's consumer
processing the same events.

A scratch topic (three partitions, like the shop's) gets ``count`` event envelopes. The floor
is a bare ``AIOKafkaConsumer`` that polls, decodes each record's JSON and commits the offsets
once per poll, in a consumer group of its own. ecomctl's figure is ``EventConsumer`` with the
analytics handler on the same records in another group: a transaction per partition and
poll, the bulk ``processed_events`` claim, the folded counter upsert, and its spans exported
as the shop exports them. Both clocks start once the first poll's records are done and count
only the records after them, so joining the group is not counted on either side.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ecomctl.adapters.kafka.consumer import EventConsumer
from ecomctl.adapters.kafka.topics import delete_topics, ensure_topics
from ecomctl.adapters.postgres.analytics import PostgresAnalytics
from ecomctl.adapters.postgres.database import Database
from ecomctl.bench.commands import BenchFailed
from ecomctl.config import Settings
from ecomctl.services.consumers import AnalyticsCounter
from ecomctl.telemetry.setup import Telemetry

PARTITIONS = 3
TIMEOUT_S = 120.0


class ConsumerBenchFailed(BenchFailed):
    """The consumer rates could not be measured."""


async def consumer_rates(settings: Settings, count: int) -> tuple[float, float]:
    """(raw aiokafka events/s, ecomctl EventConsumer events/s) over ``count`` events."""
    bootstrap = ",".join(settings.kafka_bootstrap_servers)
    run = uuid.uuid4().hex[:8]
    topic = f"{settings.kafka_topic_prefix}bench-consumer-{run}"
    await ensure_topics(bootstrap, [topic], partitions=PARTITIONS)
    try:
        await _produce(bootstrap, topic, count, event_type=f"bench.{run}")
        raw = await _raw_rate(bootstrap, topic, count, group=f"bench-raw-{run}")
        own = await _ecomctl_rate(settings, bootstrap, topic, count, name=f"bench-{run}")
    finally:
        await delete_topics(bootstrap, [topic])
    return raw, own


async def _produce(bootstrap: str, topic: str, count: int, event_type: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await _leaders_elected(producer, topic)
        now = datetime.now(UTC).isoformat()
        for i in range(count):
            aggregate = f"o-{i % 500}"
            envelope = {"event_id": str(uuid.uuid4()), "event_type": event_type,
                        "aggregate_type": "order", "aggregate_id": aggregate,
                        "occurred_at": now, "payload": {"seq": i}}
            await producer.send(topic, json.dumps(envelope).encode(), key=aggregate.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _leaders_elected(producer: AIOKafkaProducer, topic: str) -> None:
    """A new topic's partitions have no leader for a moment; sending then only logs
    NotLeaderForPartition retries."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        await producer.client.force_metadata_update()
        cluster = producer.client.cluster
        partitions = cluster.partitions_for_topic(topic) or set()
        if len(partitions) == PARTITIONS and all(
            (cluster.leader_for_partition(TopicPartition(topic, p)) or -1) >= 0
            for p in partitions
        ):
            return
        await asyncio.sleep(0.1)


async def _raw_rate(bootstrap: str, topic: str, count: int, group: str) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=200)
    await consumer.start()
    try:
        seen, first, started = 0, 0, 0.0
        deadline = time.monotonic() + TIMEOUT_S
        while seen < count:
            if time.monotonic() > deadline:
                raise ConsumerBenchFailed(f"aiokafka read {seen} of {count} events")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
            if batches:
                await consumer.commit()
                if not first:
                    first, started = seen, time.perf_counter()
        return _rate(count - first, started)
    finally:
        await consumer.stop()


async def _ecomctl_rate(
    settings: Settings, bootstrap: str, topic: str, count: int, name: str
) -> float:
    telemetry = Telemetry(settings)
    db = await Database.connect(settings.database_url, min_size=1, max_size=PARTITIONS + 1)
    consumer = EventConsumer(name, [topic], AnalyticsCounter(PostgresAnalytics()),
                             bootstrap=bootstrap, db=db, tracer=telemetry.tracer("analytics"))
    try:
        await consumer.start()
        consumer.start_background()
        first, started = 0, 0.0
        deadline = time.monotonic() + TIMEOUT_S
        while consumer.stats.processed < count:
            if time.monotonic() > deadline:
                raise ConsumerBenchFailed(f"EventConsumer processed {consumer.stats.processed} "
                                          f"of {count} events ({consumer.stats.last_error})")
            if not first and consumer.stats.processed:
                first, started = consumer.stats.processed, time.perf_counter()
            await asyncio.sleep(0.005)
        return _rate(count - first, started)
    finally:
        await consumer.stop()
        async with db.connection() as conn:
            await conn.execute("DELETE FROM processed_events WHERE consumer = $1", name)
        await db.close()
        telemetry.shutdown()


def _rate(events: int, started: float) -> float:
    elapsed = time.perf_counter() - started
    if events <= 0 or elapsed <= 0:
        raise ConsumerBenchFailed("the first poll held every event: use more events")
    return events / elapsed
