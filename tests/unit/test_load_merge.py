"""Merging Locust processes' HdrHistograms exactly, and the ``load run`` result document."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ecomctl.histogram import LatencyHistogram
from ecomctl.load.result import (
    CORRECTED,
    HDR_FORMAT,
    NOT_CORRECTED,
    LoadConfig,
    build_result,
    merge_hdr_documents,
    progress_counts,
    read_hdr_documents,
)
from ecomctl.results.envelope import LOAD_RUN, RESULT_SCHEMA

PRODUCT = "GET /api/products/{id}"
CHECKOUT = "POST /api/checkout"


def _samples(seed: int, n: int) -> list[int]:
    """Latencies in microseconds with a long tail, like a real endpoint's."""
    rng = random.Random(seed)
    return [max(1, int(rng.lognormvariate(8.0, 1.1))) for _ in range(n)]


def _histogram(values: list[int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record_us(v)
    return h


def _entry(values: list[int], failures: int = 0) -> dict[str, Any]:
    return {"count": len(values), "failures": failures, "hdr": _histogram(values).encode()}


def _document(
    pid: int,
    endpoints: dict[str, dict[str, Any]],
    *,
    journeys: dict[str, dict[str, Any]] | None = None,
    outcomes: dict[str, dict[str, int]] | None = None,
    errors: dict[str, int] | None = None,
    origin: str = "actual start",
    window: tuple[float, float] = (1000.0, 1010.0),
) -> dict[str, Any]:
    """What scenarios/hdr_hook.py writes for one Locust process."""
    return {
        "format": HDR_FORMAT, "pid": pid, "worker_index": pid % 10, "final": True,
        "started_at": window[0], "stopped_at": window[1], "latency_origin": origin,
        "requests": sum(e["count"] for e in endpoints.values()),
        "failures": sum(e["failures"] for e in endpoints.values()),
        "endpoints": endpoints, "journeys": journeys or {}, "outcomes": outcomes or {},
        "errors": errors or {},
    }


def _config(**overrides: Any) -> LoadConfig:
    values: dict[str, Any] = {
        "profile": "mixed", "locustfile": "scenarios/mixed_shop.py", "shape": None,
        "users": 10, "spawn_rate": 10.0, "duration_s": 10.0, "workers": 3,
        "host": "http://127.0.0.1:8000", "gateway_started": False,
    }
    return LoadConfig(**{**values, **overrides})


def test_merged_percentiles_equal_those_of_one_histogram_with_every_sample() -> None:
    workers = [_samples(seed, n) for seed, n in ((1, 5_000), (2, 3_000), (3, 7_000))]
    everything = _histogram([v for samples in workers for v in samples])
    documents = [_document(100 + i, {PRODUCT: _entry(samples)})
                 for i, samples in enumerate(workers)]

    merged = merge_hdr_documents(documents).endpoints[PRODUCT]

    assert merged.count == everything.count == 15_000
    assert merged.histogram.summary() == everything.summary()
    quantiles = (0.0, 1.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0)
    assert merged.histogram.percentiles_us(quantiles) == everything.percentiles_us(quantiles)
    assert merged.histogram.min_us == everything.min_us
    assert merged.histogram.max_us == everything.max_us
    # And against the raw samples: the true p99, to HDR's three significant figures.
    exact = sorted(v for samples in workers for v in samples)
    true_p99 = exact[round(0.99 * len(exact)) - 1]
    assert merged.histogram.percentiles_us((99.0,))[99.0] == pytest.approx(true_p99, rel=1e-3)


def test_merging_is_order_independent_and_survives_encoding_again() -> None:
    parts = [_samples(seed, 1_000) for seed in range(4)]
    forward = merge_hdr_documents([_document(i, {PRODUCT: _entry(p)})
                                   for i, p in enumerate(parts)])
    backward = merge_hdr_documents([_document(i, {PRODUCT: _entry(p)})
                                    for i, p in reversed(list(enumerate(parts)))])
    a, b = forward.endpoints[PRODUCT].histogram, backward.endpoints[PRODUCT].histogram
    assert a.summary() == b.summary()
    assert LatencyHistogram.decode(a.encode()).summary() == a.summary()


def test_endpoints_only_one_worker_saw_are_kept_and_counts_add_up() -> None:
    documents = [
        _document(1, {PRODUCT: _entry([1_000, 2_000]), CHECKOUT: _entry([90_000], 1)}),
        _document(2, {PRODUCT: _entry([3_000])}),
    ]
    merged = merge_hdr_documents(documents)
    assert set(merged.endpoints) == {PRODUCT, CHECKOUT}
    assert merged.requests == 4 and merged.failures == 1
    assert [p["requests"] for p in merged.processes] == [3, 1]


def test_result_from_hdr_files(tmp_path: Path) -> None:
    product_a, product_b = _samples(10, 400), _samples(11, 600)
    checkout = [80_000, 120_000, 450_000]
    files = {
        "hdr-101.json": _document(
            101, {PRODUCT: _entry(product_a), CHECKOUT: _entry(checkout, failures=1)},
            journeys={"checkout": _entry([100_000, 150_000, 500_000], failures=1)},
            outcomes={"checkout": {"paid": 1, "payment_declined": 1}},
            errors={"409 out_of_stock": 1}, window=(1000.0, 1020.0),
        ),
        "hdr-102.json": _document(
            102, {PRODUCT: _entry(product_b, failures=2)},
            errors={"503 backend_unavailable": 2}, window=(1000.5, 1020.0),
        ),
    }
    for name, document in files.items():
        (tmp_path / name).write_text(json.dumps(document))
    (tmp_path / "locust.log").write_text("not a histogram file")

    documents = read_hdr_documents(tmp_path)
    assert progress_counts(tmp_path) == (1_003, 3)
    result = build_result(
        merge_hdr_documents(documents), _config(workers=2),
        started_at=datetime.now(UTC), duration_s=25.0,
    )

    assert result["schema"] == RESULT_SCHEMA and result["kind"] == LOAD_RUN
    assert result["duration_s"] == 20.0  # the processes' load window, not the runner's 25 s
    totals = result["totals"]
    assert totals["requests"] == 1_003 and totals["failures"] == 3
    assert totals["error_rate"] == round(3 / 1_003, 4)
    assert totals["rps"] == round(1_003 / 20.0, 2)
    assert totals["checkouts"] == {"paid": 1, "payment_declined": 1}
    product = result["endpoints"][PRODUCT]
    assert product["count"] == 1_000 and product["errors"] == 2 and product["rps"] == 50.0
    assert product["p50_ms"] == _histogram(product_a + product_b).summary()["p50_ms"]
    assert LatencyHistogram.decode(product["hdr"]).count == 1_000
    assert result["endpoints"][CHECKOUT]["max_ms"] == pytest.approx(450.0, rel=1e-3)
    assert result["journeys"]["checkout"]["count"] == 3
    assert result["errors"] == {"503 backend_unavailable": 2, "409 out_of_stock": 1}
    assert sum(p["requests"] for p in result["processes"]) == totals["requests"]
    assert result["latency_origin"] == NOT_CORRECTED
    assert "spans" not in result and "invariants" not in result and result["ok"] is True
    json.dumps(result)  # serialisable as it is


def test_latency_origin_says_when_coordinated_omission_was_corrected() -> None:
    paced = [_document(i, {PRODUCT: _entry([1_000])}, origin="intended start")
             for i in range(2)]
    result = build_result(merge_hdr_documents(paced), _config(pacing_s=0.5),
                          started_at=datetime.now(UTC), duration_s=10.0)
    assert result["latency_origin"] == CORRECTED
    assert "coordinated omission corrected" in result["config"]["latency_origin"]
    assert result["config"]["arrival_rate_per_s"] == 20.0


def test_ok_follows_the_invariants() -> None:
    merged = merge_hdr_documents([_document(1, {PRODUCT: _entry([1_000])})])
    broken = [{"name": "money conserved", "ok": False, "detail": "1 order"},
              {"name": "no oversold stock", "ok": True, "detail": "ok"}]
    result = build_result(merged, _config(), started_at=datetime.now(UTC), duration_s=1.0,
                          invariants=broken, drained=True)
    assert result["ok"] is False and result["drained"] is True


def test_files_that_are_not_hdr_documents_are_refused(tmp_path: Path) -> None:
    (tmp_path / "hdr-1.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match=r"not an ecomctl\.load-hdr/1 file"):
        read_hdr_documents(tmp_path)
    (tmp_path / "hdr-1.json").write_text("{truncated")
    with pytest.raises(ValueError, match="unreadable"):
        read_hdr_documents(tmp_path)
    assert progress_counts(tmp_path) == (0, 0)  # live progress never fails on a bad file
