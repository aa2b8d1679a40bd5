"""A load run over time: requests per second, and the fault windows cut into phases.

The seconds come from the Locust processes' final documents (``timeline`` in the hdr files,
by the unix second each request completed in); they are merged here, numbered from the
second the load started, and given to ``ecomctl.analysis.phases``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecomctl.analysis.phases import Tally, TimeBucket, fault_report
from ecomctl.faults.schedule import WindowRecord
from ecomctl.load.result import MergedLoad


def origin(merged: MergedLoad) -> int:
    """The unix second the timeline counts from."""
    if merged.started_at is not None:
        return int(merged.started_at)
    return min(merged.seconds, default=0)


def buckets(merged: MergedLoad) -> list[TimeBucket]:
    start = origin(merged)
    return [TimeBucket(t=second - start, count=tally.count, errors=tally.failures,
                       checkouts=tally.checkouts, encoded=tally.hdrs,
                       targets={name: Tally(e.count, e.failures, encoded=e.hdrs)
                                for name, e in tally.endpoints.items()})
            for second, tally in sorted(merged.seconds.items())]


def timeline_rows(seconds: Sequence[TimeBucket]) -> list[dict[str, Any]]:
    """One row per second, as ``checkout simulate``'s timeline (for plots)."""
    rows = []
    for bucket in seconds:
        summary = bucket.latency().summary()
        rows.append({"t": bucket.t, "requests": bucket.count, "errors": bucket.errors,
                     "checkouts": bucket.checkouts,
                     **{k: summary[k] for k in ("p50_ms", "p95_ms", "p99_ms")}})
    return rows


def add_timeline(result: dict[str, Any], merged: MergedLoad,
                 records: Sequence[WindowRecord]) -> dict[str, Any]:
    """``result`` with its per-second timeline and, when faults had windows, the phases."""
    seconds = buckets(merged)
    result["timeline"] = timeline_rows(seconds)
    windows = [r.to_dict(origin(merged)) for r in records]
    result.update(fault_report(seconds, windows, float(result["duration_s"])))
    return result
