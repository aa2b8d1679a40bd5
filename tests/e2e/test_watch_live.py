"""Watching the shop live, as a user does: after a short simulation through the HTTP gateway,
Prometheus has a series for every chart of the dashboard (and its cache hit ratio is the
run's own), and in headless Chromium the trace UI shows a checkout trace across the
services and the dashboard draws every chart."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecomctl.analysis.readers import group_traces, load_spans
from ecomctl.config import Settings
from ecomctl.load.runner import free_port
from ecomctl.seed.vocabulary import DEPARTMENTS
from ecomctl.telemetry.dashboard import PANELS, WINDOW
from ecomctl.telemetry.links import dashboard_url, trace_url
from tests.e2e.chromium import Browser, blank, colored_pixels, decode_png
from tests.e2e.served import Served, pids_answering

pytestmark = pytest.mark.long  # several serve processes, load runs and Chromium (`pytest -m long`)

WAIT_S = 60.0  # for the collector's export, Prometheus' scrape and Zipkin's Kafka consumer
SERVICES = ("shopper", "gateway", "cart", "product", "checkout", "order", "inventory",
            "payment", "shipment", "analytics", "user", "search", "recommendation", "outbox")


@pytest.fixture(scope="module")
def simulated(ecomctl: Any, seeded: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("live") / "simulation.json"
    run = ecomctl("checkout", "simulate", "--via", "http", "--shoppers", "8", "--duration",
                  "20s", "--think-time", "0.2", "--credentials", str(seeded), "--weights",
                  "checkout=4,browse=3,search=2,recommendations=2,cart=2", "--no-live",
                  "--out", str(out))
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


@pytest.fixture(scope="module")
def settings_() -> Settings:
    return Settings.from_env()


def _query(settings: Settings, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{settings.metrics_url}/api/v1/query", params={"query": expr},
                       timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _finite(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in series if math.isfinite(float(s["value"][1]))]


def test_every_chart_of_the_dashboard_has_series_and_the_cache_ratio_is_the_runs(
    simulated: dict[str, Any], settings_: Settings
) -> None:
    deadline = time.monotonic() + WAIT_S
    empty = [p.key for p in PANELS]
    while empty and time.monotonic() < deadline:
        empty = [p.key for p in PANELS if not _finite(_query(settings_, p.expr))]
        time.sleep(2)
    assert not empty, f"charts without a finite series in Prometheus: {empty}"

    # The dashboard's cache hit ratio since the process started, for this run's process
    # (others of the last minutes may still have series), against the run's own count of
    # every lookup. And the last minute's chart, over a window covering the run.
    (instance,) = simulated["tracing"]["service_instance_ids"]
    mine = f'ecom_cache_lookups_total{{service_instance_id="{instance}",'
    since_start = next(p for p in PANELS if p.key == "cache_since_start").expr.replace(
        "ecom_cache_lookups_total{", mine).replace(
        "ecom_cache_lookups_total)", mine.rstrip(",") + "})")
    report = {(service, level): figures["hit_ratio"]
              for service, cache in simulated["cache"].items()
              for level, figures in cache["levels"].items() if figures["hit_ratio"] is not None}

    def live_ratios() -> dict[tuple[str, str], float]:
        return {(s["metric"]["ecom_service"], s["metric"]["ecom_cache_level"]):
                float(s["value"][1]) for s in _finite(_query(settings_, since_start))}

    def off(live: dict[tuple[str, str], float]) -> list[tuple[Any, ...]]:
        return [(key, live.get(key), ratio) for key, ratio in report.items()
                if key not in live or abs(live[key] - ratio) > 0.02]

    # The process's last export (at its shutdown) reaches the dashboard at the next scrape:
    # until then Prometheus holds the counts of a few seconds before the run's end.
    live, deadline = live_ratios(), time.monotonic() + WAIT_S
    while off(live) and time.monotonic() < deadline:
        time.sleep(2)
        live = live_ratios()
    assert not off(live), (off(live), report, live)
    chart = next(p for p in PANELS if p.key == "cache_hit_ratio").expr.replace(
        f"[{WINDOW}]", f"[{math.ceil(simulated['duration_s']) + 60}s]")
    assert {(s["metric"]["ecom_service"], s["metric"]["ecom_cache_level"])
            for s in _finite(_query(settings_, chart))} >= set(report)


def _checkout_trace(doc: dict[str, Any]) -> tuple[str, int]:
    """The run's checkout journey whose trace crosses the most services."""
    traces = group_traces(load_spans(doc["trace_file"], service=None, limit=0))
    checkouts = [t for t in traces
                 if any(s.parent_span_id is None and s.name == "journey.checkout"
                        for s in t.spans)]
    assert checkouts, "no checkout journey was traced"
    best = max(checkouts, key=lambda t: len({s.service for s in t.spans}))
    return best.trace_id, len({s.service for s in best.spans})


