"""The payment gateway simulator served by uvicorn over TCP, and the real client talking to it."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from ecomctl.adapters.payment_gateway import GatewayCharge, PaymentGatewayClient
from ecomctl.domain.models import PaymentStatus
from ecomctl.errors import BackendUnavailable, ConfigError, RequestRejected
from ecomctl.simulators.payment_gateway import (
    PaymentGatewaySimulator,
    RunningGateway,
    SimulatorConfig,
    SimulatorStartError,
    run_payment_gateway,
)

FAST = SimulatorConfig(latency_mean_ms=1, latency_jitter_ms=0.5)


@pytest.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    async with run_payment_gateway(FAST, port=0) as server:
        yield server


@pytest.fixture
async def client(gateway: RunningGateway) -> AsyncIterator[PaymentGatewayClient]:
    async with PaymentGatewayClient(gateway.url, timeout_s=2.0) as client:
        yield client


async def _charge(
    client: PaymentGatewayClient,
    *,
    order_id: UUID | None = None,
    amount: str = "12.34",
    key: str | None = None,
) -> GatewayCharge:
    return await client.charge(
        order_id=order_id or uuid4(),
        amount=Decimal(amount),
        currency="USD",
        idempotency_key=key or str(uuid4()),
    )


async def _stats(gateway: RunningGateway) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/v1/stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


async def test_the_runner_listens_on_a_free_port(gateway: RunningGateway) -> None:
    assert gateway.port > 0
    assert gateway.url == f"http://127.0.0.1:{gateway.port}"
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_the_runner_leaves_signal_handling_to_its_host() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    async with run_payment_gateway(FAST):
        assert {sig: signal.getsignal(sig) for sig in before} == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


async def test_a_capture(gateway: RunningGateway, client: PaymentGatewayClient) -> None:
    order_id = uuid4()
    outcome = await _charge(client, order_id=order_id, amount="19.99")
    assert outcome.status is PaymentStatus.CAPTURED
    assert outcome.gateway_ref is not None and outcome.error is None
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        charge = (await http.get(f"/v1/charges/{outcome.gateway_ref}")).json()
    assert charge == {
        "id": outcome.gateway_ref,
        "status": "captured",
        "order_id": str(order_id),
        "amount": "19.99",
        "currency": "USD",
    }


async def test_a_replay_returns_the_same_charge_and_captures_once(
    gateway: RunningGateway, client: PaymentGatewayClient
) -> None:
    order_id, key = uuid4(), str(uuid4())
    first = await _charge(client, order_id=order_id, key=key)
    second = await _charge(client, order_id=order_id, key=key)
    assert first.status is second.status is PaymentStatus.CAPTURED
    assert second.gateway_ref == first.gateway_ref
    stats = await _stats(gateway)
    assert stats["captures"] == 1
    assert stats["captures_by_order"] == {str(order_id): 1}
    assert stats["captured_amount"] == "12.34"
    assert stats["outcomes"] == {
        "captured": 1,
        "declined": 0,
        "gateway_error": 0,
        "timeout": 0,
        "replayed": 1,
        "conflict": 0,
    }


async def test_concurrent_requests_with_one_key_capture_once(
    gateway: RunningGateway, client: PaymentGatewayClient
) -> None:
    gateway.simulator.update_config(latency_mean_ms=20, latency_jitter_ms=10)
    order_id, key = uuid4(), str(uuid4())
    outcomes = await asyncio.gather(
        *(_charge(client, order_id=order_id, key=key) for _ in range(20))
    )
    assert {o.status for o in outcomes} == {PaymentStatus.CAPTURED}
    assert len({o.gateway_ref for o in outcomes}) == 1
    stats = await _stats(gateway)
    assert stats["captures"] == 1
    assert stats["orders_captured_more_than_once"] == []
    # The gateway noticed the caller sent one key while it was still answering it.
    assert stats["concurrent_charges"] >= 1 and stats["keys_charged_concurrently"] == [key]


async def test_a_refund_gives_a_capture_back_once_and_never_more_than_it_captured(
    gateway: RunningGateway, client: PaymentGatewayClient
) -> None:
    order_id, key = uuid4(), str(uuid4())
    charge = await _charge(client, order_id=order_id, amount="19.99", key=key)
    assert charge.gateway_ref is not None
    refund_key = f"refund-{order_id}"

    first = await client.refund(charge_ref=charge.gateway_ref, amount=Decimal("19.99"),
                                idempotency_key=refund_key)
    again = await client.refund(charge_ref=charge.gateway_ref, amount=Decimal("19.99"),
                                idempotency_key=refund_key)  # a retry: replayed

    assert first.status is PaymentStatus.REFUNDED and first.amount == Decimal("19.99")
    assert again.gateway_ref == first.gateway_ref
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        looked_up = (await http.get(f"/v1/payments/{key}")).json()
        ledger = (await http.get("/v1/ledger")).json()
        more = await http.post("/v1/refunds", headers={"Idempotency-Key": "another"},
                               json={"charge": charge.gateway_ref, "amount": "0.01"})
        unknown = await http.post("/v1/refunds", headers={"Idempotency-Key": "unknown"},
                                  json={"charge": "ch_nope"})
        reused = await http.post("/v1/refunds", headers={"Idempotency-Key": refund_key},
                                 json={"charge": charge.gateway_ref, "amount": "1.00"})
        keyless = await http.post("/v1/refunds", json={"charge": charge.gateway_ref})
        float_amount = await http.post("/v1/refunds", headers={"Idempotency-Key": "f"},
                                       json={"charge": charge.gateway_ref, "amount": 1.5})
    assert looked_up["status"] == "captured" and looked_up["amount_refunded"] == "19.99"
    assert [(r["id"], r["order_id"], r["amount"]) for r in ledger["refunds"]] == [
        (first.gateway_ref, str(order_id), "19.99")]
    assert len(ledger["captures"]) == 1  # the books keep the capture and its refund
    assert (more.status_code, more.json()["error"]) == (422, "amount_too_large")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert (reused.status_code, reused.json()["error"]) == (409, "idempotency_key_reused")
    assert keyless.status_code == 400 and float_amount.status_code == 422
    stats = await _stats(gateway)
    assert (stats["refunds"], stats["refunded_amount"]) == (1, "19.99")


async def test_a_refund_the_gateway_refuses_is_final_and_one_it_cannot_make_is_not(
    gateway: RunningGateway, client: PaymentGatewayClient
) -> None:
    with pytest.raises(RequestRejected, match="404"):
        await client.refund(charge_ref="ch_unknown", amount=Decimal("1.00"),
                            idempotency_key=str(uuid4()))
    async with PaymentGatewayClient("http://127.0.0.1:1", timeout_s=1.0) as dead:
        with pytest.raises(BackendUnavailable):
            await dead.refund(charge_ref="ch_x", amount=Decimal("1.00"),
                              idempotency_key=str(uuid4()))


async def test_decline_rate_one_declines(
    gateway: RunningGateway, client: PaymentGatewayClient
) -> None:
    gateway.simulator.update_config(decline_rate=1)
    outcome = await _charge(client)
    assert outcome.status is PaymentStatus.DECLINED
    assert outcome.gateway_ref is not None
    assert outcome.error is not None and outcome.error.startswith("card_declined")
    assert (await _stats(gateway))["captures"] == 0


async def test_error_rate_one_is_a_gateway_error_and_a_retry_may_succeed(
    gateway: RunningGateway, client: PaymentGatewayClient
) -> None:
    key = str(uuid4())
    order_id = uuid4()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        patched = await http.patch("/v1/config", json={"error_rate": 1})
        assert patched.status_code == 200
    failed = await _charge(client, order_id=order_id, key=key)
    assert failed.status is PaymentStatus.GATEWAY_ERROR
    assert failed.error is not None and failed.error.startswith("HTTP 50")
    gateway.simulator.update_config(error_rate=0)
    retried = await _charge(client, order_id=order_id, key=key)
    assert retried.status is PaymentStatus.CAPTURED


async def test_timeout_rate_one_times_out_and_the_server_stops_promptly() -> None:
    config = FAST.with_changes(timeout_rate=1, timeout_delay_s=1)
    started = time.monotonic()
    async with run_payment_gateway(config) as server:
        async with PaymentGatewayClient(server.url, timeout_s=0.3) as client:
            outcome = await _charge(client)
            elapsed = time.monotonic() - started
        assert outcome.status is PaymentStatus.TIMEOUT
        assert outcome.gateway_ref is None
        assert outcome.error is not None and "0.3s" in outcome.error
        stats = await _stats(server)
        assert stats["outcomes"]["timeout"] == 1
        assert stats["captures"] == 0
    assert elapsed < 1.0  # the client gave up before the gateway answered
    # Leaving the block stopped the server: nothing listens on its port any more.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{server.url}/healthz")


async def test_shutdown_does_not_wait_for_a_hanging_request() -> None:
    config = FAST.with_changes(timeout_rate=1, timeout_delay_s=30)
    simulator = PaymentGatewaySimulator(config)
    async with run_payment_gateway(simulator=simulator) as server:
        client = PaymentGatewayClient(server.url, timeout_s=10)
        pending = asyncio.create_task(_charge(client))
        while simulator.stats()["charge_requests"] == 0:
            await asyncio.sleep(0.01)
        stop_started = time.monotonic()
    try:
        # The hanging request was answered (a 504) when the server stopped, not after 30 s.
        assert time.monotonic() - stop_started < 2.0
        outcome = await asyncio.wait_for(pending, timeout=1)
        assert outcome.status is PaymentStatus.GATEWAY_ERROR
        assert outcome.error is not None and "HTTP 504" in outcome.error
    finally:
        await client.aclose()


async def test_a_timed_out_capture_is_replayed_on_retry() -> None:
    # The ambiguous case: the gateway captured, the answer was lost. The retry must not
    # capture a second time.
    config = FAST.with_changes(timeout_rate=1, timeout_capture_rate=1, timeout_delay_s=1)
    async with run_payment_gateway(config) as server:
        async with PaymentGatewayClient(server.url, timeout_s=0.3) as client:
            order_id, key = uuid4(), str(uuid4())
            first = await _charge(client, order_id=order_id, key=key)
            assert first.status is PaymentStatus.TIMEOUT
            retry = await _charge(client, order_id=order_id, key=key)
        assert retry.status is PaymentStatus.CAPTURED
        stats = await _stats(server)
        assert stats["captures"] == 1
        assert stats["captures_by_order"] == {str(order_id): 1}


async def test_a_closed_port_is_a_gateway_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with PaymentGatewayClient(f"http://127.0.0.1:{port}", timeout_s=2) as client:
        outcome = await _charge(client)
    assert outcome.status is PaymentStatus.GATEWAY_ERROR
    assert outcome.error is not None and outcome.error.startswith("ConnectError")


async def test_a_taken_port_is_a_start_error(gateway: RunningGateway) -> None:
    with pytest.raises(SimulatorStartError, match="cannot listen"):
        async with run_payment_gateway(FAST, port=gateway.port):
            pass
    with pytest.raises(ConfigError):
        async with run_payment_gateway(FAST, simulator=gateway.simulator):
            pass


@pytest.mark.parametrize(
    ("headers", "content", "status", "error"),
    [
        ({}, b'{"order_id": "o", "amount": "1.00", "currency": "USD"}', 400,
         "idempotency_key_required"),
        ({"Idempotency-Key": "k"}, b"{oops", 400, "invalid_json"),
        ({"Idempotency-Key": "k"}, b'{"order_id": "o", "amount": "0", "currency": "USD"}',
         422, "invalid_request"),
        ({"Idempotency-Key": "k"}, b'{"order_id": "o", "amount": "1.001", "currency": "USD"}',
         422, "invalid_request"),
        ({"Idempotency-Key": "k"}, b'{"order_id": "o", "amount": 1.0, "currency": "USD"}',
         422, "invalid_request"),
        ({"Idempotency-Key": "k"}, b'{"order_id": "o"}', 422, "invalid_request"),
        ({"Idempotency-Key": "k"}, b"x" * 100_000, 413, "request_too_large"),
    ],
)  # fmt: skip
async def test_bad_bodies_get_a_4xx_json_error(
    gateway: RunningGateway, headers: dict[str, str], content: bytes, status: int, error: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/charges",
            content=content,
            headers={"Content-Type": "application/json", **headers},
        )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    stats = await _stats(gateway)
    assert stats["invalid_requests"] == 1
    assert stats["captures"] == 0
