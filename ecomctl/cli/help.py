"""Help pages that read well at 80 columns, for every command of ``ecomctl``.

Typer's rich help keeps a docstring's line breaks after its first paragraph, so text wrapped
at 100 columns in the source came out ragged in an 80-column terminal; it shows a ``<bool>``
type beside every flag, as if it took a value, and ``<str>``/``<int range>`` for the rest.
The command and group classes here fix that in one place: each paragraph of a command's help
becomes one line that rich wraps to the terminal, flags show no type, other options a
conventional metavar (``INTEGER``, ``FILE``, ``[a|b]``) unless they name their own
(``DURATION``, ``PERCENT``), and a group lists its commands by workflow panel.

Every ``typer.Typer`` of the CLI is this module's ``Typer``, so its commands and groups get
these classes without naming them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.main import get_command_name

SET_UP = "Set up"
RUN = "Run"
ANALYSE = "Analyse"
CI = "CI"
OPERATE = "Operate"
PANELS = (SET_UP, RUN, ANALYSE, CI, OPERATE)
"""The top-level workflow panels, in the order a newcomer meets them."""

VERBATIM = "\b"
"""Click's mark for a paragraph whose line breaks are meant."""
BULLET = "• "
"""A list item in a help text: it starts a line of its own."""

_TYPE_NAMES = {"int": "INTEGER", "int range": "INTEGER", "float": "NUMBER",
               "float range": "NUMBER", "str": "TEXT", "path": "PATH", "file": "FILE",
               "dir": "DIR"}
_MAX_INLINE_CHOICES = 12
"""Wider than this, ``[a|b|...]`` squeezes the help column: name a metavar and list the
choices in the help instead (a unit test renders every page at 80 columns)."""


def reflow(text: str | None) -> str | None:
    """Each paragraph of ``text`` on one line, for rich to wrap (paragraphs stay apart).

    A list, a paragraph of lines that start with ``• ``, gets one line per item; a
    paragraph that starts with ``\\b`` keeps its lines as they are (typer drops that mark
    from the first paragraph only, so it goes from the others here).
    """
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(_reflow_paragraph(p, first=i == 0) for i, p in enumerate(paragraphs))


def _reflow_paragraph(paragraph: str, *, first: bool) -> str:
    if paragraph.startswith(VERBATIM):
        return paragraph if first else paragraph.removeprefix(VERBATIM).lstrip("\n")
    items: list[list[str]] = []
    for line in paragraph.splitlines():
        line = line.strip()
        if not items or line.startswith(BULLET):
            items.append([line])
        else:
            items[-1].append(line)
    return "\n".join(" ".join(item) for item in items)


def examples(*commands: str) -> str:
    """An epilog of example command lines, one per line (epilogs keep their lines)."""
    return "[bold]Examples[/bold]\n" + "\n".join(escape(c) for c in commands)


def _metavar(param: TyperOption, ctx: Any) -> str:
    """A conventional metavar for an option that names none: what its type displays
    (``<int range>``, ``<list[str]>``, ``<inprocess|http>``) as click writes it."""
    label = param.display_type(ctx).removeprefix("<").removesuffix(">")
    if label.startswith("list[") and label.endswith("]"):
        label = label[len("list["):-1]
    if label in _TYPE_NAMES:
        return _TYPE_NAMES[label]
    if "|" in label and len(label) + 2 <= _MAX_INLINE_CHOICES:
        return f"[{label}]"
    return (param.name or "value").upper()


def _range_text(low: float | None, high: float | None) -> str:
    """``1-64``, ``≥1``, ``≤1``: one word, so that a line never breaks inside it."""
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    return f"≥{low:g}" if low is not None else f"≤{high:g}"


def _range_to_help(param: TyperOption | TyperArgument) -> None:
    """Show a number's bounds after its help rather than beside its metavar, where
    ``[1<=x<=10000]`` widened the metavar column of every row and squeezed the help
    column. Only the displayed bounds move: typer checks the values against the
    option's own declaration (a unit test holds it to that)."""
    if param.min is None and param.max is None:
        return
    bounds = f"[{_range_text(param.min, param.max)}]"
    param.help = f"{param.help} {bounds}" if param.help else bounds
    param.min = param.max = None


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: typer puts its own type beside it
    (``<path>``, ``<list[str]>``) whatever the metavar says."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def tidy_params(params: list[Any], ctx: Any) -> list[Any]:
    """Flags without a type, other options with a metavar (their own if they name one),
    arguments by their metavar, numbers' bounds in their help."""
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _metavar(param, ctx)
        elif type(param) is TyperArgument:
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.__class__ = _Argument  # the same argument; only its help display differs
        if isinstance(param, (TyperOption, TyperArgument)) and not getattr(param, "count", 0):
            _range_to_help(param)
    return params


class _TidyHelp:
    """Reflowed help and proper metavars, for a command or a group (mixed in first)."""

    help: str | None
    short_help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)
        self.short_help = reflow(self.short_help)

    def get_params(self, ctx: Any) -> list[Any]:
        return tidy_params(super().get_params(ctx), ctx)  # type: ignore[misc]


class HelpCommand(_TidyHelp, TyperCommand):
    """A command whose help reflows and whose options show proper metavars."""


class HelpGroup(_TidyHelp, TyperGroup):
    """A group like ``HelpCommand``, listing its commands panel by panel (``PANELS``
    first, in their order), each panel in the order the commands were added."""

    command_order: list[str] = []  # noqa: RUF012 (set per group by Typer, read-only here)
    """The names in the order they were added (typer lists commands before groups)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)

        def rank(name: str) -> tuple[int, int]:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            added = (self.command_order.index(name) if name in self.command_order
                     else len(self.command_order))
            return (PANELS.index(panel) if panel in PANELS else len(PANELS)), added

        return sorted(names, key=rank)


class Typer(typer.Typer):
    """``typer.Typer`` whose groups and commands are ``HelpGroup`` and ``HelpCommand``
    unless a command names its own class (which should derive from ``HelpCommand``)."""

    def __init__(self, **kwargs: Any) -> None:
        self._added: list[str] = []
        group: type[HelpGroup] = kwargs.pop("cls", None) or HelpGroup
        # A class of its own, to hand this app's list of names to the group typer builds.
        kwargs["cls"] = type(group.__name__, (group,), {"command_order": self._added})
        super().__init__(**kwargs)

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        decorator = super().command(name, cls=cls or HelpCommand, **kwargs)

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self._added.append(name or get_command_name(function.__name__))
            return decorator(function)

        return register

    def add_typer(self, typer_instance: typer.Typer, *, name: str | None = None,
                  **kwargs: Any) -> None:
        self._added.append(name or typer_instance.info.name or "")
        super().add_typer(typer_instance, name=name, **kwargs)
