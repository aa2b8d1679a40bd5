"""Merging the Locust processes' histograms, and the ``load run`` result document.

Each Locust process that sends requests publishes its histograms (``scenarios/hdr_hook.py``):
a local process writes ``hdr-<pid>.json``, and the master writes ``hdr-<worker id>.json`` for
each worker, local or remote, from the documents the workers send it::

    {"format": "ecomctl.load-hdr/1", "pid": int, "hostname": str, "worker_index": int | null,
     "final": bool,                      # false for the periodic snapshots
     "started_at": unix s | null, "stopped_at": unix s | null,
     "latency_origin": "actual start" | "intended start",
     "requests": int, "failures": int,
     "endpoints": {"GET /api/products/{id}": {"count", "failures", "hdr": base64}, ...},
     "journeys": {"browse": {"count", "failures", "hdr"}, ...},
     "outcomes": {"checkout": {"paid": n, "payment_declined": n, ...}},
     "errors": {cause: n}}

``merge_hdr_documents`` adds them up; histograms are merged bucket by bucket, so the merged
percentiles are exactly those of one histogram that had seen every sample.

The result document (``ecomctl.result/v1``, kind ``load-run``) is described in
``ecomctl.results.load_run``. This module stays light: Locust processes import it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecomctl.histogram import LatencyHistogram
from ecomctl.results.envelope import LOAD_RUN, RESULT_SCHEMA

if TYPE_CHECKING:
    from ecomctl.analysis.model import SpanRecord, Trace

HDR_FORMAT = "ecomctl.load-hdr/1"

ACTUAL_START = "actual start"
INTENDED_START = "intended start"
CORRECTED = ("intended start (constant arrival rate: each journey's first request includes "
             "how late it started against the schedule; coordinated omission corrected)")
NOT_CORRECTED = ("actual start (closed loop: each user waits for the previous response; "
                 "coordinated omission not corrected)")


@dataclass
class Tally:
    count: int = 0
    failures: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)

    def add(self, entry: dict[str, Any]) -> None:
        self.count += int(entry["count"])
        self.failures += int(entry["failures"])
        self.histogram.merge(LatencyHistogram.decode(entry["hdr"]))

    def to_dict(self, duration_s: float | None = None) -> dict[str, Any]:
        rate = {"rps": round(self.count / duration_s, 2)} if duration_s else {}
        summary = self.histogram.summary()
        del summary["count"]  # the same number, first below
        return {"count": self.count, "errors": self.failures, **rate, **summary,
                "hdr": self.histogram.encode()}


@dataclass
class SecondTally:
    count: int = 0
    failures: int = 0
    checkouts: int = 0
    hdrs: list[str] = field(default_factory=list)
    """The processes' encoded histograms of this second, merged when needed."""
    endpoints: dict[str, SecondTally] = field(default_factory=dict)

    def add(self, entry: dict[str, Any]) -> None:
        self.count += int(entry["count"])
        self.failures += int(entry["failures"])
        self.checkouts += int(entry.get("checkouts", 0))
        self.hdrs.append(str(entry["hdr"]))
        for name, endpoint in (entry.get("endpoints") or {}).items():
            self.endpoints.setdefault(name, SecondTally()).add(endpoint)


@dataclass
class MergedLoad:
    endpoints: dict[str, Tally] = field(default_factory=dict)
    journeys: dict[str, Tally] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    processes: list[dict[str, Any]] = field(default_factory=list)
    latency_origins: set[str] = field(default_factory=set)
    started_at: float | None = None
    stopped_at: float | None = None
    seconds: dict[int, SecondTally] = field(default_factory=dict)
    """Requests by the unix second they completed in, over every process."""

    @property
    def requests(self) -> int:
        return sum(t.count for t in self.endpoints.values())

    @property
    def failures(self) -> int:
        return sum(t.failures for t in self.endpoints.values())

    @property
    def window_s(self) -> float | None:
        """From the first process's start to the last one's stop."""
        if self.started_at is None or self.stopped_at is None:
            return None
        return max(0.0, self.stopped_at - self.started_at)

    @property
    def latency_origin(self) -> str:
        if self.latency_origins == {INTENDED_START}:
            return CORRECTED
        if INTENDED_START in self.latency_origins:
            return "mixed (some processes paced, some not)"
        return NOT_CORRECTED


