"""Span export in a process of its own, so the serving process never encodes OTLP.

``ExportProcessSpanProcessor`` (in the serving process) queues finished spans; a thread
turns each batch into one ``span_wire`` blob and writes it to the export process's standard
input. The export process (``python -m ecomctl.telemetry.export_process``) rebuilds the
spans and hands them to the ordinary OTLP exporters, on its own core.

Both sides batch as ``OTEL_BSP_*`` say (``BatchSpanSettings``): the serving process queues up
to ``max_queue_size`` spans and ships batches of at most ``max_export_batch_size`` every
``schedule_delay_ms`` (sooner when a batch is full); the export process exports each batch as
it comes, its exporters' deadline at most ``export_timeout_ms``.

Frames on the pipe: one type byte, a 4-byte big-endian length, the payload.
``C`` the exporters' and the batch settings (pickled, first), ``S`` a span batch, ``F`` a
flush request (4-byte token), answered on the export process's standard output by ``A`` +
the token once everything before it was exported. End of input: export what is left and
exit.

The serving process never waits on the export process except in ``force_flush``: a slow or
dead export process fills the queue, and spans beyond ``max_queue_size`` are dropped and
counted, as ``BatchSpanProcessor`` does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import IO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ecomctl.config import BatchSpanSettings, OtlpExporterSettings
from ecomctl.telemetry.span_wire import decode_spans, encode_spans

_log = logging.getLogger("ecomctl.telemetry")
_HEADER = struct.Struct(">cI")
_TOKEN = struct.Struct(">I")
CONFIG, SPANS, FLUSH, ACK = b"C", b"S", b"F", b"A"


class ExportProcessSpanProcessor(SpanProcessor):
    """Ships finished spans to an export process started on the first batch."""

    def __init__(
        self,
        exporters: Sequence[OtlpExporterSettings],
        *,
        batch: BatchSpanSettings | None = None,
    ) -> None:
        self._exporters = list(exporters)
        self._batch = batch = batch or BatchSpanSettings()
        self._queue: deque[ReadableSpan] = deque()
        self._max_queue, self._max_batch = batch.max_queue_size, batch.max_export_batch_size
        self._delay_s = batch.schedule_delay_ms / 1000
        self.dropped = 0
        """Spans dropped because the queue was full or the export process was gone."""
        self._wake = threading.Event()
        self._stopping = False
        self._pipe_lock = threading.Lock()  # one writer at a time, and flushes in order
        self._process: subprocess.Popen[bytes] | None = None
        self._stdin: int | None = None  # its standard input's descriptor, non-blocking
        self._pending = b""  # the frame being written
        self._broken = False
        self._token = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or not span.context.trace_flags.sampled:
            return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            return
        self._queue.append(span)
        if self._thread is None:
            self._start_thread()
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    def _start_thread(self) -> None:
        with self._pipe_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._ship_forever,
                                                name="span-shipper", daemon=True)
                self._thread.start()

    def _ship_forever(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            with self._pipe_lock:
                self._ship_queued(None)

    def _ship_queued(self, deadline: float | None) -> bool:
        """Write every queued span (caller holds the pipe lock); False when the deadline
        passed first (what is left stays queued)."""
        while self._queue:
            batch = [self._queue.popleft()
                     for _ in range(min(self._max_batch, len(self._queue)))]
            if not self._write(SPANS, encode_spans(batch), deadline, len(batch)):
                return False
        return True

    def _write(self, kind: bytes, payload: bytes, deadline: float | None, spans: int = 0) -> bool:
        """One whole frame, or none if the export process is gone; a frame cut by the
        deadline is finished by the next write (frames are never interleaved)."""
        self._pending += _HEADER.pack(kind, len(payload)) + payload
        if self._ensure_process() is not None and self._drain(deadline):
            return True
        if self._broken:
            self.dropped += spans
            self._pending = b""
        return False

    def _drain(self, deadline: float | None) -> bool:
        assert self._stdin is not None
        while self._pending:
            if self._stopping and deadline is None:
                return False
            wait = 0.25 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                return False
            if not select.select([], [self._stdin], [], min(wait, 0.25))[1]:
                continue
            try:
                written = os.write(self._stdin, self._pending)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._lost(f"{exc.strerror or exc}; exit code {self._exit_code()}")
                self._pending = b""
                return False
            self._pending = self._pending[written:]
        return True

    def _exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def _ensure_process(self) -> subprocess.Popen[bytes] | None:
        if self._broken:
            return None
        if self._process is None:
            if os.getpid() != self._pid:
                self._lost("this process was forked from the one that built the processor; "
                           "build its telemetry after the fork")
                return None
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "ecomctl.telemetry.export_process"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                    close_fds=True,
                )
            except OSError as exc:
                self._lost(str(exc))
                return None
            assert self._process.stdin is not None
            self._stdin = self._process.stdin.fileno()
            os.set_blocking(self._stdin, False)  # writes wait in select, up to a deadline
            config = self.config()
            self._pending = _HEADER.pack(CONFIG, len(config)) + config + self._pending
        return self._process

    def config(self) -> bytes:
        """The ``C`` frame's payload: what the export process builds its exporters from."""
        return pickle.dumps((self._exporters, self._batch))

    def _lost(self, why: str) -> None:
        if not self._broken:
            _log.warning("span export process lost (%s): spans are dropped from now on", why)
        self._broken = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        if not self._pipe_lock.acquire(timeout=max(0.0, timeout_millis / 1000)):
            return False
        try:
            if not self._ship_queued(deadline):
                return False
            if self._process is None or self._broken:
                return not self._broken
            self._token += 1
            token = _TOKEN.pack(self._token)
            return self._write(FLUSH, token, deadline) and self._await_ack(token, deadline)
        finally:
            self._pipe_lock.release()

    def _await_ack(self, token: bytes, deadline: float) -> bool:
        assert self._process is not None and self._process.stdout is not None
        out = self._process.stdout
        wanted = ACK + token
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                return False
            got = out.read(len(wanted))
            if len(got) < len(wanted):
                self._lost("it closed its output")
                return False
            if got == wanted:
                return True  # earlier tokens (timed-out flushes) are skipped

    def shutdown(self) -> None:
        if self._stopping:
            return
        self.force_flush(10_000)
        self._stopping = True
        self._wake.set()
        with self._pipe_lock:
            process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(5)  # it exports what it has read, then exits
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.dropped += len(self._queue)  # spans the export process never got
        self._queue.clear()
        if self.dropped:
            _log.warning("%d spans were dropped: the export process could not keep up",
                         self.dropped)


def _read_frame(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return kind, payload


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The export process's loop: export each batch, answer flushes, stop at end of input."""
    from ecomctl.telemetry.exporters import otlp_span_exporter

    first = _read_frame(stdin)
    if first is None or first[0] != CONFIG:
        return
    settings, batch = pickle.loads(first[1])
    exporters = [otlp_span_exporter(otlp, batch) for otlp in settings]
    try:
        while (frame := _read_frame(stdin)) is not None:
            kind, payload = frame
            if kind == SPANS:
                spans = decode_spans(payload)
                for exporter in exporters:
                    exporter.export(spans)
            elif kind == FLUSH:
                stdout.write(ACK + payload)
                stdout.flush()
    finally:
        for exporter in exporters:
            exporter.shutdown()


if __name__ == "__main__":
    # Ctrl-C and a group's SIGTERM reach this process too: the serving process decides
    # when it ends (by closing its input, after its last flush; or by dying: end of input).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
