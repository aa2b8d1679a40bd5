"""The user service on the real PostgreSQL and Redis of the local stack."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Literal

import pytest
import redis.asyncio as redis
from argon2 import PasswordHasher
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.users import UserRepository
from ecomctl.adapters.redis_store import LoginThrottle, SessionStore, session_key, throttle_key
from ecomctl.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    EmailTaken,
    LoginThrottled,
    NotFound,
    Overloaded,
    ValidationFailed,
)
from ecomctl.services.user import UserService
from ecomctl.telemetry.spans import ServiceTracer

PASSWORD = "correct horse battery"


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that counts verifications (to see the unknown-email path pay)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> ServiceTracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return ServiceTracer("user", provider.get_tracer("tests"))


@pytest.fixture
async def new_email(db: Database, redis_client: redis.Redis) -> AsyncIterator[Callable[[], str]]:
    """Unique addresses; their accounts and throttle counters are removed afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"it-{uuid.uuid4().hex[:12]}@example.test")
        return made[-1]

    yield make
    if made:
        async with db.connection() as conn:
            await conn.execute("DELETE FROM users WHERE lower(email) = ANY($1::text[])", made)
        await redis_client.delete(*[throttle_key(email) for email in made])


def make_service(
    db: Database, client: redis.Redis, tracer: ServiceTracer, hasher: PasswordHasher | None
) -> UserService:
    return UserService(
        UserRepository(db), SessionStore(client), LoginThrottle(client), tracer, hasher
    )


@pytest.fixture
def service(db: Database, redis_client: redis.Redis, tracer: ServiceTracer) -> UserService:
    return make_service(db, redis_client, tracer, cheap_hasher())


async def stored_hash(db: Database, email: str) -> str:
    found = await UserRepository(db).by_email(email)
    assert found is not None
    return found[1]


def span_named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [s for s in exporter.get_finished_spans() if s.name == name]
    assert matching, f"no {name} span in {[s.name for s in exporter.get_finished_spans()]}"
    return matching[-1]


async def test_register_login_authenticate_logout(
    service: UserService,
    new_email: Callable[[], str],
    redis_client: redis.Redis,
    db: Database,
    exporter: InMemorySpanExporter,
) -> None:
    email = new_email()
    user = await service.register(f"  {email.upper()} ", PASSWORD, "  Ada Lovelace ")
    assert (user.email, user.full_name) == (email, "Ada Lovelace")
    assert (await stored_hash(db, email)).startswith("$argon2id$v=19$m=8192,t=1,p=1$")

    token, logged_in = await service.login(email.upper(), PASSWORD)
    assert logged_in == user
    # token_urlsafe(32): 32 random bytes = 256 bits, 43 base64url characters (>= 128 bits).
    assert len(token) >= 43

    # Only the SHA-256 of the token is in Redis: no key or value holds the token itself.
    assert [key async for key in redis_client.scan_iter(match=f"*{token}*")] == []
    assert await redis_client.get(session_key(token)) == str(user.id).encode()
    assert 86_400 - 60 < await redis_client.ttl(session_key(token)) <= 86_400

    assert await service.authenticate(token) == user
    assert await service.profile(user.id) == user

    await service.logout(token)
    assert await redis_client.exists(session_key(token)) == 0
    with pytest.raises(AuthenticationFailed, match="invalid or expired session"):
        await service.authenticate(token)
    await service.logout(token)  # idempotent

    names = [s.name for s in exporter.get_finished_spans()]
    for name in ("user.register", "user.login", "user.authenticate", "user.logout"):
        assert name in names
    assert span_named(exporter, "user.login").attributes["ecom.user.id"] == user.id  # type: ignore[index]
    for span in exporter.get_finished_spans():
        for value in (span.attributes or {}).values():
            assert email not in str(value).lower() and PASSWORD not in str(value)


