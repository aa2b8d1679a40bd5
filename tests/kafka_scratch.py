"""Throwaway Kafka topics and consumer names for integration tests, and their clean-up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ecomctl.adapters.kafka.consumer import EventConsumer
from ecomctl.adapters.kafka.topics import delete_topics, ensure_topics
from ecomctl.adapters.postgres.database import Database


class KafkaScratch:
    """Unique topics and consumer names for one test, and what to clean up after it."""

    def __init__(self, bootstrap: str, prefix: str, partitions: int = 1) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.partitions = partitions
        self.topics: list[str] = []
        self.consumers: list[str] = []
        self.counters: list[str] = []  # analytics counters a test wrote

    async def topic(self, partitions: int | None = None) -> str:
        name = f"{self.prefix}-src-{uuid.uuid4().hex[:12]}"
        count = partitions or self.partitions
        assert await ensure_topics(self.bootstrap, [name], count) == [name]
        self.topics.append(name)
        return name

    def consumer_name(self) -> str:
        name = f"{self.prefix}-consumer-{uuid.uuid4().hex[:12]}"
        self.consumers.append(name)
        return name

    async def clean_up(self, db: Database) -> None:
        """Rows the tests left in the shared database, then the topics and their DLQs."""
        async with db.connection() as conn:
            await conn.execute("DELETE FROM outbox WHERE topic = ANY($1::text[])", self.topics)
            await conn.execute("DELETE FROM processed_events WHERE consumer = ANY($1::text[])",
                               self.consumers)
            await conn.execute("DELETE FROM analytics_counters WHERE name = ANY($1::text[])",
                               self.counters)
        if self.topics:
            await delete_topics(self.bootstrap,
                                self.topics + [f"{t}.dlq" for t in self.topics])


async def processed_rows(db: Database, consumer: str) -> set[uuid.UUID]:
    """The events ``consumer`` has recorded as processed (its idempotency rows)."""
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT event_id FROM processed_events WHERE consumer = $1",
                                consumer)
    return {row["event_id"] for row in rows}


@asynccontextmanager
async def consuming(consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    """The consumer started and polling in the background for the block, then stopped."""
    await consumer.start()
    consumer.start_background()
    try:
        yield consumer
    finally:
        await consumer.stop()
