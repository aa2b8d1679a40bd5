"""``ecomctl seed``: fill the shop with realistic, reproducible data."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ecomctl.cli.help import examples
from ecomctl.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from rich.progress import TaskID

    from ecomctl.seed.run import SeedProgress, SeedReport

EXAMPLES = examples(
    "ecomctl seed",
    "ecomctl seed --scale medium --reset --warm-cache",
)


class Scale(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


def seed(
    scale: Scale = typer.Option(Scale.SMALL, "--scale",
                                help="Preset counts: small, medium or large."),
    users: int = typer.Option(None, "--users", help="Users (demo shoppers), over the preset."),
    products: int = typer.Option(None, "--products", help="Products, over the preset."),
    categories: int = typer.Option(None, "--categories", help="Categories, over the preset."),
    orders: int = typer.Option(None, "--orders", help="Past orders, over the preset."),
    seed_value: int = typer.Option(42, "--seed", help="Same seed, same data, byte for byte."),
    locale: str = typer.Option("en_US", "--locale", metavar="LOCALE",
                               help="Faker locale for names and brands."),
    reset: bool = typer.Option(
        False, "--reset", help="Empty the shop first (tables, Redis keys, search index)."
    ),
    warm_cache: bool = typer.Option(
        False, "--warm-cache", help="Load the 1,000 best sellers into the product cache (Redis)."
    ),
    credentials: Path = typer.Option(
        None, "--credentials", metavar="FILE", help="Where to write the shoppers' credentials "
        "(default: shoppers.json in the ecomctl state directory).",
    ),
    workers: int = typer.Option(
        None, "--workers", min=1, metavar="N",
        help="Processes that build rows beside the COPY (default: "
        "one per core; plans under ~10,000 rows per worker build in one). The data is the "
        "same whatever the number.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Seed users, categories, products, stock and past orders, fast (PostgreSQL COPY).

    Also indexes the products for search and writes the demo shoppers' credentials for
    simulations. Running it again without [bold]--reset[/bold] leaves a seeded shop alone.
    The search alias comes from ECOMCTL_SEARCH_ALIAS (default ecomctl-products).
    """
    from ecomctl.config import Settings
    from ecomctl.seed.credentials import default_credentials_path
    from ecomctl.seed.plan import make_plan
    from ecomctl.seed.run import DEFAULT_WARM_PRODUCTS, seed_shop

    plan = make_plan(
        scale.value, users=users, categories=categories, products=products, orders=orders,
        seed=seed_value, locale=locale,
    )
    settings = Settings.from_env()
    path = credentials or default_credentials_path()
    with _ProgressBars() as bars:
        report = asyncio.run(seed_shop(
            settings, plan, reset=reset, credentials_path=path, search_alias=settings.search_alias,
            warm_cache=min(DEFAULT_WARM_PRODUCTS, plan.products) if warm_cache else 0,
            progress=bars.update, workers=workers,
        ))
    if json_output:
        print_json(report.to_json())
    elif not report.seeded:
        console.print(report.message)
    else:
        _print_summary(report)


class _ProgressBars:
    """One rich progress bar per step, created when the core first reports the step."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err_console, transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressBars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, event: SeedProgress) -> None:
        task = self._tasks.get(event.step)
        if task is None:
            task = self._tasks[event.step] = self._progress.add_task(
                event.step, total=event.total
            )
        self._progress.update(task, completed=event.done, total=event.total)


def _print_summary(report: SeedReport) -> None:
    table = Table(title=f"ecomctl seed (seed {report.plan.seed}, {report.plan.locale})")
    for column in ("table", "rows", "seconds", "rows/s"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for stats in report.tables:
        table.add_row(stats.step, f"{stats.rows:,}", f"{stats.seconds:.2f}",
                      f"{stats.rows_per_s:,.0f}")
    table.add_section()
    table.add_row("[bold]total (wall)[/bold]", f"{report.total_rows:,}",
                  f"{report.load_seconds:.2f}", f"[bold]{report.rows_per_s:,.0f}[/bold]")
    table.add_section()
    for step in (report.search, report.cache):
        if step is not None:
            table.add_row(step.step, f"{step.rows:,}", f"{step.seconds:.2f}",
                          f"{step.rows_per_s:,.0f}")
    console.print(table)
    console.print(
        "A table's seconds are its generation plus its COPY; generation runs beside the "
        f"COPY ({_builders(report.workers)}), so the total is wall-clock time.", style="dim",
    )
    console.print(f"shoppers' credentials: [bold]{report.credentials_path}[/bold]")


def _builders(workers: int) -> str:
    return f"in {workers} worker processes" if workers else "in one thread"
