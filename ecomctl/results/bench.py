"""``ecomctl bench``'s result (``ecomctl.bench/v1``, kind ``bench``): the one description of
the document::

    {"schema": "ecomctl.bench/v1", "kind": "bench", "started_at": ISO-8601, "quick": bool,
     "duration_s": float, "machine": {"cores": int, "python": str, "platform": str,
                                      "event_loop": "uvloop" | "asyncio",
                                      "http_parser": "httptools" | "h11"},
     "rows": [{"name": str, "what": str,
               "floor": {"what": str, "value": float, "unit": str},
               "ecomctl": {"what": str, "value": float, "unit": str},
               "ratio": float, "target": float, "passed": bool,
               "better": "higher" | "lower"}],   # which way ecomctl's figure should go
     "ok": bool}

Each row compares ecomctl's figure with a floor measured in the same run. ``ratio`` is
ecomctl / floor when a higher figure is better (requests/s), floor / ecomctl when a lower one
is (a lag, a time against its allowance); either way a higher ratio is better, and a row
passes when ``ratio >= target``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomctl.results.envelope import BENCH, BENCH_SCHEMA, Envelope
from ecomctl.results.fields import Fields, Record, dump_list


@dataclass(kw_only=True)
class BenchFigure(Record):
    what: str
    value: float
    unit: str

    @classmethod
    def parse(cls, data: object, where: str) -> BenchFigure:
        f = Fields(data, where)
        return cls(what=f.text("what"), value=f.number("value"), unit=f.text("unit"),
                   **f.rest())

    @classmethod
    def measured(cls, what: str, value: float, unit: str) -> BenchFigure:
        return cls(what=what, value=round(value, 2), unit=unit)

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"what": self.what, "value": self.value, "unit": self.unit})


@dataclass(kw_only=True)
class BenchRowResult(Record):
    name: str
    what: str
    floor: BenchFigure
    ecomctl: BenchFigure
    ratio: float
    target: float
    passed: bool
    better: str | None = None  # higher | lower: which way ecomctl's figure should go

    @classmethod
    def parse(cls, data: object, where: str) -> BenchRowResult:
        f = Fields(data, where)
        return cls(name=f.text("name"), what=f.text("what"),
                   floor=f.record("floor", BenchFigure.parse),
                   ecomctl=f.record("ecomctl", BenchFigure.parse), ratio=f.number("ratio"),
                   target=f.number("target"), passed=f.boolean("passed"),
                   better=f.opt_text("better"), **f.rest())

    @classmethod
    def measured(cls, name: str, what: str, floor: BenchFigure, ecomctl: BenchFigure,
                 target: float, *, lower_is_better: bool = False) -> BenchRowResult:
        """A row from its two figures: the ratio oriented so that higher is better."""
        above, below = ((floor.value, ecomctl.value) if lower_is_better
                        else (ecomctl.value, floor.value))
        ratio = round(above / below, 3) if below > 0 and above > 0 else 0.0
        return cls(name=name, what=what, floor=floor, ecomctl=ecomctl, ratio=ratio,
                   target=target, passed=ratio >= target,
                   better="lower" if lower_is_better else "higher")

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            "name": self.name, "what": self.what, "floor": self.floor.to_dict(),
            "ecomctl": self.ecomctl.to_dict(), "ratio": self.ratio, "target": self.target,
            "passed": self.passed, "better": self.better,
        }, optional=("better",))


@dataclass(kw_only=True)
class BusyBefore(Record):
    """A process that was using CPU before the bench started."""

    command: str
    cores: float

    @classmethod
    def parse(cls, data: object, where: str) -> BusyBefore:
        f = Fields(data, where)
        return cls(command=f.text("command"), cores=f.number("cores"), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"command": self.command, "cores": self.cores})


@dataclass(kw_only=True)
class BenchMachine(Record):
    cores: int
    python: str | None = None
    platform: str | None = None
    event_loop: str | None = None  # uvloop | asyncio
    http_parser: str | None = None  # httptools | h11
    busy_cores_before: float | None = None
    """Cores other processes kept busy in the seconds before the bench (None: unknown)."""
    busiest_before: list[BusyBefore] | None = None

    @classmethod
    def parse(cls, data: object, where: str) -> BenchMachine:
        f = Fields(data, where)
        return cls(cores=f.integer("cores"), python=f.opt_text("python"),
                   platform=f.opt_text("platform"), event_loop=f.opt_text("event_loop"),
                   http_parser=f.opt_text("http_parser"),
                   busy_cores_before=f.opt_number("busy_cores_before"),
                   busiest_before=f.opt_records("busiest_before", BusyBefore.parse),
                   **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"cores": self.cores, "python": self.python,
                           "platform": self.platform, "event_loop": self.event_loop,
                           "http_parser": self.http_parser,
                           "busy_cores_before": self.busy_cores_before,
                           "busiest_before": dump_list(self.busiest_before)},
                          optional=("python", "platform", "event_loop", "http_parser",
                                    "busy_cores_before", "busiest_before"))


@dataclass(kw_only=True)
class BenchResult(Envelope):
    quick: bool
    machine: BenchMachine
    rows: list[BenchRowResult]

    @classmethod
    def measured(cls, rows: list[BenchRowResult], *, started_at: str, quick: bool,
                 duration_s: float, machine: BenchMachine) -> BenchResult:
        """A bench run's result: ok when every row reached its target."""
        return cls(schema=BENCH_SCHEMA, kind=BENCH, started_at=started_at,
                   duration_s=round(duration_s, 1), ok=all(row.passed for row in rows),
                   quick=quick, machine=machine, rows=rows)

    @classmethod
    def parse(cls, data: object, where: str = "") -> BenchResult:
        f = Fields(data, where)
        return cls(**cls.read_common(f), quick=f.boolean("quick"),
                   machine=f.record("machine", BenchMachine.parse),
                   rows=f.records("rows", BenchRowResult.parse), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({**self.common(), "quick": self.quick,
                           "machine": self.machine.to_dict(), "rows": dump_list(self.rows),
                           "ok": self.ok})
