"""The result envelope: schema, kind and the fields every result has (``files`` reads a
result file into its typed record by kind, and writes one).

=======================  ====================  ==========================================
schema                   kind                  record (written by)
=======================  ====================  ==========================================
``ecomctl.result/v1``    ``checkout-simulate`` ``SimulationResult`` (``checkout simulate``)
``ecomctl.result/v1``    ``load-run``          ``LoadRunResult`` (``load run``)
``ecomctl.bench/v1``     ``bench``             ``BenchResult`` (``ecomctl bench``)
=======================  ====================  ==========================================

Every kind has ``schema``, ``kind``, ``started_at`` (ISO-8601), ``duration_s`` and ``ok``.
The formats stay backwards compatible: a reader accepts every file an earlier ecomctl wrote
(fields added since are optional), and keeps fields it does not know, so
``parse_result(d).to_dict() == d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomctl.results.fields import Fields, Record

RESULT_SCHEMA = "ecomctl.result/v1"
BENCH_SCHEMA = "ecomctl.bench/v1"

SIMULATION = "checkout-simulate"
LOAD_RUN = "load-run"
BENCH = "bench"

SCHEMA_OF = {SIMULATION: RESULT_SCHEMA, LOAD_RUN: RESULT_SCHEMA, BENCH: BENCH_SCHEMA}
"""Each kind's schema."""
ALL_KINDS = tuple(SCHEMA_OF)


@dataclass(kw_only=True)
class Envelope(Record):
    """The fields every result kind has."""

    schema: str
    kind: str
    started_at: str  # ISO-8601
    duration_s: float  # the measured run (simulation, load window, whole bench)
    ok: bool  # simulation and load run: every invariant holds; bench: every row passed

    @staticmethod
    def read_common(f: Fields) -> dict[str, Any]:
        return {"schema": f.text("schema"), "kind": f.text("kind"),
                "started_at": f.text("started_at"), "duration_s": f.number("duration_s"),
                "ok": f.boolean("ok")}

    def common(self) -> dict[str, Any]:
        return {"schema": self.schema, "kind": self.kind, "started_at": self.started_at,
                "duration_s": self.duration_s}
