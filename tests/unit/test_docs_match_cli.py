"""The docs name only commands, flags and environment variables that exist, and every
variable ecomctl reads is documented: the README and docs/ cannot drift from the CLI again.

Commands and flags are checked against the click tree that ``ecomctl --help`` renders;
variables against what ``Settings.from_env`` looks up and the names the code spells out.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from ecomctl.cli.main import app
from ecomctl.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "ARCHITECTURE.md", *(ROOT / "docs").glob("*.md")])
CODE_DIRS = ("ecomctl", "scenarios")
VARIABLE = re.compile(r"\b(?:ECOMCTL|OTEL)_[A-Z0-9_]+")
# A fenced block, or an inline code span (one or more backticks).
CODE = re.compile(r"```[^\n]*\n(.*?)```|(`+)(.+?)\2", re.S)
# Where one command ends in a shell line.
COMMAND_END = {"|", "||", "&&", ";", ">", ">>", "2>&1", "#"}
ALWAYS_KNOWN = {"--help", "-h"}


# Typer vendors click (typer._click): commands and groups are told apart by their type.
Command = Any


def _cli() -> TyperGroup:
    command = typer.main.get_command(app)
    assert isinstance(command, TyperGroup)
    return command


def _code_snippets(text: str) -> Iterator[str]:
    for match in CODE.finditer(text):
        block = match.group(1) if match.group(1) is not None else match.group(3)
        # Shell continuations join a command's lines.
        yield from block.replace("\\\n", " ").splitlines()


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=False)
    except ValueError:  # an unbalanced quote in prose-like code: plain split is enough
        return line.split()


def _invocations(line: str, top_level: set[str]) -> Iterator[list[str]]:
    """The words of each ``ecomctl ...`` in ``line``; an inline span may also start with a
    top-level command (`` `serve --workers` ``)."""
    words = _words(line)
    starts = [i + 1 for i, word in enumerate(words) if word.endswith("ecomctl")
              and (word == "ecomctl" or word.endswith("/ecomctl"))]
    if not starts and words and words[0] in top_level:
        starts = [0]
    for start in starts:
        invocation: list[str] = []
        for word in words[start:]:
            if word in COMMAND_END or word.startswith("#"):
                break
            invocation.append(word)
        yield invocation


def _resolve(group: TyperGroup, words: list[str]) -> tuple[list[Command], list[str], str]:
    """(the commands the words name, the options given to them, the command's path).

    ``stack install|up|down`` names several commands: their options are pooled. Options
    before a subcommand (``ecomctl --verbose seed``) belong to the group: they are checked
    here against it, and the descent goes on."""
    commands: list[Command] = [group]
    path = ["ecomctl"]
    options: list[str] = []
    descending = True
    for raw in words:
        word = raw.strip("[]()")
        if word == "--":
            break  # the rest is passed through (to Locust)
        if word.startswith("-"):
            flags = [o for o in re.split(r"[|\]\[()]", word) if o.startswith("-")]
            if descending and isinstance(commands[0], TyperGroup) and all(
                    flag.split("=", 1)[0] in _option_names(commands[0]) for flag in flags):
                continue  # the group's own option; a subcommand may follow
            descending = False
            options.extend(flags)
            continue
        if not descending:
            continue
        names = [name for name in word.split("|") if name]
        current = commands[0]
        if len(commands) == 1 and isinstance(current, TyperGroup) and names and all(
                name in current.commands for name in names):
            commands = [current.commands[name] for name in names]
            path.append(word)
        else:
            descending = False
    return commands, options, " ".join(path)


def _option_names(command: Command) -> set[str]:
    names = set(ALWAYS_KNOWN)
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _documented_invocations() -> list[tuple[str, str]]:
    cli = _cli()
    found = []
    for doc in DOCS:
        for line in _code_snippets(doc.read_text()):
            for words in _invocations(line, set(cli.commands)):
                found.append((f"{doc.relative_to(ROOT)}: {line.strip()}", " ".join(words)))
    return found


def test_the_docs_show_commands() -> None:
    # The parser finds the README's commands: a parser that finds nothing proves nothing.
    invocations = _documented_invocations()
    assert len(invocations) > 50
    assert any(words.startswith("checkout simulate --shoppers") for _, words in invocations)


def test_every_documented_command_and_flag_exists() -> None:
    cli = _cli()
    wrong = []
    for where, joined in _documented_invocations():
        commands, options, path = _resolve(cli, _words(joined))
        # (A group's own options count: `serve --workers 2` runs the shop, `serve
        # payment-gateway` the simulator.)
        known = set().union(*(_option_names(c) for c in commands))
        for option in options:
            flag = option.split("=", 1)[0]
            if flag not in known:
                wrong.append(f"{where}\n    `{path}` has no option {flag}")
    assert not wrong, "the docs name what the CLI does not have:\n" + "\n".join(wrong)


class _RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every variable looked up in it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _variables_read() -> set[str]:
    """What the settings look up (composed names included) and what the code spells out."""
    env = _RecordingEnv()
    Settings.from_env(env)
    spelt = {name for directory in CODE_DIRS for path in (ROOT / directory).rglob("*.py")
             for name in re.findall(r"[\"']((?:ECOMCTL|OTEL)_[A-Z0-9_]+)[\"']",
                                    path.read_text())}
    return {name for name in env.asked | spelt
            if VARIABLE.fullmatch(name) and not name.endswith("_")}


def _documented_variables() -> dict[str, str]:
    """Each variable the docs name -> the first doc naming it (``X_*``: every ``X_`` name)."""
    named: dict[str, str] = {}
    for doc in DOCS:
        for match in VARIABLE.finditer(doc.read_text()):
            named.setdefault(match.group(0), str(doc.relative_to(ROOT)))
    return named


def test_every_documented_variable_is_read() -> None:
    read = _variables_read()
    tests_spelt = {name for path in (ROOT / "tests").rglob("*.py")
                   for name in VARIABLE.findall(path.read_text())}
    unknown = []
    for name, doc in _documented_variables().items():
        if name.endswith("_"):  # a family: OTEL_EXPORTER_OTLP_TRACES_*
            if not any(variable.startswith(name) for variable in read):
                unknown.append(f"{doc}: {name}* (no such variable)")
        elif name not in read and name not in tests_spelt:
            unknown.append(f"{doc}: {name}")
    assert not unknown, "the docs name variables ecomctl never reads:\n" + "\n".join(unknown)


def test_every_variable_read_is_documented() -> None:
    documented = _documented_variables()
    families = [name for name in documented if name.endswith("_")]
    missing = sorted(
        name for name in _variables_read()
        if name not in documented
        # The per-option OTLP exporter variables are documented as families and options.
        and not any(name.startswith(family) for family in families)
    )
    assert not missing, "read by ecomctl, documented nowhere: " + ", ".join(missing)


@pytest.mark.parametrize("line, expected", [
    ("ecomctl stack up && .venv/bin/pytest", ["stack", "up"]),
    (".venv/bin/ecomctl checkout simulate --shoppers 20 | jq .", [
        "checkout", "simulate", "--shoppers", "20"]),
    ("serve --workers", ["serve", "--workers"]),
    ("locust -f scenarios/shop.py --headless", None),
])
def test_invocations_are_cut_where_the_shell_cuts_them(
    line: str, expected: list[str] | None
) -> None:
    found = list(_invocations(line, set(_cli().commands)))
    assert found == ([expected] if expected is not None else [])


def test_a_missing_flag_is_caught() -> None:
    commands, options, path = _resolve(_cli(), ["checkout", "simulate", "--no-such-flag"])
    assert path == "ecomctl checkout simulate" and options == ["--no-such-flag"]
    assert "--no-such-flag" not in _option_names(commands[0])
    assert "--shoppers" in _option_names(commands[0])


def test_a_group_option_before_its_subcommand_belongs_to_the_group() -> None:
    _, options, path = _resolve(_cli(), ["--verbose", "seed", "--scale", "small"])
    assert path == "ecomctl seed" and options == ["--scale"]
