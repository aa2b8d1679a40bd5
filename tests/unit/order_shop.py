"""The order path's services wired on the in-memory ports (tests/unit/order_fakes), with a
clock the test moves: what the unit tests of checkout, claims and reconciliation drive."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from opentelemetry import trace

from ecomctl.domain.models import OrderStatus
from ecomctl.services.checkout import CheckoutService
from ecomctl.services.inventory import InventoryService
from ecomctl.services.order import OrderPolicy, OrderService, PaymentLease
from ecomctl.services.payment import PaymentService
from ecomctl.services.reconciliation import PaymentReconciler
from ecomctl.telemetry.spans import ServiceTracer
from tests.unit.order_fakes import FakeCarts, FakeDatabase, FakeGateway, FakePrices, Store

USER, OTHER = 7, 8
PRICES = {1: Decimal("10.00"), 2: Decimal("2.50")}
LEASE = PaymentLease(hold_s=8.0, quiet_s=2.0)


class Shop:
    def __init__(self, stock: int = 5, max_pending: int = 3) -> None:
        self.store = Store(stock={pid: [stock, 0] for pid in PRICES})
        self.db = FakeDatabase(self.store)
        self.gateway = FakeGateway()
        self.carts = FakeCarts()
        tracer = ServiceTracer("unit", trace.NoOpTracer())
        inventory = InventoryService(tracer)
        self.orders = OrderService(self.db, inventory, tracer,
                                   policy=OrderPolicy(timedelta(minutes=15), max_pending, LEASE))
        payments = PaymentService(self.gateway, tracer, retry_delay_s=0)
        self.checkout = CheckoutService(self.db, self.carts, FakePrices(PRICES), self.orders,
                                        payments, tracer)
        self.reconciler = PaymentReconciler(self.db, self.orders, payments,
                                            self.carts, tracer)

    @property
    def state(self) -> Store:
        return self.db.store  # the committed state

    def status(self, order_id: object) -> OrderStatus:
        return self.state.orders[order_id].status  # type: ignore[index]

    def later(self, **delta: float) -> None:
        self.db.store.now += timedelta(**delta)