async def test_duplicate_email_is_refused_case_insensitively(
    service: UserService, new_email: Callable[[], str], db: Database
) -> None:
    email = new_email()
    await service.register(email, PASSWORD, "First")
    with pytest.raises(EmailTaken):
        await service.register(email.upper(), "another password", "Second")
    # The database index itself compares lower(email), even past the service's normalization.
    with pytest.raises(EmailTaken):
        await UserRepository(db).create(email.title(), "Third", "$argon2id$x")
    async with db.connection() as conn:
        count = await conn.fetchval("SELECT count(*) FROM users WHERE lower(email) = $1", email)
    assert count == 1


async def test_invalid_registrations_write_nothing(
    service: UserService, new_email: Callable[[], str], db: Database
) -> None:
    email = new_email()
    for args in [
        ("not-an-email", PASSWORD, "Name"),
        (email, "short", "Name"),
        (email, "x" * 129, "Name"),
        (email, PASSWORD, "   "),
        (email, PASSWORD, "n" * 201),
    ]:
        with pytest.raises(ValidationFailed):
            await service.register(*args)
    assert await UserRepository(db).by_email(email) is None


async def test_wrong_password_and_unknown_email_fail_alike(
    db: Database, redis_client: redis.Redis, tracer: ServiceTracer, new_email: Callable[[], str]
) -> None:
    hasher = CountingHasher()
    service = make_service(db, redis_client, tracer, hasher)
    email = new_email()
    await service.register(email, PASSWORD, "Known")

    with pytest.raises(AuthenticationFailed) as wrong_password:
        await service.login(email, "wrong password")
    assert hasher.verifications == 1
    with pytest.raises(AuthenticationFailed) as unknown_email:
        await service.login(new_email(), PASSWORD)
    # The unknown address still paid for one argon2 verification (against the dummy hash).
    assert hasher.verifications == 2

    assert type(wrong_password.value) is type(unknown_email.value) is AuthenticationFailed
    assert str(wrong_password.value) == str(unknown_email.value) == "invalid email or password"


async def test_five_failures_throttle_a_known_account(
    service: UserService, new_email: Callable[[], str], redis_client: redis.Redis
) -> None:
    email = new_email()
    await service.register(email, PASSWORD, "Target")
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            await service.login(email, "guess guess")
    # Even the right password is refused now, and in any letter case.
    for attempt in (email, email.upper()):
        with pytest.raises(LoginThrottled) as throttled:
            await service.login(attempt, PASSWORD)
        assert 0 < throttled.value.retry_after_s <= 300
    # The counter is keyed by a digest of the address, never by the address itself.
    assert [k async for k in redis_client.scan_iter(match=f"*{email}*")] == []

    await LoginThrottle(redis_client).reset(email)
    token, _ = await service.login(email, PASSWORD)
    await service.logout(token)


async def test_five_failures_throttle_an_unknown_email(
    service: UserService, new_email: Callable[[], str]
) -> None:
    email = new_email()
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            await service.login(email, PASSWORD)
    with pytest.raises(LoginThrottled):
        await service.login(email, PASSWORD)


async def test_a_burst_of_concurrent_guesses_gets_at_most_five_tries(
    service: UserService, new_email: Callable[[], str]
) -> None:
    """Attempts are counted before the password is checked, so 20 simultaneous guesses
    cannot all pass a read-then-write check: five are verified, fifteen are throttled."""
    email = new_email()
    await service.register(email, PASSWORD, "Target")
    outcomes = await asyncio.gather(
        *(service.login(email, f"guess-{i}") for i in range(20)), return_exceptions=True
    )
    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds == ["AuthenticationFailed"] * 5 + ["LoginThrottled"] * 15


