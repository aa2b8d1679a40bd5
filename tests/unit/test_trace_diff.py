"""``traces diff`` logic on constructed traces: ranking by self time added beyond noise, set-up
traces left out, appeared and vanished
operations, critical-path moves, new findings, and the --fail-on rules."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ecomctl.analysis.diff import (
    OperationDiff,
    TraceDiff,
    describe_shift,
    diff_traces,
    finding_signatures,
    parse_fail_rule,
    statement_by_operation,
)
from ecomctl.analysis.model import (
    SETUP_ATTRIBUTE,
    SpanRecord,
    Trace,
    group_traces,
    is_setup,
    without_setup,
)
from tests.spans import MS, T0, span_record

RESERVE = "WITH req AS (SELECT * FROM unnest($1::bigint[], $2::int[])) UPDATE inventory SET x = 1"
STALL = "SELECT pg_sleep($1)"


def span(
    trace: int, span_id: int, parent: int | None, start_ms: float, end_ms: float, name: str,
    service: str, *, kind: str = "INTERNAL", status: str = "UNSET", **attributes: Any,
) -> SpanRecord:
    """A span of trace number ``trace``: its ids carry the trace's number and it starts
    10 s after the previous trace's, so spans of different traces never collide."""
    base = trace * 1000
    return span_record(
        base + span_id, base + parent if parent is not None else None, start_ms, end_ms, name,
        service=service, kind=kind, status=status, trace_id=trace,
        t0_ns=T0 + trace * 10_000 * MS, **attributes,
    )


def checkout(trace: int, *, stall_ms: float = 0, payment_ms: float = 30,
             item_reads: int = 0) -> list[SpanRecord]:
    """gateway POST /api/checkout > checkout.complete > [inventory.reserve > (pg_sleep),
    WITH], payment POST, then ``item_reads`` sequential SELECTs (an N+1 from 5 on)."""
    reserve_ms = 3 + stall_ms
    pay_end = 2 + reserve_ms + payment_ms
    end = pay_end + 1 + item_reads * 11
    spans = [
        span(trace, 1, None, 0, end + 1, "POST /api/checkout", "gateway", kind="SERVER"),
        span(trace, 2, 1, 0.5, end, "checkout.complete", "checkout"),
        span(trace, 3, 2, 1, 1 + reserve_ms, "inventory.reserve", "inventory"),
        span(trace, 5, 3, 1.5 + stall_ms, 0.5 + reserve_ms, "WITH", "inventory",
             kind="CLIENT", db__system="postgresql", db__statement=RESERVE),
        span(trace, 6, 2, 2 + reserve_ms, pay_end, "POST", "payment", kind="CLIENT",
             http__request__method="POST"),
    ]
    if stall_ms:
        spans.append(span(trace, 4, 3, 1.2, 1.2 + stall_ms, "SELECT", "inventory",
                          kind="CLIENT", db__system="postgresql", db__statement=STALL))
    for i in range(item_reads):
        start = pay_end + 1 + i * 11
        spans.append(span(trace, 10 + i, 2, start, start + 10, "SELECT", "order",
                          kind="CLIENT", db__system="postgresql",
                          db__statement=f"SELECT * FROM order_items WHERE id = {i}"))
    return spans


def runs(count: int, **kwargs: Any) -> list[Trace]:
    return group_traces([s for t in range(1, count + 1) for s in checkout(t, **kwargs)])


def by_name(result: TraceDiff, service: str, name: str) -> OperationDiff:
    return next(d for d in result.operations if (d.service, d.name) == (service, name))


# -- ranking ----------------------------------------------------------------------------------


def test_the_slowed_statement_comes_first_not_the_spans_above_it() -> None:
    """Every ancestor of the slow statement grows by the same 50 ms at p95; only the statement's
    own span spends the time itself, so self time added names it first."""
    result = diff_traces(runs(20), runs(20, stall_ms=50))
    first = result.operations[0]
    assert (first.service, first.name, first.status) == ("inventory", "SELECT", "appeared")
    assert first.change("added") == pytest.approx(20 * 50, rel=1e-6)
    assert first.statement == "SELECT pg_sleep(?)"
    # The ancestors' latency grew as much, their self time did not.
    for service, name in (("gateway", "POST /api/checkout"), ("checkout", "checkout.complete"),
                          ("inventory", "inventory.reserve")):
        ancestor = by_name(result, service, name)
        assert ancestor.change("p95") == pytest.approx(50, abs=0.5), (service, name)
        assert abs(ancestor.change("added")) < 1, (service, name)
    # Sorted by p95 change instead, a span above the statement can come first: a tie at +50.
    by_p95 = diff_traces(runs(20), runs(20, stall_ms=50), sort="p95")
    assert by_p95.operations[0].change("p95") == pytest.approx(50, abs=0.5)


