"""The trace store: finished spans as OTLP JSON lines, a format other tools read too.

``OtlpJsonLinesExporter`` is an SDK ``SpanExporter``; run it under a ``BatchSpanProcessor``
(``capture_processor(path)`` gives one sized for simulation and load runs)
so the request path pays nothing but the queueing: each exported batch becomes ONE line,
``{"resourceSpans": [...]}`` exactly as the OTLP/JSON spec (and the OpenTelemetry Collector's
file exporter) writes it: hex ids, 64-bit integers as strings, enums as numbers.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ecomctl.config import state_dir

TRACE_DIR_ENV = "ECOMCTL_TRACE_DIR"

# SDK SpanKind values are 0..4 (INTERNAL first); OTLP's are 1..5 (0 is UNSPECIFIED).
_OTLP_KIND_OFFSET = 1
_OTLP_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}


def trace_store_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$ECOMCTL_TRACE_DIR``, else ``<state dir>/traces``."""
    source = os.environ if env is None else env
    if source.get(TRACE_DIR_ENV):
        return Path(source[TRACE_DIR_ENV]).expanduser().absolute()
    return state_dir(source) / "traces"


def new_trace_file(label: str = "run", directory: Path | None = None) -> Path:
    """A fresh file name in the store: ``<label>-<UTC time>-<pid>.jsonl`` (not created)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return (directory or trace_store_dir()) / f"{label}-{stamp}-{os.getpid()}.jsonl"


def latest_trace_file(directory: Path | None = None) -> Path | None:
    """The most recently written ``*.jsonl`` file of the store, if any."""
    folder = directory or trace_store_dir()
    if not folder.is_dir():
        return None
    files = [p for p in folder.glob("*.jsonl") if p.is_file()]
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name)) if files else None


def _value(value: Any) -> dict[str, Any]:
    """An attribute value as an OTLP ``AnyValue`` (bool before int: bool is an int)."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        # proto3 JSON spells non-finite doubles as strings; JSON itself cannot.
        return {"doubleValue": "NaN" if math.isnan(value) else
                ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    return [{"key": key, "value": _value(value)} for key, value in attributes.items()]


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None  # finished SDK spans always have one
    out: dict[str, Any] = {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
    }
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    trace_state = context.trace_state.to_header()
    if trace_state:
        out["traceState"] = trace_state
    out["name"] = span.name
    out["kind"] = span.kind.value + _OTLP_KIND_OFFSET
    out["startTimeUnixNano"] = str(span.start_time or 0)
    out["endTimeUnixNano"] = str(span.end_time or span.start_time or 0)
    out["attributes"] = _attributes(span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [
            {
                "timeUnixNano": str(e.timestamp),
                "name": e.name,
                "attributes": _attributes(e.attributes),
            }
            for e in span.events
        ]
    if span.links:
        out["links"] = [
            {
                "traceId": format(link.context.trace_id, "032x"),
                "spanId": format(link.context.span_id, "016x"),
                "attributes": _attributes(link.attributes),
            }
            for link in span.links
        ]
    status: dict[str, Any] = {"code": _OTLP_STATUS[span.status.status_code.name]}
    if span.status.description:
        status["message"] = span.status.description
    out["status"] = status
    return out


def encode_batch(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """One ``{"resourceSpans": [...]}`` document, spans grouped by resource then scope."""
    by_resource: dict[int, tuple[Any, dict[tuple[str, str | None, str | None], list[Any]]]] = {}
    for span in spans:
        resource = span.resource
        entry = by_resource.get(id(resource))
        if entry is None:
            entry = by_resource[id(resource)] = (resource, {})
        scope = span.instrumentation_scope
        key = (scope.name, scope.version, scope.schema_url) if scope else ("", None, None)
        entry[1].setdefault(key, []).append(_span(span))
    resource_spans = []
    for resource, scopes in by_resource.values():
        scope_spans = []
        for (name, version, schema_url), encoded in scopes.items():
            scope_doc: dict[str, Any] = {"name": name}
            if version:
                scope_doc["version"] = version
            block: dict[str, Any] = {"scope": scope_doc, "spans": encoded}
            if schema_url:
                block["schemaUrl"] = schema_url
            scope_spans.append(block)
        item: dict[str, Any] = {
            "resource": {"attributes": _attributes(resource.attributes)},
            "scopeSpans": scope_spans,
        }
        if resource.schema_url:
            item["schemaUrl"] = resource.schema_url
        resource_spans.append(item)
    return {"resourceSpans": resource_spans}


class OtlpJsonLinesExporter(SpanExporter):
    """Appends each exported batch to ``path`` as one line of OTLP JSON, flushed at once.

    Thread-safe (one lock around the write); the file is opened on the first batch, so an
    exporter that never sees a span leaves no empty file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(encode_batch(spans), separators=(",", ":"), allow_nan=False)
        with self._lock:
            if self._closed:
                return SpanExportResult.FAILURE
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(line + "\n")
                self._file.flush()
            except OSError:
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every batch is flushed as it is written

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None


def capture_processor(path: Path) -> SpanProcessor:
    """A batching processor that appends every finished span to ``path`` (OTLP JSON lines),
    sized for a simulation or load run's burst of spans."""
    return BatchSpanProcessor(OtlpJsonLinesExporter(path), max_queue_size=262_144,
                              max_export_batch_size=4_096, schedule_delay_millis=1_000)
