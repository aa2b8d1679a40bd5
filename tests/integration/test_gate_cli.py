"""``ecomctl gate check`` and ``ecomctl gate compare`` run as CI runs them: a subprocess on
result documents (a trimmed real `checkout simulate` result and its trace capture, in
tests/fixtures/gates), checking exit codes, what is printed and the JUnit files."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml

from tests.cli_runner import CliResult, run_ecomctl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gates"


def gate(*args: str | Path) -> CliResult:
    return run_ecomctl("gate", *args, env={"COLUMNS": "200", "NO_COLOR": "1"}, timeout=120)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The result and its trace capture side by side (trace_file is relative to it)."""
    shutil.copy(FIXTURES / "result.json", tmp_path / "result.json")
    shutil.copy(FIXTURES / "traces.otlp.jsonl", tmp_path / "traces.otlp.jsonl")
    return tmp_path


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_default_gates_pass_on_a_healthy_run(run_dir: Path) -> None:
    done = gate("check", run_dir / "result.json")
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "default.yaml" in done.stdout
    assert "FAIL" not in done.stdout
    assert "completed checkouts carry the order id" in done.stdout
    assert "all 21 gates pass" in done.stdout

    as_json = gate("check", run_dir / "result.json", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["passed"] is True and report["failures"] == 0
    assert report["spans_read"] == 125
    assert {o["section"] for o in report["outcomes"]} == {
        "journeys", "totals", "cache", "invariants", "traces"}


def test_a_broken_gate_exits_3_with_a_junit_report(run_dir: Path) -> None:
    gates_file = run_dir / "strict.yaml"
    gates_file.write_text(
        "version: 1\n"
        "journeys:\n"
        '  checkout: {p95: "< 100ms"}\n'  # the run's checkout p95 is ~217 ms
        '  browse: {p95: "< 500ms"}\n'
        "traces:\n"
        "  - name: every checkout names its order\n"
        "    select: {name: checkout.complete}\n"  # the out-of-stock one has no order
        '    assert: ["count >= 1", "attr ecom.order.id exists"]\n'
    )
    junit = run_dir / "reports" / "gates.xml"
    done = gate("check", run_dir / "result.json", "--gates", gates_file, "--junit", junit)
    assert done.exit_code == 3, done.stdout + done.stderr
    assert "2 of 4 gates broken" in done.stdout
    assert f"{gates_file}:3: journeys checkout: p95 217.3ms, required < 100ms" in done.stdout
    assert "1 of 2 spans lack ecom.order.id" in done.stdout

    xml = JUnitXml.fromfile(str(junit))
    (suite,) = list(xml)
    assert suite.name == "ecomctl.gates"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 2, 0, 0)
    failed = {(c.classname, c.name): c for c in suite if not c.is_passed}
    assert set(failed) == {
        ("journeys", "checkout p95 < 100ms"),
        ("traces", "every checkout names its order: attr ecom.order.id exists"),
    }
    failure = failed[("journeys", "checkout p95 < 100ms")].result[0]
    assert isinstance(failure, Failure)
    assert failure.message == "p95 217.3ms, required < 100ms"
    assert "observed: 217.3ms" in failure.text and "required: < 100ms" in failure.text
    root = ET.parse(junit).getroot()
    assert root.find("testsuite/properties/property[@name='result_file']") is not None


def test_an_invalid_gates_file_exits_2_naming_the_line(run_dir: Path) -> None:
    gates_file = run_dir / "gates.yaml"
    gates_file.write_text('version: 1\njourneys:\n  checkout:\n    p96: "< 1s"\n')
    done = gate("check", run_dir / "result.json", "--gates", gates_file)
    assert done.exit_code == 2, done.stdout + done.stderr
    assert f"{gates_file}:4: unknown metric 'p96'" in " ".join(done.stderr.split())
    assert done.stdout == ""

    gates_file.write_text("version: 1\ntotals:\n  throughput_per_s: > 1\n")
    done = gate("check", run_dir / "result.json", "--gates", gates_file)
    assert done.exit_code == 2
    assert f"{gates_file}:3: YAML syntax error" in " ".join(done.stderr.split())


