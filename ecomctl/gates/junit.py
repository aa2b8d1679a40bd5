"""JUnit XML for CI systems: one ``<testsuite>`` per command run, one ``<testcase>`` per gate.

The shape the common consumers (Jenkins, GitLab, GitHub test reporters, junitparser, pytest's
own output) agree on::

    <testsuites name=".." tests=".." failures=".." errors="0" skipped=".." time="..">
      <testsuite name="ecomctl.gates" tests failures errors skipped time timestamp hostname>
        <properties><property name="gates_file" value=".."/></properties>
        <testcase classname="journeys" name="checkout p95 &lt; 1500ms" time="0">
          <failure message="p95 1.8s, required &lt; 1500ms" type="GateBreached">..</failure>
        </testcase>
        <testcase classname="spans" name=".."><skipped message=".."/></testcase>
      </testsuite>
    </testsuites>
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ecomctl.gates.compare import Comparison, describe_delta
from ecomctl.gates.evaluate import GateReport

GATES_SUITE = "ecomctl.gates"
COMPARE_SUITE = "ecomctl.compare"

# XML 1.0 cannot carry these even escaped; span names and details come from outside.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class JUnitCase:
    classname: str
    name: str
    failure: str | None = None  # the failure message; None when the case passed
    detail: str = ""  # the failure's body text
    skipped: str | None = None  # why the case was not run
    time_s: float = 0.0


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def junit_xml(
    suite: str,
    cases: Sequence[JUnitCase],
    *,
    time_s: float = 0.0,
    timestamp: datetime | None = None,
    properties: Mapping[str, str] | None = None,
) -> str:
    failures = sum(1 for c in cases if c.failure is not None)
    skipped = sum(1 for c in cases if c.skipped is not None and c.failure is None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped), "time": f"{time_s:.3f}"}
    root = ET.Element("testsuites", {"name": suite, **counts})
    when = (timestamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    element = ET.SubElement(root, "testsuite", {
        "name": suite, **counts, "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "hostname": socket.gethostname() or "localhost",
    })
    if properties:
        props = ET.SubElement(element, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": _clean(key), "value": _clean(value)})
    for case in cases:
        node = ET.SubElement(element, "testcase", {
            "classname": _clean(case.classname), "name": _clean(case.name),
            "time": f"{case.time_s:.3f}",
        })
        if case.failure is not None:
            failure = ET.SubElement(node, "failure",
                                    {"message": _clean(case.failure), "type": "GateBreached"})
            failure.text = _clean(case.detail or case.failure)
        elif case.skipped is not None:
            ET.SubElement(node, "skipped", {"message": _clean(case.skipped)})
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def write_junit(path: Path, suite: str, cases: Sequence[JUnitCase], *, time_s: float = 0.0,
                properties: Mapping[str, str] | None = None) -> None:
    """Write the XML next to where it goes, then move it in (no half-written reports)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(junit_xml(suite, cases, time_s=time_s, properties=properties),
                   encoding="utf-8")
    tmp.replace(path)


def cases_from_report(report: GateReport) -> list[JUnitCase]:
    cases: list[JUnitCase] = []
    for o in report.outcomes:
        if o.section == "traces":
            name = f"{o.target}: {o.metric}"
        elif o.section == "invariants":
            name = o.target
        else:
            name = f"{o.target} {o.metric} {o.threshold}"
        failure = None
        detail = ""
        if not o.passed:
            failure = o.message or f"observed {o.observed_text}, required {o.threshold}"
            detail = (f"observed: {o.observed_text}\nrequired: {o.threshold}\n"
                      f"{o.message}\n{report.source}:{o.line}")
        cases.append(JUnitCase(o.section, name, failure, detail))
    return cases


def cases_from_comparison(comparison: Comparison) -> list[JUnitCase]:
    cases: list[JUnitCase] = []
    for t in comparison.targets:
        if t.status != "compared":
            counts = f"baseline {t.baseline_count}, current {t.current_count}"
            reason = {"appeared": "only in the current run",
                      "disappeared": "only in the baseline run"}.get(t.status, t.status)
            cases.append(JUnitCase(t.section, t.target, skipped=f"{reason} ({counts})"))
            continue
        regressions = t.regressions
        if regressions:
            message = "; ".join(describe_delta(d) for d in regressions)
            detail = "\n".join(describe_delta(d) for d in t.deltas)
            cases.append(JUnitCase(t.section, t.target, f"regression: {message}", detail))
        else:
            cases.append(JUnitCase(t.section, t.target))
    return cases
