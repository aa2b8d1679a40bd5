"""The result document of a run, versioned so CI scripts can rely on it.

Schema ``ecomctl.result/v1`` (``checkout simulate`` writes ``kind: "checkout-simulate"``;
``load run`` will share the family). Durations are milliseconds, money is a decimal string.

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

A latency summary is ``{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms",
"p99_ms", "p999_ms", "max_ms"}`` from HdrHistogram (3 significant figures). A phase is
``{"from_s", "to_s", "seconds", "count", "errors", "error_rate", "throughput_per_s",
"checkouts_per_s", "p50_ms", "p95_ms", "p99_ms", "targets": {journey or endpoint: {"count",
"errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"}}}``; ``load run`` writes the same
fault fields, its targets being endpoints. A window's phases (and their targets) also carry
``"exemplars": {rung: [{"trace_id", "duration_ms"}]}``, the traces behind their percentiles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The format's reader, validator and writer live in ecomctl.results (typed, by kind); these
# names stay for the producers and for code written against them.
from ecomctl.results.envelope import RESULT_SCHEMA
from ecomctl.results.envelope import SCHEMA_OF as _SCHEMA_OF
from ecomctl.results.files import read_document, write_result

__all__ = ["RESULT_SCHEMA", "read_result", "write_result"]


def read_result(path: Path, schemas: tuple[str, ...] = (RESULT_SCHEMA,)) -> dict[str, Any]:
    """A validated result document of one of ``schemas``, as plain JSON."""
    return read_document(path, tuple(k for k, s in _SCHEMA_OF.items() if s in schemas))
