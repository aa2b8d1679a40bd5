"""The standard OTLP variables honoured on the wire: ``Telemetry`` built from them exports
where and how they say, to the local Jaeger (traces) and to a collector stand-in that records
the requests (what Jaeger cannot show: headers, compression, metrics).
"""

from __future__ import annotations

import gzip
import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.analysis.readers import read_jaeger
from ecomctl.config import LOCAL_PORTS, Settings
from ecomctl.telemetry.exporters import otlp_span_exporter
from ecomctl.telemetry.setup import Telemetry


def _env(settings: Settings, **otel: str) -> dict[str, str]:
    """This run's environment without its OTEL_* variables, plus ``otel``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**base, "ECOMCTL_TRACE_QUERY_URL": settings.trace_query_url, **otel}


def _v3_trace(settings: Settings, trace_id: str) -> dict[str, Any]:
    url = f"{settings.trace_query_url.rstrip('/')}/api/v3/traces/{trace_id}"
    deadline = time.monotonic() + 15
    while True:
        answer = httpx.get(url, timeout=10)
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json()["result"]  # type: ignore[no-any-return]
        time.sleep(0.3)


def _resource(result: dict[str, Any]) -> dict[str, Any]:
    (resource_spans,) = result["resourceSpans"]
    return {a["key"]: a["value"]["stringValue"]
            for a in resource_spans["resource"]["attributes"]}


def test_traces_over_otlp_http_with_the_traces_variables_reach_jaeger(settings: Settings) -> None:
    service = f"it-otel-{uuid.uuid4().hex[:8]}"
    namespace = f"it-ns-{uuid.uuid4().hex[:8]}"
    host = urlsplit(settings.otlp_endpoint).hostname
    env = _env(
        settings,
        # The common variables point nowhere: the traces' own must win.
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://{host}:{LOCAL_PORTS.otlp_http}/v1/traces",
        OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="gzip",
        OTEL_SERVICE_NAME="it-process",
        OTEL_RESOURCE_ATTRIBUTES=(
            f"service.namespace={namespace},deployment.environment.name=it%20run%2C%20eu"),
    )
    telemetry = Telemetry(Settings.from_env(env))
    try:
        with telemetry.tracer(service).span("it.work") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        assert telemetry.force_flush()
    finally:
        telemetry.shutdown()

    resource = _resource(_v3_trace(settings, trace_id))
    assert resource["service.name"] == service  # the service's name, not OTEL_SERVICE_NAME
    assert resource["service.namespace"] == namespace  # as given, not overridden
    assert resource["deployment.environment.name"] == "it run, eu"  # percent-decoded
    source = f"jaeger://{urlsplit(settings.trace_query_url).netloc}"
    assert [s.name for s in read_jaeger(source, service, 5, "1h", api="v3")] == ["it.work"]


def _finished_spans(name: str) -> Sequence[ReadableSpan]:
    """One span finished by a plain SDK provider, for an exporter to send."""
    sent = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(sent))
    with provider.get_tracer("ecomctl.tests").start_as_current_span(name):
        pass
    provider.shutdown()
    return sent.get_finished_spans()


def test_a_grpc_host_port_endpoint_is_plaintext_only_with_insecure_true(
    settings: Settings,
) -> None:
    parts = urlsplit(settings.otlp_endpoint)
    target = f"{parts.hostname}:{parts.port}"  # no scheme: INSECURE decides
    for insecure, expected in (("true", SpanExportResult.SUCCESS),
                               ("false", SpanExportResult.FAILURE)):
        env = _env(settings, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=target,
                   OTEL_EXPORTER_OTLP_INSECURE=insecure, OTEL_EXPORTER_OTLP_TIMEOUT="1500")
        exporter = otlp_span_exporter(Settings.from_env(env).traces_otlp)
        try:
            # TLS against Jaeger's plaintext receiver fails in the handshake.
            assert exporter.export(_finished_spans(f"it.insecure.{insecure}")) == expected
        finally:
            exporter.shutdown()


@dataclass
class _Collector:
    """An OTLP/HTTP receiver that records each request (and can answer slowly)."""

    delay_s: float = 0.0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def collector() -> Iterator[_Collector]:
    state = _Collector()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                   body))
            time.sleep(state.delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def test_both_signals_over_otlp_http_with_headers_and_gzip(
    settings: Settings, collector: _Collector
) -> None:
    env = _env(
        settings,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.port}/otlp",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20common,x-tenant=t1",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="authorization=Bearer%20traces",
        OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="gzip",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_SERVICE_NAME="it-metrics-process",
    )
    telemetry = Telemetry(Settings.from_env(env))
    with telemetry.tracer("order").span("order.place"):
        pass
    telemetry.metrics.cache_lookup("product", "l1", True)
    telemetry.shutdown()  # flushes both: the spans' batch and the metrics' last collection

    by_path = {path: (headers, body) for path, headers, body in collector.requests}
    assert set(by_path) == {"/otlp/v1/traces", "/otlp/v1/metrics"}
    headers, body = by_path["/otlp/v1/traces"]
    assert headers["authorization"] == "Bearer traces"  # the signal's own headers only
    assert "x-tenant" not in headers
    assert headers.get("content-encoding") != "gzip"
    spans = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = spans.resource_spans
    names = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert names["service.name"] == "order"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["order.place"]

    headers, body = by_path["/otlp/v1/metrics"]
    assert (headers["authorization"], headers["x-tenant"]) == ("Bearer common", "t1")
    assert headers["content-encoding"] == "gzip"
    request = ExportMetricsServiceRequest.FromString(gzip.decompress(body))
    (resource_metrics,) = request.resource_metrics
    names = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert names["service.name"] == "it-metrics-process"
    metric_names = {m.name for scope in resource_metrics.scope_metrics for m in scope.metrics}
    assert "ecom.cache.lookups" in metric_names


def test_the_export_timeout_is_in_milliseconds(settings: Settings, collector: _Collector) -> None:
    collector.delay_s = 5.0
    env = _env(
        settings,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{collector.port}/v1/traces",
        OTEL_EXPORTER_OTLP_TIMEOUT="400",  # 400 ms (the Python SDK alone would read 400 s)
    )
    spans = _finished_spans("it.slow-collector")
    exporter = otlp_span_exporter(Settings.from_env(env).traces_otlp)
    started = time.monotonic()
    try:
        result = exporter.export(spans)
    finally:
        exporter.shutdown()
    assert result == SpanExportResult.FAILURE
    assert time.monotonic() - started < 3.0  # far below the collector's 5 s
    assert collector.requests  # it did try
