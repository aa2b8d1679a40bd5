"""Every statement a database connection sends, as asyncpg's query logger reports it: what
the bench's checkout floor turns into a pgbench script (``ecomctl.bench.checkout_floor``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecomctl.adapters.postgres.database import Database, connection_errors, keep_session


@dataclass(frozen=True)
class LoggedStatement:
    query: str
    args: tuple[Any, ...]


class StatementLog:
    """What the connection sent, BEGIN/COMMIT included. asyncpg calls loggers with
    ``call_soon``, in the order the queries finished: let the loop run once before reading
    ``statements``."""

    def __init__(self) -> None:
        self.statements: list[LoggedStatement] = []

    async def attach(self, conn: asyncpg.Connection) -> None:
        conn.add_query_logger(self._log)

    def _log(self, record: Any) -> None:
        self.statements.append(LoggedStatement(record.query, tuple(record.args or ())))


@asynccontextmanager
async def logged_database(database_url: str) -> AsyncIterator[tuple[Database, StatementLog]]:
    """A one-connection ``Database`` whose every statement goes to the log (one connection,
    so that asyncpg's type introspection, done once, is not in what is logged later)."""
    log = StatementLog()
    with connection_errors():
        # The shop's pool's reset (none sent), so what is logged is what the shop sends.
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, timeout=10,
                                         init=log.attach, reset=keep_session)
    try:
        yield Database(pool), log
    finally:
        await pool.close()
