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

The result document shares ``ecomctl.result/v1`` with ``checkout simulate`` (``kind:
"load-run"``); durations in milliseconds::

    {
      "schema": "ecomctl.result/v1", "kind": "load-run",
      "started_at": ISO-8601, "duration_s": float,          # the load window
      "config": {"profile", "locustfile", "shape", "users", "spawn_rate", "duration_s",
                 "workers", "host", "gateway": "started" | "external", "pacing_s",
                 "master": "host:port" | null,   # workers joined from `load worker`
                 "arrival_rate_per_s", "latency_origin"},
      "latency_origin": str,        # says whether coordinated omission was corrected
      "totals": {"requests", "failures", "error_rate", "rps", "journeys",
                 "journey_failures", "checkouts": {outcome: n}},
      "endpoints": {"METHOD /path": {"count", "errors", "rps", <latency summary>,
                                     "hdr": base64}},
      "journeys": {name: {"count", "errors", <latency summary>, "hdr"}},
      "outcomes": {kind: {outcome: n}},   # business results that are not failures
      "errors": {cause: n},              # failed requests by cause ("409 out_of_stock")
      "processes": [{"pid", "hostname", "worker_index", "requests", "failures", "final"}],
      "locust_stats": {"requests", "failures"} | null,   # Locust's own count, cross-check
      # only when ecomctl started the gateway itself:
      "spans": [...],               # ecomctl.analysis.report operations (server side)
      "trace_context": {"server_spans", "remote_parent", "no_parent"},
      "cache": {service: {"requests", "hits", "hit_ratio", "served_by": {level: n}}},
      "trace_file": path,
      "drained": bool,              # outbox and consumers caught up before the check
      "invariants": [{"name", "ok", "detail"}],
      "ok": bool                    # every invariant holds (true when none were checked)
    }

A latency summary is ``{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms",
"p99_ms", "p999_ms", "max_ms"}``. This module stays light: Locust processes import it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecomctl.analysis.histogram import LatencyHistogram

HDR_FORMAT = "ecomctl.load-hdr/1"
RESULT_SCHEMA = "ecomctl.result/v1"  # ecomctl.sim.result's, without importing the simulator
KIND = "load-run"

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
class MergedLoad:
    endpoints: dict[str, Tally] = field(default_factory=dict)
    journeys: dict[str, Tally] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    processes: list[dict[str, Any]] = field(default_factory=list)
    latency_origins: set[str] = field(default_factory=set)
    started_at: float | None = None
    stopped_at: float | None = None

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


def analyze_server_spans(trace_file: Path) -> ServerSide:
    """Operations (``ecomctl.analysis.report``), how many gateway server spans continued a
    caller's trace (``traceparent``), and cache hit ratios from the ``ecom.cache.*`` span
    attributes."""
    from ecomctl.analysis.readers import group_traces, read_file
    from ecomctl.analysis.report import analyze

    spans = read_file(trace_file) if trace_file.exists() else []
    ids = {s.span_id for s in spans}
    server = [s for s in spans if s.kind == "SERVER" and s.service == "gateway"]
    remote = sum(1 for s in server if s.parent_span_id and s.parent_span_id not in ids)
    context = {"server_spans": len(server), "remote_parent": remote,
               "no_parent": sum(1 for s in server if not s.parent_span_id)}
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
    operations = analyze(group_traces(spans)).to_dict()["operations"] if spans else []
    return ServerSide(trace_file, operations, context, dict(sorted(cache.items())))


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
        "kind": KIND,
        "started_at": (datetime.fromtimestamp(merged.started_at, UTC)
                       if merged.started_at is not None else started_at).isoformat(),
        "duration_s": round(window, 3),
        "config": {
            "profile": config.profile, "locustfile": config.locustfile, "shape": config.shape,
            "users": config.users, "spawn_rate": config.spawn_rate,
            "duration_s": config.duration_s, "workers": config.workers, "host": config.host,
            "gateway": "started" if config.gateway_started else "external",
            "pacing_s": config.pacing_s, "master": config.master,
            "arrival_rate_per_s": round(config.users / config.pacing_s, 3)
            if config.pacing_s else None,
            "latency_origin": merged.latency_origin,
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
        result.update({
            "spans": server.spans,
            "trace_context": server.trace_context,
            "cache": server.cache,
            "trace_file": str(server.trace_file),
        })
    if drained is not None:
        result["drained"] = drained
    if invariants is not None:
        result["invariants"] = invariants
    result["ok"] = all(bool(i["ok"]) for i in invariants or [])
    return result