# -- evidence above noise ---------------------------------------------------------------------


def calls(service: str, name: str, durations_ms: list[float], first_trace: int,
          **attributes: Any) -> list[SpanRecord]:
    """One root span per call, each in its own trace (numbered from ``first_trace``)."""
    return [span(first_trace + i, 1, None, 0, ms, name, service, **attributes)
            for i, ms in enumerate(durations_ms)]


def jittered(ms: float, count: int, spread: float) -> list[float]:
    """``count`` calls of about ``ms``: -spread, 0, +spread, -spread... (mean ``ms``)."""
    return [ms + spread * ((i % 3) - 1) for i in range(count)]


LOGINS = [300.0, 320.0, 310.0, 290.0, 305.0, 315.0]


def test_a_steady_small_shift_over_many_calls_beats_one_noisy_outlier() -> None:
    """A cart read 2 ms slower on each of 100 calls adds 200 ms; one login of six taking 2 s
    instead of 0.3 adds about 1.7 s, more, but by one call: within its noise. The steady
    shift comes first; sorted by self time added alone, the outlier would."""
    base = group_traces([*calls("cart", "GET", jittered(1.0, 100, 0.1), 1000),
                         *calls("user", "user.login", LOGINS, 2000)])
    current = group_traces([*calls("cart", "GET", jittered(3.0, 100, 0.1), 1000),
                            *calls("user", "user.login", [*LOGINS[:5], 2000.0], 2000)])
    result = diff_traces(base, current)
    cart, login = by_name(result, "cart", "GET"), by_name(result, "user", "user.login")
    assert [(d.service, d.name) for d in result.operations] == [("cart", "GET"),
                                                               ("user", "user.login")]
    assert login.change("added") > 1600 > 200 == pytest.approx(cart.change("added"))
    assert login.signal_ms == 0 and abs(login.t) < 3
    # The cart's shift is 2 ms with a standard error of about 0.012 ms: nearly all signal.
    assert cart.t > 100 and cart.signal_ms == pytest.approx(200, rel=0.05)
    assert describe_shift(cart).startswith("+2.0 ms/call over 100 calls, t=")
    assert describe_shift(login) == f"+281 ms/call over 6 calls, noise (t={login.t:.1f})"
    by_added = diff_traces(base, current, sort="added")
    assert by_added.operations[0].name == "user.login"


def test_the_shift_is_judged_by_welchs_standard_error() -> None:
    base = group_traces(calls("order", "WITH", [10, 12, 14], 1))
    current = group_traces(calls("order", "WITH", [20, 22, 24, 20, 22, 24], 100))
    (diff,) = diff_traces(base, current).operations
    error = math.sqrt(4 / 3 + 3.2 / 6)  # sample variances 4 and 3.2 over 3 and 6 calls
    assert diff.change("self") == pytest.approx(10)
    assert diff.standard_error_ms == pytest.approx(error)
    assert diff.t == pytest.approx(10 / error)
    assert diff.signal_ms == pytest.approx(6 * (10 - 3 * error))
    assert diff.change("signal") == diff.signal_ms < diff.change("added") == pytest.approx(60)
    data = diff.to_dict()
    assert data["change"]["t"] == pytest.approx(10 / error, abs=0.01)
    assert data["current"]["self_sd_ms"] == pytest.approx(math.sqrt(3.2), abs=1e-3)


def test_one_call_is_never_signal_and_a_slower_one_is_signal_again_when_repeated() -> None:
    one = diff_traces(group_traces(calls("search", "search", [10], 1)),
                      group_traces(calls("search", "search", [500], 2)))
    (diff,) = one.operations
    assert diff.change("added") == pytest.approx(490) and diff.signal_ms == 0
    assert describe_shift(diff) == "+490 ms/call over 1 call, noise (one call)"
    repeated = diff_traces(group_traces(calls("search", "search", jittered(10, 5, 1), 1)),
                           group_traces(calls("search", "search", jittered(500, 5, 1), 9)))
    assert repeated.operations[0].signal_ms > 2000


