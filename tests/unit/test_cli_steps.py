"""Long steps show their elapsed time while they run (`stack install`, `stack up`, `bench`):
the renderer driven through the callbacks the core calls, on a terminal (a live line per
running step) and in a log (plain lines, readable one by one), and wired into the commands."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ecomctl.cli import stack as stack_cli
from ecomctl.cli.main import app
from ecomctl.cli.steps import Steps, format_elapsed
from ecomctl.results.bench import BenchMachine, BenchResult
from ecomctl.stack.manager import BackendStatus, StackProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=80, color_system=None), out


def _lines(out: io.StringIO) -> list[str]:
    return [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]


def _install_like_the_stack(report: StackProgress, clock: Clock) -> None:
    """What LocalStack.install reports for two backends built side by side."""
    report("postgres", "apt-get install postgresql")
    report("jaeger", "go build (a few minutes on 2 cores, once)")
    clock.now += 12.3
    report("postgres", "installed 16.4", done=True)
    clock.now += 180.0


def test_a_log_gets_plain_lines_with_each_steps_time() -> None:
    console, out = _console(terminal=False)
    clock = Clock()
    with Steps(console, lane_width=13, clock=clock, tick_s=None) as steps:
        _install_like_the_stack(steps.report, clock)
        steps.report("jaeger", "installed 1.62", done=True)
    assert _lines(out) == [
        "     postgres  apt-get install postgresql...",
        "       jaeger  go build (a few minutes on 2 cores, once)...",
        "     postgres  apt-get install postgresql: 12.3s",
        "     postgres  installed 16.4",
        "       jaeger  go build (a few minutes on 2 cores, once): 3m12s",
        "       jaeger  installed 1.62",
    ]


def test_a_log_hears_from_a_long_step_every_30_seconds() -> None:
    console, out = _console(terminal=False)
    clock = Clock()
    with Steps(console, clock=clock, tick_s=None) as steps:
        steps.start("bench", "pgbench -i -s 10 (the seeding floor)")
        clock.now += 29.0
        steps.beat()
        assert len(_lines(out)) == 1  # not yet
        clock.now += 2.0
        steps.beat()
        steps.beat()  # once per 30 s
        clock.now += 30.0
        steps.beat()
        steps.start("bench", "ecomctl seed --scale small (scratch database)")
    assert _lines(out)[1:] == [
        "bench  pgbench -i -s 10 (the seeding floor): 31.0s so far",
        "bench  pgbench -i -s 10 (the seeding floor): 1m01s so far",
        "bench  pgbench -i -s 10 (the seeding floor): 1m01s",
        "bench  ecomctl seed --scale small (scratch database)...",
        "bench  ecomctl seed --scale small (scratch database): 0.0s",
    ]


def test_a_terminal_shows_the_elapsed_time_while_the_step_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    console, out = _console(terminal=True)
    clock = Clock()
    with Steps(console, lane_width=13, clock=clock) as steps:
        _install_like_the_stack(steps.report, clock)
        live = steps.renderable()
        assert live is not None
        shown, _ = _console(terminal=False)
        with shown.capture() as capture:
            shown.print(live)
        running = capture.get()
        # the build runs, its time so far beside it; postgres is over, so not live
        assert re.search(r"jaeger go build \(a few minutes on 2 cores, once\) +3m12s", running)
        assert "postgres" not in running
        steps.report("jaeger", "installed 1.62", done=True)
    text = out.getvalue()
    assert "     postgres  apt-get install postgresql: 12.3s" in text
    assert "       jaeger  go build (a few minutes on 2 cores, once): 3m12s" in text


def test_ci_gets_plain_lines_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    console, out = _console(terminal=True)
    with Steps(console, clock=Clock(), tick_s=None) as steps:
        assert steps.renderable() is None
        steps.start("bench", "gateway, one API process (wrk, then Locust)")
    assert _lines(out) == ["bench  gateway, one API process (wrk, then Locust)...",
                           "bench  gateway, one API process (wrk, then Locust): 0.0s"]


def test_a_step_cut_short_says_so() -> None:
    console, out = _console(terminal=False)
    clock = Clock()
    with pytest.raises(KeyboardInterrupt), Steps(console, clock=clock, tick_s=None) as steps:
        steps.start("bench", "pgbench running the SQL of one checkout")
        clock.now += 4.0
        raise KeyboardInterrupt
    assert _lines(out)[-1] == "bench  pgbench running the SQL of one checkout: stopped after 4.0s"


@pytest.mark.parametrize(("seconds", "text"), [
    (0.04, "0.0s"), (12.34, "12.3s"), (59.9, "59.9s"), (60, "1m00s"), (192.5, "3m12s"),
    (3725, "1h02m"),
])
def test_elapsed_times_read_short(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


# -- the commands ------------------------------------------------------------------------------


class _FakeStack:
    """LocalStack's reporting, without installing or starting anything."""

    def install(self, names: Any, progress: StackProgress) -> list[str]:
        progress("kafka", "resolving kafka_2.13:4.0.0 and its dependencies from Maven Central")
        progress("kafka", "installed 4.0.0", done=True)
        return ["kafka"]

    async def up(self, names: Any, *, timeout: float, progress: StackProgress,
                 ) -> list[BackendStatus]:
        progress("redis", "preparing")
        progress("redis", "started (pid 4242), waiting until it serves")
        progress("redis", "healthy: PING, SET/GET", done=True)
        return [BackendStatus(name="redis", pid=4242, port=16379, running=True, healthy=True,
                              version="7.0", detail="ok", log_file="redis.log", rss_bytes=0)]


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "CI": "true"})
    assert result.exit_code == 0, result.output
    return result.output


def test_stack_install_and_up_report_each_step_with_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stack_cli, "_stack", _FakeStack)
    installed = _invoke("stack", "install")
    assert re.search(r"kafka  resolving kafka_2\.13:4\.0\.0 .*Maven Central: \d+\.\ds\n",
                     installed), installed
    assert "        kafka  installed 4.0.0\n" in installed
    monkeypatch.setattr(stack_cli, "_print_pages", lambda healthy: None)
    started = _invoke("stack", "up", "redis")
    assert re.search(r"redis  started \(pid 4242\), waiting until it serves: \d+\.\ds\n",
                     started), started
    assert "redis  healthy: PING, SET/GET\n" in started


def test_bench_reports_each_step_with_its_time(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    def run_bench(settings: Any, *, quick: bool, work_dir: Path,
                  progress: Any) -> BenchResult:
        progress("pgbench -i -s 1 (the seeding floor)")
        progress("ecomctl seed --scale small (scratch database)")
        return BenchResult.measured([], started_at="2024-01-01T00:00:00+00:00", quick=quick,
                                    duration_s=1.0, machine=BenchMachine(cores=2))

    monkeypatch.setattr("ecomctl.bench.run.run_bench", run_bench)
    output = _invoke("bench", "--quick", "--keep", str(tmp_path))
    assert re.search(r"bench  pgbench -i -s 1 \(the seeding floor\): \d+\.\ds\n", output)
    assert re.search(r"bench  ecomctl seed --scale small \(scratch database\): \d+\.\ds\n",
                     output)
