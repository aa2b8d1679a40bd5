"""`ecomctl --help` and the help of every command and group, as an 80-column terminal shows
them: no sentence broken by a hard line break, nothing cut with "…", no ``<bool>`` beside a
flag, commands grouped by workflow, and examples on every command."""

from __future__ import annotations

import itertools
import re

import pytest
import typer.rich_utils
from typer.main import get_command
from typer.testing import CliRunner

from ecomctl.cli.help import BULLET, PANELS, reflow
from ecomctl.cli.main import app

WIDTH = 80
TEXT_WIDTH = WIDTH - 2
"""A description or an epilog is padded by one column on each side."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOX = "│╭╰"


def _command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(get_command(app), ())
    return paths


PATHS = _command_paths()
LEAVES = [p for p in PATHS if p and not any(q[:len(p)] == p and q != p for q in PATHS)]
RUNNABLE = [(), ("serve",), *LEAVES]
"""What a user runs: every command, the group that serves by itself, and the root (its
examples are the first hour's commands)."""


@pytest.fixture(scope="module")
def pages() -> dict[tuple[str, ...], str]:
    """Each page as rendered at 80 columns (typer reads its console width and colours once,
    at import: pinned here, so a wide terminal or FORCE_COLOR cannot change the result)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.rich_utils, "MAX_WIDTH", WIDTH)
        patch.setattr(typer.rich_utils, "FORCE_TERMINAL", False)
        rendered = {}
        for path in PATHS:
            result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
            assert result.exit_code == 0, (path, result.output)
            rendered[path] = "\n".join(
                line.rstrip() for line in _ANSI.sub("", result.stdout).splitlines())
    return rendered


def _page_id(path: tuple[str, ...]) -> str:
    return " ".join(("ecomctl", *path))


def _prose_blocks(page: str) -> list[list[str]]:
    """The text outside the panels (description, epilog), as blocks of consecutive lines,
    without the one column of padding."""
    blocks: list[list[str]] = [[]]
    for line in page.splitlines():
        text = line.rstrip()
        if not text or text[0] in _BOX or text.lstrip().startswith("Usage:"):
            blocks.append([])
        else:
            blocks[-1].append(text.removeprefix(" "))
    return [block for block in blocks if block]


def hard_breaks(page: str, width: int = TEXT_WIDTH) -> list[str]:
    """Lines that end before the terminal's edge although the next line's first word would
    have fitted: rich wraps greedily, so only a line break in the text itself ends a line
    there. List items ("• ") and example lines start lines of their own."""
    found = []
    for block in _prose_blocks(page):
        if block[0] == "Examples":
            continue  # one example per line, by construction (help.examples)
        for line, following in itertools.pairwise(block):
            if following.startswith(BULLET):
                continue
            word = following.split()[0]
            if len(line) + 1 + len(word) <= width:
                found.append(f"{line!r} / {following!r}")
    return found


def test_the_detector_finds_a_hard_break_and_passes_a_soft_one() -> None:
    soft = "x" * 70 + " wraps\n" + "here."
    assert hard_breaks(soft) == []
    assert hard_breaks("Exit 0 when it works, 2 for bad\noptions.") != []
    assert hard_breaks("Faults:\n• one\n• two") == []


@pytest.mark.parametrize("path", PATHS, ids=_page_id)
def test_no_sentence_is_broken_by_a_hard_line_break(
    pages: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> None:
    assert hard_breaks(pages[path]) == [], pages[path]


@pytest.mark.parametrize("path", PATHS, ids=_page_id)
def test_nothing_is_cut_and_flags_take_no_value(
    pages: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> None:
    page = pages[path]
    assert "…" not in page, page
    assert max(len(line) for line in page.splitlines()) <= WIDTH
    rows = [line for line in page.splitlines() if line.startswith("│")]
    # typer's own types (<bool>, <str>, <int range>, <path>) beside options and arguments:
    # a metavar instead
    assert not [row for row in rows if re.search(r"\s<[a-z][a-z |\[\]]*>\s", row)], page


@pytest.mark.parametrize("path", RUNNABLE, ids=_page_id)
def test_every_command_shows_examples(
    pages: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> None:
    page = pages[path]
    assert "\n Examples\n" in page, page
    block = page.split("\n Examples\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # each example on a line of its own: none is wrapped at 80 columns
    assert all(line.startswith((" ecomctl ", " eval ", " DATABASE_URL=")) for line in block), page


def test_the_top_level_commands_are_grouped_by_workflow(
    pages: dict[tuple[str, ...], str],
) -> None:
    titles = re.findall(r"^╭─ (.+?) ─", pages[()], flags=re.MULTILINE)
    assert titles == ["Options", *PANELS]
    panel_of = {command.name: command.rich_help_panel
                for command in get_command(app).commands.values()}  # type: ignore[attr-defined]
    assert set(panel_of.values()) == set(PANELS)
    assert panel_of["stack"] == panel_of["db"] == panel_of["seed"] == "Set up"
    top = pages[()]
    assert top.index("│ stack") < top.index("│ db") < top.index("│ seed")


def test_the_fault_list_is_shown_in_full(pages: dict[tuple[str, ...], str]) -> None:
    from ecomctl.faults.catalogue import FAULTS

    for command in (("checkout", "simulate"), ("load", "run")):
        items = [line for line in pages[command].splitlines() if line.startswith(" • ")]
        assert [item.split()[1].split("[")[0].rstrip(":") for item in items] == list(FAULTS)


def test_checkout_simulate_help_is_shorter(pages: dict[tuple[str, ...], str]) -> None:
    # 117 lines with the fault list cut; every fault in full now, and still shorter
    assert len(pages[("checkout", "simulate")].splitlines()) < 100


def test_reflow_joins_lines_within_a_paragraph_only() -> None:
    text = """First line
        goes on.

        Exit 0 when it works, 2 for bad
        options.

        • an item
          that wraps
        • another
    """
    assert reflow(text) == ("First line goes on.\n\nExit 0 when it works, 2 for bad options."
                            "\n\n• an item that wraps\n• another")
    assert reflow("\b\nkept\nas is") == "\b\nkept\nas is"  # typer drops the mark itself
    assert reflow("One.\n\n\b\nkept\nas is") == "One.\n\nkept\nas is"
