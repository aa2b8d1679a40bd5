"""Shared terminal output: one console for humans (stderr for diagnostics), JSON for scripts."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table

if TYPE_CHECKING:
    from ecomctl.config import Settings
    from ecomctl.faults.watcher import FaultChange

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def ok_mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]no[/red]"


def fit_table(
    table: Table,
    target: Console | None = None,
    *,
    names: Sequence[str],
    optional: Sequence[str] = (),
    name_width: int = 24,
) -> list[str]:
    """Make ``table`` fit the console without squeezing its name columns away.

    Rich narrows only the columns that may wrap, so beside a row of ``no_wrap`` number
    columns an 80-column CI log gets the service and operation columns at zero width. When
    the table is too wide, this sets every column's width itself: numbers keep theirs (only
    their headers wrap), the ``names`` columns (by header) keep at least ``name_width``
    characters (longer names fold onto more lines), other text wraps at spaces (no narrower
    than a column's ``min_width``); when that is
    still too wide, the ``optional`` columns are left out in that order and the caption says
    so. A table that fits is left alone. Returns the headers left out.
    """
    target = target or console
    dropped: list[str] = []
    while True:
        widths = _fitted_widths(table, target, names, name_width)
        if widths is not None:
            break
        left = [c for c in table.columns if _header(c) in optional and _header(c) not in dropped]
        if not left:  # nothing more to leave out: names down to a few characters
            widths = _fitted_widths(table, target, names, 8) or []
            break
        column = min(left, key=lambda c: list(optional).index(_header(c)))
        dropped.append(_header(column))
        table.columns.remove(column)
        for index, kept in enumerate(table.columns):
            kept._index = index  # rich addresses a column's padding by its position
    for column, width in zip(table.columns, widths, strict=False):
        column.width = width
        column.no_wrap = False  # the width fits every value; headers may wrap
        if _header(column) in names:
            column.overflow = "fold"
    if dropped:
        note = f"not shown at this width: {', '.join(dropped)}"
        table.caption = f"{table.caption}; {note}" if table.caption else note
    return dropped


def fits(table: Table, target: Console | None = None) -> bool:
    """Whether ``table`` fits the console with every column at its natural width."""
    return _fitted_widths(table, target or console, (), 0) == []


def _header(column: Column) -> str:
    return str(column.header)


def _fitted_widths(
    table: Table, target: Console, names: Sequence[str], name_width: int
) -> list[int] | None:
    """Content widths that fit ``target``: [] when the table fits as it is, None when it
    cannot fit even with every column at its floor."""
    columns = table.columns
    if not columns:
        return []
    options = target.options
    borders = (2 if table.show_edge else 0) + len(columns) - 1 if table.box else 0
    _, pad_right, _, pad_left = table.padding
    padding = len(columns) * (pad_left + pad_right)
    if not table.pad_edge:
        padding -= pad_left + pad_right
    available = target.width - borders - padding
    natural: list[int] = []
    floors: list[int] = []
    for column in columns:
        header = Measurement.get(target, options, column.header)
        cells = [Measurement.get(target, options, cell) for cell in column.cells]
        widest = max([header.maximum, *(m.maximum for m in cells)])
        natural.append(widest)
        if _header(column) in names:
            floors.append(min(widest, name_width))
        elif column.no_wrap:  # numbers: every value whole, the header may wrap
            floors.append(max([header.minimum, *(m.maximum for m in cells)]))
        else:
            floors.append(max([header.minimum, *(m.minimum for m in cells)]))
        floors[-1] = min(max(floors[-1], column.min_width or 0), widest)
    if sum(natural) <= available:
        return []
    if sum(floors) > available:
        return None
    # First wrap the number columns' headers (their values stay whole), so that a name keeps
    # its line where it can; then narrow the widest of the other columns first, none below
    # its floor (as rich does, with floors).
    widths = list(natural)
    numbers = [i for i, c in enumerate(columns) if c.no_wrap and _header(c) not in names]
    for phase in (numbers, range(len(columns))):
        while sum(widths) > available:
            shrinkable = [i for i in phase if widths[i] > floors[i]]
            if not shrinkable:
                break
            widest = max(widths[i] for i in shrinkable)
            for i in shrinkable:
                if widths[i] == widest and sum(widths) > available:
                    widths[i] -= 1
    return widths


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@functools.cache
def _settings() -> Settings:
    """The environment's settings, read once per process (a report links many traces)."""
    from ecomctl.config import Settings

    return Settings.from_env()


def trace_link(trace_id: str) -> str:
    """Rich markup for a trace id that opens the trace in the trace UI (a terminal
    hyperlink where the terminal has them; the id alone elsewhere)."""
    from ecomctl.telemetry.links import trace_url

    return f"[link={trace_url(_settings(), trace_id)}]{trace_id}[/link]"


def show_address(url: str, browser: bool) -> None:
    """Print a page's address (a script reads it from stdout), and open it if asked."""
    typer.echo(url)
    if browser:
        import webbrowser

        webbrowser.open(url)


def print_fault_change(change: FaultChange) -> None:
    """A fault applied or cleared by a serving process (``serve``, its payment gateway)."""
    colour = {"applied": "yellow", "cleared": "green"}.get(change.action, "red")
    err_console.print(f"[{colour}]fault {change.action}: {change.detail}[/{colour}]")
