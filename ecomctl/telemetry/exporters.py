"""The exporters and batching ``Settings`` describe, for every process that exports: the
shop's (``setup.py``), its export process (``export_process.py``) and Locust's
(``loadgen.py``). No FastAPI, no instrumentation: a Locust process imports this too.

Every option is passed explicitly: left out, the SDK's exporters and processors would read
``os.environ`` themselves (and take the OTLP timeout in seconds, where the specification
says milliseconds), so ``Settings`` would not mean what it says.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from ecomctl.config import BatchSpanSettings, OtlpExporterSettings, Settings
from ecomctl.errors import ConfigError


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _timeout_s(otlp: OtlpExporterSettings, batch: BatchSpanSettings | None) -> float:
    """The OTLP timeout, or the batch's export timeout when that is shorter: the exporter's
    deadline covers its retries, so it bounds the whole export of a batch."""
    limit = batch.export_timeout_s if batch is not None else None
    return otlp.timeout_s if limit is None else min(otlp.timeout_s, limit)


def _grpc_options(otlp: OtlpExporterSettings, timeout_s: float) -> dict[str, Any]:
    import grpc  # (no stubs, see pyproject's [tool.mypy]; the exporters take its types)

    credentials = None
    if not otlp.insecure:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(otlp.certificate),
            private_key=_read(otlp.client_key),
            certificate_chain=_read(otlp.client_certificate),
        )
    return {
        "endpoint": otlp.endpoint, "insecure": otlp.insecure, "credentials": credentials,
        "headers": dict(otlp.headers), "timeout": timeout_s,
        "compression": grpc.Compression.Gzip if otlp.compression == "gzip"
        else grpc.Compression.NoCompression,
    }


def _http_options(otlp: OtlpExporterSettings, timeout_s: float) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "endpoint": otlp.endpoint, "certificate_file": otlp.certificate,
        "client_key_file": otlp.client_key, "client_certificate_file": otlp.client_certificate,
        "headers": dict(otlp.headers), "timeout": timeout_s,
        "compression": Compression.Gzip if otlp.compression == "gzip"
        else Compression.NoCompression,
    }


def otlp_span_exporter(
    otlp: OtlpExporterSettings, batch: BatchSpanSettings | None = None
) -> SpanExporter:
    """The OTLP span exporter ``OTEL_EXPORTER_OTLP_[TRACES_]*`` describe; with ``batch``,
    its deadline is at most ``OTEL_BSP_EXPORT_TIMEOUT``."""
    timeout_s = _timeout_s(otlp, batch)
    if otlp.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**_grpc_options(otlp, timeout_s))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(**_http_options(otlp, timeout_s))


def otlp_metric_exporter(otlp: OtlpExporterSettings) -> MetricExporter:
    """The OTLP metric exporter ``OTEL_EXPORTER_OTLP_[METRICS_]*`` describe."""
    if otlp.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**_grpc_options(otlp, otlp.timeout_s))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter(**_http_options(otlp, otlp.timeout_s))


def batch_processor(exporter: SpanExporter, batch: BatchSpanSettings) -> SpanProcessor:
    """The SDK's batching processor, sized by ``OTEL_BSP_*``."""
    return BatchSpanProcessor(
        exporter, max_queue_size=batch.max_queue_size,
        max_export_batch_size=batch.max_export_batch_size,
        schedule_delay_millis=batch.schedule_delay_ms,
        export_timeout_millis=batch.export_timeout_ms,
    )


def span_exporters(
    settings: Settings, names: Sequence[str] | None = None
) -> list[SpanExporter]:
    """One exporter per name in ``OTEL_TRACES_EXPORTER`` (none for ``none``), or in
    ``names``."""
    exporters: list[SpanExporter] = []
    for name in settings.traces_exporters if names is None else names:
        if name == "otlp":
            exporters.append(otlp_span_exporter(settings.traces_otlp, settings.batch))
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            # Standard output, as specified: the one at call time (the SDK's default
            # argument is the one at its import).
            exporters.append(ConsoleSpanExporter(out=sys.stdout))
    return exporters


def metric_readers(settings: Settings) -> list[MetricReader]:
    """One periodic reader per name in ``OTEL_METRICS_EXPORTER``, every
    ``OTEL_METRIC_EXPORT_INTERVAL``."""
    readers: list[MetricReader] = []
    for name in settings.metrics_exporters:
        exporter: MetricExporter
        if name == "otlp":
            exporter = otlp_metric_exporter(settings.metrics_otlp)
        else:  # console
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            exporter = ConsoleMetricExporter(out=sys.stdout)
        readers.append(PeriodicExportingMetricReader(
            exporter, export_interval_millis=settings.metric_export_interval_ms))
    return readers
