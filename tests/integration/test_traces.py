from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ecomctl.config import Settings


async def _get_trace(query_url: str, trace_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=query_url, timeout=5) as client:
        for _ in range(50):
            response = await client.get(f"/api/traces/{trace_id}")
            if response.status_code == 200 and response.json().get("data"):
                return cast(dict[str, Any], response.json()["data"][0])
            await asyncio.sleep(0.2)
    raise AssertionError(f"trace {trace_id} never reached the trace backend")


async def test_spans_exported_over_otlp_are_read_back_from_the_query_api(
    settings: Settings,
) -> None:
    service = f"it-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("ecomctl.tests")
    with tracer.start_as_current_span("checkout.complete") as parent:
        parent.set_attribute("ecom.order.id", "o-42")
        with tracer.start_as_current_span("payment.process"):
            pass
    trace_id = format(parent.get_span_context().trace_id, "032x")
    parent_span_id = format(parent.get_span_context().span_id, "016x")
    assert provider.force_flush(10_000)
    provider.shutdown()

    trace = await _get_trace(settings.trace_query_url, trace_id)
    spans = {span["operationName"]: span for span in trace["spans"]}
    assert set(spans) == {"checkout.complete", "payment.process"}
    child_refs = spans["payment.process"]["references"]
    assert child_refs == [
        {"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent_span_id}
    ]
    tags = {t["key"]: t["value"] for t in spans["checkout.complete"]["tags"]}
    assert tags["ecom.order.id"] == "o-42"
    processes = trace["processes"].values()
    assert {p["serviceName"] for p in processes} == {service}

    async with httpx.AsyncClient(base_url=settings.trace_query_url, timeout=5) as client:
        services = (await client.get("/api/services")).json()["data"]
    assert service in services
