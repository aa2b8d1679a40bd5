"""CI performance gates over results (``ecomctl.results``' records).

    spec = load_gates(Path("gates.yaml"))          # GatesFileError names the line at fault
    report = evaluate(spec, read_result(path), result_dir=path.parent)
    report.passed, report.failures                 # GateOutcome per gate and target

    comparison = compare_results(baseline, current, CompareOptions(max_regression=0.10))
    comparison.passed, comparison.regressed        # relative AND absolute thresholds

    write_junit(Path("gates.xml"), GATES_SUITE, cases_from_report(report))

Pure: nothing prints; the CLI (``ecomctl gate``) renders and turns failures into exit 3.
The gates file format is documented in ``ecomctl.gates.spec``.
"""

from __future__ import annotations

from ecomctl.gates.compare import CompareOptions, Comparison, compare_results
from ecomctl.gates.evaluate import GateOutcome, GateReport, evaluate
from ecomctl.gates.junit import (
    COMPARE_SUITE,
    GATES_SUITE,
    cases_from_comparison,
    cases_from_report,
    write_junit,
)
from ecomctl.gates.spec import GatesFileError, GatesSpec, load_gates, parse_gates

__all__ = [
    "COMPARE_SUITE",
    "GATES_SUITE",
    "CompareOptions",
    "Comparison",
    "GateOutcome",
    "GateReport",
    "GatesFileError",
    "GatesSpec",
    "cases_from_comparison",
    "cases_from_report",
    "compare_results",
    "evaluate",
    "load_gates",
    "parse_gates",
    "write_junit",
]
