"""Writing domain events into the outbox, inside the caller's transaction.

The current trace context is stored with each row, so the relay can publish the event with
the ``traceparent`` of the operation that caused it and consumers continue that trace."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg
from opentelemetry import propagate

from ecomctl.domain.events import DomainEvent

_INSERT = """
INSERT INTO outbox (event_id, topic, event_type, aggregate_type, aggregate_id, payload,
                    trace_context)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
                     $7::jsonb[])
"""


async def add_events(conn: asyncpg.Connection, events: Sequence[DomainEvent]) -> None:
    """Insert ``events`` in one round trip; must run inside the business transaction."""
    if not events:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    context = json.dumps(carrier)
    await conn.execute(
        _INSERT,
        [e.event_id for e in events],
        [e.topic for e in events],
        [e.event_type for e in events],
        [e.aggregate_type for e in events],
        [e.aggregate_id for e in events],
        [json.dumps(e.payload) for e in events],
        [context] * len(events),
    )
