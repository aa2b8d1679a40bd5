"""Domain events: written to the outbox in the business transaction, relayed to Kafka."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ORDER_EVENTS = "order-events"
PAYMENT_EVENTS = "payment-events"
SHIPMENT_EVENTS = "shipment-events"
PRODUCT_EVENTS = "product-events"
TOPICS = (ORDER_EVENTS, PAYMENT_EVENTS, SHIPMENT_EVENTS, PRODUCT_EVENTS)


@dataclass(frozen=True)
class DomainEvent:
    event_id: uuid.UUID
    event_type: str
    topic: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]



@dataclass(frozen=True)
class ConsumedEvent:
    """One domain event as a consumer sees it (the envelope plus where it came from)."""

    event_id: uuid.UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    topic: str
    partition: int
    offset: int
    occurred_at: datetime  # when the business transaction wrote it (outbox created_at)
    published_at: datetime  # the Kafka record timestamp (set when the relay sent it)
    headers: tuple[tuple[str, bytes], ...]

    @property
    def publish_lag_s(self) -> float:
        """Seconds from the business commit to publication on Kafka."""
        return (self.published_at - self.occurred_at).total_seconds()

    def header(self, name: str) -> bytes | None:
        """The first header called ``name`` (the one the relay wrote)."""
        return next((value for key, value in self.headers if key == name), None)

def new_event(
    event_type: str, topic: str, aggregate_type: str, aggregate_id: object, **payload: Any
) -> DomainEvent:
    return DomainEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        topic=topic,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload={k: _jsonable(v) for k, v in payload.items()},
    )


def _jsonable(value: Any) -> Any:
    """Decimals and UUIDs travel as strings, so no amount ever becomes a float."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)
