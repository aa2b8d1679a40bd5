"""The payment gateway client: one charge call, every outcome returned as data.

The payment service records every attempt, so the outcomes a gateway can produce are values,
not exceptions: 2xx captured -> CAPTURED, 402 -> DECLINED, no answer in time -> TIMEOUT,
anything else (5xx, other 4xx, connection refused or reset, a body that is not what the API
promises) -> GATEWAY_ERROR with a readable ``error``. The client never retries: the caller
decides, and a retry must reuse the idempotency key so the gateway cannot capture twice.

Trace context: the project instruments httpx globally (opentelemetry-instrumentation-httpx),
which injects ``traceparent`` into every request of this client's one ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ecomctl.domain.models import PaymentStatus
from ecomctl.domain.money import money
from ecomctl.errors import BackendUnavailable, ConfigError, RequestRejected

DEFAULT_TIMEOUT_S = 2.0
CHARGES_PATH = "/v1/charges"
PAYMENTS_PATH = "/v1/payments"  # a charge looked up by its idempotency key
REFUNDS_PATH = "/v1/refunds"


@dataclass(frozen=True)
class GatewayCharge:
    """The outcome of one charge call."""

    status: PaymentStatus
    gateway_ref: str | None = None  # the gateway's charge id (captured or declined)
    error: str | None = None  # why it was not captured, for the payment record
    amount: Decimal | None = None  # what a looked-up charge was for


class PaymentGatewayClient:
    """An HTTP client of the payment gateway (the simulator's API).

    ``timeout_s`` is a deadline for the whole call (connect, send, wait, read), not per phase.
    ``transport`` is for tests (e.g. ``httpx.ASGITransport`` over the simulator in-process).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ConfigError(f"payment gateway timeout must be positive, got {timeout_s}")
        if max_connections < 1:
            raise ConfigError(f"max_connections must be at least 1, got {max_connections}")
        self._timeout_s = timeout_s
        # One client (one connection pool) for the lifetime of this object, never per call.
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    async def charge(
        self, *, order_id: UUID, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayCharge:
        """Ask the gateway to capture ``amount``; never raises for a gateway outcome.

        A bad ``amount`` (float, negative) is the caller's bug and raises ValidationFailed."""
        body = {"order_id": str(order_id), "amount": str(money(amount)), "currency": currency}
        headers = {"Idempotency-Key": idempotency_key}
        try:
            # httpx's timeout applies to each phase; this one bounds the call as a whole.
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(CHARGES_PATH, json=body, headers=headers)
        except (httpx.TimeoutException, TimeoutError) as exc:
            return GatewayCharge(
                PaymentStatus.TIMEOUT,
                error=f"no answer within {self._timeout_s:g}s ({type(exc).__name__})",
            )
        except httpx.HTTPError as exc:  # refused, reset, protocol error...
            return GatewayCharge(PaymentStatus.GATEWAY_ERROR, error=_describe(exc))
        return _outcome(response)

    async def lookup(self, idempotency_key: str) -> GatewayCharge | None:
        """What the gateway decided for this key: the charge (captured or declined), or None
        when it holds no charge for it (nothing was captured). Raises BackendUnavailable when
        it cannot tell (unreachable, 5xx): the order then stays unsettled for a later try."""
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.get(
                    f"{PAYMENTS_PATH}/{quote(idempotency_key, safe='')}"
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise BackendUnavailable("payment-gateway", _describe(exc)) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BackendUnavailable("payment-gateway", f"lookup answered HTTP "
                                     f"{response.status_code}: {_snippet(response)}")
        body = _json_object(response) or {}
        status, charge_id = body.get("status"), body.get("id")
        if status not in ("captured", "declined") or not isinstance(charge_id, str):
            raise BackendUnavailable("payment-gateway",
                                     f"malformed lookup answer: {_snippet(response)}")
        return GatewayCharge(PaymentStatus(status), gateway_ref=charge_id,
                             amount=Decimal(str(body.get("amount"))))

    async def refund(
        self, *, charge_ref: str, amount: Decimal, idempotency_key: str
    ) -> GatewayCharge:
        """Give ``amount`` of a captured charge back (REFUNDED, the refund's id and amount).
        Raises BackendUnavailable when the gateway cannot be asked or fails (the caller
        retries with the same key, which replays a refund already made) and RequestRejected
        when it refuses the refund itself."""
        body = {"charge": charge_ref, "amount": str(money(amount))}
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(REFUNDS_PATH, json=body,
                                                 headers={"Idempotency-Key": idempotency_key})
        except (httpx.HTTPError, TimeoutError) as exc:
            raise BackendUnavailable("payment-gateway", _describe(exc)) from exc
        if 400 <= response.status_code < 500:
            raise RequestRejected(f"payment-gateway refused the refund (HTTP "
                                  f"{response.status_code}): {_snippet(response)}")
        if not response.is_success:
            raise BackendUnavailable("payment-gateway", f"refund answered HTTP "
                                     f"{response.status_code}: {_snippet(response)}")
        answer = _json_object(response) or {}
        refund_id = answer.get("id")
        if not isinstance(refund_id, str) or answer.get("status") != "succeeded":
            raise BackendUnavailable("payment-gateway",
                                     f"malformed refund answer: {_snippet(response)}")
        return GatewayCharge(PaymentStatus.REFUNDED, gateway_ref=refund_id,
                             amount=Decimal(str(answer.get("amount", amount))))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PaymentGatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _outcome(response: httpx.Response) -> GatewayCharge:
    body = _json_object(response)
    code = response.status_code
    if response.is_success:
        charge_id = body.get("id") if body is not None else None
        if body is None or body.get("status") != "captured" or not isinstance(charge_id, str):
            return GatewayCharge(
                PaymentStatus.GATEWAY_ERROR,
                error=f"malformed response (HTTP {code}): {_snippet(response)}",
            )
        return GatewayCharge(PaymentStatus.CAPTURED, gateway_ref=charge_id)
    if code == 402:
        ref = body.get("id") if body is not None else None
        reason = [str(body[k]) for k in ("error", "decline_code") if body and body.get(k)]
        return GatewayCharge(
            PaymentStatus.DECLINED,
            gateway_ref=ref if isinstance(ref, str) else None,
            error=": ".join(reason) or "card_declined",
        )
    # 5xx: the gateway failed; other 4xx: it refused the request (a bug on our side, kept
    # as a recorded gateway error rather than an exception in the middle of a checkout).
    detail = _error_detail(body) or _snippet(response)
    return GatewayCharge(PaymentStatus.GATEWAY_ERROR, error=f"HTTP {code}: {detail}")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_detail(body: dict[str, Any] | None) -> str:
    if body is None:
        return ""
    return ": ".join(str(body[k]) for k in ("error", "message") if body.get(k))


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    text = response.text.strip()
    return (text[:limit] + "...") if len(text) > limit else (text or "<empty body>")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
