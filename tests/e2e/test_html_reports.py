"""`ecomctl report --html` for each kind of result, opened in headless Chromium: no console
error, a page that is not blank, and every chart drawing data (marks with a size, and
coloured pixels where the chart is on the screenshot).

The results come from real runs: a short `checkout simulate`, a short `load run`, and the
quick bench this suite ran (`ECOMCTL_TEST_BENCH_OUT`, as .ci/run sets it); run alone, the
bench result is built by the bench's own document code, since a real bench takes minutes.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecomctl.reports.html import render_html_report
from ecomctl.results import BenchFigure, BenchMachine, BenchResult, BenchRowResult, read_result
from tests.e2e.chromium import BADGES_JS, Browser, PageReport, blank, colored_pixels, decode_png

BENCH_OUT_ENV = "ECOMCTL_TEST_BENCH_OUT"  # tests/e2e/test_bench.py writes it

TIMELINE_CHARTS = {"latency percentiles per second", "throughput and errors per second"}
CHARTS = {
    "simulate": {"latency percentile distribution per journey", "slowest trace waterfall",
                 *TIMELINE_CHARTS},
    "load": {"latency percentile distribution per endpoint",
             "latency percentile distribution per journey"},
    "bench": {"bench ratios against their targets"},
}


def _bench_result(path: Path) -> Path:
    real = os.environ.get(BENCH_OUT_ENV)
    if real and Path(real).is_file():
        return Path(real)
    row, figure = BenchRowResult.measured, BenchFigure.measured
    rows = [
        row("seed", "rows loaded per second", figure("pgbench -i", 640_000, "rows/s"),
            figure("ecomctl seed", 15_500, "rows/s"), 0.02),
        row("gateway", "cached GET /api/products/{id}", figure("bare app", 2_180, "requests/s"),
            figure("serve --workers 1", 560, "requests/s"), 0.5),
        row("consumer-lag", "p99 lag", figure("allowance", 1_000, "ms"),
            figure("slowest consumer", 240, "ms"), 1.0, lower_is_better=True),
    ]
    document = BenchResult.measured(
        rows, started_at="2024-05-01T10:00:00+00:00", quick=True, duration_s=91.5,
        machine=BenchMachine(cores=2, python="3.11.7", platform="Linux")).to_dict()
    path.write_text(json.dumps(document, indent=2))
    return path


def _ran(done: Any, out: Path) -> Path:
    """The run succeeded (the suite runs one thing at a time: the invariants hold) and wrote
    its result."""
    assert done.exit_code == 0 and out.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("html-reports")


def _simulate(ecomctl: Any, seeded: Path, out: Path) -> Path:
    done = ecomctl("checkout", "simulate", "--credentials", str(seeded), "--no-live",
                   "--shoppers", "6", "--duration", "8s", "--think-time", "0.05",
                   "--weights", "checkout=4", "--seed", "7",
                   "--trace-file", str(out / "simulate.otlp.jsonl"),
                   "--out", str(out / "simulate.json"))
    return _ran(done, out / "simulate.json")


def _load(ecomctl: Any, seeded: Path, out: Path) -> Path:
    done = ecomctl("load", "run", "--credentials", str(seeded), "--no-live", "--profile",
                   "mixed", "--users", "6", "--spawn-rate", "6", "--duration", "10s",
                   "--fault-schedule", "3s+4s:payment-slow=600", "--max-error-rate", "1",
                   "--out", str(out / "load.json"),
                   env={"ECOMCTL_TRACE_DIR": str(out / "traces")}, timeout=240)
    return _ran(done, out / "load.json")


def _bench(ecomctl: Any, seeded: Path, out: Path) -> Path:
    return _bench_result(out / "bench.json")


RUNS: dict[str, Callable[[Any, Path, Path], Path]] = {
    "simulate": _simulate, "load": _load, "bench": _bench}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Browser(tmp_path_factory.mktemp("chromium")) as running:
        yield running


def _check_page(page: PageReport, screenshot: Path) -> dict[str, dict[str, Any]]:
    """The checks every page passes; its charts by label."""
    screenshot.write_bytes(page.screenshot)  # kept beside the page, for people
    assert page.console_errors == [], page.console_errors
    image = decode_png(page.screenshot)
    assert (image.width, image.height) == (1280, page.height)
    assert not blank(image)
    charts = {c["label"]: c for c in page.charts}
    assert len(charts) == len(page.charts)  # one chart per label
    for label, chart in charts.items():
        assert chart["box"]["width"] > 300 and chart["box"]["height"] > 100, chart
        assert chart["marks"] > 0, f"{label}: no data drawn"
        assert colored_pixels(image, chart["box"]) > 50, f"{label}: nothing on screen"
    return charts


def _badges_on_one_line(browser: Browser, html: Path) -> list[str]:
    """The page's badges, each laid out on one line (not "O" above "K" in a narrow column)."""
    badges = browser.open(html, probe=BADGES_JS).charts
    wrapped = [b for b in badges if b["lines"] != 1]
    assert wrapped == [], wrapped
    return [b["text"] for b in badges]


