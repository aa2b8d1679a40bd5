"""Building the tracer and meter providers of one in-process stack.

One ``TracerProvider`` per service (its own ``service.name``), all sharing one batching span
processor (OTLP export) plus any extra processors (in-process capture). The process-wide
``ROUTER`` is the global tracer provider and the one the instrumentations use; ``activate``
points it at this stack's providers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ecomctl import __version__
from ecomctl.config import Settings
from ecomctl.errors import ConfigError
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.routing import ROUTER
from ecomctl.telemetry.spans import ServiceTracer

_install_lock = threading.Lock()
_installed = False


def sampler_from(settings: Settings) -> Sampler:
    """The standard ``OTEL_TRACES_SAMPLER`` names."""
    name, arg = settings.traces_sampler, settings.traces_sampler_arg
    try:
        ratio = float(arg) if arg is not None else 1.0
    except ValueError as exc:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} is not a number") from exc
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    if name not in samplers:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={name!r}: expected one of {sorted(samplers)}")
    return samplers[name]


def otlp_span_exporter(settings: Settings) -> SpanExporter:
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True, timeout=5)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces", timeout=5)


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
        self._resource = Resource.create(
            {
                **settings.resource_attributes,
                "service.namespace": settings.service_name,
                "service.version": __version__,
            }
        )
        self._sampler = sampler_from(settings)
        self._processors: list[SpanProcessor] = []
        if export:
            self._processors.append(
                BatchSpanProcessor(
                    exporter or otlp_span_exporter(settings),
                    max_queue_size=65_536,
                    max_export_batch_size=1_024,
                    schedule_delay_millis=500,
                )
            )
        self._processors.extend(span_processors)
        self._providers: dict[str, TracerProvider] = {}
        self._lock = threading.Lock()
        self.metric_reader = InMemoryMetricReader()
        readers: list[MetricReader] = [self.metric_reader]
        if settings.metrics_exporter == "otlp":
            readers.append(_otlp_metric_reader(settings))
        self.meter_provider = MeterProvider(resource=self._resource, metric_readers=readers)
        self.metrics = ShopMetrics(self.meter_provider.get_meter("ecomctl", __version__))

    def provider(self, service: str) -> TracerProvider:
        provider = self._providers.get(service)
        if provider is None:
            with self._lock:
                provider = self._providers.get(service)
                if provider is None:
                    provider = TracerProvider(
                        sampler=self._sampler,
                        resource=self._resource.merge(Resource({"service.name": service})),
                        shutdown_on_exit=False,
                    )
                    for processor in self._processors:
                        provider.add_span_processor(processor)
                    self._providers[service] = provider
        return provider

    def tracer(self, service: str) -> ServiceTracer:
        return ServiceTracer(service, self.provider(service).get_tracer("ecomctl", __version__))

    def activate(self) -> None:
        """Route the global provider and the client instrumentations to this stack."""
        install_instrumentations()
        ROUTER.attach(self.provider)

    def instrument_app(self, app: Any) -> None:
        """Server spans (W3C context in, ``service.name=gateway``) and request metrics for a
        FastAPI app; ASGI send/receive sub-spans are left out (two spans per request for no
        insight), health probes too."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider("gateway"),
            meter_provider=self.meter_provider,
            excluded_urls="healthz,readyz",
            exclude_spans=["receive", "send"],
        )

    def force_flush(self, timeout_ms: int = 10_000) -> bool:
        return all(p.force_flush(timeout_ms) for p in self._processors)

    def shutdown(self) -> None:
        ROUTER.attach(None)
        self.force_flush()
        for processor in self._processors:
            processor.shutdown()
        self.meter_provider.shutdown()


def _otlp_metric_reader(settings: Settings) -> MetricReader:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=settings.otlp_endpoint, insecure=True)
    )


def install_instrumentations() -> None:
    """Once per process: W3C propagation, the router as global provider, and the official
    asyncpg, redis, aiokafka and httpx instrumentations on the router."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        propagate.set_global_textmap(
            CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
        )
        trace.set_tracer_provider(ROUTER)
        for instrumentor in (
            AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
            RedisInstrumentor(), AIOKafkaInstrumentor(),
            HTTPXClientInstrumentor(),
        ):
            instrumentor.instrument(tracer_provider=ROUTER)
        _installed = True
