"""The ecomctl error hierarchy, translated at one boundary per entrypoint.

    EcomctlError
    ├── ConfigError              bad settings, flags or files       -> CLI exit 2, HTTP 400/422
    │   └── ToolchainError       a host tool (Go, JDK, Maven) missing or too old
    ├── DomainError              a business rule said no            -> HTTP 4xx
    │   ├── ValidationFailed     malformed or out-of-range input    -> 422
    │   │   └── CartFull         a cart line or the cart at its limit -> 409
    │   ├── NotFound             no such user/product/order         -> 404
    │   ├── AuthenticationFailed bad credentials or session         -> 401
    │   ├── RateLimited          too many requests from a client    -> 429 + Retry-After
    │   │   └── LoginThrottled   too many failed logins             -> 429 + Retry-After
    │   ├── Forbidden            not yours                          -> 403 (404 for orders)
    │   ├── OutOfStock           not enough available units         -> 409
    │   ├── InvalidTransition    illegal order state change         -> 409
    │   ├── OrderExpired         the Pending order's hold ran out     -> 409
    │   ├── TooManyPendingOrders the user's cap of open orders        -> 409
    │   ├── IdempotencyConflict  the same key is still being handled  -> 409
    │   ├── CheckoutInProgress   another checkout holds the payment   -> 409 + Retry-After
    │   ├── PaymentReversed      cancelled while its charge was in flight: refunded -> 409
    │   ├── IdempotencyMismatch  the same key with another request    -> 422
    │   ├── EmailTaken           the email has an account already   -> 409
    │   ├── EmptyCart            checkout with nothing in the cart  -> 409
    │   └── NotInCart            a change to a line the cart lacks  -> 409
    └── InfraError               a backend or the host failed       -> CLI exit 1, HTTP 503
        ├── BackendUnavailable   a client could not reach a backend
        ├── Overloaded           work refused rather than queued    -> HTTP 503 + Retry-After
        │   └── Contention       a deadlock or serialisation failure rolled it back: retry
        ├── RequestRejected      a backend refused the request itself (an HTTP 4xx): final
        ├── ServerStartError     an in-process HTTP server could not listen
        ├── MigrationError       the schema could not be brought up to date
        └── StackError           the local stack could not be installed or run
            ├── InstallError     a download, package or build step failed
            └── BackendStartError  a server did not become healthy in time

Adapters raise these ``from`` the driver's exception, so the cause stays in the traceback.
``retryable`` says whether the same work may succeed if tried again (``is_retryable``): the
Kafka consumers retry what is retryable and dead-letter the rest at once.
"""

from __future__ import annotations

import math
from pathlib import Path


class EcomctlError(Exception):
    """Base of every error ecomctl raises on purpose."""

    retryable = False
    """Whether trying the same work again may succeed (an outage may end; a rule will not)."""


class ConfigError(EcomctlError):
    """A setting, flag or input file is invalid; the message says which and why."""


class ToolchainError(ConfigError):
    """Host tools an installer needs are missing or too old; one line per tool, each naming
    the version found, the version needed and how to get it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DomainError(EcomctlError):
    """A business rule rejected the operation (out of stock, illegal transition...)."""


class ValidationFailed(DomainError):
    """Input is malformed or out of range (quantity, email, amount...)."""


class CartFull(ValidationFailed):
    """The cart cannot take this: its line or the cart would go past the limit. The request
    alone was fine; the cart's current content refuses it (HTTP 409, not 422)."""


class NotFound(DomainError):
    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} not found")
        self.kind = kind
        self.key = key


class AuthenticationFailed(DomainError):
    """Bad credentials or an unknown/expired session; never says which."""


class RateLimited(DomainError):
    """Too many requests from one client (address, account); ``retry_after_s`` >= 1."""

    def __init__(self, retry_after_s: int, message: str | None = None) -> None:
        retry_after_s = max(1, int(retry_after_s))
        super().__init__(message or f"too many requests; retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s


class LoginThrottled(RateLimited):
    def __init__(self, retry_after_s: int) -> None:
        retry_after_s = max(1, int(retry_after_s))
        super().__init__(retry_after_s, f"too many failed logins; retry in {retry_after_s}s")


class Forbidden(DomainError):
    """The resource belongs to someone else."""


class OutOfStock(DomainError):
    def __init__(self, product_id: int, requested: int) -> None:
        super().__init__(f"product {product_id}: not enough stock for {requested} unit(s)")
        self.product_id = product_id
        self.requested = requested


class InvalidTransition(DomainError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"order cannot go from {current} to {target}")
        self.current = current
        self.target = target


class OrderExpired(DomainError):
    def __init__(self, order_id: object) -> None:
        super().__init__(f"order {order_id} expired: its stock was released; order again")
        self.order_id = order_id


class TooManyPendingOrders(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} pending orders per customer: pay or cancel one "
                         "(POST /api/orders/{id}/cancel) first")
        self.limit = limit


