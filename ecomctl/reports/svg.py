"""Charts as inline SVG strings: line charts, stacked columns and a trace waterfall.

No JavaScript and nothing fetched: every chart is one ``<svg>`` element that the HTML page
embeds as is. Text is escaped here, so callers pass raw strings. Hover details use SVG
``<title>`` elements (the browser's native tooltip).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html import escape

# Tableau 10 without its red, which is kept for errors.
# Its pink is swapped for a green too: next to the red, pink reads as an error.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
           "#bab0ac", "#17becf", "#8cd17d")
ERROR_COLOR = "#e15759"

WIDTH = 960
HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 68, 20, 34, 46
_CHAR_W = 6.6  # average glyph width of the 12px UI font, for laying out labels
_LEGEND_ROW = 18


def _e(text: str) -> str:
    return escape(text, quote=True)


def _n(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def format_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


# -- scales ---------------------------------------------------------------------------------


def _nice_step(raw: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)


@dataclass(frozen=True)
class LinearScale:
    lo: float
    hi: float
    step: float

    @classmethod
    def nice(cls, lo: float, hi: float, count: int = 5, *, min_step: float = 0.0,
             zero: bool = True) -> LinearScale:
        """A domain covering [lo, hi] (and 0 unless ``zero`` is false) that ends on ticks."""
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi - lo <= 0:
            hi = lo + (abs(lo) or 1.0)
        step = max(_nice_step((hi - lo) / count), min_step)
        return cls(math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step)

    def fraction(self, value: float) -> float:
        return (value - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[float]:
        count = math.floor((self.hi - self.lo) / self.step + 1e-9)
        return [self.lo + i * self.step for i in range(count + 1)]


@dataclass(frozen=True)
class LogScale:
    """Base 10; values at or below ``lo`` sit on the axis."""

    lo: float
    hi: float

    @classmethod
    def nice(cls, lo: float, hi: float) -> LogScale:
        """The domain widened to 1-2-5 steps around [lo, hi]."""
        lo, hi = max(lo, 1e-3), max(hi, lo)
        steps = [m * 10.0**k for k in range(-3, 10) for m in (1, 2, 5)]
        low = max((s for s in steps if s <= lo * 1.0001), default=steps[0])
        high = min((s for s in steps if s >= hi * 0.9999), default=steps[-1])
        if high <= low:
            high = min(s for s in steps if s > low)
        return cls(low, high)

    def fraction(self, value: float) -> float:
        value = max(value, self.lo)
        return math.log10(value / self.lo) / math.log10(self.hi / self.lo)

    def ticks(self) -> list[float]:
        decades = math.log10(self.hi / self.lo)
        multiples = (1, 2, 5) if decades <= 3.5 else (1,)
        first = math.floor(math.log10(self.lo))
        return [m * 10.0**k for k in range(first, math.ceil(math.log10(self.hi)) + 1)
                for m in multiples if self.lo * 0.9999 <= m * 10.0**k <= self.hi * 1.0001]


Scale = LinearScale | LogScale


@dataclass(frozen=True)
class Axis:
    label: str
    scale: Scale
    fmt: Callable[[float], str] = format_number
    ticks: Sequence[float] | None = None  # None: the scale's own


@dataclass(frozen=True)
class Band:
    """A shaded stretch of the x axis behind the data (a fault window, a phase)."""

    start: float
    end: float
    label: str
    color: str = "#e1575922"


@dataclass(frozen=True)
class Series:
    """A named line or column stack; a ``None`` value leaves a gap."""

    label: str
    points: Sequence[tuple[float, float | None]]
    color: str


# -- the frame every x/y chart shares -------------------------------------------------------


class _Frame:
    """Plot area, axes and legend; a legend that wraps onto more rows makes the chart taller
    rather than the plot smaller."""

    def __init__(self, x: Axis, y: Axis, width: int, height: int,
                 entries: Sequence[tuple[str, str]]) -> None:
        self.x, self.y = x, y
        self.left, self.right = _LEFT, width - _RIGHT
        self.legend, rows = legend(entries, x=self.left, y=14, max_x=self.right)
        extra = (rows - 1) * _LEGEND_ROW
        self.width, self.height = width, height + extra
        self.top, self.bottom = _TOP + extra, self.height - _BOTTOM

    def px(self, value: float) -> float:
        f = min(max(self.x.scale.fraction(value), 0.0), 1.0)
        return self.left + f * (self.right - self.left)

    def py(self, value: float) -> float:
        f = min(max(self.y.scale.fraction(value), 0.0), 1.0)
        return self.bottom - f * (self.bottom - self.top)

    def open(self, label: str) -> list[str]:
        return [
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" width="{self.width}"'
            f' height="{self.height}" role="img" aria-label="{_e(label)}">',
            f"<title>{_e(label)}</title>",
            f'<rect class="plot" x="{self.left}" y="{self.top}" width="{self.right - self.left}"'
            f' height="{self.bottom - self.top}"/>',
        ]

    def bands(self, bands: Sequence[Band]) -> list[str]:
        parts = []
        for band in bands:
            x0, x1 = self.px(band.start), self.px(band.end)
            if x1 > x0:
                parts.append(f'<rect class="band-x" x="{_n(x0)}" y="{self.top}"'
                             f' width="{_n(x1 - x0)}" height="{self.bottom - self.top}"'
                             f' fill="{band.color}"><title>{_e(band.label)}</title></rect>')
        return parts

    def axes(self) -> list[str]:
        parts = []
        for tick in self.y.ticks if self.y.ticks is not None else self.y.scale.ticks():
            y = _n(self.py(tick))
            parts.append(f'<line class="grid" x1="{self.left}" x2="{self.right}" y1="{y}"'
                         f' y2="{y}"/><text class="tick" x="{self.left - 6}" y="{y}"'
                         f' text-anchor="end" dy="0.32em">{_e(self.y.fmt(tick))}</text>')
        for tick in self.x.ticks if self.x.ticks is not None else self.x.scale.ticks():
            x = _n(self.px(tick))
            parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{self.top}"'
                         f' y2="{self.bottom}"/><text class="tick" x="{x}"'
                         f' y="{self.bottom + 16}" text-anchor="middle">'
                         f"{_e(self.x.fmt(tick))}</text>")
        middle_x = (self.left + self.right) / 2
        middle_y = (self.top + self.bottom) / 2
        parts.append(f'<text class="axis-label" x="{_n(middle_x)}" y="{self.height - 8}"'
                     f' text-anchor="middle">{_e(self.x.label)}</text>')
        parts.append(f'<text class="axis-label" transform="translate(16 {_n(middle_y)})'
                     f' rotate(-90)" text-anchor="middle">{_e(self.y.label)}</text>')
        return parts


def legend(entries: Sequence[tuple[str, str]], *, x: float, y: float,
           max_x: float) -> tuple[list[str], int]:
    """(label, color) swatches left to right, wrapping at ``max_x``; the parts and the
    number of rows used."""
    parts, left, rows = [], x, 1
    for label, color in entries:
        advance = 30 + _CHAR_W * len(label)
        if x > left and x + advance - 12 > max_x:
            x, y, rows = left, y + _LEGEND_ROW, rows + 1
        parts.append(f'<rect x="{_n(x)}" y="{_n(y - 5)}" width="12" height="10" rx="2"'
                     f' fill="{color}"/><text class="legend" x="{_n(x + 17)}" y="{_n(y)}"'
                     f' dy="0.32em">{_e(label)}</text>')
        x += advance
    return parts, rows


# -- charts ---------------------------------------------------------------------------------


def _segments(points: Sequence[tuple[float, float | None]]) -> Iterator[list[tuple[float, float]]]:
    """Runs of consecutive points with a value (a gap splits the line)."""
    run: list[tuple[float, float]] = []
    for x, y in points:
        if y is None or not math.isfinite(y):
            if run:
                yield run
            run = []
        else:
            run.append((x, y))
    if run:
        yield run


def line_chart(series: Sequence[Series], x: Axis, y: Axis, *, label: str,
               width: int = WIDTH, height: int = HEIGHT,
               value_fmt: Callable[[float], str] = format_number,
               bands: Sequence[Band] = ()) -> str:
    """Lines, with a dot on each point when there are few (a single point is visible);
    ``bands`` shade stretches of x behind them."""
    frame = _Frame(x, y, width, height, [(s.label, s.color) for s in series])
    parts = frame.open(label) + frame.bands(bands) + frame.axes()
    for s in series:
        valued = sum(1 for _, v in s.points if v is not None)
        for run in _segments(s.points):
            if len(run) > 1:
                coords = " ".join(f"{_n(frame.px(a))},{_n(frame.py(b))}" for a, b in run)
                parts.append(f'<polyline class="line" points="{coords}" stroke="{s.color}"/>')
            if len(run) == 1 or valued <= 40:
                parts.extend(
                    f'<circle class="mark" cx="{_n(frame.px(a))}" cy="{_n(frame.py(b))}" r="2.8"'
                    f' fill="{s.color}"><title>{_e(s.label)}: {_e(x.fmt(a))} -&gt;'
                    f" {_e(value_fmt(b))}</title></circle>"
                    for a, b in run
                )
    parts += frame.legend
    parts.append("</svg>")
    return "".join(parts)


def column_chart(stacks: Sequence[Series], x: Axis, y: Axis, *, column_width: float,
                 label: str, width: int = WIDTH, height: int = HEIGHT,
                 column_title: Callable[[float], str] | None = None,
                 bands: Sequence[Band] = ()) -> str:
    """Stacked columns: the i-th point of every series stacks on one column that spans
    [x, x + column_width); ``bands`` shade stretches of x behind them."""
    frame = _Frame(x, y, width, height, [(s.label, s.color) for s in stacks])
    parts = frame.open(label) + frame.bands(bands) + frame.axes()
    columns: dict[float, list[tuple[float, str]]] = {}
    for s in stacks:
        for at, value in s.points:
            if value is not None and value > 0:
                columns.setdefault(at, []).append((value, s.color))
    for at, cells in sorted(columns.items()):
        x0, x1 = frame.px(at), frame.px(at + column_width)
        gap = min(1.0, (x1 - x0) * 0.15)
        parts.append("<g>")
        if column_title is not None:
            parts.append(f"<title>{_e(column_title(at))}</title>")
        base = 0.0
        for value, color in cells:
            y0, y1 = frame.py(base), frame.py(base + value)
            parts.append(f'<rect class="mark" x="{_n(x0 + gap / 2)}" y="{_n(y1)}"'
                         f' width="{_n(max(x1 - x0 - gap, 0.5))}"'
                         f' height="{_n(max(y0 - y1, 0.5))}" fill="{color}"/>')
            base += value
        parts.append("</g>")
    parts += frame.legend
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class WaterfallRow:
    """One span: ``start_ms``/``end_ms`` from the trace's start."""

    name: str
    service: str
    depth: int
    start_ms: float
    end_ms: float
    color: str
    error: bool
    tooltip: str


