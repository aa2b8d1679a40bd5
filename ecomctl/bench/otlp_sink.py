"""Where the bench's traced gateways and checkout simulations send their spans: an OTLP/gRPC
endpoint that accepts every export and discards it, counting requests and bytes.

The rows measure what tracing costs ecomctl's processes. The stack's trace backend ingesting
~6,000 spans/s (Jaeger on Badger) takes most of a core, and on a 2-core machine that core is
the one the server and ``wrk`` share, so exporting to it measured the backend's ingestion as
much as ecomctl. In the checkout simulation at 40 checkouts/s it tripled the consumers' p99
lag (0.25 s to 0.96-1.2 s). The sink keeps the export real (encoded, sent over
gRPC, acknowledged) and cheap: it never parses a request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc  # (no stubs: pyproject's [tool.mypy] overrides)

_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


@dataclass
class SinkCounts:
    exports: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@contextmanager
def otlp_sink() -> Iterator[tuple[str, SinkCounts]]:
    """A running sink: its ``http://127.0.0.1:<port>`` endpoint and what it received."""
    counts = SinkCounts()

    def export(request: bytes, context: object) -> bytes:
        with counts._lock:
            counts.exports += 1
            counts.bytes += len(request)
        return b""  # an empty ExportTraceServiceResponse: everything accepted

    handler = grpc.method_handlers_generic_handler(
        _SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(export)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", counts
    finally:
        server.stop(grace=1).wait()


def sink_env(endpoint: str) -> dict[str, str]:
    """The variables that send a process's spans to the sink."""
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
