"""``ecomctl bench``: ecomctl's own cost, as ratios against floors measured in the same run."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ecomctl.cli.help import examples
from ecomctl.cli.output import console, err_console, print_json
from ecomctl.cli.result_output import json_option, out_option
from ecomctl.cli.steps import Steps

if TYPE_CHECKING:
    from ecomctl.results import BenchResult


EXAMPLES = examples(
    "ecomctl bench --quick",
    "ecomctl bench --out bench.json && ecomctl gate check bench.json",
)


def bench(
    quick: bool = typer.Option(
        False, "--quick", help="Short runs (a small seed, 6 s per wrk or Locust run; about "
        "90 s), for CI; without it, a medium seed and 20 s runs."
    ),
    out: Path = out_option("the result (schema ecomctl.bench/v1)"),
    json_output: bool = json_option("the result (schema ecomctl.bench/v1)"),
    keep: Path = typer.Option(
        None, "--keep", metavar="DIR",
        help="Keep every log, wrk output and Locust CSV in this directory."
    ),
) -> None:
    """Measure ecomctl against floors taken in the same run on this machine.

    Each row is ecomctl's figure against its floor:

    • [bold]seed[/bold]: ecomctl seed rows/s vs pgbench -i (COPY).
    • [bold]gateway[/bold]: a cached product page through `serve --role api --workers 1`
      vs a bare Starlette app on the same uvicorn, both driven by wrk (1 thread, 32
      connections; installed from Debian when missing).
    • [bold]gateway-locust[/bold]: the same under Locust's FastHttpUser (32 users, no wait).
    • [bold]tracing[/bold], [bold]tracing-locust[/bold]: that gateway at 100% sampling vs
      the sampler off. Here and below, spans go to a discarding OTLP sink, so the trace
      backend's ingestion is not measured.
    • [bold]workers[/bold]: one API process per core vs one process (wrk).
    • [bold]checkout[/bold]: paid checkouts/s of `checkout simulate --processes <cores>` vs
      pgbench running the SQL one checkout sends (captured from the code).
    • [bold]consumer-lag[/bold]: the slowest Kafka consumer's p99 lag in a second
      simulation held at 40 checkouts/s (--arrival-rate) vs 1 s.
    • [bold]drain[/bold]: the flat-out run plus catching up afterwards vs the run plus 5 s.
    • [bold]consumers[/bold]: events/s of ecomctl's Kafka consumer vs aiokafka alone.

    Runs in a scratch database (ecomctl_bench), Redis database 15, search alias
    ecomctl-bench-products and Kafka topics prefixed ecomctl-bench.: the shop you seeded is
    not touched. Needs the stack (ecomctl stack up). Each step shows its elapsed time while
    it runs (plain lines in a pipe or with CI=true). It first watches the machine for 2 s
    and warns (and records in the result) when other processes keep more than a quarter
    of a core busy: ratios measured beside them understate ecomctl.

    Exit 0 when every figure was measured (the table says which ratios reach their
    targets), 1 when a measurement failed.
    """
    from ecomctl.bench.run import run_bench
    from ecomctl.config import Settings
    from ecomctl.results import write_result

    # One lane: each step lasts until the next one starts, the last until the bench ends.
    with _work_dir(keep) as work_dir, Steps(err_console) as steps:
        result = run_bench(Settings.from_env(), quick=quick, work_dir=Path(work_dir),
                           progress=functools.partial(steps.start, "bench"))
    if json_output:
        print_json(result.to_dict())
    else:
        _print_table(result)
    _warn_if_busy(result)
    if out is not None:
        write_result(result, out)
        err_console.print(f"bench result written to {out}")


def _work_dir(keep: Path | None) -> Any:
    if keep is None:
        return tempfile.TemporaryDirectory(prefix="ecomctl-bench-")
    keep.mkdir(parents=True, exist_ok=True)
    import contextlib

    return contextlib.nullcontext(str(keep))


def _warn_if_busy(result: BenchResult) -> None:
    """Ratios taken on a busy machine understate ecomctl: say so, and who was busy."""
    from rich.markup import escape

    from ecomctl.bench.background import BUSY_CORES_WARNING

    machine = result.machine
    if machine.busy_cores_before is None or machine.busy_cores_before <= BUSY_CORES_WARNING:
        return
    who = escape(", ".join(f"{p.command} ({p.cores:.2f})"
                           for p in machine.busiest_before or []))
    err_console.print(
        f"[yellow]warning:[/yellow] before the bench, {machine.busy_cores_before:.2f} of "
        f"{machine.cores} cores were busy{f': {who}' if who else ''}. Every ratio was "
        "measured on what they left; see docs/troubleshooting.md (\"Jaeger uses a lot of "
        "CPU\") and run it again on a quiet machine.",
        markup=True, highlight=False, soft_wrap=False,
    )


def _print_table(result: BenchResult) -> None:
    from ecomctl.cli.render_result import render_result

    render_result(result, console)
