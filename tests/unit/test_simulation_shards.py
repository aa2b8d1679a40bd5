"""What a shopper process of `checkout simulate --processes` receives and sends back: the
plan as JSON, and the recorder's state, merged exactly."""

from __future__ import annotations

import json

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
