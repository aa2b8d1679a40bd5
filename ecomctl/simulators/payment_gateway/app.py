"""The simulator's ASGI app: routes, the idempotency store, statistics and error bodies."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ecomctl.errors import ConfigError, ValidationFailed
from ecomctl.simulators.payment_gateway.config import Outcome, SimulatorConfig
from ecomctl.simulators.payment_gateway.refunds import RefundBook, parse_refund_request
from ecomctl.simulators.payment_gateway.requests import ChargeRequest, parse_charge_request
from ecomctl.simulators.payment_gateway.sampling import LatencySampler, OutcomeSampler

DEFAULT_IDEMPOTENCY_CAPACITY = 100_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_T = TypeVar("_T")


# --------------------------------------------------------------------------- charges


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
    # Charge requests that arrived while another with the same key was still being answered:
    # a client that holds one payment at a time (ecomctl's lease) never makes any.
    concurrent_charges: int = 0
    keys_charged_concurrently: set[str] = field(default_factory=set)

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
            "concurrent_charges": self.concurrent_charges,
            "keys_charged_concurrently": sorted(self.keys_charged_concurrently),
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
        self._ledger: dict[str, dict[str, str]] = {}  # idempotency key -> capture
        self._captures_by_charge: dict[str, dict[str, str]] = {}  # charge id -> capture
        self._refunds = RefundBook(self._captures_by_charge.get)
        self._in_flight: Counter[str] = Counter()  # charge requests being answered, by key
        self._timed_out: set[str] = set()  # keys whose first answer was lost
        self.started_at = datetime.now(UTC)  # the books cover charges from here on
        self._replay_rng = random.Random(self._config.seed)
        # Set when the server stops: wakes the requests that are simulating a timeout.
        self._release = asyncio.Event()
        self._stopping = False
        self._app = Starlette(
            routes=[
                Route("/v1/charges", self._post_charge, methods=["POST"]),
                Route("/v1/charges/{charge_id}", self._get_charge, methods=["GET"]),
                Route("/v1/refunds", self._post_refund, methods=["POST"]),
                Route("/v1/payments/{idempotency_key}", self._get_payment, methods=["GET"]),
                Route("/v1/ledger", self._get_ledger, methods=["GET"]),
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
            self._replay_rng = random.Random(new.seed)
            self._latency = LatencySampler(new.seed)
        self._config = new
        return new

    def stats(self) -> dict[str, Any]:
        """Counts by outcome, captures by order and captured totals (amounts as strings),
        refunds, and charges made while another with their key was in flight."""
        return {**self._stats.to_dict(), **self._refunds.stats()}

    def get_charge(self, charge_id: str) -> Charge | None:
        return self._by_id.get(charge_id)

    def ledger(self) -> list[dict[str, str]]:
        """Every capture, in order: what a merchant reconciles its books against. Kept
        whole (unlike the idempotency store, which forgets the oldest keys)."""
        return list(self._ledger.values())

    def refunds(self) -> list[dict[str, str]]:
        """Every refund, in order (``charge`` is the refunded capture's id)."""
        return self._refunds.ledger()

    def decide(self, idempotency_key: str, request: ChargeRequest) -> ChargeReply:
        """The whole decision for one valid charge request: replay, conflict or a fresh draw,
        stored when final. Synchronous on purpose: nothing can interleave (see the package doc)."""
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
            lost = (idempotency_key in self._timed_out
                    and self._replay_rng.random() < self._config.replay_timeout_rate)
            return ChargeReply(status_code, body, replayed=True, hang=lost)

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
        if decision.outcome is Outcome.TIMEOUT:
            self._timed_out.add(idempotency_key)
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
            self._ledger[key] = {**charge.to_dict(), "idempotency_key": key}
            self._captures_by_charge[charge.id] = self._ledger[key]

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
            key = _idempotency_key(request)
            charge_request = _parsed(parse_charge_request, await self._read_json(request))
        except _ApiError:
            self._stats.invalid_requests += 1
            raise
        if self._in_flight[key]:
            self._stats.concurrent_charges += 1
            self._stats.keys_charged_concurrently.add(key)
        self._in_flight[key] += 1
        try:
            reply = self.decide(key, charge_request)
            config = self._config
            latency_s = self._latency.draw_s(config)
            if latency_s > 0:
                await asyncio.sleep(latency_s)
            if reply.hang:
                await self._hang(config.timeout_delay_s, request.receive)
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
        headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
        return JSONResponse(reply.body, status_code=reply.status_code, headers=headers)

    async def _post_refund(self, request: Request) -> Response:
        key = _idempotency_key(request)
        reply = self._refunds.decide(key, _parsed(parse_refund_request,
                                                  await self._read_json(request)))
        headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
        return JSONResponse(reply.body, status_code=reply.status_code, headers=headers)

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

    async def _get_payment(self, request: Request) -> Response:
        """The charge decided under an idempotency key (real gateways have this lookup):
        404 means the gateway holds no charge for it, so nothing was captured."""
        key = request.path_params["idempotency_key"]
        charge = self._by_key.get(key)
        if charge is not None:
            body = charge.to_dict()
        elif key in self._ledger:  # evicted from the replay store, never from the books
            body = dict(self._ledger[key])
        else:
            raise _ApiError(404, "not_found", "no charge for this idempotency key")
        return JSONResponse({**body, "amount_refunded": str(self._refunds.refunded(body["id"]))})

    async def _get_ledger(self, request: Request) -> Response:
        return JSONResponse({"since": self.started_at.isoformat(), "captures": self.ledger(),
                             "refunds": self.refunds()})

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


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise _ApiError(400, "idempotency_key_required", "the Idempotency-Key header is required")
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise _ApiError(400, "invalid_idempotency_key",
                        f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return key


def _parsed(parse: Callable[[object], _T], payload: object) -> _T:
    try:
        return parse(payload)
    except ValidationFailed as exc:
        raise _ApiError(422, "invalid_request", str(exc)) from exc


def _too_large(limit: int) -> _ApiError:
    return _ApiError(413, "request_too_large", f"the body must be at most {limit} bytes")


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
