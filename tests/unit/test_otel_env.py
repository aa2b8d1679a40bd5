"""The standard OpenTelemetry variables, one test each: read into ``Settings`` and honoured by
``Telemetry`` (resources, exporters built with exactly these options, no-op providers...).

The OTLP exporter classes are replaced by recorders of their constructor arguments (the
``built`` fixture, tests/unit/conftest.py): nothing is sent anywhere (the export itself is
tested in tests/integration/test_trace_sources.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.config import LOCAL_PORTS, Settings
from ecomctl.errors import ConfigError
from ecomctl.telemetry.routing import RoutingTracerProvider
from ecomctl.telemetry.setup import Telemetry
from tests.otel_recorders import Built


def _telemetry(env: dict[str, str], *, capture: InMemorySpanExporter | None = None,
               metrics: bool = False) -> Telemetry:
    if metrics:
        env = {"OTEL_METRICS_EXPORTER": "otlp", **env}
    # The OTLP span exporter in this process, where the recorders can see it (the export
    # process builds the same exporter from the same settings: test_span_export_*).
    env = {"ECOMCTL_SPAN_EXPORT": "thread", **env}
    processors = [SimpleSpanProcessor(capture)] if capture is not None else []
    return Telemetry(Settings.from_env(env), span_processors=processors)


@pytest.fixture
def telemetry_of() -> Iterator[Any]:
    """Build telemetry from an environment; every one is shut down after the test."""
    made: list[Telemetry] = []

    def build(env: dict[str, str], **kwargs: Any) -> Telemetry:
        telemetry = _telemetry(env, **kwargs)
        made.append(telemetry)
        return telemetry

    yield build
    for telemetry in made:
        telemetry.shutdown()


def _one(built: list[Built], signal: str) -> Built:
    (exporter,) = [b for b in built if b.signal == signal]
    return exporter


def _cert_files(tmp_path: Path) -> dict[str, str]:
    files = {}
    for name in ("ca.pem", "client.key", "client.pem"):
        (tmp_path / name).write_text(f"-----BEGIN {name}-----\n")
        files[name] = str(tmp_path / name)
    return files


# -- resource ----------------------------------------------------------------------------------


def test_otel_service_name_names_the_process_metrics_not_the_services_spans(
    telemetry_of: Any,
) -> None:
    capture = InMemorySpanExporter()
    telemetry = telemetry_of({"OTEL_SERVICE_NAME": "shop-eu",
                              "OTEL_RESOURCE_ATTRIBUTES": "service.namespace=shops"},
                             capture=capture)
    with telemetry.tracer("order").span("order.place"):
        pass
    telemetry.metrics.cache_lookup("product", "l1", True)

    (span,) = capture.get_finished_spans()
    assert span.resource.attributes["service.name"] == "order"  # the service's own name
    # Before: OTEL_SERVICE_NAME became the namespace, over the one given explicitly.
    assert span.resource.attributes["service.namespace"] == "shops"
    data = telemetry.metric_reader.get_metrics_data()
    assert data is not None
    assert data.resource_metrics[0].resource.attributes["service.name"] == "shop-eu"
    assert telemetry.resource.attributes["service.name"] == "shop-eu"


def test_otel_resource_attributes_are_percent_decoded_and_override_ecomctls_defaults(
    telemetry_of: Any,
) -> None:
    capture = InMemorySpanExporter()
    telemetry = telemetry_of({"OTEL_RESOURCE_ATTRIBUTES": (
        "deployment.environment.name=ci%20eu, team=a%2Cb%3Dc,service.version=9.9,"
        "service.name=from-attributes")}, capture=capture)
    with telemetry.tracer("payment").span("payment.charge"):
        pass
    (span,) = capture.get_finished_spans()
    attributes = span.resource.attributes
    assert attributes["deployment.environment.name"] == "ci eu"
    assert attributes["team"] == "a,b=c"
    assert attributes["service.version"] == "9.9"
    assert attributes["service.namespace"] == "ecomctl"  # ecomctl's default when not given
    assert attributes["service.name"] == "payment"
    assert attributes["telemetry.sdk.language"] == "python"
    # Without OTEL_SERVICE_NAME, a service.name among the attributes names the process.
    assert telemetry.resource.attributes["service.name"] == "from-attributes"
    with pytest.raises(ConfigError, match="OTEL_RESOURCE_ATTRIBUTES"):
        Settings.from_env({"OTEL_RESOURCE_ATTRIBUTES": "a=1,=2"})


def test_the_resource_comes_from_the_settings_not_os_environ(
    telemetry_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "leaked=yes,service.namespace=leaked")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "leaked")
    telemetry = telemetry_of({})
    attributes = telemetry.resource.attributes
    assert "leaked" not in attributes
    assert (attributes["service.namespace"], attributes["service.name"]) == ("ecomctl", "ecomctl")


# -- exporter selection, SDK switch ------------------------------------------------------------


def test_otel_traces_exporter(
    telemetry_of: Any, built: list[Built], capsys: pytest.CaptureFixture[str]
) -> None:
    telemetry_of({})
    assert [b.signal for b in built] == ["traces", "metrics"]  # otlp by default, both

    built.clear()
    capture = InMemorySpanExporter()
    telemetry = telemetry_of({"OTEL_TRACES_EXPORTER": "none"}, capture=capture)
    with telemetry.tracer("cart").span("cart.add"):
        pass
    assert [b.signal for b in built] == ["metrics"]
    assert [s.name for s in capture.get_finished_spans()] == ["cart.add"]  # capture still runs

    built.clear()
    telemetry = telemetry_of({"OTEL_TRACES_EXPORTER": "console,otlp"})
    with telemetry.tracer("cart").span("cart.console"):
        pass
    assert telemetry.force_flush()
    printed = capsys.readouterr().out
    assert '"name": "cart.console"' in printed and '"service.name": "cart"' in printed
    assert [b.signal for b in built] == ["traces", "metrics"]

    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER"):
        Settings.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_span_export_runs_in_its_own_process_unless_told_otherwise(built: list[Built]) -> None:
    from ecomctl.telemetry.export_process import ExportProcessSpanProcessor

    settings = Settings.from_env({"OTEL_TRACES_EXPORTER": "otlp,console",
                                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318",
                                  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"})
    telemetry = Telemetry(settings)
    try:
        shipped = [p for p in telemetry._processors
                   if isinstance(p, ExportProcessSpanProcessor)]
        assert len(shipped) == 1 and len(telemetry._processors) == 2  # + the console's
        assert shipped[0]._exporters == [settings.traces_otlp]
        assert shipped[0]._process is None  # started by the first batch, not before
        assert [b.signal for b in built] == ["metrics"]  # no OTLP span exporter here
    finally:
        telemetry.shutdown()
    thread = Telemetry(Settings.from_env({"ECOMCTL_SPAN_EXPORT": "thread"}))
    thread.shutdown()
    assert [b.signal for b in built] == ["metrics", "traces", "metrics"]
    with pytest.raises(ConfigError, match="ECOMCTL_SPAN_EXPORT"):
        Settings.from_env({"ECOMCTL_SPAN_EXPORT": "fork"})


def test_exemplars_are_off_unless_asked(telemetry_of: Any) -> None:
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, TraceBasedExemplarFilter

    assert isinstance(telemetry_of({}).meter_provider._sdk_config.exemplar_filter,
                      AlwaysOffExemplarFilter)
    asked = telemetry_of({"OTEL_METRICS_EXEMPLAR_FILTER": "trace_based"})
    assert isinstance(asked.meter_provider._sdk_config.exemplar_filter,
                      TraceBasedExemplarFilter)
    with pytest.raises(ConfigError, match="OTEL_METRICS_EXEMPLAR_FILTER"):
        Settings.from_env({"OTEL_METRICS_EXEMPLAR_FILTER": "sometimes"})


def test_metrics_go_to_the_collector_every_5s_unless_told_otherwise(
    telemetry_of: Any, built: list[Built]
) -> None:
    telemetry = telemetry_of({})
    assert [b.signal for b in built] == ["traces", "metrics"]
    (reader,) = telemetry.export_readers
    assert reader._export_interval_millis == 5_000
    built.clear()
    telemetry = telemetry_of({"OTEL_METRIC_EXPORT_INTERVAL": "60000"})
    (reader,) = telemetry.export_readers
    assert reader._export_interval_millis == 60_000
    built.clear()
    telemetry_of({"OTEL_METRICS_EXPORTER": "none"})  # the one switch: in-process only
    assert [b.signal for b in built] == ["traces"]
    with pytest.raises(ConfigError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "soon"})


def test_every_process_has_its_own_service_instance_id(telemetry_of: Any) -> None:
    mine = telemetry_of({}).resource.attributes["service.instance.id"]
    assert mine == f"{socket.gethostname()}-{os.getpid()}"
    chosen = telemetry_of({"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=api-1"})
    assert chosen.resource.attributes["service.instance.id"] == "api-1"


def test_otel_sdk_disabled(telemetry_of: Any, built: list[Built]) -> None:
    capture = InMemorySpanExporter()
    telemetry = telemetry_of({"OTEL_SDK_DISABLED": "TRUE"}, capture=capture, metrics=True)
    with telemetry.tracer("order").span("order.place") as span:
        assert not span.is_recording()
    telemetry.metrics.cache_lookup("product", "l1", True)
    assert isinstance(telemetry.provider("order"), trace.NoOpTracerProvider)
    assert capture.get_finished_spans() == ()
    assert built == []  # neither the span nor the metric exporter was even built
    data = telemetry.metric_reader.get_metrics_data()
    assert data is None or not data.resource_metrics

    assert not Settings.from_env({"OTEL_SDK_DISABLED": "false"}).sdk_disabled
    with pytest.raises(ConfigError, match="OTEL_SDK_DISABLED"):
        Settings.from_env({"OTEL_SDK_DISABLED": "1"})


# -- OTLP exporter options ---------------------------------------------------------------------


def test_otel_exporter_otlp_endpoint(telemetry_of: Any, built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, metrics=True)
    assert _one(built, "traces").options["endpoint"] == "http://collector:4317"
    assert _one(built, "metrics").options["endpoint"] == "http://collector:4317"

    built.clear()
    # OTLP/HTTP: a base URL, the signal's path appended (no double slash).
    telemetry_of({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318/otlp/",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, metrics=True)
    assert _one(built, "traces").options["endpoint"] == "https://collector:4318/otlp/v1/traces"
    assert _one(built, "metrics").options["endpoint"] == "https://collector:4318/otlp/v1/metrics"

    # Unset: the local stack's receiver for the protocol (gRPC 14317, HTTP 14318).
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert settings.traces_otlp.endpoint == (
        f"http://127.0.0.1:{LOCAL_PORTS.otlp_http}/v1/traces")
    assert settings.otlp_endpoint == f"http://127.0.0.1:{LOCAL_PORTS.otlp_http}"
    assert Settings.from_env({}).traces_otlp.endpoint == (
        f"http://127.0.0.1:{LOCAL_PORTS.otlp_grpc}")


def test_otel_exporter_otlp_traces_endpoint(telemetry_of: Any, built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://common:4318",
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom/path",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, metrics=True)
    # The signal's own endpoint wins and is used as given; the other signal keeps the common.
    assert _one(built, "traces").options["endpoint"] == "http://traces:9999/custom/path"
    assert _one(built, "metrics").options["endpoint"] == "http://common:4318/v1/metrics"


def test_otel_exporter_otlp_metrics_endpoint(telemetry_of: Any, built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:4317"}, metrics=True)
    assert _one(built, "metrics").options["endpoint"] == "http://metrics:4317"
    assert _one(built, "traces").options["endpoint"] == f"http://127.0.0.1:{LOCAL_PORTS.otlp_grpc}"


def test_otel_exporter_otlp_protocol(telemetry_of: Any, built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, metrics=True)
    assert {(b.signal, b.transport) for b in built} == {("traces", "http"), ("metrics", "http")}
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_otel_exporter_otlp_traces_protocol(telemetry_of: Any, built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, metrics=True)
    assert {(b.signal, b.transport) for b in built} == {("traces", "http"), ("metrics", "grpc")}
    assert _one(built, "traces").options["endpoint"] == (
        f"http://127.0.0.1:{LOCAL_PORTS.otlp_http}/v1/traces")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"})


def test_otel_exporter_otlp_metrics_protocol(telemetry_of: Any, built: list[Built]) -> None:
    # Before: the metric exporter was gRPC whatever the protocol.
    telemetry_of({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
                  "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, metrics=True)
    assert {(b.signal, b.transport) for b in built} == {("traces", "grpc"), ("metrics", "http")}
    assert _one(built, "metrics").options["endpoint"] == "http://collector:4318/v1/metrics"


def test_otel_exporter_otlp_headers(telemetry_of: Any, built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc, X-Tenant=t1",
                  "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-traces=a%2Cb"}, metrics=True)
    assert _one(built, "traces").options["headers"] == {"x-traces": "a,b"}
    assert _one(built, "metrics").options["headers"] == {
        "authorization": "Bearer abc", "x-tenant": "t1"}  # gRPC metadata keys: lower case


def test_otel_exporter_otlp_timeout_in_milliseconds(telemetry_of: Any,
                                                    built: list[Built]) -> None:
    telemetry_of({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
                  "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "750"}, metrics=True)
    assert _one(built, "traces").options["timeout"] == 0.75
    assert _one(built, "metrics").options["timeout"] == 2.5
    assert Settings.from_env({}).traces_otlp.timeout_s == 5.0  # ecomctl's default
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}).traces_otlp.timeout_s > 1e6
    for bad in ("-1", "2.5s"):
        with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_TIMEOUT"):
            Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": bad})


def test_otel_exporter_otlp_insecure(telemetry_of: Any, built: list[Built]) -> None:
    # A host:port endpoint: TLS unless INSECURE=true.
    telemetry_of({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
                  "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}, metrics=True)
    traces, metrics = _one(built, "traces").options, _one(built, "metrics").options
    assert (traces["endpoint"], traces["insecure"], traces["credentials"]) == (
        "collector:4317", True, None)
    assert metrics["insecure"] is False and metrics["credentials"] is not None
    # A scheme decides by itself.
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317",
                                  "OTEL_EXPORTER_OTLP_INSECURE": "true"})
    assert settings.traces_otlp.insecure is False
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                                  "OTEL_EXPORTER_OTLP_INSECURE": "false"})
    assert settings.traces_otlp.insecure is True
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_INSECURE"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_INSECURE": "yes"})


def test_otel_exporter_otlp_compression(telemetry_of: Any, built: list[Built]) -> None:
    import grpc
    from opentelemetry.exporter.otlp.proto.http import Compression

    telemetry_of({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                  "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"}, metrics=True)
    assert _one(built, "traces").options["compression"] == grpc.Compression.Gzip
    assert _one(built, "metrics").options["compression"] == Compression.Gzip
    assert Settings.from_env({}).traces_otlp.compression is None
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_COMPRESSION"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"})


def test_otel_exporter_otlp_certificate_and_client_key_and_certificate(
    telemetry_of: Any, built: list[Built], tmp_path: Path
) -> None:
    files = _cert_files(tmp_path)
    telemetry_of({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                  "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318",
                  "OTEL_EXPORTER_OTLP_CERTIFICATE": files["ca.pem"],
                  "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": files["client.key"],
                  "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": files["client.pem"]},
                 metrics=True)
    traces, metrics = _one(built, "traces").options, _one(built, "metrics").options
    assert traces["certificate_file"] == metrics["certificate_file"] == files["ca.pem"]
    assert (traces["client_key_file"], traces["client_certificate_file"]) == (
        files["client.key"], files["client.pem"])
    assert (metrics["client_key_file"], metrics["client_certificate_file"]) == (None, None)
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": str(tmp_path / "none")})


def test_grpc_tls_credentials_are_built_from_the_certificate_files(
    telemetry_of: Any, built: list[Built], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grpc

    seen: list[dict[str, Any]] = []

    def ssl_channel_credentials(**kwargs: Any) -> str:
        seen.append(kwargs)
        return "credentials"

    monkeypatch.setattr(grpc, "ssl_channel_credentials", ssl_channel_credentials)
    files = _cert_files(tmp_path)
    telemetry_of({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector:4317",
                  "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": files["ca.pem"],
                  "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": files["client.key"],
                  "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": files["client.pem"]})
    assert _one(built, "traces").options["credentials"] == "credentials"
    assert seen == [{"root_certificates": b"-----BEGIN ca.pem-----\n",
                     "private_key": b"-----BEGIN client.key-----\n",
                     "certificate_chain": b"-----BEGIN client.pem-----\n"}]


# -- the router (it no longer imports the API's private context-manager helper) ---------------


def test_routed_start_as_current_span_as_context_manager_and_decorator() -> None:
    capture = InMemorySpanExporter()
    telemetry = _telemetry({"OTEL_TRACES_EXPORTER": "none"}, capture=capture)
    router = RoutingTracerProvider()
    router.attach(telemetry.provider)
    tracer = router.get_tracer("tests")
    try:
        with tracer.start_as_current_span("outer") as outer, \
                tracer.start_as_current_span("inner"):
            pass

        @tracer.start_as_current_span("sync-call")
        def sync_call() -> int:
            return 1

        @tracer.start_as_current_span("async-call")
        async def async_call() -> int:
            await asyncio.sleep(0.01)
            return 2

        assert sync_call() + sync_call() + asyncio.run(async_call()) == 4
        with pytest.raises(ValueError), tracer.start_as_current_span("failing"):
            raise ValueError("boom")
    finally:
        telemetry.shutdown()
    spans = {s.name: s for s in capture.get_finished_spans()}
    names = [s.name for s in capture.get_finished_spans()]
    assert names.count("sync-call") == 2  # a new span per call
    assert spans["inner"].parent is not None
    assert spans["inner"].parent.span_id == outer.get_span_context().span_id
    async_span = spans["async-call"]
    assert async_span.end_time is not None and async_span.start_time is not None
    assert async_span.end_time - async_span.start_time >= 10_000_000  # the whole coroutine
    assert spans["failing"].status.status_code.name == "ERROR"
    assert spans["inner"].resource.attributes["service.name"] == "gateway"  # current service


# -- OTEL_METRICS_EXPORTER ---------------------------------------------------------------------


def test_otel_metrics_exporter(
    telemetry_of: Any, built: list[Built], capsys: pytest.CaptureFixture[str]
) -> None:
    assert Settings.from_env({}).metrics_exporters == ("otlp",)  # the specification's default
    telemetry_of({})
    assert [b.signal for b in built] == ["traces", "metrics"]

    built.clear()
    telemetry = Telemetry(Settings.from_env({"OTEL_METRICS_EXPORTER": "console",
                                             "OTEL_TRACES_EXPORTER": "none"}))
    telemetry.metrics.checkouts.add(1, {"ecom.outcome": "paid"})
    telemetry.shutdown()  # the periodic reader exports what it has at shutdown
    printed = capsys.readouterr().out
    assert '"name": "ecom.checkouts"' in printed and '"ecom.outcome": "paid"' in printed
    assert built == []  # no OTLP exporter at all

    both = telemetry_of({"OTEL_METRICS_EXPORTER": "otlp, console"})
    assert len(both.export_readers) == 2 and [b.signal for b in built] == ["traces", "metrics"]
    built.clear()
    assert telemetry_of({"OTEL_METRICS_EXPORTER": "none"}).export_readers == []
    assert [b.signal for b in built] == ["traces"]
    for bad in ("prometheus", "otlp,zipkin"):
        with pytest.raises(ConfigError, match="OTEL_METRICS_EXPORTER"):
            Settings.from_env({"OTEL_METRICS_EXPORTER": bad})


# -- OTEL_BSP_* --------------------------------------------------------------------------------


def _sdk_batch(telemetry: Telemetry) -> Any:
    """The SDK batch processor's inner state of the one processor ``telemetry`` exports with."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    (processor,) = telemetry._processors
    assert isinstance(processor, BatchSpanProcessor)
    return processor._batch_processor


