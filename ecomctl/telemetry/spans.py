"""Business spans: one per meaningful hop, named ``<service>.<operation>``, attributes under
the ``ecom.`` prefix. Entering a service's span also marks that service as current, so every
instrumented client call beneath it is attributed to it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from ecomctl.errors import DomainError
from ecomctl.telemetry.context import current_service


class ServiceTracer:
    """The tracer of one service (its own ``service.name``)."""

    def __init__(self, service: str, tracer: Tracer | None = None) -> None:
        self.service = service
        self._tracer = tracer or trace.get_tracer(f"ecomctl.{service}")

    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        links: Sequence[Link] = (),
    ) -> ServiceSpan:
        return ServiceSpan(self.service, self._tracer, name, attributes, kind, links)


class ServiceSpan:
    """``with tracer.span(...) as span``: the span, current (and its service current) inside.

    A class rather than a generator context manager over ``start_as_current_span``: the two
    generator layers cost a fifth of a span's time (14 of ~70 us in a microbenchmark), and
    a checkout makes a dozen business spans. Exits in ``use_span``'s order: the context is
    restored, then the span ends."""

    __slots__ = (
        "_attributes",
        "_context_token",
        "_kind",
        "_links",
        "_name",
        "_service",
        "_service_token",
        "_span",
        "_tracer",
    )

    def __init__(self, service: str, tracer: Tracer, name: str,
                 attributes: Mapping[str, AttributeValue] | None, kind: SpanKind,
                 links: Sequence[Link]) -> None:
        self._service, self._tracer, self._name = service, tracer, name
        self._attributes, self._kind, self._links = attributes, kind, links

    def __enter__(self) -> Span:
        self._service_token = current_service.set(self._service)
        span = self._span = self._tracer.start_span(
            self._name, kind=self._kind, attributes=self._attributes, links=self._links,
            record_exception=False, set_status_on_exception=False)
        self._context_token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        span = self._span
        try:
            otel_context.detach(self._context_token)
            if isinstance(exc, DomainError):
                # A refused request is an outcome, not a fault: tag it, keep status unset.
                span.set_attribute("ecom.outcome", type(exc).__name__)
            elif exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
        finally:
            current_service.reset(self._service_token)
