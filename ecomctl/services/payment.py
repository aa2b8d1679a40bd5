"""Payments: charge an order through the payment gateway (simulator) with one idempotency key
per order, retrying only outcomes that may be transient, record every attempt, look a charge
up when its answer was lost (the reconciler), and refund a capture that landed on an order
cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from ecomctl.backoff import jittered
from ecomctl.domain.events import PAYMENT_EVENTS, DomainEvent, new_event
from ecomctl.domain.models import Order, PaymentAttempt, PaymentStatus
from ecomctl.services.ports.orders import Settlement, StockOutcome, UnitOfWork
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

# A timeout is ambiguous (the charge may have gone through), a gateway error may be
# transient; retrying with the same idempotency key can never capture twice.
_RETRYABLE = frozenset({PaymentStatus.TIMEOUT, PaymentStatus.GATEWAY_ERROR})


class GatewayResult(Protocol):
    @property
    def status(self) -> PaymentStatus: ...
    @property
    def gateway_ref(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


class GatewayRecord(GatewayResult, Protocol):
    @property
    def amount(self) -> Decimal | None: ...


class PaymentGateway(Protocol):
    async def charge(
        self, *, order_id: UUID, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...

    async def lookup(self, idempotency_key: str) -> GatewayRecord | None:
        """The charge decided under this key, or None if the gateway holds none; raises an
        InfraError when it cannot tell."""
        ...

    async def refund(
        self, *, charge_ref: str, amount: Decimal, idempotency_key: str
    ) -> GatewayRecord:
        """Give ``amount`` of a captured charge back (status REFUNDED, the refund's id and
        amount); raises an InfraError when that cannot be done now (tried again later)."""
        ...


def idempotency_key(order_id: UUID) -> str:
    """One key per order: every attempt for the order is the same charge to the gateway."""
    return f"order-{order_id}"


def refund_key(order_id: UUID) -> str:
    """One refund per order (its one capture, given back whole)."""
    return f"refund-{order_id}"


class PaymentService:
    def __init__(
        self,
        gateway: PaymentGateway,
        tracer: ServiceTracer,
        metrics: ShopMetrics | None = None,
        *,
        max_attempts: int = 2,
        retry_delay_s: float = 0.05,
    ) -> None:
        self._gateway = gateway
        self._tracer = tracer
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._retry_delay_s = retry_delay_s

    @property
    def max_attempts(self) -> int:
        return self._max_attempts

    @property
    def retry_delay_s(self) -> float:
        """The delay before the second attempt; the n-th waits n times as long."""
        return self._retry_delay_s

    def use_gateway(self, gateway: PaymentGateway) -> PaymentGateway:
        """Switch to another gateway (fault injection); returns the previous one."""
        previous, self._gateway = self._gateway, gateway
        return previous

    async def charge(self, order: Order) -> list[PaymentAttempt]:
        """Charge the order's total; returns every attempt, the last one being final."""
        key = idempotency_key(order.id)
        attempts: list[PaymentAttempt] = []
        with self._tracer.span(
            "payment.process",
            {"ecom.order.id": str(order.id), "ecom.payment.amount": str(order.total),
             "ecom.payment.currency": order.currency},
        ) as span:
            for number in range(1, self._max_attempts + 1):
                result = await self._gateway.charge(
                    order_id=order.id, amount=order.total, currency=order.currency,
                    idempotency_key=key,
                )
                attempts.append(
                    PaymentAttempt(order.id, number, result.status, order.total,
                                   result.gateway_ref, result.error)
                )
                if self._metrics:
                    self._metrics.payments.add(1, {"ecom.payment.status": result.status.value})
                if result.status not in _RETRYABLE:
                    break
                await asyncio.sleep(jittered(self._retry_delay_s * number))
            final = attempts[-1].status
            span.set_attribute("ecom.payment.status", final.value)
            span.set_attribute("ecom.payment.attempts", len(attempts))
        return attempts

    async def resume(self, order: Order) -> list[PaymentAttempt]:
        """Finish paying an order an earlier checkout may have charged already: what the
        gateway decided under the order's key if it decided anything (never charged again),
        otherwise a charge under that same key, so the gateway captures at most once. Raises
        an InfraError when the gateway cannot tell."""
        found = await self.lookup(order)
        if found is None:
            return await self.charge(order)
        return [PaymentAttempt(order.id, 1, found.status, found.amount or order.total,
                               found.gateway_ref, "decided before a retried checkout")]

    async def lookup(self, order: Order) -> GatewayRecord | None:
        """Ask the gateway what became of the order's charge (see PaymentGateway.lookup)."""
        with self._tracer.span("payment.lookup", {"ecom.order.id": str(order.id)}) as span:
            found = await self._gateway.lookup(idempotency_key(order.id))
            span.set_attribute("ecom.payment.status", found.status.value if found else "none")
            return found

    async def refund(self, order: Order, capture: GatewayRecord) -> PaymentAttempt:
        """Give the order's capture back at the gateway, once whatever the retries (one
        refund key per order); raises an InfraError when the gateway cannot do it now."""
        amount = capture.amount or order.total
        with self._tracer.span("payment.refund", {"ecom.order.id": str(order.id),
                                                  "ecom.payment.amount": str(amount)}):
            if capture.gateway_ref is None:
                raise ValueError("a capture to refund needs its charge id")
            refunded = await self._gateway.refund(charge_ref=capture.gateway_ref,
                                                  amount=amount,
                                                  idempotency_key=refund_key(order.id))
        if self._metrics:
            self._metrics.payments.add(1, {"ecom.payment.status": PaymentStatus.REFUNDED.value})
        return PaymentAttempt(order.id, 1, PaymentStatus.REFUNDED, refunded.amount or amount,
                              refunded.gateway_ref, "refund of a capture on a cancelled order")

    async def record_refund(self, uow: UnitOfWork, order: Order, refund: PaymentAttempt
                            ) -> None:
        """Store the refund in ``uow`` with its ``payment.refunded`` event."""
        with self._tracer.span("payment.record", {"ecom.order.id": str(order.id)}):
            await uow.payments.add_attempts([refund], refund_key(order.id), order.currency)
            uow.add_event(new_event(
                "payment.refunded", PAYMENT_EVENTS, "payment", order.id, order_id=order.id,
                amount=refund.amount, currency=order.currency, gateway_ref=refund.gateway_ref,
            ))

    async def record(
        self, uow: UnitOfWork, order: Order, attempts: Sequence[PaymentAttempt],
    ) -> None:
        """Store the attempts in ``uow`` with their settled outcome's payment event (a
        captured, declined or never-charged order); a checkout's settlement writes them with
        the order's move instead (``settlement``)."""
        with self._tracer.span("payment.record", {"ecom.order.id": str(order.id)}):
            await uow.payments.add_attempts(attempts, idempotency_key(order.id), order.currency)
            uow.add_event(_settled_event(order, attempts))

    def settlement(
        self, order: Order, attempts: Sequence[PaymentAttempt], stock: StockOutcome | None,
        *, settled: bool = True,
    ) -> Settlement:
        """What settling ``order`` writes with its move: ``stock`` sold or released, the
        attempts, and (a settled outcome: captured, declined, or known never charged) the
        payment event."""
        return Settlement(stock, tuple(attempts), idempotency_key(order.id), order.currency,
                          events=(_settled_event(order, attempts),) if settled else ())


def _settled_event(order: Order, attempts: Sequence[PaymentAttempt]) -> DomainEvent:
    final = attempts[-1] if attempts else None
    captured = final is not None and final.status is PaymentStatus.CAPTURED
    return new_event(
        "payment.captured" if captured else "payment.failed", PAYMENT_EVENTS,
        "payment", order.id, order_id=order.id, amount=order.total,
        currency=order.currency,
        status=final.status.value if final else "not_charged",
        attempts=len(attempts), gateway_ref=final.gateway_ref if final else None,
    )
