"""The payment gateway simulator: an ASGI app that captures or declines charges, with
configurable latency and faults, plus a runner that serves it in-process with uvicorn.

HTTP API (JSON in and out; every error body is ``{"error": code, "message": text}``)::

    POST  /v1/charges         {"order_id", "amount": "12.34", "currency": "USD"}
                              + header Idempotency-Key (required)
                              201 captured | 402 card_declined | 500/502/503 gateway_error
                              | a hang of timeout_delay_s, then 504 (or the late 201)
                              | 409 key reused with another body | 400/413/422 bad request
    GET   /v1/charges/{id}    the charge (captured or declined)
    GET   /healthz            {"status": "ok"}
    GET   /v1/stats           counts by outcome, captures by order, captured amounts
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

import asyncio
import contextlib
import json
import math
import random
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ecomctl.adapters.asgi_server import ServedAddress, serving
from ecomctl.domain.money import MAX_AMOUNT, money
from ecomctl.errors import ConfigError, ServerStartError, ValidationFailed

MAX_LATENCY_MS = 600_000.0  # ten minutes: anything longer is a typo, not a simulation
MAX_TIMEOUT_DELAY_S = 3_600.0
DEFAULT_IDEMPOTENCY_CAPACITY = 100_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_ORDER_ID_LENGTH = 128
ERROR_STATUSES = (500, 502, 503)
DECLINE_CODES = ("insufficient_funds", "do_not_honor", "expired_card")

# Plain digits with at most two decimals: no exponent, sign, NaN or thousands separator.
_AMOUNT_RE = re.compile(r"(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")


SimulatorStartError = ServerStartError  # the name the simulator's callers know


# --------------------------------------------------------------------------- configuration


class LatencyDistribution(StrEnum):
    """How response latency is drawn from ``latency_mean_ms`` and ``latency_jitter_ms``.

    ``lognormal`` (default): mean and standard deviation as given, right-skewed with a long
    tail and never negative, which is the shape real network services show. ``normal``: the
    symmetric textbook curve, clamped at 0 (so with a large jitter the mean shifts upwards).
    A jitter of 0 gives a constant latency with either.
    """

    LOGNORMAL = "lognormal"
    NORMAL = "normal"


_RATE_FIELDS = ("decline_rate", "error_rate", "timeout_rate", "timeout_capture_rate")


@dataclass(frozen=True)
class SimulatorConfig:
    """Latency and fault settings. Construction validates and raises ConfigError."""

    latency_mean_ms: float = 50.0
    latency_jitter_ms: float = 20.0
    latency_distribution: LatencyDistribution = LatencyDistribution.LOGNORMAL
    decline_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    # Of the timed-out charges, the fraction captured before the answer was lost.
    timeout_capture_rate: float = 0.0
    # How long a "timeout" hangs before answering: longer than any client timeout.
    timeout_delay_s: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in (*_RATE_FIELDS, "latency_mean_ms", "latency_jitter_ms", "timeout_delay_s"):
            _check_number(name, getattr(self, name))
        for name in _RATE_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("latency_mean_ms", "latency_jitter_ms"):
            if not 0.0 <= getattr(self, name) <= MAX_LATENCY_MS:
                raise ConfigError(
                    f"{name} must be between 0 and {MAX_LATENCY_MS:g}, got {getattr(self, name)}"
                )
        if not 0.0 <= self.timeout_delay_s <= MAX_TIMEOUT_DELAY_S:
            raise ConfigError(
                f"timeout_delay_s must be between 0 and {MAX_TIMEOUT_DELAY_S:g}, "
                f"got {self.timeout_delay_s}"
            )
        # Accept the plain string too ("normal"), as a StrEnum field invites.
        object.__setattr__(
            self, "latency_distribution", _coerce("latency_distribution", self.latency_distribution)
        )
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ConfigError(f"seed must be an integer or null, got {self.seed!r}")

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, object], *, base: SimulatorConfig | None = None
    ) -> SimulatorConfig:
        """A config from loosely typed input (JSON, CLI flags): the fields in ``spec`` replace
        those of ``base`` (default: the defaults). Unknown fields and wrong types are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = asdict(base or cls())
        for name, value in spec.items():
            values[name] = _coerce(name, value)
        return cls(**values)

    def with_changes(self, **changes: object) -> SimulatorConfig:
        """A validated copy with some settings changed."""
        return SimulatorConfig.from_spec(changes, base=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        values = asdict(self)
        values["latency_distribution"] = self.latency_distribution.value
        return values

    def outcome_probabilities(self) -> dict[Outcome, float]:
        """The share of fresh charge requests that end in each outcome."""
        t, e, d = self.timeout_rate, self.error_rate, self.decline_rate
        return {
            Outcome.TIMEOUT: t,
            Outcome.GATEWAY_ERROR: (1 - t) * e,
            Outcome.DECLINED: (1 - t) * (1 - e) * d,
            Outcome.CAPTURED: (1 - t) * (1 - e) * (1 - d),
        }


def _distribution_names() -> str:
    return ", ".join(d.value for d in LatencyDistribution)


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")


def _coerce(name: str, value: object) -> object:
    """Turn a JSON/CLI value into the field's type, or say what is wrong with it."""
    if name == "latency_distribution":
        try:
            return LatencyDistribution(str(value).lower())
        except ValueError:
            raise ConfigError(
                f"latency_distribution must be one of {_distribution_names()}, got {value!r}"
            ) from None
    if name == "seed":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ConfigError(f"seed must be an integer or null, got {value!r}")
    _check_number(name, value)
    assert isinstance(value, (int, float))
    return float(value)


# --------------------------------------------------------------------------- outcome draws


class Outcome(StrEnum):
    CAPTURED = "captured"
    DECLINED = "declined"
    GATEWAY_ERROR = "gateway_error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Decision:
    """What the gateway does with one fresh charge request."""

    outcome: Outcome
    captured: bool  # True for CAPTURED, and for a TIMEOUT that captured before hanging
    error_status: int | None = None  # the 5xx of a GATEWAY_ERROR
    decline_code: str | None = None  # why a DECLINED card was refused


class OutcomeSampler:
    """Draws decisions. Each draw consumes the same number of random numbers whatever the
    rates are, so a seed gives the same sequence of uniforms even when faults are switched
    on and off mid-run: only the thresholds move."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def draw(self, config: SimulatorConfig) -> Decision:
        r = self._rng
        u_timeout, u_capture, u_error, u_decline, u_pick = (r.random() for _ in range(5))
        if u_timeout < config.timeout_rate:
            return Decision(Outcome.TIMEOUT, captured=u_capture < config.timeout_capture_rate)
        if u_error < config.error_rate:
            status = ERROR_STATUSES[int(u_pick * len(ERROR_STATUSES))]
            return Decision(Outcome.GATEWAY_ERROR, captured=False, error_status=status)
        if u_decline < config.decline_rate:
            code = DECLINE_CODES[int(u_pick * len(DECLINE_CODES))]
            return Decision(Outcome.DECLINED, captured=False, decline_code=code)
        return Decision(Outcome.CAPTURED, captured=True)


class LatencySampler:
    """Draws response latencies (seconds) from the configured distribution."""

    def __init__(self, seed: int | None = None) -> None:
        # Its own stream, so changing latency settings never shifts the outcome sequence.
        self._rng = random.Random(None if seed is None else f"latency:{seed}")

    def draw_s(self, config: SimulatorConfig) -> float:
        mean, jitter = config.latency_mean_ms, config.latency_jitter_ms
        if mean == 0.0 or jitter == 0.0:
            return mean / 1000.0
        if config.latency_distribution is LatencyDistribution.NORMAL:
            return max(0.0, self._rng.gauss(mean, jitter)) / 1000.0
        # Lognormal with the requested mean and standard deviation (method of moments).
        sigma2 = math.log1p((jitter / mean) ** 2)
        mu = math.log(mean) - sigma2 / 2
        return self._rng.lognormvariate(mu, math.sqrt(sigma2)) / 1000.0


# --------------------------------------------------------------------------- requests, charges


@dataclass(frozen=True)
class ChargeRequest:
    """A validated charge request; equal requests are what an idempotent replay must match."""

    order_id: str
    amount: Decimal
    currency: str


def parse_charge_request(payload: object) -> ChargeRequest:
    """Validate a decoded JSON body; raise ValidationFailed saying which field is wrong."""
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object")
    expected = {"order_id", "amount", "currency"}
    missing = sorted(expected - payload.keys())
    if missing:
        raise ValidationFailed(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(payload.keys() - expected)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}")
    order_id, amount, currency = payload["order_id"], payload["amount"], payload["currency"]
    if not isinstance(order_id, str) or not 0 < len(order_id) <= MAX_ORDER_ID_LENGTH:
        raise ValidationFailed(f"order_id must be a string of 1 to {MAX_ORDER_ID_LENGTH} chars")
    if not isinstance(amount, str):
        # A JSON number would be read as a float: money travels as a decimal string.
        raise ValidationFailed('amount must be a decimal string such as "12.34"')
    if not _AMOUNT_RE.fullmatch(amount):
        raise ValidationFailed(f'amount must look like "12.34" (at most 2 decimals): {amount!r}')
    value = Decimal(amount)
    if value <= 0 or value > MAX_AMOUNT:
        raise ValidationFailed(f"amount must be greater than 0 and at most {MAX_AMOUNT}")
    if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency):
        raise ValidationFailed("currency must be a 3-letter ISO 4217 code")
    return ChargeRequest(order_id=order_id, amount=money(value), currency=currency.upper())


@dataclass(frozen=True)
class Charge:
    """A charge the gateway decided on for good (captured or declined)."""

    id: str
    request: ChargeRequest
    status: Outcome
    decline_code: str | None = None

    def to_dict(self) -> dict[str, str]:
        body = {
            "id": self.id,
            "status": self.status.value,
            "order_id": self.request.order_id,
            "amount": str(self.request.amount),
            "currency": self.request.currency,
        }
        if self.decline_code is not None:
            body["decline_code"] = self.decline_code
        return body

    def response(self) -> tuple[int, dict[str, str]]:
        if self.status is Outcome.CAPTURED:
            return 201, self.to_dict()
        return 402, {
            "error": "card_declined",
            "message": f"the card was declined ({self.decline_code})",
            **self.to_dict(),
        }


def _new_charge_id() -> str:
    return f"ch_{secrets.token_hex(12)}"


@dataclass
class _Stats:
    charge_requests: int = 0
    invalid_requests: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: {
            **{o.value: 0 for o in Outcome},
            "replayed": 0,
            "conflict": 0,
        }
    )
    captures: int = 0
    captured_by_currency: dict[str, Decimal] = field(default_factory=dict)
    captures_by_order: dict[str, int] = field(default_factory=dict)

    def record_capture(self, request: ChargeRequest) -> None:
        self.captures += 1
        total = self.captured_by_currency.get(request.currency, Decimal("0.00"))
        self.captured_by_currency[request.currency] = total + request.amount
        self.captures_by_order[request.order_id] = (
            self.captures_by_order.get(request.order_id, 0) + 1
        )

    def to_dict(self) -> dict[str, Any]:
        total = sum(self.captured_by_currency.values(), Decimal("0.00"))
        return {
            "charge_requests": self.charge_requests,
            "invalid_requests": self.invalid_requests,
            "outcomes": dict(self.outcomes),
            "captures": self.captures,
            "captured_amount": str(total),
            "captured_amount_by_currency": {
                currency: str(amount) for currency, amount in self.captured_by_currency.items()
            },
            "captures_by_order": dict(self.captures_by_order),
            "orders_captured_more_than_once": sorted(
                order for order, count in self.captures_by_order.items() if count > 1
            ),
        }


@dataclass(frozen=True)
class ChargeReply:
    """What the simulator answers to one charge request, and whether it hangs first."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False
    hang: bool = False  # a simulated timeout: wait timeout_delay_s before answering


class _ApiError(Exception):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


def _error_body(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


# --------------------------------------------------------------------------- the app


class PaymentGatewaySimulator:
    """The simulator's state and its ASGI app: the object itself is the ASGI callable.

    Change settings while it runs with :meth:`update_config` (or ``PATCH /v1/config``)."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        idempotency_capacity: int = DEFAULT_IDEMPOTENCY_CAPACITY,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if idempotency_capacity < 1:
            raise ConfigError("idempotency_capacity must be at least 1")
        if max_body_bytes < 1:
            raise ConfigError("max_body_bytes must be at least 1")
        self._config = config or SimulatorConfig()
        self._outcomes = OutcomeSampler(self._config.seed)
        self._latency = LatencySampler(self._config.seed)
        self._capacity = idempotency_capacity
        self._max_body_bytes = max_body_bytes
        self._by_key: OrderedDict[str, Charge] = OrderedDict()
        self._by_id: OrderedDict[str, Charge] = OrderedDict()
        self._stats = _Stats()
        # Set when the server stops: wakes the requests that are simulating a timeout.
        self._release = asyncio.Event()
        self._stopping = False
        self._app = Starlette(
            routes=[
                Route("/v1/charges", self._post_charge, methods=["POST"]),
                Route("/v1/charges/{charge_id}", self._get_charge, methods=["GET"]),
                Route("/v1/stats", self._get_stats, methods=["GET"]),
                Route("/v1/config", self._get_config, methods=["GET"]),
                Route("/v1/config", self._patch_config, methods=["PATCH"]),
                Route("/healthz", self._healthz, methods=["GET"]),
            ],
            exception_handlers={
                _ApiError: self._on_api_error,
                HTTPException: self._on_http_exception,
                Exception: self._on_unexpected_error,
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    # -- Python API ------------------------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def update_config(self, **changes: object) -> SimulatorConfig:
        """Change some settings now (validated; ConfigError leaves the old ones in place).
        A new ``seed`` restarts the random sequences."""
        new = self._config.with_changes(**changes)
        if "seed" in changes:
            self._outcomes = OutcomeSampler(new.seed)
            self._latency = LatencySampler(new.seed)
        self._config = new
        return new

    def stats(self) -> dict[str, Any]:
        """Counts by outcome, captures by order and captured totals (amounts as strings)."""
        return self._stats.to_dict()

    def get_charge(self, charge_id: str) -> Charge | None:
        return self._by_id.get(charge_id)

    def decide(self, idempotency_key: str, request: ChargeRequest) -> ChargeReply:
        """The whole decision for one valid charge request: replay, conflict or a fresh draw,
        stored when final. Synchronous on purpose: nothing can interleave (see module doc)."""
        self._stats.charge_requests += 1
        stored = self._by_key.get(idempotency_key)
        if stored is not None:
            self._by_key.move_to_end(idempotency_key)
            if stored.request != request:
                self._stats.outcomes["conflict"] += 1
                return ChargeReply(
                    409,
                    _error_body(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request body",
                    ),
                )
            self._stats.outcomes["replayed"] += 1
            status_code, body = stored.response()
            return ChargeReply(status_code, body, replayed=True)

        decision = self._outcomes.draw(self._config)
        self._stats.outcomes[decision.outcome.value] += 1
        if decision.outcome is Outcome.GATEWAY_ERROR:
            status = decision.error_status or 500
            return ChargeReply(status, _error_body("gateway_error", f"simulated {status} failure"))
        if decision.outcome is Outcome.TIMEOUT and not decision.captured:
            return ChargeReply(504, _error_body("gateway_timeout", "simulated timeout"), hang=True)
        charge = Charge(
            id=_new_charge_id(),
            request=request,
            status=Outcome.CAPTURED if decision.captured else Outcome.DECLINED,
            decline_code=decision.decline_code,
        )
        self._store(idempotency_key, charge)
        status_code, body = charge.response()
        return ChargeReply(status_code, body, hang=decision.outcome is Outcome.TIMEOUT)

    def _store(self, key: str, charge: Charge) -> None:
        self._by_key[key] = charge
        self._by_id[charge.id] = charge
        for store in (self._by_key, self._by_id):
            while len(store) > self._capacity:
                store.popitem(last=False)
        if charge.status is Outcome.CAPTURED:
            self._stats.record_capture(charge.request)

    # -- server lifecycle hooks (used by run_payment_gateway) --------------------------------

    def _server_starting(self) -> None:
        self._stopping = False
        self._release = asyncio.Event()

    def _server_stopping(self) -> None:
        """Answer every hanging request now and stop hanging new ones, so that shutting down
        never waits for timeout_delay_s."""
        self._stopping = True
        self._release.set()

    # -- HTTP handlers ---------------------------------------------------------------------

    async def _post_charge(self, request: Request) -> Response:
        try:
            key, charge_request = await self._parse_charge(request)
        except _ApiError:
            self._stats.invalid_requests += 1
            raise
        reply = self.decide(key, charge_request)
        config = self._config
        latency_s = self._latency.draw_s(config)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        if reply.hang:
            await self._hang(config.timeout_delay_s, request.receive)
        headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
        return JSONResponse(reply.body, status_code=reply.status_code, headers=headers)

    async def _parse_charge(self, request: Request) -> tuple[str, ChargeRequest]:
        key = request.headers.get("idempotency-key")
        if key is None:
            raise _ApiError(
                400, "idempotency_key_required", "the Idempotency-Key header is required"
            )
        if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise _ApiError(
                400,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
            )
        payload = await self._read_json(request)
        try:
            return key, parse_charge_request(payload)
        except ValidationFailed as exc:
            raise _ApiError(422, "invalid_request", str(exc)) from exc

    async def _hang(self, delay_s: float, receive: Receive) -> None:
        """Wait like a stuck gateway: until the delay passes, the caller hangs up (nobody is
        left to answer) or the server stops."""
        if self._stopping or delay_s <= 0:
            return
        waiters = {
            asyncio.ensure_future(self._release.wait()),
            asyncio.ensure_future(_wait_for_disconnect(receive)),
        }
        try:
            await asyncio.wait(waiters, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _get_charge(self, request: Request) -> Response:
        charge = self._by_id.get(request.path_params["charge_id"])
        if charge is None:
            raise _ApiError(404, "not_found", "no such charge")
        return JSONResponse(charge.to_dict())

    async def _get_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _get_config(self, request: Request) -> Response:
        return JSONResponse(self._config.to_dict())

    async def _patch_config(self, request: Request) -> Response:
        payload = await self._read_json(request)
        if not isinstance(payload, dict):
            raise _ApiError(422, "invalid_config", "the body must be a JSON object of settings")
        try:
            config = self.update_config(**{str(k): v for k, v in payload.items()})
        except ConfigError as exc:
            raise _ApiError(422, "invalid_config", str(exc)) from exc
        return JSONResponse(config.to_dict())

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _read_json(self, request: Request) -> object:
        """The decoded body, refusing oversized ones without reading them to the end."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            raise _too_large(self._max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _too_large(self._max_body_bytes)
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except ValueError as exc:  # also UnicodeDecodeError
            raise _ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc

    async def _on_api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _ApiError)
        return JSONResponse(_error_body(exc.code, exc.message), status_code=exc.status_code)

    async def _on_http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            _error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    async def _on_unexpected_error(self, request: Request, exc: Exception) -> Response:
        return JSONResponse(_error_body("internal_error", type(exc).__name__), status_code=500)


def _too_large(limit: int) -> _ApiError:
    return _ApiError(413, "request_too_large", f"the body must be at most {limit} bytes")


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# --------------------------------------------------------------------------- the runner


@dataclass(frozen=True)
class RunningGateway(ServedAddress):
    """A simulator being served: where to reach it (``url``), and the simulator to
    reconfigure."""

    simulator: PaymentGatewaySimulator = field(kw_only=True)


@contextlib.asynccontextmanager
async def run_payment_gateway(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    simulator: PaymentGatewaySimulator | None = None,
    startup_timeout_s: float = 10.0,
    shutdown_timeout_s: float = 5.0,
) -> AsyncIterator[RunningGateway]:
    """Serve a simulator with uvicorn in a background task of the running event loop.

    ``port=0`` picks a free port (read it from ``.port`` / ``.url``). Pass either a
    ``config`` or a ready ``simulator``. Leaving the block stops the server; requests that
    are simulating a timeout are answered at once, so it does not wait for timeout_delay_s.
    """
    if simulator is not None and config is not None:
        raise ConfigError("pass either a config or a simulator, not both")
    if simulator is None:
        simulator = PaymentGatewaySimulator(config)
    simulator._server_starting()
    async with serving(
        simulator, name="payment gateway", host=host, port=port,
        before_stop=simulator._server_stopping, startup_timeout_s=startup_timeout_s,
        shutdown_timeout_s=shutdown_timeout_s,
    ) as address:
        yield RunningGateway(host, address.port, simulator=simulator)


