"""Errors become JSON bodies with a status code here, and only here. Nothing leaks a traceback:
a domain refusal is a 4xx, a backend outage a 503, anything unexpected a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from ecomctl.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    CartFull,
    CheckoutInProgress,
    DomainError,
    EmailTaken,
    EmptyCart,
    Forbidden,
    IdempotencyConflict,
    IdempotencyMismatch,
    InfraError,
    InvalidTransition,
    NotFound,
    NotInCart,
    OrderExpired,
    OutOfStock,
    Overloaded,
    PaymentReversed,
    RateLimited,
    TooManyPendingOrders,
    ValidationFailed,
    error_code,
)

log = logging.getLogger("ecomctl.gateway")

_STATUS: list[tuple[type[DomainError], int]] = [
    (CartFull, 409),  # before its base, ValidationFailed
    (ValidationFailed, 422),
    (NotFound, 404),
    (AuthenticationFailed, 401),
    (RateLimited, 429),
    (Forbidden, 403),
    (OutOfStock, 409),
    (InvalidTransition, 409),
    (EmptyCart, 409),
    (NotInCart, 409),
    (EmailTaken, 409),
    (OrderExpired, 409),
    (TooManyPendingOrders, 409),
    (IdempotencyConflict, 409),
    (CheckoutInProgress, 409),
    (PaymentReversed, 409),
    (IdempotencyMismatch, 422),
]


def error_body(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers=headers or None)


def domain_status(exc: DomainError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path. Starlette's own 405 names only
    the first route that matched the path, not the others (GET and POST /api/orders are two
    routes), so its Allow header left documented methods out."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain(_: Request, exc: DomainError) -> JSONResponse:
        status = domain_status(exc)
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, IdempotencyConflict):
            headers["Retry-After"] = "1"
        if isinstance(exc, CheckoutInProgress):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        return error_body(status, error_code(exc), str(exc), **headers)

    @app.exception_handler(BackendUnavailable)
    async def unavailable(_: Request, exc: BackendUnavailable) -> JSONResponse:
        return error_body(503, "backend_unavailable", f"{exc.backend} is unavailable",
                          **{"Retry-After": "1"})

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        # Push-back, not a fault: no log line per refusal (a flood would flood the log too).
        return error_body(503, "overloaded", f"{exc.resource} is busy; retry later",
                          **{"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(InfraError)
    async def infra(_: Request, exc: InfraError) -> JSONResponse:
        log.error("infrastructure error: %s", exc)
        return error_body(503, "service_unavailable", "a backend failed; try again")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(
            first.get("msg", "invalid request")
        )
        return error_body(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode at all (bytes that are not UTF-8):
            # the same 422 as a body that is not JSON (its json_invalid), so a client meets
            # one status, documented on every operation, for "not what the document says".
            return error_body(422, "invalid_request", "the request body is not valid JSON")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return error_body(exc.status_code, "http_error", str(exc.detail), **headers)

    @app.exception_handler(TimeoutError)
    async def timed_out(_: Request, exc: TimeoutError) -> JSONResponse:
        # A call of the request's own that gave up (the database's timeouts are already
        # BackendUnavailable): the service could not answer in time, not a bug.
        log.warning("request timed out: %r", exc)
        return error_body(503, "timed_out", "the request timed out; try again",
                          **{"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_body(500, "internal_error", "unexpected error")
