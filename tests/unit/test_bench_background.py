"""The bench's look at how busy the machine was before it started, from a fake ``/proc``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecomctl.bench.background import (
    background_between,
    command_line,
    measure_background,
    read_ticks,
)
from ecomctl.cli import bench as bench_cli
from ecomctl.results.bench import BenchMachine, BenchResult, BusyBefore


def _proc(root: Path, cpu: list[int], processes: dict[int, tuple[str, int, str]]) -> Path:
    """A /proc with two cores: ``cpu`` the aggregate line's first eight fields, and each
    process's (name, utime + stime, command line)."""
    root.mkdir(parents=True, exist_ok=True)
    fields = " ".join(map(str, cpu))
    (root / "stat").write_text(f"cpu  {fields} 0 0\ncpu0 {fields}\ncpu1 {fields}\n"
                               "intr 1 2 3\n")
    for pid, (name, ticks, argv) in processes.items():
        directory = root / str(pid)
        directory.mkdir(exist_ok=True)
        # utime and stime are fields 14 and 15; the name may hold spaces and parentheses.
        rest = " ".join(["S"] + ["0"] * 10 + [str(ticks), "0"] + ["0"] * 30)
        (directory / "stat").write_text(f"{pid} ({name}) {rest}\n")
        (directory / "cmdline").write_bytes(argv.replace(" ", "\0").encode() + b"\0")
    return root


def test_the_busy_cores_and_the_busiest_processes_come_from_tick_deltas(tmp_path: Path) -> None:
    # 2 cores over 100 ticks each: 200 ticks in all, 90 of them busy (user+system), 10 iowait.
    before = read_ticks(_proc(tmp_path / "a", [0, 0, 0, 0, 0, 0, 0, 0],
                              {10: ("jaeger (v2)", 0, ""), 11: ("idle", 5, ""),
                               12: ("gone", 0, "")}))
    after = read_ticks(_proc(tmp_path / "b", [60, 0, 30, 100, 10, 0, 0, 0],
                             {10: ("jaeger (v2)", 86, ""), 11: ("idle", 5, ""),
                              13: ("new", 50, "")}))
    load = background_between(before, after)
    assert load.busy_cores == 0.9  # 90 busy ticks of 100 per core
    assert [(p.name, p.cores) for p in load.busiest] == [("jaeger (v2)", 0.86)]


def test_the_bench_itself_is_left_out(tmp_path: Path) -> None:
    before = read_ticks(_proc(tmp_path / "a", [0] * 8, {10: ("python3", 0, "")}))
    after = read_ticks(_proc(tmp_path / "b", [20, 0, 0, 180, 0, 0, 0, 0],
                             {10: ("python3", 20, "")}))
    load = background_between(before, after, exclude=frozenset({10}))
    assert load.busiest == () and load.busy_cores == 0.2


def test_processes_are_named_by_their_command_line(tmp_path: Path) -> None:
    argv = "/opt/bin/jaeger-2.13.0 --config=/var/lib/ecomctl/data/jaeger/config.yaml"
    proc = _proc(tmp_path, [0] * 8, {10: ("jaeger-2.13.0", 0, argv)})
    assert command_line(proc, 10, limit=80) == \
        "jaeger-2.13.0 --config=/var/lib/ecomctl/data/jaeger/config.yaml"
    assert command_line(proc, 10, limit=20) == "jaeger-2.13.0 --con…"
    assert command_line(proc, 99) is None
    load = measure_background(0.0, proc=proc)  # nothing moved: nobody busy
    assert load is not None and load.busy_cores == 0.0 and load.busiest == ()
    assert measure_background(0.0, proc=tmp_path / "missing") is None


def _result(busy: float | None) -> BenchResult:
    machine = BenchMachine(cores=2, busy_cores_before=busy, busiest_before=[
        BusyBefore(command="jaeger-2.13.0 --config=[x]", cores=0.86)])
    return BenchResult.measured([], started_at="2026-12-07T00:00:00+00:00", quick=True,
                                duration_s=1.0, machine=machine)


def test_a_busy_machine_is_named_in_a_warning_and_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _result(0.9)
    assert BenchResult.parse(result.to_dict()).machine == result.machine  # round trip
    bench_cli._warn_if_busy(result)
    warning = " ".join(capsys.readouterr().err.split())
    assert warning.startswith("warning: before the bench, 0.90 of 2 cores were busy: "
                              "jaeger-2.13.0 --config=[x] (0.86).")
    for quiet in (_result(0.1), _result(None)):
        bench_cli._warn_if_busy(quiet)
        assert capsys.readouterr().err == ""
