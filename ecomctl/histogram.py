"""Latency histograms (HdrHistogram, microseconds from 1 µs to 1 h, 3 significant figures).

A thin layer over the ``hdrhistogram`` package that keeps its exact merge and its compressed
base64 wire form (``encode``/``decode``: histograms travel in JSON between load workers and
are merged without losing anything), and replaces its slow paths: values are recorded in
bulk with the bucket index computed inline (the package's ``record_value`` costs ~0.7 µs),
and percentiles and the mean scan only the non-zero counters (its ``get_mean_value`` walks
every bucket through an iterator, tens of milliseconds).
"""

from __future__ import annotations

import weakref
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate, compress
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_FIGURES = 3

SUMMARY_PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p95_ms", 95.0), ("p99_ms", 99.0),
                       ("p999_ms", 99.9))


class LatencyHistogram:
    """Durations in microseconds; values outside 1 µs .. 1 h are clamped into it (a zero
    duration counts as 1 µs, so every recorded span is counted)."""

    __slots__ = ("_h",)

    def __init__(self, _hdr: HdrHistogram | None = None) -> None:
        self._h = _hdr or HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        # hdrh's histogram and its encoder point at each other: a cycle, which only the
        # cyclic collector frees, and it rarely looks at old objects. 185 KiB of counters
        # per histogram piled up in a long run (a histogram a second). A weak back link
        # frees each one as soon as it is dropped.
        encoder = self._h.encoder
        if not isinstance(encoder.histogram, weakref.ProxyType):
            encoder.histogram = weakref.proxy(self._h)

    # -- recording --------------------------------------------------------------------------

    def record_us(self, value: float, count: int = 1) -> None:
        self._add_counts({int(value): count})

    def record_ns(self, value: int) -> None:
        self._add_counts({value // 1000: 1})

    def record_s(self, value: float) -> None:
        self._add_counts({round(value * 1_000_000): 1})

    def record_many_ns(self, values: Iterable[int]) -> None:
        self._add_counts(Counter([v // 1000 for v in values]))

    def record_many_us(self, values: Iterable[int]) -> None:
        """Record integer microsecond values; identical values are counted once (Counter is
        C code) and each distinct value costs one index computation."""
        self._add_counts(Counter(values))

    def _add_counts(self, values: dict[int, int]) -> None:
        h = self._h
        counts = h.counts
        mask = h.sub_bucket_mask
        shift = h.sub_bucket_half_count_magnitude + 1 + h.unit_magnitude
        half_mag = h.sub_bucket_half_count_magnitude
        half_count = h.sub_bucket_half_count
        unit_mag = h.unit_magnitude
        total = 0
        lo, hi = h.min_value, h.max_value
        for value, count in values.items():
            if value < LOWEST_US:
                value = LOWEST_US
            elif value > HIGHEST_US:
                value = HIGHEST_US
            # HdrHistogram's counts index: bucket from the bit length, then the sub-bucket.
            bucket = (value | mask).bit_length() - shift
            index = ((bucket + 1) << half_mag) + (value >> (bucket + unit_mag)) - half_count
            counts[index] += count
            total += count
            if value < lo:
                lo = value
            if value > hi:
                hi = value
        h.total_count += total
        h.min_value, h.max_value = lo, hi

    # -- combining and transport --------------------------------------------------------------

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other``'s counts to this one (exact: bucket by bucket); returns self."""
        o = other._h
        if not o.total_count:
            return self
        h = self._h
        lowest = min(h.min_value, o.min_value)
        try:
            h.add(o)
        except IndexError as exc:  # the other one holds values beyond this layout's range
            raise ValueError(str(exc)) from exc
        # hdrh's add takes the min through get_min_value(), which is 0 for an empty histogram.
        h.min_value = lowest
        return self

    def copy(self) -> LatencyHistogram:
        return LatencyHistogram().merge(self)

    def encode(self) -> str:
        """The compressed, base64 HdrHistogram V2 form (readable by every HdrHistogram port)."""
        return bytes(self._h.encode()).decode("ascii")

    @classmethod
    def decode_sum(cls, encoded: Iterable[str]) -> LatencyHistogram:
        """One histogram holding every encoded one's counts (exact)."""
        total = cls()
        for text in encoded:
            total.merge(cls.decode(text))
        return total

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        try:
            decoded = HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as exc:  # base64, zlib and hdrh's own exceptions
            raise ValueError(f"not an encoded HdrHistogram: {exc}") from exc
        # Re-home into the standard layout, so merges stay the fast same-layout add.
        fresh = cls()
        if decoded.total_count:
            fresh.merge(cls(decoded))
        return fresh

    # -- reading ------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self._h.total_count)

    def _nonzero(self) -> tuple[list[int], list[int]]:
        """(indexes, counts) of the non-zero counters, scanning only [min, max]."""
        h = self._h
        if not h.total_count:
            return [], []
        first = h._counts_index_for(h.min_value)
        last = h._counts_index_for(h.max_value)
        window = array("Q", bytes(h.counts)[first * 8 : (last + 1) * 8])
        indexes = list(compress(range(first, last + 1), window))
        return indexes, [window[i - first] for i in indexes]

    def percentiles_us(self, quantiles: Iterable[float]) -> dict[float, int]:
        """Value at each percentile (0..100), as HdrHistogram defines it: the highest value
        equivalent to the bucket where the cumulative count reaches the target."""
        h = self._h
        indexes, counts = self._nonzero()
        result: dict[float, int] = {}
        if not indexes:
            return {q: 0 for q in quantiles}
        cumulative = list(accumulate(counts))
        total = h.total_count
        for q in quantiles:
            target = max(int(min(q, 100.0) * total / 100 + 0.5), 1)
            position = min(bisect_left(cumulative, target), len(indexes) - 1)
            value = h.get_value_from_index(indexes[position])
            result[q] = (
                h.get_highest_equivalent_value(value) if q else h.get_lowest_equivalent_value(value)
            )
        return result

    def percentile_ms(self, q: float) -> float:
        return self.percentiles_us((q,))[q] / 1000

    @property
    def min_us(self) -> int:
        h = self._h
        return int(h.get_lowest_equivalent_value(h.min_value)) if h.total_count else 0

    @property
    def max_us(self) -> int:
        h = self._h
        return int(h.get_highest_equivalent_value(h.max_value)) if h.total_count else 0

    @property
    def mean_us(self) -> float:
        """HdrHistogram's mean: each bucket counted at its median equivalent value."""
        h = self._h
        indexes, counts = self._nonzero()
        if not indexes:
            return 0.0
        median = h._hdr_median_equiv_value
        value_at = h.get_value_from_index
        weighted = sum(c * median(value_at(i)) for i, c in zip(indexes, counts, strict=True))
        return float(weighted / h.total_count)

    def summary(self) -> dict[str, Any]:
        """count, min/mean/p50/p90/p95/p99/p99.9/max in milliseconds (None when empty)."""
        if not self._h.total_count:
            return {"count": 0, "min_ms": None, "mean_ms": None,
                    **{key: None for key, _ in SUMMARY_PERCENTILES}, "max_ms": None}
        values = self.percentiles_us(q for _, q in SUMMARY_PERCENTILES)
        return {
            "count": self.count,
            "min_ms": self.min_us / 1000,
            "mean_ms": round(self.mean_us / 1000, 3),
            **{key: values[q] / 1000 for key, q in SUMMARY_PERCENTILES},
            "max_ms": self.max_us / 1000,
        }

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count})"
