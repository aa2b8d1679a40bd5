"""Tables in an 80-column CI log: ``traces analyze``, ``traces diff`` and ``gate compare`` run
as CI runs them (a subprocess, stdout a pipe, ``COLUMNS=80``) on the trimmed real capture in
tests/fixtures/gates. Every operation's name must be readable in its column: whole (folded
over lines when long), never squeezed to nothing or to a few letters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import CliResult, run_ecomctl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gates"


def ecomctl(*args: str | Path, columns: int = 80) -> CliResult:
    return run_ecomctl(*args, env={"COLUMNS": str(columns), "NO_COLOR": "1"}, timeout=120)


def first_column(output: str, title: str) -> list[str]:
    """The first cell of every body line of the table titled ``title``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    body = []
    for line in lines[start:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            body.append(line.split("│")[1].strip())
    assert body, f"no rows under {title!r}:\n{output}"
    return body


def assert_names_readable(cells: list[str], names: list[str]) -> None:
    """Each name whole in the column's text, read top to bottom (a name folded over lines
    continues on the next line of the same column)."""
    column = "".join("".join(cell.split()) for cell in cells)
    missing = [name for name in names if "".join(name.split()) not in column]
    assert not missing, f"names not readable: {missing}\ncolumn: {cells}"
    assert all("…" not in cell for cell in cells), cells


def assert_fits(output: str, columns: int) -> None:
    too_wide = [line for line in output.splitlines() if len(line) > columns]
    assert not too_wide, too_wide


def slowed_capture(tmp_path: Path, service: str = "inventory", name: str = "WITH",
                   extra_ms: int = 50) -> Path:
    """The fixture capture with every ``service name`` span made ``extra_ms`` longer."""
    out = []
    for line in (FIXTURES / "traces.otlp.jsonl").read_text().splitlines():
        document = json.loads(line)
        for resource_spans in document["resourceSpans"]:
            attributes = {a["key"]: a["value"].get("stringValue")
                          for a in resource_spans["resource"]["attributes"]}
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    if attributes.get("service.name") == service and span["name"] == name:
                        span["endTimeUnixNano"] = str(int(span["endTimeUnixNano"])
                                                      + extra_ms * 1_000_000)
        out.append(json.dumps(document))
    path = tmp_path / "slowed.otlp.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize("columns", [80, 60])
def test_traces_analyze_keeps_operation_names_at_80_columns(columns: int) -> None:
    analysis = ecomctl("traces", "analyze", "--from", FIXTURES / "traces.otlp.jsonl", "--json")
    assert analysis.exit_code == 0, analysis.stderr
    operations = json.loads(analysis.stdout)["operations"][:20]
    result = ecomctl("traces", "analyze", "--from", FIXTURES / "traces.otlp.jsonl", "--top",
                     "20", columns=columns)
    assert result.exit_code == 0, result.stderr
    cells = first_column(result.stdout, "operations")
    assert_names_readable(cells, [f"{op['service']} {op['name']}" for op in operations])
    assert sum(1 for cell in cells if cell) >= len(operations)
    assert_fits(result.stdout, columns)
    # What had to go is said, and the column the rows are sorted by stays.
    assert "not shown at this width" in result.stdout
    assert "self" in result.stdout.split("┃", 3)[-1]


def test_traces_analyze_on_a_wide_terminal_is_unchanged() -> None:
    result = ecomctl("traces", "analyze", "--from", FIXTURES / "traces.otlp.jsonl",
                     columns=200)
    assert result.exit_code == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "p99 ms" in line)
    assert [h.strip() for h in header.strip("┃").split("┃")][:3] == [
        "service", "operation", "count"]
    assert "not shown at this width" not in result.stdout


def test_traces_diff_at_80_columns_names_every_operation_and_the_slowed_one_first(
    tmp_path: Path,
) -> None:
    slowed = slowed_capture(tmp_path)
    base = FIXTURES / "traces.otlp.jsonl"
    data = ecomctl("traces", "diff", base, slowed, "--json")
    assert data.exit_code == 0, data.stderr
    operations = json.loads(data.stdout)["operations"]
    result = ecomctl("traces", "diff", base, slowed, "--top", "0", "--min-count", "1",
                     "--fail-on", "self>+20ms")
    assert result.exit_code == 3, result.stdout + result.stderr
    cells = first_column(result.stdout, "operations by self time added")
    assert cells[0] == "inventory WITH"
    assert_names_readable(cells, [f"{op['service']} {op['name']}" for op in operations])
    assert_fits(result.stdout, 80)
    assert "✗ --fail-on self>+20ms: inventory WITH: self/call" in " ".join(
        result.stdout.split())


def _scaled(document: dict[str, Any], factor: float) -> dict[str, Any]:
    scaled: dict[str, Any] = json.loads(json.dumps(document))
    for group in (scaled["journeys"].values(), scaled["spans"]):
        for item in group:
            for key in ("p50_ms", "p95_ms", "p99_ms"):
                if item.get(key) is not None:
                    item[key] = round(item[key] * factor, 3)
    return scaled


def test_gate_compare_at_80_columns_keeps_target_names(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "traces.otlp.jsonl", tmp_path / "traces.otlp.jsonl")
    baseline = json.loads((FIXTURES / "result.json").read_text())
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    (tmp_path / "slower.json").write_text(json.dumps(_scaled(baseline, 1.5)))
    result = ecomctl("gate", "compare", tmp_path / "base.json", tmp_path / "slower.json",
                     "--all")
    assert result.exit_code == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "┃ section" in line and "target" in line)
    targets = []
    for line in lines[start:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            targets.append(line.split("│")[2].strip())
    names = [*baseline["journeys"], *(f"{s['service']} {s['name']}" for s in baseline["spans"])]
    assert_names_readable(targets, names)
    assert_fits(result.stdout, 80)
