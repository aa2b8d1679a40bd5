"""A tracer provider that routes each span to the provider of the service running now.

The official instrumentations (asyncpg, redis, aiokafka, httpx) and the Elasticsearch client
take one tracer provider for the whole process. Handing them this router makes every client
span carry the ``service.name`` of the service that issued it (``telemetry.context``), with
the normal parent/child relations, because all providers share one context and one exporter.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
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

    # The API declares this method's result as a private class of its own; ours has the same
    # behaviour (context manager, and decorator of sync and async functions) without it.
    def start_as_current_span(  # type: ignore[override]
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
    ) -> _CurrentSpan:
        return _CurrentSpan(lambda: self._target().start_as_current_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception, end_on_exit,
        ))


_F = TypeVar("_F", bound=Callable[..., Any])


class _CurrentSpan(AbstractContextManager[Span]):
    """What ``start_as_current_span`` returns. The service's tracer is chosen on entry (the
    service running then); as a decorator, each call gets a new span, and an async function's
    span lasts until its coroutine finishes (as with the API's own context manager)."""

    __slots__ = ("_inner", "_open")

    def __init__(self, open_span: Callable[[], AbstractContextManager[Span]]) -> None:
        self._open = open_span
        self._inner: AbstractContextManager[Span] | None = None

    def __enter__(self) -> Span:
        self._inner = self._open()
        return self._inner.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        inner, self._inner = self._inner, None
        return inner.__exit__(exc_type, exc, tb) if inner is not None else None

    def __call__(self, func: _F) -> _F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._open():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._open():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


ROUTER = RoutingTracerProvider()
"""The process-wide router; the global tracer provider and the instrumentations use it."""
