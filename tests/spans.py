"""Spans built for tests: ``SpanRecord``s on a fixed clock, the span dicts a result document
carries, and OTLP JSON as exporters write it (one builder, so every test's spans agree with
the model and the readers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ecomctl.analysis.model import SpanRecord

MS = 1_000_000
"""Nanoseconds in a millisecond: spans are built in ms, ``SpanRecord`` keeps ns."""
T0 = 1_700_000_000_000_000_000
"""The epoch (ns) that ``start_ms``/``end_ms`` count from: a fixed, plausible wall-clock time."""
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

# The protobuf JSON mapping writes the kind as its enum number (SpanKind in trace.proto).
OTLP_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}


def span_record(
    span_id: int | str,
    parent: int | str | None,
    start_ms: float,
    end_ms: float,
    name: str = "op",
    *,
    service: str = "svc",
    kind: str = "INTERNAL",
    status: str = "UNSET",
    message: str = "",
    trace_id: int | str = TRACE,
    t0_ns: int = T0,
    attributes: Mapping[str, Any] | None = None,
    **dotted: Any,
) -> SpanRecord:
    """A finished span ``start_ms``..``end_ms`` after ``t0_ns``. Integer ids are written as
    hex (16 digits for a span, 32 for a trace), as the readers produce them; ``dotted``
    attributes spell the dots as ``__`` (``db__statement=...`` is ``db.statement``)."""
    return SpanRecord(
        trace_id=_hex(trace_id, 32),
        span_id=_hex(span_id, 16),
        parent_span_id=_hex(parent, 16) if parent is not None else None,
        name=name,
        service=service,
        kind=kind,
        start_ns=t0_ns + int(start_ms * MS),
        end_ns=t0_ns + int(end_ms * MS),
        status=status,
        status_message=message,
        attributes={**(attributes or {}),
                    **{key.replace("__", "."): value for key, value in dotted.items()}},
    )


def span_dict(span: SpanRecord) -> dict[str, Any]:
    """``span`` as a result document's ``slowest_trace`` lists it (what the simulator
    writes)."""
    return {"trace_id": span.trace_id, "span_id": span.span_id,
            "parent_span_id": span.parent_span_id, "name": span.name,
            "service": span.service, "kind": span.kind, "start_ns": span.start_ns,
            "end_ns": span.end_ns, "status": span.status, "attributes": dict(span.attributes)}


def otlp_span(span: SpanRecord, **fields: Any) -> dict[str, Any]:
    """``span``'s ids, name, kind and times in OTLP JSON (hex ids, nanoseconds as strings, the
    kind as its number). ``fields`` replace or add keys: a writer's own spelling of them, and
    attributes or a status, which are written as the test needs them."""
    encoded: dict[str, Any] = {
        "traceId": span.trace_id, "spanId": span.span_id, "name": span.name,
        "kind": OTLP_KINDS[span.kind],
        "startTimeUnixNano": str(span.start_ns), "endTimeUnixNano": str(span.end_ns),
    }
    if span.parent_span_id:  # a root has none (not an empty one)
        encoded["parentSpanId"] = span.parent_span_id
    return {**encoded, **fields}


def otlp_document(service: str, spans: Iterable[Mapping[str, Any]], *, scope: str = "t",
                  resource: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One service's OTLP JSON spans as an export request: one line of a capture file."""
    attributes = [{"key": key, "value": {"stringValue": value}}
                  for key, value in {"service.name": service, **(resource or {})}.items()]
    return {"resourceSpans": [{
        "resource": {"attributes": attributes},
        "scopeSpans": [{"scope": {"name": scope}, "spans": list(spans)}],
    }]}


def _hex(value: int | str, digits: int) -> str:
    return format(value, f"0{digits}x") if isinstance(value, int) else value

