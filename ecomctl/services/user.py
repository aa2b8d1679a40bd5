"""The user service: registration, login with throttling, sessions.

Passwords are hashed with argon2id (argon2-cffi). Hashing is deliberately CPU- and
memory-heavy, so it runs in worker threads (argon2-cffi releases the GIL) at a lower CPU
priority than the event loop (``NicedCall``), and at most
``max_concurrent_hashes`` at a time (default: as many as the cores hold, each hash using
``parallelism`` of them, plus one): more would not finish sooner on a busy CPU, they would
only multiply the 64 MiB each hash needs. Hashes wait for a slot in a bounded queue that is
fair between client addresses (``FairSlots``): a flood from one address is refused
(``Overloaded``, 503) instead of making everyone else's login wait behind it, never holds
the last slot, and its backlog hashes at the lowest priority, so a login from elsewhere
starts at once and takes most of the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from typing import Protocol, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from ecomctl.domain.models import User
from ecomctl.errors import (
    AuthenticationFailed,
    InfraError,
    NotFound,
    Overloaded,
    ValidationFailed,
)
from ecomctl.services.admission import FairSlots
from ecomctl.services.low_priority import NicedCall
from ecomctl.telemetry.spans import ServiceTracer

T = TypeVar("T")

MAX_EMAIL_CHARS = 254  # the longest address SMTP can carry (RFC 5321 path limit)
MAX_LOCAL_PART_CHARS = 64
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 128
MAX_FULL_NAME_CHARS = 200

# A pragmatic shape check, not RFC 5322: one "@", a local part, and a dotted domain whose
# labels are not empty; no whitespace anywhere.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+")
_BAD_CREDENTIALS = "invalid email or password"
_BAD_SESSION = "invalid or expired session"
DEFAULT_HASH_QUEUE = 16


def default_hasher() -> PasswordHasher:
    """argon2id with RFC 9106's second recommended profile (argon2-cffi's own default):
    time_cost=3 passes, memory_cost=64 MiB, parallelism=4 lanes, 32-byte hash, 16-byte salt.
    About 50-100 ms per hash on a laptop core. Spelled out so that a library upgrade does not
    change them silently (hashes made with other parameters are upgraded at login)."""
    return PasswordHasher(
        time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16,
        type=Type.ID,
    )


def seeding_hasher() -> PasswordHasher:
    """A cheap argon2id (1 pass, 8 MiB, 1 lane) for seeding thousands of demo accounts and for
    tests. Not for real passwords; a service using ``default_hasher()`` rehashes such accounts
    with the default parameters on their next successful login."""
    return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def normalize_email(email: str) -> str:
    """Trimmed, lower-cased, and shaped like an address; ValidationFailed otherwise."""
    if not isinstance(email, str):
        raise ValidationFailed("email must be a string")
    normalized = email.strip().lower()
    if len(normalized) > MAX_EMAIL_CHARS:
        raise ValidationFailed(f"email must be at most {MAX_EMAIL_CHARS} characters")
    if _has_control_chars(normalized) or not _EMAIL_SHAPE.fullmatch(normalized):
        raise ValidationFailed("email is not a valid address")
    if len(normalized.rpartition("@")[0]) > MAX_LOCAL_PART_CHARS:
        raise ValidationFailed(
            f"the part before @ must be at most {MAX_LOCAL_PART_CHARS} characters"
        )
    return normalized


def check_password(password: str) -> str:
    """Length only (in characters); the password is used as given, never trimmed."""
    if not isinstance(password, str):
        raise ValidationFailed("password must be a string")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValidationFailed(
            f"password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )
    return password


def check_full_name(full_name: str) -> str:
    """Trimmed, 1..200 characters, no control characters (newlines, NUL...)."""
    if not isinstance(full_name, str):
        raise ValidationFailed("full name must be a string")
    name = full_name.strip()
    if not 1 <= len(name) <= MAX_FULL_NAME_CHARS:
        raise ValidationFailed(f"full name must be 1 to {MAX_FULL_NAME_CHARS} characters")
    if _has_control_chars(name):
        raise ValidationFailed("full name must not contain control characters")
    return name


class UserStore(Protocol):
    """What the service needs from the repository (ecomctl.adapters.postgres.users)."""

    async def create(self, email: str, full_name: str, password_hash: str) -> User: ...
    async def by_email(self, email: str) -> tuple[User, str] | None: ...
    async def by_id(self, user_id: int) -> User | None: ...
    async def update_password_hash(self, user_id: int, password_hash: str) -> None: ...


class Sessions(Protocol):
    async def create(self, user_id: int) -> str: ...
    async def resolve(self, token: str) -> int | None: ...
    async def revoke(self, token: str) -> None: ...


class Throttle(Protocol):
    """Failed logins per (account, client address): ``begin_attempt`` counts an attempt or
    raises LoginThrottled; ``reset`` is called after a success, ``withdraw`` after an
    attempt the shop could not decide."""

    async def begin_attempt(self, email: str, client: str = "") -> None: ...
    async def reset(self, email: str, client: str = "") -> None: ...
    async def withdraw(self, email: str, client: str = "") -> None: ...


class UserService:
    def __init__(
        self,
        repo: UserStore,
        sessions: Sessions,
        throttle: Throttle,
        tracer: ServiceTracer,
        hasher: PasswordHasher | None = None,
        *,
        max_concurrent_hashes: int | None = None,
        max_waiting_hashes: int = DEFAULT_HASH_QUEUE,
        on_hash_wait: Callable[[float], None] | None = None,
    ) -> None:
        """``on_hash_wait``: told how long each hash waited for its slot (seconds)."""
        self._repo = repo
        self._sessions = sessions
        self._throttle = throttle
        self._tracer = tracer
        self._hasher = hasher or default_hasher()
        # Each hash runs ``parallelism`` lanes in threads of its own: running more hashes
        # than the cores can hold at once only slows every one of them down. One slot more,
        # which one client never takes (FairSlots' per-key cap): a login from elsewhere
        # starts at once during a flood, and the flood's backlog runs at a lower priority.
        slots = max_concurrent_hashes or 1 + max(
            1, (os.cpu_count() or 1) // max(1, self._hasher.parallelism)
        )
        self._hash_slots = FairSlots(slots, max_waiting_hashes, name="password hashing",
                                     on_wait=on_hash_wait)
        self._dummy_hash: str | None = None
        self._dummy_made = asyncio.Lock()  # a flood's first wave must not make it N times

    async def register(
        self, email: str, password: str, full_name: str, *, client: str = ""
    ) -> User:
        """A new account; ValidationFailed for bad input, EmailTaken if the email is in use.
        ``client`` (the caller's address) is where the hash queues (Overloaded when full)."""
        with self._tracer.span("user.register") as span:
            normalized = normalize_email(email)
            check_password(password)
            name = check_full_name(full_name)
            password_hash = await self._hash(password, client)
            user = await self._repo.create(normalized, name, password_hash)
            span.set_attribute("ecom.user.id", user.id)
            return user

    async def login(self, email: str, password: str, *, client: str = "") -> tuple[str, User]:
        """A new session token and its user. Every bad-credential case raises the same
        AuthenticationFailed and costs one argon2 verification, so neither the message nor
        the timing says whether the account exists. Failures count per (account, ``client``
        address): LoginThrottled after too many from this address, so another address's
        guesses never lock the owner out; Overloaded when the hash queue is full."""
        with self._tracer.span("user.login") as span:
            if not isinstance(email, str) or not isinstance(password, str):
                raise AuthenticationFailed(_BAD_CREDENTIALS)
            key = email.strip().lower()
            await self._throttle.begin_attempt(key, client)
            # No account has an email over the limit or with a NUL (PostgreSQL text cannot
            # hold one): such a login is the same 401 as any other unknown email.
            plausible = (len(key) <= MAX_EMAIL_CHARS and len(password) <= MAX_PASSWORD_CHARS
                         and "\x00" not in key)
            try:
                found = await self._repo.by_email(key) if plausible else None
                if found is None:
                    await self._verify(await self._dummy(client), password, client)
                    raise AuthenticationFailed(_BAD_CREDENTIALS)
                verified = await self._verify(found[1], password, client)
            except InfraError:
                # The shop could not check the password (the hash queue was full, a backend
                # failed): no guess was tried, so it is no failure. Counted, a client that
                # retries a 503 as told would throttle itself out of its own account.
                with contextlib.suppress(InfraError):
                    await self._throttle.withdraw(key, client)
                raise
            user, stored_hash = found
            span.set_attribute("ecom.user.id", user.id)
            if not verified:
                raise AuthenticationFailed(_BAD_CREDENTIALS)
            await self._throttle.reset(key, client)
            if self._hasher.check_needs_rehash(stored_hash):
                # An upgrade that can wait: with the queue full, the next login does it.
                with contextlib.suppress(Overloaded):
                    new_hash = await self._hash(password, client)
                    await self._repo.update_password_hash(user.id, new_hash)
            token = await self._sessions.create(user.id)
            return token, user

    async def logout(self, token: str) -> None:
        """Revoke the session; unknown or expired tokens are ignored (logout is idempotent)."""
        with self._tracer.span("user.logout"):
            await self._sessions.revoke(token)

    async def authenticate(self, token: str) -> User:
        """The user behind a session token; AuthenticationFailed if unknown or expired."""
        with self._tracer.span("user.authenticate") as span:
            user_id = await self._sessions.resolve(token)
            if user_id is None:
                raise AuthenticationFailed(_BAD_SESSION)
            span.set_attribute("ecom.user.id", user_id)
            user = await self._repo.by_id(user_id)
            if user is None:  # the account was deleted: its sessions die with it
                await self._sessions.revoke(token)
                raise AuthenticationFailed(_BAD_SESSION)
            return user

    async def profile(self, user_id: int) -> User:
        with self._tracer.span("user.profile", {"ecom.user.id": user_id}):
            user = await self._repo.by_id(user_id)
            if user is None:
                raise NotFound("user", user_id)
            return user

    async def _hash(self, password: str, client: str = "") -> str:
        return await self._in_slot(client, NicedCall(self._hasher.hash, password,
                                                     name="password-hash"))

    async def _verify(self, password_hash: str, password: str, client: str) -> bool:
        try:
            return await self._in_slot(client, NicedCall(
                self._hasher.verify, password_hash, password, name="password-hash"))
        except (VerificationError, InvalidHashError):
            return False

    async def _in_slot(self, client: str, call: NicedCall[T]) -> T:
        """In one of the hash slots; a client with more hashes waiting behind this one (now
        or once it runs) yields the CPU to everyone else's."""
        async with self._hash_slots.slot(client) as held:
            held.on_backlog(call.demote)
            return await call.run()

    async def prepare(self) -> None:
        """Make the dummy hash now (one hash at start-up), so that the first login for an
        unknown email waits for one hash like every later one, not for two behind a lock."""
        await self._dummy("")

    async def _dummy(self, client: str) -> str:
        """A hash of a random secret with this service's parameters, made once, so that
        verifying against it costs what verifying a real account's hash costs."""
        async with self._dummy_made:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash(secrets.token_urlsafe(16), client)
        return self._dummy_hash
