"""Terminal streams that never drop output, whatever ``PYTHONUNBUFFERED`` says.

With ``PYTHONUNBUFFERED=1`` (set in many CI images and containers) ``sys.stdout`` is a text
wrapper straight over the raw file: one ``write(2)`` per call, and whatever the kernel did not
take is silently lost. A blocking pipe takes only part of a write when a signal arrives while
the pipe is full, so ``ecomctl checkout simulate --json | jq`` sometimes got the first 64 KiB of
the result and exit code 0. The raw file under those wrappers now writes until all is out
(still unbuffered: nothing waits for a newline or a flush).
"""

from __future__ import annotations

import io
import select
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _WholeWrites(io.FileIO):
    """A raw file whose ``write`` returns only once every byte is written."""

    def write(self, data: ReadableBuffer, /) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            written = super().write(view[done:])
            if written is None:  # a non-blocking descriptor, full: wait until it drains
                select.select([], [self], [])
                continue
            done += written
        return done


def complete_writes() -> None:
    """Make unbuffered ``sys.stdout`` and ``sys.stderr`` write every byte they are given."""
    sys.stdout = _whole(sys.stdout)
    sys.stderr = _whole(sys.stderr)


def _whole(stream: TextIO) -> TextIO:
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(stream.buffer, io.RawIOBase):
        return stream  # buffered (BufferedWriter retries already), or replaced (pytest, IDEs)
    stream.flush()
    # closefd=False: the original wrapper (still sys.__stdout__) keeps owning the descriptor.
    return io.TextIOWrapper(_WholeWrites(stream.fileno(), "w", closefd=False),
                            encoding=stream.encoding, errors=stream.errors,
                            line_buffering=stream.line_buffering, write_through=True)
