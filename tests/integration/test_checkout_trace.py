"""One checkout through the HTTP gateway is one trace: every service, every client hop, the
Kafka hop to the shipment consumer, no orphan span; and the trace backend shows the same."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.bootstrap import ShopStack
from tests.shopdata import make_catalogue

SERVICES = {"gateway", "checkout", "cart", "inventory", "order", "payment", "shipment"}


async def _shopper_token(client: httpx.AsyncClient, email: str) -> str:
    registered = await client.post(
        "/api/users/register",
        json={"email": email, "password": "trace-me-123", "full_name": "Trace Shopper"},
    )
    assert registered.status_code == 201, registered.text
    login = await client.post(
        "/api/users/login", json={"email": email, "password": "trace-me-123"}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["token"])


def _service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


async def test_one_checkout_is_one_connected_trace(
    shop: ShopStack, gateway_url: str, spans: InMemorySpanExporter
) -> None:
    catalogue = await make_catalogue(shop, 2, stock=10)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        token = await _shopper_token(client, f"{catalogue.slug}@example.test")
        auth = {"Authorization": f"Bearer {token}"}
        for pid in catalogue.ids:
            added = await client.post("/api/cart/items", json={"product_id": pid}, headers=auth)
            assert added.status_code == 201, added.text
        with shop.telemetry.tracer("shopper").span("journey.checkout") as root:
            response = await client.post("/api/checkout", headers=auth)
        assert response.status_code == 200, response.text
    await shop.drain(30)
    assert shop.telemetry.force_flush()

    trace_id = root.get_span_context().trace_id
    trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    ids = {s.context.span_id for s in trace}
    orphans = [s.name for s in trace if s.parent is not None and s.parent.span_id not in ids]
    assert orphans == []
    assert {_service(s) for s in trace} >= SERVICES

    names = Counter((_service(s), s.name) for s in trace)
    for expected in [("checkout", "checkout.complete"), ("inventory", "inventory.reserve"),
                     ("order", "order.create"), ("payment", "payment.process"),
                     ("shipment", "shipment.create"), ("cart", "cart.get")]:
        assert names[expected] >= 1, expected

    def attrs(span: ReadableSpan) -> dict[str, Any]:
        return dict(span.attributes or {})

    # The current semantic conventions (telemetry/semconv.py), not the deprecated names.
    db = [s for s in trace if attrs(s).get("db.system.name") == "postgresql"]
    redis = [s for s in trace if attrs(s).get("db.system.name") == "redis"]
    kafka = [s for s in trace if attrs(s).get("messaging.system") == "kafka"]
    http_client = [s for s in trace if s.kind.name == "CLIENT"
                   and "http.request.method" in attrs(s)]
    assert {_service(s) for s in db} >= {"inventory", "order", "shipment"}
    assert {_service(s) for s in redis} >= {"cart"}
    assert any(s.kind.name == "PRODUCER" for s in kafka)
    process = [s for s in kafka if s.name == "process order-events" and _service(s) == "shipment"]
    assert process and attrs(process[0])["messaging.destination.name"] == "order-events"
    assert any(_service(s) == "payment" for s in http_client)

    # The same trace reached Jaeger through the OTLP exporter, one process per service.
    found = await _jaeger_trace(shop.settings.trace_query_url, format(trace_id, "032x"),
                                len(trace))
    jaeger_services = {p["serviceName"] for p in found["processes"].values()}
    assert jaeger_services >= SERVICES


async def _jaeger_trace(query_url: str, trace_id: str, spans: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=query_url, timeout=5) as client:
        last: dict[str, Any] = {}
        for _ in range(60):
            response = await client.get(f"/api/traces/{trace_id}")
            if response.status_code == 200 and response.json().get("data"):
                last = response.json()["data"][0]
                if len(last["spans"]) >= spans:
                    return last
            await asyncio.sleep(0.25)
    raise AssertionError(f"Jaeger has {len(last.get('spans', []))} of {spans} spans")
