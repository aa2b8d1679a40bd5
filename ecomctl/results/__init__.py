"""Run results as typed records: one place that reads, validates and writes the result
documents of ``checkout simulate``, ``load run`` (``ecomctl.result/v1``) and ``ecomctl
bench`` (``ecomctl.bench/v1``).

    result = read_result(Path("load.json"))      # ConfigError naming the file and field
    if isinstance(result, LoadRunResult):
        result.endpoints["GET /api/products/{id}"].latency.p95_ms
    write_result(result, Path("copy.json"))      # the same JSON, unknown fields included

Producers return these records (``checkout simulate``, ``load run`` and ``bench``; the first
two assemble their document and read it back through the parser); writers and readers
(``ecomctl report``, the renderers, ``ecomctl gate``) go through here. Light: nothing heavy
is imported until a histogram is decoded.
"""

from __future__ import annotations

from ecomctl.results.bench import BenchFigure, BenchMachine, BenchResult, BenchRowResult
from ecomctl.results.common import (
    Exemplar,
    Invariant,
    LatencyStats,
    LatencySummary,
    Operation,
    TimelinePoint,
)
from ecomctl.results.envelope import (
    ALL_KINDS,
    BENCH,
    BENCH_SCHEMA,
    LOAD_RUN,
    RESULT_SCHEMA,
    SIMULATION,
    Envelope,
)
from ecomctl.results.fields import ResultFormatError
from ecomctl.results.files import Result, parse_result, read_result, write_result
from ecomctl.results.load_run import LoadRunConfig, LoadRunResult, LoadRunTotals
from ecomctl.results.simulation import SimulationConfig, SimulationResult, SimulationTotals

__all__ = [
    "ALL_KINDS",
    "BENCH",
    "BENCH_SCHEMA",
    "LOAD_RUN",
    "RESULT_SCHEMA",
    "SIMULATION",
    "BenchFigure",
    "BenchMachine",
    "BenchResult",
    "BenchRowResult",
    "Envelope",
    "Exemplar",
    "Invariant",
    "LatencyStats",
    "LatencySummary",
    "LoadRunConfig",
    "LoadRunResult",
    "LoadRunTotals",
    "Operation",
    "Result",
    "ResultFormatError",
    "SimulationConfig",
    "SimulationResult",
    "SimulationTotals",
    "TimelinePoint",
    "parse_result",
    "read_result",
    "write_result",
]
