"""The step protocol between journeys and their drivers, and what makes an answer a failure.

A journey yields an ``Instruction`` and is sent back its answer:

- ``Request`` -> ``Response`` (never an exception: a transport that got no answer says so
  in ``Response.error``);
- ``Wait`` -> None, after sleeping as the driver sleeps (asyncio or gevent);
- ``Together`` -> a tuple of ``Response``, one per request, all sent at once.

When an answer is a push-back (``pushed_back``: 429 or 503 with a short ``Retry-After``), the
session waits it out and sends the request again, a few times at most. Each attempt carries
the retries it has left, so a driver can ask the same policy whether an answer will be
retried, and record that attempt apart instead of as a failure (Locust).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ecomctl.errors import BackendUnavailable, DomainError, InfraError, error_code
from ecomctl.journeys.routes import Route

T = TypeVar("T")

MAX_RETRY_AFTER_S = 10
"""A Retry-After up to this is waited for; a longer one (an account locked for minutes) is
not."""
PUSH_BACK = frozenset({429, 503})


@dataclass(frozen=True)
class Request:
    route: Route
    path_params: Mapping[str, int | str] = field(default_factory=dict)
    query: Mapping[str, int | str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    answers: frozenset[int] = frozenset()
    """Non-2xx statuses that are the shop's correct business answer, not a failed request
    (402 payment declined; 409 sold out): Locust counts them as successes."""
    retries_left: int = 0
    """How many more times this request is sent again if its answer is a push-back (the
    session sets it on each attempt; 0: this answer stands)."""

    @property
    def method(self) -> str:
        return self.route.method

    @property
    def name(self) -> str:
        return self.route.name

    @property
    def path(self) -> str:
        """The path with its query string, as sent on the wire."""
        path = self.route.path.format(**self.path_params)
        return f"{path}?{urllib.parse.urlencode(self.query)}" if self.query else path


@dataclass(frozen=True)
class Response:
    status: int
    """0: no HTTP status (no answer, or an in-process call raised: see ``error``)."""
    body: Any = None
    """The parsed JSON body (None when there was none, or it was not JSON)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case names; drivers carry at least ``retry-after``."""
    error: BaseException | None = None
    """Why there is no usable answer: the transport's failure (a ``StepFailed``) or, in
    process, the service's own exception, raised as it is so its cause stays its own."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.error is None

    @property
    def error_code(self) -> str | None:
        code = self.body.get("error") if isinstance(self.body, dict) else None
        return str(code) if code else None

    @property
    def retry_after_s(self) -> int | None:
        """The seconds the answer asks to wait, if short enough to wait for; else None."""
        value = str(self.headers.get("retry-after") or "")
        return int(value) if value.isdigit() and int(value) <= MAX_RETRY_AFTER_S else None


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Together:
    """Requests sent at once (a double-click); answered in the same order."""

    requests: tuple[Request, ...]


Instruction = Request | Wait | Together
Step = Generator[Instruction, Any, T]
"""A journey, or a piece of one, returning ``T``."""


class StepFailed(Exception):
    """A step of a journey failed, with a short cause (``out_of_stock``, ``http_503``...)."""

    def __init__(self, cause: str, detail: str = "", retry_after_s: int | None = None, *,
                 business: bool = False) -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause
        self.retry_after_s = retry_after_s
        self.business = business
        """The shop refused correctly (409 sold out): a business outcome for a load run,
        not a failed request; the journey still cannot go on."""


def pushed_back(request: Request, response: Response) -> int | None:
    """The one retry policy for push-back, shared by every driver: the seconds to wait before
    sending ``request`` again, or None when ``response`` is its answer.

    A push-back is a 429 or a 503 whose ``Retry-After`` is short enough to wait for, on a
    request with retries left that is safe to send again: one refused untouched (every 429;
    a 503 ``overloaded``: a full queue, rolled back) or one that is repeatable anyway (its
    route, or an Idempotency-Key)."""
    if request.retries_left <= 0 or response.status not in PUSH_BACK:
        return None
    untouched = response.status == 429 or response.error_code == "overloaded"
    if not (untouched or request.route.repeatable or "Idempotency-Key" in request.headers):
        return None
    return response.retry_after_s


def send(request: Request) -> Step[Response]:
    response = yield request
    assert isinstance(response, Response), response
    return response


def send_together(*requests: Request) -> Step[tuple[Response, ...]]:
    responses = yield Together(requests)
    assert isinstance(responses, tuple), responses
    return responses


def check(request: Request, response: Response) -> Any:
    """The body of a good answer (2xx, or one of the request's business answers without an
    error code, such as a 402 with the declined checkout); raises otherwise."""
    if response.error is not None:
        raise response.error
    code = response.error_code
    if response.ok or (response.status in request.answers and code is None):
        return response.body
    raise StepFailed(code or f"http_{response.status}", request.route.path,
                     response.retry_after_s, business=response.status in request.answers)


def cause_of(exc: BaseException) -> str:
    """A short, stable name for why a step failed (reports group errors by it)."""
    if isinstance(exc, StepFailed):
        return exc.cause
    if isinstance(exc, BackendUnavailable):
        return f"backend_unavailable:{exc.backend}"
    if isinstance(exc, DomainError | InfraError):
        return error_code(exc)
    return f"unexpected:{type(exc).__name__}"
