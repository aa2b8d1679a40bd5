"""Every event of a run consumed exactly once, checked in PostgreSQL after the drain.

The outbox says what was produced; ``processed_events`` says what each consumer group took
(every event of its topics is recorded, handled or not). An event with no record for a group
that reads its topic was lost. "Processed twice" cannot hide in ``processed_events`` (its key
is (consumer, event)), so the check looks at an effect instead: the analytics consumer adds
one to ``events.<type>`` per event it handles, so across the run each counter must have grown
by exactly the number of events of that type it recorded as processed. Duplicates that
reached a consumer and were absorbed by its idempotency are counted by the consumers
themselves. Both counts are read in one snapshot before the run and in one after it: the
consumer writes them in one transaction, so they grow together whenever it commits, however
busy it is while the baseline is taken. (A record's ``processed_at`` is when its transaction
began, not when it became visible, so a time cut would split a straddling transaction.)

The shop keeps writing events after the run (the carrier moves shipments on, the sweepers
expire orders), so the check covers the events written before the last drain began, which
that drain published and the consumers took.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecomctl.adapters.postgres.database import Database
from ecomctl.sim.invariants import InvariantResult

DELIVERY_INVARIANT = "every event consumed exactly once"
ANALYTICS = "analytics"


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
class ConsumerGroup:
    name: str  # the consumer's name in processed_events
    topics: Sequence[str]  # outbox topic names (without the Kafka prefix)
    duplicates: int  # redeliveries its idempotency absorbed


async def baseline(db: Database) -> DeliveryBaseline:
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        now: dt.datetime = await conn.fetchval("SELECT now()")
        return DeliveryBaseline(now, await _counters(conn), await _handled(conn, now))


async def database_now(db: Database) -> dt.datetime:
    async with db.connection() as conn:
        now: dt.datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def check_delivery(
    db: Database, start: DeliveryBaseline, groups: Sequence[ConsumerGroup],
    until: dt.datetime,
) -> tuple[InvariantResult, dict[str, Any]]:
    """The invariant over the events written from the baseline until ``until`` (when the
    last drain began: ``database_now``), and the figures for the result's
    ``kafka.delivery``."""
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        produced_rows = await conn.fetch(
            "SELECT topic, event_type, count(*) AS n, count(published_at) AS published "
            "FROM outbox WHERE created_at >= $1 AND created_at < $2 "
            "GROUP BY topic, event_type", start.since, until)
        consumed: dict[str, int] = {}
        lost: dict[str, int] = {}
        for group in groups:
            row = await conn.fetchrow(
                """SELECT count(p.event_id) AS consumed,
                          count(*) FILTER (WHERE p.event_id IS NULL) AS lost
                   FROM outbox o LEFT JOIN processed_events p
                     ON p.event_id = o.event_id AND p.consumer = $2
                   WHERE o.created_at >= $1 AND o.created_at < $4
                     AND o.topic = ANY($3::text[])""",
                start.since, group.name, list(group.topics), until)
            consumed[group.name], lost[group.name] = int(row["consumed"]), int(row["lost"])
        counters = await _counters(conn)
        handled = await _handled(conn, start.since)
    produced = sum(int(r["n"]) for r in produced_rows)
    unpublished = produced - sum(int(r["published"]) for r in produced_rows)
    miscounted: dict[str, int] = {}
    if any(g.name == ANALYTICS for g in groups):
        names = {n.removeprefix("events.") for n in (*counters, *start.counters)}
        for event_type in sorted(names | set(handled) | set(start.handled)):
            name = f"events.{event_type}"
            grown = counters.get(name, 0) - start.counters.get(name, 0)
            recorded = handled.get(event_type, 0) - start.handled.get(event_type, 0)
            if grown != recorded:
                miscounted[event_type] = grown - recorded
    figures = {
        "produced": produced, "unpublished": unpublished, "consumed": consumed,
        "lost": lost, "analytics_miscounted": miscounted,
        "duplicates_absorbed": {g.name: g.duplicates for g in groups},
    }
    problems = []
    if unpublished:
        problems.append(f"{unpublished} events never published")
    if any(lost.values()):
        problems.append("lost: " + ", ".join(f"{n} by {g}" for g, n in lost.items() if n))
    if miscounted:
        problems.append("analytics applied events a different number of times than it "
                        f"recorded them processed (twice?): {miscounted}")
    detail = "; ".join(problems) or (
        f"ok: {produced} events, each consumed once by every group that reads it "
        f"({sum(g.duplicates for g in groups)} redeliveries absorbed)")
    return InvariantResult(DELIVERY_INVARIANT, not problems, detail), figures


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
