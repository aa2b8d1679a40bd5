"""Spans leave a serving process through the export process: they reach Jaeger as the SDK's
own exporter would send them, and a dead or stuck export process costs the serving process
its spans, never its requests (``on_end`` stays a queue append, flushes keep their
deadline)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import replace
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanContext, SpanKind

from ecomctl.analysis.readers import read_jaeger
from ecomctl.config import BatchSpanSettings, Settings
from ecomctl.telemetry.export_process import ExportProcessSpanProcessor


def _provider(processor: ExportProcessSpanProcessor, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource({"service.name": service}),
                              shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


def test_spans_reach_jaeger_through_the_export_process(settings: Settings) -> None:
    service = f"it-export-{uuid.uuid4().hex[:8]}"
    processor = ExportProcessSpanProcessor([settings.traces_otlp])
    tracer = _provider(processor, service).get_tracer("ecomctl.tests")
    link = Link(SpanContext(0xABC, 0xDEF, is_remote=True), {"ecom.why": "batch"})
    with (tracer.start_as_current_span("it.parent", kind=SpanKind.SERVER,
                                       attributes={"ecom.n": 7}),
          tracer.start_as_current_span("it.child", links=[link]) as child):
        child.add_event("ecom.retry", {"ecom.attempt": 2})
    try:
        assert processor.force_flush(10_000)
    finally:
        processor.shutdown()
    assert processor.dropped == 0

    source = f"jaeger://{urlsplit(settings.trace_query_url).netloc}"
    deadline = time.monotonic() + 15
    while not (spans := read_jaeger(source, service, 5, "1h", api="v3")):
        assert time.monotonic() < deadline, "the spans never reached Jaeger"
        time.sleep(0.3)
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"it.parent", "it.child"}
    assert by_name["it.child"].parent_span_id == by_name["it.parent"].span_id
    assert by_name["it.child"].links == [(format(0xABC, "032x"), format(0xDEF, "016x"))]
    assert by_name["it.parent"].attributes["ecom.n"] == 7
    assert by_name["it.parent"].kind == "SERVER"


def test_a_killed_export_process_drops_spans_and_never_blocks(settings: Settings) -> None:
    processor = ExportProcessSpanProcessor([settings.traces_otlp],
                                           batch=BatchSpanSettings(schedule_delay_ms=50))
    tracer = _provider(processor, "it-export-killed").get_tracer("ecomctl.tests")
    with tracer.start_as_current_span("it.first"):
        pass
    assert processor.force_flush(10_000)
    process = processor._process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)

    started = time.perf_counter()
    for n in range(2_000):
        with tracer.start_as_current_span("it.after", attributes={"ecom.n": n}):
            pass
    spent = time.perf_counter() - started
    flushed_at = time.monotonic()
    assert not processor.force_flush(2_000)
    assert time.monotonic() - flushed_at < 3
    processor.shutdown()
    assert processor.dropped == 2_000
    assert spent < 5, f"2,000 spans took {spent:.1f}s with the export process gone"


def test_an_unreachable_collector_keeps_flushes_within_their_deadline(
    settings: Settings,
) -> None:
    nowhere = replace(settings.traces_otlp, endpoint="http://127.0.0.1:9", timeout_s=30.0)
    processor = ExportProcessSpanProcessor([nowhere], batch=BatchSpanSettings(
        max_queue_size=500, max_export_batch_size=100))
    tracer = _provider(processor, "it-export-nowhere").get_tracer("ecomctl.tests")
    for n in range(3_000):  # more than the queue holds while the exporter retries
        with tracer.start_as_current_span("it.span", attributes={"ecom.n": n}):
            pass
    started = time.monotonic()
    assert not processor.force_flush(1_500)
    assert time.monotonic() - started < 3
    shutdown_at = time.monotonic()
    processor.shutdown()
    assert time.monotonic() - shutdown_at < 30
    assert processor.dropped > 0
