"""One duration syntax for flags, gates and lookbacks (ecomctl.durations)."""

from __future__ import annotations

import pytest
import typer

from ecomctl.analysis.readers import parse_lookback
from ecomctl.cli.units import DurationType
from ecomctl.durations import parse_duration, parse_duration_ms
from ecomctl.errors import ConfigError
from ecomctl.gates.spec import Kind, parse_quantity


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("1.5m", 90.0), ("1h30m", 5400.0), ("1m30s", 90.0), ("500ms", 0.5),
    ("2d", 172800.0), ("1h 30m", 5400.0), ("1m30s250ms", 90.25), ("250us", 0.00025),
    ("250µs", 0.00025), (".5s", 0.5),
])
def test_simple_and_compound_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "complaint"), [
    ("", "empty"), ("90", "needs a unit"), ("30m1h", "largest to smallest"),
    ("1m1m", "largest to smallest"), ("1x", "not a duration"), ("m", "not a duration"),
    ("1h-30m", "not a duration"),
])
def test_what_is_not_a_duration_says_why(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_duration(text)


@pytest.mark.parametrize(("text", "ms"), [
    ("1652ms", 1652.0), ("1.001s", 1001.0), ("1m30s250ms", 90_250.0), ("290ms", 290.0),
    ("0.1s", 100.0), ("1500us", 1.5),
])
def test_a_threshold_in_ms_is_exactly_what_was_written(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == ms  # exact: a gate compares against it
    assert parse_quantity(text, Kind.DURATION) == ms


def test_each_caller_reads_the_same_syntax_in_its_unit() -> None:
    cli_duration = DurationType()
    assert cli_duration("1h30m") == 5400.0
    assert cli_duration("90") == 90.0  # a bare number on the command line: seconds
    assert parse_quantity("1m30s", Kind.DURATION) == 90_000.0  # gates: milliseconds
    assert parse_lookback("1h30m") == 5_400_000_000  # lookbacks: microseconds
    with pytest.raises(typer.BadParameter, match="positive"):
        cli_duration("0s")
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_quantity("-5ms", Kind.DURATION)
    with pytest.raises(ConfigError, match="lookback"):
        parse_lookback("90")
