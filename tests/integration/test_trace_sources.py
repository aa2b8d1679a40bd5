"""``ecomctl traces`` on traces that other systems produced: files written by the plain
OpenTelemetry SDK in a process that never imports ecomctl, and the local stack's Jaeger.
The CLI runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ecomctl.analysis.model import SpanRecord
from ecomctl.analysis.readers import parse_text, read_jaeger, read_jaeger_trace
from ecomctl.config import Settings
from ecomctl.errors import ConfigError
from tests.cli_runner import CliResult, run_ecomctl

# A shop-like trace written with explicit timestamps (no sleeping): a server span, a business
# span, and below a nested "load items" span an N+1 loop of 6 identical SELECTs of 12 ms each.
_TRACE_BODY = """
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

MS = 1_000_000
T0 = 1_750_000_000_000_000_000
providers = {name: TracerProvider(resource=Resource.create({"service.name": name}))
             for name in ("frontend", "orders", "db-client")}
for provider in providers.values():
    provider.add_span_processor(make_processor())
tracer = {name: p.get_tracer("example") for name, p in providers.items()}

root = tracer["frontend"].start_span("GET /orders/{id}", kind=SpanKind.SERVER, start_time=T0,
                                     attributes={"http.route": "/orders/{id}"})
ctx = set_span_in_context(root)
handler = tracer["orders"].start_span("orders.load", context=ctx, start_time=T0 + 1 * MS)
ctx = set_span_in_context(handler)
items = tracer["orders"].start_span("orders.load_items", context=ctx, start_time=T0 + 2 * MS)
ctx = set_span_in_context(items)
for i in range(6):
    start = T0 + (3 + 13 * i) * MS
    query = tracer["db-client"].start_span(
        "SELECT", context=ctx, kind=SpanKind.CLIENT, start_time=start,
        attributes={"db.system": "postgresql",
                    "db.statement": "SELECT * FROM order_items WHERE order_id = $1"})
    query.end(end_time=start + 12 * MS)
items.end(end_time=T0 + 85 * MS)
failing = tracer["orders"].start_span("orders.audit", context=set_span_in_context(handler),
                                      start_time=T0 + 86 * MS)
failing.set_status(Status(StatusCode.ERROR, "audit log unavailable"))
failing.end(end_time=T0 + 88 * MS)
handler.end(end_time=T0 + 90 * MS)
root.end(end_time=T0 + 91 * MS)
for provider in providers.values():
    provider.force_flush()
    provider.shutdown()
print(format(root.get_span_context().trace_id, "032x"))
"""

_CONSOLE_WRITER = """
import sys
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
out = open(sys.argv[1], "w")
def make_processor():
    return SimpleSpanProcessor(ConsoleSpanExporter(out=out))
"""

_PROTOBUF_JSON_WRITER = """
import sys
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class OtlpJsonFile(SpanExporter):
    # What the OTLP/HTTP JSON encoding of these spans looks like through protobuf's own
    # json_format: camelCase names, base64 ids, int64 as strings, enums as names.
    def export(self, spans):
        with open(sys.argv[1], "a") as out:
            out.write(MessageToJson(encode_spans(spans), indent=None) + "\\n")
        return SpanExportResult.SUCCESS

def make_processor():
    return SimpleSpanProcessor(OtlpJsonFile())
