"""Building the tracer and meter providers of one in-process stack.

One ``TracerProvider`` per service (its own ``service.name``), all sharing the batching span
processors of the configured exporters (``OTEL_TRACES_EXPORTER``) plus any extra processors
(in-process capture). The process-wide ``ROUTER`` is the global tracer provider and the one
the instrumentations use; ``activate`` points it at this stack's providers.

Everything comes from ``Settings`` (read once, from the environment or a given mapping);
nothing here reads ``os.environ`` again, so a ``Settings`` means what it says. (It writes one
variable there: ``OTEL_SEMCONV_STABILITY_OPT_IN``, which the instrumentations read nowhere
else; ``semconv.py``.)
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import MutableMapping, Sequence
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.semconv.attributes.service_attributes import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_NAMESPACE,
    SERVICE_VERSION,
)
from opentelemetry.semconv.attributes.telemetry_attributes import (
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
)

from ecomctl import __version__
from ecomctl.config import Settings
from ecomctl.telemetry.exporters import batch_processor, metric_readers, span_exporters
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.propagation import propagator_from
from ecomctl.telemetry.routing import ROUTER
from ecomctl.telemetry.sampling import sampler_from
from ecomctl.telemetry.semconv import CurrentNames, apply_opt_in, renaming
from ecomctl.telemetry.spans import ServiceTracer

_install_lock = threading.Lock()
_installed = False


DEFAULT_NAMESPACE = "ecomctl"
_EXEMPLAR_FILTERS: dict[str, type[ExemplarFilter]] = {
    "always_off": AlwaysOffExemplarFilter, "always_on": AlwaysOnExemplarFilter,
    "trace_based": TraceBasedExemplarFilter,
}


def base_resource(settings: Settings) -> Resource:
    """The process's resource: the SDK's ``telemetry.sdk.*``, ecomctl's defaults
    (``service.namespace=ecomctl``, ``service.version``, and ``service.instance.id``
    ``<host>-<pid>``, so the series of two processes never collide), then
    ``OTEL_RESOURCE_ATTRIBUTES`` (which may override them), and ``service.name`` from
    ``OTEL_SERVICE_NAME`` (the metrics'; each service's tracer provider puts its own name in
    its place)."""
    return Resource({
        TELEMETRY_SDK_LANGUAGE: "python",
        TELEMETRY_SDK_NAME: "opentelemetry",
        TELEMETRY_SDK_VERSION: sdk_version,
        SERVICE_NAMESPACE: DEFAULT_NAMESPACE,
        SERVICE_VERSION: __version__,
        SERVICE_INSTANCE_ID: f"{socket.gethostname()}-{os.getpid()}",
        **settings.resource_attributes,
        SERVICE_NAME: settings.service_name,
    })


def service_resource(base: Resource, service: str) -> Resource:
    """``base`` with ``service.name`` = one ecomctl service (gateway, order, payment...)."""
    return base.merge(Resource({SERVICE_NAME: service}))


def _export_processors(settings: Settings) -> list[SpanProcessor]:
    """The processors ``OTEL_TRACES_EXPORTER`` asks for, batched as ``OTEL_BSP_*`` says: OTLP
    in the export process unless ``ECOMCTL_SPAN_EXPORT=thread``; the console in this process
    (its standard output)."""
    batch = settings.batch
    if settings.span_export == "process" and "otlp" in settings.traces_exporters:
        from ecomctl.telemetry.export_process import ExportProcessSpanProcessor

        here = [name for name in settings.traces_exporters if name != "otlp"]
        return [ExportProcessSpanProcessor([settings.traces_otlp], batch=batch),
                *(batch_processor(e, batch) for e in span_exporters(settings, here))]
    return [batch_processor(e, batch) for e in span_exporters(settings)]


class Telemetry:
    """The tracer providers (one per service) and the meter provider of one stack."""

    def __init__(
        self,
        settings: Settings,
        *,
        export: bool = True,
        exporter: SpanExporter | None = None,
        span_processors: Sequence[SpanProcessor] = (),
    ) -> None:
        self._settings = settings
        self._resource = base_resource(settings)
        self._sampler = sampler_from(settings)
        # OTEL_SDK_DISABLED: no-op providers for every signal, so no exporter is even built.
        self._disabled = settings.sdk_disabled
        self._processors: list[SpanProcessor] = []
        if not self._disabled:
            self._processors.extend(
                _export_processors(settings) if exporter is None and export
                else [batch_processor(exporter, settings.batch)] if exporter is not None
                else []
            )
            self._processors.extend(span_processors)
        # What each service's provider is given: the processors themselves, or behind the
        # renaming of the aiokafka spans' deprecated attributes (semconv.py).
        mode = renaming(settings)
        self._front: list[SpanProcessor] = (
            list(self._processors) if mode is None
            else [CurrentNames(self._processors, keep_old=mode == "both")])
        self._providers: dict[str, trace.TracerProvider] = {}
        self._lock = threading.Lock()
        self.metric_reader = InMemoryMetricReader()
        """The run's own metrics, read for its report."""
        self.export_readers: list[MetricReader] = (
            [] if self._disabled else metric_readers(settings))
        """The periodic exports ``OTEL_METRICS_EXPORTER`` asks for (OTLP, console)."""
        readers: list[MetricReader] = [self.metric_reader, *self.export_readers]
        self.meter_provider = MeterProvider(resource=self._resource, metric_readers=readers,
                                            exemplar_filter=_EXEMPLAR_FILTERS[
                                                settings.exemplar_filter]())
        self._meters: metrics.MeterProvider = (
            metrics.NoOpMeterProvider() if self._disabled else self.meter_provider
        )
        self.metrics = ShopMetrics(self._meters.get_meter("ecomctl", __version__))

    @property
    def resource(self) -> Resource:
        """The process's resource (the metrics'; spans carry ``service_resource`` of it)."""
        return self._resource

    def provider(self, service: str) -> trace.TracerProvider:
        provider = self._providers.get(service)
        if provider is None:
            with self._lock:
                provider = self._providers.get(service)
                if provider is None:
                    provider = self._providers[service] = self._new_provider(service)
        return provider

    def _new_provider(self, service: str) -> trace.TracerProvider:
        if self._disabled:
            return trace.NoOpTracerProvider()
        provider = TracerProvider(
            sampler=self._sampler,
            resource=service_resource(self._resource, service),
            shutdown_on_exit=False,
        )
        for processor in self._front:
            provider.add_span_processor(processor)
        return provider

    def tracer(self, service: str) -> ServiceTracer:
        return ServiceTracer(service, self.provider(service).get_tracer("ecomctl", __version__))

    def activate(self) -> None:
        """Route the global provider and the client instrumentations to this stack, and
        propagate context with its ``OTEL_PROPAGATORS``."""
        install_instrumentations(self._settings)
        propagate.set_global_textmap(propagator_from(self._settings))
        ROUTER.attach(self.provider)

    def gateway_telemetry(self) -> TelemetryConfig:
        """FastAPI's own request telemetry, as the gateway's one tracing middleware: a server
        span per request (context in through the global propagators, ``OTEL_PROPAGATORS``;
        ``service.name=gateway``, current HTTP semantic conventions, named and given
        ``http.route`` when the route is chosen, so no route scan). Health probes are left
        out; no operation sub-spans, logs or request metrics (the collector derives RED
        metrics from these spans)."""
        return {
            "tracer_provider": self.provider("gateway"),
            "meter_provider": metrics.NoOpMeterProvider(),
            "metrics": False, "logs": False, "operation_spans": False,
            "auto_configure": False, "exclude": _is_health_probe,
        }

    def force_flush(self, timeout_ms: int = 10_000) -> bool:
        return all(p.force_flush(timeout_ms) for p in self._processors)

    def shutdown(self) -> None:
        ROUTER.attach(None)
        self.force_flush()
        for processor in self._processors:
            processor.shutdown()
        self.meter_provider.shutdown()


_HEALTH_PROBES = frozenset({"/healthz", "/readyz"})


def _is_health_probe(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in _HEALTH_PROBES


def install_instrumentations(settings: Settings) -> None:
    """Once per process: the router as global provider, and the official asyncpg, redis,
    aiokafka and httpx instrumentations on the router, writing the semantic conventions
    ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for (``settings``: read before the first
    instrumentation, which fixes them for the process)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        apply_opt_in(settings)
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        trace.set_tracer_provider(ROUTER)
        for instrumentor in (
            AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
            RedisInstrumentor(), AIOKafkaInstrumentor(),
            HTTPXClientInstrumentor(),
        ):
            instrumentor.instrument(tracer_provider=ROUTER)
        _installed = True
