"""A tracer provider that routes each span to the provider of the service running now.

The official instrumentations (asyncpg, redis, aiokafka, httpx) and the Elasticsearch client
take one tracer provider for the whole process. Handing them this router makes every client
span carry the ``service.name`` of the service that issued it (``telemetry.context``), with
the normal parent/child relations, because all providers share one context and one exporter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util._decorator import _agnosticcontextmanager
from opentelemetry.util.types import AttributeValue

from ecomctl.telemetry.context import current_service

ProviderLookup = Callable[[str], trace.TracerProvider]


class RoutingTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self._lookup: ProviderLookup | None = None

    def attach(self, lookup: ProviderLookup | None) -> None:
        """Route to ``lookup(service)``; None routes to the no-op tracer."""
        self._lookup = lookup

    def provider_for(self, service: str) -> trace.TracerProvider:
        return self._lookup(service) if self._lookup else trace.NoOpTracerProvider()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> trace.Tracer:
        return _RoutingTracer(self, instrumenting_module_name, instrumenting_library_version,
                              schema_url)


class _RoutingTracer(trace.Tracer):
    def __init__(
        self, router: RoutingTracerProvider, name: str, version: str | None, schema: str | None
    ) -> None:
        self._router = router
        self._scope = (name, version, schema)
        self._cache: dict[tuple[int, str], trace.Tracer] = {}

    def _target(self) -> trace.Tracer:
        service = current_service.get()
        provider = self._router.provider_for(service)
        key = (id(provider), service)
        tracer = self._cache.get(key)
        if tracer is None:
            name, version, schema = self._scope
            tracer = provider.get_tracer(name, version, schema)
            self._cache[key] = tracer
        return tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, AttributeValue] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._target().start_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, AttributeValue] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        with self._target().start_as_current_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception, end_on_exit,
        ) as span:
            yield span


ROUTER = RoutingTracerProvider()
"""The process-wide router; the global tracer provider and the instrumentations use it."""
