"""The bench result document, ``ecomctl.bench/v1``.

::

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

``ratio`` is ecomctl / floor when a higher figure is better (requests/s), floor / ecomctl
when a lower one is (a lag, a time against its allowance); either way a higher ratio is
better, and a row passes when ``ratio >= target``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomctl.results.envelope import BENCH, BENCH_SCHEMA


@dataclass(frozen=True)
class Figure:
    what: str
    value: float
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "value": round(self.value, 2), "unit": self.unit}


@dataclass(frozen=True)
class BenchRow:
    name: str
    what: str
    floor: Figure
    ecomctl: Figure
    target: float
    lower_is_better: bool = False

    @property
    def ratio(self) -> float:
        above, below = ((self.floor.value, self.ecomctl.value) if self.lower_is_better
                        else (self.ecomctl.value, self.floor.value))
        return above / below if below > 0 and above > 0 else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "what": self.what, "floor": self.floor.to_json(),
                "ecomctl": self.ecomctl.to_json(), "ratio": round(self.ratio, 3),
                "target": self.target, "passed": self.passed,
                "better": "lower" if self.lower_is_better else "higher"}


def bench_document(
    rows: list[BenchRow], *, started_at: str, quick: bool, duration_s: float,
    machine: dict[str, Any],
) -> dict[str, Any]:
    return {"schema": BENCH_SCHEMA, "kind": BENCH, "started_at": started_at, "quick": quick,
            "duration_s": round(duration_s, 1), "machine": machine,
            "rows": [row.to_json() for row in rows], "ok": all(row.passed for row in rows)}