class IdempotencyConflict(DomainError):
    """A request with this Idempotency-Key is still in progress (IETF httpapi draft: 409)."""

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; "
                         "retry after it finished")


class CheckoutInProgress(DomainError):
    """Another checkout (or the reconciler) holds this payment's lease, for ``lease_left_s``
    at most. Not an error of the client's: it may retry, after ``retry_after_s``: a second
    (a live holder is usually done by then; a dead one's lease lapses in a few)."""

    retryable = True
    retry_after_s = 1

    def __init__(self, order_id: object, lease_left_s: float) -> None:
        self.lease_left_s = max(0, math.ceil(lease_left_s))
        super().__init__(f"order {order_id} is being paid by another request (held for "
                         f"{self.lease_left_s}s at most); retry in a second for its outcome")
        self.order_id = order_id


class PaymentReversed(DomainError):
    """The gateway captured after the order had been cancelled (the charge was in flight
    while the reconciler found none): the capture is refunded, the order stays cancelled."""

    def __init__(self, order_id: object) -> None:
        super().__init__(f"order {order_id} was cancelled while its payment was in flight; "
                         "the charge is refunded: order again")
        self.order_id = order_id


class IdempotencyMismatch(DomainError):
    """The Idempotency-Key was used with a different request (IETF httpapi draft: 422)."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")


class EmailTaken(DomainError):
    """An account with this email (compared case-insensitively) already exists."""

    def __init__(self) -> None:
        # The message does not echo the address: it may end up in logs and span events.
        super().__init__("an account with this email already exists")


class EmptyCart(DomainError):
    """Checkout was asked for an empty cart."""


class NotInCart(DomainError):
    """A change to the line of a product the cart does not hold (removed, bought, or never
    added): the product exists, the cart's content says no (HTTP 409, not 404)."""

    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} is not in the cart (add it first)")
        self.product_id = product_id


class InfraError(EcomctlError):
    """Something outside ecomctl's own logic failed: a backend, the network, the host."""

    retryable = True


class BackendUnavailable(InfraError):
    """A backend could not be reached or did not answer."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend}: {detail}")
        self.backend = backend
        self.detail = detail


class RequestRejected(InfraError):
    """A backend refused the request itself (an Elasticsearch 4xx such as a mapping or parse
    error): sending the same request again gets the same answer, so it is not retried."""

    retryable = False


class Overloaded(InfraError):
    """ecomctl refused work at once instead of queueing it without bound (the password-hash
    queue is full, no database connection came free in time); ``retry_after_s`` >= 1."""

    def __init__(self, resource: str, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(f"{resource}: {detail}")
        self.resource = resource
        self.retry_after_s = max(1, int(retry_after_s))


class Contention(Overloaded):
    """PostgreSQL rolled the transaction back to break a deadlock (or a serialisation
    conflict): nothing was done, and the same request again will most likely succeed."""

    def __init__(self, detail: str) -> None:
        super().__init__("postgres", detail, retry_after_s=1)


class ServerStartError(InfraError):
    """An in-process HTTP server (gateway, simulator) could not listen or did not start."""


class MigrationError(InfraError):
    """A migration failed or an applied migration was changed after the fact."""


class StackError(InfraError):
    """The local backend stack could not be installed, started or stopped."""


class InstallError(StackError):
    """Installing a backend (apt package, Maven artifact, Go build) failed."""


class BackendStartError(StackError):
    """A backend process exited or did not become healthy before the timeout."""

    def __init__(self, backend: str, detail: str, log_file: Path) -> None:
        super().__init__(f"{backend} did not become healthy: {detail} (log: {log_file})")
        self.backend = backend
        self.log_file = log_file


def is_retryable(exc: BaseException) -> bool:
    """Whether the work that raised ``exc`` is worth trying again. ecomctl's errors say so
    themselves (a business rule or a rejected request: no; a backend outage: yes), as may any
    class with a ``retryable`` attribute; any other exception (a timeout, a bug that may be a
    race) gets the benefit of the doubt."""
    return bool(getattr(exc, "retryable", True))


def error_code(exc: BaseException) -> str:
    """A short, stable snake_case name for an error (``OutOfStock`` -> ``out_of_stock``), used
    in HTTP error bodies and in reports that group errors by cause."""
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
