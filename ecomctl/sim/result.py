"""The result document of a run, versioned so CI scripts can rely on it.

Schema ``ecomctl.result/v1`` (``checkout simulate`` writes ``kind: "checkout-simulate"``;
``load run`` will share the family). Durations are milliseconds, money is a decimal string.

    {
      "schema": "ecomctl.result/v1",
      "kind": "checkout-simulate",
      "started_at": ISO-8601, "duration_s": float,
      "config": {"shoppers", "duration_s", "sessions", "think_time_s", "arrival_rate",
                 "seed", "via", "weights": {journey: weight}, "faults": ["name=value"],
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
                    "cache_hit_ratio"}],                  # one entry per second
      "trace_analysis": {...},        # ecomctl.analysis.report.TraceAnalysis.to_dict()
      "slowest_trace": {"journey", "trace_id", "duration_ms", "spans": [span dicts]},
      "trace_file": path of the OTLP JSON lines capture,
      "invariants": [{"name", "ok", "detail"}],
      "ok": bool                       # every invariant holds
    }

A latency summary is ``{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms",
"p99_ms", "p999_ms", "max_ms"}`` from HdrHistogram (3 significant figures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecomctl.errors import ConfigError

RESULT_SCHEMA = "ecomctl.result/v1"


def write_result(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(path)


def read_result(path: Path, schemas: tuple[str, ...] = (RESULT_SCHEMA,)) -> dict[str, Any]:
    """A result document of one of ``schemas`` (``gate check`` also takes bench results)."""
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such result file") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a JSON result file ({exc})") from exc
    if not isinstance(result, dict) or result.get("schema") not in schemas:
        raise ConfigError(f"{path}: not an ecomctl result ({' or '.join(schemas)} expected)")
    return result
