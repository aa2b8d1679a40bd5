"""Shipments: created when an order is paid, by consuming ``order.paid`` from Kafka (never by
a direct call from checkout), then moved along by the simulated carrier."""

from __future__ import annotations

import asyncio
import secrets
from uuid import UUID

from ecomctl.domain.events import SHIPMENT_EVENTS, DomainEvent, new_event
from ecomctl.domain.flags import FaultFlags
from ecomctl.domain.models import OrderStatus, Shipment, ShipmentStatus
from ecomctl.errors import InvalidTransition
from ecomctl.services.order import OrderService
from ecomctl.services.ports.orders import UnitOfWork, UnitOfWorkFactory
from ecomctl.telemetry.spans import ServiceTracer

CARRIER = "ecomctl-sim-carrier"

# What the carrier reports next, and the order status that goes with it.
_NEXT: dict[ShipmentStatus, tuple[ShipmentStatus, OrderStatus]] = {
    ShipmentStatus.CREATED: (ShipmentStatus.IN_TRANSIT, OrderStatus.SHIPPED),
    ShipmentStatus.IN_TRANSIT: (ShipmentStatus.DELIVERED, OrderStatus.DELIVERED),
}


def tracking_number() -> str:
    return "EC" + secrets.token_hex(8).upper()


class ShipmentService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        orders: OrderService,
        tracer: ServiceTracer,
        flags: FaultFlags | None = None,
    ) -> None:
        self._units = units
        self._orders = orders
        self._tracer = tracer
        self._flags = flags or FaultFlags()

    async def create_for_paid_order(self, uow: UnitOfWork, order_id: UUID) -> Shipment | None:
        """Called by the order-events consumer inside its dedupe transaction; a second call
        for the same order creates nothing."""
        with self._tracer.span("shipment.create", {"ecom.order.id": str(order_id)}) as span:
            if self._flags.shipping_delay_ms:
                with self._tracer.span("carrier.book", {"ecom.carrier": CARRIER}):
                    await asyncio.sleep(self._flags.shipping_delay_ms / 1000)
            shipment = await uow.shipments.add(order_id, tracking_number(), CARRIER)
            span.set_attribute("ecom.shipment.created", shipment is not None)
            if shipment is not None:
                span.set_attribute("ecom.shipment.tracking_number", shipment.tracking_number)
                uow.add_event(_shipment_event("shipment.created", shipment))
            return shipment

    async def for_order(self, order_id: UUID) -> Shipment | None:
        async with self._units(read_only=True) as uow:
            return await uow.shipments.for_order(order_id)

    async def any_due(self, status: ShipmentStatus, older_than_s: float) -> bool:
        """A cheap check, so the carrier's idle polling creates no traces."""
        async with self._units(read_only=True) as uow:
            return await uow.shipments.any_due(status, older_than_s)

    async def advance_due(
        self, status: ShipmentStatus, older_than_s: float, limit: int = 100
    ) -> int:
        """The simulated carrier: move shipments that waited long enough one step on, and the
        order with them (Paid -> Shipped -> Delivered)."""
        next_status, order_status = _NEXT[status]
        skipped = 0
        async with self._units() as uow:
            due = await uow.shipments.due(status, older_than_s, limit)
            for shipment in due:
                with self._tracer.span(
                    "shipment.update",
                    {"ecom.order.id": str(shipment.order_id),
                     "ecom.shipment.status": next_status.value},
                ):
                    try:
                        async with uow.savepoint() as step:
                            await self._advance(step, shipment, next_status, order_status)
                    except InvalidTransition:
                        skipped += 1  # the order moved on by other means (cancelled...)
        return len(due) - skipped

    async def _advance(
        self,
        uow: UnitOfWork,
        shipment: Shipment,
        next_status: ShipmentStatus,
        order_status: OrderStatus,
    ) -> None:
        await uow.shipments.set_status(shipment.id, next_status)
        await self._orders.transition(uow, shipment.order_id, order_status)
        moved = Shipment(shipment.id, shipment.order_id, shipment.tracking_number,
                         shipment.carrier, next_status)
        uow.add_event(_shipment_event(f"shipment.{next_status.value}", moved))


def _shipment_event(event_type: str, shipment: Shipment) -> DomainEvent:
    return new_event(
        event_type,
        SHIPMENT_EVENTS,
        "shipment",
        shipment.order_id,
        order_id=shipment.order_id,
        tracking_number=shipment.tracking_number,
        carrier=shipment.carrier,
        status=shipment.status.value,
    )