def test_a_slower_vanished_operation_sorts_last_by_its_signal() -> None:
    result = diff_traces(group_traces([*calls("cart", "GET", [5.0, 5.0], 1),
                                       *calls("old", "gone", jittered(40, 6, 2), 10)]),
                         group_traces(calls("cart", "GET", [5.0, 5.0], 20)))
    gone = result.operations[-1]
    assert (gone.name, gone.status, gone.calls) == ("gone", "vanished", 6)
    assert gone.signal_ms < 0 and describe_shift(gone).startswith("-40.0 ms/call over 6 calls, t=")


def _setup(trace: int, login_ms: float) -> list[SpanRecord]:
    """A shopper's set-up trace as ``checkout simulate`` writes it: a marked root, the
    login under it."""
    return [span(trace, 1, None, 0, login_ms + 1, "session.start", "shopper",
                 attributes={SETUP_ATTRIBUTE: True}),
            span(trace, 2, 1, 0.5, 0.5 + login_ms, "user.login", "user")]


def test_set_up_traces_are_left_out_of_both_runs() -> None:
    """Logins before the measured run, much slower in the current run (a busy machine, not
    the change under test), every one of them: without the set-up they would come first,
    beyond noise, before the slowed statement."""
    base = [*runs(10), *group_traces([s for t in range(50, 56) for s in _setup(t, 300)])]
    current = [*runs(10, stall_ms=50),
               *group_traces([s for t in range(50, 56) for s in _setup(t, 1500 + t)])]
    result = diff_traces(base, current)
    assert result.setup_left_out == (6, 6)
    assert ("user", "user.login") not in {(d.service, d.name) for d in result.operations}
    assert (result.operations[0].service, result.operations[0].name) == ("inventory", "SELECT")
    data = result.to_dict()
    assert data["base"]["setup_traces_left_out"] == data["current"]["setup_traces_left_out"] == 6
    assert data["base"]["traces"] == 10
    kept = diff_traces(base, current, include_setup=True)
    assert kept.setup_left_out == (0, 0)
    assert (kept.operations[0].service, kept.operations[0].name) == ("user", "user.login")


def test_only_a_marked_root_makes_a_set_up_trace() -> None:
    marked = group_traces(_setup(1, 10))
    unmarked = group_traces([span(2, 1, None, 0, 5, "session.start", "shopper")])
    as_text = group_traces([span(3, 1, None, 0, 5, "x", "shopper",
                                 attributes={SETUP_ATTRIBUTE: "true"})])
    nested = group_traces([span(4, 1, None, 0, 5, "journey.checkout", "shopper"),
                           span(4, 2, 1, 0, 1, "x", "shopper",
                                attributes={SETUP_ATTRIBUTE: True})])
    assert [is_setup(t) for t in (*marked, *unmarked, *as_text, *nested)] == [
        True, False, True, False]
    assert without_setup([*marked, *unmarked]) == (unmarked, 1)


def test_more_calls_at_the_same_speed_add_no_self_time() -> None:
    """A run that simply made twice the calls spent twice the time in total; per call
    nothing changed, so nothing is blamed."""
    result = diff_traces(runs(10), runs(20))
    assert all(abs(d.change("added")) < 0.01 for d in result.operations)
    payment = by_name(result, "payment", "POST")
    assert payment.change("calls") == 10 and payment.relative("calls") == pytest.approx(1.0)
    assert payment.current is not None and payment.base is not None
    assert payment.current.self_ns == pytest.approx(2 * payment.base.self_ns, rel=1e-6)


def test_a_vanished_operation_gives_its_time_back_and_sorts_last() -> None:
    result = diff_traces(runs(10, stall_ms=50), runs(10))
    stall = result.operations[-1]
    assert (stall.service, stall.name, stall.status) == ("inventory", "SELECT", "vanished")
    assert stall.change("added") == pytest.approx(-10 * 50, rel=1e-6)
    assert stall.relative("calls") == -1.0
    assert [d.name for d in result.with_status("vanished")] == ["SELECT"]
    assert result.with_status("appeared") == []


def test_critical_path_share_moves_to_the_slow_statement() -> None:
    result = diff_traces(runs(10), runs(10, stall_ms=50))
    stall = by_name(result, "inventory", "SELECT")
    payment = by_name(result, "payment", "POST")
    assert stall.current is not None
    # 50 of each trace's 87 ms root duration is now spent in pg_sleep, all on the path.
    assert stall.current.path_share == pytest.approx(50 / 87, abs=0.01)
    assert stall.change("path") == pytest.approx(50 / 87, abs=0.01)
    assert payment.change("path") < -0.2  # the same 30 ms is a smaller share of a longer trace


