"""How busy the machine was before the bench: other processes' CPU, from ``/proc``.

Every ratio of the bench compares two figures taken on the same cores. A process that
burns CPU meanwhile takes it from both sides, but not equally (a floor that needs one core
loses less than ecomctl with its export process): the ratios come out lower than the
code's. The trace backend compacting a large store after a day of test runs took 40-86%
of a core here for minutes. So the bench samples the machine before it starts, and says
which processes were busy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_S = 2.0
BUSY_CORES_WARNING = 0.25
"""More than this many cores busy before the bench: ``ecomctl bench`` warns."""
TOP_PROCESSES = 3


@dataclass(frozen=True)
class BusyProcess:
    name: str
    cores: float  # CPU used over the sample, in cores (1.0: one core the whole time)
    pid: int = 0


@dataclass(frozen=True)
class BackgroundLoad:
    busy_cores: float
    """Cores busy over the sample (all processes), 0 to the number of cores."""
    busiest: tuple[BusyProcess, ...]


def measure_background(seconds: float = SAMPLE_S, proc: Path = Path("/proc"),
                       exclude: frozenset[int] = frozenset()) -> BackgroundLoad | None:
    """The machine's load over ``seconds``, or None where there is no ``/proc/stat``.
    ``exclude``: process ids not to name (the bench itself)."""
    try:
        before = read_ticks(proc)
        time.sleep(seconds)
        after = read_ticks(proc)
    except OSError:
        return None
    load = background_between(before, after, exclude)
    return BackgroundLoad(load.busy_cores, tuple(
        BusyProcess(command_line(proc, p.pid) or p.name, p.cores, p.pid)
        for p in load.busiest))


def command_line(proc: Path, pid: int, limit: int = 60) -> str | None:
    """``name arg arg`` of a process, shortened (the command name alone says "python3")."""
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [Path(argv[0].decode(errors="replace")).name,
             *(a.decode(errors="replace") for a in argv[1:] if a)]
    line = " ".join(words)
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Ticks:
    """One reading of ``/proc``: ticks summed over every core, and each process's."""

    busy: int
    total: int
    cores: int
    processes: dict[int, tuple[str, int]]  # pid: (command name, user + system ticks)


def read_ticks(proc: Path) -> Ticks:
    cores, busy, total = 0, 0, 0
    for line in (proc / "stat").read_text().splitlines():
        name, *fields = line.split()
        if name == "cpu":
            values = [int(v) for v in fields]
            total = sum(values[:8])  # user nice system idle iowait irq softirq steal
            busy = total - values[3] - values[4]
        elif name.startswith("cpu"):
            cores += 1
    processes: dict[int, tuple[str, int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        command = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        processes[int(entry.name)] = (command, int(fields[11]) + int(fields[12]))
    return Ticks(busy, total, max(cores, 1), processes)


def background_between(before: Ticks, after: Ticks,
                       exclude: frozenset[int] = frozenset()) -> BackgroundLoad:
    """The load between two readings: cores busy, and the busiest processes (a process
    started or ended in between is left out)."""
    total = after.total - before.total
    if total <= 0:
        return BackgroundLoad(0.0, ())
    per_core = total / after.cores  # ticks that one core had in between
    busiest = []
    for pid, (name, ticks) in after.processes.items():
        earlier = before.processes.get(pid)
        if earlier is None or pid in exclude:
            continue
        used = (ticks - earlier[1]) / per_core
        if used >= 0.01:
            busiest.append(BusyProcess(name, round(used, 2), pid))
    busiest.sort(key=lambda p: p.cores, reverse=True)
    busy_cores = (after.busy - before.busy) / per_core
    return BackgroundLoad(round(busy_cores, 2), tuple(busiest[:TOP_PROCESSES]))
