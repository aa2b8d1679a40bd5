"""Bulk loading into PostgreSQL: binary COPY (asyncpg ``copy_records_to_table``) of the
generated batches, table by table in foreign-key order, inside the caller's transaction.

The rows arrive already encoded (``binary_copy``, built in the seed's worker processes):
this process only forwards bytes, one COPY per batch, while the workers build the next ones.

Foreign keys are checked once per constraint, not once per row: when the role may set
``session_replication_role`` (superusers, or a role granted SET on it), the load runs with
it set to ``replica`` for the transaction, which skips the per-row RI triggers (what
``pg_restore --disable-triggers`` does; they were ~60% of the COPY time), and then
``verify_foreign_keys`` proves every constraint with one anti-join each before the commit.
No other session can invalidate a reference meanwhile: ``--reset`` holds TRUNCATE's
exclusive locks, and otherwise every referenced row is one of ours, not yet visible.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from ecomctl.adapters.seeding.binary_copy import HEADER, TRAILER
from ecomctl.adapters.seeding.tables import SEEDED_TABLES, TABLE_COLUMNS, EncodedBatch
from ecomctl.errors import InfraError

# Every table that holds shop state; ``--reset`` empties them all (schema_migrations stays).
SHOP_TABLES = (
    "users", "categories", "products", "inventory", "orders", "order_items",
    "inventory_reservations", "payments", "shipments", "outbox", "processed_events",
    "analytics_counters",
)
# Tables whose ``id`` is an identity column that seeding fills with explicit values.
IDENTITY_TABLES = ("users", "categories", "products", "payments", "shipments")
# One seeder at a time per database: a second one waits, then sees the first one's rows.
_LOCK_KEY = 0x65636F6D_73656564  # "ecomseed"


@dataclass
class TableLoad:
    """What loading one table cost: time building its rows and time in COPY."""

    table: str
    rows: int = 0
    generate_s: float = 0.0
    copy_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.generate_s + self.copy_s


async def lock_for_seeding(conn: asyncpg.Connection) -> None:
    """Serialize seeders on this database until the end of the current transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)


async def row_counts(conn: asyncpg.Connection, tables: tuple[str, ...]) -> dict[str, int]:
    """Exact counts, in one round trip."""
    query = " UNION ALL ".join(
        f"SELECT '{table}' AS name, count(*) AS n FROM {table}" for table in tables
    )
    return {row["name"]: int(row["n"]) for row in await conn.fetch(query)}


async def skip_row_triggers(conn: asyncpg.Connection) -> bool:
    """Skip per-row triggers (the FK checks) until the end of the transaction, if this role
    may; returns whether it could. Call ``verify_foreign_keys`` before committing."""
    try:
        async with conn.transaction():  # a savepoint: a refusal must not abort the load
            await conn.execute("SET LOCAL session_replication_role = replica")
    except asyncpg.InsufficientPrivilegeError:
        return False
    return True


_FOREIGN_KEYS = """
SELECT con.conname,
       con.conrelid::regclass::text AS child,
       con.confrelid::regclass::text AS parent,
       array_agg(quote_ident(ca.attname) ORDER BY k.ord) AS child_columns,
       array_agg(quote_ident(pa.attname) ORDER BY k.ord) AS parent_columns
FROM pg_constraint con
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(child_att, parent_att, ord)
JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.child_att
JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.parent_att
WHERE con.contype = 'f' AND con.conrelid = ANY($1::regclass[])
GROUP BY con.conname, con.conrelid, con.confrelid
ORDER BY con.conname
"""


async def verify_foreign_keys(conn: asyncpg.Connection, tables: tuple[str, ...]) -> None:
    """Every foreign key of ``tables``, read from the catalogue, checked with one anti-join
    (MATCH SIMPLE: a row with a NULL key column references nothing)."""
    for fk in await conn.fetch(_FOREIGN_KEYS, list(tables)):
        pairs = list(zip(fk["child_columns"], fk["parent_columns"], strict=True))
        matches = " AND ".join(f"p.{parent} = c.{child}" for child, parent in pairs)
        present = " AND ".join(f"c.{child} IS NOT NULL" for child, _ in pairs)
        dangling = await conn.fetchval(
            f"SELECT count(*) FROM {fk['child']} c WHERE {present} "
            f"AND NOT EXISTS (SELECT 1 FROM {fk['parent']} p WHERE {matches})"
        )
        if dangling:
            raise SeedIntegrityError(
                f"{dangling} row(s) of {fk['child']} break foreign key {fk['conname']}"
            )


class SeedIntegrityError(InfraError):
    """Generated rows broke a constraint: a bug in the generator (the load is rolled back)."""


async def truncate_shop(conn: asyncpg.Connection) -> None:
    await conn.execute(f"TRUNCATE {', '.join(SHOP_TABLES)} RESTART IDENTITY CASCADE")


async def advance_identities(conn: asyncpg.Connection) -> None:
    """Move each identity sequence past the ids we loaded, so the shop's own inserts go on
    from there (an empty table restarts at 1)."""
    for table in IDENTITY_TABLES:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce(max(id), 0) + 1, false) FROM {table}"
        )


async def copy_batches(
    conn: asyncpg.Connection,
    batches: AsyncIterator[EncodedBatch],
    expected: dict[str, int | None],
    progress: Callable[[str, int, int | None], None] | None = None,
) -> dict[str, TableLoad]:
    """COPY (binary) every batch into its table as it arrives; returns the cost per table,
    in load order. ``progress(table, rows so far, expected rows or None while unknown)``."""
    loads = {table: TableLoad(table) for table in SEEDED_TABLES}
    async for batch in batches:
        load = loads[batch.table]
        started = time.perf_counter()
        if batch.rows:
            await conn.copy_to_table(
                batch.table, source=_stream(batch.data), columns=TABLE_COLUMNS[batch.table],
                format="binary",
            )
        load.copy_s += time.perf_counter() - started
        load.generate_s += batch.build_s
        load.rows += batch.rows
        if progress is not None:
            progress(batch.table, load.rows, expected.get(batch.table))
    if progress is not None:  # complete the bars of unknown size, and of empty tables
        for load in loads.values():
            if expected.get(load.table) is None or load.rows == 0:
                progress(load.table, load.rows, load.rows)
    return loads


async def _stream(tuples: bytes) -> AsyncIterator[bytes]:
    yield HEADER
    yield tuples
    yield TRAILER
