"""The one duration syntax of ecomctl: CLI flags, gates and trace lookbacks all read it.

A duration is one or more ``NUMBER UNIT`` parts, largest unit first, as Go and Locust write
them: ``500ms``, ``90s``, ``1.5m``, ``1h30m``, ``2d``, ``1m30s250ms``. Units: ``us`` (or
``µs``), ``ms``, ``s``, ``m``, ``h``, ``d``. A bare number is allowed only where the caller
says what it means (seconds on the command line); a latency threshold must carry its unit.
"""

from __future__ import annotations

import math
import re

SECONDS_PER_UNIT = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
                    "d": 86400.0}
_ORDER = ["d", "h", "m", "s", "ms", "us"]
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
EXAMPLES = "e.g. 90s, 1.5m, 1h30m, 500ms"


def parse_duration(text: str, *, bare_unit: str | None = None) -> float:
    """Seconds in ``text``; a bare number is in ``bare_unit`` (None: refused). Raises
    ValueError saying what is wrong."""
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError(f"an empty duration ({EXAMPLES})")
    if _NUMBER.fullmatch(compact):
        if bare_unit is None:
            raise ValueError(f"{text.strip()!r} needs a unit ({EXAMPLES})")
        return float(compact) * SECONDS_PER_UNIT[bare_unit]
    position, seconds, last_rank = 0, 0.0, -1
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        unit = "us" if match.group(2) == "µs" else match.group(2)
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(f"{text.strip()!r}: units must go from largest to smallest, each "
                             f"once ({EXAMPLES})")
        last_rank = rank
        seconds += float(match.group(1)) * SECONDS_PER_UNIT[unit]
        position = match.end()
    if position != len(compact):
        raise ValueError(f"{text.strip()!r} is not a duration ({EXAMPLES})")
    if not math.isfinite(seconds):
        raise ValueError(f"{text.strip()!r} is too long")
    return seconds
