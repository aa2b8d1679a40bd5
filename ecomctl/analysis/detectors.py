"""Trace anti-pattern detectors. Each takes its thresholds as parameters and returns findings.

- **N+1 queries** (Sentry's rule of thumb): at least ``min_spans`` database spans directly under
  one parent with the same statement shape (literals, ``$n`` parameters and IN/ANY lists
  replaced by ``?``), together at least ``min_total_ms``.
- **Sequential independent calls**: at least ``min_calls`` sibling client calls that run
  strictly one after another. A trace cannot tell whether one call needs another's result,
  so the rule is conservative: only *reads* count (SQL SELECT, Redis read commands, search
  engine queries, HTTP GET/HEAD) -- calls without side effects, which can be reordered --
  each must start within ``max_gap_ms`` of the previous one's end (the parent did no work
  in between, so it is not computing the next call's input), and together they must take at
  least ``min_total_ms`` and ``min_parent_share`` of the parent. Writes, messaging and
  unknown client spans break a run. Such a run could be issued concurrently (or batched).
- **Orphan spans**: spans whose parent id is not in the trace (lost or not exported yet).
- **Error hot spots**: operations whose error rate is at least ``min_rate`` over at least
  ``min_calls`` calls, with their most frequent status messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ecomctl.analysis.model import SpanRecord, Trace
from ecomctl.analysis.stats import OperationStats

N_PLUS_ONE = "n_plus_one"
SEQUENTIAL_CALLS = "sequential_calls"
ORPHAN_SPANS = "orphan_spans"
ERROR_HOT_SPOT = "error_hot_spot"
DETECTORS = (N_PLUS_ONE, SEQUENTIAL_CALLS, ORPHAN_SPANS, ERROR_HOT_SPOT)

SEVERITIES = ("info", "warning", "error")


@dataclass(slots=True)
class Finding:
    detector: str
    severity: str  # "info" | "warning" | "error"
    trace_id: str | None  # None for findings over many traces (error hot spots)
    span_ids: list[str]
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    impact_ns: int = 0  # what ranks findings of one detector: time involved

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "severity": self.severity,
            "trace_id": self.trace_id,
            "span_ids": self.span_ids,
            "message": self.message,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class DetectorThresholds:
    n_plus_one_min_spans: int = 5
    n_plus_one_min_total_ms: float = 50.0
    sequential_min_calls: int = 3
    sequential_max_gap_ms: float = 1.0
    sequential_min_total_ms: float = 20.0
    sequential_min_parent_share: float = 0.3
    error_min_rate: float = 0.05
    error_min_calls: int = 10


# -- classifying spans --------------------------------------------------------------------------


def db_system(span: SpanRecord) -> str | None:
    """The database system of a database client span (``db.system``/``db.system.name``, or
    ``"db"`` for a CLIENT span with other ``db.*`` attributes); None for other spans."""
    attrs = span.attributes
    system = attrs.get("db.system") or attrs.get("db.system.name")
    if system:
        return str(system)
    if span.kind == "CLIENT" and any(key.startswith("db.") for key in attrs):
        return "db"
    return None


def statement_of(span: SpanRecord) -> str:
    attrs = span.attributes
    text = attrs.get("db.statement") or attrs.get("db.query.text")
    if text:
        return str(text)
    operation = attrs.get("db.operation.name") or attrs.get("db.operation")
    return str(operation) if operation else span.name


_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_LITERALS = re.compile(
    r"""'(?:[^']|'')*'            # quoted string
      | \$\d+                     # $n parameter
      | %\(\w+\)s | %s            # pyformat parameters
      | (?<![\w$.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b  # number, not part of a name
    """,
    re.X,
)
_LISTS = re.compile(r"\b(IN)\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.I)
_ANY = re.compile(r"\b(ANY|ALL)\s*\(\s*(?:ARRAY\s*\[[^\]]*\]|\?)(?:\s*::\s*[\w\[\]]+)?\s*\)", re.I)
_ROWS = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)(?:\s*,\s*\(\s*\?(?:\s*,\s*\?)*\s*\))+")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=8192)
def statement_shape(statement: str) -> str:
    """A statement with its literals replaced: ``SELECT * FROM t WHERE id = 7`` and
    ``... id = 8`` have the same shape, ``... id IN (1, 2)`` becomes ``... id IN (?)``."""
    text = _COMMENTS.sub(" ", statement)
    text = _LITERALS.sub("?", text)
    text = _LISTS.sub(r"\1 (?)", text)
    text = _ANY.sub(r"\1(?)", text)
    text = _ROWS.sub("(?)", text)
    return _SPACES.sub(" ", text).strip()


_REDIS_READS = frozenset({
    "GET", "MGET", "HGET", "HMGET", "HGETALL", "HKEYS", "HVALS", "HLEN", "HEXISTS", "EXISTS",
    "TTL", "PTTL", "TYPE", "STRLEN", "GETRANGE", "LRANGE", "LLEN", "LINDEX", "SMEMBERS",
    "SISMEMBER", "SMISMEMBER", "SCARD", "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE", "ZSCORE", "ZMSCORE", "ZCARD", "ZRANK", "ZREVRANK", "ZCOUNT", "SCAN",
    "HSCAN", "SSCAN", "ZSCAN",
})
_SEARCH_READS = frozenset({"search", "msearch", "get", "mget", "count", "exists", "explain"})
_HTTP_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_SQL_WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|TRUNCATE|COPY|LOCK|"
                        r"NEXTVAL|SETVAL)\b|\bFOR\s+(UPDATE|SHARE|NO\s+KEY)\b", re.I)


def read_target(span: SpanRecord) -> str | None:
    """What a read-only client call reads (``postgresql: SELECT ...``, ``redis: GET``, ``HTTP
    GET url``), or None when the span is not a call known to be free of side effects."""
    if span.kind != "CLIENT":
        return None
    attrs = span.attributes
    system = db_system(span)
    if system is not None:
        if system in ("elasticsearch", "opensearch"):
            op = str(attrs.get("db.operation.name") or attrs.get("db.operation") or span.name)
            return f"{system}: {op}" if op.lower() in _SEARCH_READS else None
        return _db_read_target(system, statement_of(span))
    method = attrs.get("http.request.method") or attrs.get("http.method")
    if method is not None and str(method).upper() in _HTTP_READS:
        where = attrs.get("url.full") or attrs.get("http.url") or attrs.get("server.address") or ""
        return f"HTTP {str(method).upper()} {where}".rstrip()
    return None


@lru_cache(maxsize=8192)
def _db_read_target(system: str, statement: str) -> str | None:
    if system == "redis":
        words = statement.split(None, 1)
        command = words[0].upper() if words else ""
        return f"redis: {command}" if command in _REDIS_READS else None
    text = statement.lstrip(" (\n\t")
    if text[:6].upper() != "SELECT" and text[:4].upper() != "WITH":
        return None
    if _SQL_WRITE.search(text):
        return None
    return f"{system}: {statement_shape(statement)[:120]}"


# -- detectors ----------------------------------------------------------------------------------


def detect_n_plus_one(
    traces: Iterable[Trace], *, min_spans: int = 5, min_total_ms: float = 50.0
) -> list[Finding]:
    min_total_ns = int(min_total_ms * 1e6)
    findings = []
    for trace in traces:
        for parent_id, kids in trace.children.items():
            if len(kids) < min_spans or _total_ns(kids) < min_total_ns:
                continue
            # Cheap bounds first: enough database spans, long enough together.
            db_kids = [
                kid for kid in kids
                if "db.system" in (attrs := kid.attributes) or "db.system.name" in attrs
                or (kid.kind == "CLIENT" and db_system(kid) is not None)
            ]
            if len(db_kids) < min_spans or _total_ns(db_kids) < min_total_ns:
                continue
            groups: dict[tuple[str, str], list[SpanRecord]] = {}
            for kid in db_kids:
                key = (db_system(kid) or "db", statement_shape(statement_of(kid)))
                group = groups.get(key)
                if group is None:
                    groups[key] = [kid]
                else:
                    group.append(kid)
            for (system, shape), spans in groups.items():
                if len(spans) < min_spans:
                    continue
                total = _total_ns(spans)
                if total < min_total_ns:
                    continue
                parent = trace.by_id[parent_id]
                findings.append(
                    Finding(
                        detector=N_PLUS_ONE,
                        severity="warning",
                        trace_id=trace.trace_id,
                        span_ids=[s.span_id for s in spans],
                        message=(
                            f"{len(spans)} {system} queries of one shape under "
                            f"{parent.service} {parent.name!r}, {total / 1e6:.1f} ms together: "
                            f"{shape[:160]}"
                        ),
                        details={
                            "parent_span_id": parent_id,
                            "parent": {"service": parent.service, "name": parent.name},
                            "db_system": system,
                            "statement_shape": shape,
                            "count": len(spans),
                            "total_ms": round(total / 1e6, 3),
                        },
                        impact_ns=total,
                    )
                )
    return findings


def _total_ns(spans: list[SpanRecord]) -> int:
    return sum([s.end_ns for s in spans]) - sum([s.start_ns for s in spans])


def detect_sequential_calls(
    traces: Iterable[Trace],
    *,
    min_calls: int = 3,
    max_gap_ms: float = 1.0,
    min_total_ms: float = 20.0,
    min_parent_share: float = 0.3,
) -> list[Finding]:
    max_gap = int(max_gap_ms * 1e6)
    min_total = int(min_total_ms * 1e6)
    findings: list[Finding] = []
    for trace in traces:
        for parent_id, kids in trace.children.items():
            if len(kids) < min_calls:
                continue
            parent = trace.by_id[parent_id]
            parent_ns = parent.end_ns - parent.start_ns
            threshold = max(min_total, min_parent_share * parent_ns)
            if _total_ns(kids) < threshold:
                continue  # all the children together are too brief
            # Candidate runs on timing and kind alone (integer comparisons); a run of reads
            # is a part of a candidate run, so a candidate too short or too brief is skipped
            # before any attribute is looked at.
            run: list[SpanRecord] = []
            for kid in kids:  # by start
                if kid.kind == "CLIENT":
                    if run:
                        gap = kid.start_ns - run[-1].end_ns
                        if 0 <= gap < max_gap:
                            run.append(kid)
                            continue
                        _reads_in(run, trace, parent, parent_ns, min_calls, max_gap,
                                  threshold, findings)
                    run = [kid]
                elif run:
                    _reads_in(run, trace, parent, parent_ns, min_calls, max_gap, threshold,
                              findings)
                    run = []
            if run:
                _reads_in(run, trace, parent, parent_ns, min_calls, max_gap, threshold,
                          findings)
    return findings


def _reads_in(
    candidate: list[SpanRecord],
    trace: Trace,
    parent: SpanRecord,
    parent_ns: int,
    min_calls: int,
    max_gap: int,
    threshold: float,
    findings: list[Finding],
) -> None:
    """Split a candidate run at calls that are not reads; report the runs that qualify."""
    if len(candidate) < min_calls or _total_ns(candidate) < threshold:
        return
    run: list[tuple[SpanRecord, str]] = []
    for span in candidate:
        target = read_target(span)
        if target is not None:
            run.append((span, target))
            continue
        _report_run(run, trace, parent, parent_ns, min_calls, threshold, findings)
        run = []
    _report_run(run, trace, parent, parent_ns, min_calls, threshold, findings)


def _report_run(
    run: list[tuple[SpanRecord, str]],
    trace: Trace,
    parent: SpanRecord,
    parent_ns: int,
    min_calls: int,
    threshold: float,
    findings: list[Finding],
) -> None:
    if len(run) < min_calls or not parent_ns:
        return
    total = sum(s.end_ns - s.start_ns for s, _ in run)
    if total < threshold:
        return
    # Run concurrently, the calls would take about as long as the longest one.
    longest = max(s.end_ns - s.start_ns for s, _ in run)
    targets = [t for _, t in run]
    findings.append(
        Finding(
            detector=SEQUENTIAL_CALLS,
            severity="info",
            trace_id=trace.trace_id,
            span_ids=[s.span_id for s, _ in run],
            message=(
                f"{len(run)} read calls one after another under {parent.service} "
                f"{parent.name!r} ({total / 1e6:.1f} ms, {total / parent_ns:.0%} of it); "
                f"concurrently they could take ~{longest / 1e6:.1f} ms"
            ),
            details={
                "parent_span_id": parent.span_id,
                "parent": {"service": parent.service, "name": parent.name},
                "targets": targets,
                "distinct_targets": len(set(targets)),
                "total_ms": round(total / 1e6, 3),
                "parent_share": round(total / parent_ns, 4),
                "saving_ms": round((total - longest) / 1e6, 3),
            },
            impact_ns=total - longest,
        )
    )


def detect_orphans(traces: Iterable[Trace]) -> list[Finding]:
    findings = []
    for trace in traces:
        if not trace.orphans:
            continue
        missing = sorted({s.parent_span_id for s in trace.orphans if s.parent_span_id})
        findings.append(
            Finding(
                detector=ORPHAN_SPANS,
                severity="warning",
                trace_id=trace.trace_id,
                span_ids=[s.span_id for s in trace.orphans],
                message=(
                    f"{len(trace.orphans)} span(s) whose parent is not in the trace "
                    f"(lost, sampled out or not exported yet): "
                    + ", ".join(sorted({f"{s.service} {s.name!r}" for s in trace.orphans})[:5])
                ),
                details={
                    "missing_parent_ids": missing,
                    "spans": [
                        {"span_id": s.span_id, "service": s.service, "name": s.name}
                        for s in trace.orphans[:20]
                    ],
                },
                impact_ns=sum(s.end_ns - s.start_ns for s in trace.orphans),
            )
        )
    return findings


def detect_error_hot_spots(
    operations: Iterable[OperationStats],
    *,
    min_rate: float = 0.05,
    min_calls: int = 10,
    top_messages: int = 3,
) -> list[Finding]:
    """Operations (from ``operation_stats``) failing at ``min_rate`` or more."""
    findings = []
    for op in operations:
        if op.count < min_calls or not op.errors or op.error_rate < min_rate:
            continue
        messages = sorted(op.error_messages.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = "; ".join(f"{m or '(no message)'} x{n}" for m, n in messages[:top_messages])
        findings.append(
            Finding(
                detector=ERROR_HOT_SPOT,
                severity="error" if op.error_rate >= 0.5 else "warning",
                trace_id=None,
                span_ids=[s.span_id for s in op.error_examples],
                message=(
                    f"{op.service} {op.name!r} failed {op.errors} of {op.count} calls "
                    f"({op.error_rate:.0%}): {shown}"
                ),
                details={
                    "service": op.service,
                    "name": op.name,
                    "count": op.count,
                    "errors": op.errors,
                    "error_rate": round(op.error_rate, 4),
                    "top_messages": [
                        {"message": m, "count": n} for m, n in messages[:top_messages]
                    ],
                    "example_trace_ids": sorted({s.trace_id for s in op.error_examples}),
                },
                impact_ns=op.errors,
            )
        )
    return findings


def run_detectors(
    traces: list[Trace],
    operations: list[OperationStats],
    thresholds: DetectorThresholds | None = None,
) -> list[Finding]:
    t = thresholds or DetectorThresholds()
    return [
        *detect_n_plus_one(
            traces, min_spans=t.n_plus_one_min_spans, min_total_ms=t.n_plus_one_min_total_ms
        ),
        *detect_sequential_calls(
            traces,
            min_calls=t.sequential_min_calls,
            max_gap_ms=t.sequential_max_gap_ms,
            min_total_ms=t.sequential_min_total_ms,
            min_parent_share=t.sequential_min_parent_share,
        ),
        *detect_orphans(traces),
        *detect_error_hot_spots(
            operations, min_rate=t.error_min_rate, min_calls=t.error_min_calls
        ),
    ]
