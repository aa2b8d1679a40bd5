"""Small Redis-backed stores: sessions, login throttling and carts.

Every key lives under ``ecomctl:``. Secrets and personal data (session tokens, emails) only
appear in keys as SHA-256 digests, so a Redis dump leaks neither live tokens nor addresses
in clear. Connection failures and timeouts become ``BackendUnavailable("redis", ...)``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
import redis.exceptions as redis_errors
from redis.commands.core import AsyncScript

from ecomctl.domain.models import MAX_CART_LINES, MAX_LINE_QUANTITY, Cart, CartLine
from ecomctl.errors import (
    BackendUnavailable,
    CartFull,
    LoginThrottled,
    NotInCart,
    ValidationFailed,
)

PREFIX = "ecomctl:"
DAY_S = 86_400
# token_urlsafe(32) is 43 characters; anything far longer is not one of ours.
_MAX_TOKEN_CHARS = 256

# "Redis is not there" (as opposed to a bug such as a wrong command or a Lua error).
# A full Redis (it never evicts the source of truth) refuses writes: unavailable, not a 500.
_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError,
                redis_errors.OutOfMemoryError, OSError, TimeoutError)


@asynccontextmanager
async def _redis_errors(operation: str) -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise BackendUnavailable("redis", f"{operation}: {exc or type(exc).__name__}") from exc


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def session_key(token: str) -> str:
    return f"{PREFIX}session:{_digest(token)}"


def throttle_key(email: str) -> str:
    return f"{PREFIX}login-failures:{_digest(email.strip().lower())}"


def cart_key(user_id: int) -> str:
    return f"{PREFIX}cart:{user_id}"


class SessionStore:
    """Opaque bearer tokens -> user id. Expiry slides: each successful resolve renews it."""

    def __init__(self, client: redis.Redis, ttl_s: int = DAY_S, *, sliding: bool = True) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._sliding = sliding

    async def create(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)  # 256 bits from the OS CSPRNG
        async with _redis_errors("session create"):
            await self._redis.set(session_key(token), user_id, ex=self._ttl_s)
        return token

    async def resolve(self, token: str) -> int | None:
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
            return None
        key = session_key(token)
        async with _redis_errors("session resolve"):
            if self._sliding:
                value = await self._redis.getex(key, ex=self._ttl_s)
            else:
                value = await self._redis.get(key)
        return None if value is None else int(value)

    async def revoke(self, token: str) -> None:
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
            return
        async with _redis_errors("session revoke"):
            await self._redis.delete(session_key(token))


def attempt_key(email: str, client: str) -> str:
    """The failures of one client address on one account."""
    return f"{throttle_key(email)}:{_digest(client)[:32]}"


# KEYS[1] the (account, address) counter, KEYS[2] the account's; ARGV max per address, max
# per account, window. Checks and counts in one atomic step, so a burst of concurrent guesses
# cannot all pass a read-then-write check. Returns the seconds to wait, 0 when allowed.
_BEGIN_ATTEMPT = """
local here = tonumber(redis.call('GET', KEYS[1]) or '0')
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
if here >= tonumber(ARGV[1]) then
  return math.max(redis.call('TTL', KEYS[1]), 1)
