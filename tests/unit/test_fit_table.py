"""``fit_table``: a wide table in a narrow console keeps its name columns readable."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from ecomctl.cli.output import fit_table, fits

NAMES = ["analytics order-events, shipment-events receive", "inventory SELECT",
         "checkout checkout.complete"]


def _table() -> Table:
    table = Table(title="operations")
    table.add_column("operation", overflow="fold")
    for column in ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms", "total ms",
                   "self ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for i, name in enumerate(NAMES):
        table.add_row(name, f"{1200 + i:,}", "0", "4.0", "95.2", "202.6", "1,258.7",
                      "12,065.4", "2,065.4")
    return table


def _render(table: Table, width: int) -> str:
    buffer = io.StringIO()
    out = Console(width=width, file=buffer, highlight=False, color_system=None)
    out.print(table)
    return buffer.getvalue()


def _name_column(text: str) -> str:
    cells = [line.split("│")[1] for line in text.splitlines() if line.startswith("│")]
    return "".join("".join(cell.split()) for cell in cells)


def test_without_help_rich_squeezes_the_names_away_at_80_columns() -> None:
    """The bug this exists for: the name column gets (next to) no width."""
    text = _render(_table(), 80)
    widths = {len(line.split("│")[1]) for line in text.splitlines() if line.startswith("│")}
    assert max(widths) <= 3 and "inventory SELECT" not in text


def test_names_stay_whole_and_what_is_left_out_is_said() -> None:
    table = _table()
    narrow = Console(width=80, file=io.StringIO())
    dropped = fit_table(table, narrow, names=("operation",),
                        optional=("p99 ms", "max ms", "total ms", "errors"))
    text = _render(table, 80)
    assert dropped and dropped == ["p99 ms", "max ms", "total ms", "errors"][: len(dropped)]
    column = _name_column(text)
    assert all("".join(name.split()) in column for name in NAMES), text
    assert "inventory SELECT" in text  # on one line
    assert all(len(line) <= 80 for line in text.splitlines())
    assert f"not shown at this width: {', '.join(dropped)}" in " ".join(text.split())
    assert "12,065.4" in text or "total ms" in dropped  # numbers are never cut


def test_a_table_that_fits_is_left_alone() -> None:
    table = _table()
    wide = Console(width=200, file=io.StringIO())
    before = _render(table, 200)
    assert fits(table, wide)
    assert fit_table(table, wide, names=("operation",), optional=("p99 ms",)) == []
    assert _render(table, 200) == before