class SlowHasher(PasswordHasher):
    """A real argon2 hasher whose verifications take ``seconds`` more (a busy core)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.seconds = seconds

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        time.sleep(self.seconds)  # in the hash slot's thread, as a long hash would be
        return super().verify(hash, password)


async def test_logins_turned_away_by_a_full_hash_queue_are_no_failures(
    db: Database, redis_client: redis.Redis, tracer: ServiceTracer,
    new_email: Callable[[], str],
) -> None:
    """A 503 from the hash queue checked no password: a client that retries it as told
    (Retry-After) must not throttle itself out of its own account. Guesses still count."""
    patient, busy = new_email(), new_email()
    registrar = make_service(db, redis_client, tracer, cheap_hasher())
    for email in (patient, busy):
        await registrar.register(email, PASSWORD, "Patient")
    crowded = UserService(UserRepository(db), SessionStore(redis_client),
                          LoginThrottle(redis_client), tracer, SlowHasher(1.0),
                          max_concurrent_hashes=1, max_waiting_hashes=0)
    holding = asyncio.create_task(crowded.login(busy, PASSWORD))  # takes the one slot
    await asyncio.sleep(0.2)
    for _ in range(8):  # more than the 5 failures an address may have
        with pytest.raises(Overloaded):
            await crowded.login(patient, PASSWORD)
    token, _ = await holding
    token, _ = await crowded.login(patient, PASSWORD)
    await crowded.logout(token)
    for _ in range(5):  # and guesses still count
        with pytest.raises(AuthenticationFailed):
            await crowded.login(patient, "a guess")
    with pytest.raises(LoginThrottled):
        await crowded.login(patient, PASSWORD)


async def test_success_resets_the_failure_count(
    service: UserService, new_email: Callable[[], str]
) -> None:
    email = new_email()
    await service.register(email, PASSWORD, "Forgetful")
    for _round in range(2):
        for _ in range(4):
            with pytest.raises(AuthenticationFailed):
                await service.login(email, "almost right")
        token, _ = await service.login(email, PASSWORD)  # 4 < 5: still allowed, then reset
        await service.logout(token)


async def test_default_hasher_is_argon2id(
    db: Database, redis_client: redis.Redis, tracer: ServiceTracer, new_email: Callable[[], str]
) -> None:
    service = make_service(db, redis_client, tracer, None)
    email = new_email()
    await service.register(email, PASSWORD, "Default")
    assert (await stored_hash(db, email)).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_login_rehashes_when_parameters_change(
    service: UserService,
    db: Database,
    redis_client: redis.Redis,
    tracer: ServiceTracer,
    new_email: Callable[[], str],
) -> None:
    email = new_email()
    await service.register(email, PASSWORD, "Seeded")
    stronger = PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1)
    upgraded = make_service(db, redis_client, tracer, stronger)

    token, _ = await upgraded.login(email, PASSWORD)
    await upgraded.logout(token)
    assert (await stored_hash(db, email)).startswith("$argon2id$v=19$m=16384,t=2,p=1$")
    token, _ = await upgraded.login(email, PASSWORD)  # the new hash verifies
    await upgraded.logout(token)


@pytest.mark.parametrize("token", ["", "x" * 1000, "not-a-session-token-at-all-but-long-enough"])
async def test_unknown_tokens_do_not_authenticate(service: UserService, token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        await service.authenticate(token)


async def test_sessions_slide_on_use(
    service: UserService, new_email: Callable[[], str], redis_client: redis.Redis
) -> None:
    email = new_email()
    user = await service.register(email, PASSWORD, "Active")
    sessions = SessionStore(redis_client, ttl_s=600)
    token = await sessions.create(user.id)
    try:
        await redis_client.expire(session_key(token), 5)
        assert await sessions.resolve(token) == user.id
        assert await redis_client.ttl(session_key(token)) > 500
    finally:
        await sessions.revoke(token)


async def test_profile_of_unknown_user_is_not_found(service: UserService) -> None:
    with pytest.raises(NotFound):
        await service.profile(2**62)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_redis_is_backend_unavailable() -> None:
    client = redis.Redis(
        host="127.0.0.1", port=closed_port(), socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),  # fail at once instead of backing off for seconds
    )
    try:
        with pytest.raises(BackendUnavailable) as sessions_down:
            await SessionStore(client).create(1)
        with pytest.raises(BackendUnavailable) as throttle_down:
            await LoginThrottle(client).begin_attempt("a@example.test")
        assert sessions_down.value.backend == throttle_down.value.backend == "redis"
    finally:
        await client.aclose()
