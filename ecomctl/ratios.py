"""The one percentage syntax of ecomctl's command line: ``2%`` or ``0.02``.

A rate or a share is a percentage (``2%``, ``2.5 %``) or a fraction (``0.02``). A bare number
must be within 0..1, so that ``5`` (five percent, or 500%?) is an error that says how to
write it rather than a silent misreading; gates files read the same two forms. The
arithmetic is decimal, so ``7%`` is the float nearest 0.07.
"""

from __future__ import annotations

import re
from decimal import Decimal

_RATIO = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)")
EXAMPLES = "e.g. 2% or 0.02"


def parse_ratio(text: str, *, maximum: float | None = None) -> float:
    """The fraction ``text`` means (``2%`` -> 0.02, ``0.02`` -> 0.02), at most ``maximum``
    (None: no bound; a bare number is within 0..1 anyway). Raises ValueError saying what
    is wrong."""
    written = text.strip()
    match = _RATIO.fullmatch(written)
    if match is None:
        if written.startswith("-"):
            raise ValueError(f"{written!r} is negative ({EXAMPLES})")
        raise ValueError(f"{written!r} is not a percentage ({EXAMPLES})")
    number, percent = Decimal(match.group(1)), match.group(2)
    if not percent and number > 1:
        raise ValueError(f"{written!r}: a bare number is a fraction within 0..1; write "
                         f"{number}% for {number} percent")
    value = float(number / 100 if percent else number)
    if maximum is not None and value > maximum:
        raise ValueError(f"{written!r} is more than {format_ratio(maximum)}")
    return value


def format_ratio(value: float) -> str:
    """0.02 -> ``2%``: how a ratio is shown back (defaults, messages)."""
    return f"{(Decimal(repr(value)) * 100).normalize():f}%"
