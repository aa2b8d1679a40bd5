"""The asyncpg pool, and the one place where driver errors become ecomctl errors.

Waiting for a pooled connection can be bounded (``acquire_timeout_s``; the shop's pool is,
by ``ECOMCTL_DB_ACQUIRE_TIMEOUT``): under overload a request that cannot get a connection soon
fails fast with ``Overloaded`` (HTTP 503 with Retry-After) instead of joining a queue that
only grows. Batch tools (seeding, benches) leave it unbounded.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation

from ecomctl.errors import BackendUnavailable, Contention, Overloaded, ValidationFailed

APPLICATION_NAME = "ecomctl"  # how the shop's connections show in pg_stat_activity

# Errors that mean "the database is not there", as opposed to a bug in our SQL. The first
# two are everyone's: raised by the work done with a live connection (a handler's own call
# that timed out), they are that work's, not the database's (see ``_driver_failed``).
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


_CANNOT_CONNECT = (*_UNAVAILABLE, asyncpg.InvalidCatalogNameError,
                   asyncpg.InvalidPasswordError)


@contextmanager
def connection_errors() -> Iterator[None]:
    """Driver errors that mean the database is not there become ``BackendUnavailable``;
    for work on a single connection outside the pool (``connect_single``)."""
    try:
        yield
    except _CANNOT_CONNECT as exc:
        raise BackendUnavailable("postgres", str(exc) or type(exc).__name__) from exc


async def connect_single(url: str, *, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection outside any pool, for a long transaction of its own (a seed's load, a
    bench's capture); connection errors translated as the pool's are."""
    try:
        return await asyncpg.connect(url, timeout=timeout)
    except _CANNOT_CONNECT as exc:
        raise BackendUnavailable("postgres", f"cannot connect: {exc}") from exc


class _NotTheDatabase(Exception):
    """Carries an OSError or TimeoutError of the caller's own past the translation below."""

    def __init__(self, error: OSError | TimeoutError) -> None:
        super().__init__(str(error))
        self.error = error


def _driver_failed(conn: asyncpg.Connection, exc: BaseException) -> bool:
    """Whether an OSError or TimeoutError raised inside a connection's block is the
    database's: the connection died with it, or asyncpg raised it (a statement timeout).
    Otherwise it is the caller's own (a consumer handler's call that timed out): it must
    spend an attempt like any failure, not be retried for ever as an outage."""
    if conn.is_closed():
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return any("/asyncpg/" in frame.filename for frame in frames)


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, in place of asyncpg's reset query (``RESET ALL``,
    ``UNLISTEN *``, ``pg_advisory_unlock_all()``, ``CLOSE ALL``): a round trip on every
    release (a checkout's 7th), for session state this pool's users never leave behind.
    They take transaction-scoped locks and ``SET LOCAL`` only, and listen on nothing; an
    open transaction is still rolled back by asyncpg before this runs."""


class Database:
    """A connection pool. Use ``transaction()`` for one business operation (commit on
    success, roll back on any exception) and ``connection()`` for reads."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float | None = None,
                 on_wait: Callable[[float], None] | None = None) -> None:
        """``on_wait``: told how long each connection was waited for (seconds)."""
        self.pool = pool
        self.acquire_timeout_s = acquire_timeout_s
        self.on_wait = on_wait

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 20,
        timeout: float = 10.0,
        acquire_timeout_s: float | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> Database:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=timeout,
                command_timeout=30, server_settings={"application_name": APPLICATION_NAME},
                reset=keep_session,
            )
        except _CANNOT_CONNECT as exc:
            raise BackendUnavailable("postgres", f"cannot connect: {exc}") from exc
        return cls(pool, acquire_timeout_s=acquire_timeout_s, on_wait=on_wait)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            asked = time.perf_counter()
            try:
                conn = await self.pool.acquire(timeout=self.acquire_timeout_s)
                if self.on_wait is not None:
                    self.on_wait(time.perf_counter() - asked)
            except TimeoutError as exc:
                if self.acquire_timeout_s is None:
                    raise  # opening a connection timed out: an outage, handled below
                # Every connection stayed busy: push back rather than queue. (A database that
                # is down refuses the connection at once: that is BackendUnavailable below.)
                raise Overloaded(
                    "postgres pool",
                    f"no connection free within {self.acquire_timeout_s:g}s",
                    retry_after_s=1,
                ) from exc
            try:
                yield conn
            except (OSError, TimeoutError) as exc:
                if not _driver_failed(conn, exc):
                    raise _NotTheDatabase(exc) from exc
                raise
            finally:
                # The pool's reset query on release is housekeeping, not part of the
                # operation: untraced, so it does not add a span to every trace.
                with suppress_instrumentation():
                    await self.pool.release(conn)
        except _NotTheDatabase as wrapped:
            raise wrapped.error from wrapped.error.__cause__
        except _UNAVAILABLE as exc:
            raise BackendUnavailable("postgres", str(exc) or type(exc).__name__) from exc
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            # Rolled back by the server, nothing done: the caller may simply try again
            # (a 503 with Retry-After over HTTP, another attempt for a consumer).
            raise Contention(f"rolled back by a conflict with another transaction: {exc}") from exc
        except asyncpg.CharacterNotInRepertoireError as exc:
            # PostgreSQL text cannot hold NUL (0x00): that is the input's fault, not a 500.
            raise ValidationFailed("text must not contain NUL (0x00) characters") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        await self.pool.close()
