"""Kafka adapters: topic admin, the outbox relay and the idempotent consumer runner."""

from __future__ import annotations

from ecomctl.adapters.kafka.consumer import (
    ConsumerStats,
    EventConsumer,
    EventHandler,
    MalformedEvent,
)
from ecomctl.adapters.kafka.relay import OutboxDrainTimeout, OutboxRelay, RelayStats
from ecomctl.adapters.kafka.topics import delete_topics, ensure_topics
from ecomctl.domain.events import ConsumedEvent

__all__ = [
    "ConsumedEvent",
    "ConsumerStats",
    "EventConsumer",
    "EventHandler",
    "MalformedEvent",
    "OutboxDrainTimeout",
    "OutboxRelay",
    "RelayStats",
    "delete_topics",
    "ensure_topics",
]
