"""Inventory: reserve stock inside the order's unit of work (with the order itself: one
statement places both), commit it on payment, release it on cancellation or expiry. Every
operation is one guarded SQL statement in the adapter; a checkout's settlement commits or
releases the stock with the order's move (``ports.orders.Settlement``)."""

from __future__ import annotations

from uuid import UUID

from ecomctl.domain.flags import FaultFlags
from ecomctl.domain.models import Order
from ecomctl.errors import OutOfStock
from ecomctl.services.ports.orders import NewOrder, UnitOfWork
from ecomctl.telemetry.spans import ServiceTracer


class InventoryService:
    def __init__(self, tracer: ServiceTracer, flags: FaultFlags | None = None) -> None:
        self._tracer = tracer
        self._flags = flags or FaultFlags()

    async def reserve(self, uow: UnitOfWork, new: NewOrder) -> Order:
        """Reserve all lines of the new order and place it in the caller's unit of work (the
        order as stored), or raise OutOfStock (the unit then rolls back, so nothing stays
        reserved)."""
        order_id, lines = new.order.id, new.order.lines
        units = sum(line.quantity for line in lines)
        with self._tracer.span(
            "inventory.reserve",
            {"ecom.order.id": str(order_id), "ecom.order.lines": len(lines),
             "ecom.inventory.units": units},
        ) as span:
            if self._flags.slow_query_ms:
                # A slow statement inside the order's transaction, as a missing index or a
                # lock-heavy neighbour would cause: it holds the reserved rows' locks longer.
                await uow.inventory.stall(self._flags.slow_query_ms / 1000)
            placement = await uow.inventory.reserve(new)
            if placement.order is None or placement.short:
                short = list(placement.short)
                span.set_attribute("ecom.inventory.short_product_ids", short)
                wanted = {line.product_id: line.quantity for line in lines}
                raise OutOfStock(short[0], wanted[short[0]])
            return placement.order

    async def commit(self, uow: UnitOfWork, order_id: UUID) -> None:
        with self._tracer.span("inventory.commit", {"ecom.order.id": str(order_id)}) as span:
            span.set_attribute("ecom.inventory.lines", await uow.inventory.commit(order_id))

    async def release(self, uow: UnitOfWork, order_id: UUID) -> None:
        with self._tracer.span("inventory.release", {"ecom.order.id": str(order_id)}) as span:
            span.set_attribute("ecom.inventory.lines", await uow.inventory.release(order_id))
