"""`ecomctl bench --quick` measures every row against a floor from the same run, and leaves
the seeded shop alone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ecomctl.config import Settings

pytestmark = pytest.mark.long  # the bench (`pytest -m long`)

BENCH_OUT_ENV = "ECOMCTL_TEST_BENCH_OUT"


async def _shop_fingerprint(settings: Settings) -> tuple[int, int]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return (await conn.fetchval("SELECT count(*) FROM products"),
                await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


async def test_quick_bench_measures_each_ratio_against_its_floor(
    ecomctl: Any, seeded: Path, settings: Settings, tmp_path: Path
) -> None:
    before = await _shop_fingerprint(settings)
    # CI gates this run's result (.ci/run) instead of measuring everything a second time.
    out = Path(os.environ.get(BENCH_OUT_ENV) or tmp_path / "bench.json")
    result = ecomctl("bench", "--quick", "--out", str(out), "--keep", str(tmp_path / "work"),
                     timeout=600)
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == "ecomctl.bench/v1" and doc["quick"] is True
    rows = {row["name"]: row for row in doc["rows"]}
    assert list(rows) == ["seed", "gateway", "gateway-locust", "tracing", "tracing-locust",
                          "workers", "checkout", "consumer-lag", "drain", "consumers"]
    for row in rows.values():
        floor, own = row["floor"]["value"], row["ecomctl"]["value"]
        assert floor > 0 and own > 0, row
        expected = floor / own if row["better"] == "lower" else own / floor
        assert abs(row["ratio"] - expected) < 0.01, row
        assert row["passed"] == (row["ratio"] >= row["target"])
    assert [r["name"] for r in doc["rows"] if r["better"] == "lower"] == ["consumer-lag",
                                                                           "drain"]
    assert doc["ok"] == all(row["passed"] for row in rows.values())
    # Both sides of each gateway row ran under the same generator: wrk, then Locust.
    work = tmp_path / "work"
    for name in ("bare", "serve-1", "serve-off"):
        assert "Requests/sec:" in (work / f"wrk-{name}.log").read_text()
        assert (work / f"locust-{name}_stats.csv").exists()
    assert "wrk -t1 -c32" in rows["gateway"]["what"]
    assert "Locust" in rows["gateway-locust"]["what"]
    for name in rows:
        assert name in result.stdout
    # The checkout floor is pgbench running the SQL captured from a real checkout, and the
    # simulation that it is compared with ran one shopper process per core.
    script = (work / "checkout.pgbench.sql").read_text()
    assert "INSERT INTO orders" in script and "gen_random_uuid() AS order_id" in script
    simulation = json.loads((work / "simulate.json").read_text())
    assert simulation["config"]["processes"] == (os.cpu_count() or 1)
    assert simulation["ok"] is True
    assert await _shop_fingerprint(settings) == before
