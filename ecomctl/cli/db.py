"""``ecomctl db``: the schema."""

from __future__ import annotations

import asyncio

import typer

from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import console, print_json

app = Typer(help="Database schema: versioned SQL migrations.", no_args_is_help=True)


@app.command(epilog=examples(
    "ecomctl db migrate",
    "DATABASE_URL=postgresql://user:pass@db:5432/shop ecomctl db migrate",
))
def migrate(
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Apply pending migrations to [bold]DATABASE_URL[/bold] (idempotent; safe to rerun)."""
    from ecomctl.adapters.postgres.migrations import load_migrations, migrate
    from ecomctl.config import Settings
    from ecomctl.resources import fixtures_dir

    settings = Settings.from_env()
    migrations = load_migrations(fixtures_dir() / "migrations")
    report = asyncio.run(migrate(settings.database_url, migrations))
    if json_output:
        print_json(
            {
                "applied": [f"{m.version:04d}_{m.name}" for m in report.applied],
                "already_applied": report.already_applied,
                "latest_version": migrations[-1].version,
            }
        )
        return
    for m in report.applied:
        console.print(f"applied [bold]{m.version:04d}_{m.name}[/bold]")
    console.print(
        f"schema at version {migrations[-1].version:04d}: "
        f"{len(report.applied)} applied now, {report.already_applied} already applied"
    )
