"""What the delivery check (``ecomctl.sim.delivery``) reads: the outbox against each consumer
group's ``processed_events`` records, and the analytics consumer's counters, each side in one
repeatable-read snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecomctl.adapters.postgres.database import Database

ANALYTICS = "analytics"
"""The consumer that counts every event it handles in ``analytics_counters``."""

# Longer than any consumer transaction: one that began before (baseline - this) and was
# still open at the baseline would have its record counted on one side only.
_LONGEST_CONSUMER_TX = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class DeliveryBaseline:
    """Taken before the run, in one snapshot: when it started, the analytics counters then,
    and the analytics consumer's processed records per event type then (those since
    ``since - _LONGEST_CONSUMER_TX``: a bounded scan)."""

    since: dt.datetime
    counters: Mapping[str, int]
    handled: Mapping[str, int]


@dataclass(frozen=True)
class DeliveryCounts:
    produced: int
    """Outbox rows written in the window."""
    published: int
    consumed: dict[str, int]
    """Consumer group -> events of its topics it recorded as processed."""
    lost: dict[str, int]
    """Consumer group -> events of its topics it has no record of."""
    counters: dict[str, int]
    handled: dict[str, int]


async def baseline(db: Database) -> DeliveryBaseline:
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        now: dt.datetime = await conn.fetchval("SELECT now()")
        return DeliveryBaseline(now, await _counters(conn), await _handled(conn, now))


async def database_now(db: Database) -> dt.datetime:
    async with db.connection() as conn:
        now: dt.datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def read_deliveries(db: Database, start: DeliveryBaseline,
                          topics_of: Mapping[str, Sequence[str]], until: dt.datetime
                          ) -> DeliveryCounts:
    """The events written from ``start`` until ``until``, and what each consumer group of
    ``topics_of`` (group -> its outbox topics) recorded of them."""
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        produced_rows = await conn.fetch(
            "SELECT count(*) AS n, count(published_at) AS published "
            "FROM outbox WHERE created_at >= $1 AND created_at < $2", start.since, until)
        consumed: dict[str, int] = {}
        lost: dict[str, int] = {}
        for group, topics in topics_of.items():
            row = await conn.fetchrow(
                """SELECT count(p.event_id) AS consumed,
                          count(*) FILTER (WHERE p.event_id IS NULL) AS lost
                   FROM outbox o LEFT JOIN processed_events p
                     ON p.event_id = o.event_id AND p.consumer = $2
                   WHERE o.created_at >= $1 AND o.created_at < $4
                     AND o.topic = ANY($3::text[])""",
                start.since, group, list(topics), until)
            consumed[group], lost[group] = int(row["consumed"]), int(row["lost"])
        counters = await _counters(conn)
        handled = await _handled(conn, start.since)
    produced = sum(int(r["n"]) for r in produced_rows)
    published = sum(int(r["published"]) for r in produced_rows)
    return DeliveryCounts(produced, published, consumed, lost, counters, handled)


async def _handled(conn: Any, since: dt.datetime) -> dict[str, int]:
    """The analytics consumer's processed records per event type, from a little before
    ``since`` (same cut-off before and after the run, so only the records in between
    differ)."""
    rows = await conn.fetch(
        "SELECT o.event_type, count(*) AS n FROM processed_events p "
        "JOIN outbox o ON o.event_id = p.event_id "
        "WHERE p.consumer = $1 AND p.processed_at >= $2 GROUP BY o.event_type",
        ANALYTICS, since - _LONGEST_CONSUMER_TX)
    return {r["event_type"]: int(r["n"]) for r in rows}


async def _counters(conn: Any) -> dict[str, int]:
    rows = await conn.fetch("SELECT name, value FROM analytics_counters "
                            "WHERE name LIKE 'events.%'")
    return {r["name"]: int(r["value"]) for r in rows}
