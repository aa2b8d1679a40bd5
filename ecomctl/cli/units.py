"""Parsing human units on the command line."""

from __future__ import annotations

import re

import typer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``60s``, ``1.5m``, ``500ms``, ``90`` (seconds) -> seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 60s, 2m, 500ms")
    seconds = float(match.group(1)) * _FACTORS[match.group(2)]
    if seconds <= 0:
        raise typer.BadParameter("a duration must be positive")
    return seconds
