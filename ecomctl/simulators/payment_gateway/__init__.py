"""The payment gateway simulator: an ASGI app that captures or declines charges, with
configurable latency and faults, plus a runner that serves it in-process with uvicorn.

HTTP API (JSON in and out; every error body is ``{"error": code, "message": text}``)::

    POST  /v1/charges         {"order_id", "amount": "12.34", "currency": "USD"}
                              + header Idempotency-Key (required)
                              201 captured | 402 card_declined | 500/502/503 gateway_error
                              | a hang of timeout_delay_s, then 504 (or the late 201)
                              | 409 key reused with another body | 400/413/422 bad request
    GET   /v1/charges/{id}    the charge (captured or declined)
    GET   /v1/payments/{key}  the charge decided under an Idempotency-Key (404: none), with
                              its amount_refunded
    POST  /v1/refunds         {"charge": "ch_...", "amount": "12.34" (default: what is left)}
                              + header Idempotency-Key (required): 201 the refund (replayed
                              for the same key) | 404 no such capture | 422 more than is left
                              | 409 key reused with another body
    GET   /v1/ledger          every capture and every refund since the simulator started
    GET   /healthz            {"status": "ok"}
    GET   /v1/stats           counts by outcome, captures by order, captured and refunded
                              amounts, charges that arrived while their key was in flight
    GET   /v1/config          the current SimulatorConfig
    PATCH /v1/config          partial update, validated (fault injection while it runs)

How an outcome is chosen. The faults are applied in order, each to the requests the previous
one let through: first ``timeout_rate`` (the gateway hangs), then ``error_rate`` (it answers
5xx), then ``decline_rate`` (the card is refused); the rest are captured. Each rate is therefore
independent and any combination of values in [0, 1] is valid: ``error_rate=1`` always means
"every request that does not time out fails", whatever the decline rate is. With
``timeout_capture_rate`` a timed-out charge may have been captured before the answer was lost,
the ambiguous case idempotency keys exist for: a retry with the same key replays the capture.

Idempotency. Final outcomes (captured, declined) are stored under the Idempotency-Key and
replayed to every later request with that key (same charge id, header
``Idempotent-Replayed: true``); the same key with a different body is answered 409. Transient
outcomes (gateway errors, timeouts that captured nothing) are not stored, so a retry with the
same key gets a fresh draw, as a caller retrying a failed payment expects. The look-up, the
draw and the store happen in one synchronous step with no await in between, which makes them
atomic on the event loop: two concurrent requests with one key can never both capture, and no
lock is needed. The store keeps the most recent ``idempotency_capacity`` keys (LRU); the
statistics (outcome counts, captures per order, captured totals) are exact and unbounded, so an
invariant check can compare them with the shop's own records.

With a ``seed``, the sequence of outcomes (and of latencies) is reproducible for a given
sequence of requests. Charge ids are always random, so that runs against the same database
never reuse a ``gateway_ref``.
"""

from __future__ import annotations

from ecomctl.simulators.payment_gateway.app import PaymentGatewaySimulator
from ecomctl.simulators.payment_gateway.config import (
    LatencyDistribution,
    Outcome,
    SimulatorConfig,
)
from ecomctl.simulators.payment_gateway.requests import ChargeRequest, parse_charge_request
from ecomctl.simulators.payment_gateway.runner import (
    RunningGateway,
    SimulatorStartError,
    run_payment_gateway,
)
from ecomctl.simulators.payment_gateway.sampling import LatencySampler, OutcomeSampler

__all__ = [
    "ChargeRequest",
    "LatencyDistribution",
    "LatencySampler",
    "Outcome",
    "OutcomeSampler",
    "PaymentGatewaySimulator",
    "RunningGateway",
    "SimulatorConfig",
    "SimulatorStartError",
    "parse_charge_request",
    "run_payment_gateway",
]
