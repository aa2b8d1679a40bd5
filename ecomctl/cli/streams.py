"""Terminal streams that never drop output, whatever ``PYTHONUNBUFFERED`` says.

With ``PYTHONUNBUFFERED=1`` (set in many CI images and containers) ``sys.stdout`` is a text
wrapper straight over the raw file: one ``write(2)`` per call, and whatever the kernel did not
take is silently lost. A blocking pipe takes only part of a write when a signal arrives while
the pipe is full, so ``ecomctl checkout simulate --json | jq`` sometimes got the first 64 KiB of
the result and exit code 0. A ``BufferedWriter`` in between writes the rest; ``write_through``
keeps every call going straight out, as unbuffered output should.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO


def complete_writes() -> None:
    """Put a retrying buffer under ``sys.stdout`` and ``sys.stderr`` where they have none."""
    sys.stdout = _retrying(sys.stdout)
    sys.stderr = _retrying(sys.stderr)


def _retrying(stream: TextIO) -> TextIO:
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(stream.buffer, io.RawIOBase):
        return stream  # buffered already, or replaced (pytest's capture, an IDE)
    stream.flush()
    # closefd=False: the original wrapper (still sys.__stdout__) keeps owning the descriptor.
    raw = io.FileIO(stream.fileno(), "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=stream.encoding,
                            errors=stream.errors, line_buffering=stream.line_buffering,
                            write_through=True)
