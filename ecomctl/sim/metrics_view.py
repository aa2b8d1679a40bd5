"""Reading the in-process OpenTelemetry metrics back for the report: cache lookups by
service, level and result."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint


def cache_lookups(reader: InMemoryMetricReader) -> dict[str, dict[str, dict[str, int]]]:
    """{service: {level: {"hits": n, "misses": m}}} from the ``ecom.cache.lookups`` counter."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"hits": 0, "misses": 0})
    )
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != "ecom.cache.lookups":
                    continue
                for point in metric.data.data_points:
                    if not isinstance(point, NumberDataPoint):
                        continue
                    attrs: dict[str, Any] = dict(point.attributes or {})
                    cell = table[str(attrs.get("ecom.service"))][str(attrs.get("ecom.cache.level"))]
                    cell["hits" if attrs.get("ecom.cache.hit") else "misses"] += int(point.value)
    return {service: dict(levels) for service, levels in table.items()}


def with_ratios(lookups: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any]:
    """Hit ratio per level (hits over lookups at that level), and per service the share of
    requests served by a cache level at all: cache hits (any level but l3, the source of
    truth) over the lookups at the first level a request meets."""
    out: dict[str, Any] = {}
    for service, levels in sorted(lookups.items()):
        first = levels[min(levels)]
        requests = first["hits"] + first["misses"]
        cached = sum(cell["hits"] for level, cell in levels.items() if level != "l3")
        out[service] = {
            "requests": requests,
            "hit_ratio": round(cached / requests, 4) if requests else None,
            "levels": {
                level: {**cell, "hit_ratio": _ratio(cell["hits"], cell["misses"])}
                for level, cell in sorted(levels.items())
            },
        }
    return out


def _ratio(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None


def cache_totals(reader: InMemoryMetricReader) -> tuple[int, int]:
    """(cache hits, requests) over every service, cumulative: for the per-second timeline."""
    hits = requests = 0
    for summary in with_ratios(cache_lookups(reader)).values():
        requests += summary["requests"]
        hits += round((summary["hit_ratio"] or 0) * summary["requests"])
    return hits, requests
