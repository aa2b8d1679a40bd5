"""The asyncpg pool, and the one place where driver errors become ecomctl errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation

from ecomctl.errors import BackendUnavailable, ValidationFailed

# Errors that mean "the database is not there", as opposed to a bug in our SQL.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
    asyncpg.InternalClientError,  # what a connection killed mid-query sometimes raises
)


class Database:
    """A connection pool. Use ``transaction()`` for one business operation (commit on
    success, roll back on any exception) and ``connection()`` for reads."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = 2, max_size: int = 20, timeout: float = 10.0
    ) -> Database:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=timeout,
                command_timeout=30,
            )
        except _UNAVAILABLE as exc:
            raise BackendUnavailable("postgres", f"cannot connect: {exc}") from exc
        return cls(pool)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire()
            try:
                yield conn
            finally:
                # The pool's reset query on release is housekeeping, not part of the
                # operation: untraced, so it does not add a span to every trace.
                with suppress_instrumentation():
                    await self.pool.release(conn)
        except _UNAVAILABLE as exc:
            raise BackendUnavailable("postgres", str(exc) or type(exc).__name__) from exc
        except asyncpg.CharacterNotInRepertoireError as exc:
            # PostgreSQL text cannot hold NUL (0x00): that is the input's fault, not a 500.
            raise ValidationFailed("text must not contain NUL (0x00) characters") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        await self.pool.close()
