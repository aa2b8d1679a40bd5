"""The collector's trace store (Jaeger on Badger): bounded in memory, durable on disk.

The stack's own collector keeps a trace across `stack down && stack up`; a collector of the
same build and configuration, on a fresh store of its own, stays under 300 MB of RSS after
100,000 traces."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from ecomctl.config import LOCAL_HOST, LOCAL_PORTS, Settings
from ecomctl.load.runner import free_port
from ecomctl.stack.backends.jaeger import MEMORY_LIMIT, jaeger_config
from ecomctl.stack.manager import LocalStack

pytestmark = pytest.mark.long  # the stack restarted; 100,000 traces (`pytest -m long`)

TRACES = 100_000
RSS_LIMIT = 300 * 1024 * 1024


def _found(query_url: str, trace_id: str, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{query_url}/api/traces/{trace_id}", timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass  # not up yet
        time.sleep(0.5)
    return False


def _one_trace(endpoint: str, service: str) -> str:
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint,
                                                                     insecure=True)))
    with provider.get_tracer("tests").start_as_current_span("kept across a restart") as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()
    return trace_id


def test_a_trace_survives_stack_down_and_up(ecomctl: Any) -> None:
    query = Settings.from_env().trace_query_url
    trace_id = _one_trace(f"http://{LOCAL_HOST}:{LOCAL_PORTS.otlp_grpc}",
                          f"restart-{secrets.token_hex(4)}")
    assert _found(query, trace_id)
    down = ecomctl("stack", "down", "jaeger")
    assert down.exit_code == 0, down.stderr
    up = ecomctl("stack", "up", "jaeger")
    assert up.exit_code == 0, up.stdout[-2000:] + up.stderr[-2000:]
    assert _found(query, trace_id, timeout_s=10)


class _InBatches(SpanProcessor):
    """Exports every 1,500 ended spans at once, in the caller's thread: none dropped."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self._batch: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self._batch.append(span)
        if len(self._batch) >= 1_500:
            self.force_flush()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        batch, self._batch = self._batch, []
        return not batch or self._exporter.export(batch) is SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.force_flush()
        self._exporter.shutdown()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_the_collector_stays_under_300mb_after_100k_traces(
    tmp_path: Path, record_property: Any
) -> None:
    ports = {name: free_port() for name in ("health", "query", "query_grpc", "otlp_grpc",
                                             "otlp_http", "span_metrics")}
    config = tmp_path / "config.yaml"
    config.write_text(jaeger_config(
        host=LOCAL_HOST, data=str(tmp_path / "data"), ports=ports,
        kafka=f"{LOCAL_HOST}:{LOCAL_PORTS.kafka}", zipkin_topic="ecomctl-test-trace-store",
    ))
    binary = LocalStack().backends["jaeger"].binary  # type: ignore[attr-defined]
    query = f"http://{LOCAL_HOST}:{ports['query']}"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(binary), f"--config={config}"],
                                env={**os.environ, "GOMEMLIMIT": MEMORY_LIMIT},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    collector = start()
    try:
        provider = TracerProvider(resource=Resource({"service.name": "store-load"}))
        provider.add_span_processor(_InBatches(
            OTLPSpanExporter(endpoint=f"http://{LOCAL_HOST}:{ports['otlp_grpc']}",
                             insecure=True, timeout=30)))
        tracer = provider.get_tracer("tests")
        started = time.monotonic()
        first = last = ""
        for i in range(TRACES):  # a root with two children, like a small request
            with tracer.start_as_current_span("request") as root:
                with tracer.start_as_current_span("query"):
                    pass
                with tracer.start_as_current_span("cache"):
                    pass
            if i == 0:
                first = f"{root.get_span_context().trace_id:032x}"
        last = f"{root.get_span_context().trace_id:032x}"
        assert provider.force_flush()
        provider.shutdown()
        assert _found(query, last, timeout_s=120), "the last trace was never stored"
        sent_s = time.monotonic() - started
        time.sleep(5)  # let the collector settle after the burst
        rss = _rss(collector.pid)
        record_property("rss_mb", round(rss / 2**20))
        record_property("sent_s", round(sent_s, 1))
        assert rss < RSS_LIMIT, f"{rss / 2**20:.0f} MB after {TRACES:,} traces"

        collector.terminate()
        collector.wait(30)
        collector = start()
        assert _found(query, first), "the first trace was lost across a restart"
    finally:
        collector.kill()
        collector.wait(10)