@pytest.mark.parametrize(("name", "value", "field", "attribute"), [
    ("OTEL_BSP_SCHEDULE_DELAY", "2000", "schedule_delay_ms", "_schedule_delay_millis"),
    ("OTEL_BSP_EXPORT_TIMEOUT", "7000", "export_timeout_ms", "_export_timeout_millis"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "4096", "max_queue_size", "_max_queue_size"),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64", "max_export_batch_size",
     "_max_export_batch_size"),
])
def test_otel_bsp_variables_size_the_batches_of_both_export_modes(
    telemetry_of: Any, built: list[Built], name: str, value: str, field: str, attribute: str
) -> None:
    from ecomctl.telemetry.export_process import ExportProcessSpanProcessor

    settings = Settings.from_env({name: value})
    assert getattr(settings.batch, field) == int(value)
    # ECOMCTL_SPAN_EXPORT=thread: the SDK's BatchSpanProcessor.
    assert getattr(_sdk_batch(telemetry_of({name: value})), attribute) == int(value)
    # process (the default): the export process's queue, and its config frame.
    telemetry = Telemetry(settings)
    try:
        (shipper,) = telemetry._processors
        assert isinstance(shipper, ExportProcessSpanProcessor)
        assert (shipper._max_queue, shipper._max_batch, shipper._delay_s) == (
            settings.batch.max_queue_size, settings.batch.max_export_batch_size,
            settings.batch.schedule_delay_ms / 1000)
        assert shipper._batch == settings.batch
    finally:
        telemetry.shutdown()
    for bad in ("-1", "1.5", "soon", "0" if name != "OTEL_BSP_EXPORT_TIMEOUT" else "-5"):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: bad})


