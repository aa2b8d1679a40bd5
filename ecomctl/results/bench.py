"""``ecomctl bench``'s result (``ecomctl.bench/v1``, kind ``bench``), documented with its
producer, ``ecomctl.bench.result``: each row compares ecomctl's figure with a floor
measured in the same run; ``ratio`` is oriented so that higher is better, and a row passes
when ``ratio >= target``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomctl.results.envelope import Envelope
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
class BenchMachine(Record):
    cores: int
    python: str | None = None
    platform: str | None = None
    event_loop: str | None = None  # uvloop | asyncio
    http_parser: str | None = None  # httptools | h11

    @classmethod
    def parse(cls, data: object, where: str) -> BenchMachine:
        f = Fields(data, where)
        return cls(cores=f.integer("cores"), python=f.opt_text("python"),
                   platform=f.opt_text("platform"), event_loop=f.opt_text("event_loop"),
                   http_parser=f.opt_text("http_parser"), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"cores": self.cores, "python": self.python,
                           "platform": self.platform, "event_loop": self.event_loop,
                           "http_parser": self.http_parser},
                          optional=("python", "platform", "event_loop", "http_parser"))


@dataclass(kw_only=True)
class BenchResult(Envelope):
    quick: bool
    machine: BenchMachine
    rows: list[BenchRowResult]

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
