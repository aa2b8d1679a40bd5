"""Durations and percentages on the command line: one syntax each, checked while the
options are parsed (exit 2 before anything starts) and shown as ``DURATION``/``PERCENT``.

Typer (0.29) parses options itself rather than through click's ``ParamType``s, and takes a
converter as ``parser=``: the types here are those converters, each with the metavar its
options show. ``duration_option`` and ``percent_option`` build such an option.
"""

from __future__ import annotations

from typing import Any

import typer

from ecomctl import durations, ratios


class DurationType:
    """``DURATION``: ``90s``, ``1.5m``, ``1h30m``, ``500ms`` (``ecomctl.durations``), in
    seconds, or milliseconds with ``unit="ms"`` (a threshold: what is written is what is
    compared); a bare number is in ``bare_unit`` (None: refused, the unit is required)."""

    metavar = "DURATION"

    def __init__(self, *, bare_unit: str | None = "s", allow_zero: bool = False,
                 unit: str = "s") -> None:
        if unit not in ("s", "ms") or (unit == "ms" and bare_unit is not None):
            raise ValueError("unit: s, or ms with bare_unit=None")
        self.bare_unit = bare_unit
        self.allow_zero = allow_zero
        self.unit = unit

    def __call__(self, value: str | float) -> float:
        if isinstance(value, (int, float)):  # a default given as a number
            amount = float(value)
        else:
            try:
                amount = (durations.parse_duration_ms(value) if self.unit == "ms" else
                          durations.parse_duration(value, bare_unit=self.bare_unit))
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
        if amount < 0 or (amount == 0 and not self.allow_zero):
            raise typer.BadParameter(
                f"{value!r}: a duration must be {'0 or more' if self.allow_zero else 'positive'}")
        return amount


class DurationText(DurationType):
    """A ``DurationType`` that passes the text on once it is known to be a duration (for
    an API that takes the text itself, such as Jaeger's lookback)."""

    def __call__(self, value: str | float) -> Any:
        super().__call__(value)
        return value


class PercentType:
    """``PERCENT``: ``2%`` or ``0.02`` (``ecomctl.ratios``), as a fraction, at most
    ``maximum`` (None: no bound)."""

    metavar = "PERCENT"

    def __init__(self, *, maximum: float | None = 1.0) -> None:
        self.maximum = maximum

    def __call__(self, value: str | float) -> float:
        try:
            return ratios.parse_ratio(str(value), maximum=self.maximum)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None


def duration_option(default: str | None, *decls: str, help: str,
                    kind: DurationType | None = None, **kwargs: Any) -> Any:
    """A ``DURATION`` option (seconds; a bare number is seconds unless ``kind`` says)."""
    kind = kind or DurationType()
    return typer.Option(default, *decls, parser=kind, metavar=kind.metavar, help=help,
                        **kwargs)


def percent_option(default: str | None, *decls: str, help: str,
                   maximum: float | None = 1.0, **kwargs: Any) -> Any:
    """A ``PERCENT`` option: ``2%`` or ``0.02``, a fraction of at most ``maximum``."""
    kind = PercentType(maximum=maximum)
    return typer.Option(default, *decls, parser=kind, metavar=kind.metavar, help=help,
                        **kwargs)
