"""Kafka through aiokafka alone, for ``ecomctl bench``'s consumer floor: event envelopes
written to a scratch topic, and a bare consumer reading them back as fast as it can."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def produce_events(bootstrap: str, topic: str, count: int, event_type: str,
                         partitions: int) -> None:
    """``count`` event envelopes on ``topic``, keyed by aggregate, as the relay writes them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await _leaders_elected(producer, topic, partitions)
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


async def _leaders_elected(producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
    """A new topic's partitions have no leader for a moment; sending then only logs
    NotLeaderForPartition retries."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        await producer.client.force_metadata_update()
        cluster = producer.client.cluster
        known = cluster.partitions_for_topic(topic) or set()
        if len(known) == partitions and all(
            (cluster.leader_for_partition(TopicPartition(topic, p)) or -1) >= 0
            for p in known
        ):
            return
        await asyncio.sleep(0.1)


async def bare_consume(bootstrap: str, topic: str, count: int, group: str,
                       timeout_s: float) -> tuple[int, float]:
    """The floor: a bare consumer polls, decodes each record's JSON and commits once per
    poll. (Events read after the first poll, the seconds they took): joining the group and
    the first poll are not counted. ``TimeoutError`` when ``count`` never arrive."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=200)
    await consumer.start()
    try:
        seen, first, started = 0, 0, 0.0
        deadline = time.monotonic() + timeout_s
        while seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"aiokafka read {seen} of {count} events")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
            if batches:
                await consumer.commit()
                if not first:
                    first, started = seen, time.perf_counter()
        return count - first, time.perf_counter() - started
    finally:
        await consumer.stop()
