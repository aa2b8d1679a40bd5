"""Jaeger API v3 responses (``{"result": <OTLP JSON>}``) as ``ecomctl traces`` reads them,
saved to a file; the live API is tested against the local Jaeger in
tests/integration/test_trace_sources.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecomctl.analysis.readers import _rfc3339, parse_text, read_jaeger
from ecomctl.errors import ConfigError
from tests.spans import otlp_document, otlp_span, span_record

TRACE = "b16cc03cd5a9ac5e6c40029bc2205261"


# What Jaeger 2.13 answers on /api/v3/traces (copied from the local stack's): times to the
# nanosecond, "parentSpanId" on a root too (empty), span flags and an empty status.
JAEGER_FIELDS = {"flags": 256, "status": {}, "startTimeUnixNano": "1796067815035832723",
                 "endTimeUnixNano": "1796067815036122166"}


def _span(span_id: str, name: str, parent: str = "", **extra: Any) -> dict[str, Any]:
    record = span_record(span_id, parent or None, 0, 0, name,
                         kind="CLIENT" if parent else "SERVER", trace_id=TRACE)
    return otlp_span(record, **{**JAEGER_FIELDS, "parentSpanId": parent, **extra})


def _result(service: str, *spans: dict[str, Any]) -> dict[str, Any]:
    return {"result": otlp_document(service, spans, scope="ecomctl",
                                    resource={"service.namespace": "shops"})}


def test_a_saved_v3_response_is_read_with_its_nanoseconds_and_resource() -> None:
    root = _span("718d7cc14a381140", "GET /cart")
    child = _span("cd2816cbe3c80396", "GET", "718d7cc14a381140",
                  attributes=[{"key": "db.system.name", "value": {"stringValue": "redis"}}],
                  status={"message": "price missing", "code": 2})
    # Two chunks, as a streaming v3 answer (or two saved answers) would be.
    text = json.dumps(_result("cart", root)) + "\n" + json.dumps(_result("cart", child))
    spans = {s.name: s for s in parse_text(text, "v3.json")}
    assert spans["GET /cart"].start_ns == 1796067815035832723  # not rounded to microseconds
    assert spans["GET /cart"].service == "cart" and spans["GET /cart"].kind == "SERVER"
    assert spans["GET"].parent_span_id == "718d7cc14a381140"
    assert spans["GET"].attributes == {"db.system.name": "redis"}
    assert (spans["GET"].status, spans["GET"].status_message) == ("ERROR", "price missing")


def test_an_empty_v3_result_has_no_spans_and_an_error_document_is_refused() -> None:
    assert parse_text('{"result": {}}') == []
    with pytest.raises(ConfigError, match="not a span document"):
        parse_text('{"error": {"httpCode": 404, "message": "No traces found"}}')


def test_v3_times_are_rfc3339_with_nanoseconds() -> None:
    assert _rfc3339(1796067815035832723) == "2026-11-30T19:43:35.035832723Z"
    assert _rfc3339(0) == "1970-01-01T00:00:00.000000000Z"


def test_an_unknown_api_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected one of auto, v3, legacy"):
        read_jaeger("jaeger://127.0.0.1:17686", "checkout", api="v2")
