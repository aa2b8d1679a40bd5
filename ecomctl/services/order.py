"""Orders: created from priced lines in one transaction (order, items, stock reservation,
outbox event), moved through the state machine, read back only by their owner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from ecomctl.adapters.postgres import orders as sql
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.outbox import add_events
from ecomctl.domain.events import ORDER_EVENTS, DomainEvent, new_event
from ecomctl.domain.models import Order, OrderLine, OrderStatus, Page, order_total, transition
from ecomctl.errors import NotFound, ValidationFailed
from ecomctl.services.inventory import InventoryService
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer


def order_event(event_type: str, order: Order, **extra: object) -> DomainEvent:
    return new_event(
        event_type, ORDER_EVENTS, "order", order.id,
        order_id=order.id, user_id=order.user_id, total=order.total, currency=order.currency,
        lines=[
            {"product_id": line.product_id, "quantity": line.quantity,
             "unit_price": line.unit_price}
            for line in order.lines
        ],
        **extra,
    )


class OrderService:
    def __init__(
        self,
        db: Database,
        inventory: InventoryService,
        tracer: ServiceTracer,
        metrics: ShopMetrics | None = None,
        currency: str = "USD",
    ) -> None:
        self._db = db
        self._inventory = inventory
        self._tracer = tracer
        self._metrics = metrics
        self._currency = currency

    async def place(self, user_id: int, lines: Sequence[OrderLine]) -> Order:
        """One transaction: order + items + reservation + ``order.placed`` outbox event."""
        if not lines:
            raise ValidationFailed("an order needs at least one line")
        if len({line.product_id for line in lines}) != len(lines):
            raise ValidationFailed("each product may appear once per order")
        order_id = uuid.uuid4()
        ordered = tuple(sorted(lines, key=lambda line: line.product_id))
        total = order_total(ordered)
        with self._tracer.span(
            "order.create",
            {"ecom.order.id": str(order_id), "ecom.user.id": user_id,
             "ecom.order.lines": len(ordered), "ecom.order.total": str(total)},
        ):
            order = Order(order_id, user_id, OrderStatus.PENDING, ordered, total,
                          self._currency, created_at=_now())
            async with self._db.transaction() as conn:
                await sql.insert_order(conn, order_id, user_id, ordered, total, self._currency)
                await self._inventory.reserve(conn, order_id, ordered)
                await add_events(conn, [order_event("order.placed", order)])
        if self._metrics:
            self._metrics.orders.add(1, {"ecom.outcome": "placed"})
        return order

    async def change_status(
        self, conn: asyncpg.Connection, order_id: UUID, target: OrderStatus, **event: object
    ) -> Order:
        """Move a locked order through the state machine and emit ``order.<target>``."""
        with self._tracer.span(
            f"order.{target.value}", {"ecom.order.id": str(order_id)}
        ) as span:
            order = await sql.lock_order(conn, order_id)
            if order is None:
                raise NotFound("order", order_id)
            span.set_attribute("ecom.order.previous_status", order.status.value)
            transition(order.status, target)
            await sql.set_status(conn, order_id, target)
            changed = Order(order.id, order.user_id, target, order.lines, order.total,
                            order.currency, order.created_at)
            await add_events(conn, [order_event(f"order.{target.value}", changed, **event)])
        if self._metrics:
            self._metrics.orders.add(1, {"ecom.outcome": target.value})
        return changed

    async def get(self, user_id: int, order_id: UUID) -> Order:
        """An order of this user; someone else's order is reported as not found."""
        with self._tracer.span("order.get", {"ecom.order.id": str(order_id),
                                             "ecom.user.id": user_id}):
            async with self._db.connection() as conn:
                order = await sql.get_order(conn, order_id)
        if order is None or order.user_id != user_id:
            raise NotFound("order", order_id)
        return order

    async def list_for_user(self, user_id: int, page: int = 1, page_size: int = 20) -> Page[Order]:
        if page < 1 or not 1 <= page_size <= 100:
            raise ValidationFailed("page must be >= 1 and page_size between 1 and 100")
        with self._tracer.span("order.list", {"ecom.user.id": user_id, "ecom.page": page}):
            async with self._db.connection() as conn:
                orders, total = await sql.list_orders(
                    conn, user_id, page_size, (page - 1) * page_size
                )
        return Page(orders, page, page_size, total)


def _now() -> datetime:
    return datetime.now(UTC)
