"""Per-client-address limits on the routes that are expensive to abuse (login, register).

The client address is the ASGI ``client``: the connection's peer, or, behind a proxy the
operator names (``ECOMCTL_FORWARDED_ALLOW_IPS``), what that proxy says in ``X-Forwarded-For``
(the server, ``adapters/asgi_server``, decides). Anyone can send the header, so trusting it by
default would let every request pick its own bucket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from starlette.requests import HTTPConnection

from ecomctl.errors import InfraError, Overloaded, RateLimited


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after_s(self) -> int: ...
    @property
    def hold(self) -> str | None: ...
    @property
    def busy(self) -> bool: ...


class RateLimiter(Protocol):
    """Token buckets per (limit name, client) (``ecomctl.adapters.rate_limit``)."""

    async def take(self, name: str, client: str) -> Verdict: ...
    async def begin(self, name: str, client: str) -> Verdict: ...
    async def end(self, name: str, client: str, hold: str | None, *, failed: bool) -> None: ...


class RequestLimits:
    def __init__(self, limiter: RateLimiter | None) -> None:
        self._limiter = limiter

    @staticmethod
    def client(request: HTTPConnection) -> str:
        """The address the request comes from ("" when the server does not say)."""
        return request.client.host if request.client else ""

    async def admit(self, name: str, request: HTTPConnection) -> str:
        """Spend a token of the ``name`` limit for the request's client (returned), or raise
        RateLimited (429 with Retry-After)."""
        client = self.client(request)
        if self._limiter is not None:
            _admitted(name, await self._limiter.take(name, client))
        return client

    @asynccontextmanager
    async def failures_only(self, name: str, request: HTTPConnection) -> AsyncIterator[str]:
        """For a request that counts against the ``name`` limit only if it fails (a login):
        the client's address, once admitted. A refusal of the client's in the block (a wrong
        password, a throttled account: any exception but an ``InfraError``) spends the
        token; a success, or a failure of the shop's (the password was never checked), gives
        it back. Raises RateLimited (429) when this address's failures have used the limit,
        Overloaded (503, Retry-After) when its earlier attempts stayed undecided too long:
        a correct password is never refused for arriving beside others."""
        client = self.client(request)
        if self._limiter is None:
            yield client
            return
        verdict = await self._limiter.begin(name, client)
        _admitted(name, verdict)
        failed = True
        try:
            yield client
            failed = False
        except InfraError:
            failed = False
            raise
        finally:
            await self._limiter.end(name, client, verdict.hold, failed=failed)


def _admitted(name: str, verdict: Verdict) -> None:
    if verdict.busy:
        raise Overloaded(f"the {name} limit of your address",
                         "earlier attempts from it are still being checked",
                         retry_after_s=verdict.retry_after_s)
    if not verdict.allowed:
        raise RateLimited(verdict.retry_after_s,
                          f"too many {name} requests from your address; "
                          f"retry in {verdict.retry_after_s}s")
