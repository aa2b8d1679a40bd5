"""Redis clients for the shop: a bounded, blocking pool whose connections are checked before
use when idle and whose commands are retried, with jittered backoff, on a connection error.

A Redis restart leaves every pooled connection dead. Without a retry each of them failed one
request (9 of 20 logins answered 503 after `kill -9` and `stack up redis`), and the retry
that was configured never ran: redis-py's synchronous ``Retry`` given to an asyncio client
calls the command, gets a coroutine back, and returns before anything can fail. This is the
one place the clients are built, with the asyncio ``Retry``.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

HEALTH_CHECK_S = 15
"""A connection idle this long is PINGed before its next command (and replaced if dead)."""


def redis_client(url: str, *, max_connections: int, timeout_s: float, retries: int) -> Redis:
    """``timeout_s`` bounds a socket operation, a connect and the wait for a free pooled
    connection alike; ``retries``: further tries of a command after a connection error or a
    timeout (each on a fresh connection), after 10 ms, 20 ms... with jitter, at most 200 ms,
    so processes that lost Redis together do not come back in step."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.01), retries),
        health_check_interval=HEALTH_CHECK_S,
    )
    return Redis(connection_pool=pool)
