"""A shopper's session: the bearer token on every request, a push-back waited out and the
request sent again (``protocol.pushed_back``), and logging in again once when the session
is lost."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from ecomctl.journeys import routes
from ecomctl.journeys.protocol import (
    Request,
    Response,
    Step,
    Wait,
    check,
    pushed_back,
    send,
    send_together,
)

PUSH_BACK_RETRIES = 3
"""A request pushed back (429 or 503 with a short Retry-After) is sent again after the wait
this many times at most; then its answer stands."""
LOGIN_RETRIES = 10
"""More for a login: every shopper logs in at the start, more at once than the password-hash
queue holds, so its refusals (503, Retry-After) are expected then."""


class Session:
    def __init__(self) -> None:
        self.credentials: tuple[str, str] | None = None
        self.token: str | None = None

    def login(self, email: str, password: str) -> Step[None]:
        self.credentials = (email, password)
        request = Request(routes.LOGIN, json={"email": email, "password": password})
        response = yield from self._send(request, LOGIN_RETRIES)
        self.token = str(check(request, response)["token"])

    def call(self, request: Request, retries: int = PUSH_BACK_RETRIES) -> Step[Any]:
        """The body of the request's answer, sent with the session; raises ``StepFailed``
        (or, in process, the service's exception) when it failed."""
        response = yield from self._send(request, retries)
        if (response.status == 401 and request.route is not routes.LOGIN
                and self.credentials is not None):
            # The session is gone (expired, or its store restarted): log in again and retry
            # the request once, as a real client does.
            yield from self.login(*self.credentials)
            response = yield from self._send(request, retries)
        return check(request, response)

    def together(self, *requests: Request) -> Step[tuple[Response, ...]]:
        """The requests at once, with the session (no second try: a double-click)."""
        return (yield from send_together(*(self._authorised(r) for r in requests)))

    def _send(self, request: Request, retries: int) -> Step[Response]:
        """The request's answer, once no push-back is left to wait out. Each attempt says
        how many retries it has left, so a driver can tell one that will be sent again."""
        attempt = replace(self._authorised(request), retries_left=retries)
        while True:
            response = yield from send(attempt)
            wait_s = pushed_back(attempt, response)
            if wait_s is None:
                return response
            # Up to a second of jitter, so that shoppers pushed back together do not all
            # come back together; from the process's generator, not the journey's, so that
            # waits leave the journey's choices alone.
            yield Wait(wait_s + random.random() * min(1.0, wait_s))
            attempt = replace(attempt, retries_left=attempt.retries_left - 1)

    def _authorised(self, request: Request) -> Request:
        if self.token is None:
            return request
        return replace(request,
                       headers={**request.headers, "Authorization": f"Bearer {self.token}"})
