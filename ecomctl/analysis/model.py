"""Spans and traces as plain, fast values: the input of every analysis.

A ``SpanRecord`` is what any source (OTLP JSON, the SDK's console output, Jaeger's query API,
in-process SDK spans) is reduced to. A ``Trace`` groups the spans of one trace id and builds
its parent/child structure once, so analyses never search for children again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

SPAN_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")

_by_start = attrgetter("start_ns")
_by_end = attrgetter("end_ns")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    With hundreds of thousands of spans alive, every young-generation collection triggered
    by the allocations of an analysis rescans them: that doubles its cost. Nothing built
    here forms cycles, so reference counting frees it all the same.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One finished span. Ids are lower-case hex (trace 32, span 16 characters); times are
    nanoseconds since the epoch; ``service`` is the resource's ``service.name``."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    status: str = "UNSET"
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)

    # Explicit so the generated hash (over the dict and list fields) is not used.
    def __hash__(self) -> int:
        return hash((self.trace_id, self.span_id))

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def is_error(self) -> bool:
        return self.status == "ERROR"

    @property
    def operation(self) -> tuple[str, str]:
        """What spans are aggregated by: (service, span name)."""
        return (self.service, self.name)


class Trace:
    """The spans of one trace, sorted by start, with the tree built once.

    ``roots`` are spans without a parent id; ``orphans`` are spans whose parent id is not in
    the trace (lost, dropped, or exported later). Both start subtrees of their own.
    ``children`` maps a span id to its children, sorted by start.
    """

    __slots__ = (
        "_end_ns",
        "_services",
        "by_id",
        "children",
        "orphans",
        "roots",
        "spans",
        "start_ns",
        "trace_id",
    )

    def __init__(self, trace_id: str, spans: list[SpanRecord]) -> None:
        spans.sort(key=_by_start)
        linked = _link(spans)
        if len(linked[0]) != len(spans):  # a span twice (a file read twice): first one wins
            spans = list({span.span_id: span for span in reversed(spans)}.values())
            spans.sort(key=_by_start)
            linked = _link(spans)
        by_id, children, roots, later = linked
        orphans: list[SpanRecord] = []
        unsorted: set[str] = set()
        for span in later:
            parent = span.parent_span_id
            if parent in by_id and parent != span.span_id:
                children.setdefault(parent, []).append(span)
                unsorted.add(parent)
            else:
                orphans.append(span)
        for parent in unsorted:
            children[parent].sort(key=_by_start)
        self.trace_id = trace_id
        self.spans = spans
        self.by_id = by_id
        self.children = children
        self.roots = roots
        self.orphans = orphans
        self.start_ns = spans[0].start_ns if spans else 0
        self._end_ns: int | None = None
        self._services: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"Trace({self.trace_id}, {len(self.spans)} spans)"

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def root(self) -> SpanRecord | None:
        """The earliest span without a parent; failing that, the earliest orphan."""
        if self.roots:
            return self.roots[0]
        if self.orphans:
            return self.orphans[0]
        return None

    @property
    def end_ns(self) -> int:
        """The last span end (computed on first use: analyses mostly need the root's)."""
        if self._end_ns is None:
            self._end_ns = max(map(_by_end, self.spans)) if self.spans else 0
        return self._end_ns

    @property
    def duration_ns(self) -> int:
        """From the first span's start to the last span's end (not only the root's)."""
        return self.end_ns - self.start_ns

    @property
    def services(self) -> tuple[str, ...]:
        if self._services is None:
            self._services = tuple(sorted({s.service for s in self.spans}))
        return self._services

    @property
    def has_error(self) -> bool:
        return any(s.status == "ERROR" for s in self.spans)

    @property
    def error_count(self) -> int:
        return sum(1 for s in self.spans if s.status == "ERROR")

    def children_of(self, span: SpanRecord) -> list[SpanRecord]:
        return self.children.get(span.span_id, [])

    def parent_of(self, span: SpanRecord) -> SpanRecord | None:
        return self.by_id.get(span.parent_span_id) if span.parent_span_id else None

    def walk(self) -> Iterator[tuple[SpanRecord, int]]:
        """Depth-first (span, depth) from every root and orphan, children by start."""
        tops = sorted([*self.roots, *self.orphans], key=_by_start)
        stack = [(span, 0) for span in reversed(tops)]
        children = self.children
        while stack:
            span, depth = stack.pop()
            yield span, depth
            kids = children.get(span.span_id)
            if kids:
                stack.extend((kid, depth + 1) for kid in reversed(kids))


def _link(
    spans: list[SpanRecord],
) -> tuple[dict[str, SpanRecord], dict[str, list[SpanRecord]], list[SpanRecord], list[SpanRecord]]:
    """One pass in start order: (by id, children, roots, spans whose parent came later).

    A parent normally starts before its children, so it is already known when they come;
    the others (equal start times, clock skew, lost parents) are settled by the caller.
    """
    by_id: dict[str, SpanRecord] = {}
    children: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    later: list[SpanRecord] = []
    for span in spans:
        by_id[span.span_id] = span
        parent = span.parent_span_id
        if parent is None:
            roots.append(span)
        elif parent in by_id:
            kids = children.get(parent)
            if kids is None:
                children[parent] = [span]
            else:
                kids.append(span)
        else:
            later.append(span)
    return by_id, children, roots, later


def group_traces(spans: Iterable[SpanRecord]) -> list[Trace]:
    """Group spans by trace id; traces come out sorted by their first span's start.

    A span id seen twice in one trace (the same file read twice, overlapping exports) is kept
    once: the first occurrence wins.
    """
    groups: dict[str, list[SpanRecord]] = {}
    with paused_gc():
        for span in spans:
            group = groups.get(span.trace_id)
            if group is None:
                groups[span.trace_id] = [span]
            else:
                group.append(span)
        traces = [Trace(trace_id, group) for trace_id, group in groups.items()]
        traces.sort(key=_by_start)
    return traces


SETUP_ATTRIBUTE = "ecom.setup"
"""Set (true) on the root span of work done before a measured run, such as ``checkout
simulate``'s shopper logins: traced, but not what the run measures."""


def is_setup(trace: Trace) -> bool:
    root = trace.root
    return root is not None and root.attributes.get(SETUP_ATTRIBUTE) in (True, "true")


def without_setup(traces: Sequence[Trace]) -> tuple[list[Trace], int]:
    """(the traces of the measured run, how many set-up traces were left out)."""
    kept = [trace for trace in traces if not is_setup(trace)]
    return kept, len(traces) - len(kept)

