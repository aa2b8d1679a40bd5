"""The analytics counters (``analytics_counters``), written inside a consumer's transaction."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

_COUNT = """
INSERT INTO analytics_counters (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
"""

_COUNT_MANY = """
INSERT INTO analytics_counters (name, value)
SELECT name, value FROM unnest($1::text[], $2::bigint[]) AS c(name, value)
ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
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
