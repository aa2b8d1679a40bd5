"""The one duration syntax of ecomctl: CLI flags, gates and trace lookbacks all read it.

A duration is one or more ``NUMBER UNIT`` parts, largest unit first, as Go and Locust write
them: ``500ms``, ``90s``, ``1.5m``, ``1h30m``, ``2d``, ``1m30s250ms``. Units: ``us`` (or
``µs``), ``ms``, ``s``, ``m``, ``h``, ``d``. A bare number is allowed only where the caller
says what it means (seconds on the command line); a latency threshold must carry its unit.

The arithmetic is decimal, so what is written is what is compared: in binary floating point
``1652ms`` came out as 1652.0000000000002 ms, and a gate ``recovery < 1652ms`` passed an
observed 1652 ms.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

SECONDS_PER_UNIT = {"us": Decimal("0.000001"), "µs": Decimal("0.000001"),
                    "ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60),
                    "h": Decimal(3600), "d": Decimal(86400)}
_ORDER = ["d", "h", "m", "s", "ms", "us"]
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
EXAMPLES = "e.g. 90s, 1.5m, 1h30m, 500ms"


def parse_duration(text: str, *, bare_unit: str | None = None) -> float:
    """Seconds in ``text``; a bare number is in ``bare_unit`` (None: refused). Raises
    ValueError saying what is wrong."""
    return _finite(text, _seconds(text, bare_unit))


def parse_duration_ms(text: str) -> float:
    """Milliseconds in ``text``, which must carry its unit (a latency threshold)."""
    return _finite(text, _seconds(text, None) * 1000)


def _finite(text: str, value: Decimal) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{text.strip()!r} is too long")
    return number


def _seconds(text: str, bare_unit: str | None) -> Decimal:
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError(f"an empty duration ({EXAMPLES})")
    if _NUMBER.fullmatch(compact):
        if bare_unit is None:
            raise ValueError(f"{text.strip()!r} needs a unit ({EXAMPLES})")
        return Decimal(compact) * SECONDS_PER_UNIT[bare_unit]
    position, seconds, last_rank = 0, Decimal(0), -1
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        unit = "us" if match.group(2) == "µs" else match.group(2)
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(f"{text.strip()!r}: units must go from largest to smallest, each "
                             f"once ({EXAMPLES})")
        last_rank = rank
        seconds += Decimal(match.group(1)) * SECONDS_PER_UNIT[unit]
        position = match.end()
    if position != len(compact):
        raise ValueError(f"{text.strip()!r} is not a duration ({EXAMPLES})")
    return seconds
