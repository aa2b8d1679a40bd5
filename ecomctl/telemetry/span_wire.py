"""Finished spans as plain tuples, for shipping them to the export process.

The serving process only turns each span into a tuple of ints, strings and dicts, and a batch
into one ``marshal`` blob (C, no per-field Python objects): OTLP's protobuf encoding, which
held the GIL for a third of a traced gateway's samples, happens in the export process
(``export_process``), which rebuilds SDK ``ReadableSpan`` objects from the tuples and hands
them to the ordinary exporters. Resources and scopes are sent once per batch, by index.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

WIRE_VERSION = 1
_KINDS = list(SpanKind)
_CODES = list(StatusCode)


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    # The SDK keeps sequence values as tuples already, which marshal takes as they are: a
    # plain copy is enough (``_marshallable`` converts whatever else a batch holds). The
    # SDK's mappings copy their dict in C; dict() would go key by key through Python.
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    copied = copy() if copy is not None else None
    return copied if isinstance(copied, dict) else dict(attributes)


def _marshallable(attributes: dict[str, Any]) -> dict[str, Any]:
    """Sequences as tuples: marshal has no MappingProxy, BoundedList or list subclass."""
    return {k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, (str, bytes))
            else v for k, v in attributes.items()}


def _context(context: SpanContext) -> tuple[int, int, int, str, bool]:
    state = context.trace_state
    return (context.trace_id, context.span_id, int(context.trace_flags),
            state.to_header() if state else "", context.is_remote)


def encode_spans(spans: Iterable[ReadableSpan]) -> bytes:
    """One batch as bytes: ``(version, resources, scopes, spans)``."""
    resources: dict[int, int] = {}
    resource_table: list[tuple[dict[str, Any], str]] = []
    scopes: dict[tuple[str, str | None, str | None], int] = {}
    rows = []
    for span in spans:
        resource = span.resource
        r = resources.get(id(resource))
        if r is None:
            r = resources[id(resource)] = len(resource_table)
            resource_table.append((_attributes(resource.attributes), resource.schema_url))
        scope = span.instrumentation_scope
        key = (scope.name, scope.version, scope.schema_url) if scope else ("", None, None)
        s = scopes.get(key)
        if s is None:
            s = scopes[key] = len(scopes)
        context = span.get_span_context()
        assert context is not None  # finished SDK spans always have one
        parent = span.parent
        rows.append((
            span.name, _context(context),
            None if parent is None else (parent.span_id, parent.is_remote),
            r, s, span.kind.value, span.start_time, span.end_time,
            _attributes(span.attributes),
            tuple((e.name, e.timestamp, _attributes(e.attributes)) for e in span.events),
            tuple((_context(link.context), _attributes(link.attributes))
                  for link in span.links),
            (span.status.status_code.value, span.status.description),
        ))
    batch = (WIRE_VERSION, resource_table, list(scopes), rows)
    try:
        return marshal.dumps(batch)
    except ValueError:  # an attribute value marshal cannot write (a list subclass...)
        return marshal.dumps(_converted(batch))


def _converted(batch: tuple[Any, ...]) -> tuple[Any, ...]:
    """``batch`` with every attribute mapping made marshallable (the slow path)."""
    version, resource_table, scopes, rows = batch
    return (version,
            [(_marshallable(attributes), url) for attributes, url in resource_table],
            scopes,
            [(*row[:8], _marshallable(row[8]),
              tuple((n, t, _marshallable(a)) for n, t, a in row[9]),
              tuple((c, _marshallable(a)) for c, a in row[10]), row[11])
             for row in rows])


def _span_context(row: Sequence[Any]) -> SpanContext:
    trace_id, span_id, flags, state, remote = row
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(flags),
                       trace_state=TraceState.from_header([state]) if state else None)


def decode_spans(blob: bytes) -> list[ReadableSpan]:
    """The spans ``encode_spans`` wrote; ValueError for anything else."""
    try:
        version, resource_table, scope_table, rows = marshal.loads(blob)
    except (EOFError, TypeError, ValueError) as exc:
        raise ValueError(f"not a span batch: {exc}") from exc
    if version != WIRE_VERSION:
        raise ValueError(f"span batch version {version}, expected {WIRE_VERSION}")
    resources = [Resource(attributes, schema_url) for attributes, schema_url in resource_table]
    scopes = [InstrumentationScope(name, version, schema_url)
              for name, version, schema_url in scope_table]
    spans = []
    for (name, context, parent, r, s, kind, start, end, attributes, events, links,
         (code, description)) in rows:
        own = _span_context(context)
        spans.append(ReadableSpan(
            name=name, context=own,
            parent=None if parent is None else SpanContext(
                own.trace_id, parent[0], is_remote=parent[1]),
            resource=resources[r], attributes=attributes,
            events=[Event(n, a, t) for n, t, a in events],
            links=[Link(_span_context(c), a) for c, a in links],
            kind=_KINDS[kind], status=Status(_CODES[code], description),
            start_time=start, end_time=end, instrumentation_scope=scopes[s],
        ))
    return spans