def test_new_findings_are_the_ones_whose_place_and_shape_are_new() -> None:
    base = runs(3)
    current = runs(3, item_reads=6)  # six 10 ms reads of one shape under checkout.complete
    result = diff_traces(base, current)
    assert [c.finding.detector for c in result.new_findings] == ["n_plus_one"]
    assert result.new_findings[0].occurrences == 3  # one per trace, reported once
    assert result.resolved_findings == []
    # The same N+1 in both runs (other traces, other span ids) is not new.
    again = diff_traces(runs(3, item_reads=6), group_traces(
        [s for t in range(7, 10) for s in checkout(t, item_reads=7)]))
    assert again.new_findings == [] and again.resolved_findings == []
    signatures = {s for f in again.current.findings for s in finding_signatures(f)}
    assert signatures == {s for f in again.base.findings for s in finding_signatures(f)}
    # And gone in the other direction.
    assert [c.finding.detector for c in diff_traces(current, base).resolved_findings] == [
        "n_plus_one"]


def _orphans(trace: int, *names: str) -> list[SpanRecord]:
    """A root, and consumer spans whose parent (another process's send) is missing."""
    return [span(trace, 1, None, 0, 10, "root", "gateway"),
            *(span(trace, 10 + i, 999, 1, 2, name, "analytics", kind="CONSUMER")
              for i, name in enumerate(names))]


def test_orphans_are_new_only_for_operations_not_orphaned_before() -> None:
    """Which spans of each trace lose their parent varies; an operation never orphaned
    before is the news."""
    base = group_traces([*_orphans(1, "process order-events"),
                         *_orphans(2, "process order-events", "order-events receive")])
    current = group_traces([*_orphans(3, "order-events receive"),
                            *_orphans(4, "process order-events", "process payment-events"),
                            *_orphans(5, "process payment-events")])
    result = diff_traces(base, current)
    assert [(c.finding.detector, c.occurrences) for c in result.new_findings] == [
        ("orphan_spans", 2)]
    assert "process payment-events" in result.new_findings[0].finding.message
    assert result.resolved_findings == []


def test_statement_of_an_operation_is_the_shape_that_took_the_most_time() -> None:
    traces = group_traces([
        span(1, 1, None, 0, 100, "root", "order"),
        span(1, 2, 1, 0, 10, "SELECT", "order", db__statement="SELECT a FROM t WHERE id = 1"),
        span(1, 3, 1, 10, 20, "SELECT", "order", db__statement="SELECT a FROM t WHERE id = 2"),
        span(1, 4, 1, 20, 35, "SELECT", "order", db__statement="SELECT b FROM u"),
    ])
    assert statement_by_operation(traces) == {("order", "SELECT"): "SELECT a FROM t WHERE id = ?"}


def test_to_dict_is_strict_json_with_the_documented_shape() -> None:
    result = diff_traces(runs(10), runs(10, stall_ms=50), base_source="a.jsonl",
                         current_source="b.jsonl")
    result.evaluate([parse_fail_rule("p95>+20% and p95>+5ms"), parse_fail_rule("findings>0")])
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["schema"] == "ecomctl.trace-diff/1" and data["sort"] == "self"
    assert data["base"]["source"] == "a.jsonl" and data["current"]["traces"] == 10
    assert data["counts"] == {"operations": 6, "compared": 5, "appeared": 1, "vanished": 0}
    first = data["operations"][0]
    assert first["status"] == "appeared" and first["base"] is None
    assert first["current"]["count"] == 10 and first["current"]["p95_ms"] >= 49
    assert first["relative"]["p95"] is None  # from nothing
    assert first["change"]["self_added_ms"] == pytest.approx(500, rel=1e-3)
    # Identical calls in each run: no spread, so all of it is signal and t is unbounded.
    assert first["change"]["signal_ms"] == pytest.approx(500, rel=1e-3)
    assert first["change"]["t"] is None and first["change"]["standard_error_ms"] == 0
    assert first["why"] == "+50.0 ms/call over 10 calls, steady"
    assert first["current"]["self_sd_ms"] == pytest.approx(0, abs=1e-3)
    assert data["base"]["setup_traces_left_out"] == 0
    rules = data["fail_on"]["rules"]
    assert [r["broken"] for r in rules] == [True, False] and data["passed"] is False
    broken = {(b["service"], b["name"]) for b in rules[0]["breaches"]}
    assert ("inventory", "SELECT") in broken and ("payment", "POST") not in broken


