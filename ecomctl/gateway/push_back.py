"""Per-client-address limits on the routes that are expensive to abuse (login, register).

The client address is the ASGI ``client``: the connection's peer, or, behind a proxy the
operator names (``ECOMCTL_FORWARDED_ALLOW_IPS``), what that proxy says in ``X-Forwarded-For``
(the server, ``adapters/asgi_server``, decides). Anyone can send the header, so trusting it by
default would let every request pick its own bucket.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import HTTPConnection

from ecomctl.errors import RateLimited


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after_s(self) -> int: ...


class RateLimiter(Protocol):
    """Token buckets per (limit name, client) (``ecomctl.adapters.rate_limit``)."""

    async def take(self, name: str, client: str) -> Verdict: ...
    async def give_back(self, name: str, client: str) -> None: ...


class RequestLimits:
    def __init__(self, limiter: RateLimiter | None) -> None:
        self._limiter = limiter

    @staticmethod
    def client(request: HTTPConnection) -> str:
        """The address the request comes from ("" when the server does not say)."""
        return request.client.host if request.client else ""

    async def admit(self, name: str, request: HTTPConnection) -> str:
        """Take a token of the ``name`` limit for the request's client (returned), or raise
        RateLimited (429 with Retry-After)."""
        client = self.client(request)
        if self._limiter is not None:
            verdict = await self._limiter.take(name, client)
            if not verdict.allowed:
                raise RateLimited(verdict.retry_after_s,
                                  f"too many {name} requests from your address; "
                                  f"retry in {verdict.retry_after_s}s")
        return client

    async def give_back(self, name: str, client: str) -> None:
        """The request turned out not to count (a successful login): return its token."""
        if self._limiter is not None:
            await self._limiter.give_back(name, client)

