"""Claiming events for a consumer in ``processed_events``: the SQL the idempotent consumer
runs alone, and that the analytics store runs as the first step of its one statement. A
claim that inserts nothing means the consumer already processed the event."""

from __future__ import annotations

CLAIM = """
INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING
RETURNING true
"""

CLAIM_MANY = """
INSERT INTO processed_events (consumer, event_id)
SELECT $1, event_id FROM unnest($2::uuid[]) AS e(event_id)
ON CONFLICT DO NOTHING
RETURNING event_id
"""
"""$1 the consumer, $2 the event ids; returns the ids this statement claimed."""