# -- --fail-on --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("p95>+20%", [("p95", ">", 0.2, True)]),
    ("self > +10ms", [("self", ">", 10.0, False)]),
    ("p95>+20% and p95>+5ms", [("p95", ">", 0.2, True), ("p95", ">", 5.0, False)]),
    ("p99>=1s", [("p99", ">=", 1000.0, False)]),
    ("added>+200ms", [("added", ">", 200.0, False)]),
    ("signal>+200ms", [("signal", ">", 200.0, False)]),
    ("calls<-50%", [("calls", "<", -0.5, True)]),
    ("calls>+100", [("calls", ">", 100.0, False)]),
    ("error_rate>+1%", [("error_rate", ">", 0.01, False)]),
    ("path>+5pt", [("path", ">", 0.05, False)]),
    ("path>0.05", [("path", ">", 0.05, False)]),
    ("findings>0", [("findings", ">", 0.0, False)]),
])
def test_fail_rules_parse(text: str, expected: list[tuple[str, str, float, bool]]) -> None:
    rule = parse_fail_rule(text)
    got = [(c.metric, c.op, round(c.value, 9), c.relative) for c in rule.conditions]
    assert got == expected


@pytest.mark.parametrize(("text", "message"), [
    ("latency>+5ms", "unknown metric"),
    ("p95>+20", "duration with a unit"),
    ("p95=+5ms", "expected METRIC OP CHANGE"),
    ("added>+10%", "absolute"),
    ("signal>+10%", "absolute"),
    ("findings>0 and p95>+1ms", "stands alone"),
    ("error_rate>+5", "fraction"),
    ("calls>+lots", "not a number"),
    ("", "empty rule"),
])
def test_bad_fail_rules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fail_rule(text)


def test_a_relative_rule_needs_its_absolute_partner_to_ignore_tiny_changes() -> None:
    """+100% of 1 ms is +1 ms: noise that 'and p95>+5ms' keeps from failing a build."""
    base = group_traces([span(t, 1, None, 0, 1, "GET", "cart", kind="CLIENT") for t in range(9)])
    slower = group_traces([span(t, 1, None, 0, 2, "GET", "cart", kind="CLIENT")
                           for t in range(9)])
    result = diff_traces(base, slower)
    (relative_only, both) = result.evaluate([parse_fail_rule("p95>+20%"),
                                             parse_fail_rule("p95>+20% and p95>+5ms")])
    assert relative_only.broken and not both.broken
    assert relative_only.breaches[0].observed.startswith("p95 1.0 -> 2.0 ms (+1.0 ms, +100%)")


def test_min_count_keeps_rare_operations_out_of_the_judgement() -> None:
    result = diff_traces(runs(4), runs(4, stall_ms=50))
    rule = parse_fail_rule("self>+10ms")
    (few,) = result.evaluate([rule], min_count=5)
    assert not few.broken and result.passed
    (enough,) = result.evaluate([rule], min_count=4)
    assert [(b.service, b.name) for b in enough.breaches] == [("inventory", "SELECT")]
    assert not result.passed


def test_an_appeared_operation_grows_from_zero() -> None:
    result = diff_traces(runs(10), runs(10, stall_ms=50))
    stall = by_name(result, "inventory", "SELECT")
    assert stall.relative("p95") == math.inf and stall.relative("calls") == math.inf
    assert stall.change("self") == pytest.approx(50, abs=0.1)
    (broken, calm) = result.evaluate([parse_fail_rule("calls>+50%"),
                                      parse_fail_rule("calls<-50%")])
    assert [b.name for b in broken.breaches] == ["SELECT"] and not calm.broken


def test_findings_rule_counts_new_findings() -> None:
    result = diff_traces(runs(3), runs(3, item_reads=6))
    (some, many) = result.evaluate([parse_fail_rule("findings>0"),
                                    parse_fail_rule("findings>1")])
    assert some.broken and some.breaches[0].observed == "1 new finding(s)"
    assert not many.broken


def test_unknown_sort_is_refused() -> None:
    with pytest.raises(ValueError, match="sort by 'fastest'"):
        diff_traces(runs(1), runs(1), sort="fastest")
