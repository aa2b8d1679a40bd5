"""Parsing human units on the command line."""

from __future__ import annotations

import typer

from ecomctl import durations


def parse_duration(text: str) -> float:
    """``60s``, ``1.5m``, ``1h30m``, ``500ms``, ``90`` (seconds) -> seconds (one syntax
    everywhere: ``ecomctl.durations``)."""
    try:
        seconds = durations.parse_duration(text, bare_unit="s")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise typer.BadParameter("a duration must be positive")
    return seconds
