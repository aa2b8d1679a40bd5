"""The shop's live dashboard: the Prometheus queries behind each chart, defined once.

Prometheus (``stack/backends/prometheus.py``) serves them as a console page; ``ecomctl stack open
metrics`` prints its address; the tests run every query against the live Prometheus.

Where the series come from: ``traces_span_metrics_*`` are RED metrics the collector derives
from the spans (its spanmetrics connector: calls and duration per service, span name, kind
and status); ``ecom_*`` are what only the processes know (cache lookups per tier, checkout
outcomes, Kafka lag, waits for a password-hash slot or a database connection), exported
over OTLP every few seconds with ``service.instance.id`` so processes never collide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CONSOLE = "ecomctl.html"
"""The console page's file name (``/consoles/ecomctl.html``)."""
WINDOW = "1m"
"""The rate window of the charts: a few scrapes wide, short enough to follow a run."""

_CALLS = "traces_span_metrics_calls_total"
_DURATION = "traces_span_metrics_duration_milliseconds_bucket"
_SERVER = 'span_kind="SPAN_KIND_SERVER"'


def _hit_ratio(lookups: Callable[[str], str]) -> str:
    """Hits over lookups per service and tier; ``lookups(matcher)`` is the lookups' series
    with a label matcher (``{...}`` or nothing). A tier without a hit shows 0, not no line."""
    by = "sum by (ecom_service, ecom_cache_level)"
    hits, every = lookups('{ecom_cache_hit="true"}'), lookups("")
    return f"({by} ({hits}) or {by} ({every}) * 0) / {by} ({every})"


@dataclass(frozen=True)
class Panel:
    """One chart (or, ``table``, one table of the latest values): a title, a PromQL
    expression, what a series is called (Prometheus' console ``name`` template over the
    series' labels: ``[[ label ]]``) and the unit of its values."""

    key: str
    title: str
    expr: str
    legend: str
    unit: str
    table: bool = False


PANELS: tuple[Panel, ...] = (
    # rate() cannot count what happened before a series' first scrape, so early in a run
    # the charts' cache ratio leaves out the coldest seconds; this table counts every lookup
    # since each process started (the run's own report counts the same).
    Panel("cache_since_start", "Cache hit ratio since each process started, by service and "
          "tier", _hit_ratio(lambda matcher: f"ecom_cache_lookups_total{matcher}"),
          "[[ ecom_service ]] [[ ecom_cache_level ]]", "ratio", table=True),
    Panel("gateway_requests", "Requests per second at the HTTP gateway, by route",
          f"sum by (span_name) (rate({_CALLS}{{service_name=\"gateway\",{_SERVER}}}[{WINDOW}]))",
          "[[ span_name ]]", "req/s"),
    Panel("service_rate", "Operations per second by service (its spans)",
          f"sum by (service_name) (rate({_CALLS}[{WINDOW}]))",
          "[[ service_name ]]", "ops/s"),
    Panel("service_p95", "p95 latency by service (its spans)",
          f"histogram_quantile(0.95, sum by (service_name, le) "
          f"(rate({_DURATION}[{WINDOW}])))",
          "[[ service_name ]]", "ms"),
    Panel("error_rate", "Error rate by service (share of its spans in error)",
          # A service without errors shows 0, not no line at all.
          f"(sum by (service_name) (rate({_CALLS}{{status_code=\"STATUS_CODE_ERROR\"}}"
          f"[{WINDOW}])) or sum by (service_name) (rate({_CALLS}[{WINDOW}])) * 0) "
          f"/ sum by (service_name) (rate({_CALLS}[{WINDOW}]))",
          "[[ service_name ]]", "ratio"),
    Panel("cache_hit_ratio", "Cache hit ratio by service and tier (l1 in-process, l2 Redis, "
          "l3 PostgreSQL)",
          _hit_ratio(lambda matcher: f"rate(ecom_cache_lookups_total{matcher}[{WINDOW}])"),
          "[[ ecom_service ]] [[ ecom_cache_level ]]", "ratio"),
    Panel("consumer_lag", "Kafka consumer lag by consumer group",
          "sum by (ecom_consumer) (ecom_kafka_consumer_lag)",
          "[[ ecom_consumer ]]", "messages"),
    Panel("event_age_p95", "p95 event age when consumed (from publication)",
          f"histogram_quantile(0.95, sum by (ecom_consumer, le) "
          f"(rate(ecom_consumer_lag_seconds_bucket[{WINDOW}])))",
          "[[ ecom_consumer ]]", "s"),
    Panel("checkouts", "Checkouts per second by outcome",
          f"sum by (ecom_outcome) (rate(ecom_checkouts_total[{WINDOW}]))",
          "[[ ecom_outcome ]]", "checkouts/s"),
    Panel("waits", "p95 wait for a password-hash slot and a database connection",
          f"histogram_quantile(0.95, sum by (ecom_resource, le) "
          f"(rate(ecom_wait_seconds_bucket[{WINDOW}])))",
          "[[ ecom_resource ]]", "s"),
)


_GRAFANA_UNITS = {"ratio": "percentunit", "ms": "ms", "s": "s", "req/s": "reqps",
                  "ops/s": "ops", "messages": "short", "checkouts/s": "short"}


def grafana_dashboard() -> dict[str, Any]:
    """The same panels as a Grafana dashboard (compose.yaml provisions it), on a data source
    with the uid ``prometheus``."""
    panels = []
    for i, panel in enumerate(PANELS):
        legend = re.sub(r"\[\[ *(\w+) *\]\]", r"{{\1}}", panel.legend)
        panels.append({
            "id": i + 1,
            "type": "table" if panel.table else "timeseries",
            "title": panel.title,
            "gridPos": {"x": 12 * (i % 2), "y": 8 * (i // 2), "w": 12, "h": 8},
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "fieldConfig": {"defaults": {"unit": _GRAFANA_UNITS.get(panel.unit, "short")},
                            "overrides": []},
            "targets": [{"refId": "A", "expr": panel.expr, "legendFormat": legend,
                         "instant": panel.table, "range": not panel.table}],
        })
    return {"uid": "ecomctl", "title": "ecomctl: the shop, live", "schemaVersion": 39,
            "time": {"from": "now-15m", "to": "now"}, "refresh": "5s", "editable": True,
            "panels": panels}
