"""Exit codes are decided at one boundary: the map, and a guard that keeps it the only one."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from ecomctl.cli import exit_codes
from ecomctl.cli.exit_codes import CommandFailed, GateBroken, exit_code_of
from ecomctl.errors import BackendUnavailable, ConfigError, ToolchainError

PACKAGE = Path(exit_codes.__file__).parents[1]


@pytest.mark.parametrize(("exc", "code"), [
    (GateBroken(), 3),
    (CommandFailed("3 requests failed"), 1),
    (ConfigError("--users must be positive"), 2),
    (ToolchainError(["go 1.19 found, 1.22 needed"]), 2),
    (click.BadParameter("not a duration"), 2),
    (BackendUnavailable("postgres", "connection refused"), 1),
    (RuntimeError("a bug"), 1),
    (KeyboardInterrupt(), 130),
])
def test_each_outcome_has_its_code(exc: BaseException, code: int) -> None:
    assert exit_code_of(exc) == code


def test_only_the_cli_boundary_exits() -> None:
    exits = re.compile(r"sys\.exit\(|typer\.Exit\(|raise SystemExit")
    sites = [f"{path.relative_to(PACKAGE)}:{number}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if exits.search(line)]
    assert sites, "the boundary itself exits"
    assert {site.split(":")[0] for site in sites} == {"cli/main.py"}, sites