@pytest.mark.parametrize("kind", [
    "simulate", pytest.param("load", marks=pytest.mark.long), "bench"])  # load: processes
def test_html_report_renders_in_chromium(
    ecomctl: Any, seeded: Path, out_dir: Path, browser: Browser, kind: str
) -> None:
    result = RUNS[kind](ecomctl, seeded, out_dir)
    html = result.parent / f"{kind}.html"
    document = json.loads(result.read_text())
    done = ecomctl("report", str(result), "--html", str(html))
    # A broken invariant exits 1 (after writing the page); a bench leaves its verdict to
    # `ecomctl gate check`.
    expected_exit = 0 if document["ok"] or kind == "bench" else 1
    assert done.exit_code == expected_exit, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"HTML report written to {html}" in " ".join(done.stderr.split())
    page = browser.open(html)
    charts = _check_page(page, html.with_suffix(".png"))
    assert _badges_on_one_line(browser, html)
    expected = set(CHARTS[kind])
    if kind == "load" and document.get("timeline"):  # newer load runs have one
        expected |= TIMELINE_CHARTS
    assert expected <= set(charts), sorted(charts)
    if kind == "bench":
        assert charts["bench ratios against their targets"]["marks"] == len(document["rows"])
    if kind != "bench":  # percentiles link to their traces, which are drawn in the page too
        page_html = html.read_text()
        assert page_html.count('class="exemplar"') > 10
        assert '<details class="exemplar-trace"' in page_html
    if kind == "load":  # the fault window: shaded behind the timeline, and its phases
        page_html = html.read_text()
        assert 'class="band-x"' in page_html and "payment-slow=600" in page_html
        assert 'id="faults"' in page_html
    # The terminal report of the same file names what the page shows.
    names = {"simulate": "business invariants", "load": "endpoints",
             "bench": document["rows"][0]["name"] if kind == "bench" else ""}
    assert names[kind] in done.stdout


@pytest.mark.parametrize("name", ["simulation", "load-run", "bench"])
def test_a_committed_results_badges_keep_one_line(
    browser: Browser, name: str, tmp_path: Path
) -> None:
    """The results in tests/fixtures/results (no run needed): the invariants' "OK" badges
    sit in a narrow first column beside long details, where they once wrapped."""
    packed = Path(__file__).parents[1] / "fixtures" / "results" / f"{name}.json.gz"
    document = tmp_path / f"{name}.json"
    with gzip.open(packed, "rt") as source:
        document.write_text(source.read())
    html = tmp_path / f"{name}.html"
    html.write_text(render_html_report(read_result(document)))
    texts = _badges_on_one_line(browser, html)
    assert ("yes" in texts or "no" in texts) if name == "bench" else "OK" in texts, texts


def test_the_browser_check_sees_console_errors_and_empty_charts(
    browser: Browser, tmp_path: Path
) -> None:
    """The harness itself: a broken SVG attribute and a script error are reported, and a
    chart with nothing drawn counts no marks (so the checks above can fail)."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><svg class="chart" aria-label="empty" width="400" '
        'height="200"><rect class="mark" width="-5" height="10"/></svg>'
        "<script>console.error('boom'); missingFunction();</script></body></html>")
    report = browser.open(page)
    text = " ".join(report.console_errors)
    assert "A negative value is not valid" in text and "boom" in text
    assert "uncaught" in text
    (chart,) = report.charts
    assert chart["marks"] == 0
    image = decode_png(report.screenshot)
    assert colored_pixels(image, chart["box"]) == 0
    # A badge in a column squeezed by long text beside it, without white-space:nowrap,
    # breaks between its letters: the badge check counts its two lines.
    squeezed = tmp_path / "squeezed.html"
    squeezed.write_text(
        '<!DOCTYPE html><html><head><style>td{overflow-wrap:anywhere}'
        '.badge{display:inline-block;padding:1px 8px}</style></head><body><table '
        'style="width:300px"><tr><td><span class="badge">OK</span></td><td>'
        + "a long detail " * 40 + "</td></tr></table></body></html>")
    (badge,) = browser.open(squeezed, probe=BADGES_JS).charts
    assert badge == {"text": "OK", "lines": 2}
