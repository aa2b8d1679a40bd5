"""Current semantic conventions on every span.

The asyncpg, redis and httpx instrumentations write the current database and HTTP attributes
(``db.query.text``, ``db.system.name``, ``db.namespace``, ``server.address``,
``http.request.method``, ``url.full``, ``http.response.status_code``...) instead of the
deprecated ones when ``OTEL_SEMCONV_STABILITY_OPT_IN`` says ``database`` and ``http``. They
read that variable from the process's environment once, when the first of them is
instrumented, so ``apply_opt_in`` puts ``Settings.semconv_opt_in`` there before
``install_instrumentations`` (ecomctl's ``database,http,messaging`` unless the user set it).

The aiokafka instrumentation has no switch: it writes ``messaging.kafka.message.offset``,
which the conventions replaced by ``messaging.kafka.offset``. ``CurrentNames`` stands in front
of the span processors and renames it as a span ends when the variable says ``messaging``, or
adds the current name beside the old one with ``messaging/dup`` (the specification's words
for this switch); without either, spans pass through as the instrumentation made them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ecomctl.config import Settings

OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"
KAFKA_SCOPE = "opentelemetry.instrumentation.aiokafka"
RENAMES: Mapping[str, Mapping[str, str]] = {
    KAFKA_SCOPE: {"messaging.kafka.message.offset": "messaging.kafka.offset"},
}
"""Per instrumentation scope: deprecated attribute -> its replacement (a test checks each
pair against the semantic-conventions package)."""


def apply_opt_in(settings: Settings) -> None:
    """Put ``settings.semconv_opt_in`` where the instrumentations read it. Child processes
    (the export process, shard processes) inherit it, so they agree."""
    os.environ[OPT_IN_ENV] = ",".join(settings.semconv_opt_in)


def renaming(settings: Settings) -> str | None:
    """``"rename"`` (``messaging``), ``"both"`` (``messaging/dup``) or None (neither)."""
    if "messaging/dup" in settings.semconv_opt_in:
        return "both"
    return "rename" if "messaging" in settings.semconv_opt_in else None


class CurrentNames(SpanProcessor):
    """Hands every span to ``processors``; a span of an instrumentation in ``RENAMES`` is
    handed over with the current attribute names (a copy: an ended span is read-only).
    Anything else is passed as is, so the cost on the request path is one dict lookup."""

    def __init__(self, processors: Sequence[SpanProcessor], *, keep_old: bool = False) -> None:
        self._processors = tuple(processors)
        self._keep_old = keep_old

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        renames = RENAMES.get(scope.name) if scope is not None else None
        if renames and span.attributes and not renames.keys().isdisjoint(span.attributes):
            span = self._renamed(span, renames)
        for processor in self._processors:
            processor.on_end(span)

    def _renamed(self, span: ReadableSpan, renames: Mapping[str, str]) -> ReadableSpan:
        attributes = dict(span.attributes or {})
        for old, new in renames.items():
            if old in attributes:
                value = attributes[old] if self._keep_old else attributes.pop(old)
                attributes.setdefault(new, value)
        return ReadableSpan(
            name=span.name, context=span.context, parent=span.parent, resource=span.resource,
            attributes=attributes, events=span.events, links=span.links, kind=span.kind,
            status=span.status, start_time=span.start_time, end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self._processors)