"""


def _write_with_plain_sdk(writer: str, path: Path) -> str:
    """Run ``writer`` + the trace body in a fresh interpreter; returns the trace id."""
    script = textwrap.dedent(writer) + textwrap.dedent(_TRACE_BODY)
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _traces_cli(*args: str) -> CliResult:
    # A wide terminal, so rich does not wrap what the assertions look for.
    return run_ecomctl("traces", *args, env={"COLUMNS": "250"}, timeout=120)


def _analyze_json(path: Path) -> dict[str, Any]:
    result = _traces_cli("analyze", "--from", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _check_analysis(data: dict[str, Any], trace_id: str) -> None:
    assert data["counts"]["traces"] == 1
    assert data["counts"]["spans"] == 10  # server, load, load_items, 6 SELECTs, audit
    assert data["counts"]["services"] == 3
    assert data["counts"]["orphans"] == 0
    assert data["counts"]["error_spans"] == 1
    n_plus_one = [f for f in data["findings"] if f["detector"] == "n_plus_one"]
    assert len(n_plus_one) == 1
    finding = n_plus_one[0]
    assert finding["trace_id"] == trace_id
    assert len(finding["span_ids"]) == 6
    assert finding["details"]["parent"] == {"service": "orders", "name": "orders.load_items"}
    assert finding["details"]["statement_shape"] == "SELECT * FROM order_items WHERE order_id = ?"
    assert finding["details"]["total_ms"] == 72.0
    (slowest,) = data["critical_path"]["slowest_traces"]
    assert slowest["trace_id"] == trace_id and slowest["duration_ms"] == 91.0
    by_op = {(i["service"], i["name"]): i["ms"] for i in slowest["by_operation"]}
    assert by_op[("db-client", "SELECT")] == 72.0


def test_console_exporter_output_from_a_process_without_ecomctl(tmp_path: Path) -> None:
    path = tmp_path / "console.json"
    trace_id = _write_with_plain_sdk(_CONSOLE_WRITER, path)
    assert path.read_text().lstrip().startswith("{\n")  # pretty-printed, concatenated objects
    _check_analysis(_analyze_json(path), trace_id)


def test_protobuf_json_with_base64_ids_from_a_process_without_ecomctl(tmp_path: Path) -> None:
    path = tmp_path / "otlp.jsonl"
    trace_id = _write_with_plain_sdk(_PROTOBUF_JSON_WRITER, path)
    first_line = json.loads(path.read_text().splitlines()[0])
    raw_id = first_line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    assert len(raw_id) == 24  # base64 of 16 bytes, not hex
    _check_analysis(_analyze_json(path), trace_id)

    listed = _traces_cli("list", "--from", str(path), "--json")
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["trace_id"] == trace_id and row["spans"] == 10 and row["errors"] == 1
    assert row["root"] == {"service": "frontend", "name": "GET /orders/{id}"}

    shown = _traces_cli("show", trace_id[:12], "--from", str(path))
    assert shown.exit_code == 0, shown.stderr
    assert "orders.load_items" in shown.stdout and "audit log unavailable" in shown.stdout
    assert "SELECT * FROM order_items WHERE order_id = $1" in shown.stdout


def test_bad_input_exits_2_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"resourceSpans": []}\n{"resourceSpans": [}\n')
    result = _traces_cli("analyze", "--from", str(path))
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "not valid JSON" in result.stderr


def _jaeger_source(settings: Settings) -> str:
    parts = urlsplit(settings.trace_query_url)
    return f"jaeger://{parts.hostname}:{parts.port}"


def test_traces_exported_over_otlp_are_read_back_from_jaeger(settings: Settings) -> None:
    service = f"it-traces-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("ecomctl.tests")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        for _ in range(2):
            with tracer.start_as_current_span(
                "GET", kind=SpanKind.CLIENT,
                attributes={"db.system": "redis", "db.statement": "GET ?"},
            ):
                pass
        with tracer.start_as_current_span("cart.price") as failing:
            failing.set_status(Status(StatusCode.ERROR, "price missing"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()

    source = _jaeger_source(settings)
    deadline = time.monotonic() + 15
    spans = read_jaeger(source, service, 20, "1h")
    while len(spans) < 4 and time.monotonic() < deadline:
        time.sleep(0.3)
        spans = read_jaeger(source, service, 20, "1h")
    assert len(spans) == 4
    assert {s.trace_id for s in spans} == {trace_id}
    by_name = {s.name: s for s in spans}
    assert by_name["GET /cart"].kind == "SERVER" and by_name["GET /cart"].service == service
    assert by_name["GET"].parent_span_id == by_name["GET /cart"].span_id
    assert by_name["GET"].attributes["db.system"] == "redis"
    assert by_name["cart.price"].status == "ERROR"
    assert by_name["cart.price"].status_message == "price missing"

    listed = _traces_cli("list", "--from", source, "--service", service, "--json")
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["trace_id"] == trace_id and row["spans"] == 4 and row["errors"] == 1

    shown = _traces_cli("show", trace_id, "--from", source, "--json")
    assert shown.exit_code == 0, shown.stderr
    tree = json.loads(shown.stdout)
    assert [(s["name"], s["depth"]) for s in tree["spans"]] == [
        ("GET /cart", 0), ("GET", 1), ("GET", 1), ("cart.price", 1)]


def _record_key(span: SpanRecord) -> tuple[Any, ...]:
    return (span.trace_id, span.span_id, span.parent_span_id, span.name, span.service,
            span.kind, span.status, span.status_message, tuple(span.links),
            tuple(sorted(span.attributes.items())))


def _wait_for_spans(read: Any, count: int) -> list[SpanRecord]:
    deadline = time.monotonic() + 15
    spans: list[SpanRecord] = read()
    while len(spans) < count and time.monotonic() < deadline:
        time.sleep(0.3)
        spans = read()
    return spans


def test_jaeger_api_v3_and_the_legacy_api_read_the_same_trace(settings: Settings) -> None:
    service = f"it-v3-{uuid.uuid4().hex[:8]}"
    sent = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(sent))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("ecomctl.tests")
    with tracer.start_as_current_span("earlier") as earlier:
        pass
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span(
            "SELECT", kind=SpanKind.CLIENT,
            attributes={"db.system.name": "postgresql", "db.query.text": "SELECT 1",
                        "db.response.returned_rows": 3},
        ):
            pass
        with tracer.start_as_current_span("process orders", kind=SpanKind.CONSUMER,
                                          links=[Link(earlier.get_span_context())]):
            pass
        with tracer.start_as_current_span("orders.audit") as failing:
            failing.set_status(Status(StatusCode.ERROR, "audit log unavailable"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    exact: dict[str, int] = {}
    for s in sent.get_finished_spans():
        assert s.start_time is not None  # a finished span has started
        exact[format(s.context.span_id, "016x")] = s.start_time

    source = _jaeger_source(settings)
    v3 = _wait_for_spans(lambda: read_jaeger(source, service, 20, "1h", api="v3"), 5)
    legacy = _wait_for_spans(lambda: read_jaeger(source, service, 20, "1h", api="legacy"), 5)
    auto = read_jaeger(source, service, 20, "1h")
    assert len(v3) == len(legacy) == 5
    assert sorted(map(_record_key, v3)) == sorted(map(_record_key, legacy))
    by_name = {s.name: s for s in v3}
    assert by_name["process orders"].links == [(format(earlier.get_span_context().trace_id,
                                                       "032x"), format(earlier.get_span_context()
                                                                       .span_id, "016x"))]
    assert by_name["SELECT"].attributes["db.response.returned_rows"] == 3
    # API v3 keeps the nanoseconds the SDK sent; the legacy API has microseconds.
    assert {s.span_id: s.start_ns for s in v3} == exact
    assert {s.span_id: s.start_ns for s in legacy} == {k: v // 1000 * 1000
                                                      for k, v in exact.items()}
    assert {s.span_id: s.start_ns for s in auto} == exact  # auto: v3, where there is one

    one = read_jaeger_trace(source, trace_id, api="v3")
    assert sorted(map(_record_key, one)) == sorted(
        _record_key(s) for s in v3 if s.trace_id == trace_id)
    assert read_jaeger_trace(source, "0123456789abcdef0123456789abcdef", api="v3") == []

    # A saved v3 answer is a trace file like any other.
    import httpx

    body = httpx.get(f"{settings.trace_query_url}/api/v3/traces/{trace_id}", timeout=10).text
    assert body.startswith('{"result":')
    assert sorted(map(_record_key, parse_text(body, "saved.json"))) == sorted(
        map(_record_key, one))


def test_a_jaeger_without_api_v3_is_read_through_the_legacy_api(settings: Settings) -> None:
    """A Jaeger before 1.35: its router answers 404 (plain text) on /api/v3. Stood in for by
    a proxy to the local Jaeger that has every path but /api/v3."""
    import http.server
    import threading

    import httpx

    service = f"it-legacy-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
    )
    with provider.get_tracer("ecomctl.tests").start_as_current_span("old.jaeger"):
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    upstream = settings.trace_query_url.rstrip("/")
    paths: list[str] = []

    class OldJaeger(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            if self.path.startswith("/api/v3/"):
                status, body = 404, b"404 page not found\n"
            else:
                answer = httpx.get(f"{upstream}{self.path}", timeout=10)
                status, body = answer.status_code, answer.content
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OldJaeger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = f"jaeger://127.0.0.1:{server.server_address[1]}"
        spans = _wait_for_spans(lambda: read_jaeger(source, service, 5, "1h"), 1)
        assert [(s.name, s.service) for s in spans] == [("old.jaeger", service)]
        assert spans[0].start_ns % 1000 == 0  # microseconds: the legacy API answered
        assert any(p.startswith("/api/v3/traces?") for p in paths)
        assert any(p.startswith("/api/traces?") for p in paths)
        trace_id = spans[0].trace_id
        assert [s.span_id for s in read_jaeger_trace(source, trace_id)] == [spans[0].span_id]
        with pytest.raises(ConfigError, match="no API v3"):
            read_jaeger(source, service, 5, "1h", api="v3")
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_jaeger_exits_1() -> None:
    result = _traces_cli("list", "--from", "jaeger://127.0.0.1:9", "--service", "x")
    assert result.exit_code == 1
    assert "jaeger" in result.stderr
