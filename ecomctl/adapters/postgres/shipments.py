"""Shipment rows."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from ecomctl.domain.models import Shipment, ShipmentStatus

_COLUMNS = "id, order_id, tracking_number, carrier, status"


class PostgresShipments:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, order_id: UUID, tracking_number: str, carrier: str) -> Shipment | None:
        """Create the order's shipment; None if it already has one (idempotent)."""
        row = await self._conn.fetchrow(
            f"INSERT INTO shipments (order_id, tracking_number, carrier, status) "
            f"VALUES ($1, $2, $3, 'created') ON CONFLICT (order_id) DO NOTHING "
            f"RETURNING {_COLUMNS}",
            order_id, tracking_number, carrier,
        )
        return _shipment(row) if row else None

    async def for_order(self, order_id: UUID) -> Shipment | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM shipments WHERE order_id = $1", order_id
        )
        return _shipment(row) if row else None

    async def due(
        self, status: ShipmentStatus, older_than_s: float, limit: int
    ) -> list[Shipment]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM shipments WHERE status = $1 "
            "AND updated_at < now() - make_interval(secs => $2) ORDER BY id LIMIT $3 "
            "FOR UPDATE SKIP LOCKED",
            status.value, older_than_s, limit,
        )
        return [_shipment(r) for r in rows]

    async def any_due(self, status: ShipmentStatus, older_than_s: float) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM shipments WHERE status = $1 "
            "AND updated_at < now() - make_interval(secs => $2))",
            status.value, older_than_s,
        ))

    async def set_status(self, shipment_id: int, status: ShipmentStatus) -> None:
        await self._conn.execute(
            "UPDATE shipments SET status = $2, updated_at = now() WHERE id = $1",
            shipment_id, status.value,
        )


def _shipment(row: asyncpg.Record) -> Shipment:
    return Shipment(
        row["id"],
        row["order_id"],
        row["tracking_number"],
        row["carrier"],
        ShipmentStatus(row["status"]),
    )
