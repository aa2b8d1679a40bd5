"""The payment gateway simulator and its client, in-process (no sockets): settings, outcome
draws, latency shape, the HTTP API through httpx.ASGITransport, and the client's mapping."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import pytest

from ecomctl.adapters.payment_gateway import GatewayCharge, PaymentGatewayClient
from ecomctl.domain.models import PaymentStatus
from ecomctl.errors import ConfigError, ValidationFailed
from ecomctl.simulators.payment_gateway import (
    ChargeRequest,
    LatencyDistribution,
    LatencySampler,
    Outcome,
    OutcomeSampler,
    PaymentGatewaySimulator,
    SimulatorConfig,
    parse_charge_request,
)

INSTANT = SimulatorConfig(latency_mean_ms=0, latency_jitter_ms=0)

# --------------------------------------------------------------------------- configuration


def test_defaults_are_valid_and_fault_free() -> None:
    config = SimulatorConfig()
    assert config.latency_distribution is LatencyDistribution.LOGNORMAL
    assert config.outcome_probabilities()[Outcome.CAPTURED] == 1.0
    assert config.timeout_delay_s == 30.0


@pytest.mark.parametrize(
    "changes",
    [
        {"decline_rate": 1.5},
        {"error_rate": -0.1},
        {"timeout_rate": float("nan")},
        {"timeout_capture_rate": 2},
        {"latency_mean_ms": -1},
        {"latency_jitter_ms": float("inf")},
        {"timeout_delay_s": -0.5},
        {"decline_rate": True},
        {"decline_rate": "0.5"},
        {"latency_distribution": "pareto"},
        {"seed": 1.5},
        {"seed": "7"},
        {"colour": "blue"},
    ],
)
def test_invalid_settings_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SimulatorConfig.from_spec(changes)


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ConfigError, match="decline_rate"):
        SimulatorConfig(decline_rate=1.01)
    assert SimulatorConfig(latency_distribution="normal").latency_distribution is (  # type: ignore[arg-type]
        LatencyDistribution.NORMAL
    )


def test_partial_update_keeps_the_other_settings() -> None:
    base = SimulatorConfig(decline_rate=0.3, seed=5)
    changed = base.with_changes(error_rate=1, latency_distribution="NORMAL")
    assert changed.error_rate == 1.0
    assert changed.decline_rate == 0.3
    assert changed.seed == 5
    assert changed.latency_distribution is LatencyDistribution.NORMAL
    assert changed.to_dict()["latency_distribution"] == "normal"


# --------------------------------------------------------------------------- outcome draws


def _draws(config: SimulatorConfig, n: int, seed: int | None = 42) -> Counter[Outcome]:
    sampler = OutcomeSampler(seed)
    return Counter(sampler.draw(config).outcome for _ in range(n))


def test_a_seed_makes_outcomes_reproducible() -> None:
    config = SimulatorConfig(decline_rate=0.3, error_rate=0.2, timeout_rate=0.1)

    def run(seed: int) -> list[Any]:
        sampler = OutcomeSampler(seed)
        return [sampler.draw(config) for _ in range(500)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_switching_faults_mid_run_does_not_shift_the_sequence() -> None:
    # Every draw consumes the same randomness, so draw n is the same with or without faults
    # switched on for draws before it.
    calm, faulty = SimulatorConfig(), SimulatorConfig(error_rate=1)
    a, b = OutcomeSampler(5), OutcomeSampler(5)
    for i in range(100):
        a.draw(calm)
        b.draw(faulty if i % 2 else calm)
    mixed = SimulatorConfig(decline_rate=0.5)
    assert [a.draw(mixed) for _ in range(50)] == [b.draw(mixed) for _ in range(50)]


def test_decline_rate_is_respected() -> None:
    counts = _draws(SimulatorConfig(decline_rate=0.2), 10_000)
    # 5 standard deviations of a binomial(10000, 0.2) is 0.02.
    assert abs(counts[Outcome.DECLINED] / 10_000 - 0.2) < 0.02
    assert counts[Outcome.DECLINED] + counts[Outcome.CAPTURED] == 10_000


def test_faults_apply_in_order_timeout_error_decline() -> None:
    config = SimulatorConfig(timeout_rate=0.1, error_rate=0.2, decline_rate=0.5)
    expected = config.outcome_probabilities()
    assert sum(expected.values()) == pytest.approx(1.0)
    assert expected[Outcome.GATEWAY_ERROR] == pytest.approx(0.18)
    assert expected[Outcome.DECLINED] == pytest.approx(0.36)
    counts = _draws(config, 10_000, seed=3)
    for outcome, p in expected.items():
        assert abs(counts[outcome] / 10_000 - p) < 0.025, outcome


def test_certain_outcomes_whatever_the_other_rates() -> None:
    assert _draws(SimulatorConfig(error_rate=1, decline_rate=0.9), 200) == {
        Outcome.GATEWAY_ERROR: 200
    }
    assert _draws(SimulatorConfig(timeout_rate=1, error_rate=1), 200) == {Outcome.TIMEOUT: 200}
    assert _draws(SimulatorConfig(decline_rate=1), 200) == {Outcome.DECLINED: 200}


def test_error_statuses_and_decline_codes_vary() -> None:
    sampler = OutcomeSampler(1)
    errors = {sampler.draw(SimulatorConfig(error_rate=1)).error_status for _ in range(300)}
    declines = {sampler.draw(SimulatorConfig(decline_rate=1)).decline_code for _ in range(300)}
    assert errors == {500, 502, 503}
    assert len(declines) == 3


def test_timeout_capture_rate_marks_captured_timeouts() -> None:
    sampler = OutcomeSampler(9)
    config = SimulatorConfig(timeout_rate=1, timeout_capture_rate=0.5)
    captured = [sampler.draw(config).captured for _ in range(4_000)]
    assert abs(sum(captured) / 4_000 - 0.5) < 0.04


# --------------------------------------------------------------------------- latency


def test_lognormal_latency_has_the_requested_mean_and_spread() -> None:
    config = SimulatorConfig(latency_mean_ms=100, latency_jitter_ms=30)
    sampler = LatencySampler(11)
    draws = [sampler.draw_s(config) * 1000 for _ in range(20_000)]
    assert min(draws) > 0
    assert statistics.fmean(draws) == pytest.approx(100, rel=0.03)
    assert statistics.stdev(draws) == pytest.approx(30, rel=0.08)
    assert statistics.median(draws) < statistics.fmean(draws)  # the right tail


def test_normal_latency_is_never_negative() -> None:
    config = SimulatorConfig(
        latency_mean_ms=5, latency_jitter_ms=50, latency_distribution=LatencyDistribution.NORMAL
    )
    sampler = LatencySampler(2)
    draws = [sampler.draw_s(config) for _ in range(5_000)]
    assert min(draws) == 0.0
    assert max(draws) > 0.05


def test_zero_jitter_is_constant_and_seeded_latency_repeats() -> None:
    assert LatencySampler().draw_s(SimulatorConfig(latency_mean_ms=40, latency_jitter_ms=0)) == (
        0.04
    )
    config = SimulatorConfig(latency_mean_ms=40, latency_jitter_ms=10)
    a, b = LatencySampler(4), LatencySampler(4)
    assert [a.draw_s(config) for _ in range(50)] == [b.draw_s(config) for _ in range(50)]


# --------------------------------------------------------------------------- request parsing


def test_parse_normalises_amount_and_currency() -> None:
    parsed = parse_charge_request({"order_id": "o-1", "amount": "12.3", "currency": "usd"})
    assert parsed == ChargeRequest("o-1", Decimal("12.30"), "USD")
    assert str(parsed.amount) == "12.30"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"order_id": "o", "amount": "1.00"},
        {"order_id": "o", "amount": "1.00", "currency": "USD", "extra": 1},
        {"order_id": "", "amount": "1.00", "currency": "USD"},
        {"order_id": 5, "amount": "1.00", "currency": "USD"},
        {"order_id": "o", "amount": 1.5, "currency": "USD"},
        {"order_id": "o", "amount": 1, "currency": "USD"},
        {"order_id": "o", "amount": "0", "currency": "USD"},
        {"order_id": "o", "amount": "0.00", "currency": "USD"},
        {"order_id": "o", "amount": "-1.00", "currency": "USD"},
        {"order_id": "o", "amount": "1.234", "currency": "USD"},
        {"order_id": "o", "amount": "1e3", "currency": "USD"},
        {"order_id": "o", "amount": "NaN", "currency": "USD"},
        {"order_id": "o", "amount": "abc", "currency": "USD"},
        {"order_id": "o", "amount": "10000000000.00", "currency": "USD"},
        {"order_id": "o", "amount": "1.00", "currency": "US"},
        {"order_id": "o", "amount": "1.00", "currency": None},
    ],
)
def test_parse_refuses_malformed_requests(payload: object) -> None:
    with pytest.raises(ValidationFailed):
        parse_charge_request(payload)


# --------------------------------------------------------------------------- the HTTP API


@pytest.fixture
async def sim() -> PaymentGatewaySimulator:
    return PaymentGatewaySimulator(INSTANT)


@pytest.fixture
async def http(sim: PaymentGatewaySimulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _body(order_id: str = "o-1", amount: str = "12.34") -> dict[str, str]:
    return {"order_id": order_id, "amount": amount, "currency": "USD"}


async def _post(
    http: httpx.AsyncClient, key: str | None, body: object, **kwargs: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await http.post("/v1/charges", json=body, headers=headers, **kwargs)


async def test_capture_and_replay(sim: PaymentGatewaySimulator, http: httpx.AsyncClient) -> None:
    first = await _post(http, "k-1", _body())
    assert first.status_code == 201
    charge = first.json()
    assert charge["id"].startswith("ch_")
    assert charge == {
        "id": charge["id"],
        "status": "captured",
        "order_id": "o-1",
        "amount": "12.34",
        "currency": "USD",
    }
    assert "idempotent-replayed" not in first.headers
    again = await _post(http, "k-1", _body(amount="12.34"))
    assert again.status_code == 201
    assert again.json() == charge
    assert again.headers["idempotent-replayed"] == "true"
    fetched = await http.get(f"/v1/charges/{charge['id']}")
    assert fetched.json() == charge
    stats = (await http.get("/v1/stats")).json()
    assert stats["captures"] == 1
    assert stats["captures_by_order"] == {"o-1": 1}
    assert stats["outcomes"]["captured"] == 1
    assert stats["outcomes"]["replayed"] == 1
    assert stats["captured_amount"] == "12.34"
    assert sim.stats() == stats


async def test_equal_amounts_written_differently_are_the_same_request(
    http: httpx.AsyncClient,
) -> None:
    first = await _post(http, "k-eq", _body(amount="5.5"))
    again = await _post(http, "k-eq", {**_body(amount="5.50"), "currency": "usd"})
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["amount"] == "5.50"


async def test_same_key_other_body_is_a_conflict(http: httpx.AsyncClient) -> None:
    assert (await _post(http, "k-2", _body())).status_code == 201
    conflict = await _post(http, "k-2", _body(amount="99.00"))
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "idempotency_key_reused"
    assert (await http.get("/v1/stats")).json()["captures"] == 1


async def test_a_decline_is_final_and_replayed(
    sim: PaymentGatewaySimulator, http: httpx.AsyncClient
) -> None:
    sim.update_config(decline_rate=1)
    declined = await _post(http, "k-3", _body())
    assert declined.status_code == 402
    assert declined.json()["error"] == "card_declined"
    sim.update_config(decline_rate=0)
    replay = await _post(http, "k-3", _body())
    assert replay.status_code == 402
    assert replay.json()["id"] == declined.json()["id"]
    assert (await http.get(f"/v1/charges/{declined.json()['id']}")).json()["status"] == "declined"


async def test_a_gateway_error_is_not_stored_so_a_retry_can_succeed(
    sim: PaymentGatewaySimulator, http: httpx.AsyncClient
) -> None:
    sim.update_config(error_rate=1)
    failed = await _post(http, "k-4", _body())
    assert failed.status_code in (500, 502, 503)
    assert failed.json()["error"] == "gateway_error"
    sim.update_config(error_rate=0)
    retried = await _post(http, "k-4", _body())
    assert retried.status_code == 201
    stats = sim.stats()
    assert stats["outcomes"]["gateway_error"] == 1
    assert stats["captures"] == 1


async def test_bounded_idempotency_store() -> None:
    sim = PaymentGatewaySimulator(INSTANT, idempotency_capacity=2)
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        ids = [(await _post(client, f"k{i}", _body(f"o{i}"))).json()["id"] for i in range(3)]
        # k0 was evicted: the gateway has forgotten it, as real ones do after a while.
        assert (await _post(client, "k0", _body("o0"))).json()["id"] != ids[0]
        assert (await _post(client, "k2", _body("o2"))).json()["id"] == ids[2]
    assert sim.stats()["orders_captured_more_than_once"] == ["o0"]


@pytest.mark.parametrize(
    ("key", "content", "status", "error"),
    [
        (None, b'{"order_id": "o", "amount": "1.00", "currency": "USD"}', 400,
         "idempotency_key_required"),
        ("   ", b'{"order_id": "o", "amount": "1.00", "currency": "USD"}', 400,
         "invalid_idempotency_key"),
        ("k" * 256, b'{"order_id": "o", "amount": "1.00", "currency": "USD"}', 400,
         "invalid_idempotency_key"),
        ("k", b"{not json", 400, "invalid_json"),
        ("k", b"\xff\xfe", 400, "invalid_json"),
        ("k", b"", 400, "invalid_json"),
        ("k", b'"a string"', 422, "invalid_request"),
        ("k", b'{"order_id": "o", "amount": "-5", "currency": "USD"}', 422, "invalid_request"),
        ("k", b'{"order_id": "o", "amount": 5.1, "currency": "USD"}', 422, "invalid_request"),
        ("k", b'{"order_id": "o", "currency": "USD"}', 422, "invalid_request"),
        ("k", b"[" + b" " * 20_000 + b"]", 413, "request_too_large"),
    ],
)  # fmt: skip
async def test_bad_requests_get_a_json_error(
    sim: PaymentGatewaySimulator,
    http: httpx.AsyncClient,
    key: str | None,
    content: bytes,
    status: int,
    error: str,
) -> None:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await http.post("/v1/charges", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["message"]
    assert sim.stats()["invalid_requests"] == 1
    assert sim.stats()["charge_requests"] == 0


async def test_oversized_body_without_content_length_is_refused(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 1024

    response = await http.post("/v1/charges", content=chunks(), headers={"Idempotency-Key": "k"})
    assert response.status_code == 413


async def test_unknown_routes_and_charges_answer_json(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/charges/ch_nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    route = await http.get("/nowhere")
    assert (route.status_code, route.json()["error"]) == (404, "not_found")
    method = await http.delete("/v1/charges")
    assert (method.status_code, method.json()["error"]) == (405, "method_not_allowed")
    assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_config_can_be_patched_at_run_time(
    sim: PaymentGatewaySimulator, http: httpx.AsyncClient
) -> None:
    patched = await http.patch("/v1/config", json={"decline_rate": 0.25, "seed": 3})
    assert patched.status_code == 200
    assert patched.json()["decline_rate"] == 0.25
    assert sim.config.decline_rate == 0.25
    assert sim.config.latency_mean_ms == 0.0  # untouched
    for bad in ({"decline_rate": 2}, {"nope": 1}, [1]):
        refused = await http.patch("/v1/config", json=bad)
        assert refused.status_code == 422
        assert refused.json()["error"] == "invalid_config"
    assert (await http.get("/v1/config")).json() == sim.config.to_dict()
    with pytest.raises(ConfigError):
        sim.update_config(error_rate=-1)
    assert sim.config.error_rate == 0.0


async def test_a_seeded_simulator_replays_the_same_outcomes() -> None:
    config = INSTANT.with_changes(decline_rate=0.5, seed=123)

    async def statuses() -> list[int]:
        sim = PaymentGatewaySimulator(config)
        transport = httpx.ASGITransport(app=sim)
        async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
            return [(await _post(client, f"k{i}", _body(f"o{i}"))).status_code for i in range(40)]

    first = await statuses()
    assert first == await statuses()
    assert set(first) == {201, 402}


# --------------------------------------------------------------------------- the client


@pytest.fixture
async def client(sim: PaymentGatewaySimulator) -> AsyncIterator[PaymentGatewayClient]:
    async with PaymentGatewayClient(
        "http://gateway", transport=httpx.ASGITransport(app=sim), timeout_s=0.3
    ) as client:
        yield client


async def _charge(client: PaymentGatewayClient, key: str | None = None) -> GatewayCharge:
    return await client.charge(
        order_id=uuid4(),
        amount=Decimal("10.5"),
        currency="USD",
        idempotency_key=key or str(uuid4()),
    )


async def test_client_maps_each_outcome(
    sim: PaymentGatewaySimulator, client: PaymentGatewayClient
) -> None:
    captured = await _charge(client)
    assert captured.status is PaymentStatus.CAPTURED
    assert captured.gateway_ref is not None and captured.error is None
    assert sim.stats()["captured_amount"] == "10.50"

    sim.update_config(decline_rate=1)
    declined = await _charge(client)
    assert declined.status is PaymentStatus.DECLINED
    assert declined.gateway_ref is not None and declined.gateway_ref.startswith("ch_")
    assert declined.error is not None and declined.error.startswith("card_declined")

    sim.update_config(error_rate=1)
    failed = await _charge(client)
    assert failed.status is PaymentStatus.GATEWAY_ERROR
    assert failed.error is not None and "gateway_error" in failed.error

    # In-process there is no socket timeout: the client's own deadline must fire.
    sim.update_config(timeout_rate=1, timeout_delay_s=5)
    timed_out = await _charge(client)
    assert timed_out.status is PaymentStatus.TIMEOUT
    assert timed_out.gateway_ref is None


async def test_client_treats_a_refused_request_as_a_gateway_error(
    sim: PaymentGatewaySimulator, client: PaymentGatewayClient
) -> None:
    key = str(uuid4())
    assert (await _charge(client, key)).status is PaymentStatus.CAPTURED
    reused = await _charge(client, key)  # another order id with the same key
    assert reused.status is PaymentStatus.GATEWAY_ERROR
    assert reused.error is not None and "409" in reused.error


def _answering(status: int, content: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=content))


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (201, b"<html>oops</html>", PaymentStatus.GATEWAY_ERROR),
        (201, b'{"status": "captured"}', PaymentStatus.GATEWAY_ERROR),
        (201, b'{"id": "ch_1", "status": "pending"}', PaymentStatus.GATEWAY_ERROR),
        (201, b"[]", PaymentStatus.GATEWAY_ERROR),
        (200, b'{"id": "ch_1", "status": "captured"}', PaymentStatus.CAPTURED),
        (402, b"", PaymentStatus.DECLINED),
        (503, b"Service Unavailable", PaymentStatus.GATEWAY_ERROR),
        (302, b"", PaymentStatus.GATEWAY_ERROR),
    ],
)
async def test_client_copes_with_odd_responses(
    status: int, content: bytes, expected: PaymentStatus
) -> None:
    async with PaymentGatewayClient("http://g", transport=_answering(status, content)) as client:
        outcome = await _charge(client)
    assert outcome.status is expected
    assert (outcome.error is None) == (expected is PaymentStatus.CAPTURED)


async def test_client_sends_the_idempotency_key_and_a_decimal_string() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "ch_x", "status": "captured"})

    order_id = uuid4()
    async with PaymentGatewayClient("http://g", transport=httpx.MockTransport(handler)) as client:
        await client.charge(
            order_id=order_id, amount=Decimal("7"), currency="EUR", idempotency_key="key-1"
        )
    assert seen[0].headers["Idempotency-Key"] == "key-1"
    assert seen[0].url.path == "/v1/charges"
    assert json.loads(seen[0].content) == {
        "order_id": str(order_id),
        "amount": "7.00",
        "currency": "EUR",
    }


async def test_client_refuses_bad_settings_and_float_amounts() -> None:
    with pytest.raises(ConfigError):
        PaymentGatewayClient("http://g", timeout_s=0)
    async with PaymentGatewayClient("http://g", transport=_answering(201, b"{}")) as client:
        with pytest.raises(ValidationFailed):
            await client.charge(
                order_id=uuid4(),
                amount=10.5,  # type: ignore[arg-type]
                currency="USD",
                idempotency_key="k",
            )
