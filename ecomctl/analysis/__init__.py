"""Trace analysis: spans from any OpenTelemetry source, grouped into traces, turned into
per-operation latency and self time, critical paths, and anti-pattern findings.

    spans = load_spans("traces.jsonl")            # or a directory, or jaeger://HOST:PORT
    result = analyze(group_traces(spans))          # TraceAnalysis
    result.to_dict()                               # the documented JSON shape (report.py)

Pure Python over plain slotted records: no I/O besides reading the input.
"""

from __future__ import annotations

from ecomctl.analysis.model import SpanRecord, Trace, group_traces
from ecomctl.analysis.readers import from_sdk_spans, load_spans
from ecomctl.analysis.report import TraceAnalysis, analyze

__all__ = [
    "SpanRecord",
    "Trace",
    "TraceAnalysis",
    "analyze",
    "from_sdk_spans",
    "group_traces",
    "load_spans",
]