_ROW_H = 20
_LABEL_W = 380
_DURATION_W = 84


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 0)] + "\u2026"


def waterfall(rows: Sequence[WaterfallRow], *, total_ms: float, label: str,
              services: Sequence[tuple[str, str]], width: int = WIDTH) -> str:
    """Spans as bars on a shared time axis, one row each in tree order; the left column
    names the span (indented by depth) and its service, the bar's right end its duration."""
    legend_parts, legend_rows = legend(services, x=8, y=14, max_x=width - 8)
    top = 54 + (legend_rows - 1) * _LEGEND_ROW
    height = top + len(rows) * _ROW_H + 8
    x0, x1 = _LABEL_W + 10, width - _DURATION_W
    scale = LinearScale.nice(0.0, max(total_ms, 1e-3), count=6)
    # The axis ends at the trace's end, not at the next tick: the bars use the whole width.
    ticks = [t for t in scale.ticks() if t <= total_ms * 1.0001]
    span_ms = max(total_ms, 1e-3)

    def px(ms: float) -> float:
        return x0 + min(max(ms / span_ms, 0.0), 1.0) * (x1 - x0)

    parts = [
        f'<svg class="chart waterfall" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" role="img" aria-label="{_e(label)}">',
        f"<title>{_e(label)}</title>",
        *legend_parts,
    ]
    for tick in ticks:
        x = _n(px(tick))
        parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{top - 6}" y2="{height - 8}"/>'
                     f'<text class="tick" x="{x}" y="{top - 12}" text-anchor="middle">'
                     f"{_e(format_number(tick))} ms</text>")
    for i, row in enumerate(rows):
        y = top + i * _ROW_H
        middle = y + _ROW_H / 2
        indent = 8 + 12 * min(row.depth, 16)
        room = int((_LABEL_W - indent) / _CHAR_W)
        name = _fit(row.name, max(room - 4, 4))
        service = _fit(row.service, max(room - len(name) - 1, 0))
        bar_x0, bar_x1 = px(row.start_ms), px(row.end_ms)
        fill = ERROR_COLOR if row.error else row.color
        row_class = "row error" if row.error else "row"
        parts.append(
            f'<g class="{row_class}"><title>{_e(row.tooltip)}</title>'
            f'<rect class="band" x="0" y="{y}" width="{width}" height="{_ROW_H}"/>'
            f'<text x="{indent}" y="{_n(middle)}" dy="0.32em"><tspan class="span-name">'
            f'{_e(name)}</tspan> <tspan class="span-service">{_e(service)}</tspan></text>'
            f'<rect class="mark" x="{_n(bar_x0)}" y="{y + 4}"'
            f' width="{_n(max(bar_x1 - bar_x0, 1.0))}"'
            f' height="{_ROW_H - 8}" rx="2" fill="{fill}"/>'
            f'<text class="duration" x="{_n(bar_x1 + 4)}" y="{_n(middle)}" dy="0.32em">'
            f"{_e(format_ms(row.end_ms - row.start_ms))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class RatioBar:
    """One row of a ratio chart: ``value`` against its ``target`` (higher is better)."""

    name: str
    value: float
    target: float
    tooltip: str


_BAR_LABEL_W = 150


def ratio_bars(rows: Sequence[RatioBar], *, label: str, good: str, bad: str,
               width: int = WIDTH) -> str:
    """Horizontal bars from 0, one per row, green when at or above the row's target (a
    dark tick), red below; the axis is shared, so rows compare at a glance."""
    top, bottom = 34, 40
    height = top + len(rows) * 30 + bottom
    x0, x1 = _BAR_LABEL_W, width - _RIGHT - 60
    scale = LinearScale.nice(0.0, max([r.value for r in rows] + [r.target for r in rows]
                                      + [1e-3]), count=6)

    def px(value: float) -> float:
        return x0 + min(max(scale.fraction(value), 0.0), 1.0) * (x1 - x0)

    parts = [
        f'<svg class="chart ratios" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" role="img" aria-label="{_e(label)}">',
        f"<title>{_e(label)}</title>",
        f'<rect class="plot" x="{x0}" y="{top}" width="{x1 - x0}"'
        f' height="{height - top - bottom}"/>',
    ]
    for tick in scale.ticks():
        x = _n(px(tick))
        parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{top}" y2="{height - bottom}"/>'
                     f'<text class="tick" x="{x}" y="{height - bottom + 16}"'
                     f' text-anchor="middle">{_e(format_number(tick))}x</text>')
    parts.append(f'<text class="axis-label" x="{_n((x0 + x1) / 2)}" y="{height - 6}"'
                 f' text-anchor="middle">ratio (higher is better; tick: target)</text>')
    legend_parts, _ = legend([("target reached", good), ("below target", bad)], x=x0, y=14,
                             max_x=x1)
    parts += legend_parts
    for i, row in enumerate(rows):
        y = top + i * 30
        color = good if row.value >= row.target else bad
        end = px(row.value)
        target_x = _n(px(row.target))
        parts.append(
            f"<g><title>{_e(row.tooltip)}</title>"
            f'<text x="{x0 - 8}" y="{y + 15}" text-anchor="end" dy="0.32em">'
            f"{_e(_fit(row.name, int((_BAR_LABEL_W - 12) / _CHAR_W)))}</text>"
            f'<rect class="mark" x="{x0}" y="{y + 6}" width="{_n(max(end - x0, 1.0))}"'
            f' height="18" rx="2" fill="{color}"/>'
            f'<line x1="{target_x}" x2="{target_x}" y1="{y + 2}" y2="{y + 28}" stroke="#1f2328"'
            f' stroke-width="2"/>'
            f'<text class="duration" x="{_n(max(end, px(row.target)) + 6)}" y="{y + 15}"'
            f' dy="0.32em">{_e(format_number(row.value))}x</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def format_ms(value: float) -> str:
    if abs(value) < 10:
        return f"{value:.2f} ms"
    return f"{value:,.1f} ms"