def test_an_invalid_result_file_exits_2(run_dir: Path) -> None:
    bogus = run_dir / "bogus.json"
    bogus.write_text('{"schema": "something else"}')
    done = gate("check", bogus)
    assert done.exit_code == 2
    assert "not an ecomctl result" in done.stderr
    assert gate("compare", bogus, run_dir / "result.json").exit_code == 2


def test_traces_option_overrides_the_result_trace_file(run_dir: Path) -> None:
    result = load(run_dir / "result.json")
    result["trace_file"] = str(run_dir / "moved-away.jsonl")
    (run_dir / "result.json").write_text(json.dumps(result))
    missing = gate("check", run_dir / "result.json", "--json")
    assert missing.exit_code == 3
    traces = [o for o in json.loads(missing.stdout)["outcomes"] if o["section"] == "traces"]
    assert traces and all("cannot read the result's trace file" in o["message"]
                          for o in traces)
    given = gate("check", run_dir / "result.json", "--traces", run_dir / "traces.otlp.jsonl")
    assert given.exit_code == 0, given.stdout + given.stderr


def test_compare_flags_a_regression_with_exit_3(run_dir: Path) -> None:
    current = load(run_dir / "result.json")
    current["journeys"]["checkout"]["p95_ms"] *= 1.3  # ~217 ms -> ~283 ms
    current["journeys"]["browse"]["p50_ms"] *= 1.5  # ~5 ms -> ~8 ms: under 5 ms absolute
    del current["journeys"]["search"]
    (run_dir / "current.json").write_text(json.dumps(current))
    junit = run_dir / "compare.xml"
    done = gate("compare", run_dir / "result.json", run_dir / "current.json",
                "--max-regression", "10%", "--min-absolute", "5ms", "--junit", junit)
    assert done.exit_code == 3, done.stdout + done.stderr
    assert "journeys checkout: p95 217.3ms -> 282.5ms (+65.2ms, +30.0%)" in done.stdout
    assert "only in the baseline (1): journeys:search" in done.stdout
    assert "1 regressed" in done.stdout

    (suite,) = list(JUnitXml.fromfile(str(junit)))
    assert suite.name == "ecomctl.compare"
    assert (suite.failures, suite.skipped) == (1, 1)
    failed = [c for c in suite if not c.is_passed and not c.is_skipped]
    assert [(c.classname, c.name) for c in failed] == [("journeys", "checkout")]

    as_json = gate("compare", run_dir / "result.json", run_dir / "current.json", "--json")
    assert as_json.exit_code == 3
    comparison = json.loads(as_json.stdout)
    verdicts = {(t["section"], t["target"]): t["verdict"] for t in comparison["targets"]}
    assert verdicts[("journeys", "checkout")] == "regression"
    assert verdicts[("journeys", "browse")] == "same"
    assert verdicts[("journeys", "search")] == "disappeared"


def test_compare_passes_on_the_same_run_and_on_improvements(run_dir: Path) -> None:
    same = gate("compare", run_dir / "result.json", run_dir / "result.json")
    assert same.exit_code == 0, same.stdout + same.stderr
    assert "no regression" in same.stdout

    faster = load(run_dir / "result.json")
    faster["journeys"]["checkout"]["p95_ms"] /= 2
    (run_dir / "faster.json").write_text(json.dumps(faster))
    done = gate("compare", run_dir / "result.json", run_dir / "faster.json", "--json")
    assert done.exit_code == 0, done.stderr
    verdicts = {t["target"]: t["verdict"] for t in json.loads(done.stdout)["targets"]}
    assert verdicts["checkout"] == "improvement"
    # A looser threshold lets the 30% regression through.
    slower = load(run_dir / "result.json")
    slower["journeys"]["checkout"]["p95_ms"] *= 1.3
    (run_dir / "slower.json").write_text(json.dumps(slower))
    assert gate("compare", run_dir / "result.json", run_dir / "slower.json",
                "--max-regression", "50%").exit_code == 0


def test_compare_refuses_bad_options(run_dir: Path) -> None:
    result = run_dir / "result.json"
    done = gate("compare", result, result, "--max-regression", "10")
    assert done.exit_code == 2
    assert "--max-regression" in done.stderr and "10%" in done.stderr
    assert gate("compare", result, result, "--min-absolute", "5").exit_code == 2
    assert gate("compare", result, result, "--percentiles", "p96").exit_code == 2
