"""One meaning of --json: the commands that produce a result document write it with --out
FILE and print it with --json; an old-style `--json FILE` points to --out (before any I/O)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from ecomctl.cli.main import app
from ecomctl.cli.result_output import old_json_file

RESULT_COMMANDS = [["checkout", "simulate"], ["load", "run"], ["bench"]]


@pytest.mark.parametrize(("args", "stale"), [
    (["--json", "r.json"], "r.json"),
    (["--shoppers", "2", "--json", "out/r.json", "--no-live"], "out/r.json"),
    (["--json=r.json"], "r.json"),
    (["--json"], None),
    (["--json", "--out", "r.json"], None),
    (["--out", "r.json", "--json"], None),
    # Locust's own options and arguments come after `--`.
    (["--json", "--", "--tags", "checkout"], None),
    (["--", "--json", "x"], None),
])
def test_an_old_style_json_file_is_recognised(args: list[str], stale: str | None) -> None:
    assert old_json_file(args) == stale


@pytest.mark.parametrize("command", RESULT_COMMANDS, ids=" ".join)
def test_json_file_is_refused_with_a_pointer_to_out(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--json", "result.json"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "--out result.json" in message, message
    assert result.stdout == ""


@pytest.mark.parametrize("command", RESULT_COMMANDS, ids=" ".join)
def test_help_offers_out_and_json(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert re.search(r"--out\s+-o\s", result.stdout), result.stdout
    assert "Print the result" in result.stdout and "--json" in result.stdout
