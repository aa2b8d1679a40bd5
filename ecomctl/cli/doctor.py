"""``ecomctl doctor``: can ecomctl's own clients reach every backend?"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import typer
from rich.table import Table

from ecomctl.cli.exit_codes import CommandFailed
from ecomctl.cli.help import examples
from ecomctl.cli.output import console, err_console, ok_mark, print_json

EXAMPLES = examples(
    "ecomctl doctor",
    'eval "$(ecomctl stack env)" && ecomctl doctor --json',
)


def doctor(
    json_output: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check every backend through ecomctl's own clients.

    asyncpg, redis.asyncio, aiokafka, the Elasticsearch client, and the OTLP exporter (a span
    is exported and read back through the trace query API). Reads the same variables as
    every other command (see [bold]ecomctl stack env[/bold]).

    Exit 0 when all work, 1 naming whatever does not.
    """
    from ecomctl.config import Settings
    from ecomctl.diagnostics import run_doctor

    settings = Settings.from_env()
    results = asyncio.run(run_doctor(settings))
    failed = [r for r in results if not r.ok]
    if json_output:
        print_json({"ok": not failed, "checks": [asdict(r) for r in results]})
    else:
        table = Table(title="ecomctl doctor")
        for column in ("backend", "ok", "version", "latency", "detail"):
            table.add_column(column)
        for r in results:
            latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
            table.add_row(r.backend, ok_mark(r.ok), r.version or "-", latency, r.detail)
        console.print(table)
    if failed:
        err_console.print(f"[red]not working: {', '.join(r.backend for r in failed)}[/red]")
        for r in failed:
            log = _local_log_file(r.backend)
            hint = f"log: {log}" if log else "not a local-stack backend, or never started"
            err_console.print(f"  {r.backend}: {r.detail}\n    {hint}", soft_wrap=True)
        err_console.print("`ecomctl stack status` shows the local stack; `stack up` restarts it.")
        raise CommandFailed()


def _local_log_file(check: str) -> str | None:
    """The local stack's log for a failed check, when that backend was started here."""
    from ecomctl.config import cache_dir, state_dir
    from ecomctl.stack.backend import StackPaths

    backend = {"traces": "jaeger"}.get(check, check)
    log = StackPaths(state=state_dir(), cache=cache_dir()).log_file(backend)
    return str(log) if log.exists() else None