def _artefacts(tmp_path: Path) -> Path:
    """Where screenshots are kept for people to look at (CI keeps .ci/out)."""
    directory = Path(os.environ.get("ECOMCTL_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


_SERVICES_SHOWN = f"""
(() => {{
  const text = document.body.innerText;
  return {json.dumps(list(SERVICES))}.filter(s => text.includes(s + ': '));
}})()
"""

_PANELS_DRAWN = """
JSON.parse(JSON.stringify(Array.from(document.querySelectorAll('div.panel')).map(panel => {
  const chart = panel.querySelector('.chart');
  const box = chart.getBoundingClientRect();
  return {id: panel.id, text: panel.innerText, table: chart.tagName === 'TABLE',
          rows: chart.querySelectorAll('tr').length,
          lines: Array.from(chart.querySelectorAll('svg path')).filter(
            p => (p.getAttribute('d') || '').length > 10).length,
          box: {x: box.left + window.scrollX, y: box.top + window.scrollY,
                width: box.width, height: box.height}};
})))
"""

_ALL_DRAWN = """
Array.from(document.querySelectorAll('div.panel div.chart')).every(
  c => c.querySelector('svg path') || c.innerText.includes('No timeseries'))
&& document.querySelectorAll('div.panel').length > 0
"""


def test_the_trace_ui_and_the_dashboard_in_chromium(
    simulated: dict[str, Any], settings_: Settings, tmp_path: Path
) -> None:
    trace_id, services = _checkout_trace(simulated)
    assert services >= 6, services
    deadline = time.monotonic() + WAIT_S
    while httpx.get(f"{settings_.trace_ui_url}/api/v2/trace/{trace_id}",
                    timeout=10).status_code != 200:
        assert time.monotonic() < deadline, f"trace {trace_id} never reached the trace UI"
        time.sleep(1)
    artefacts = _artefacts(tmp_path)
    with Browser(tmp_path / "chromium") as browser:
        trace_page = browser.open(trace_url(settings_, trace_id),
                                  ready="document.body.innerText.includes('Total Spans')",
                                  probe=_SERVICES_SHOWN)
        dashboard = browser.open(dashboard_url(settings_), ready=_ALL_DRAWN,
                                 probe=_PANELS_DRAWN)
    (artefacts / "trace-ui.png").write_bytes(trace_page.screenshot)
    (artefacts / "dashboard.png").write_bytes(dashboard.screenshot)

    assert trace_page.console_errors == [], trace_page.console_errors
    assert len(trace_page.charts) >= 6, trace_page.charts  # services with spans shown
    assert not blank(decode_png(trace_page.screenshot))

    assert dashboard.console_errors == [], dashboard.console_errors
    assert [p["id"] for p in dashboard.charts] == [f"panel-{p.key}" for p in PANELS]
    image = decode_png(dashboard.screenshot)
    for panel in dashboard.charts:
        assert "No timeseries" not in panel["text"], panel
        if panel["table"]:
            assert panel["rows"] >= 2, panel  # the header and a series
        else:
            assert panel["lines"] >= 1, panel
            assert colored_pixels(image, panel["box"]) > 0, panel


_EXEMPLAR_LINKS = """
JSON.parse(JSON.stringify(Array.from(document.querySelectorAll('#latency a.exemplar')).map(
  a => ({href: a.href, trace: a.dataset.trace, ms: parseFloat(a.dataset.ms),
         lo: parseFloat(a.dataset.lo), hi: parseFloat(a.dataset.hi),
         row: a.closest('tr').cells[0].innerText,
         column: a.closest('table').tHead.rows[0].cells[a.closest('td').cellIndex].innerText})
)))
"""


def test_the_html_report_links_its_percentiles_to_traces_in_their_bucket(
    ecomctl: Any, simulated: dict[str, Any], settings_: Settings, tmp_path: Path
) -> None:
    result, page = tmp_path / "simulation.json", tmp_path / "report.html"
    result.write_text(json.dumps(simulated))
    written = ecomctl("report", str(result), "--html", str(page))
    assert written.exit_code == 0, written.stderr[-2000:]
    with Browser(tmp_path / "chromium") as browser:
        report = browser.open(page, probe=_EXEMPLAR_LINKS)
        links = report.charts
        assert report.console_errors == [], report.console_errors
        columns = {link["column"] for link in links}
        assert {"p50", "p99", "max"} <= columns, columns
        assert all(link["href"].startswith(settings_.trace_ui_url) for link in links)
        # The slowest journey's p99: the link to follow.
        slow = max((link for link in links if link["column"] == "p99"),
                   key=lambda link: link["ms"])
        shown = browser.open(slow["href"],
                             ready="document.body.innerText.includes('Total Spans')",
                             probe="document.body.innerText")
    assert slow["trace"] in shown.charts.replace("-", "")
    spans = httpx.get(f"{settings_.trace_ui_url}/api/v2/trace/{slow['trace']}",
                      timeout=10).json()
    (root,) = [s for s in spans if "parentId" not in s]
    root_ms = root["duration"] / 1000  # Zipkin keeps microseconds
    assert slow["lo"] - 0.001 < root_ms <= slow["hi"] + 0.001, (root_ms, slow)
    assert root["name"] == f"journey.{slow['row']}"


Counts = dict[tuple[tuple[str, str], ...], float]


def _gateway_requests(settings: Settings, settled: bool = False) -> Counts:
    """Requests the gateway served, per series, as Prometheus has them (the RED metrics the
    collector derives from the gateway's server spans); ``settled``: read until the last
    spans are flushed, turned into metrics and scraped (the count stops)."""
    def now() -> Counts:
        series = _query(settings, 'traces_span_metrics_calls_total{service_name="gateway",'
                                  'span_kind="SPAN_KIND_SERVER"}')
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in series}

    if not settled:
        return now()
    deadline, counts, previous = time.monotonic() + WAIT_S, now(), None
    while time.monotonic() < deadline and (
            previous is None or _served_since(previous, counts) > 0):
        time.sleep(8)
        previous, counts = counts, now()
    return counts


def _served_since(before: Counts, now: Counts) -> float:
    """What the counters grew by, as ``increase`` would count it: a series the collector let
    expire (2 minutes without a span) and started again counts from zero, not negative."""
    return sum(value - before.get(key, 0.0) if value >= before.get(key, 0.0) else value
               for key, value in now.items())


def test_two_api_processes_have_their_own_series_and_the_dashboard_adds_them_up(
    ecomctl: Any, seeded: Path, serving: list[Served], settings_: Settings, tmp_path: Path,
    record_property: Any,
) -> None:
    port = free_port()
    parent = Served("--workers", "2", "--port", str(port))
    serving.append(parent)
    parent.wait_for("(2 api processes, events, payment gateway")
    url = f"http://127.0.0.1:{port}"
    api = pids_answering(url)
    assert len(api) == 2
    # Spans of earlier tests still on their way (batched, flushed, scraped) count before.
    before = _gateway_requests(settings_, settled=True)

    out = tmp_path / "load.json"
    load = ecomctl("load", "run", "--host", url, "--profile", "mixed", "--users", "8",
                   "--spawn-rate", "8", "--duration", "20s", "--credentials", str(seeded),
                   "--no-live", "--out", str(out))
    assert load.exit_code == 0, load.stdout[-3000:] + load.stderr[-3000:]
    # What Locust measured, and the catalogue discovery each Locust process makes before
    # the load (one search per department, not part of Locust's figures).
    requests = json.loads(out.read_text())["totals"]["requests"] + len(DEPARTMENTS)

    served = _served_since(before, _gateway_requests(settings_, settled=True))
    record_property("locust_requests", requests)
    record_property("dashboard_requests", served)
    assert abs(served - requests) <= 0.05 * requests, (served, requests)

    host = socket.gethostname()
    instances = {s["metric"]["service_instance_id"] for s in _query(
        settings_, 'ecom_wait_seconds_count{ecom_resource="postgres_pool"}')}
    assert {f"{host}-{pid}" for pid in api} <= instances, (api, instances)