def read_hdr_documents(directory: Path) -> list[dict[str, Any]]:
    """Every ``hdr-*.json`` of ``directory`` (written atomically: never half a file)."""
    documents = []
    for path in sorted(directory.glob("hdr-*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable hdr file: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != HDR_FORMAT:
            raise ValueError(f"{path}: not an {HDR_FORMAT} file")
        documents.append(document)
    return documents


def progress_counts(directory: Path) -> tuple[int, int]:
    """(requests, failures) over the latest snapshots: for live progress, never raises."""
    requests = failures = 0
    for path in directory.glob("hdr-*.json"):
        try:
            document = json.loads(path.read_text())
            requests += int(document.get("requests", 0))
            failures += int(document.get("failures", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return requests, failures


def load_started_at(directory: Path) -> float | None:
    """When the load started (the earliest process's ``started_at``), once a snapshot says
    so; None before. Never raises."""
    starts = []
    for path in directory.glob("hdr-*.json"):
        try:
            started = json.loads(path.read_text()).get("started_at")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(started, int | float):
            starts.append(float(started))
    return min(starts, default=None)


def _merge_into(table: dict[str, Tally], entries: dict[str, Any]) -> None:
    for name, entry in entries.items():
        table.setdefault(name, Tally()).add(entry)


def merge_hdr_documents(documents: Iterable[dict[str, Any]]) -> MergedLoad:
    merged = MergedLoad()
    for doc in documents:
        _merge_into(merged.endpoints, doc.get("endpoints", {}))
        _merge_into(merged.journeys, doc.get("journeys", {}))
        for kind, counts in doc.get("outcomes", {}).items():
            merged.outcomes.setdefault(kind, Counter()).update(counts)
        merged.errors.update(doc.get("errors", {}))
        for second, entry in (doc.get("timeline") or {}).items():
            merged.seconds.setdefault(int(second), SecondTally()).add(entry)
        merged.latency_origins.add(str(doc.get("latency_origin", ACTUAL_START)))
        merged.processes.append({
            "pid": doc.get("pid"), "hostname": doc.get("hostname"),
            "worker_index": doc.get("worker_index"),
            "requests": sum(int(e["count"]) for e in doc.get("endpoints", {}).values()),
            "failures": sum(int(e["failures"]) for e in doc.get("endpoints", {}).values()),
            "final": bool(doc.get("final")),
        })
        started, stopped = doc.get("started_at"), doc.get("stopped_at")
        if isinstance(started, int | float):
            merged.started_at = started if merged.started_at is None \
                else min(merged.started_at, started)
        if isinstance(stopped, int | float):
            merged.stopped_at = stopped if merged.stopped_at is None \
                else max(merged.stopped_at, stopped)
    return merged


# -- server side, from the gateway's captured spans -------------------------------------------


@dataclass
class ServerSide:
    trace_file: Path
    spans: list[dict[str, Any]]
    trace_context: dict[str, int]
    cache: dict[str, Any]
    network_queueing: dict[str, Any] = field(default_factory=dict)
    traces: list[Trace] = field(default_factory=list)
    """The capture's traces (the load generator's request spans are their roots)."""


def analyze_server_spans(trace_file: Path) -> ServerSide:
    """Operations (``ecomctl.analysis.report``, server side), how many gateway server spans
    continued a caller's trace (``traceparent``), cache hit ratios from the ``ecom.cache.*``
    span attributes, and, when the capture holds the load generator's client spans, the
    network and queueing time of each endpoint."""
    from ecomctl.analysis.exemplars import attach_operation_exemplars
    from ecomctl.analysis.readers import group_traces, read_file
    from ecomctl.analysis.report import analyze
    from ecomctl.telemetry.loadgen import CANCELLED, LOADGEN_SERVICE

    spans = read_file(trace_file) if trace_file.exists() else []
    ids = {s.span_id for s in spans if s.service != LOADGEN_SERVICE}
    server = [s for s in spans if s.kind == "SERVER" and s.service == "gateway"]
    remote = sum(1 for s in server if s.parent_span_id and s.parent_span_id not in ids)
    context = {"server_spans": len(server), "remote_parent": remote,
               "no_parent": sum(1 for s in server if not s.parent_span_id),
               "client_spans": sum(1 for s in spans if s.service == LOADGEN_SERVICE),
               "orphans": 0}
    cache: dict[str, dict[str, Any]] = {}
    for span in spans:
        attrs = span.attributes
        levels: Counter[str] = Counter()
        if "ecom.cache.level" in attrs:
            levels[str(attrs["ecom.cache.level"])] += 1
        for level in ("l1", "l2", "l3"):
            n = attrs.get(f"ecom.cache.{level}_count")
            if isinstance(n, int) and n > 0:
                levels[level] += n
        if levels:
            entry = cache.setdefault(span.service, {"requests": 0, "hits": 0,
                                                    "served_by": Counter()})
            entry["requests"] += sum(levels.values())
            entry["hits"] += sum(n for level, n in levels.items() if level != "l3")
            entry["served_by"].update(levels)
    for entry in cache.values():
        entry["hit_ratio"] = round(entry["hits"] / entry["requests"], 4)
        entry["served_by"] = dict(sorted(entry["served_by"].items()))
    operations: list[dict[str, Any]] = []
    traces = group_traces(spans) if spans else []
    if traces:
        analysis = analyze(traces).to_dict()
        context["orphans"] = sum(len(t.orphans) for t in traces if _of_the_load(t))
        operations = [op for op in analysis["operations"] if op["service"] != LOADGEN_SERVICE]
        attach_operation_exemplars(operations, traces)
    return ServerSide(trace_file, operations, context, dict(sorted(cache.items())),
                      network_queueing(spans, server, LOADGEN_SERVICE, CANCELLED), traces)


def _of_the_load(trace: Trace) -> bool:
    """A trace of this run's requests: it holds a gateway span. (A consumer that processes
    an event written before the run continues a trace whose parent is in an earlier
    capture: not a span this run lost.)"""
    return "gateway" in trace.services


def _endpoint_of(span: SpanRecord) -> str | None:
    """A request of the load generator (the root of its trace): its endpoint, by the name
    Locust gives it; None for any other span, or a request cut short by the end."""
    from ecomctl.telemetry.loadgen import CANCELLED, LOADGEN_SERVICE

    finished = span.service == LOADGEN_SERVICE and not span.attributes.get(CANCELLED)
    return span.name if finished and span.kind == "CLIENT" else None


def add_phase_exemplars(result: dict[str, Any], traces: list[Trace], origin_s: float) -> None:
    """The fault windows' phases, each percentile with the requests' traces behind it
    (``origin_s``: the unix time the run's timeline counts from)."""
    from ecomctl.analysis.exemplars import attach_phase_exemplars

    attach_phase_exemplars(result, traces, _endpoint_of, int(origin_s * 1e9))


@dataclass
class _ClientServer:
    client: LatencyHistogram = field(default_factory=LatencyHistogram)
    server: LatencyHistogram = field(default_factory=LatencyHistogram)
    gap: LatencyHistogram = field(default_factory=LatencyHistogram)
    unmatched: int = 0


def network_queueing(
    spans: Iterable[SpanRecord], server: Iterable[SpanRecord], client_service: str,
    cancelled: str = "",
) -> dict[str, dict[str, Any]]:
    """Per endpoint (the client span's name, ``METHOD /path`` as Locust names it): the
    client's and the server's latency of the same requests, and their difference per request,
    the time spent on the network and waiting in queues (sockets, the server's accept queue
    and event loop, the client's own greenlets). A client span is matched with the gateway
    server span in its trace whose parent it is; one without (refused before the gateway
    traced it, or lost) counts as ``unmatched``; one whose ``cancelled`` attribute is set
    (cut short by the end of the test: no full measure) is left out."""
    served = {s.parent_span_id: s for s in server if s.parent_span_id}
    table: dict[str, _ClientServer] = {}
    for span in spans:
        if (span.service != client_service or span.kind != "CLIENT"
                or (cancelled and span.attributes.get(cancelled))):
            continue
        entry = table.get(span.name)
        if entry is None:
            entry = table[span.name] = _ClientServer()
        answer = served.get(span.span_id)
        if answer is None or answer.trace_id != span.trace_id:
            entry.unmatched += 1
            continue
        entry.client.record_ns(span.duration_ns)
        entry.server.record_ns(answer.duration_ns)
        entry.gap.record_ns(max(0, span.duration_ns - answer.duration_ns))
    out: dict[str, dict[str, Any]] = {}
    for name, entry in sorted(table.items()):
        row: dict[str, Any] = {"count": entry.client.count, "unmatched": entry.unmatched}
        for label, histogram in (("client", entry.client), ("server", entry.server),
                                 ("network_queueing", entry.gap)):
            q = histogram.percentiles_us((50.0, 95.0)) if histogram.count else {}
            row[f"{label}_p50_ms"] = q[50.0] / 1000 if q else None
            row[f"{label}_p95_ms"] = q[95.0] / 1000 if q else None
        row["network_queueing_mean_ms"] = (round(entry.gap.mean_us / 1000, 3)
                                           if entry.gap.count else None)
        out[name] = row
    return out


# -- the document ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    profile: str | None
    locustfile: str
    shape: str | None
    users: int
    spawn_rate: float
    duration_s: float
    workers: int
    host: str
    gateway_started: bool
    pacing_s: float | None = None
    master: str | None = None
    """``host:port`` a master bound for workers started elsewhere (``load worker``)."""
    faults: tuple[str, ...] = ()
    fault_schedule: tuple[str, ...] = ()
    serve_workers: int | None = None
    """API processes of the gateway ecomctl started (None: an external gateway)."""


def build_result(
    merged: MergedLoad,
    config: LoadConfig,
    *,
    started_at: datetime,
    duration_s: float,
    server: ServerSide | None = None,
    invariants: list[dict[str, Any]] | None = None,
    drained: bool | None = None,
    locust_stats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The result document; ``duration_s`` is the runner's measure, used when the hdr files
    carry no load window."""
    window = merged.window_s or duration_s
    requests, failures = merged.requests, merged.failures
    journeys = sum(t.count for t in merged.journeys.values())
    result: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "kind": LOAD_RUN,
        "started_at": (datetime.fromtimestamp(merged.started_at, UTC)
                       if merged.started_at is not None else started_at).isoformat(),
        "duration_s": round(window, 3),
        "config": {
            "profile": config.profile, "locustfile": config.locustfile, "shape": config.shape,
            "users": config.users, "spawn_rate": config.spawn_rate,
            "duration_s": config.duration_s, "workers": config.workers, "host": config.host,
            "gateway": "started" if config.gateway_started else "external",
            "serve_workers": config.serve_workers,
            "pacing_s": config.pacing_s, "master": config.master,
            "arrival_rate_per_s": round(config.users / config.pacing_s, 3)
            if config.pacing_s else None,
            "latency_origin": merged.latency_origin,
            "faults": list(config.faults), "fault_schedule": list(config.fault_schedule),
        },
        "latency_origin": merged.latency_origin,
        "totals": {
            "requests": requests,
            "failures": failures,
            "error_rate": round(failures / requests, 4) if requests else 0.0,
            "rps": round(requests / window, 2) if window else 0.0,
            "journeys": journeys,
            "journey_failures": sum(t.failures for t in merged.journeys.values()),
            "checkouts": dict(merged.outcomes.get("checkout", {})),
        },
        "endpoints": {name: t.to_dict(window) for name, t in sorted(merged.endpoints.items())},
        "journeys": {name: t.to_dict() for name, t in sorted(merged.journeys.items())},
        "outcomes": {k: dict(v) for k, v in sorted(merged.outcomes.items())},
        "errors": dict(merged.errors.most_common()),
        "processes": merged.processes,
        "locust_stats": locust_stats,
    }
    if server is not None:
        from ecomctl.analysis.exemplars import attach_exemplars

        # The traces behind each endpoint's percentiles: the load generator's requests.
        attach_exemplars(result["endpoints"], server.traces, _endpoint_of)
        result.update({
            "spans": server.spans,
            "trace_context": server.trace_context,
            "cache": server.cache,
            "network_queueing": server.network_queueing,
            "trace_file": str(server.trace_file),
        })
    if drained is not None:
        result["drained"] = drained
    if invariants is not None:
        result["invariants"] = invariants
    result["ok"] = all(bool(i["ok"]) for i in invariants or [])
    return result
