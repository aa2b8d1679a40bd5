"""Spans shipped to the export process arrive as they left: ``span_wire`` round-trips every
field the OTLP encodings read (compared through the trace store's OTLP JSON encoding)."""

from __future__ import annotations

import marshal
from collections import UserList

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from ecomctl.telemetry.span_wire import WIRE_VERSION, decode_spans, encode_spans
from ecomctl.telemetry.trace_store import encode_batch


def _finished_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    for service in ("gateway", "order"):
        provider = TracerProvider(resource=Resource({"service.name": service, "n": 1}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("ecomctl", "1.2", schema_url="https://x/1")
        remote = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7,
                             is_remote=True, trace_flags=TraceFlags(1),
                             trace_state=TraceState([("vendor", "v1")]))
        link = Link(SpanContext(0x1234, 0x5678, is_remote=True), {"ecom.why": "batch"})
        with tracer.start_as_current_span(
            f"{service}.work", context=set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER, links=[link],
            attributes={"ecom.ids": (1, 2, 3), "ecom.names": ["a", "b"], "ecom.ok": True,
                        "ecom.ratio": 0.5, "ecom.text": "é"},
        ) as span:
            span.add_event("retry", {"ecom.attempt": 2})
            with tracer.start_as_current_span("child") as child:
                child.set_status(StatusCode.ERROR, "boom")
    spans = list(exporter.get_finished_spans())
    assert len(spans) == 4
    return spans


def test_a_batch_round_trips_every_field_otlp_reads() -> None:
    spans = _finished_spans()
    back = decode_spans(encode_spans(spans))
    assert encode_batch(back) == encode_batch(spans)
    # The parent's remoteness and the kinds/status survive too (not all are in the JSON).
    assert [s.parent.is_remote if s.parent else None for s in back] == \
        [s.parent.is_remote if s.parent else None for s in spans]
    assert back[0].status.status_code is StatusCode.ERROR and back[0].status.description == "boom"
    assert back[1].kind is SpanKind.SERVER
    context = back[1].get_span_context()
    assert context is not None and context.trace_state.to_header() == "vendor=v1"


def test_resources_and_scopes_are_sent_once_per_batch() -> None:
    spans = _finished_spans()
    _, resources, scopes, rows = marshal.loads(encode_spans(spans))
    assert len(resources) == 2 and len(scopes) == 1 and len(rows) == 4


@pytest.mark.parametrize(
    "blob", [b"", b"not marshal", marshal.dumps((WIRE_VERSION + 1, [], [], []))]
)
def test_anything_else_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode_spans(blob)


def test_attributes_the_sdk_did_not_clean_still_ship() -> None:
    """A span built by hand (not through the SDK's attribute cleaning) may hold a sequence
    that marshal refuses: the batch is converted and shipped all the same."""
    sdk_span = _finished_spans()[0]
    context = sdk_span.get_span_context()
    assert context is not None
    by_hand = ReadableSpan(
        name="by-hand", context=context, resource=Resource({"hosts": UserList(["a", "b"])}),
        attributes={"ecom.names": UserList(["x", "y"]), "ecom.n": 3},
        events=[], links=[Link(context, {"ecom.ids": UserList([1, 2])})],
        start_time=1, end_time=2,
    )
    [back] = decode_spans(encode_spans([by_hand]))
    assert dict(back.attributes or {}) == {"ecom.names": ("x", "y"), "ecom.n": 3}
    assert dict(back.resource.attributes) == {"hosts": ("a", "b")}
    assert dict(back.links[0].attributes or {}) == {"ecom.ids": (1, 2)}
