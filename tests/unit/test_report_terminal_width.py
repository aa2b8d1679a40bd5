"""The terminal report at 80 columns (a CI log, a laptop's terminal): no Python repr, no name
cut with "…", and one row per operation holding its service.

Rendered from the committed result files (``tests/fixtures/results``): a simulation, a load
run and a bench, as ``ecomctl report`` prints them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from rich.console import Console

from ecomctl.cli.render_result import render_result
from ecomctl.results import LoadRunResult, Result, SimulationResult, read_result

FIXTURES = Path(__file__).parents[1] / "fixtures" / "results"
WIDTHS = (80, 120)


def _result(name: str, tmp_path: Path) -> Result:
    path = tmp_path / f"{name}.json"
    with gzip.open(FIXTURES / f"{name}.json.gz", "rt") as packed:
        path.write_text(json.dumps(json.load(packed)))
    return read_result(path)


def _report(result: Result, width: int) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    render_result(result, console)
    return console.export_text().splitlines()


def _table_rows(lines: list[str], title: str) -> list[list[str]]:
    """The body rows of the table titled ``title``, each as its stripped cells."""
    start = next(i for i, line in enumerate(lines) if title in line)
    body = next(i for i in range(start, len(lines)) if lines[i].startswith("┡"))
    rows: list[list[str]] = []
    for line in lines[body + 1:]:
        if line.startswith("└"):
            return rows
        rows.append([cell.strip() for cell in line.split("│")[1:-1]])
    raise AssertionError(f"table {title!r} has no end")


def _named_rows(rows: list[list[str]], names: list[tuple[str, str]]) -> None:
    """Row i is operation i: its service and name in two cells or as "service name" in
    one; no row continues the one above it (a name wrapped or split over two rows)."""
    assert len(rows) == len(names), rows
    for cells, (service, name) in zip(rows, names, strict=True):
        assert cells[:2] == [service, name] or cells[0] == f"{service} {name}", (cells,
                                                                                  service, name)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["simulation", "load-run", "bench"])
def test_the_report_has_no_repr_no_cut_name_and_fits(name: str, width: int,
                                                      tmp_path: Path) -> None:
    lines = _report(_result(name, tmp_path), width)
    text = "\n".join(lines)
    assert "{'" not in text and "'}" not in text, text
    # The one "…" allowed: the slowest trace's tree saying how many spans it left out.
    cut = [line for line in lines if "…" in line and "more spans (ecomctl traces show)" not in line]
    assert cut == [], text
    assert all(len(line) <= width for line in lines), text


@pytest.mark.parametrize("width", WIDTHS)
def test_a_simulations_operations_and_consumers_keep_their_names(width: int,
                                                                 tmp_path: Path) -> None:
    result = _result("simulation", tmp_path)
    assert isinstance(result, SimulationResult) and result.spans and result.kafka
    lines = _report(result, width)
    shown = sorted(result.spans, key=lambda o: -(o.total_ms or 0.0))[:12]
    _named_rows(_table_rows(lines, "operations by total time"),
                [(o.service, o.name) for o in shown])
    consumers = [row[0] for row in _table_rows(lines, "Kafka consumers")]
    assert consumers == list(result.kafka["consumers"])  # search-indexer whole, one row each
    assert [row[0] for row in _table_rows(lines, "latency per journey")] == list(result.journeys)
    assert result.totals.checkouts == {"paid": 11}
    assert "checkouts 11 paid (0.82 paid/s)" in " ".join(" ".join(lines).split())


@pytest.mark.parametrize("width", WIDTHS)
def test_a_load_runs_endpoints_and_server_operations_keep_their_names(
    width: int, tmp_path: Path
) -> None:
    result = _result("load-run", tmp_path)
    assert isinstance(result, LoadRunResult) and result.spans
    lines = _report(result, width)
    endpoints = _table_rows(lines, "endpoints (HdrHistogram")
    assert [row[0] for row in endpoints] == list(result.endpoints)
    # Every figure whole: the endpoint column does not squeeze the numbers into "101…".
    assert all(cell and "…" not in cell for row in endpoints for cell in row)
    _named_rows(_table_rows(lines, "server side"), [(o.service, o.name) for o in result.spans[:10]])
    matched = _table_rows(lines, "client vs server latency")
    assert [row[0] for row in matched] == list(result.network_queueing or {})
    # The cache's levels as words, not a dict.
    assert "lookups (served by 15 l1, 25 l2, 41 l3)" in "\n".join(lines)
