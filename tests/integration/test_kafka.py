from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ecomctl.config import Settings


async def test_message_produced_and_consumed_on_a_fresh_topic(settings: Settings) -> None:
    bootstrap = ",".join(settings.kafka_bootstrap_servers)
    topic = f"it-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            topic, b'{"order_id": "o-1"}', key=b"o-1", headers=[("x-ecom-test", b"o-1")]
        )
    finally:
        await producer.stop()
    assert meta.topic == topic and meta.offset == 0

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"it-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert record.key == b"o-1"
    assert record.value == b'{"order_id": "o-1"}'
    assert ("x-ecom-test", b"o-1") in list(record.headers)
