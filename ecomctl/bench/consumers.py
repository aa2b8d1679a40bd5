"""The consumer floor: how fast aiokafka alone reads a topic, against ecomctl's consumer
processing the same events.

A scratch topic (three partitions, like the shop's) gets ``count`` event envelopes. The floor
is a bare ``AIOKafkaConsumer`` that polls, decodes each record's JSON and commits the offsets
once per poll, in a consumer group of its own. ecomctl's figure is ``EventConsumer`` with the
analytics handler on the same records in another group: per partition and poll, one
statement that claims the events in ``processed_events`` and adds the new ones' counts, and
its spans exported as the shop exports them. Both clocks start once the first poll's records
are done and count only the records after them, so joining the group is not counted on
either side.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from ecomctl.adapters.kafka.bare_consumer import bare_consume, produce_events
from ecomctl.adapters.kafka.consumer import EventConsumer
from ecomctl.adapters.kafka.topics import delete_topics, ensure_topics
from ecomctl.adapters.postgres.analytics import PostgresAnalytics
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.operations import forget_consumer
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
        await produce_events(bootstrap, topic, count, event_type=f"bench.{run}",
                             partitions=PARTITIONS)
        try:
            raw = _rate(*await bare_consume(bootstrap, topic, count, group=f"bench-raw-{run}",
                                            timeout_s=TIMEOUT_S))
        except TimeoutError as exc:
            raise ConsumerBenchFailed(str(exc)) from exc
        own = await _ecomctl_rate(settings, bootstrap, topic, count, name=f"bench-{run}")
    finally:
        await delete_topics(bootstrap, [topic])
    return raw, own


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
        return _rate(count - first, time.perf_counter() - started)
    finally:
        await consumer.stop()
        await forget_consumer(db, name)
        await db.close()
        telemetry.shutdown()


def _rate(events: int, elapsed: float) -> float:
    if events <= 0 or elapsed <= 0:
        raise ConsumerBenchFailed("the first poll held every event: use more events")
    return events / elapsed