end
if here >= 1 and total >= tonumber(ARGV[2]) then
  return math.max(redis.call('TTL', KEYS[2]), 1)
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3], 'NX')
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3], 'NX')
return 0
"""

_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""

# An attempt taken back without a verdict: this address's count and the account's go down
# by one (never below zero), the address's earlier failures stay.
_WITHDRAWN = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""


class LoginThrottle:
    """Failed logins counted per (account, client address) and per account, per window.

    An address gets ``max_failures`` attempts on an account per window; after that only that
    address is refused, so an attacker guessing from one address cannot lock the owner out
    of their account from another. Once the account as a whole has seen
    ``max_account_failures`` failures (guessing spread over many addresses), an address gets
    one attempt per window: a correct password from an address with no failure still
    succeeds, while distributed guessing slows to one try per address.

    Windows are fixed from the first counted attempt (the keys' expiry). Keys are digests of
    the normalized email and the address, written whether or not the account exists: the
    throttle does not reveal which do. ``client`` "" (callers that know no address) is one
    address like any other.
    """

    def __init__(
        self,
        client: redis.Redis,
        max_failures: int = 5,
        window_s: int = 300,
        *,
        max_account_failures: int = 50,
    ) -> None:
        self._redis = client
        self._max_failures = max_failures
        self._max_account_failures = max_account_failures
        self._window_s = window_s
        self._begin = client.register_script(_BEGIN_ATTEMPT)
        self._succeeded = client.register_script(_SUCCEEDED)
        self._withdrawn = client.register_script(_WITHDRAWN)

    async def begin_attempt(self, email: str, client: str = "") -> None:
        """Count this attempt before the password is checked (a success takes it back with
        ``reset``), or raise LoginThrottled if this address may not try now."""
        async with _redis_errors("login throttle"):
            wait_s = await self._begin(
                keys=[attempt_key(email, client), throttle_key(email)],
                args=[self._max_failures, self._max_account_failures, self._window_s],
            )
        if int(wait_s) > 0:
            raise LoginThrottled(int(wait_s))

    async def reset(self, email: str, client: str = "") -> None:
        """A successful login: forget this address's failures and uncount the attempt."""
        async with _redis_errors("login throttle reset"):
            await self._succeeded(keys=[attempt_key(email, client), throttle_key(email)])

    async def withdraw(self, email: str, client: str = "") -> None:
        """An attempt that checked no password (the shop was overloaded or a backend
        failed): uncount it, keep the failures before it."""
        async with _redis_errors("login throttle withdraw"):
            await self._withdrawn(keys=[attempt_key(email, client), throttle_key(email)])


# Both scripts check the limits and write in one atomic step, so concurrent adds can never
# push a line past MAX_LINE_QUANTITY or a cart past MAX_CART_LINES. They return
# {status, current quantity of the line, HGETALL of the cart}; status 0 = written,
# 1 = line quantity limit, 2 = line count limit, 3 = no such line (ARGV[6] = '1': change an
# existing line only). A write stores ARGV[7] as the cart's new revision (field REVISION);
# a cart left without lines is deleted, revision and all.
_LINES = """
local function lines(key)
  return redis.call('HLEN', key) - redis.call('HEXISTS', key, '{rev}')
end
"""

_ADD_SCRIPT = _LINES + """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local qty = tonumber(ARGV[2])
if current + qty > tonumber(ARGV[3]) then
  return {1, current, {}}
end
if current == 0 and lines(KEYS[1]) >= tonumber(ARGV[4]) then
  return {2, current, {}}
end
redis.call('HINCRBY', KEYS[1], ARGV[1], qty)
redis.call('HSET', KEYS[1], '{rev}', ARGV[7])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return {0, current + qty, redis.call('HGETALL', KEYS[1])}
"""

_SET_SCRIPT = _LINES + """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local qty = tonumber(ARGV[2])
if current == 0 and ARGV[6] == '1' then
  return {3, current, {}}
end
if qty == 0 then
  if current == 0 then
    return {0, 0, redis.call('HGETALL', KEYS[1])}
  end
  redis.call('HDEL', KEYS[1], ARGV[1])
  if lines(KEYS[1]) == 0 then
    redis.call('DEL', KEYS[1])
    return {0, 0, {}}
  end
elseif current == 0 and lines(KEYS[1]) >= tonumber(ARGV[4]) then
  return {2, current, {}}
else
  redis.call('HSET', KEYS[1], ARGV[1], qty)
end
redis.call('HSET', KEYS[1], '{rev}', ARGV[7])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return {0, qty, redis.call('HGETALL', KEYS[1])}
"""

# Empties the cart only while it holds exactly ARGV's product/quantity pairs.
_CLEAR_IF_HOLDS_SCRIPT = _LINES + """
if lines(KEYS[1]) * 2 ~= #ARGV then
  return 0
end
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then
    return 0
  end
end
redis.call('DEL', KEYS[1])
return 1
"""

REVISION = "rev"
"""The cart hash's field holding its revision (the others are product ids)."""

_ADD_SCRIPT, _SET_SCRIPT, _CLEAR_IF_HOLDS_SCRIPT = (
    script.replace("{rev}", REVISION)
    for script in (_ADD_SCRIPT, _SET_SCRIPT, _CLEAR_IF_HOLDS_SCRIPT)
)


def _cart(user_id: int, reply: dict[Any, Any] | list[Any]) -> Cart:
    """A cart from an HGETALL reply (a dict from the client, a flat list from Lua), its lines
    ordered by product id. ``int()`` accepts both bytes and str replies."""
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    revision: str | None = None
    lines = []
    for field, value in pairs:
        name = field.decode() if isinstance(field, bytes) else str(field)
        if name == REVISION:
            revision = value.decode() if isinstance(value, bytes) else str(value)
        else:
            lines.append((int(name), int(value)))
    return Cart(user_id=user_id, lines=tuple(CartLine(pid, qty) for pid, qty in sorted(lines)),
                revision=revision)


def _check_id(kind: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationFailed(f"{kind} id must be a positive integer")


def _check_line_quantity(quantity: int, *, allow_zero: bool) -> None:
    low = 0 if allow_zero else 1
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationFailed("quantity must be an integer")
    if not low <= quantity <= MAX_LINE_QUANTITY:
        raise ValidationFailed(f"quantity must be between {low} and {MAX_LINE_QUANTITY}")


class CartStore:
    """Per-user carts as Redis hashes ``product_id -> quantity`` (never prices: those are
    re-read at checkout) plus the cart's revision (``REVISION``), a random token replaced by
    every change: random rather than counted, so a Redis that lost recent writes can never
    hand out a revision again. Every write renews the cart's expiry."""

    def __init__(self, client: redis.Redis, ttl_s: int = DAY_S) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._add = client.register_script(_ADD_SCRIPT)
        self._set = client.register_script(_SET_SCRIPT)
        self._clear_if_holds = client.register_script(_CLEAR_IF_HOLDS_SCRIPT)

    async def get(self, user_id: int) -> Cart:
        async with _redis_errors("cart get"):
            fields = await self._redis.hgetall(cart_key(user_id))
        return _cart(user_id, fields)

    async def add(self, user_id: int, product_id: int, qty: int) -> Cart:
        """Add ``qty`` units to the line (creating it); the line total must stay within
        MAX_LINE_QUANTITY and a new line must fit in MAX_CART_LINES."""
        _check_line_quantity(qty, allow_zero=False)
        return await self._run(self._add, "cart add", user_id, product_id, qty)

    async def set_quantity(
        self, user_id: int, product_id: int, qty: int, *, create: bool = True
    ) -> Cart:
        """Set the line to ``qty`` units; 0 removes it. ``create=False``: only a line already
        in the cart (NotInCart otherwise)."""
        _check_line_quantity(qty, allow_zero=True)
        return await self._run(self._set, "cart set", user_id, product_id, qty,
                               existing_only=not create)

    async def remove(self, user_id: int, product_id: int) -> Cart:
        return await self.set_quantity(user_id, product_id, 0)

    async def clear(self, user_id: int) -> None:
        async with _redis_errors("cart clear"):
            await self._redis.delete(cart_key(user_id))

    async def clear_if_holds(self, user_id: int, items: Mapping[int, int]) -> bool:
        """Empty the cart if it holds exactly ``items`` (product id -> quantity), atomically:
        a cart the shopper changed meanwhile is left alone. True when it was emptied."""
        _check_id("user", user_id)
        args = [str(value) for pair in sorted(items.items()) for value in pair]
        if not args:
            return False
        async with _redis_errors("cart clear"):
            return bool(await self._clear_if_holds(keys=[cart_key(user_id)], args=args))

    async def _run(
        self, script: AsyncScript, operation: str, user_id: int, product_id: int, qty: int,
        *, existing_only: bool = False,
    ) -> Cart:
        _check_id("user", user_id)
        _check_id("product", product_id)
        async with _redis_errors(operation):
            status, current, fields = await script(
                keys=[cart_key(user_id)],
                args=[product_id, qty, MAX_LINE_QUANTITY, MAX_CART_LINES, self._ttl_s,
                      "1" if existing_only else "0", secrets.token_hex(8)],
            )
        if status == 1:
            raise CartFull(
                f"at most {MAX_LINE_QUANTITY} units of a product per cart "
                f"(product {product_id} already has {current})"
            )
        if status == 2:
            raise CartFull(f"a cart holds at most {MAX_CART_LINES} different products")
        if status == 3:
            raise NotInCart(product_id)
        return _cart(user_id, fields)
