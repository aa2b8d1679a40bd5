"""The unit of work on PostgreSQL: one connection, one transaction, the order path's
repositories bound to it, and the domain events written to the outbox just before COMMIT."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import asyncpg

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.inventory import PostgresInventory
from ecomctl.adapters.postgres.orders import PostgresOrders, PostgresPayments
from ecomctl.adapters.postgres.outbox import add_events
from ecomctl.adapters.postgres.shipments import PostgresShipments
from ecomctl.domain.events import DomainEvent
from ecomctl.services.ports.events import Transaction
from ecomctl.services.ports.orders import UnitOfWork, UnitOfWorkFactory


class _Bound:
    """Repositories and collected events on one connection (shared by the savepoints)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.orders = PostgresOrders(conn)
        self.inventory = PostgresInventory(conn)
        self.payments = PostgresPayments(conn)
        self.shipments = PostgresShipments(conn)
        self.events: list[DomainEvent] = []

    def add_event(self, event: DomainEvent) -> None:
        self.events.append(event)


class PostgresUnitOfWork(_Bound):
    """``async with PostgresUnitOfWork(db) as uow:`` acquires a connection and begins; a clean
    exit writes the collected events to the outbox and commits, an exception rolls back.
    Driver errors surface as ecomctl errors (``Database.connection``).

    A read-only unit, and a single-write one (its one write statement is atomic by itself),
    run on a plain connection: no BEGIN and COMMIT, and no events of their own."""

    def __init__(self, db: Database, *, read_only: bool = False,
                 single_write: bool = False) -> None:
        self._db = db
        self._read_only = read_only
        self._single_write = single_write
        self._transaction = AsyncExitStack()

    async def __aenter__(self) -> Self:
        self._transaction = AsyncExitStack()
        plain = self._read_only or self._single_write
        scope = self._db.connection() if plain else self._db.transaction()
        conn = await self._transaction.enter_async_context(scope)
        _Bound.__init__(self, conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transaction = self._transaction
        if self._read_only or self._single_write:
            await transaction.__aexit__(exc_type, exc, tb)
            if self.events:
                raise RuntimeError("a unit of work without a transaction cannot publish "
                                   "events of its own")
            return
        if exc is None:
            try:
                await add_events(self.conn, self.events)
            except BaseException as flush_error:
                await transaction.__aexit__(
                    type(flush_error), flush_error, flush_error.__traceback__
                )
                raise
        await transaction.__aexit__(exc_type, exc, tb)

    def savepoint(self) -> JoinedUnitOfWork:
        return JoinedUnitOfWork(self.conn, savepoint=True)


class JoinedUnitOfWork(_Bound):
    """A unit of work inside a transaction someone else owns: the Kafka consumer's dedupe
    transaction, or a savepoint of an outer unit. Its events go to the outbox when its block
    ends cleanly; the owner commits."""

    def __init__(self, conn: asyncpg.Connection, *, savepoint: bool = False) -> None:
        super().__init__(conn)
        self._savepoint = conn.transaction() if savepoint else None

    async def __aenter__(self) -> Self:
        if self._savepoint is not None:
            await self._savepoint.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await add_events(self.conn, self.events)
            if self._savepoint is not None:
                await self._savepoint.commit()
        elif self._savepoint is not None:
            await self._savepoint.rollback()
        self.events = []

    def savepoint(self) -> JoinedUnitOfWork:
        return JoinedUnitOfWork(self.conn, savepoint=True)


def postgres_units(db: Database) -> UnitOfWorkFactory:
    """The services' unit-of-work factory on this pool."""

    def new_unit(*, read_only: bool = False, single_write: bool = False) -> UnitOfWork:
        return PostgresUnitOfWork(db, read_only=read_only, single_write=single_write)

    return new_unit


def unit_in(tx: Transaction) -> UnitOfWork:
    """The order path's unit of work inside a transaction a consumer runner opened (its
    ``Transaction`` is an asyncpg connection in a transaction)."""
    if not isinstance(tx, asyncpg.Connection):
        raise TypeError(f"expected an asyncpg connection, got {type(tx).__name__}")
    return JoinedUnitOfWork(tx)
