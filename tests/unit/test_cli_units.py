"""DURATION and PERCENT on the command line: one syntax each, read while the options are
parsed, so a bad value exits 2 naming the option before anything starts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner

from ecomctl.cli.main import app
from ecomctl.cli.units import DurationText, DurationType, PercentType
from ecomctl.errors import EcomctlError
from ecomctl.faults.catalogue import FaultSpec, parse_fault
from ecomctl.ratios import format_ratio, parse_ratio


@pytest.mark.parametrize(("text", "fraction"), [
    ("2%", 0.02), ("0.02", 0.02), ("2 %", 0.02), (" 2.5% ", 0.025), (".5", 0.5),
    ("0", 0.0), ("1", 1.0), ("100%", 1.0), ("0%", 0.0), ("7%", 0.07), ("0.5%", 0.005),
])
def test_a_percentage_or_a_fraction_means_the_same(text: str, fraction: float) -> None:
    assert parse_ratio(text) == fraction
    assert PercentType()(text) == fraction


@pytest.mark.parametrize(("text", "complaint"), [
    ("2", "write 2% for 2 percent"), ("50", "a bare number is a fraction within 0..1"),
    ("-1%", "negative"), ("abc", "not a percentage"), ("", "not a percentage"),
    ("2%%", "not a percentage"), ("nan", "not a percentage"), ("1e-2", "not a percentage"),
    ("150%", "more than 100%"), ("1.5", "fraction within 0..1"),
])
def test_what_is_not_a_percentage_says_why(text: str, complaint: str) -> None:
    with pytest.raises(typer.BadParameter, match=complaint):
        PercentType()(text)


def test_a_percentage_may_pass_100_where_the_option_allows() -> None:
    assert PercentType(maximum=None)("150%") == 1.5
    assert PercentType(maximum=None)("10%") == 0.1
    with pytest.raises(typer.BadParameter, match="write 10% for 10 percent"):
        PercentType(maximum=None)("10")  # still: 10 percent or 1000%?
    assert format_ratio(0.02) == "2%" and format_ratio(1) == "100%"


@pytest.mark.parametrize(("kind", "text", "value"), [
    (DurationType(), "90s", 90.0), (DurationType(), "1h30m", 5400.0),
    (DurationType(), "90", 90.0), (DurationType(), "500ms", 0.5),
    (DurationType(allow_zero=True), "0", 0.0),
    (DurationType(bare_unit=None, unit="ms", allow_zero=True), "5ms", 5.0),
    (DurationType(bare_unit=None, unit="ms"), "1652ms", 1652.0),
    (DurationText(bare_unit=None), "1h30m", "1h30m"),
])
def test_durations_in_the_unit_an_option_wants(kind: Callable[[str], object], text: str,
                                               value: float | str) -> None:
    assert kind(text) == value


@pytest.mark.parametrize(("kind", "text", "complaint"), [
    (DurationType(), "0s", "must be positive"), (DurationType(), "5x", "not a duration"),
    (DurationType(), "-5s", "not a duration"), (DurationType(), "", "empty"),
    (DurationType(bare_unit=None), "90", "needs a unit"),
    (DurationType(bare_unit=None, unit="ms"), "5", "needs a unit"),
    (DurationText(bare_unit=None), "1h", None),
])
def test_what_is_not_a_duration_says_why(kind: Callable[[str], object], text: str,
                                         complaint: str | None) -> None:
    if complaint is None:
        assert kind(text) == text
        return
    with pytest.raises(typer.BadParameter, match=complaint):
        kind(text)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(("args", "option"), [
    (["load", "run", "--max-error-rate", "2"], "--max-error-rate"),
    (["load", "run", "--max-error-rate", "120%"], "--max-error-rate"),
    (["load", "run", "--duration", "soon"], "--duration"),
    (["checkout", "simulate", "--duration", "0s"], "--duration"),
    (["checkout", "simulate", "--think-time", "fast"], "--think-time"),
    (["gate", "compare", "a.json", "b.json", "--max-regression", "10"], "--max-regression"),
    (["gate", "compare", "a.json", "b.json", "--min-absolute", "5"], "--min-absolute"),
    (["gate", "compare", "a.json", "b.json", "--max-error-increase", "x"],
     "--max-error-increase"),
    (["serve", "payment-gateway", "--decline-rate", "30"], "--decline-rate"),
    (["traces", "list", "--lookback", "90"], "--lookback"),
    (["stack", "up", "--timeout", "-1"], "--timeout"),
])
def test_a_bad_value_exits_2_naming_the_option(args: list[str], option: str) -> None:
    code, output = _run(*args)
    assert code == 2, output
    assert f"Invalid value for '{option}'" in output, output


@pytest.mark.parametrize("rate", ["2%", "0.02"])
def test_both_forms_pass_the_parser(rate: str) -> None:
    # Parsed, then refused by the command's own check (before any process starts).
    code, output = _run("load", "run", "--max-error-rate", rate, "--expect-workers", "2")
    assert code == 2 and "only with --master" in output, output
    # Parsed, then the command reads its files (CliRunner keeps what it raises: the exit
    # code is decided by ecomctl.cli.main.run).
    result = CliRunner().invoke(app, ["gate", "compare", "missing-a.json", "missing-b.json",
                                      "--max-regression", rate, "--max-error-increase", rate])
    assert isinstance(result.exception, EcomctlError), result.output
    assert "missing-a.json" in str(result.exception)


def test_numbers_keep_their_bounds_when_the_help_shows_them() -> None:
    # help.tidy_params moves "[1-10000]" from the metavar column into the help text.
    code, output = _run("checkout", "simulate", "--shoppers", "0")
    assert code == 2 and "'--shoppers'" in output, output
    assert "[1-10000]" in _run("checkout", "simulate", "--help")[1]


def test_a_fault_rate_takes_both_forms_and_is_kept_as_a_fraction() -> None:
    assert parse_fault("payment-decline=30%") == FaultSpec("payment-decline", "0.3")
    assert parse_fault("payment-decline=0.3") == FaultSpec("payment-decline", "0.3")
    assert parse_fault("payment-timeout-after-capture=5%").value == "0.05"
    assert parse_fault("db-slow=50").value == "50"
