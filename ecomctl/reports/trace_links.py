"""Links from a report's percentiles to the traces behind them (exemplars), and the report's
own waterfalls of those traces for when the trace UI is not running.

Each percentile cell (p50, p90, p95, p99, max) gets up to three links, one per exemplar
(``ecomctl.analysis.exemplars``), to the trace's page in the trace UI. The traces behind the
journeys' or endpoints' percentiles are also drawn in the page; a small script asks the
trace UI whether it answers and, if it does not, points the links at those drawings instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ecomctl.analysis.exemplars import RUNGS, bucket_of
from ecomctl.results import Exemplar, LatencyStats, LatencySummary

MAX_DRAWN = 30
"""Traces drawn in the page at most (each is a few KB of SVG)."""


@dataclass(frozen=True)
class TraceLinks:
    """Where the report sends a reader to see a trace: ``ui_url`` (``<url>/traces/<id>``),
    and ``traces`` (id -> its spans, as ``slowest_trace`` holds them) to draw in the page."""

    ui_url: str | None = None
    traces: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)

    def href(self, trace_id: str) -> str:
        if self.ui_url:
            return f"{self.ui_url.rstrip('/')}/traces/{quote(trace_id, safe='')}"
        return f"#trace-{trace_id}"


def exemplar_cell(value_html: str, latency: LatencySummary,
                  exemplars: Mapping[str, Sequence[Exemplar]] | None, rung: str,
                  links: TraceLinks | None) -> str:
    """A percentile cell with a link to each trace of its bucket (``data-lo`` < duration
    <= ``data-hi`` says the bucket)."""
    found = list((exemplars or {}).get(rung, ()))
    if links is None or not found:
        return value_html
    lower, upper = bucket_of(latency.to_dict(), rung)
    anchors = "".join(
        f'<a class="exemplar" href="{escape(links.href(e.trace_id))}" '
        f'data-trace="{escape(e.trace_id)}" data-ms="{e.duration_ms}" '
        f'data-lo="{lower if lower != float("-inf") else 0}" data-hi="{upper}" '
        f'title="trace {escape(e.trace_id)}: {e.duration_ms:,.1f} ms">\u25cf</a>'
        for e in found
    )
    return f'{value_html}<span class="exemplars">{anchors}</span>'


def drawn_trace_ids(rows: Iterable[LatencyStats], limit: int = MAX_DRAWN) -> list[str]:
    """The traces worth drawing in the page: each row's nearest exemplar per rung, slowest
    rungs first, at most ``limit``."""
    chosen: dict[str, None] = {}
    rows = list(rows)
    for rung in reversed(RUNGS):
        for row in rows:
            first = (row.exemplars or {}).get(rung)
            if first:
                chosen.setdefault(first[0].trace_id)
    return list(chosen)[:limit]


def load_traces(trace_file: str | None, trace_ids: Iterable[str]
                ) -> dict[str, list[dict[str, Any]]]:
    """The spans of ``trace_ids`` from a run's capture (missing file: none)."""
    from ecomctl.analysis.readers import read_file

    wanted = set(trace_ids)
    if not trace_file or not wanted or not Path(trace_file).is_file():
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for span in read_file(Path(trace_file)):
        if span.trace_id in wanted:
            found.setdefault(span.trace_id, []).append({
                "trace_id": span.trace_id, "span_id": span.span_id,
                "parent_span_id": span.parent_span_id, "name": span.name,
                "service": span.service, "kind": span.kind, "start_ns": span.start_ns,
                "end_ns": span.end_ns, "status": span.status,
                "attributes": dict(span.attributes),
            })
    return found


def script(links: TraceLinks) -> str:
    """Asks the trace UI whether it answers; if not, the exemplar links open the page's own
    waterfalls (those drawn), or say the UI is not running."""
    return f"""<script>
(function () {{
  var ui = {json.dumps(links.ui_url or "")};
  function local() {{
    document.querySelectorAll("a.exemplar").forEach(function (a) {{
      var drawn = document.getElementById("trace-" + a.dataset.trace);
      if (drawn) {{
        a.href = "#trace-" + a.dataset.trace;
        a.addEventListener("click", function () {{ drawn.open = true; }});
      }} else {{
        a.classList.add("unavailable");
        a.title += " (the trace UI is not running)";
      }}
    }});
  }}
  if (!ui) {{ local(); return; }}
  fetch(ui + "/api/v2/services", {{mode: "no-cors"}}).catch(local);
}})();
</script>"""
