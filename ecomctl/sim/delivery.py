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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.deliveries import (
    ANALYTICS,
    DeliveryBaseline,
    baseline,
    database_now,
    read_deliveries,
)
from ecomctl.sim.invariants import InvariantResult

__all__ = ["ANALYTICS", "DELIVERY_INVARIANT", "ConsumerGroup", "DeliveryBaseline", "baseline",
           "check_delivery", "database_now"]

DELIVERY_INVARIANT = "every event consumed exactly once"


@dataclass(frozen=True)
class ConsumerGroup:
    name: str  # the consumer's name in processed_events
    topics: Sequence[str]  # outbox topic names (without the Kafka prefix)
    duplicates: int  # redeliveries its idempotency absorbed


async def check_delivery(
    db: Database, start: DeliveryBaseline, groups: Sequence[ConsumerGroup],
    until: dt.datetime,
) -> tuple[InvariantResult, dict[str, Any]]:
    """The invariant over the events written from the baseline until ``until`` (when the
    last drain began: ``database_now``), and the figures for the result's
    ``kafka.delivery``."""
    counts = await read_deliveries(db, start, {g.name: g.topics for g in groups}, until)
    produced, unpublished = counts.produced, counts.produced - counts.published
    consumed, lost, counters, handled = (counts.consumed, counts.lost, counts.counters,
                                         counts.handled)
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
