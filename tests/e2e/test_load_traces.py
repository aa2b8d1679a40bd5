"""A load run's traces are whole: every Locust request is a CLIENT span of service ``loadgen``
whose context is the ``traceparent`` it sends, exported to the trace backend (Jaeger) and
merged into the run's capture, so no server span is left without its parent; and the result
sets the client's latency of each request against the server's."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ecomctl.analysis.model import SpanRecord, group_traces
from ecomctl.analysis.readers import read_file, read_jaeger_trace
from ecomctl.config import Settings
from ecomctl.telemetry.loadgen import CANCELLED

pytestmark = pytest.mark.long  # processes: Locust and the gateway it starts

CHECKOUT = "POST /api/checkout"
JAEGER_WAIT_S = 30.0
TRACES_READ_BACK = 20
HEADERS_TO_BODY_MS = 0.25  # the server's time after the client has its headers, at most


def _jaeger_trace(url: str, trace_id: str, deadline: float) -> list[SpanRecord]:
    """The trace once Jaeger holds both its client and its gateway span (ingestion is
    asynchronous)."""
    while True:
        spans = read_jaeger_trace(url, trace_id)
        services = {s.service for s in spans}
        if {"loadgen", "gateway"} <= services or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


def test_load_traces_start_at_the_load_generator(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "traces.json"
    run = ecomctl("load", "run", "--out", str(out), "--no-live", "--credentials", str(seeded),
                  "--profile", "checkout", "--users", "6", "--spawn-rate", "6",
                  "--duration", "15s", env={"ECOMCTL_TRACE_DIR": str(tmp_path / "traces")},
                  timeout=300)
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["ok"] is True and doc["drained"] is True, doc.get("invariants")
    requests = doc["totals"]["requests"]
    assert doc["totals"]["checkouts"] and requests > 30

    # The capture holds one client span per Locust request (plus any cut short by the end of
    # the test), and every gateway span that continued a traceparent has its client parent.
    trace_file = Path(doc["trace_file"])
    spans = read_file(trace_file)
    clients = {s.span_id: s for s in spans if s.service == "loadgen"}
    assert all(s.kind == "CLIENT" and s.parent_span_id is None for s in clients.values())
    finished = {i: s for i, s in clients.items() if not s.attributes.get(CANCELLED)}
    assert len(finished) == requests
    served = [s for s in spans if s.service == "gateway" and s.kind == "SERVER"
              and s.parent_span_id]
    assert len(served) >= 0.95 * requests
    assert all(s.parent_span_id in clients for s in served)
    assert doc["trace_context"]["client_spans"] == len(clients)
    assert doc["trace_context"]["orphans"] == 0

    # `traces analyze` on the run's capture finds no orphan.
    analyzed = ecomctl("traces", "analyze", "--from", str(trace_file), "--json")
    assert analyzed.exit_code == 0, analyzed.stderr[-2000:]
    counts = analyzed.json()["counts"]
    assert counts["orphans"] == 0 and counts["traces"] >= requests

    # Client against server, per endpoint: network + queueing = client - server, >= 0. Locust
    # stops its clock when the response's headers are read, the server span ends once the
    # body is sent: for a request of a few ms, a few µs of the server's may come after the
    # client's (seen: 3.505 against 3.513 ms over 5 requests).
    figures = doc["network_queueing"]
    assert {CHECKOUT, "POST /api/cart/items", "POST /api/users/login"} <= set(figures)
    for endpoint, row in figures.items():
        assert row["count"] > 0 and row["count"] + row["unmatched"] <= len(clients), endpoint
        assert row["server_p50_ms"] > 0, (endpoint, row)
        assert row["client_p50_ms"] >= row["server_p50_ms"] - HEADERS_TO_BODY_MS, (endpoint, row)
        assert 0 < row["network_queueing_p50_ms"] <= row["network_queueing_p95_ms"], row
        assert row["network_queueing_p50_ms"] <= row["client_p50_ms"], row
    assert figures[CHECKOUT]["count"] == sum(
        1 for s in served if s.parent_span_id in finished
        and finished[s.parent_span_id].name == CHECKOUT)

    # The same traces, read back from Jaeger, start at the load generator.
    jaeger = Settings.from_env().trace_query_url
    checkouts = [s for s in finished.values() if s.name == CHECKOUT]
    deadline = time.monotonic() + JAEGER_WAIT_S
    for client in checkouts[:TRACES_READ_BACK]:
        read_back = _jaeger_trace(jaeger, client.trace_id, deadline)
        [trace] = group_traces(read_back)
        assert not trace.orphans, [(s.service, s.name, s.parent_span_id) for s in trace.orphans]
        [root] = trace.roots
        assert (root.service, root.kind, root.name, root.span_id) == \
            ("loadgen", "CLIENT", CHECKOUT, client.span_id)
        gateway = [s for s in read_back if s.service == "gateway" and s.kind == "SERVER"]
        assert [s.parent_span_id for s in gateway] == [root.span_id]
