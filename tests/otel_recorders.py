"""OTLP exporters replaced by recorders of their constructor arguments, so a test sees exactly
what ecomctl built from the settings while nothing is sent anywhere (``record_exporters``;
the ``built`` fixture of tests/unit/conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


@dataclass
class Built:
    signal: str  # traces, metrics
    transport: str  # grpc, http
    options: dict[str, Any]


class _RecordingSpanExporter(SpanExporter):
    built: list[Built]
    transport: str

    def __init__(self, **options: Any) -> None:
        self.built.append(Built("traces", self.transport, options))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _RecordingMetricExporter(MetricExporter):
    built: list[Built]
    transport: str

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.built.append(Built("metrics", self.transport, options))

    def export(self, metrics_data: Any, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def record_exporters(monkeypatch: pytest.MonkeyPatch) -> list[Built]:
    """From now on (until ``monkeypatch`` undoes it), every OTLP exporter built is recorded
    in the returned list instead."""
    from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as grpc_metrics
    from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_traces
    from opentelemetry.exporter.otlp.proto.http import metric_exporter as http_metrics
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_traces

    records: list[Built] = []
    base: type  # a span or a metric recorder
    for module, base, transport in (
        (grpc_traces, _RecordingSpanExporter, "grpc"),
        (http_traces, _RecordingSpanExporter, "http"),
    ):
        monkeypatch.setattr(module, "OTLPSpanExporter",
                            type("Recorder", (base,), {"built": records, "transport": transport}))
    for module, base, transport in (
        (grpc_metrics, _RecordingMetricExporter, "grpc"),
        (http_metrics, _RecordingMetricExporter, "http"),
    ):
        monkeypatch.setattr(module, "OTLPMetricExporter",
                            type("Recorder", (base,), {"built": records, "transport": transport}))
    return records
