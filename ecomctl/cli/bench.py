"""``ecomctl bench``: ecomctl's own cost, as ratios against floors measured in the same run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ecomctl.cli.output import console, err_console, ok_mark


def bench(
    quick: bool = typer.Option(
        False, "--quick", help="Short runs (a small seed, 6 s per Locust run; about 90 s), "
        "for CI; without it, a medium seed and 20 s runs."
    ),
    json_file: Path = typer.Option(
        None, "--json", help="Write the result (schema ecomctl.bench/v1) to this file."
    ),
    keep: Path = typer.Option(
        None, "--keep", help="Keep every log and Locust CSV in this directory."
    ),
) -> None:
    """Measure ecomctl against floors taken in the same run on this machine.

    [bold]seed[/bold]: ecomctl seed rows/s vs pgbench -i (COPY). [bold]gateway[/bold]: a
    cached product page through `serve --role api --workers 1` vs a bare Starlette app on the
    same uvicorn, both under the same Locust FastHttpUser (32 users, no wait).
    [bold]tracing[/bold]: that gateway at 100% sampling vs the sampler off.
    [bold]workers[/bold]: one API process per core vs one process.
    [bold]checkout[/bold]: paid checkouts/s of `checkout simulate --processes <cores>` vs
    pgbench running the SQL one checkout sends (captured from the code).
    [bold]consumer-lag[/bold]: the slowest Kafka consumer's p99 lag during that run vs 1 s.
    [bold]drain[/bold]: that run plus catching up afterwards vs the run plus 5 s.
    [bold]consumers[/bold]: events/s of ecomctl's Kafka consumer vs aiokafka alone.

    Runs in a scratch database (ecomctl_bench), Redis database 15, search alias
    ecomctl-bench-products and Kafka topics prefixed ecomctl-bench.: the shop you seeded is
    not touched. Needs the stack (ecomctl
    stack up). Exit 0 when every figure was measured (the table says which ratios reach
    their targets), 1 when a measurement failed.
    """
    from ecomctl.bench.run import run_bench
    from ecomctl.config import Settings

    def progress(message: str) -> None:
        err_console.print(f"[cyan]bench[/cyan] {message}...")

    with _work_dir(keep) as work_dir:
        result = run_bench(Settings.from_env(), quick=quick, work_dir=Path(work_dir),
                           progress=progress)
    _print_table(result)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(result, indent=2) + "\n")
        err_console.print(f"bench result written to {json_file}")


def _work_dir(keep: Path | None) -> Any:
    if keep is None:
        return tempfile.TemporaryDirectory(prefix="ecomctl-bench-")
    keep.mkdir(parents=True, exist_ok=True)
    import contextlib

    return contextlib.nullcontext(str(keep))


def _print_table(result: dict[str, Any]) -> None:
    machine = result["machine"]
    table = Table(title=f"ecomctl bench ({'quick' if result['quick'] else 'full'}, "
                        f"{machine['cores']} cores, {machine.get('event_loop', 'asyncio')} "
                        f"loop, {machine.get('http_parser', 'h11')}, "
                        f"{result['duration_s']:.0f}s)")
    for column in ("row", "floor", "ecomctl", "ratio", "target", "ok"):
        table.add_column(column, justify="right" if column in ("ratio", "target") else "left")
    for row in result["rows"]:
        floor, own = row["floor"], row["ecomctl"]
        table.add_row(
            f"{row['name']}\n[dim]{row['what']}[/dim]",
            f"{_number(floor['value'])} {floor['unit']}\n[dim]{floor['what']}[/dim]",
            f"{_number(own['value'])} {own['unit']}\n[dim]{own['what']}[/dim]",
            f"{row['ratio']:.2f}x", f">= {row['target']:g}x", ok_mark(row["passed"]),
        )
    console.print(table)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
