"""Readers accept the deprecated and the current semantic-convention names alike.

tests/fixtures/gates/traces.otlp.jsonl is kept as it was captured (asyncpg and redis spans with
``db.statement``, ``db.system``, ``net.peer.name``...; ecomctl's consumer spans with
``messaging.kafka.message.offset``): the fixture of the old names. The same spans renamed to the
current names must read the same everywhere: trace analysis and its detectors, and gates that
name an attribute either way.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ecomctl.analysis.attributes import RENAMED, attribute, other_name
from ecomctl.analysis.detectors import DetectorThresholds, db_system, read_target, statement_of
from ecomctl.analysis.model import SpanRecord, group_traces
from ecomctl.analysis.readers import read_file
from ecomctl.analysis.report import analyze
from ecomctl.gates.evaluate import evaluate_traces
from ecomctl.gates.spec import parse_gates
from tests.semconv_names import deprecated_attributes

OLD_CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gates" / "traces.otlp.jsonl"


def _renamed(doc: Any) -> Any:
    """An OTLP JSON document with every deprecated key in ``RENAMED`` given its current name."""
    if isinstance(doc, list):
        return [_renamed(item) for item in doc]
    if isinstance(doc, dict):
        out = {k: _renamed(v) for k, v in doc.items()}
        if isinstance(out.get("key"), str):
            out["key"] = RENAMED.get(out["key"], out["key"])
        return out
    return doc


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[SpanRecord],
                                                                 list[SpanRecord]]:
    """The fixture's spans as captured (old names) and renamed (current names)."""
    current = tmp_path_factory.mktemp("current") / "traces.otlp.jsonl"
    lines = OLD_CAPTURE.read_text(encoding="utf-8").splitlines()
    current.write_text("\n".join(json.dumps(_renamed(json.loads(line))) for line in lines))
    return read_file(OLD_CAPTURE), read_file(current)


def test_every_alias_is_the_semantic_conventions_own() -> None:
    deprecated = deprecated_attributes()
    for old, new in RENAMED.items():
        assert f"`{new}`" in deprecated[old], (old, deprecated[old])
        assert new not in deprecated, new
        assert other_name(old) == new and other_name(new) == old
    assert attribute({"db.statement": "SELECT 1"}, "db.query.text") == "SELECT 1"
    assert attribute({"db.query.text": "SELECT 2"}, "db.statement") == "SELECT 2"
    assert attribute({"db.query.text": "new", "db.statement": "old"}, "db.query.text") == "new"
    assert attribute({"ecom.x": 1}, "db.statement") is None


def test_the_fixture_holds_the_old_names_and_its_copy_the_current_ones(
    captures: tuple[list[SpanRecord], list[SpanRecord]],
) -> None:
    old, current = captures
    old_keys = {key for span in old for key in span.attributes}
    current_keys = {key for span in current for key in span.attributes}
    assert {"db.statement", "db.system", "net.peer.name",
            "messaging.kafka.message.offset"} <= old_keys
    assert not current_keys & set(RENAMED)
    assert len(old) == len(current) == 125


def test_trace_analysis_reads_both_names_alike(
    captures: tuple[list[SpanRecord], list[SpanRecord]],
) -> None:
    old, current = captures
    for before, after in zip(old, current, strict=True):
        assert (db_system(before), statement_of(before), read_target(before)) == (
            db_system(after), statement_of(after), read_target(after))
    assert sum(db_system(span) == "postgresql" for span in current) > 20
    # Thresholds low enough for the detectors to find something in three traces.
    low = DetectorThresholds(n_plus_one_min_spans=2, n_plus_one_min_total_ms=0.0,
                             sequential_min_calls=2, sequential_min_total_ms=0.0,
                             sequential_min_parent_share=0.0)
    reports = [analyze(group_traces(spans), thresholds=low).to_dict() for spans in captures]
    assert reports[0] == reports[1]
    assert reports[0]["finding_counts"]["n_plus_one"] > 0


@pytest.mark.parametrize("name", ["db.statement", "db.query.text"])
def test_gates_select_and_assert_attributes_under_either_name(
    captures: tuple[list[SpanRecord], list[SpanRecord]], name: str,
) -> None:
    system = "db.system" if name == "db.statement" else "db.system.name"
    spec = parse_gates(textwrap.dedent(f"""\
        version: 1
        traces:
          - name: the orders' inserts
            select: {{attributes: {{{name}: "INSERT INTO orders *"}}}}
            assert: ["count >= 1", "attr {system} = postgresql"]
        """), "gates.yaml")
    for spans in captures:
        outcomes = evaluate_traces(spec.traces, spans)
        assert [o.passed for o in outcomes] == [True, True], [o.message for o in outcomes]
    counts = {evaluate_traces(spec.traces, spans)[0].observed for spans in captures}
    assert len(counts) == 1
