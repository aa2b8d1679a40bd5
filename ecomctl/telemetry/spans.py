"""Business spans: one per meaningful hop, named ``<service>.<operation>``, attributes under
the ``ecom.`` prefix. Entering a service's span also marks that service as current, so every
instrumented client call beneath it is attributed to it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

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

    @contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        links: Sequence[Link] = (),
    ) -> Iterator[Span]:
        token = current_service.set(self.service)
        try:
            with self._tracer.start_as_current_span(
                name, kind=kind, attributes=attributes, links=links, record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    yield span
                except DomainError as exc:
                    # A refused request is an outcome, not a fault: tag it, keep status unset.
                    span.set_attribute("ecom.outcome", type(exc).__name__)
                    raise
                except BaseException as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
        finally:
            current_service.reset(token)
