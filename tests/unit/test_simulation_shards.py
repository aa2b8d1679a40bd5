"""What a shopper process of `checkout simulate --processes` receives and sends back: the
plan as JSON, and the recorder's state, merged exactly."""

from __future__ import annotations

import json
import tracemalloc

from ecomctl.faults.catalogue import parse_fault
from ecomctl.sim.recorder import Recorder
from ecomctl.sim.runner import SimulationPlan


def test_a_plan_survives_json() -> None:
    plan = SimulationPlan(shoppers=3, sessions=40, duration_s=None, arrival_rate=5.0,
                          weights=(("browse", 2), ("checkout", 1)),
                          faults=(parse_fault("payment-slow=5"), parse_fault("kafka-down")))
    assert SimulationPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_merged_recorders_add_up_exactly_and_align_their_timelines() -> None:
    first, second = Recorder(), Recorder()
    second.started = first.started + 2.0  # began two seconds later
    for ms in (10, 20, 30):
        first.record("browse", first.started, first.started + ms / 1000, cause=None,
                     trace_id=f"a{ms}", checkout=None)
    second.record("checkout", second.started, second.started + 0.5, cause="402 declined",
                  trace_id="slow", checkout="payment_declined")
    merged = Recorder.merged(json.loads(json.dumps(r.state())) for r in (first, second))

    assert merged.overall.count == 4 and merged.journeys["browse"].count == 3
    assert dict(merged.checkouts) == {"payment_declined": 1}
    assert merged.journey_errors["checkout"] == 1 and merged.errors["402 declined"] == 1
    assert merged.slowest["checkout"].trace_id == "slow"
    assert merged.started == first.started
    # The second recorder's first second lands two seconds into the merged timeline.
    assert [s.journeys for s in merged.timeline] == [3, 0, 1]
    assert merged.overall.summary()["max_ms"] >= 499
    assert [s.latency.histogram().count for s in merged.timeline] == [3, 0, 1]


def test_finished_seconds_keep_their_latency_encoded_so_a_long_run_stays_small() -> None:
    recorder = Recorder()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for second in range(600):  # a 10-minute soak, 20 journeys a second
            at = recorder.started + second
            for ms in range(1, 21):
                recorder.record("browse", at, at + ms / 1000, cause=None, trace_id="t",
                                checkout=None)
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A live HdrHistogram is 185 KiB: 600 of them were 108 MiB.
    assert (grown - before) / 600 < 8 * 1024, grown - before
    assert [s.latency.recording is None for s in recorder.timeline] == [True] * 599 + [False]
    assert all(s.by_journey["browse"].recording is None for s in recorder.timeline[:-1])
    # What a report reads back is exact: the 20 values of a second, its p50 between them.
    sealed = recorder.timeline[300].latency.histogram()
    assert sealed.count == 20 and 10 <= sealed.summary()["p50_ms"] <= 11.1
    merged = Recorder.merged([json.loads(json.dumps(recorder.state()))])
    assert [s.latency.histogram().count for s in merged.timeline[::100]] == [20] * 6
    assert merged.timeline[300].by_journey["browse"].histogram().count == 20


def test_a_record_arriving_for_a_finished_second_is_kept() -> None:
    recorder = Recorder()
    start = recorder.started
    recorder.record("browse", start + 2.0, start + 2.01, cause=None, trace_id="a",
                    checkout=None)
    recorder.record("browse", start + 0.5, start + 0.52, cause=None, trace_id="b",
                    checkout=None)  # ended in second 0, recorded after second 2 began
    assert [s.latency.histogram().count for s in recorder.timeline] == [1, 0, 1]
    assert recorder.timeline[0].latency.recording is None
