"""Result files an earlier ecomctl wrote still read, render and gate.

``tests/fixtures/results/*.json.gz`` were written by ecomctl at commit 58d64e3 (2026-12-07,
before the result records became the producers' return type): a ``checkout simulate`` and a
``load run`` with a fault window each, and a ``bench --quick``; compressed, unchanged.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ecomctl.cli.render_result import render_result
from ecomctl.gates import evaluate, load_gates, parse_gates
from ecomctl.reports.html import render_html_report
from ecomctl.resources import fixtures_dir
from ecomctl.results import (
    BenchResult,
    LoadRunResult,
    SimulationResult,
    read_result,
    write_result,
)

OLD = Path(__file__).parents[1] / "fixtures" / "results"
KINDS = {"simulation": SimulationResult, "load-run": LoadRunResult, "bench": BenchResult}


def _unpacked(name: str, into: Path) -> tuple[Path, dict[str, Any]]:
    path = into / f"{name}.json"
    with gzip.open(OLD / f"{name}.json.gz", "rt") as packed:
        document = json.load(packed)
    path.write_text(json.dumps(document, indent=2))
    return path, document


@pytest.mark.parametrize("name", sorted(KINDS))
def test_an_earlier_result_reads_as_its_record_and_writes_back_unchanged(
    name: str, tmp_path: Path
) -> None:
    path, document = _unpacked(name, tmp_path)
    result = read_result(path)
    assert isinstance(result, KINDS[name])
    assert result.to_dict() == document
    write_result(result, tmp_path / "copy.json")
    assert json.loads((tmp_path / "copy.json").read_text()) == document


@pytest.mark.parametrize("name", ["simulation", "load-run"])
def test_an_earlier_runs_fault_window_reads_typed(name: str, tmp_path: Path) -> None:
    path, _ = _unpacked(name, tmp_path)
    result = read_result(path)
    assert isinstance(result, SimulationResult | LoadRunResult)
    (window,) = result.fault_windows or []
    assert window.fault == "payment-slow=300" and window.start_s is not None
    assert window.during is not None and window.during.p95_ms is not None
    assert window.during.count and window.during.targets
    assert result.phases is not None and set(result.phases) == {"before", "during", "after"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_an_earlier_result_renders(name: str, tmp_path: Path) -> None:
    path, document = _unpacked(name, tmp_path)
    result = read_result(path)
    console = Console(record=True, width=160)
    render_result(result, console)
    assert document["kind"] in console.export_text()
    page = render_html_report(result)
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page


# The default gates' metric and invariant sections (their trace assertions read a capture
# that only the machine which wrote these files has).
RUN_GATES = """\
version: 1
journeys: {checkout: {p95: "< 1500ms"}, "*": {p99: "< 5s"}}
totals: {error_rate: "< 5%"}
invariants: hold
"""


@pytest.mark.parametrize("name", ["simulation", "load-run"])
def test_an_earlier_runs_journeys_totals_and_invariants_are_gated(
    name: str, tmp_path: Path
) -> None:
    path, document = _unpacked(name, tmp_path)
    report = evaluate(parse_gates(RUN_GATES, "gates.yaml"), read_result(path))
    judged = {(o.section, o.target) for o in report.outcomes}
    assert judged >= {("journeys", "checkout"), ("totals", "totals")}
    assert {t for s, t in judged if s == "journeys"} == set(document["journeys"])
    assert {t for s, t in judged if s == "invariants"} == {
        i["name"] for i in document["invariants"]}
    assert report.passed, report.failures
    p95 = next(o for o in report.outcomes if o.target == "checkout" and o.metric == "p95")
    assert p95.observed == document["journeys"]["checkout"]["p95_ms"]


def test_an_earlier_bench_is_gated_row_by_row(tmp_path: Path) -> None:
    path, document = _unpacked("bench", tmp_path)
    report = evaluate(load_gates(fixtures_dir() / "gates" / "bench.yaml"), read_result(path))
    observed = {o.target: o.observed for o in report.outcomes if o.metric == "ratio"}
    written = {row["name"]: row["ratio"] for row in document["rows"]}
    assert {name: observed[name] for name in written} == written
    # Rows added since (the Locust figures beside wrk's) are judged missing, not passed.
    added = {o.target: o for o in report.outcomes if o.target not in written}
    assert set(added) == {"gateway-locust", "tracing-locust"}
    assert all(o.observed is None and not o.passed for o in added.values())