def test_otel_bsp_defaults_and_the_batch_never_exceeds_the_queue() -> None:
    batch = Settings.from_env({}).batch
    assert (batch.schedule_delay_ms, batch.export_timeout_ms, batch.max_queue_size,
            batch.max_export_batch_size) == (500, 30_000, 65_536, 1_024)
    # A queue smaller than the default batch: the batch follows it down...
    small = Settings.from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "256"}).batch
    assert (small.max_queue_size, small.max_export_batch_size) == (256, 256)
    # ...but a batch asked for that does not fit is an error.
    with pytest.raises(ConfigError, match=r"OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512.*256"):
        Settings.from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "256",
                           "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512"})
    assert Settings.from_env({"OTEL_BSP_EXPORT_TIMEOUT": "0"}).batch.export_timeout_s is None


def test_otel_bsp_export_timeout_bounds_the_exporters_deadline_in_both_modes(
    telemetry_of: Any, built: list[Built]
) -> None:
    import io
    import struct

    from ecomctl.telemetry.export_process import CONFIG, ExportProcessSpanProcessor, serve

    # thread: the exporter built here; the shorter of the OTLP and the export timeouts.
    telemetry_of({"OTEL_BSP_EXPORT_TIMEOUT": "1200"})
    assert _one(built, "traces").options["timeout"] == 1.2
    built.clear()
    telemetry_of({"OTEL_BSP_EXPORT_TIMEOUT": "60000", "OTEL_EXPORTER_OTLP_TIMEOUT": "2000"})
    assert _one(built, "traces").options["timeout"] == 2.0
    built.clear()
    # process: the export process builds its exporters from the config frame it is sent.
    settings = Settings.from_env({"OTEL_BSP_EXPORT_TIMEOUT": "900"})
    shipper = ExportProcessSpanProcessor([settings.traces_otlp], batch=settings.batch)
    config = shipper.config()
    serve(io.BytesIO(struct.pack(">cI", CONFIG, len(config)) + config), io.BytesIO())
    assert _one(built, "traces").options["timeout"] == 0.9
    shipper.shutdown()


