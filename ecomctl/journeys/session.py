"""A shopper's session: logging in (waiting out a short push-back), the bearer token on every
request, and logging in again once when the session is lost."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from ecomctl.journeys import routes
from ecomctl.journeys.protocol import Request, Response, Step, Wait, check, send, send_together

LOGIN_RETRIES = 10
"""A login refused with a short Retry-After (rate limit, full password-hash queue: every
shopper logs in at the start) is tried again after it, this many times."""


class Session:
    def __init__(self) -> None:
        self.credentials: tuple[str, str] | None = None
        self.token: str | None = None

    def login(self, email: str, password: str) -> Step[None]:
        self.credentials = (email, password)
        request = self._authorised(Request(routes.LOGIN,
                                           json={"email": email, "password": password}))
        for pushed_back in range(LOGIN_RETRIES + 1):
            response = yield from send(request)
            wait_s = response.retry_after_s if response.status in (429, 503) else None
            if wait_s is None or pushed_back == LOGIN_RETRIES:
                break
            # Pushed back for a moment: a login is safe to repeat. Jitter from the process's
            # generator, not the journey's, so that waits leave the journey's choices alone.
            yield Wait(wait_s + random.random())
        self.token = str(check(request, response)["token"])

    def call(self, request: Request) -> Step[Any]:
        """The body of the request's answer, sent with the session; raises ``StepFailed``
        (or, in process, the service's exception) when it failed."""
        response = yield from send(self._authorised(request))
        if (response.status == 401 and request.route is not routes.LOGIN
                and self.credentials is not None):
            # The session is gone (expired, or its store restarted): log in again and retry
            # the request once, as a real client does.
            yield from self.login(*self.credentials)
            response = yield from send(self._authorised(request))
        return check(request, response)

    def together(self, *requests: Request) -> Step[tuple[Response, ...]]:
        """The requests at once, with the session (no second try: a double-click)."""
        return (yield from send_together(*(self._authorised(r) for r in requests)))

    def _authorised(self, request: Request) -> Request:
        if self.token is None:
            return request
        return replace(request,
                       headers={**request.headers, "Authorization": f"Bearer {self.token}"})
