"""``checkout simulate``'s result (``ecomctl.result/v1``, kind ``checkout-simulate``): the
one description of the document. Durations are milliseconds, money is a decimal string;
latency summaries and fault phases are described in ``ecomctl.results.common``::

    {
      "schema": "ecomctl.result/v1",
      "kind": "checkout-simulate",
      "started_at": ISO-8601, "duration_s": float,
      "config": {"shoppers", "duration_s", "sessions", "think_time_s", "arrival_rate",
                 "seed", "via", "weights": {journey: weight}, "faults": ["name=value"],
                 "fault_schedule": ["20s+15s:payment-slow=800"],
                 "latency_origin": "intended start (open loop)" | "actual start",
                 "processes": int},      # shopper processes (--processes)
      "processes": [{"journeys", "errors", "checkouts", "run_s"}],  # with --processes > 1:
                                         # each shopper process; totals are their exact sum
      "totals": {"journeys", "errors", "error_rate", "throughput_per_s",
                 "checkouts": {"paid", "payment_declined", "payment_unknown"},
                 "checkouts_per_s"},
      "journeys": {name: {"count", "errors", <latency summary>, "hdr": base64}},
      "errors": {cause: count},
      "spans": [{"service", "name", "count", "errors", <latency summary>,
                 "total_ms", "self_ms"}],              # from the trace analysis
      "cache": {service: {"requests", "hit_ratio", "levels": {level: {"hits", "misses",
                                                                      "hit_ratio"}},
                          "tier": {...}}},      # product only: l2_skipped, redis_errors...
      "kafka": {"consumers": {name: {"processed", "duplicates", "failed", "malformed",
                                     "dead_lettered", "group",   # written to <topic>.dlq
                                     "dead_lettered_by_topic": {source topic: count},
                                     "lag": <summary, business commit -> processed>,
                                     "kafka_lag": <summary, published -> processed>}},
                "drain_s": float,    # after the run, until the outbox and consumers caught up
                "delivery": {"produced", "unpublished", "consumed": {consumer: n},
                             "lost": {consumer: n}, "analytics_miscounted": {type: n},
                             "duplicates_absorbed": {consumer: n}}},  # this run's events
      "fault_events": [{"backend", "action", "down_s", "restart_s", "recovered_s",
                        "connections_terminated"}],   # what --fault chaos did
      "db": {"queries_per_checkout": <summary of counts>},
      "timeline": [{"t", "journeys", "errors", "p50_ms", "p95_ms", "p99_ms",
                    "cache_hit_ratio", "checkouts"}],     # one entry per second
      # with --fault-schedule (ecomctl.analysis.phases; seconds from the run's start):
      "fault_windows": [{"fault", "scheduled_start_s", "scheduled_length_s",
                         "start_s", "end_s",             # as it happened (null: never)
                         "before", "during", "after": <phase>,
                         "recovery_s": float | null,     # null: p95 never came back
                         "recovery_of": "overall" | target, "slowed": [target]}],
      "phases": {"before", "during", "after": <phase>},  # over every window
      "recovery_s": float | null,                        # the slowest window's
      "trace_analysis": {...},        # ecomctl.analysis.report.TraceAnalysis.to_dict()
      "slowest_trace": {"journey", "trace_id", "duration_ms", "spans": [span dicts]},
      "trace_file": path of the OTLP JSON lines capture,
      "invariants": [{"name", "ok", "detail"}],
      "ok": bool                       # every invariant holds
    }

Typed here: the config, totals, journeys, span operations, the per-second timeline and the
invariants. Kept as the producer's JSON: cache (per service, per level), kafka, db, tracing,
trace_analysis, slowest_trace (span dicts), fault_events and processes.
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
class SimulationConfig(Record):
    shoppers: int
    via: str  # inprocess | http
    latency_origin: str
    duration_s: float | None = None  # None: --sessions
    sessions: int | None = None
    think_time_s: float | None = None
    arrival_rate: float | None = None  # None: closed loop
    seed: int | None = None
    weights: dict[str, Any] | None = None  # journey -> weight
    faults: list[str] | None = None  # "name=value"
    processes: int | None = None  # shopper processes (--processes)

    @classmethod
    def parse(cls, data: object, where: str) -> SimulationConfig:
        f = Fields(data, where)
        faults = f.raw_list("faults")
        return cls(shoppers=f.integer("shoppers"), via=f.text("via"),
                   latency_origin=f.text("latency_origin"),
                   duration_s=f.opt_number("duration_s"), sessions=f.opt_integer("sessions"),
                   think_time_s=f.opt_number("think_time_s"),
                   arrival_rate=f.opt_number("arrival_rate"), seed=f.opt_integer("seed"),
                   weights=f.raw_object("weights"),
                   faults=None if faults is None else [str(x) for x in faults],
                   processes=f.opt_integer("processes"), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            "shoppers": self.shoppers, "duration_s": self.duration_s, "sessions": self.sessions,
            "think_time_s": self.think_time_s, "arrival_rate": self.arrival_rate,
            "seed": self.seed, "via": self.via, "weights": self.weights, "faults": self.faults,
            "latency_origin": self.latency_origin, "processes": self.processes,
        }, optional=("duration_s", "sessions", "think_time_s", "arrival_rate", "seed",
                     "weights", "faults", "processes"))


@dataclass(kw_only=True)
class SimulationTotals(Record):
    journeys: int
    errors: int
    error_rate: float
    throughput_per_s: float  # journeys per second
    checkouts: dict[str, int] | None = None  # outcome -> count: paid, payment_declined...
    checkouts_per_s: float | None = None  # paid ones

    @classmethod
    def parse(cls, data: object, where: str) -> SimulationTotals:
        f = Fields(data, where)
        checkouts = f.counts("checkouts")
        return cls(journeys=f.integer("journeys"), errors=f.integer("errors"),
                   error_rate=f.number("error_rate"),
                   throughput_per_s=f.number("throughput_per_s"),
                   checkouts=checkouts, checkouts_per_s=f.opt_number("checkouts_per_s"),
                   **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            "journeys": self.journeys, "errors": self.errors, "error_rate": self.error_rate,
            "throughput_per_s": self.throughput_per_s, "checkouts": self.checkouts,
            "checkouts_per_s": self.checkouts_per_s,
        }, optional=("checkouts", "checkouts_per_s"))


@dataclass(kw_only=True)
class SimulationResult(Envelope):
    config: SimulationConfig
    totals: SimulationTotals
    journeys: dict[str, LatencyStats]
    invariants: list[Invariant]
    errors: dict[str, int] | None = None  # cause -> count
    spans: list[Operation] | None = None  # span operations, from the trace analysis
    cache: dict[str, Any] | None = None  # service -> {requests, hit_ratio, levels, tier}
    kafka: dict[str, Any] | None = None  # consumers, drain_s, delivery
    fault_events: list[dict[str, Any]] | None = None  # what --fault chaos did
    db: dict[str, Any] | None = None  # queries_per_checkout
    timeline: list[TimelinePoint] | None = None  # one point per second
    tracing: dict[str, Any] | None = None  # sampler, traces, spans, journeys_sampled,
    # service_instance_ids (the processes' series in the metrics backend)
    trace_analysis: dict[str, Any] | None = None  # TraceAnalysis.to_dict()
    slowest_trace: dict[str, Any] | None = None  # journey, trace_id, duration_ms, spans
    trace_file: str | None = None
    processes: list[dict[str, Any]] | None = None  # with --processes > 1
    fault_windows: list[FaultWindow] | None = None  # with --fault-schedule
    phases: dict[str, PhaseFigures] | None = None  # before, during, after every window
    recovery_s: float | None = None

    @classmethod
    def parse(cls, data: object, where: str = "") -> SimulationResult:
        f = Fields(data, where)
        common = cls.read_common(f)
        return cls(
            **common,
            config=f.record("config", SimulationConfig.parse),
            totals=f.record("totals", SimulationTotals.parse),
            journeys=f.record_map("journeys", LatencyStats.parse),
            invariants=f.records("invariants", Invariant.parse),
            errors=f.counts("errors"),
            spans=f.opt_records("spans", Operation.parse),
            cache=f.raw_object("cache"),
            kafka=f.raw_object("kafka"),
            fault_events=f.raw_list("fault_events"),
            db=f.raw_object("db"),
            timeline=f.opt_records("timeline", TimelinePoint.parse),
            tracing=f.raw_object("tracing"),
            trace_analysis=f.raw_object("trace_analysis"),
            slowest_trace=f.raw_object("slowest_trace"),
            trace_file=f.opt_text("trace_file"),
            processes=f.raw_list("processes"),
            fault_windows=f.opt_records("fault_windows", FaultWindow.parse),
            phases=read_phases(f),
            recovery_s=f.opt_number("recovery_s"),
            **f.rest(),
        )

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            **self.common(),
            "config": self.config.to_dict(),
            "totals": self.totals.to_dict(),
            "journeys": dump_map(self.journeys),
            "errors": self.errors,
            "spans": dump_list(self.spans),
            "cache": self.cache,
            "kafka": self.kafka,
            "fault_events": self.fault_events,
            "db": self.db,
            "timeline": dump_list(self.timeline),
            "tracing": self.tracing,
            "trace_analysis": self.trace_analysis,
            "slowest_trace": self.slowest_trace,
            "trace_file": self.trace_file,
            "invariants": dump_list(self.invariants),
            "ok": self.ok,
            "processes": self.processes,
            "fault_windows": dump_list(self.fault_windows),
            "phases": dump_map(self.phases),
            "recovery_s": self.recovery_s,
        }, optional=("errors", "spans", "cache", "kafka", "fault_events", "db", "timeline",
                     "tracing", "trace_analysis", "slowest_trace", "trace_file", "processes",
                     "fault_windows", "phases", "recovery_s"))

