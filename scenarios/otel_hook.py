"""Client spans for Locust: each request a CLIENT span of service ``loadgen``.

``shop.ShopUser.call`` asks ``client_span`` for a span before it sends a request, sends the
span's own ``traceparent`` and puts the span into the request's Locust ``context``; the
request listener here ends it with Locust's response time and verdict. So a load request's
trace, in the trace backend and in ``ecomctl load run``'s capture, starts at the client.
Every process that sends requests (a single local process or each worker, never the master)
builds its tracing at init from the standard ``OTEL_*`` variables (read by ecomctl's own
parser, as the shop reads them) and ``ECOMCTL_LOAD_SPAN_DIR`` (``ecomctl.telemetry.loadgen``),
flushes it when the test stops and shuts it down when Locust quits. With neither set,
``client_span`` returns None and the scenarios send a random ``traceparent`` as before. A
worker of ``ecomctl load worker`` (``ECOMCTL_LOAD_SPANS_TO_MASTER``, maybe on another host:
no shared disk) sends its span batches to the master over Locust's own connection, as
``hdr_hook`` does its histograms, and the master appends them to
``loadgen-<worker id>.jsonl`` in its span directory.

Importing this module registers the listeners; locustfiles get it through ``shop.py``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hdr_hook
from locust import events
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ecomctl.telemetry.loadgen import (
    SPAN_DIR_ENV,
    SPANS_TO_MASTER_ENV,
    ClientSpan,
    LoadgenTracing,
    tracing_from_env,
)
from ecomctl.telemetry.trace_store import encode_batch

SPAN_KEY = "otel_client_span"
"""Where a request's ``ClientSpan`` travels in its Locust ``context``."""
SPANS_MESSAGE = "ecomctl_spans"

log = logging.getLogger("ecomctl.otel_hook")
_state: dict[str, LoadgenTracing | None] = {"tracing": None}


def client_span(method: str, name: str, host: str, path: str) -> ClientSpan | None:
    """A started span for one request, or None when this process does not trace."""
    tracing = _state["tracing"]
    return tracing.start(method, name, host, path) if tracing is not None else None


class _ToMaster(SpanExporter):
    """A worker's spans, one OTLP JSON document per batch, to its master."""

    def __init__(self, runner: WorkerRunner) -> None:
        self.runner = runner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.runner.send_message(SPANS_MESSAGE, encode_batch(spans))
        except Exception as exc:  # e.g. the master has gone
            log.warning("cannot send spans to the master: %s", exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def _on_worker_spans(environment: Environment, msg: Message, **_: Any) -> None:
    """On the master: a worker's batch, appended to that worker's capture file."""
    directory = os.environ.get(SPAN_DIR_ENV, "").strip()
    if not directory or not isinstance(msg.data, dict):
        return
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(msg.node_id))
    path = Path(directory) / f"loadgen-{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(msg.data, separators=(",", ":")) + "\n")


def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(SPANS_MESSAGE, _on_worker_spans)
        return  # the master sends no requests
    extra: list[SpanExporter] = []
    if isinstance(runner, WorkerRunner) and os.environ.get(SPANS_TO_MASTER_ENV) == "1":
        extra.append(_ToMaster(runner))  # batched as OTEL_BSP_* say, as every exporter
    try:
        _state["tracing"] = tracing_from_env(extra=extra)
    except Exception as exc:  # tracing must never stop a load test
        log.warning("load generator tracing is off: %s", exc)


def _on_request(
    request_type: str,
    name: str,
    response_time: float | None,
    exception: BaseException | None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    span = (context or {}).get(SPAN_KEY)
    if isinstance(span, ClientSpan):
        # The name Locust recorded it under: a pushed-back attempt's is its own.
        span.end(status_code=getattr(response, "status_code", None) or None,
                 duration_ms=response_time,
                 error=hdr_hook.failure_cause(exception) if exception is not None else None,
                 name=f"{request_type} {name}")


def _on_test_stop(environment: Environment, **_: Any) -> None:
    tracing = _state["tracing"]
    if tracing is not None:
        tracing.flush()  # the users are stopped: every span of the run has ended


def _on_quitting(environment: Environment, **_: Any) -> None:
    tracing, _state["tracing"] = _state["tracing"], None
    if tracing is not None:
        tracing.shutdown()


# Registered by calls through Any, not as decorators: Locust's EventHook.add_listener is
# untyped, and as a decorator it would leave each listener untyped for mypy.
_events: Any = events
_events.init.add_listener(_on_init)
_events.request.add_listener(_on_request)
_events.test_stop.add_listener(_on_test_stop)
_events.quitting.add_listener(_on_quitting)