# -- OTEL_PROPAGATORS --------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fields"), [
    ("", {"traceparent", "tracestate", "baggage"}),  # the specification's default
    ("tracecontext", {"traceparent", "tracestate"}),
    ("Baggage, tracecontext", {"traceparent", "tracestate", "baggage"}),
    ("none", set()),
])
def test_otel_propagators_are_the_global_propagators_once_activated(
    value: str, fields: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import propagate

    from ecomctl.telemetry import setup

    # Not the instrumentations (process-wide, and tested end to end): only the propagators.
    monkeypatch.setattr(setup, "install_instrumentations", lambda settings: None)
    before = propagate.get_global_textmap()
    telemetry = _telemetry({"OTEL_PROPAGATORS": value, "OTEL_TRACES_EXPORTER": "none"})
    try:
        telemetry.activate()
        assert set(propagate.get_global_textmap().fields) == fields
        carrier: dict[str, str] = {}
        with telemetry.tracer("order").span("order.place"):
            propagate.inject(carrier)
        assert set(carrier) == fields - {"tracestate", "baggage"}  # nothing to say in those
    finally:
        telemetry.shutdown()
        propagate.set_global_textmap(before)


@pytest.mark.parametrize(("value", "message"), [
    ("b3", "'b3': it needs opentelemetry-propagator-b3, which is not installed"),
    ("tracecontext,jaeger", "'jaeger': it needs opentelemetry-propagator-jaeger"),
    ("w3c", "'w3c': unknown .installed: baggage, tracecontext; or none"),
    ("none,tracecontext", "none turns propagation off"),
])
def test_otel_propagators_only_names_installed_ones(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"OTEL_PROPAGATORS={value!r}: .*{message}"):
        Settings.from_env({"OTEL_PROPAGATORS": value})


def test_dead_letters_carry_the_configured_propagators_trace_headers() -> None:
    from opentelemetry import propagate

    from ecomctl.adapters.kafka.dlq import trace_headers
    from ecomctl.telemetry.propagation import propagator_from

    before = propagate.get_global_textmap()
    try:
        assert trace_headers() == {"traceparent", "tracestate"}  # baggage is not trace context
        propagate.set_global_textmap(propagator_from(Settings.from_env(
            {"OTEL_PROPAGATORS": "none"})))
        assert trace_headers() == frozenset()
    finally:
        propagate.set_global_textmap(before)


# -- OTEL_SEMCONV_STABILITY_OPT_IN -------------------------------------------------------------


def test_otel_semconv_stability_opt_in_defaults_to_the_current_conventions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ecomctl.telemetry.semconv import OPT_IN_ENV, apply_opt_in

    assert Settings.from_env({}).semconv_opt_in == ("database", "http", "messaging")
    mine = Settings.from_env({OPT_IN_ENV: " http/dup,database/dup "})
    assert mine.semconv_opt_in == ("http/dup", "database/dup")  # the user's, as given
    monkeypatch.setenv(OPT_IN_ENV, "stale")
    apply_opt_in(Settings.from_env({}))
    assert os.environ[OPT_IN_ENV] == "database,http,messaging"
    apply_opt_in(mine)
    assert os.environ[OPT_IN_ENV] == "http/dup,database/dup"


def _kafka_span(value: str) -> dict[str, Any]:
    """The attributes of an aiokafka-scope span and of an ecomctl span, as exported under
    ``OTEL_SEMCONV_STABILITY_OPT_IN=value``."""
    from ecomctl.telemetry.semconv import KAFKA_SCOPE

    capture = InMemorySpanExporter()
    telemetry = _telemetry({"OTEL_SEMCONV_STABILITY_OPT_IN": value,
                            "OTEL_TRACES_EXPORTER": "none"}, capture=capture)
    try:
        kafka = telemetry.provider("shipment").get_tracer(KAFKA_SCOPE, "0.66b1")
        with kafka.start_as_current_span("order-events receive") as span:
            span.set_attributes({"messaging.kafka.message.offset": 41,
                                 "messaging.destination.name": "order-events"})
        with telemetry.tracer("shipment").span("shipment.create", {"ecom.n": 1}):
            pass
    finally:
        telemetry.shutdown()
    spans = {s.name: s for s in capture.get_finished_spans()}
    assert dict(spans["shipment.create"].attributes or {}) == {"ecom.n": 1}  # untouched
    received = spans["order-events receive"]
    assert received.instrumentation_scope is not None
    assert received.instrumentation_scope.name == KAFKA_SCOPE
    return dict(received.attributes or {})


def test_kafka_spans_get_the_current_offset_attribute() -> None:
    assert _kafka_span("") == {"messaging.kafka.offset": 41,  # ecomctl's default: messaging
                               "messaging.destination.name": "order-events"}
    assert _kafka_span("messaging/dup,http") == {
        "messaging.kafka.message.offset": 41, "messaging.kafka.offset": 41,
        "messaging.destination.name": "order-events"}
    assert _kafka_span("database,http") == {  # no messaging: as the instrumentation wrote it
        "messaging.kafka.message.offset": 41, "messaging.destination.name": "order-events"}


def test_every_rename_is_the_semantic_conventions_own() -> None:
    from ecomctl.telemetry.semconv import RENAMES
    from tests.semconv_names import deprecated_attributes

    deprecated = deprecated_attributes()
    assert "db.statement" in deprecated and "db.query.text" not in deprecated  # sanity
    for renames in RENAMES.values():
        for old, new in renames.items():
            assert deprecated[old] == f"Replaced by `{new}`."
            assert new not in deprecated
