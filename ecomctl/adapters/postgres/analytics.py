"""The analytics counters (``analytics_counters``), written inside a consumer's transaction,
or (``add_new``) in one statement that also claims the events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

import asyncpg

from ecomctl.adapters.postgres.processed_events import CLAIM_MANY

_COUNT = """
INSERT INTO analytics_counters (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
"""

_COUNT_MANY = """
INSERT INTO analytics_counters (name, value)
SELECT name, value FROM unnest($1::text[], $2::bigint[]) AS c(name, value)
ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
"""

# The consumer's claim (processed_events.CLAIM_MANY) and the counters in one statement: a
# data-modifying CTE runs to completion whether or not it is read, and the counts join only
# the rows this statement claimed, so a redelivered event adds nothing. Counter names are
# sorted: two consumers lock the rows in the same order.
_CLAIM_AND_COUNT = f"""
WITH claimed AS ({CLAIM_MANY}), counted AS (
    INSERT INTO analytics_counters (name, value)
    SELECT c.name, sum(c.value)
    FROM unnest($3::uuid[], $4::text[], $5::bigint[]) AS c(event_id, name, value)
    JOIN claimed USING (event_id)
    GROUP BY c.name ORDER BY c.name
    ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
)
SELECT event_id FROM claimed
"""


class PostgresAnalytics:
    async def add(self, tx: asyncpg.Connection, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to their counters on ``tx`` (the consumer's connection), names
        sorted: two consumers then lock the rows in the same order."""
        names = sorted(counts)
        if len(names) == 1:
            await tx.execute(_COUNT, names[0], counts[names[0]])
        elif names:
            await tx.execute(_COUNT_MANY, names, [counts[name] for name in names])

    async def add_new(
        self, tx: asyncpg.Connection, consumer: str, event_ids: Sequence[UUID],
        counts: Sequence[tuple[UUID, str, int]],
    ) -> set[UUID]:
        rows = await tx.fetch(_CLAIM_AND_COUNT, consumer, list(event_ids),
                              [c[0] for c in counts], [c[1] for c in counts],
                              [c[2] for c in counts])
        return {row["event_id"] for row in rows}
