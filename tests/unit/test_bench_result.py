"""The bench document: ratio = ecomctl / floor, a row passes at or above its target."""

from __future__ import annotations

from ecomctl.bench.scratch import database_url, scratch_env
from ecomctl.config import Settings
from ecomctl.results import BenchFigure, BenchMachine, BenchResult, BenchRowResult
from ecomctl.results.envelope import BENCH_SCHEMA

row, figure = BenchRowResult.measured, BenchFigure.measured


def _row(floor: float, own: float, target: float) -> BenchRowResult:
    return row("gateway", "cached GET", figure("bare", floor, "requests/s"),
               figure("serve", own, "requests/s"), target)


def test_ratio_and_pass() -> None:
    assert _row(2000, 500, 0.5).ratio == 0.25 and not _row(2000, 500, 0.5).passed
    assert _row(1000, 500, 0.5).passed  # exactly on target passes
    assert _row(0, 500, 0.5).ratio == 0.0  # a floor that measured nothing cannot pass


def test_a_lower_is_better_row_divides_the_other_way() -> None:
    lag = row("consumer-lag", "p99", figure("target", 1000, "ms"),
              figure("worst consumer", 250, "ms"), 1.0, lower_is_better=True)
    assert lag.ratio == 4.0 and lag.passed and lag.to_dict()["better"] == "lower"
    slow = row("consumer-lag", "p99", figure("target", 1000, "ms"),
               figure("worst consumer", 4000, "ms"), 1.0, lower_is_better=True)
    assert slow.ratio == 0.25 and not slow.passed
    nothing = row("consumer-lag", "p99", figure("target", 1000, "ms"),
                  figure("worst consumer", 0, "ms"), 1.0, lower_is_better=True)
    assert nothing.ratio == 0.0  # no measurement cannot pass


def test_document_is_ok_only_when_every_row_passes() -> None:
    doc = BenchResult.measured([_row(1000, 900, 0.5), _row(1000, 100, 0.5)], started_at="t",
                               quick=True, duration_s=12.34,
                               machine=BenchMachine(cores=2)).to_dict()
    assert doc["schema"] == BENCH_SCHEMA and doc["ok"] is False and doc["duration_s"] == 12.3
    assert [r["passed"] for r in doc["rows"]] == [True, False]
    assert doc["rows"][0]["floor"] == {"what": "bare", "value": 1000, "unit": "requests/s"}
    assert figure("bare", 1000.004, "requests/s").value == 1000.0  # two decimals kept


def test_the_scratch_places_are_not_the_shops() -> None:
    settings = Settings.from_env({})
    env = scratch_env(settings)
    assert env["DATABASE_URL"] == database_url(settings.database_url, "ecomctl_bench")
    assert env["DATABASE_URL"] != settings.database_url
    assert env["REDIS_URL"].endswith("/15") and env["ECOMCTL_SEARCH_ALIAS"] != settings.search_alias
    # Its events go to topics of its own: your shop's consumers never see them.
    assert Settings.from_env(env).kafka_topic_prefix != settings.kafka_topic_prefix
