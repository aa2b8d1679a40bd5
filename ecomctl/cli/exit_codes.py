"""How a command ends: the one map from an outcome to an exit code.

    0    ok
    1    a runtime or backend failure, or a check the command ran failed
         (a broken invariant, an unhealthy backend, too many failed requests)
    2    a usage or configuration error (bad flags, settings or files)
    3    a performance or trace gate was broken
    130  interrupted (Ctrl-C); 143 after SIGTERM

Commands never pick a number: they raise. ``ecomctl.cli.main.run`` turns what they raise into
the code with ``exit_code_of``, so a new outcome is one line in ``EXIT_CODES``.
"""

from __future__ import annotations

import click

from ecomctl.cli.termination import interrupted_exit_code
from ecomctl.errors import ConfigError, EcomctlError

FAILED = 1
USAGE = 2
GATE_BROKEN = 3


class CommandFailed(Exception):
    """The command ran, and what it checked failed; ``str(exc)`` (maybe empty, when the
    command has shown the details already) is printed as the error line."""


class GateBroken(CommandFailed):
    """A gate (``gate check``, ``gate compare``, ``traces diff --fail-on``) was broken."""


EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (GateBroken, GATE_BROKEN),
    (CommandFailed, FAILED),
    (ConfigError, USAGE),
    (click.UsageError, USAGE),
    (EcomctlError, FAILED),
)
"""Most specific first: the first class the exception is an instance of decides."""


def exit_code_of(exc: BaseException) -> int:
    """The exit code for ``exc``; an interruption's depends on the signal that caused it."""
    if isinstance(exc, KeyboardInterrupt):
        return interrupted_exit_code()
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return FAILED
