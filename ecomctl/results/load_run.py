"""``load run``'s result (``ecomctl.result/v1``, kind ``load-run``): the one description of
the document. Durations in milliseconds; latency summaries and fault phases are described in
``ecomctl.results.common``::

    {
      "schema": "ecomctl.result/v1", "kind": "load-run",
      "started_at": ISO-8601, "duration_s": float,          # the load window
      "config": {"profile", "locustfile", "shape", "users", "spawn_rate", "duration_s",
                 "workers", "host", "gateway": "started" | "external",
                 "serve_workers",                # API processes of a started gateway
                 "pacing_s", "master": "host:port" | null,   # from `load worker`
                 "arrival_rate_per_s", "latency_origin", "faults", "fault_schedule"},
      "latency_origin": str,        # says whether coordinated omission was corrected
      "totals": {"requests", "failures", "error_rate", "rps", "journeys",
                 "journey_failures", "checkouts": {outcome: n}},
      "endpoints": {"METHOD /path": {"count", "errors", "rps", <latency summary>,
                                     "hdr": base64}},
      "journeys": {name: {"count", "errors", <latency summary>, "hdr"}},
      "outcomes": {kind: {outcome: n}},   # business results that are not failures
      "errors": {cause: n},              # failed requests by cause ("409 out_of_stock")
      "processes": [{"pid", "hostname", "worker_index", "requests", "failures", "final"}],
      "timeline": [{"t", "requests", "errors", "checkouts", "p50_ms", "p95_ms", "p99_ms"}],
      "fault_windows", "phases", "recovery_s",   # with --fault-schedule (results.common)
      "locust_stats": {"requests", "failures"} | null,   # Locust's own count, cross-check
      # only when ecomctl started the gateway itself:
      "spans": [...],               # ecomctl.analysis.report operations (server side)
      "trace_context": {"server_spans", "remote_parent", "no_parent",
                        "client_spans",  # the Locust requests' own spans (service loadgen)
                        "orphans"},      # spans of the load's traces whose parent
                                         # is not in the capture
      # per endpoint, each request's client span against the gateway's server span of it
      # (matched by trace id and parent): client - server = network + queueing time
      "network_queueing": {"METHOD /path": {"count", "unmatched", "client_p50_ms",
                           "client_p95_ms", "server_p50_ms", "server_p95_ms",
                           "network_queueing_p50_ms", "network_queueing_p95_ms",
                           "network_queueing_mean_ms"}},
      "cache": {service: {"requests", "hits", "hit_ratio", "served_by": {level: n}}},
      "trace_file": path,
      "drained": bool,              # outbox and consumers caught up before the check
      "invariants": [{"name", "ok", "detail"}],
      "ok": bool                    # every invariant holds (true when none were checked)
    }

Typed here: the config, totals, endpoints, journeys, span operations and invariants. Kept
as the producer's JSON: locust_stats, trace_context, cache and processes. Fields added to an
endpoint (client and server side latency, say) are kept in its ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomctl.results.common import (
    FaultWindow,
    Invariant,
    LatencyStats,
    Operation,
    PhaseFigures,
    TimelinePoint,
    read_phases,
)
from ecomctl.results.envelope import Envelope
from ecomctl.results.fields import Fields, Record, dump_list, dump_map


@dataclass(kw_only=True)
class LoadRunConfig(Record):
    locustfile: str
    users: int
    host: str
    profile: str | None = None  # None: the user's own --locustfile
    shape: str | None = None
    spawn_rate: float | None = None
    duration_s: float | None = None
    workers: int | None = None
    gateway: str | None = None  # started | external
    serve_workers: int | None = None  # API processes of a started gateway
    pacing_s: float | None = None
    master: str | None = None  # host:port when workers joined from `load worker`
    arrival_rate_per_s: float | None = None
    latency_origin: str | None = None

    @classmethod
    def parse(cls, data: object, where: str) -> LoadRunConfig:
        f = Fields(data, where)
        return cls(locustfile=f.text("locustfile"), users=f.integer("users"),
                   host=f.text("host"), profile=f.opt_text("profile"),
                   shape=f.opt_text("shape"), spawn_rate=f.opt_number("spawn_rate"),
                   duration_s=f.opt_number("duration_s"), workers=f.opt_integer("workers"),
                   gateway=f.opt_text("gateway"), serve_workers=f.opt_integer("serve_workers"),
                   pacing_s=f.opt_number("pacing_s"),
                   master=f.opt_text("master"),
                   arrival_rate_per_s=f.opt_number("arrival_rate_per_s"),
                   latency_origin=f.opt_text("latency_origin"), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            "profile": self.profile, "locustfile": self.locustfile, "shape": self.shape,
            "users": self.users, "spawn_rate": self.spawn_rate, "duration_s": self.duration_s,
            "workers": self.workers, "host": self.host, "gateway": self.gateway,
            "serve_workers": self.serve_workers, "pacing_s": self.pacing_s, "master": self.master,
            "arrival_rate_per_s": self.arrival_rate_per_s,
            "latency_origin": self.latency_origin,
        }, optional=("profile", "shape", "spawn_rate", "duration_s", "workers", "gateway",
                     "serve_workers", "pacing_s", "master", "arrival_rate_per_s", "latency_origin"))


@dataclass(kw_only=True)
class LoadRunTotals(Record):
    requests: int
    failures: int
    error_rate: float
    rps: float
    journeys: int | None = None
    journey_failures: int | None = None
    checkouts: dict[str, int] | None = None  # outcome -> count

    @classmethod
    def parse(cls, data: object, where: str) -> LoadRunTotals:
        f = Fields(data, where)
        return cls(requests=f.integer("requests"), failures=f.integer("failures"),
                   error_rate=f.number("error_rate"), rps=f.number("rps"),
                   journeys=f.opt_integer("journeys"),
                   journey_failures=f.opt_integer("journey_failures"),
                   checkouts=f.counts("checkouts"), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            "requests": self.requests, "failures": self.failures,
            "error_rate": self.error_rate, "rps": self.rps, "journeys": self.journeys,
            "journey_failures": self.journey_failures, "checkouts": self.checkouts,
        }, optional=("journeys", "journey_failures", "checkouts"))


@dataclass(kw_only=True)
class LoadRunResult(Envelope):
    config: LoadRunConfig
    totals: LoadRunTotals
    endpoints: dict[str, LatencyStats]  # "METHOD /path"
    latency_origin: str | None = None  # whether coordinated omission was corrected
    journeys: dict[str, LatencyStats] | None = None
    outcomes: dict[str, dict[str, Any]] | None = None  # kind -> outcome -> count
    errors: dict[str, int] | None = None  # failed requests by cause
    processes: list[dict[str, Any]] | None = None  # one per Locust process
    locust_stats: dict[str, Any] | None = None  # Locust's own count, a cross-check
    # Only when ecomctl started the gateway itself:
    spans: list[Operation] | None = None
    trace_context: dict[str, Any] | None = None  # server_spans, remote_parent, no_parent
    cache: dict[str, Any] | None = None  # service -> requests, hits, hit_ratio, served_by
    # endpoint -> client and server p50/p95 of the same requests, and their difference
    network_queueing: dict[str, Any] | None = None
    trace_file: str | None = None
    drained: bool | None = None  # outbox and consumers caught up before the check
    invariants: list[Invariant] | None = None  # None: none were checked
    timeline: list[TimelinePoint] | None = None  # requests completed per second
    fault_windows: list[FaultWindow] | None = None  # with --fault-schedule
    phases: dict[str, PhaseFigures] | None = None  # before, during, after every window
    recovery_s: float | None = None

    @classmethod
    def parse(cls, data: object, where: str = "") -> LoadRunResult:
        f = Fields(data, where)
        return cls(
            **cls.read_common(f),
            config=f.record("config", LoadRunConfig.parse),
            latency_origin=f.opt_text("latency_origin"),
            totals=f.record("totals", LoadRunTotals.parse),
            endpoints=f.record_map("endpoints", LatencyStats.parse),
            journeys=f.opt_record_map("journeys", LatencyStats.parse),
            outcomes=f.raw_object("outcomes"),
            errors=f.counts("errors"),
            processes=f.raw_list("processes"),
            locust_stats=f.raw_object("locust_stats"),
            spans=f.opt_records("spans", Operation.parse),
            trace_context=f.raw_object("trace_context"),
            cache=f.raw_object("cache"),
            network_queueing=f.raw_object("network_queueing"),
            trace_file=f.opt_text("trace_file"),
            drained=f.opt_boolean("drained"),
            invariants=f.opt_records("invariants", Invariant.parse),
            timeline=f.opt_records("timeline", TimelinePoint.parse),
            fault_windows=f.opt_records("fault_windows", FaultWindow.parse),
            phases=read_phases(f),
            recovery_s=f.opt_number("recovery_s"),
            **f.rest(),
        )

    @property
    def server_side(self) -> bool:
        """Whether ecomctl started the gateway and so has its spans (and the invariants)."""
        return self.spans is not None

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            **self.common(),
            "config": self.config.to_dict(),
            "latency_origin": self.latency_origin,
            "totals": self.totals.to_dict(),
            "endpoints": dump_map(self.endpoints),
            "journeys": dump_map(self.journeys),
            "outcomes": self.outcomes,
            "errors": self.errors,
            "processes": self.processes,
            "locust_stats": self.locust_stats,
            "spans": dump_list(self.spans),
            "trace_context": self.trace_context,
            "cache": self.cache,
            "network_queueing": self.network_queueing,
            "trace_file": self.trace_file,
            "drained": self.drained,
            "invariants": dump_list(self.invariants),
            "timeline": dump_list(self.timeline),
            "fault_windows": dump_list(self.fault_windows),
            "phases": dump_map(self.phases),
            "recovery_s": self.recovery_s,
            "ok": self.ok,
        }, optional=("latency_origin", "journeys", "outcomes", "errors", "processes",
                     "locust_stats", "spans", "trace_context", "cache", "network_queueing",
                     "timeline", "fault_windows", "phases", "recovery_s", "trace_file",
                     "drained", "invariants"))
