"""The load generator's client spans (``ecomctl.telemetry.loadgen``) and what ``load run``
makes of them: no orphans in the capture, network + queueing time per endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecomctl.analysis.model import SpanRecord
from ecomctl.analysis.readers import read_file
from ecomctl.config import Settings
from ecomctl.errors import ConfigError
from ecomctl.load.result import analyze_server_spans, network_queueing
from ecomctl.telemetry.loadgen import (
    CANCELLED,
    LOADGEN_SERVICE,
    SPAN_DIR_ENV,
    append_captures,
    loadgen_otlp,
    locust_otlp_env,
    tracing_from_env,
)
from tests.otel_recorders import Built
from tests.spans import otlp_document, otlp_span, span_record

CHECKOUT = "POST /api/checkout"


HTTP = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),  # plain `locust -f`: nothing to export to
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/", **HTTP}, "http://c:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **HTTP,
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/x"}, "http://t:9/x"),
    # One default protocol, the shop's (gRPC): no gRPC under gevent, so no export.
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, "http://c:4317/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **HTTP,
      "OTEL_TRACES_EXPORTER": "none"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **HTTP, "OTEL_SDK_DISABLED": "true"},
     None),
])
def test_the_export_endpoint_follows_the_standard_variables(
    env: dict[str, str], expected: str | None
) -> None:
    otlp = loadgen_otlp(Settings.from_env(env), env)
    assert (otlp.endpoint if otlp is not None else None) == expected


@pytest.mark.parametrize("env", [
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example:4318/base/", **HTTP,
     "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc",
     "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1500", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/x",
     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
     "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=t1", "OTEL_BSP_EXPORT_TIMEOUT": "800",
     "OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "128"},
])
def test_locust_and_the_shop_read_the_variables_with_one_parser(
    env: dict[str, str], built: list[Built]
) -> None:
    """What the Locust process exports with is what ``Settings`` (the shop's parser) says,
    option for option, and built by the shop's own exporter builder."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from ecomctl.telemetry.exporters import otlp_span_exporter

    settings = Settings.from_env(env)
    assert loadgen_otlp(settings, env) == settings.traces_otlp
    tracing = tracing_from_env(env)
    assert tracing is not None
    try:
        (batch,) = tracing.provider._active_span_processor._span_processors
        assert isinstance(batch, BatchSpanProcessor)
        inner = batch._batch_processor
        assert (inner._max_queue_size, inner._max_export_batch_size,
                inner._schedule_delay_millis, inner._export_timeout_millis) == (
            settings.batch.max_queue_size, settings.batch.max_export_batch_size,
            settings.batch.schedule_delay_ms, settings.batch.export_timeout_ms)
        otlp_span_exporter(settings.traces_otlp, settings.batch)  # as the shop builds it
        loadgen, shop = built
        assert loadgen == shop and loadgen.transport == "http"
    finally:
        tracing.shutdown()


def test_locust_fails_on_a_bad_variable_as_the_shop_does() -> None:
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_QUEUE_SIZE"):
        tracing_from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"})
    with pytest.raises(ConfigError, match="OTEL_PROPAGATORS"):
        tracing_from_env({"OTEL_PROPAGATORS": "tracecontext,nonsense"})


def test_request_headers_follow_otel_propagators(tmp_path: Path) -> None:
    tracing = tracing_from_env({SPAN_DIR_ENV: str(tmp_path),
                                "OTEL_PROPAGATORS": "baggage"})
    assert tracing is not None
    span = tracing.start("GET", "/api/cart", "http://127.0.0.1:8123", "/api/cart")
    assert "traceparent" not in span.headers and span.traceparent == ""
    span.end(status_code=200, duration_ms=1.0, error=None)
    tracing.shutdown()


def test_locust_gets_the_gateways_collector_over_http() -> None:
    def env_for(**variables: str) -> dict[str, str]:
        return locust_otlp_env(Settings.from_env(variables))

    # The local stack: OTLP/gRPC on 14317, its HTTP receiver on 14318.
    assert env_for() == {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:14318/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    http = env_for(OTEL_EXPORTER_OTLP_ENDPOINT="http://otel:4318/",
                   OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    assert http["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://otel:4318/v1/traces"
    # The gateway's own traces endpoint is the one Locust gets (gRPC: the next port).
    assert env_for(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="https://c.example:4317",
                   OTEL_EXPORTER_OTLP_ENDPOINT="http://other:1")[
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "https://c.example:4318/v1/traces"
    assert env_for(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
                   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://t:9/x")[
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://t:9/x"
    assert env_for(OTEL_TRACES_EXPORTER="none") == {}  # the gateway exports nothing either


def test_no_endpoint_and_no_span_directory_means_no_tracing() -> None:
    assert tracing_from_env({}) is None


def test_a_request_span_carries_the_traceparent_it_sends(tmp_path: Path) -> None:
    tracing = tracing_from_env({SPAN_DIR_ENV: str(tmp_path)})
    assert tracing is not None
    span = tracing.start("POST", "/api/checkout", "http://127.0.0.1:8123", "/api/checkout")
    version, trace_id, span_id, flags = span.traceparent.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    assert int(flags, 16) & 1  # sampled (the SDK may add W3C level 2's "random" bit)
    span.end(status_code=402, duration_ms=12.5, error=None)
    failed = tracing.start("GET", "/api/cart", "http://127.0.0.1:8123", "/api/cart")
    failed.end(status_code=503, duration_ms=3.0, error="503 overloaded")
    cancelled = tracing.start("GET", "/api/cart", "http://127.0.0.1:8123", "/api/cart")
    cancelled.cancel()
    cancelled.end(status_code=200, duration_ms=1.0, error=None)  # too late: no effect
    tracing.shutdown()

    [capture] = list(tmp_path.glob("loadgen-*.jsonl"))
    spans = {s.span_id: s for s in read_file(capture)}
    assert len(spans) == 3
    checkout = spans[span_id]
    assert checkout.trace_id == trace_id and checkout.parent_span_id is None
    assert (checkout.service, checkout.kind, checkout.name) == (LOADGEN_SERVICE, "CLIENT",
                                                                CHECKOUT)
    assert checkout.duration_ns == 12_500_000  # exactly what Locust measured
    assert checkout.status == "UNSET"  # a 402 the scenario expects is not an error
    assert checkout.attributes["http.response.status_code"] == 402
    assert checkout.attributes["server.port"] == 8123
    errors = [s for s in spans.values() if s.status == "ERROR"]
    assert [(s.attributes["error.type"], s.status_message) for s in errors] == \
        [("503", "503 overloaded")]
    assert sum(bool(s.attributes.get("loadgen.cancelled")) for s in spans.values()) == 1


def test_network_and_queueing_time_is_client_minus_server_per_request() -> None:
    spans = []
    for i in range(10):  # the client waited 5 + i ms longer than the server worked
        spans.append(span_record(f"c{i:015x}", None, 0, 25 + 2 * i, CHECKOUT,
                                 service=LOADGEN_SERVICE, kind="CLIENT", trace_id=i))
        spans.append(span_record(f"s{i:015x}", f"c{i:015x}", 2, 22 + i, CHECKOUT,
                                 service="gateway", kind="SERVER", trace_id=i))
    spans.append(span_record("d" * 16, None, 0, 9, CHECKOUT, service=LOADGEN_SERVICE,
                             kind="CLIENT", trace_id="f" * 32))
    # Cut short by the end of the test: served, but no full client measure.
    spans += [span_record("e" * 16, None, 0, 1, CHECKOUT, service=LOADGEN_SERVICE,
                          kind="CLIENT", trace_id="e" * 32, attributes={CANCELLED: True}),
              span_record("b" * 16, "e" * 16, 0, 50, CHECKOUT, service="gateway",
                          kind="SERVER", trace_id="e" * 32)]
    server = [s for s in spans if s.kind == "SERVER"]
    row = network_queueing(spans, server, LOADGEN_SERVICE, CANCELLED)[CHECKOUT]
    assert (row["count"], row["unmatched"]) == (10, 1)
    assert row["network_queueing_p50_ms"] == pytest.approx(9, abs=0.01)  # 5 + 4
    assert row["network_queueing_p95_ms"] == pytest.approx(14, abs=0.01)
    assert row["client_p50_ms"] == pytest.approx(33, abs=0.05)
    assert row["server_p50_ms"] == pytest.approx(24, abs=0.05)
    assert row["network_queueing_mean_ms"] == pytest.approx(9.5, abs=0.05)


def _capture(path: Path, spans: list[SpanRecord]) -> None:
    """Spans as one OTLP JSON line per service, as the processes write them."""
    lines = [json.dumps(otlp_document(service, [otlp_span(s) for s in spans
                                                if s.service == service]))
             for service in sorted({s.service for s in spans})]
    path.write_text("\n".join(lines) + "\n")


def test_merged_capture_has_no_orphans_and_keeps_the_server_side_figures(
    tmp_path: Path
) -> None:
    client = span_record("c" * 16, None, 0, 30, CHECKOUT, service=LOADGEN_SERVICE,
                         kind="CLIENT", trace_id="a" * 32)
    server = span_record("b" * 16, "c" * 16, 1, 28, CHECKOUT, service="gateway",
                         kind="SERVER", trace_id="a" * 32)
    inner = span_record("e" * 16, "b" * 16, 2, 27, "checkout.complete", service="checkout",
                        trace_id="a" * 32)
    trace_file = tmp_path / "load.jsonl"
    _capture(trace_file, [server, inner])
    before = analyze_server_spans(trace_file)
    assert before.trace_context["orphans"] == 1  # the gateway's span, parent nowhere
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    _capture(spans_dir / "loadgen-1.jsonl", [client])
    assert append_captures(spans_dir, trace_file) == 1
    after = analyze_server_spans(trace_file)
    assert after.trace_context == {"server_spans": 1, "remote_parent": 1, "no_parent": 0,
                                   "client_spans": 1, "orphans": 0}
    assert {op["service"] for op in after.spans} == {"gateway", "checkout"}  # server side
    assert after.network_queueing[CHECKOUT]["network_queueing_p50_ms"] == \
        pytest.approx(3, abs=0.01)
    assert append_captures(tmp_path / "missing", trace_file) == 0


def test_a_consumer_continuing_an_event_from_before_the_run_is_no_orphan_of_the_load(
    tmp_path: Path
) -> None:
    """CI: a shipment event the carrier wrote during the previous run was published and
    consumed in this one; its consumer spans' parent is in the previous capture. Only the
    load's own traces (those holding a gateway span) count their orphans."""
    client = span_record("c" * 16, None, 0, 30, CHECKOUT, service=LOADGEN_SERVICE,
                         kind="CLIENT", trace_id="a" * 32)
    server = span_record("b" * 16, "c" * 16, 1, 28, CHECKOUT, service="gateway",
                         kind="SERVER", trace_id="a" * 32)
    lost = span_record("e" * 16, "d" * 16, 2, 27, "checkout.complete", service="checkout",
                       trace_id="a" * 32)  # its parent, a span of this request, never arrived
    earlier = [span_record("1" * 16, "9" * 16, 5, 6, "process shipment-events",
                           service="analytics", kind="CONSUMER", trace_id="f" * 32),
               span_record("2" * 16, "1" * 16, 5, 6, "INSERT", service="analytics",
                           kind="CLIENT", trace_id="f" * 32)]
    trace_file = tmp_path / "load.jsonl"
    _capture(trace_file, [client, server, *earlier])
    assert analyze_server_spans(trace_file).trace_context["orphans"] == 0
    _capture(trace_file, [client, server, lost, *earlier])
    assert analyze_server_spans(trace_file).trace_context["orphans"] == 1


def test_loadgen_keeps_its_name_and_the_namespace_of_the_resource_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ecomctl.telemetry.loadgen import LoadgenTracing

    monkeypatch.setenv("OTEL_SERVICE_NAME", "nightly")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=shop%20a,team=sre")
    attributes = dict(LoadgenTracing([]).provider.resource.attributes)
    assert attributes["service.name"] == "loadgen"
    assert attributes["service.namespace"] == "shop a"  # percent-decoded, not overridden
    assert attributes["team"] == "sre"
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert LoadgenTracing([]).provider.resource.attributes["service.namespace"] == "ecomctl"
