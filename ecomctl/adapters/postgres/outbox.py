"""Writing domain events into the outbox, inside the caller's transaction.

The current trace context is stored with each row (written by the configured propagators,
``OTEL_PROPAGATORS``: a ``traceparent`` by default), so the relay can publish the event with
the context of the operation that caused it and consumers continue that trace.

``add_events`` is the unit of work's own statement, at commit. A write that ends a checkout's
transaction carries its events itself (``events_cte``): one statement fewer per transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from opentelemetry import propagate

from ecomctl.domain.events import DomainEvent

_COLUMNS = "event_id, topic, event_type, aggregate_type, aggregate_id, payload, trace_context"
_TYPES = ("uuid[]", "text[]", "text[]", "text[]", "text[]", "jsonb[]", "jsonb[]")


def _arrays(first: int) -> str:
    """The rows' parameter arrays, ``$first`` on, typed."""
    return ", ".join(f"${n}::{t}" for n, t in enumerate(_TYPES, start=first))


_INSERT = f"INSERT INTO outbox ({_COLUMNS}) SELECT * FROM unnest({_arrays(1)})"


def events_cte(first: int, guard: str) -> str:
    """``INSERT INTO outbox`` for a WITH clause: the rows of ``event_parameters``, passed as
    parameters ``$first`` on, each row written once for every row ``guard`` (a CTE that
    yields one row or none) yields."""
    return f"""INSERT INTO outbox ({_COLUMNS})
    SELECT e.* FROM {guard}, unnest({_arrays(first)}) AS e({_COLUMNS})"""


def event_parameters(events: Sequence[DomainEvent]) -> list[Any]:
    """The outbox rows of ``events`` as one array per column (empty arrays: no rows)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    context = json.dumps(carrier)
    return [
        [e.event_id for e in events],
        [e.topic for e in events],
        [e.event_type for e in events],
        [e.aggregate_type for e in events],
        [e.aggregate_id for e in events],
        [json.dumps(e.payload) for e in events],
        [context] * len(events),
    ]


async def add_events(conn: asyncpg.Connection, events: Sequence[DomainEvent]) -> None:
    """Insert ``events`` in one round trip; must run inside the business transaction."""
    if not events:
        return
    await conn.execute(_INSERT, *event_parameters(events))
